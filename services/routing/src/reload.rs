//! Hot reload: a new policy version published to the JetStream KV bucket
//! [`BUCKET`] under [`KEY`] (`tousu policy publish FILE`) is validated and
//! taken up without a restart; an invalid one is refused and the version in
//! force stays.
//!
//! What a published policy names by path (its calendar, its training data)
//! is read from the directory of the service's `policy` setting, as if the
//! published text were a file there.

use std::path::{Path, PathBuf};

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tousu_policy::schema::Policy;

/// The KV bucket of published policies.
pub const BUCKET: &str = "tousu_policy";
/// The key of the policy in force.
pub const KEY: &str = "current";

/// The bucket, created when missing (history of 10 versions).
pub async fn bucket(js: &jetstream::Context, replicas: usize) -> anyhow::Result<kv::Store> {
    match js.get_key_value(BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => Ok(js
            .create_key_value(kv::Config {
                bucket: BUCKET.into(),
                description: "tousu policy versions (tousu policy publish)".into(),
                history: 10,
                num_replicas: replicas,
                ..Default::default()
            })
            .await?),
    }
}

/// The directory a published policy's paths are resolved in.
pub fn base_dir(policy_file: &Path) -> PathBuf {
    match policy_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Parses a published policy; the problems when it is refused.
pub fn parse(bytes: &[u8], dir: &Path) -> Result<Policy, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    Policy::from_toml_in_dir(text, "kv:tousu_policy/current", dir)
        .map(|(policy, _)| policy)
        .map_err(|diagnostics| {
            diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// The published policy, when there is a valid one: at start it wins over
/// the file of the `policy` setting.
pub async fn published(store: &kv::Store, dir: &Path) -> Option<Policy> {
    let bytes = store.get(KEY).await.ok()??;
    match parse(&bytes, dir) {
        Ok(p) => {
            tracing::info!(version = %p.version, "using the published policy");
            Some(p)
        }
        Err(e) => {
            tracing::error!(error = %e, "published policy refused; using the file");
            None
        }
    }
}

/// Watches the key; calls `take_up` with each valid new version until
/// `cancel` fires. `take_up` may refuse it too (the engine could not be
/// built); refusals are logged and counted.
pub async fn watch(
    store: kv::Store,
    dir: PathBuf,
    service: &'static str,
    cancel: CancellationToken,
    take_up: impl Fn(Policy) -> Result<(), String> + Send + 'static,
) {
    let mut updates = match store.watch(KEY).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the policy bucket: no hot reload");
            return;
        }
    };
    loop {
        let entry = tokio::select! {
            e = updates.next() => e,
            _ = cancel.cancelled() => return,
        };
        let Some(entry) = entry else { return };
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "policy watch error");
                continue;
            }
        };
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let outcome = parse(&entry.value, &dir).and_then(|policy| {
            let version = policy.version.clone();
            take_up(policy).map(|()| version)
        });
        match outcome {
            Ok(version) => {
                metrics::counter!("tousu_policy_reloads_total", "service" => service).increment(1);
                tracing::info!(%version, revision = entry.revision, "policy taken up");
            }
            Err(e) => {
                metrics::counter!("tousu_policy_refused_total", "service" => service).increment(1);
                tracing::error!(error = %e, revision = entry.revision, "published policy refused; the version in force stays");
            }
        }
    }
}
