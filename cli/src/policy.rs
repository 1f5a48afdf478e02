//! `tousu policy check FILE`.

use std::path::Path;

use anyhow::Context as _;
use tousu_domain::policy::Policy;

/// Parses and validates `file`; the error names the rule at fault.
pub fn check(file: &Path) -> anyhow::Result<()> {
    let policy = load(file)?;
    println!(
        "OK {}: policy {:?} version {} ({} departments, {} routing rules, {} grading rules)",
        file.display(),
        policy.name,
        policy.version,
        policy.departments.len(),
        policy.routing.len(),
        policy.grading.len(),
    );
    Ok(())
}

/// Reads and validates a policy file.
pub fn load(file: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading policy {}", file.display()))?;
    Policy::from_toml(&text).with_context(|| format!("policy {} is invalid", file.display()))
}
