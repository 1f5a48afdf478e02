//! The outbox relay: publishes committed outbox rows to JetStream and
//! deletes them once the stream has acknowledged them.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of
//! replicas can relay the same outbox. A crash between publish and delete
//! re-publishes the row; the stream drops it as a duplicate because
//! `Nats-Msg-Id` is the event id.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage as Publish};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{HEADER_EVENT, Outbox};

/// Rows published per transaction.
const BATCH: i64 = 256;
/// How often the relay looks even when nobody woke it (other replicas'
/// writes, wake-ups lost to a crash).
const POLL: Duration = Duration::from_millis(500);

type Row = (
    i64,
    Uuid,
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<String>,
);

/// Runs until `cancel` fires, then publishes what is left once more.
pub async fn run(outbox: Outbox, pool: PgPool, js: jetstream::Context, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match drain(&pool, &js).await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                if n > 0 {
                    metrics::counter!("tousu_outbox_published_total", "producer" => outbox.producer()).increment(n);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
                metrics::counter!("tousu_outbox_errors_total", "producer" => outbox.producer())
                    .increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = outbox.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = cancel.cancelled() => {
                // Stop taking work, but flush what was committed so far.
                let _ = drain(&pool, &js).await;
                return;
            }
        }
    }
}

/// Publishes every committed row; returns how many.
pub async fn drain(pool: &PgPool, js: &jetstream::Context) -> Result<u64, async_nats::Error> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event_id, subject, event_type, payload, traceparent, tracestate
             FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let mut acks = Vec::with_capacity(rows.len());
        for (_, event_id, subject, event_type, payload, traceparent, tracestate) in &rows {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER_EVENT, event_type.as_str());
            if let Some(tp) = traceparent {
                headers.insert("traceparent", tp.as_str());
            }
            if let Some(ts) = tracestate {
                headers.insert("tracestate", ts.as_str());
            }
            let publish = Publish::build()
                .payload(payload.clone().into())
                .headers(headers)
                .message_id(event_id.to_string());
            acks.push(js.send_publish(subject.clone(), publish).await?);
        }
        for ack in acks {
            ack.await?;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        total += rows.len() as u64;
    }
}
