//! `tousu policy check FILE`: every problem of a policy file, one per line
//! as `file:line:col: error|warning: message`, then a summary. Exit status
//! 1 when there is any error (warnings alone pass).

use std::path::Path;

use anyhow::{Context as _, bail};
use tousu_policy::schema::Policy;

/// Checks `file` and prints its diagnostics (to stdout, so they can be
/// piped into an editor or CI annotator); fails when any is an error.
pub fn check(file: &Path) -> anyhow::Result<()> {
    let report = tousu_policy::check::check(file);
    println!("{report}");
    if report.is_ok() {
        Ok(())
    } else {
        bail!(
            "policy {} is invalid: {} error(s)",
            file.display(),
            report.errors()
        )
    }
}

/// Reads and validates a policy file (what `tousu up` hands the services);
/// the error lists every problem.
pub fn load(file: &Path) -> anyhow::Result<Policy> {
    Policy::load(file)
        .map(|(policy, _warnings)| policy)
        .map_err(|diagnostics| invalid(file, &diagnostics))
}

fn invalid(file: &Path, diagnostics: &[tousu_policy::schema::Diagnostic]) -> anyhow::Error {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    anyhow::anyhow!(
        "policy {} is invalid:\n{}",
        file.display(),
        errors.join("\n")
    )
}

/// `tousu policy publish FILE`: validates the policy and puts it in the
/// KV bucket the services watch, so routing and sla take it up without a
/// restart. An invalid file is not published.
pub async fn publish(file: &Path, nats: &str) -> anyhow::Result<()> {
    // Validate exactly the bytes that are published.
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text =
        std::str::from_utf8(&bytes).with_context(|| format!("{} is not UTF-8", file.display()))?;
    let (policy, _warnings) = Policy::from_toml_in_dir(
        text,
        &file.display().to_string(),
        &tousu_routing::reload::base_dir(file),
    )
    .map_err(|diagnostics| invalid(file, &diagnostics))?;
    let client = async_nats::connect(nats)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {nats}: {e}"))?;
    let js = async_nats::jetstream::new(client);
    let store = tousu_routing::reload::bucket(&js, 1).await?;
    let revision = store
        .put(tousu_routing::reload::KEY, bytes.into())
        .await
        .map_err(|e| anyhow::anyhow!("publishing: {e}"))?;
    println!(
        "published policy {} version {} as revision {revision} of {}/{}",
        policy.name,
        policy.version,
        tousu_routing::reload::BUCKET,
        tousu_routing::reload::KEY
    );
    Ok(())
}
