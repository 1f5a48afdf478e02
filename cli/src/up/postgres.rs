//! A private Postgres cluster for `tousu up`, made with the system's
//! `initdb` and run with `pg_ctl`: trust authentication, listening on
//! 127.0.0.1 only, its socket inside the data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use sqlx::Connection as _;
use tokio::process::Command;

/// The database the services share (one schema each).
const DATABASE: &str = "tousu";

/// A cluster this process started, and must stop.
pub struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    /// Postgres refuses to run as root, so as root every command runs as
    /// the `postgres` user and the cluster belongs to it.
    as_postgres: bool,
}

/// `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*/bin.
fn binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    if let Some(initdb) = super::on_path("initdb") {
        let pg_ctl = initdb.with_file_name("pg_ctl");
        if pg_ctl.is_file() {
            return Ok((initdb, pg_ctl));
        }
        if let Some(pg_ctl) = super::on_path("pg_ctl") {
            return Ok((initdb, pg_ctl));
        }
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    let (_, bin) = dirs.pop().context(
        "no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin: run scripts/bootstrap, \
         or set DATABASE_URL to use an existing server",
    )?;
    Ok((bin.join("initdb"), bin.join("pg_ctl")))
}

async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `command` and fails with its output (or the tail of `log`) when it fails.
async fn run(mut command: Command, what: &str, log: Option<&Path>) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).into_owned();
    detail.push_str(&String::from_utf8_lossy(&out.stdout));
    if let Some(log) = log {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        detail.push_str(&lines[lines.len().saturating_sub(20)..].join("\n"));
    }
    anyhow::bail!("{what} failed ({}):\n{}", out.status, detail.trim_end())
}

impl Cluster {
    /// `program` as the cluster's owner, from `/` (which the postgres user
    /// can always enter; every path given is absolute).
    fn command(&self, program: &Path) -> Command {
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir("/");
        c
    }

    /// Creates the cluster in `<dir>/pg` on first use, starts it on
    /// `port` and creates the `tousu` database. The returned cluster must
    /// be stopped even when this fails half-way, so it is handed to
    /// `slot` before anything is started.
    pub async fn start(
        dir: &Path,
        port: u16,
        slot: &mut Option<Cluster>,
    ) -> anyhow::Result<String> {
        let (initdb, pg_ctl) = binaries()?;
        let data = dir.join("pg");
        let socket_dir = dir.join("run");
        let log = dir.join("logs/postgres.log");
        // A unix socket path is limited to 107 bytes.
        anyhow::ensure!(
            socket_dir.as_os_str().len() < 90,
            "the data directory path is too long for a Postgres socket: {}",
            socket_dir.display()
        );
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&socket_dir)?;
        if !log.exists() {
            std::fs::File::create(&log)?;
        }
        let cluster = slot.insert(Cluster {
            pg_ctl,
            data: data.clone(),
            as_postgres: is_root().await,
        });

        if cluster.as_postgres {
            let mut chown = Command::new("chown");
            chown
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .arg(&socket_dir)
                .arg(&log);
            run(chown, "chown to postgres", None).await?;
            let mut probe = cluster.command(Path::new("test"));
            probe.arg("-w").arg(&data);
            run(probe, "access check", None).await.with_context(|| {
                format!(
                    "the postgres user cannot write {}: choose --data in a directory it can \
                     reach, or set DATABASE_URL",
                    data.display()
                )
            })?;
        }

        if !data.join("PG_VERSION").exists() {
            println!("creating a Postgres cluster in {}", data.display());
            let mut init = cluster.command(&initdb);
            init.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]);
            run(init, "initdb", None).await?;
        }

        // A cluster left running by a `tousu up` that was killed is restarted.
        cluster.stop().await;

        let mut start = cluster.command(&cluster.pg_ctl);
        start
            .arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{}'",
                socket_dir.display()
            ));
        run(start, "pg_ctl start", Some(&log)).await?;

        let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .with_context(|| format!("connecting to {admin}"))?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(DATABASE)
                .fetch_optional(&mut conn)
                .await?;
        if exists.is_none() {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"))
    }

    /// `pg_ctl stop -m fast`: ends sessions, checkpoints, stops.
    pub async fn stop(&self) {
        let mut status = self.command(&self.pg_ctl);
        status.arg("status").arg("-D").arg(&self.data);
        if run(status, "pg_ctl status", None).await.is_err() {
            return;
        }
        let mut stop = self.command(&self.pg_ctl);
        stop.arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w"]);
        if let Err(e) = run(stop, "pg_ctl stop", None).await {
            eprintln!("{e:#}");
        }
    }
}
