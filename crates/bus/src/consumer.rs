//! Idempotent consumers: process an event, record its id in the inbox in the
//! same transaction, commit, then ack; after `max_deliver` failed attempts
//! the message goes to the dead-letter stream with the reason.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage as Publish};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tousu_proto::v1::Event;
use tracing::Instrument;
use uuid::Uuid;

use crate::event::decode_event;
use crate::outbox::EnqueueError;
use crate::subjects::{DLQ_PREFIX, EVENTS_STREAM};
use crate::{Outbox, trace};

/// Dead-letter headers: why, and where the message came from.
pub const DLQ_REASON: &str = "Tousu-Dlq-Reason";
pub const DLQ_CONSUMER: &str = "Tousu-Dlq-Consumer";
pub const DLQ_SUBJECT: &str = "Tousu-Dlq-Subject";
pub const DLQ_STREAM_SEQ: &str = "Tousu-Dlq-Stream-Seq";
pub const DLQ_DELIVERIES: &str = "Tousu-Dlq-Deliveries";

/// A durable pull consumer on `TOUSU_EVENTS`.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name; replicas of a service share it, so each message is
    /// processed by one of them.
    pub durable: String,
    /// Subjects to receive (`tousu.evt.complaint.received.>` …).
    pub filter_subjects: Vec<String>,
    /// Attempts before a message goes to the dead-letter stream.
    pub max_deliver: i64,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    pub fn new(durable: &str, filter_subjects: &[&str]) -> Self {
        Self {
            durable: durable.to_owned(),
            filter_subjects: filter_subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(10),
        }
    }
}

/// One event handed to a [`Handler`].
#[derive(Debug)]
pub struct Delivery {
    pub event: Event,
    pub complaint_id: Uuid,
    pub subject: String,
    /// True when this consumer already processed a later event of the same
    /// producer for the same complaint: the handler must not let it
    /// overwrite newer state.
    pub stale: bool,
    /// 1 for the first delivery.
    pub attempt: i64,
}

/// Why a handler could not process an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Transient (database down, a dependency not ready): try again later.
    #[error("{0}")]
    Retry(String),
    /// The event can never be processed: straight to the dead-letter stream.
    #[error("{0}")]
    Reject(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Retry(format!("database: {e}"))
    }
}

impl From<EnqueueError> for HandleError {
    fn from(e: EnqueueError) -> Self {
        match e {
            EnqueueError::Invalid(e) => HandleError::Reject(e.to_string()),
            EnqueueError::Db(e) => e.into(),
        }
    }
}

/// What a service does with an event. Runs inside the transaction that
/// also records the event in the inbox; return an error to roll back.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// Creates (or updates) the durable consumer.
pub async fn ensure(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<jetstream::consumer::Consumer<pull::Config>, async_nats::Error> {
    Ok(js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some(spec.durable.clone()),
                filter_subjects: spec.filter_subjects.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                max_deliver: spec.max_deliver,
                max_ack_pending: 1000,
                ..Default::default()
            },
            EVENTS_STREAM,
        )
        .await?)
}

/// Consumes until `cancel` fires. A message being processed when it fires
/// is finished (committed and acked) first.
pub async fn run<H: Handler>(
    js: jetstream::Context,
    pool: PgPool,
    spec: ConsumerSpec,
    handler: Arc<H>,
    outbox: Option<Outbox>,
    cancel: CancellationToken,
) -> Result<(), async_nats::Error> {
    let consumer = ensure(&js, &spec).await?;
    while !cancel.is_cancelled() {
        let mut messages = match consumer
            .stream()
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %spec.durable, error = %e, "cannot pull; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = cancel.cancelled() => break,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = cancel.cancelled() => return Ok(()),
            };
            match next {
                Some(Ok(msg)) => {
                    process(&js, &pool, &spec, handler.as_ref(), outbox.as_ref(), msg).await
                }
                Some(Err(e)) => {
                    tracing::warn!(consumer = %spec.durable, error = %e, "pull error");
                    break;
                }
                None => break,
            }
        }
    }
    Ok(())
}

enum Outcome {
    Done,
    Duplicate,
    Retry(String),
    Dead(String),
}

async fn process<H: Handler>(
    js: &jetstream::Context,
    pool: &PgPool,
    spec: &ConsumerSpec,
    handler: &H,
    outbox: Option<&Outbox>,
    msg: jetstream::Message,
) {
    let (attempt, stream_seq) = msg
        .info()
        .map(|i| (i.delivered, i.stream_sequence))
        .unwrap_or((1, 0));
    let span = tracing::info_span!(
        "consume",
        consumer = %spec.durable,
        subject = %msg.subject,
        stream_seq,
        attempt,
        "messaging.system" = "nats",
    );
    trace::link_span(&span, msg.headers.as_ref());
    let started = std::time::Instant::now();

    let outcome = async {
        let event = match decode_event(&msg.payload) {
            Ok(e) => e,
            Err(e) => return Outcome::Dead(e),
        };
        let complaint_id = match Uuid::parse_str(&event.complaint_id) {
            Ok(id) => id,
            Err(e) => return Outcome::Dead(format!("complaint_id {:?}: {e}", event.complaint_id)),
        };
        let event_id = match Uuid::parse_str(&event.id) {
            Ok(id) => id,
            Err(e) => return Outcome::Dead(format!("event id {:?}: {e}", event.id)),
        };
        let delivery = Delivery {
            subject: msg.subject.to_string(),
            complaint_id,
            event,
            stale: false,
            attempt,
        };
        match handle_once(pool, spec, handler, event_id, delivery).await {
            Ok(true) => Outcome::Done,
            Ok(false) => Outcome::Duplicate,
            Err(HandleError::Reject(reason)) => Outcome::Dead(reason),
            Err(HandleError::Retry(reason)) if attempt >= spec.max_deliver => {
                Outcome::Dead(format!("failed {attempt} times, last: {reason}"))
            }
            Err(HandleError::Retry(reason)) => Outcome::Retry(reason),
        }
    }
    .instrument(span.clone())
    .await;

    let _enter = span.enter();
    let label = match &outcome {
        Outcome::Done => "done",
        Outcome::Duplicate => "duplicate",
        Outcome::Retry(_) => "retry",
        Outcome::Dead(_) => "dead_letter",
    };
    metrics::counter!("tousu_consumed_total", "consumer" => spec.durable.clone(), "outcome" => label)
        .increment(1);
    metrics::histogram!("tousu_consume_seconds", "consumer" => spec.durable.clone())
        .record(started.elapsed().as_secs_f64());

    let acked = match outcome {
        Outcome::Done => {
            if let Some(o) = outbox {
                o.wake();
            }
            msg.ack().await
        }
        Outcome::Duplicate => msg.ack().await,
        Outcome::Retry(reason) => {
            tracing::warn!(%reason, "processing failed; will retry");
            let delay = Duration::from_millis(200 * 2u64.pow(attempt.clamp(1, 8) as u32));
            msg.ack_with(AckKind::Nak(Some(delay))).await
        }
        Outcome::Dead(reason) => {
            tracing::error!(%reason, "moving message to the dead-letter stream");
            match dead_letter(js, spec, &msg, stream_seq, attempt, &reason).await {
                Ok(()) => msg.ack_with(AckKind::Term).await,
                // Not acked: the server redelivers it and we try again.
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = acked {
        tracing::warn!(error = %e, "ack failed; the message will be redelivered and deduplicated");
    }
}

/// Runs the handler in one transaction with the inbox insert. Returns
/// `Ok(false)` when the event was already processed.
async fn handle_once<H: Handler>(
    pool: &PgPool,
    spec: &ConsumerSpec,
    handler: &H,
    event_id: Uuid,
    mut delivery: Delivery,
) -> Result<bool, HandleError> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&spec.durable)
    .bind(event_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(false);
    }
    let (previous,): (Option<i64>,) = sqlx::query_as(
        "WITH prev AS (
             SELECT last_seq FROM consumer_position
             WHERE consumer = $1 AND complaint_id = $2 AND producer = $3
         )
         INSERT INTO consumer_position (consumer, complaint_id, producer, last_seq)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer, complaint_id, producer)
         DO UPDATE SET last_seq = GREATEST(consumer_position.last_seq, EXCLUDED.last_seq)
         RETURNING (SELECT last_seq FROM prev)",
    )
    .bind(&spec.durable)
    .bind(delivery.complaint_id)
    .bind(&delivery.event.producer)
    .bind(delivery.event.sequence as i64)
    .fetch_one(&mut *tx)
    .await?;
    delivery.stale = previous.is_some_and(|p| p >= delivery.event.sequence as i64);
    handler.handle(&mut tx, &delivery).await?;
    tx.commit().await?;
    Ok(true)
}

fn header_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect();
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// Publishes a copy of `msg` to `tousu.dlq.<consumer>` with the reason.
async fn dead_letter(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    stream_seq: u64,
    deliveries: i64,
    reason: &str,
) -> Result<(), async_nats::Error> {
    let mut headers = HeaderMap::new();
    if let Some(orig) = &msg.headers {
        for (name, values) in orig.iter() {
            if AsRef::<str>::as_ref(name)
                .eq_ignore_ascii_case(async_nats::header::NATS_MESSAGE_ID.as_ref())
            {
                continue;
            }
            for v in values {
                headers.append(name.clone(), v.clone());
            }
        }
    }
    headers.insert(DLQ_REASON, header_safe(reason).as_str());
    headers.insert(DLQ_CONSUMER, spec.durable.as_str());
    headers.insert(DLQ_SUBJECT, msg.subject.as_str());
    headers.insert(DLQ_STREAM_SEQ, stream_seq.to_string().as_str());
    headers.insert(DLQ_DELIVERIES, deliveries.to_string().as_str());
    let publish = Publish::build()
        .payload(msg.payload.clone())
        .headers(headers)
        .message_id(format!("dlq:{}:{stream_seq}", spec.durable));
    js.send_publish(format!("{DLQ_PREFIX}{}", spec.durable), publish)
        .await?
        .await?;
    Ok(())
}
