//! Writing events in the same transaction as the state change.

use std::sync::Arc;

use sqlx::PgConnection;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tousu_proto::v1::{Event, event::Payload};
use uuid::Uuid;

use crate::event::{EventExt, encode_event, to_timestamp};
use crate::trace;

/// A service's outbox: [`enqueue`](Outbox::enqueue) writes an event inside
/// the caller's transaction; [`wake`](Outbox::wake) after the commit lets
/// the relay publish at once instead of at its next poll.
#[derive(Clone, Debug)]
pub struct Outbox {
    producer: &'static str,
    notify: Arc<Notify>,
}

/// An event that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("event cannot be published: {0}")]
    Invalid(#[from] tousu_domain::InvalidValue),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl Outbox {
    /// `producer` is the service name stamped on every event.
    pub fn new(producer: &'static str) -> Self {
        Self {
            producer,
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn producer(&self) -> &'static str {
        self.producer
    }

    /// Builds the envelope (fresh id, next per-complaint sequence of this
    /// producer, now, the policy version) and writes it to the outbox.
    pub async fn enqueue(
        &self,
        conn: &mut PgConnection,
        complaint_id: Uuid,
        policy_version: &str,
        payload: Payload,
    ) -> Result<Event, EnqueueError> {
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO event_sequence (complaint_id, last_seq) VALUES ($1, 1)
             ON CONFLICT (complaint_id) DO UPDATE SET last_seq = event_sequence.last_seq + 1
             RETURNING last_seq",
        )
        .bind(complaint_id)
        .fetch_one(&mut *conn)
        .await?;
        let event = Event {
            id: Uuid::now_v7().to_string(),
            complaint_id: complaint_id.to_string(),
            sequence: seq as u64,
            occurred_at: Some(to_timestamp(OffsetDateTime::now_utc())),
            policy_version: policy_version.to_owned(),
            producer: self.producer.to_owned(),
            payload: Some(payload),
        };
        self.write(conn, &event).await?;
        Ok(event)
    }

    /// Writes a fully built event (used by replays and tests).
    pub async fn write(&self, conn: &mut PgConnection, event: &Event) -> Result<(), EnqueueError> {
        let subject = event.subject()?;
        let id = Uuid::parse_str(&event.id).map_err(|e| tousu_domain::InvalidValue {
            what: "event id",
            reason: e.to_string(),
        })?;
        let tc = trace::current_context();
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, event_type, payload, traceparent, tracestate)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(subject)
        .bind(event.event_type())
        .bind(encode_event(event))
        .bind(tc.get("traceparent"))
        .bind(tc.get("tracestate"))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Tells the relay there is something to publish. Call after commit.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}
