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
    /// Track the last sequence seen per complaint and producer
    /// (`consumer_position`) to flag [`Delivery::stale`]. A consumer whose
    /// handler never looks at `stale` turns it off and saves a write per
    /// event.
    pub order: bool,
    /// Events handled in one transaction when several are waiting (1: each
    /// on its own). A batch shares one inbox insert and one commit; when
    /// any of its events fails, the batch is rolled back and each event is
    /// handled on its own, so a failure affects only its event. Handlers
    /// of a batching consumer see the batch's events in complaint order.
    pub batch: usize,
}

impl ConsumerSpec {
    pub fn new(durable: &str, filter_subjects: &[&str]) -> Self {
        Self {
            durable: durable.to_owned(),
            filter_subjects: filter_subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(10),
            order: true,
            batch: 1,
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
    /// overwrite newer state. Always false without [`ConsumerSpec::order`].
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

    /// Called once `handle`'s transaction has committed (not for a
    /// duplicate, nor when it failed): what it wrote is now visible to
    /// others. Quick and infallible (e.g. waking a task).
    fn committed(&self) {}
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
        let messages = match consumer
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
        // Whatever has arrived, up to `batch` messages, without waiting for more.
        let mut chunks = messages.ready_chunks(spec.batch.max(1));
        loop {
            let next = tokio::select! {
                next = chunks.next() => next,
                _ = cancel.cancelled() => return Ok(()),
            };
            let Some(chunk) = next else { break };
            let mut ready = Vec::with_capacity(chunk.len());
            let mut failed = false;
            for m in chunk {
                match m {
                    Ok(msg) => ready.push(msg),
                    Err(e) => {
                        tracing::warn!(consumer = %spec.durable, error = %e, "pull error");
                        failed = true;
                    }
                }
            }
            let ctx = Ctx {
                js: &js,
                pool: &pool,
                spec: &spec,
                handler: handler.as_ref(),
                outbox: outbox.as_ref(),
            };
            process_batch(&ctx, ready).await;
            if failed {
                break;
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

/// What processing a message needs.
struct Ctx<'a, H> {
    js: &'a jetstream::Context,
    pool: &'a PgPool,
    spec: &'a ConsumerSpec,
    handler: &'a H,
    outbox: Option<&'a Outbox>,
}

/// A message, read.
struct Item {
    msg: jetstream::Message,
    span: tracing::Span,
    started: std::time::Instant,
    attempt: i64,
    stream_seq: u64,
    /// The event and its id, or why it can never be processed.
    read: Result<(Uuid, Delivery), String>,
}

fn read(spec: &ConsumerSpec, msg: jetstream::Message) -> Item {
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
    let read = (|| {
        let event = decode_event(&msg.payload)?;
        let complaint_id = Uuid::parse_str(&event.complaint_id)
            .map_err(|e| format!("complaint_id {:?}: {e}", event.complaint_id))?;
        let event_id =
            Uuid::parse_str(&event.id).map_err(|e| format!("event id {:?}: {e}", event.id))?;
        Ok((
            event_id,
            Delivery {
                subject: msg.subject.to_string(),
                complaint_id,
                event,
                stale: false,
                attempt,
            },
        ))
    })();
    Item {
        msg,
        span,
        started: std::time::Instant::now(),
        attempt,
        stream_seq,
        read,
    }
}

/// Processes messages that arrived together: in one transaction when the
/// consumer batches and there are several, else each on its own.
async fn process_batch<H: Handler>(ctx: &Ctx<'_, H>, msgs: Vec<jetstream::Message>) {
    let mut items: Vec<Item> = msgs.into_iter().map(|m| read(ctx.spec, m)).collect();
    if ctx.spec.batch > 1 && items.iter().filter(|i| i.read.is_ok()).count() > 1 {
        // Complaint order: batches lock complaints' rows in one order, so
        // two batches wait for each other instead of deadlocking.
        items.sort_by_key(|i| i.read.as_ref().map(|(_, d)| d.complaint_id).ok());
        match handle_batch(ctx, &mut items).await {
            Ok(fresh) => {
                for (item, fresh) in items.into_iter().zip(fresh) {
                    let outcome = match (&item.read, fresh) {
                        (Err(reason), _) => Outcome::Dead(reason.clone()),
                        (Ok(_), true) => Outcome::Done,
                        (Ok(_), false) => Outcome::Duplicate,
                    };
                    settle(ctx, item, outcome).await;
                }
                return;
            }
            Err(e) => {
                tracing::debug!(consumer = %ctx.spec.durable, error = %e, events = items.len(), "batch rolled back; handling its events one by one");
            }
        }
    }
    for mut item in items {
        let outcome = match &mut item.read {
            Err(reason) => Outcome::Dead(reason.clone()),
            Ok((event_id, delivery)) => {
                let result = handle_once(ctx, *event_id, delivery)
                    .instrument(item.span.clone())
                    .await;
                match result {
                    Ok(true) => Outcome::Done,
                    Ok(false) => Outcome::Duplicate,
                    Err(HandleError::Reject(reason)) => Outcome::Dead(reason),
                    Err(HandleError::Retry(reason)) if item.attempt >= ctx.spec.max_deliver => {
                        Outcome::Dead(format!("failed {} times, last: {reason}", item.attempt))
                    }
                    Err(HandleError::Retry(reason)) => Outcome::Retry(reason),
                }
            }
        };
        settle(ctx, item, outcome).await;
    }
}

/// Handles a batch's readable events in one transaction; for each item,
/// whether it was handled now (false: already processed, or unreadable).
async fn handle_batch<H: Handler>(
    ctx: &Ctx<'_, H>,
    items: &mut [Item],
) -> Result<Vec<bool>, HandleError> {
    let mut tx = ctx.pool.begin().await?;
    let ids: Vec<Uuid> = items
        .iter()
        .filter_map(|i| i.read.as_ref().ok().map(|(id, _)| *id))
        .collect();
    let fresh: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(&ctx.spec.durable)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut fresh: std::collections::HashSet<Uuid> = fresh.into_iter().collect();
    let mut handled = Vec::with_capacity(items.len());
    for item in items.iter_mut() {
        let Ok((event_id, delivery)) = &mut item.read else {
            handled.push(false);
            continue;
        };
        // The same event twice in one batch: the second is a duplicate.
        let first = fresh.remove(event_id);
        if first {
            if ctx.spec.order {
                delivery.stale = is_stale(&mut tx, ctx.spec, delivery).await?;
            }
            ctx.handler
                .handle(&mut tx, delivery)
                .instrument(item.span.clone())
                .await?;
        }
        handled.push(first);
    }
    tx.commit().await?;
    Ok(handled)
}

/// Acks, naks or dead-letters a processed message, and counts it.
async fn settle<H: Handler>(ctx: &Ctx<'_, H>, item: Item, outcome: Outcome) {
    let Item {
        msg,
        span,
        started,
        attempt,
        stream_seq,
        ..
    } = item;
    let spec = ctx.spec;
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
            ctx.handler.committed();
            if let Some(o) = ctx.outbox {
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
            match dead_letter(ctx.js, spec, &msg, stream_seq, attempt, &reason).await {
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
    ctx: &Ctx<'_, H>,
    event_id: Uuid,
    delivery: &mut Delivery,
) -> Result<bool, HandleError> {
    let (spec, handler) = (ctx.spec, ctx.handler);
    let mut tx = ctx.pool.begin().await?;
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
    if spec.order {
        delivery.stale = is_stale(&mut tx, spec, delivery).await?;
    }
    handler.handle(&mut tx, delivery).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records the delivery's sequence for its complaint and producer; whether
/// a later one was already seen.
async fn is_stale(
    conn: &mut PgConnection,
    spec: &ConsumerSpec,
    delivery: &Delivery,
) -> sqlx::Result<bool> {
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
    .fetch_one(conn)
    .await?;
    Ok(previous.is_some_and(|p| p >= delivery.event.sequence as i64))
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
