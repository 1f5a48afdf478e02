//! `tousu policy check FILE`: every problem of a policy file, one per line
//! as `file:line:col: error|warning: message`, then a summary. Exit status
//! 1 when there is any error (warnings alone pass).

use std::path::Path;

use anyhow::bail;
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
    match Policy::load(file) {
        Ok((policy, _warnings)) => Ok(policy),
        Err(diagnostics) => {
            let errors: Vec<String> = diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect();
            bail!(
                "policy {} is invalid:\n{}",
                file.display(),
                errors.join("\n")
            )
        }
    }
}

/// `tousu policy publish FILE`: validates the policy and puts it in the
/// KV bucket the services watch, so routing and sla take it up without a
/// restart. An invalid file is not published.
pub async fn publish(file: &Path, nats: &str) -> anyhow::Result<()> {
    let policy = load(file)?;
    let bytes = std::fs::read(file)?;
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
