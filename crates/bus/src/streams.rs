//! Idempotent provisioning of the streams, run by every service at start.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects::{DLQ_PREFIX, DLQ_STREAM, EVENTS_PREFIX, EVENTS_STREAM};

/// How long the event stream drops a repeated `Nats-Msg-Id`. It must cover
/// the longest time an outbox relay may take to re-publish after a crash.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Creates `TOUSU_EVENTS` and `TOUSU_DLQ` if missing, or brings their
/// configuration up to date. Safe to call from any number of replicas.
pub async fn provision(js: &jetstream::Context, replicas: usize) -> Result<(), async_nats::Error> {
    js.create_or_update_stream(stream::Config {
        name: EVENTS_STREAM.into(),
        description: Some("tousu events (architecture §3)".into()),
        subjects: vec![format!("{EVENTS_PREFIX}>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: Duration::from_secs(30 * 24 * 3600),
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    js.create_or_update_stream(stream::Config {
        name: DLQ_STREAM.into(),
        description: Some("tousu dead letters: messages that failed max_deliver times".into()),
        subjects: vec![format!("{DLQ_PREFIX}>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    Ok(())
}
