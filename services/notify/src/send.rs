//! The sender: claims due deliveries, sends them on their channel, retries
//! with backoff, breaks circuits, dead-letters, logs every attempt and
//! publishes `notify.delivered` / `notify.failed`.
//!
//! # Claims are leases
//!
//! A replica claims due `pending` rows (`next_attempt_at <= now()`, `FOR
//! UPDATE SKIP LOCKED`) in one short statement that moves their
//! `next_attempt_at` to `now() + lease` (the send timeout plus a margin)
//! and keeps them `pending`. The new `next_attempt_at` is the claim's
//! token: the outcome is written in a later transaction only where the row
//! still has it. So:
//! - a replica that dies mid-send leaves its rows `pending`; they are due
//!   again when the lease ends and another replica sends them (the
//!   recipient may then get the message twice: **at least once**);
//! - when nothing fails a row is sent once: no other replica can claim it
//!   before its lease ends, and a send (bounded by `notify_timeout_secs`)
//!   ends well before that;
//! - a row that stopped being `pending` (`cancelled` by an ack) is not
//!   claimed, and an outcome never overwrites a status another writer set.
//!
//! # Wake-up
//!
//! The planner pokes an [`Announcer`] once its transaction has committed
//! (other writers call [`announce`] in the transaction that inserts
//! deliveries); every replica `LISTEN`s on [`CHANNEL`] and claims at once,
//! and polls every 250 ms for retries and ladder steps coming due (and
//! for announcements lost while its listener reconnected). A finished send
//! wakes the dispatcher too, so a backlog drains without waiting.
//!
//! # Claiming ahead
//!
//! A claim takes more rows than there are free workers: up to [`AHEAD`] ×
//! `notify_workers` rows held per replica (queued or being sent), and per
//! endpoint [`AHEAD`] × its share of the workers, so one round trip to
//! Postgres feeds many sends. A worker that finishes a send takes the next
//! queued row itself: the longest-waiting row of an endpoint with room in
//! its share. A queued row is sent only while its lease has the send
//! timeout plus 5 s left; otherwise, and when its endpoint's circuit opens,
//! it is given back (due again) instead of waiting in memory. A stopping
//! replica gives back everything it has queued.
//!
//! # Concurrency and endpoints
//!
//! `notify_workers` sends run at once per replica, at most half of them
//! (rounded up) to one endpoint (`deliveries.endpoint`), so a slow or
//! failing endpoint cannot hold every worker while other recipients wait.
//! Each endpoint has a circuit breaker ([`crate::breaker`], in memory per
//! replica): 5 consecutive transient failures open it for 30 s; while open
//! its due deliveries are moved to the end of the cool-down without
//! counting an attempt; then one trial send decides.
//!
//! # Retries
//!
//! A transient failure (5xx, 429, timeout, connection error) is retried
//! after an exponential backoff with full jitter — uniform in `[0, min(5
//! min, 1 s × 2^(n−1))]` after the n-th attempt — and never earlier than
//! the endpoint's `Retry-After` (capped at a day). A permanent failure (4xx,
//! bad address, channel not configured) goes straight to `dead`, as does
//! the `notify_max_attempts`-th attempt of a round. A dead delivery put
//! back with `POST /v1/deliveries/{id}/retry` keeps its attempts and gets
//! the rest of its round (a full round after running out of attempts).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tousu_bus::{Outbox, Payload, Pending};
use tousu_kit::Config;
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::breaker::{Breakers, State, Verdict};
use crate::channels::{Channels, SendError, Sent};
use crate::model::Message;
use crate::plan::Fallback;

/// The channel a transaction that adds deliveries notifies (at commit), so
/// every replica's sender looks at once instead of at its next poll.
pub const CHANNEL: &str = "tousu_notify_deliveries";

/// Tells the senders there is something to send; call in the transaction
/// that inserts deliveries.
pub async fn announce(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Wakes the senders after a commit that added deliveries, instead of a
/// `pg_notify` inside that transaction. The planner's consumers commit
/// hundreds of times a second, and in Postgres every transaction that
/// notifies holds the notification queue's lock until its commit is
/// flushed, which lines those commits up one behind the other. So: this
/// replica's dispatcher is woken at once, and the other replicas by one
/// `pg_notify` (its own statement) for whatever was poked while the
/// previous one was under way. Call [`Announcer::poke`] after the commit.
#[derive(Clone, Default)]
pub struct Announcer {
    local: Arc<Notify>,
    remote: Arc<Notify>,
}

impl Announcer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deliveries were committed: senders, look.
    pub fn poke(&self) {
        self.local.notify_one();
        self.remote.notify_one();
    }
}

/// Sends the [`Announcer`]'s `pg_notify`s.
async fn announce_remote(pool: PgPool, remote: Arc<Notify>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = remote.notified() => {}
            _ = cancel.cancelled() => return,
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            // The other replicas find the rows at their next poll.
            tracing::warn!(error = %e, "announcing deliveries failed");
        }
    }
}

/// How long the dispatcher lets wake-ups gather before it claims.
const GATHER: Duration = Duration::from_millis(2);

/// Rows claimed ahead, as a multiple of the workers (and of an endpoint's
/// share of them): one claim's round trip feeds many sends.
pub const AHEAD: usize = 8;

/// A queued row is sent only with this much of its lease left beyond the
/// send timeout; otherwise it is given back (due again at once).
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long the finisher lets outcomes gather into one transaction.
const FINISH_GATHER: Duration = Duration::from_millis(10);

/// Longest `Retry-After` honored; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How the sender behaves: derived from the settings, plus fixed values.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Concurrent sends of this replica (`notify_workers`).
    pub workers: usize,
    /// Concurrent sends to one endpoint: half the workers, rounded up.
    pub endpoint_cap: usize,
    /// Rows claimed ahead and held by this replica (queued or being sent):
    /// [`AHEAD`] × the workers, and per endpoint [`AHEAD`] × its cap.
    pub hold: usize,
    pub endpoint_hold: usize,
    /// One send's timeout (`notify_timeout_secs`).
    pub timeout: Duration,
    /// How long a claim holds a row: the timeout plus 30 s.
    pub lease: Duration,
    /// Attempts in a round before `dead` (`notify_max_attempts`).
    pub max_attempts: u32,
    /// Backoff after the first failed attempt (1 s), doubling, up to `backoff_cap` (5 min).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Consecutive failures that open an endpoint's circuit (5), and for how long (30 s).
    pub breaker_threshold: u32,
    pub breaker_cool_down: Duration,
    /// Poll for due rows without an announcement (250 ms).
    pub poll: Duration,
}

impl Tuning {
    pub fn from_config(config: &Config) -> Self {
        let workers = (config.notify_workers as usize).max(1);
        let timeout = Duration::from_secs(config.notify_timeout_secs.max(1));
        Tuning {
            workers,
            endpoint_cap: workers.div_ceil(2),
            hold: workers * AHEAD,
            endpoint_hold: workers.div_ceil(2) * AHEAD,
            timeout,
            lease: timeout + Duration::from_secs(30),
            max_attempts: config.notify_max_attempts.max(1),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(30),
            poll: Duration::from_millis(250),
        }
    }
}

/// A uniform draw in `[0, 1)` from the random bits of a v4 UUID (the low
/// 53 bits, clear of the version and variant bits).
pub fn jitter() -> f64 {
    let bits = (Uuid::new_v4().as_u128() & ((1u128 << 53) - 1)) as u64;
    bits as f64 / (1u64 << 53) as f64
}

/// The wait after the `n`-th failed attempt of a round (1-based):
/// `jitter × min(cap, base × 2^(n−1))` (full jitter), `jitter` in `[0, 1)`.
pub fn backoff(n: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = n.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exp).min(cap);
    let j = if (0.0..=1.0).contains(&jitter) {
        jitter
    } else {
        0.5
    };
    ceiling.mul_f64(j)
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again after this long.
    Retry(Duration),
    Dead,
}

/// The step after attempt number `attempts` (all attempts so far,
/// this one included) ended with `result`.
pub fn next_step(
    attempts: u32,
    result: &Result<Sent, SendError>,
    tuning: &Tuning,
    jitter: f64,
) -> Next {
    let max = tuning.max_attempts.max(1);
    let in_round = (attempts.max(1) - 1) % max + 1;
    match result {
        Ok(_) => Next::Delivered,
        Err(SendError::Permanent { .. }) => Next::Dead,
        Err(SendError::Transient { .. }) if in_round >= max => Next::Dead,
        Err(SendError::Transient { retry_after, .. }) => {
            let wait = backoff(in_round, tuning.backoff_base, tuning.backoff_cap, jitter);
            let floor = retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER));
            Next::Retry(wait.max(floor))
        }
    }
}

/// The wall-clock instant `at` stands for.
fn wall(at: Instant) -> OffsetDateTime {
    let now = Instant::now();
    let wall = OffsetDateTime::now_utc();
    if at >= now {
        wall + (at - now)
    } else {
        wall - (now - at)
    }
}

/// Sends in flight, rows claimed ahead and breakers per endpoint, for this
/// replica.
struct Gate {
    breakers: Breakers,
    inflight: HashMap<String, usize>,
    /// Claimed rows waiting for a send slot, per endpoint, oldest first.
    queued: HashMap<String, VecDeque<Claimed>>,
    /// Rows held here: queued or being sent.
    held: usize,
    /// Claimed rows to give back (`id`, claim token, new `next_attempt_at`):
    /// an endpoint's circuit opened, or a row's lease ran too short to send.
    returning: Vec<(i64, OffsetDateTime, OffsetDateTime)>,
    /// When the due rows of an open endpoint were last deferred.
    deferred: HashMap<String, Instant>,
}

/// Which endpoints a claim leaves out and how many rows it may take of the
/// others.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    excluded: Vec<String>,
    endpoints: Vec<String>,
    slots: Vec<i32>,
}

impl Gate {
    fn new(tuning: &Tuning) -> Self {
        Gate {
            breakers: Breakers::new(tuning.breaker_threshold, tuning.breaker_cool_down),
            inflight: HashMap::new(),
            queued: HashMap::new(),
            held: 0,
            returning: Vec::new(),
            deferred: HashMap::new(),
        }
    }

    /// Rows of `endpoint` held here (queued or being sent).
    fn held_by(&self, endpoint: &str) -> usize {
        self.inflight.get(endpoint).copied().unwrap_or(0)
            + self.queued.get(endpoint).map_or(0, VecDeque::len)
    }

    /// What a claim may take: open circuits are left out, a half-open one
    /// gets its one trial (when nothing of it is held), every other endpoint
    /// up to `hold` rows held.
    fn plan(&self, now: Instant, hold: usize) -> Plan {
        let mut plan = Plan::default();
        for (e, open) in self.breakers.not_closed(now) {
            let busy = self.held_by(&e);
            match open {
                None if busy == 0 && self.breakers.state(&e, now) == State::HalfOpen(false) => {
                    plan.endpoints.push(e);
                    plan.slots.push(1);
                }
                _ => plan.excluded.push(e),
            }
        }
        let busy = self.inflight.keys().chain(self.queued.keys());
        for e in busy {
            if plan.excluded.contains(e) || plan.endpoints.contains(e) {
                continue;
            }
            match hold.saturating_sub(self.held_by(e)) {
                0 => plan.excluded.push(e.clone()),
                free => {
                    plan.endpoints.push(e.clone());
                    plan.slots.push(i32::try_from(free).unwrap_or(i32::MAX));
                }
            }
        }
        plan
    }

    /// Queues claimed rows for their sends.
    fn queue(&mut self, rows: Vec<Claimed>) {
        self.held += rows.len();
        for row in rows {
            self.queued
                .entry(row.endpoint.clone())
                .or_default()
                .push_back(row);
        }
    }

    /// The next queued row to send, its endpoint's place taken: the
    /// longest-waiting row of an endpoint whose circuit and share of the
    /// workers allow, with enough of its lease left for a whole send
    /// (`min_lease`). Rows of an open circuit, and rows whose lease ran
    /// short, are set aside to be given back (`returning`).
    fn next(
        &mut self,
        now: Instant,
        wall_now: OffsetDateTime,
        cap: usize,
        min_lease: Duration,
    ) -> Option<Claimed> {
        let open: Vec<(String, Instant)> = self
            .queued
            .keys()
            .filter_map(|e| self.breakers.open_until(e, now).map(|u| (e.clone(), u)))
            .collect();
        for (e, until) in open {
            let rows = self.queued.remove(&e).unwrap_or_default();
            self.held -= rows.len();
            self.returning
                .extend(rows.into_iter().map(|r| (r.id, r.token, wall(until))));
        }
        loop {
            // The endpoint whose oldest queued row has waited longest, among
            // those with room in their share and a circuit that lets a send
            // through (first come, first served across endpoints).
            let e = self
                .queued
                .iter()
                .filter(|(e, _)| {
                    self.inflight.get(*e).copied().unwrap_or(0) < cap
                        && matches!(
                            self.breakers.state(e, now),
                            State::Closed | State::HalfOpen(false)
                        )
                })
                .filter_map(|(e, q)| q.front().map(|r| (r.was, e)))
                .min()
                .map(|(_, e)| e.clone())?;
            let queue = self.queued.get_mut(&e)?;
            let row = queue.pop_front()?;
            if queue.is_empty() {
                self.queued.remove(&e);
            }
            if row.token - wall_now < min_lease {
                self.held -= 1;
                self.returning.push((row.id, row.token, row.was));
                continue;
            }
            // Takes a half-open circuit's one trial.
            self.breakers.admit(&e, now);
            *self.inflight.entry(e).or_insert(0) += 1;
            return Some(row);
        }
    }

    /// Every queued row, set aside to be given back as it was (stopping).
    fn release_all(&mut self) {
        for (_, rows) in self.queued.drain() {
            self.held -= rows.len();
            self.returning
                .extend(rows.into_iter().map(|r| (r.id, r.token, r.was)));
        }
    }

    fn end(&mut self, endpoint: &str, verdict: Verdict, now: Instant) -> Option<State> {
        if let Some(n) = self.inflight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
            self.held = self.held.saturating_sub(1);
            if *n == 0 {
                self.inflight.remove(endpoint);
            }
        }
        self.breakers.record(endpoint, verdict, now)
    }

    /// Open endpoints whose due rows should be moved now (each at most
    /// every 500 ms), with the end of their cool-down.
    fn deferrals(&mut self, now: Instant) -> Vec<(String, Instant)> {
        let open: Vec<(String, Instant)> = self
            .breakers
            .not_closed(now)
            .into_iter()
            .filter_map(|(e, until)| until.map(|u| (e, u)))
            .collect();
        self.deferred
            .retain(|e, _| open.iter().any(|(o, _)| o == e));
        open.into_iter()
            .filter(|(e, _)| {
                let due = self
                    .deferred
                    .get(e)
                    .is_none_or(|last| now.duration_since(*last) >= Duration::from_millis(500));
                if due {
                    self.deferred.insert(e.clone(), now);
                }
                due
            })
            .collect()
    }
}

/// A row this replica claimed.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    channel: String,
    address: String,
    endpoint: String,
    message: Option<serde_json::Value>,
    attempts: i32,
    event_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    cause_event_id: Uuid,
    complaint_id: Uuid,
    recipient: String,
    /// The claim's `next_attempt_at`: the lease, and the token the outcome
    /// must find.
    token: OffsetDateTime,
    /// `next_attempt_at` before the claim, to give the row back.
    was: OffsetDateTime,
    /// The rule's `within` (see [`crate::plan::Planned::due_by`]).
    due_by: Option<OffsetDateTime>,
    /// The recipient's other channels, for when this one fails.
    fallbacks: sqlx::types::Json<Vec<Fallback>>,
}

/// The outcome of one attempt, for the finisher.
#[derive(Debug)]
struct Done {
    id: i64,
    token: OffsetDateTime,
    attempt: i32,
    channel: String,
    recipient: String,
    cause_event_id: Uuid,
    complaint_id: Uuid,
    policy_version: String,
    outcome: &'static str,
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    next: Next,
    /// Event time → this send's end, for a delivered one.
    event_latency: Option<Duration>,
    /// Send it on the recipient's next channel too: that channel's
    /// endpoint and why.
    fallback: Option<(String, String)>,
}

struct Shared {
    pool: PgPool,
    channels: Arc<Channels>,
    tuning: Tuning,
    gate: Mutex<Gate>,
    wake: Arc<Notify>,
    done: mpsc::Sender<Done>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Shared {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        // A panic while holding the lock leaves counters, not broken invariants.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next queued row to send now, if any.
    fn next(&self) -> Option<Claimed> {
        let t = &self.tuning;
        self.gate().next(
            Instant::now(),
            OffsetDateTime::now_utc(),
            t.endpoint_cap,
            t.timeout + LEASE_MARGIN,
        )
    }
}

/// Starts the sender tasks of this replica, woken by `announcer` too.
pub fn spawn(ctx: &tousu_kit::Ctx, channels: Arc<Channels>, announcer: &Announcer) {
    spawn_with(ctx, channels, announcer, Tuning::from_config(&ctx.config));
}

/// [`spawn`] with explicit tuning.
pub fn spawn_with(
    ctx: &tousu_kit::Ctx,
    channels: Arc<Channels>,
    announcer: &Announcer,
    tuning: Tuning,
) {
    let (done_tx, done_rx) = mpsc::channel(4096);
    let wake = announcer.local.clone();
    ctx.tracker.spawn(announce_remote(
        ctx.pool.clone(),
        announcer.remote.clone(),
        ctx.cancel.clone(),
    ));
    let shared = Arc::new(Shared {
        pool: ctx.pool.clone(),
        channels,
        gate: Mutex::new(Gate::new(&tuning)),
        tuning,
        wake: wake.clone(),
        done: done_tx,
        tracker: ctx.tracker.clone(),
        cancel: ctx.cancel.clone(),
    });
    ctx.tracker
        .spawn(listen(ctx.pool.clone(), wake, ctx.cancel.clone()));
    ctx.tracker
        .spawn(finish(ctx.pool.clone(), ctx.outbox.clone(), done_rx));
    ctx.tracker.spawn(dispatch(shared, ctx.cancel.clone()));
}

/// Forwards `pg_notify` announcements to the dispatcher (and, on
/// (re)connecting, looks: what was announced meanwhile is due).
async fn listen(pool: PgPool, wake: Arc<Notify>, cancel: CancellationToken) {
    tousu_kit::listen::listen(pool, CHANNEL, "deliveries", cancel, |_| {
        wake.notify_one();
        std::future::ready(true)
    })
    .await;
}

/// Claims due rows whenever there is room and something may be due, and
/// starts sends.
async fn dispatch(shared: Arc<Shared>, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(shared.tuning.workers));
    loop {
        if cancel.is_cancelled() {
            // Rows claimed ahead go back as they were: another replica
            // takes them now instead of after their lease.
            shared.gate().release_all();
            if let Err(e) = give_back(&shared).await {
                tracing::warn!(error = %e, "giving back claimed deliveries failed; they are due again after their lease");
            }
            return;
        }
        if let Err(e) = round(&shared, &permits).await {
            tracing::warn!(error = %e, "claiming deliveries failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = cancel.cancelled() => continue,
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {
                // Let a burst of announcements and finished sends gather
                // into one claim instead of one claim each.
                tokio::time::sleep(GATHER).await;
            }
            _ = tokio::time::sleep(shared.tuning.poll) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// One round: defers open endpoints' due rows, claims when a quarter of
/// the room for rows held ahead is free (or nothing is held), starts sends
/// while workers are free, gives back what was set aside.
async fn round(shared: &Arc<Shared>, permits: &Arc<Semaphore>) -> sqlx::Result<()> {
    let now = Instant::now();
    let deferrals = shared.gate().deferrals(now);
    for (endpoint, until) in deferrals {
        let moved = defer_endpoint(&shared.pool, &endpoint, wall(until)).await?;
        if moved > 0 {
            tracing::info!(%endpoint, moved, "circuit open: deliveries deferred");
        }
    }
    let tuning = &shared.tuning;
    let (held, plan) = {
        let gate = shared.gate();
        (gate.held, gate.plan(now, tuning.endpoint_hold))
    };
    let room = tuning.hold.saturating_sub(held);
    if room > 0 && (room >= tuning.hold / 4 || held == 0) {
        let rows = claim(
            &shared.pool,
            room,
            tuning.endpoint_hold,
            &plan,
            tuning.lease,
        )
        .await?;
        shared.gate().queue(rows);
    }
    while let Ok(permit) = permits.clone().try_acquire_owned() {
        let Some(row) = shared.next() else { break };
        let worker = shared.clone();
        shared
            .tracker
            .spawn(async move { work(worker, row, permit).await });
    }
    give_back(shared).await
}

/// Gives back the rows the gate set aside.
async fn give_back(shared: &Shared) -> sqlx::Result<()> {
    let rows = std::mem::take(&mut shared.gate().returning);
    if rows.is_empty() {
        return Ok(());
    }
    if let Err(e) = reschedule(&shared.pool, &rows).await {
        // Not lost: they are due again when their lease ends.
        shared.gate().returning.extend(rows);
        return Err(e);
    }
    Ok(())
}

async fn claim(
    pool: &PgPool,
    limit: usize,
    cap: usize,
    plan: &Plan,
    lease: Duration,
) -> sqlx::Result<Vec<Claimed>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Look at more rows than we take, so one busy endpoint's backlog does
    // not hide the others'.
    let scan = limit.saturating_mul(4).clamp(64, 2000);
    // A claim lost with a Postgres crash leaves its rows due: they are
    // claimed again (at least once either way), so the claim does not
    // wait for its WAL flush.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query_as::<_, Claimed>(
        "WITH cand AS (
             SELECT id, endpoint, next_attempt_at FROM deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND endpoint <> ALL($1::text[])
             ORDER BY next_attempt_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         ), ranked AS (
             SELECT c.id, c.next_attempt_at,
                    row_number() OVER (PARTITION BY c.endpoint ORDER BY c.next_attempt_at, c.id) AS rn,
                    COALESCE(s.slots, $3) AS slots
             FROM cand c LEFT JOIN unnest($4::text[], $5::int4[]) AS s(endpoint, slots)
               ON s.endpoint = c.endpoint
         ), pick AS (
             SELECT id, next_attempt_at FROM ranked WHERE rn <= slots
             ORDER BY next_attempt_at, id LIMIT $6
         )
         UPDATE deliveries d
         SET next_attempt_at = now() + make_interval(secs => $7::float8), updated_at = now()
         FROM pick WHERE d.id = pick.id
         RETURNING d.id, d.channel, d.address, d.endpoint, d.message, d.attempts, d.event_at,
                   d.created_at, d.cause_event_id, d.complaint_id, d.recipient,
                   d.next_attempt_at AS token, pick.next_attempt_at AS was, d.due_by, d.fallbacks",
    )
    .bind(&plan.excluded)
    .bind(scan)
    .bind(i32::try_from(cap).unwrap_or(i32::MAX))
    .bind(&plan.endpoints)
    .bind(&plan.slots)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Moves claimed rows to `at` (where the claim still holds them).
async fn reschedule(
    pool: &PgPool,
    rows: &[(i64, OffsetDateTime, OffsetDateTime)],
) -> sqlx::Result<()> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let tokens: Vec<OffsetDateTime> = rows.iter().map(|r| r.1).collect();
    let ats: Vec<OffsetDateTime> = rows.iter().map(|r| r.2).collect();
    sqlx::query(
        "UPDATE deliveries d SET next_attempt_at = u.at, updated_at = now()
         FROM unnest($1::int8[], $2::timestamptz[], $3::timestamptz[]) AS u(id, token, at)
         WHERE d.id = u.id AND d.status = 'pending' AND d.next_attempt_at = u.token",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&ats)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves the due rows of an endpoint whose circuit is open to `until`
/// (rows another replica is claiming right now are left to it).
async fn defer_endpoint(pool: &PgPool, endpoint: &str, until: OffsetDateTime) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $2, updated_at = now()
         WHERE id IN (SELECT id FROM deliveries
                      WHERE status = 'pending' AND endpoint = $1 AND next_attempt_at <= now()
                      FOR UPDATE SKIP LOCKED)",
    )
    .bind(endpoint)
    .bind(until)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

fn decode(message: Option<serde_json::Value>) -> Result<Message, String> {
    let value = message.ok_or_else(|| "the delivery has no message".to_owned())?;
    serde_json::from_value(value).map_err(|e| format!("the delivery's message is unreadable: {e}"))
}

/// Cuts an error text to a size fit for the log.
fn short(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A worker: sends `row`, then the next queued row while there is one.
async fn work(shared: Arc<Shared>, row: Claimed, permit: OwnedSemaphorePermit) {
    let mut row = Some(row);
    while let Some(r) = row {
        let done = send_one(&shared, r).await;
        // Room for more rows held ahead: the dispatcher may claim.
        shared.wake.notify_one();
        if shared.done.send(done).await.is_err() {
            tracing::error!(
                "the finisher is gone; an outcome is lost (its row is sent again after its lease)"
            );
        }
        row = if shared.cancel.is_cancelled() {
            None
        } else {
            shared.next()
        };
    }
    drop(permit);
    // A worker is free: rows queued meanwhile can start.
    shared.wake.notify_one();
}

async fn send_one(shared: &Shared, mut row: Claimed) -> Done {
    let started = Instant::now();
    let tuning = &shared.tuning;
    let (result, policy_version) = match decode(row.message.take()) {
        Ok(message) => {
            let version = message.data["policy_version"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let sent = tokio::time::timeout(
                tuning.timeout,
                shared.channels.send(&row.channel, &row.address, &message),
            )
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transient {
                    status: None,
                    detail: format!("no answer within {} s", tuning.timeout.as_secs()),
                    retry_after: None,
                })
            });
            (sent, version)
        }
        Err(e) => (
            Err(SendError::Permanent {
                status: None,
                detail: e,
            }),
            String::new(),
        ),
    };
    let latency = started.elapsed();
    let verdict = match &result {
        Ok(_)
        | Err(SendError::Permanent {
            status: Some(_), ..
        }) => Verdict::Success,
        Err(SendError::Transient { .. }) => Verdict::Failure,
        Err(SendError::Permanent { status: None, .. }) => Verdict::Neutral,
    };
    if let Some(state) = shared.gate().end(&row.endpoint, verdict, Instant::now()) {
        let open = !matches!(state, State::Closed);
        metrics::gauge!("tousu_notify_breaker_open", "endpoint" => row.endpoint.clone())
            .set(if open { 1.0 } else { 0.0 });
        if open {
            tracing::warn!(endpoint = %row.endpoint, "circuit opened: deliveries to it are deferred");
        } else {
            tracing::info!(endpoint = %row.endpoint, "circuit closed");
        }
    }
    let attempt = row.attempts.saturating_add(1);
    let next = next_step(
        u32::try_from(attempt).unwrap_or(1),
        &result,
        tuning,
        jitter(),
    );
    let (outcome, status_code, error) = match &result {
        Ok(sent) => ("delivered", Some(i32::from(sent.status)), None),
        Err(SendError::Transient { status, detail, .. }) => {
            ("transient", status.map(i32::from), Some(short(detail)))
        }
        Err(SendError::Permanent { status, detail }) => {
            ("permanent", status.map(i32::from), Some(short(detail)))
        }
    };
    metrics::counter!("tousu_notify_attempts_total", "channel" => row.channel.clone(), "outcome" => outcome)
        .increment(1);
    let fallback = fallback(&row, next, &shared.channels);
    if next == Next::Delivered
        && let Some(by) = row.due_by
        && OffsetDateTime::now_utc() > by
    {
        metrics::counter!("tousu_notify_late_total", "channel" => row.channel.clone()).increment(1);
        tracing::info!(delivery = row.id, channel = %row.channel, due_by = %by, "delivered after the rule's time");
    }
    let event_latency = (next == Next::Delivered).then(|| {
        let since = OffsetDateTime::now_utc() - row.event_at.unwrap_or(row.created_at);
        Duration::try_from(since).unwrap_or(Duration::ZERO)
    });
    if let Some(e) = &error {
        tracing::debug!(delivery = row.id, attempt, channel = %row.channel, endpoint = %row.endpoint, error = %e, ?next, "send failed");
    }
    Done {
        id: row.id,
        token: row.token,
        attempt,
        channel: row.channel,
        recipient: row.recipient,
        cause_event_id: row.cause_event_id,
        complaint_id: row.complaint_id,
        policy_version,
        outcome,
        status_code,
        latency_ms: i32::try_from(latency.as_millis()).unwrap_or(i32::MAX),
        error,
        next,
        event_latency,
        fallback,
    }
}

/// Whether a delivery that ended its attempt with `next` is also sent on
/// the recipient's next channel: when it is dead, or its next retry would
/// fall after its `due_by`. That channel's endpoint, and why.
fn fallback(row: &Claimed, next: Next, channels: &Channels) -> Option<(String, String)> {
    let to = row.fallbacks.0.first()?;
    let why = match next {
        Next::Delivered => return None,
        Next::Dead => format!("fallback: {} failed", row.channel),
        Next::Retry(wait) => {
            let by = row.due_by?;
            if OffsetDateTime::now_utc() + wait <= by {
                return None;
            }
            format!(
                "fallback: {} still failing when the notice is due",
                row.channel
            )
        }
    };
    Some((channels.endpoint(&to.channel, &to.address), why))
}

/// Writes outcomes in batches: one transaction for whatever has finished.
async fn finish(pool: PgPool, outbox: Outbox, mut rx: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        // Outcomes finishing close together share a transaction (one WAL
        // flush); nobody waits on these writes.
        tokio::time::sleep(FINISH_GATHER).await;
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let mut tries = 0;
        loop {
            match write(&pool, &outbox, &batch).await {
                Ok(()) => break,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, rows = batch.len(), "writing delivery outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, rows = batch.len(), "writing delivery outcomes failed; they are sent again after their lease");
                    break;
                }
            }
        }
        batch.clear();
    }
}

async fn write(pool: &PgPool, outbox: &Outbox, batch: &[Done]) -> Result<(), anyhow::Error> {
    let mut ids = Vec::with_capacity(batch.len());
    let mut tokens = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut next_at: Vec<Option<OffsetDateTime>> = Vec::with_capacity(batch.len());
    let mut codes = Vec::with_capacity(batch.len());
    let mut errors = Vec::with_capacity(batch.len());
    let mut attempts = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut latencies = Vec::with_capacity(batch.len());
    let now = OffsetDateTime::now_utc();
    for d in batch {
        ids.push(d.id);
        tokens.push(d.token);
        let (status, at) = match d.next {
            Next::Delivered => ("delivered", None),
            Next::Dead => ("dead", None),
            Next::Retry(wait) => ("pending", Some(now + wait)),
        };
        statuses.push(status);
        next_at.push(at);
        codes.push(d.status_code);
        errors.push(d.error.clone());
        attempts.push(d.attempt);
        outcomes.push(d.outcome);
        latencies.push(d.latency_ms);
    }
    let mut tx = pool.begin().await?;
    let updated: Vec<i64> = sqlx::query_scalar(
        "UPDATE deliveries d
         SET attempts = d.attempts + 1, status = u.status,
             next_attempt_at = COALESCE(u.next_at, d.next_attempt_at),
             last_status = u.code, last_error = u.err,
             delivered_at = CASE WHEN u.status = 'delivered' THEN now() ELSE d.delivered_at END,
             updated_at = now()
         FROM unnest($1::int8[], $2::timestamptz[], $3::text[], $4::timestamptz[], $5::int4[], $6::text[])
              AS u(id, token, status, next_at, code, err)
         WHERE d.id = u.id AND d.status = 'pending' AND d.next_attempt_at = u.token
         RETURNING d.id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&statuses)
    .bind(&next_at)
    .bind(&codes)
    .bind(&errors)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, outcome, status_code, latency_ms, error)
         SELECT u.* FROM unnest($1::int8[], $2::int4[], $3::text[], $4::int4[], $5::int4[], $6::text[])
              AS u(delivery_id, attempt, outcome, status_code, latency_ms, error)
         WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = u.delivery_id)",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&outcomes)
    .bind(&codes)
    .bind(&latencies)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    // The outcomes that still held their row (the others lost it meanwhile).
    let updated: std::collections::HashSet<i64> = updated.into_iter().collect();
    let held: Vec<&Done> = batch.iter().filter(|d| updated.contains(&d.id)).collect();
    // Fallbacks of those rows (not acknowledged).
    let mut fb_ids = Vec::new();
    let mut fb_endpoints = Vec::new();
    let mut fb_why = Vec::new();
    for d in &held {
        if let Some((endpoint, why)) = &d.fallback {
            fb_ids.push(d.id);
            fb_endpoints.push(endpoint.as_str());
            fb_why.push(why.as_str());
        }
    }
    if !fb_ids.is_empty() {
        let added: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO deliveries (cause_event_id, complaint_id, event_type, recipient, channel,
                 status, attempts, detail, address, endpoint, message, rule, event_at,
                 next_attempt_at, step, due_by, fallbacks, fallback_of)
             SELECT d.cause_event_id, d.complaint_id, d.event_type, d.recipient,
                 d.fallbacks->0->>'channel', 'pending', 0, u.why, d.fallbacks->0->>'address',
                 u.endpoint, d.message, d.rule, d.event_at, now(), d.step, d.due_by,
                 d.fallbacks - 0, d.id
             FROM unnest($1::int8[], $2::text[], $3::text[]) AS u(id, endpoint, why)
             JOIN deliveries d ON d.id = u.id
             WHERE d.acked_at IS NULL AND jsonb_array_length(d.fallbacks) > 0
             ON CONFLICT (cause_event_id, recipient, channel) DO NOTHING
             RETURNING id",
        )
        .bind(&fb_ids)
        .bind(&fb_endpoints)
        .bind(&fb_why)
        .fetch_all(&mut *tx)
        .await?;
        if !added.is_empty() {
            announce(&mut tx).await?;
            metrics::counter!("tousu_notify_fallbacks_total").increment(added.len() as u64);
            tracing::info!(rows = ?added, "deliveries fall back on the recipients' next channels");
        }
    }
    // Events for the rows that ended here, grouped by policy version.
    let mut events: Vec<(&str, Vec<Pending>)> = Vec::new();
    let mut ended = Vec::new();
    for d in held {
        let attempts = u32::try_from(d.attempt).unwrap_or(0);
        let payload = match d.next {
            Next::Delivered => Payload::NotifyDelivered(pb::NotifyDelivered {
                cause_event_id: d.cause_event_id.to_string(),
                recipient: d.recipient.clone(),
                channel: d.channel.clone(),
                attempts,
            }),
            Next::Dead => Payload::NotifyFailed(pb::NotifyFailed {
                cause_event_id: d.cause_event_id.to_string(),
                recipient: d.recipient.clone(),
                channel: d.channel.clone(),
                attempts,
                error: d.error.clone().unwrap_or_default(),
            }),
            Next::Retry(_) => continue,
        };
        let item = Pending::new(d.complaint_id, payload);
        match events.iter_mut().find(|(v, _)| *v == d.policy_version) {
            Some((_, items)) => items.push(item),
            None => events.push((&d.policy_version, vec![item])),
        }
        ended.push(d);
    }
    for (version, items) in events {
        outbox.enqueue_many(&mut tx, version, items).await?;
    }
    tx.commit().await?;
    if !ended.is_empty() {
        outbox.wake();
    }
    for d in ended {
        match d.next {
            Next::Delivered => {
                metrics::counter!("tousu_notify_delivered_total", "channel" => d.channel.clone())
                    .increment(1);
                if let Some(l) = d.event_latency {
                    metrics::histogram!("tousu_notify_latency_seconds").record(l.as_secs_f64());
                }
            }
            Next::Dead => {
                tracing::warn!(delivery = d.id, channel = %d.channel, recipient = %d.recipient, attempts = d.attempt, error = d.error.as_deref().unwrap_or(""), "delivery dead-lettered");
                metrics::counter!("tousu_notify_failed_total", "channel" => d.channel.clone())
                    .increment(1);
            }
            Next::Retry(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(max_attempts: u32) -> Tuning {
        let mut config = Config::defaults("notify");
        config.notify_max_attempts = max_attempts;
        Tuning::from_config(&config)
    }

    fn transient(retry_after: Option<Duration>) -> Result<Sent, SendError> {
        Err(SendError::Transient {
            status: Some(503),
            detail: "503 Service Unavailable".into(),
            retry_after,
        })
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let low = draws.iter().filter(|j| **j < 0.5).count();
        // 1000 fair draws: below one half between 400 and 600 times
        // (fails with probability far below 1e-9).
        assert!((400..=600).contains(&low), "{low} of 1000 below 0.5");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        assert_eq!(
            backoff(1, base, cap, 0.999_999),
            Duration::from_secs(1).mul_f64(0.999_999)
        );
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(4, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(9, base, cap, 1.0), Duration::from_secs(256));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, base, cap, 1.0), cap);
        assert_eq!(backoff(5, base, cap, 0.0), Duration::ZERO);
        // A broken draw does not panic.
        assert_eq!(backoff(2, base, cap, f64::NAN), Duration::from_secs(1));
        for n in 1..20 {
            for _ in 0..50 {
                let d = backoff(n, base, cap, jitter());
                let ceiling = base.saturating_mul(1 << (n - 1).min(31)).min(cap);
                assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_never_undercut() {
        let t = tuning(8);
        let ra = Duration::from_secs(120);
        for j in [0.0, 0.3, 0.999] {
            match next_step(1, &transient(Some(ra)), &t, j) {
                Next::Retry(d) => assert!(d >= ra, "{d:?}"),
                other => panic!("{other:?}"),
            }
        }
        // A backoff longer than Retry-After wins.
        assert_eq!(
            next_step(7, &transient(Some(Duration::from_secs(1))), &t, 1.0),
            Next::Retry(Duration::from_secs(64))
        );
        // An absurd Retry-After is cut to a day.
        assert_eq!(
            next_step(1, &transient(Some(Duration::from_secs(u64::MAX))), &t, 0.0),
            Next::Retry(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn permanent_is_dead_at_once_and_transient_after_the_round() {
        let t = tuning(3);
        let permanent = Err(SendError::Permanent {
            status: Some(400),
            detail: "errcode 300001: invalid webhook url".into(),
        });
        assert_eq!(next_step(1, &permanent, &t, 0.5), Next::Dead);
        assert!(matches!(
            next_step(1, &transient(None), &t, 0.5),
            Next::Retry(_)
        ));
        assert!(matches!(
            next_step(2, &transient(None), &t, 0.5),
            Next::Retry(_)
        ));
        assert_eq!(next_step(3, &transient(None), &t, 0.5), Next::Dead);
        // Put back after dying: a new round, starting from the base again.
        assert_eq!(
            next_step(4, &transient(None), &t, 1.0),
            Next::Retry(Duration::from_secs(1))
        );
        assert_eq!(next_step(6, &transient(None), &t, 0.5), Next::Dead);
        let ok = Ok(Sent {
            status: 200,
            detail: "ok".into(),
        });
        assert_eq!(next_step(3, &ok, &t, 0.5), Next::Delivered);
    }

    fn gate() -> Gate {
        let mut t = tuning(8);
        t.breaker_threshold = 2;
        Gate::new(&t)
    }

    fn row(id: i64, endpoint: &str, lease_left: Duration) -> Claimed {
        row_due(id, endpoint, lease_left, Duration::from_secs(1))
    }

    /// A row that was due `ago`.
    fn row_due(id: i64, endpoint: &str, lease_left: Duration, ago: Duration) -> Claimed {
        let now = OffsetDateTime::now_utc();
        Claimed {
            id,
            channel: "webhook".into(),
            address: String::new(),
            endpoint: endpoint.into(),
            message: None,
            attempts: 0,
            event_at: None,
            created_at: now,
            cause_event_id: Uuid::nil(),
            complaint_id: Uuid::nil(),
            recipient: "r".into(),
            token: now + lease_left,
            was: now - ago,
            due_by: None,
            fallbacks: sqlx::types::Json(Vec::new()),
        }
    }

    const LEASE: Duration = Duration::from_secs(40);
    const MIN_LEASE: Duration = Duration::from_secs(15);

    #[test]
    fn gate_holds_rows_ahead_and_caps_each_endpoint() {
        let mut g = gate();
        let now = Instant::now();
        let wall_now = OffsetDateTime::now_utc();
        g.queue(vec![
            row(1, "slow", LEASE),
            row(2, "slow", LEASE),
            row(3, "slow", LEASE),
            row(4, "fast", LEASE),
        ]);
        assert_eq!(g.held, 4);
        let mut next = || g.next(now, wall_now, 2, MIN_LEASE).map(|r| r.id);
        let mut taken = vec![next(), next(), next()];
        taken.sort();
        // Two of slow (its share of the workers), the fast one; slow's third waits.
        assert_eq!(taken, vec![Some(1), Some(2), Some(4)]);
        assert_eq!(next(), None);
        assert_eq!(g.held, 4, "queued and in flight are both held");
        // A claim may take up to `hold` per endpoint, less what is held.
        let plan = g.plan(now, 4);
        let slots = |p: &Plan, e: &str| p.endpoints.iter().position(|x| x == e).map(|i| p.slots[i]);
        assert_eq!(slots(&plan, "slow"), Some(1));
        assert_eq!(slots(&plan, "fast"), Some(3));
        assert!(plan.excluded.is_empty());
        g.queue(vec![row(5, "slow", LEASE)]);
        assert_eq!(g.plan(now, 4).excluded, vec!["slow".to_owned()]);
        // A send ends: its place goes to the oldest queued row.
        g.end("fast", Verdict::Success, now);
        g.end("slow", Verdict::Success, now);
        assert_eq!(g.held, 3);
        assert_eq!(g.next(now, wall_now, 2, MIN_LEASE).map(|r| r.id), Some(3));
        assert!(g.returning.is_empty());
    }

    #[test]
    fn gate_serves_endpoints_first_come_first_served() {
        let mut g = gate();
        let now = Instant::now();
        let wall_now = OffsetDateTime::now_utc();
        let s = Duration::from_secs;
        // Endpoint a has rows due 10, 9, 8 … s ago, b one due 8.5 s ago.
        g.queue(
            (0..6)
                .map(|i| row_due(i, "a", LEASE, s(10 - i as u64)))
                .collect(),
        );
        g.queue(vec![row_due(10, "b", LEASE, Duration::from_millis(8500))]);
        let order: Vec<i64> = std::iter::from_fn(|| g.next(now, wall_now, 10, MIN_LEASE))
            .map(|r| r.id)
            .collect();
        assert_eq!(order, [0, 1, 10, 2, 3, 4, 5]);
    }

    #[test]
    fn gate_gives_back_rows_of_an_open_circuit_and_short_leases() {
        let mut g = gate();
        let now = Instant::now();
        let wall_now = OffsetDateTime::now_utc();
        g.queue(vec![
            row(1, "slow", LEASE),
            row(2, "slow", LEASE),
            row(3, "slow", LEASE),
            row(4, "other", Duration::from_secs(3)),
            row(5, "other", LEASE),
        ]);
        let first: Vec<i64> = std::iter::from_fn(|| g.next(now, wall_now, 2, MIN_LEASE))
            .map(|r| r.id)
            .collect();
        // Row 4's lease is too short for a send: given back as it was.
        assert_eq!(first.len(), 3);
        assert!(!first.contains(&4) && first.contains(&5));
        assert_eq!(g.returning.len(), 1);
        assert_eq!(g.returning[0].0, 4);
        g.returning.clear();
        // Two failures open slow's circuit: its queued row goes back to
        // the end of the cool-down, and claims leave it out.
        g.end("slow", Verdict::Failure, now);
        assert_eq!(
            g.end("slow", Verdict::Failure, now),
            Some(State::Open(now + Duration::from_secs(30)))
        );
        assert_eq!(g.next(now, wall_now, 2, MIN_LEASE).map(|r| r.id), None);
        assert_eq!(g.returning.len(), 1);
        assert_eq!(g.returning[0].0, 3);
        assert!(g.returning[0].2 > wall_now + Duration::from_secs(29));
        assert_eq!(g.plan(now, 4).excluded, vec!["slow".to_owned()]);
        // Its due rows in the table are deferred once per 500 ms.
        let d = g.deferrals(now);
        assert_eq!(d, vec![("slow".to_owned(), now + Duration::from_secs(30))]);
        assert!(g.deferrals(now + Duration::from_millis(100)).is_empty());
        assert_eq!(g.deferrals(now + Duration::from_millis(600)).len(), 1);
        // Half-open: one slot for the trial, none while it runs.
        let later = now + Duration::from_secs(30);
        let plan = g.plan(later, 4);
        assert_eq!(
            plan.slots[plan.endpoints.iter().position(|e| e == "slow").unwrap()],
            1
        );
        g.queue(vec![row(6, "slow", LEASE), row(7, "slow", LEASE)]);
        assert_eq!(g.next(later, wall_now, 2, MIN_LEASE).map(|r| r.id), Some(6));
        assert_eq!(g.next(later, wall_now, 2, MIN_LEASE).map(|r| r.id), None);
        assert!(g.plan(later, 4).excluded.contains(&"slow".to_owned()));
        assert_eq!(g.end("slow", Verdict::Success, later), Some(State::Closed));
        assert_eq!(g.next(later, wall_now, 2, MIN_LEASE).map(|r| r.id), Some(7));
        // Stopping: every queued row goes back as it was.
        g.queue(vec![row(8, "fast", LEASE)]);
        g.release_all();
        assert!(g.queued.is_empty());
        assert_eq!(g.returning.last().map(|r| r.0), Some(8));
        assert_eq!(g.held, 2, "the two rows still being sent (5 and 7)");
    }
    #[test]
    fn a_dead_or_late_delivery_falls_back_on_the_next_channel() {
        let channels = Channels::new(&Config::defaults("notify")).expect("channels");
        let mut r = row(1, "sms", LEASE);
        let minute = Duration::from_secs(60);
        // Nothing to fall back on.
        assert_eq!(fallback(&r, Next::Dead, &channels), None);
        r.fallbacks.0 = vec![Fallback {
            channel: "email".into(),
            address: "sun@example.com".into(),
        }];
        let (endpoint, why) = fallback(&r, Next::Dead, &channels).expect("dead");
        assert_eq!(endpoint, channels.endpoint("email", "sun@example.com"));
        assert_eq!(why, "fallback: webhook failed");
        assert_eq!(fallback(&r, Next::Delivered, &channels), None);
        // Retrying without a `within`: the channel keeps its retries.
        assert_eq!(fallback(&r, Next::Retry(minute), &channels), None);
        // With one: only when the retry would come after it.
        r.due_by = Some(OffsetDateTime::now_utc() + Duration::from_secs(600));
        assert_eq!(fallback(&r, Next::Retry(minute), &channels), None);
        let late = fallback(&r, Next::Retry(Duration::from_secs(900)), &channels);
        assert!(late.is_some_and(|(_, why)| why.contains("still failing")));
    }

    #[test]
    fn short_cuts_long_errors_on_a_char_boundary() {
        let long = "错".repeat(400);
        let s = short(&long);
        assert!(s.len() <= 504 && s.ends_with('…'));
        assert_eq!(short("timeout"), "timeout");
    }
}
