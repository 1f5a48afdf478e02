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

/// An event waiting for [`Outbox::enqueue_many`].
#[derive(Debug, Clone)]
pub struct Pending {
    pub complaint_id: Uuid,
    pub payload: Payload,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Pending {
    /// An event for `complaint_id`, carrying the current span's trace context.
    pub fn new(complaint_id: Uuid, payload: Payload) -> Self {
        let mut tc = trace::current_context();
        Pending {
            complaint_id,
            payload,
            traceparent: tc.remove("traceparent"),
            tracestate: tc.remove("tracestate"),
        }
    }
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

    /// Like [`enqueue`](Outbox::enqueue) for many events at once, in three
    /// statements whatever their number (group commit). Each item carries
    /// its complaint, payload and the trace context of the request it came
    /// from (`traceparent`, `tracestate`), since a batch has no one span.
    pub async fn enqueue_many(
        &self,
        conn: &mut PgConnection,
        policy_version: &str,
        items: Vec<Pending>,
    ) -> Result<Vec<Event>, EnqueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // One upsert for every complaint: its counter moves by the number
        // of its events in the batch.
        let mut counts: Vec<(Uuid, i64)> = Vec::new();
        for item in &items {
            match counts.iter_mut().find(|(id, _)| *id == item.complaint_id) {
                Some((_, n)) => *n += 1,
                None => counts.push((item.complaint_id, 1)),
            }
        }
        counts.sort_by_key(|(id, _)| *id);
        let ids: Vec<Uuid> = counts.iter().map(|c| c.0).collect();
        let ns: Vec<i64> = counts.iter().map(|c| c.1).collect();
        let last: Vec<(Uuid, i64)> = sqlx::query_as(
            "INSERT INTO event_sequence (complaint_id, last_seq)
             SELECT * FROM unnest($1::uuid[], $2::bigint[])
             ON CONFLICT (complaint_id) DO UPDATE SET last_seq = event_sequence.last_seq + EXCLUDED.last_seq
             RETURNING complaint_id, last_seq",
        )
        .bind(&ids)
        .bind(&ns)
        .fetch_all(&mut *conn)
        .await?;
        // Next sequence per complaint = last - count + 1, handed out in order.
        let mut next: Vec<(Uuid, i64)> = last
            .into_iter()
            .map(|(id, last)| {
                let n = counts.iter().find(|c| c.0 == id).map_or(1, |c| c.1);
                (id, last - n + 1)
            })
            .collect();
        let now = Some(to_timestamp(OffsetDateTime::now_utc()));
        let mut events = Vec::with_capacity(items.len());
        let (mut eids, mut subjects, mut types, mut payloads, mut tps, mut tss) = (
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
        );
        for item in items {
            let seq = next
                .iter_mut()
                .find(|(id, _)| *id == item.complaint_id)
                .map(|(_, s)| {
                    *s += 1;
                    *s - 1
                })
                .unwrap_or(1);
            let id = Uuid::now_v7();
            let event = Event {
                id: id.to_string(),
                complaint_id: item.complaint_id.to_string(),
                sequence: seq as u64,
                occurred_at: now,
                policy_version: policy_version.to_owned(),
                producer: self.producer.to_owned(),
                payload: Some(item.payload),
            };
            eids.push(id);
            subjects.push(event.subject()?);
            types.push(event.event_type());
            payloads.push(encode_event(&event));
            tps.push(item.traceparent);
            tss.push(item.tracestate);
            events.push(event);
        }
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, event_type, payload, traceparent, tracestate)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[])",
        )
        .bind(&eids)
        .bind(&subjects)
        .bind(&types)
        .bind(&payloads)
        .bind(&tps)
        .bind(&tss)
        .execute(&mut *conn)
        .await?;
        Ok(events)
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
