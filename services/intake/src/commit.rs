//! Group commit: every accepted submission, from every transport, is
//! committed here, many per transaction.
//!
//! Handlers validate in parallel and hand an [`Intent`] to the
//! [`Committer`]; a few worker tasks each take whatever is queued (up to
//! [`MAX_BATCH`]) and commit it in one transaction of a handful of
//! statements, whatever the batch size. Under light load a batch is one
//! submission and the answer comes after one commit; under heavy load the
//! batches grow and the cost of each commit (the WAL flush) is shared. No
//! caller hears "accepted" before its complaint is committed.
//!
//! In one transaction a batch:
//! 1. claims its dedup keys (`INSERT … ON CONFLICT DO NOTHING`): a key
//!    already taken makes that submission a duplicate, answered after the
//!    commit with the complaint the key points at;
//! 2. resolves follow-ups: a submission naming a tracking number, answering
//!    a known thread key (email Message-ID, forum topic) or inside a WeChat
//!    merge window joins that complaint instead of opening one;
//! 3. numbers the new complaints, inserts complaints, follow-ups, thread
//!    keys and the `complaint.received` / `complaint.followup` events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sqlx::PgPool;
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tousu_bus::{Outbox, Pending};
use tousu_domain::TrackingNo;
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::submission::Valid;

/// Most submissions committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Worker tasks committing batches concurrently.
const WORKERS: usize = 2;
/// Submissions waiting for a worker before callers are told to back off.
const QUEUE: usize = 8192;

/// China Standard Time: tracking numbers carry the local date of receipt.
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("valid offset"),
};

/// A validated submission, ready to commit.
#[derive(Debug, Clone)]
pub struct Intent {
    pub valid: Valid,
    /// `<channel>:<channel message id>` (or `webform:idem:<Idempotency-Key>`):
    /// a repeat answers with the first complaint.
    pub dedup_key: Option<String>,
    /// Keys later messages may answer (recorded against the complaint this
    /// submission opens or joins).
    pub thread_keys: Vec<String>,
    /// Keys this submission answers; a known one makes it a follow-up.
    pub reply_to: Vec<String>,
    /// Tracking numbers it names (an email subject `[TS…]`); a known one
    /// makes it a follow-up.
    pub tracking_refs: Vec<String>,
    /// `(key, window)`: join the complaint that registered `key` less than
    /// `window` ago, else open one and register `key` for `window` (WeChat
    /// messages of one openid).
    pub merge: Option<(String, Duration)>,
    /// How to acknowledge to the complainant (carried by the event).
    pub ack: pb::Acknowledgement,
    /// Trace context of the request, for the event.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Intent {
    /// An intent with no threading, carrying the current span's trace context.
    pub fn new(valid: Valid, dedup_key: Option<String>, ack: pb::Acknowledgement) -> Self {
        let mut tc = tousu_bus::trace::current_context();
        Intent {
            valid,
            dedup_key,
            thread_keys: Vec::new(),
            reply_to: Vec::new(),
            tracking_refs: Vec::new(),
            merge: None,
            ack,
            traceparent: tc.remove("traceparent"),
            tracestate: tc.remove("tracestate"),
        }
    }
}

/// What the caller is told once the submission is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: Uuid,
    pub tracking_no: String,
    /// The dedup key was seen before: nothing new was stored.
    pub duplicate: bool,
    /// The submission joined an existing complaint (`id`) as a follow-up.
    pub follow_up: bool,
}

/// Why a submission could not be committed: nothing was stored.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not committed: {0}")]
pub struct Unavailable(pub String);

impl From<sqlx::Error> for Unavailable {
    fn from(e: sqlx::Error) -> Self {
        Unavailable(e.to_string())
    }
}

impl From<tousu_bus::outbox::EnqueueError> for Unavailable {
    fn from(e: tousu_bus::outbox::EnqueueError) -> Self {
        Unavailable(e.to_string())
    }
}

type Answer = oneshot::Sender<Result<Receipt, Unavailable>>;

struct Job {
    intent: Intent,
    answer: Answer,
}

/// The queue in front of the commit workers.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the workers; they stop when `cancel` fires, after committing
    /// what is queued.
    pub fn start(
        pool: PgPool,
        outbox: Outbox,
        cancel: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            let worker = Worker {
                pool: pool.clone(),
                outbox: outbox.clone(),
            };
            tracker.spawn(worker.run(rx.clone(), cancel.clone()));
        }
        Committer { queue }
    }

    /// Commits `intent` (in some batch) and answers after the commit.
    pub async fn commit(&self, intent: Intent) -> Result<Receipt, Unavailable> {
        let (answer, rx) = oneshot::channel();
        self.queue
            .send(Job { intent, answer })
            .await
            .map_err(|_| Unavailable("intake is shutting down".into()))?;
        rx.await
            .map_err(|_| Unavailable("intake is shutting down".into()))?
    }
}

#[derive(Clone)]
struct Worker {
    pool: PgPool,
    outbox: Outbox,
}

impl Worker {
    async fn run(self, rx: Arc<Mutex<mpsc::Receiver<Job>>>, cancel: CancellationToken) {
        loop {
            let jobs = {
                let mut rx = rx.lock().await;
                let first = tokio::select! {
                    job = rx.recv() => job,
                    _ = cancel.cancelled() => rx.try_recv().ok(),
                };
                let Some(first) = first else { return };
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                jobs
            };
            metrics::histogram!("tousu_intake_batch_size").record(jobs.len() as f64);
            self.commit_batch(jobs).await;
        }
    }

    async fn commit_batch(&self, jobs: Vec<Job>) {
        // The same key twice in one batch: the later ones wait for the first.
        let mut firsts: Vec<Job> = Vec::with_capacity(jobs.len());
        let mut repeats: Vec<(usize, Answer)> = Vec::new();
        for job in jobs {
            let same = job.intent.dedup_key.as_ref().and_then(|k| {
                firsts
                    .iter()
                    .position(|f| f.intent.dedup_key.as_ref() == Some(k))
            });
            match same {
                Some(i) => repeats.push((i, job.answer)),
                None => firsts.push(job),
            }
        }
        let intents: Vec<&Intent> = firsts.iter().map(|j| &j.intent).collect();
        let started = std::time::Instant::now();
        let result = self.try_commit(&intents).await;
        metrics::histogram!("tousu_intake_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(receipts) => {
                for (i, answer) in repeats {
                    let _ = answer.send(Ok(Receipt {
                        duplicate: true,
                        ..receipts[i].clone()
                    }));
                }
                for (job, receipt) in firsts.into_iter().zip(receipts) {
                    let _ = job.answer.send(Ok(receipt));
                }
                self.outbox.wake();
            }
            Err(e) => {
                tracing::error!(error = %e, "batch not committed");
                for (_, answer) in repeats {
                    let _ = answer.send(Err(e.clone()));
                }
                for job in firsts {
                    let _ = job.answer.send(Err(e.clone()));
                }
            }
        }
    }

    async fn try_commit(&self, intents: &[&Intent]) -> Result<Vec<Receipt>, Unavailable> {
        let now = OffsetDateTime::now_utc();
        let n = intents.len();
        let new_ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let mut tx = self.pool.begin().await?;

        // 1. Dedup keys, claimed in key order (no deadlock between batches).
        let mut keyed: Vec<(&str, Uuid)> = intents
            .iter()
            .zip(&new_ids)
            .filter_map(|(i, id)| i.dedup_key.as_deref().map(|k| (k, *id)))
            .collect();
        keyed.sort_unstable();
        let fresh: HashSet<String> = if keyed.is_empty() {
            HashSet::new()
        } else {
            let keys: Vec<&str> = keyed.iter().map(|k| k.0).collect();
            let ids: Vec<Uuid> = keyed.iter().map(|k| k.1).collect();
            sqlx::query_scalar(
                "INSERT INTO dedup_keys (key, complaint_id)
                 SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING RETURNING key",
            )
            .bind(&keys)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
        };
        let duplicate = |i: &Intent| {
            i.dedup_key
                .as_ref()
                .is_some_and(|k| !fresh.contains(k.as_str()))
        };

        // 2. Follow-up targets among existing complaints.
        let mut lookup_keys: Vec<&str> = Vec::new();
        let mut lookup_tracking: Vec<&str> = Vec::new();
        for i in intents.iter().filter(|i| !duplicate(i)) {
            lookup_keys.extend(i.reply_to.iter().map(String::as_str));
            lookup_keys.extend(i.merge.as_ref().map(|m| m.0.as_str()));
            lookup_tracking.extend(i.tracking_refs.iter().map(String::as_str));
        }
        let mut by_key: HashMap<String, Target> = HashMap::new();
        let mut by_tracking: HashMap<String, Target> = HashMap::new();
        if !lookup_keys.is_empty() {
            let rows: Vec<(String, Uuid, String)> = sqlx::query_as(
                "SELECT t.key, c.id, c.tracking_no FROM thread_keys t JOIN complaints c ON c.id = t.complaint_id
                 WHERE t.key = ANY($1) AND (t.expires_at IS NULL OR t.expires_at > $2)",
            )
            .bind(&lookup_keys)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for (key, id, tracking_no) in rows {
                by_key.insert(key, Target::Existing(id, tracking_no));
            }
        }
        if !lookup_tracking.is_empty() {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT id, tracking_no FROM complaints WHERE tracking_no = ANY($1)",
            )
            .bind(&lookup_tracking)
            .fetch_all(&mut *tx)
            .await?;
            for (id, tracking_no) in rows {
                by_tracking.insert(tracking_no.clone(), Target::Existing(id, tracking_no));
            }
        }

        // In order, so a later submission can join one opened earlier in
        // the same batch.
        let mut outcome: Vec<Outcome> = Vec::with_capacity(n);
        let mut registered: Vec<(String, Target, Option<OffsetDateTime>)> = Vec::new();
        for (idx, i) in intents.iter().enumerate() {
            if duplicate(i) {
                outcome.push(Outcome::Duplicate);
                continue;
            }
            let target = i
                .tracking_refs
                .iter()
                .find_map(|t| by_tracking.get(t))
                .or_else(|| i.reply_to.iter().find_map(|k| by_key.get(k)))
                .or_else(|| i.merge.as_ref().and_then(|(k, _)| by_key.get(k)))
                .cloned();
            let this = target.clone().unwrap_or(Target::New(idx));
            for key in &i.thread_keys {
                by_key.insert(key.clone(), this.clone());
                registered.push((key.clone(), this.clone(), None));
            }
            if let Some((key, window)) = &i.merge {
                let expires = now + *window;
                by_key.insert(key.clone(), this.clone());
                registered.push((key.clone(), this.clone(), Some(expires)));
            }
            outcome.push(match target {
                Some(t) => Outcome::FollowUp(t),
                None => Outcome::New,
            });
        }

        // 3. Tracking numbers for the new complaints.
        let new_count = outcome.iter().filter(|o| matches!(o, Outcome::New)).count();
        let day = now.to_offset(CST).date();
        let mut tracking: HashMap<usize, String> = HashMap::new();
        if new_count > 0 {
            let (last,): (i64,) = sqlx::query_as(
                "INSERT INTO tracking_sequence (day, last_seq) VALUES ($1, $2)
                 ON CONFLICT (day) DO UPDATE SET last_seq = tracking_sequence.last_seq + EXCLUDED.last_seq
                 RETURNING last_seq",
            )
            .bind(day)
            .bind(new_count as i64)
            .fetch_one(&mut *tx)
            .await?;
            let mut seq = last - new_count as i64;
            for (idx, o) in outcome.iter().enumerate() {
                if matches!(o, Outcome::New) {
                    seq += 1;
                    let no = TrackingNo::new(day, seq as u64)
                        .map_err(|e| Unavailable(format!("tracking number: {e}")))?;
                    tracking.insert(idx, no.to_string());
                }
            }
        }
        let resolve = |t: &Target| -> (Uuid, String) {
            match t {
                Target::Existing(id, no) => (*id, no.clone()),
                Target::New(idx) => (new_ids[*idx], tracking[idx].clone()),
            }
        };

        // 4. Complaints.
        let received_at = Some(tousu_bus::to_timestamp(now));
        let mut events: Vec<Pending> = Vec::new();
        let (mut c_ids, mut c_nos, mut c_channels, mut c_msg_ids, mut c_records) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (idx, i) in intents.iter().enumerate() {
            if !matches!(outcome[idx], Outcome::New) {
                continue;
            }
            let complaint = pb::Complaint {
                id: new_ids[idx].to_string(),
                tracking_no: tracking[&idx].clone(),
                channel: tousu_bus::channel_to_pb(i.valid.channel) as i32,
                channel_message_id: i.valid.channel_message_id.clone(),
                complainant: Some(i.valid.complainant.clone()),
                content: Some(i.valid.content.clone()),
                classification: None,
                assignment: None,
                status: pb::Status::Received as i32,
                received_at,
            };
            c_ids.push(new_ids[idx]);
            c_nos.push(tracking[&idx].clone());
            c_channels.push(i.valid.channel.as_str());
            c_msg_ids.push(Some(i.valid.channel_message_id.clone()).filter(|s| !s.is_empty()));
            c_records.push(complaint.encode_to_vec());
            events.push(Pending {
                complaint_id: new_ids[idx],
                payload: pb::event::Payload::Received(pb::ComplaintReceived {
                    complaint: Some(complaint),
                    ack: Some(i.ack.clone()),
                }),
                traceparent: i.traceparent.clone(),
                tracestate: i.tracestate.clone(),
            });
        }
        if !c_ids.is_empty() {
            sqlx::query(
                "INSERT INTO complaints (id, tracking_no, channel, channel_message_id, record, received_at)
                 SELECT i, n, c, m, r, $6 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(i, n, c, m, r)",
            )
            .bind(&c_ids)
            .bind(&c_nos)
            .bind(&c_channels)
            .bind(&c_msg_ids)
            .bind(&c_records)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        // 5. Follow-ups, with the count each target has afterwards.
        let follow_ups: Vec<(usize, Uuid, String)> = outcome
            .iter()
            .enumerate()
            .filter_map(|(idx, o)| match o {
                Outcome::FollowUp(t) => {
                    let (id, no) = resolve(t);
                    Some((idx, id, no))
                }
                _ => None,
            })
            .collect();
        if !follow_ups.is_empty() {
            let mut per_target: Vec<(Uuid, i32)> = Vec::new();
            for (_, id, _) in &follow_ups {
                match per_target.iter_mut().find(|(t, _)| t == id) {
                    Some((_, k)) => *k += 1,
                    None => per_target.push((*id, 1)),
                }
            }
            per_target.sort_unstable();
            let totals: HashMap<Uuid, i32> = sqlx::query_as(
                "UPDATE complaints c SET follow_ups = c.follow_ups + u.k
                 FROM unnest($1::uuid[], $2::int[]) AS u(id, k) WHERE c.id = u.id
                 RETURNING c.id, c.follow_ups",
            )
            .bind(per_target.iter().map(|p| p.0).collect::<Vec<_>>())
            .bind(per_target.iter().map(|p| p.1).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            // Number each target's follow-ups in batch order.
            let mut seen: HashMap<Uuid, i32> = HashMap::new();
            let (mut f_ids, mut f_targets, mut f_channels, mut f_msg_ids, mut f_records) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (idx, target, tracking_no) in &follow_ups {
                let i = intents[*idx];
                let k = per_target
                    .iter()
                    .find(|p| p.0 == *target)
                    .map_or(1, |p| p.1);
                let nth = seen.entry(*target).or_insert(0);
                *nth += 1;
                let count = totals.get(target).copied().unwrap_or(k) - k + *nth;
                let content = &i.valid.content;
                let text = if content.title.is_empty() {
                    content.description.clone()
                } else {
                    format!("{}\n\n{}", content.title, content.description)
                };
                let record = pb::ComplaintFollowedUp {
                    tracking_no: tracking_no.clone(),
                    channel: tousu_bus::channel_to_pb(i.valid.channel) as i32,
                    channel_message_id: i.valid.channel_message_id.clone(),
                    author: Some(i.valid.complainant.clone()),
                    text,
                    attachments: content.attachments.clone(),
                    received_at,
                    follow_ups: count.max(1) as u32,
                    ack: Some(i.ack.clone()),
                };
                f_ids.push(new_ids[*idx]);
                f_targets.push(*target);
                f_channels.push(i.valid.channel.as_str());
                f_msg_ids.push(Some(i.valid.channel_message_id.clone()).filter(|s| !s.is_empty()));
                f_records.push(record.encode_to_vec());
                events.push(Pending {
                    complaint_id: *target,
                    payload: pb::event::Payload::FollowedUp(record),
                    traceparent: i.traceparent.clone(),
                    tracestate: i.tracestate.clone(),
                });
            }
            sqlx::query(
                "INSERT INTO follow_ups (id, complaint_id, channel, channel_message_id, record, received_at)
                 SELECT i, t, c, m, r, $6 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[]) AS u(i, t, c, m, r)",
            )
            .bind(&f_ids)
            .bind(&f_targets)
            .bind(&f_channels)
            .bind(&f_msg_ids)
            .bind(&f_records)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Their dedup keys point at the complaint they joined.
            let (d_keys, d_ids): (Vec<&str>, Vec<Uuid>) = follow_ups
                .iter()
                .filter_map(|(idx, target, _)| {
                    intents[*idx].dedup_key.as_deref().map(|k| (k, *target))
                })
                .unzip();
            if !d_keys.is_empty() {
                sqlx::query(
                    "UPDATE dedup_keys d SET complaint_id = u.id
                     FROM unnest($1::text[], $2::uuid[]) AS u(key, id) WHERE d.key = u.key",
                )
                .bind(&d_keys)
                .bind(&d_ids)
                .execute(&mut *tx)
                .await?;
            }
        }

        // 6. Thread keys (last registration of a key in the batch wins). A
        // key stays with its complaint; an expired merge key moves on.
        let mut keys: HashMap<String, (Uuid, Option<OffsetDateTime>)> = HashMap::new();
        for (key, target, expires) in registered {
            keys.insert(key, (resolve(&target).0, expires));
        }
        if !keys.is_empty() {
            let mut rows: Vec<(String, (Uuid, Option<OffsetDateTime>))> =
                keys.into_iter().collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let k: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let ids: Vec<Uuid> = rows.iter().map(|r| r.1.0).collect();
            let exp: Vec<Option<OffsetDateTime>> = rows.iter().map(|r| r.1.1).collect();
            sqlx::query(
                "INSERT INTO thread_keys (key, complaint_id, expires_at)
                 SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[])
                 ON CONFLICT (key) DO UPDATE SET complaint_id = EXCLUDED.complaint_id, expires_at = EXCLUDED.expires_at
                 WHERE thread_keys.complaint_id = EXCLUDED.complaint_id
                    OR (thread_keys.expires_at IS NOT NULL AND thread_keys.expires_at <= $4)",
            )
            .bind(&k)
            .bind(&ids)
            .bind(&exp)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        // 7. Events, then commit.
        self.outbox.enqueue_many(&mut tx, "", events).await?;
        tx.commit().await?;

        // Duplicates answer with the complaint their key points at, and say
        // whether the first copy joined it as a follow-up.
        let dups: Vec<&Intent> = intents.iter().copied().filter(|i| duplicate(i)).collect();
        let originals: HashMap<String, (Uuid, String, bool)> = if dups.is_empty() {
            HashMap::new()
        } else {
            let keys: Vec<&str> = dups.iter().filter_map(|i| i.dedup_key.as_deref()).collect();
            let channels: Vec<&str> = dups.iter().map(|i| i.valid.channel.as_str()).collect();
            let msgs: Vec<&str> = dups
                .iter()
                .map(|i| i.valid.channel_message_id.as_str())
                .collect();
            sqlx::query_as::<_, (String, Uuid, String, bool)>(
                "SELECT d.key, c.id, c.tracking_no,
                        EXISTS (SELECT 1 FROM follow_ups f WHERE f.complaint_id = c.id
                                AND f.channel = u.channel AND f.channel_message_id = u.msg)
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(key, channel, msg)
                 JOIN dedup_keys d ON d.key = u.key JOIN complaints c ON c.id = d.complaint_id",
            )
            .bind(&keys)
            .bind(&channels)
            .bind(&msgs)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(k, id, no, follow_up)| (k, (id, no, follow_up)))
            .collect()
        };
        let mut receipts = Vec::with_capacity(n);
        for (idx, i) in intents.iter().enumerate() {
            receipts.push(match &outcome[idx] {
                Outcome::Duplicate => {
                    let key = i.dedup_key.as_deref().unwrap_or_default();
                    let (id, tracking_no, follow_up) =
                        originals.get(key).cloned().ok_or_else(|| {
                            Unavailable(format!("dedup key {key} points at no complaint"))
                        })?;
                    Receipt {
                        id,
                        tracking_no,
                        duplicate: true,
                        follow_up,
                    }
                }
                Outcome::New => Receipt {
                    id: new_ids[idx],
                    tracking_no: tracking[&idx].clone(),
                    duplicate: false,
                    follow_up: false,
                },
                Outcome::FollowUp(t) => {
                    let (id, tracking_no) = resolve(t);
                    Receipt {
                        id,
                        tracking_no,
                        duplicate: false,
                        follow_up: true,
                    }
                }
            });
        }
        for (idx, i) in intents.iter().enumerate() {
            let outcome = match outcome[idx] {
                Outcome::Duplicate => "duplicate",
                Outcome::New => "new",
                Outcome::FollowUp(_) => "follow_up",
            };
            metrics::counter!("tousu_intake_accepted_total",
                "channel" => i.valid.channel.as_str(), "outcome" => outcome)
            .increment(1);
        }
        Ok(receipts)
    }
}

/// The complaint a follow-up joins: one committed before, or one this
/// batch opens (by position).
#[derive(Debug, Clone)]
enum Target {
    Existing(Uuid, String),
    New(usize),
}

#[derive(Debug)]
enum Outcome {
    Duplicate,
    New,
    FollowUp(Target),
}
