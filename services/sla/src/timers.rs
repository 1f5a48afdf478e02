//! Exact, durable timers.
//!
//! Postgres holds every pending timer (`timers`); a timer fires in the
//! transaction that deletes its row and writes its events to the outbox,
//! so it fires once even if two replicas race for it, and a crash before
//! the commit leaves it pending for the next owner.
//!
//! Timers are partitioned by complaint id. Each replica holds leases on a
//! fair share of the partitions (`leases`, renewed every third of
//! `sla_lease_secs`; a dead replica's leases lapse and are taken over) and
//! keeps the timers of its partitions due within `sla_horizon_secs` in
//! memory, ordered by due time; it sleeps until the first is due. New
//! timers reach the owner at once through `pg_notify` (sent at commit by
//! the transaction that adds them); a periodic refill brings later ones
//! into the horizon, and a full reload follows any lost notification
//! connection.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tousu_bus::{HandleError, Payload, Pending};
use tousu_domain::Grade;
use tousu_domain::clock::Target;
use tousu_kit::listen::Heard;
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::clocks::{Out, Sla, pb_target};
use crate::rules::{Fire, Kind, Rules};
use crate::store::{self, NewTimer};

/// Most timers fired in one transaction.
const BATCH: usize = 2000;
/// Fire transactions in flight at once per replica: a burst of due timers
/// keeps Postgres busy on every core while one batch waits for its commit.
const PARALLEL: usize = 4;

/// Lease and horizon settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub partitions: u32,
    pub lease: Duration,
    pub horizon: Duration,
    /// This replica's name in `leases`.
    pub owner: String,
}

enum Msg {
    /// The partitions this replica holds now.
    Owned(BTreeSet<i32>),
    /// Timers just committed: (partition, id, due in µs since the epoch).
    Added(Vec<(i32, i64, i64)>),
    /// Notifications may have been lost: load the horizon again.
    Reload,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn now_micros() -> i64 {
    micros(OffsetDateTime::now_utc())
}

/// Starts the lease keeper, the notification listener and the scheduler.
/// `ready` is cancelled once the first leases are held and loaded.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    sla: Arc<Sla>,
    pool: PgPool,
    settings: Settings,
    cancel: CancellationToken,
) {
    let (tx, rx) = mpsc::channel(1024);
    tracker.spawn(leases(
        pool.clone(),
        settings.clone(),
        tx.clone(),
        cancel.clone(),
    ));
    tracker.spawn(listen(pool.clone(), tx, cancel.clone()));
    tracker.spawn(schedule(sla, pool, settings, rx, cancel));
}

/// Keeps this replica's fair share of partition leases.
async fn leases(pool: PgPool, s: Settings, tx: mpsc::Sender<Msg>, cancel: CancellationToken) {
    let secs = s.lease.as_secs_f64();
    let every = s.lease / 3;
    let mut held = BTreeSet::new();
    loop {
        match renew(&pool, &s, secs).await {
            Ok(now_held) => {
                if now_held != held {
                    tracing::info!(owner = %s.owner, partitions = now_held.len(), "sla partitions held");
                    held = now_held;
                    if tx.send(Msg::Owned(held.clone())).await.is_err() {
                        return;
                    }
                }
                metrics::gauge!("tousu_sla_partitions_held").set(held.len() as f64);
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => {
                // Hand the partitions over at once instead of at expiry.
                let _ = sqlx::query("UPDATE leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1")
                    .bind(&s.owner)
                    .execute(&pool)
                    .await;
                let _ = sqlx::query("DELETE FROM replicas WHERE owner = $1")
                    .bind(&s.owner)
                    .execute(&pool)
                    .await;
                return;
            }
        }
    }
}

/// One round: heartbeat, renew, give back above the fair share, take
/// lapsed ones up to it. Returns the partitions held.
async fn renew(pool: &PgPool, s: &Settings, secs: f64) -> sqlx::Result<BTreeSet<i32>> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO leases (partition) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
    )
    .bind(s.partitions as i32)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO replicas (owner, seen_at) VALUES ($1, now())
         ON CONFLICT (owner) DO UPDATE SET seen_at = now()",
    )
    .bind(&s.owner)
    .execute(&mut *tx)
    .await?;
    let (live,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM replicas WHERE seen_at > now() - make_interval(secs => $1)",
    )
    .bind(secs)
    .fetch_one(&mut *tx)
    .await?;
    let fair = (i64::from(s.partitions) + live.max(1) - 1) / live.max(1);
    let mut held: Vec<i32> = sqlx::query_scalar(
        "UPDATE leases SET expires_at = now() + make_interval(secs => $2)
         WHERE owner = $1 AND partition < $3 RETURNING partition",
    )
    .bind(&s.owner)
    .bind(secs)
    .bind(s.partitions as i32)
    .fetch_all(&mut *tx)
    .await?;
    held.sort_unstable();
    if held.len() as i64 > fair {
        let extra: Vec<i32> = held.split_off(fair as usize);
        sqlx::query("UPDATE leases SET owner = NULL, expires_at = '-infinity' WHERE partition = ANY($1) AND owner = $2")
            .bind(&extra)
            .bind(&s.owner)
            .execute(&mut *tx)
            .await?;
    } else if (held.len() as i64) < fair {
        let taken: Vec<i32> = sqlx::query_scalar(
            "UPDATE leases SET owner = $1, expires_at = now() + make_interval(secs => $2)
             WHERE partition IN (
                 SELECT partition FROM leases WHERE expires_at < now() AND partition < $4
                 ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING partition",
        )
        .bind(&s.owner)
        .bind(secs)
        .bind(fair - held.len() as i64)
        .bind(s.partitions as i32)
        .fetch_all(&mut *tx)
        .await?;
        held.extend(taken);
    }
    tx.commit().await?;
    Ok(held.into_iter().collect())
}

/// Forwards `pg_notify` announcements of new timers to the scheduler; on
/// (re)connecting, has it load everything again (announcements in between
/// are gone).
async fn listen(pool: PgPool, tx: mpsc::Sender<Msg>, cancel: CancellationToken) {
    tousu_kit::listen::listen(pool, store::CHANNEL, "timers", cancel, |heard| {
        let msg = match heard {
            Heard::Listening => Msg::Reload,
            Heard::Notice(payload) => Msg::Added(store::parse_announcement(&payload).collect()),
        };
        let tx = tx.clone();
        async move { tx.send(msg).await.is_ok() }
    })
    .await;
}

/// Timers of the held partitions due within the horizon, by due time.
struct Queue {
    owned: HashSet<i32>,
    /// (due µs, timer id) → partition
    due: BTreeMap<(i64, i64), i32>,
    /// Every timer of a held partition due before this is in `due` (or fired).
    loaded_until: i64,
}

impl Queue {
    fn insert(&mut self, partition: i32, id: i64, due: i64) {
        if self.owned.contains(&partition) && due < self.loaded_until {
            self.due.insert((due, id), partition);
        }
    }
}

async fn load(
    pool: &PgPool,
    partitions: &[i32],
    from: Option<i64>,
    until: i64,
) -> sqlx::Result<Vec<(i64, i32, OffsetDateTime)>> {
    let until = OffsetDateTime::from_unix_timestamp_nanos(i128::from(until) * 1000)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    match from {
        None => sqlx::query_as(
            "SELECT id, partition, due_at FROM timers WHERE partition = ANY($1) AND due_at < $2",
        )
        .bind(partitions)
        .bind(until)
        .fetch_all(pool)
        .await,
        Some(from) => {
            let from = OffsetDateTime::from_unix_timestamp_nanos(i128::from(from) * 1000)
                .unwrap_or_else(|_| OffsetDateTime::now_utc());
            sqlx::query_as(
                "SELECT id, partition, due_at FROM timers
                 WHERE partition = ANY($1) AND due_at >= $2 AND due_at < $3",
            )
            .bind(partitions)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await
        }
    }
}

/// The replica's timer loop.
async fn schedule(
    sla: Arc<Sla>,
    pool: PgPool,
    s: Settings,
    mut rx: mpsc::Receiver<Msg>,
    cancel: CancellationToken,
) {
    let horizon = i64::try_from(s.horizon.as_micros()).unwrap_or(i64::MAX / 2);
    let mut q = Queue {
        owned: HashSet::new(),
        due: BTreeMap::new(),
        loaded_until: 0,
    };
    // Refill well before the horizon runs out.
    let mut refill = tokio::time::interval(s.horizon / 4);
    refill.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::from_millis(50);
    let mut in_flight = futures::stream::FuturesUnordered::new();
    loop {
        let sleep = match q.due.first_key_value() {
            // With every slot busy, the next batch waits for one to finish.
            _ if in_flight.len() >= PARALLEL => Duration::from_secs(3600),
            Some((&(due, _), _)) => {
                Duration::from_micros(u64::try_from(due - now_micros()).unwrap_or(0))
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            Some((batch, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let batch: Vec<(i64, i64, i32)> = batch;
                match result {
                    Ok(n) => {
                        backoff = Duration::from_millis(50);
                        if n > 0 {
                            sla.outbox.wake();
                        }
                    }
                    Err(e) => {
                        let e: HandleError = e;
                        tracing::warn!(error = %e, timers = batch.len(), "firing failed; retrying");
                        // Back in the queue, due again after the backoff.
                        let retry = now_micros() + i64::try_from(backoff.as_micros()).unwrap_or(0);
                        for (id, _, p) in batch {
                            q.insert(p, id, retry);
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            msg = rx.recv() => match msg {
                None => return,
                Some(Msg::Owned(owned)) => {
                    let gained: Vec<i32> = owned.iter().copied().filter(|p| !q.owned.contains(p)).collect();
                    q.owned = owned.into_iter().collect();
                    q.due.retain(|_, p| q.owned.contains(p));
                    if q.loaded_until == 0 {
                        q.loaded_until = now_micros() + horizon;
                    }
                    if !gained.is_empty() {
                        match load(&pool, &gained, None, q.loaded_until).await {
                            Ok(rows) => {
                                let n = rows.len();
                                for (id, p, due) in rows {
                                    q.insert(p, id, micros(due));
                                }
                                tracing::info!(partitions = gained.len(), timers = n, "timers of new partitions loaded");
                                // Holding partitions with their timers in memory: firing.
                                metrics::gauge!("tousu_sla_firing").set(1.0);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "loading timers failed");
                                q.loaded_until = 0;
                            }
                        }
                    }
                }
                Some(Msg::Added(added)) => {
                    for (p, id, due) in added {
                        q.insert(p, id, due);
                    }
                }
                Some(Msg::Reload) => {
                    let owned: Vec<i32> = q.owned.iter().copied().collect();
                    if !owned.is_empty() {
                        let until = now_micros() + horizon;
                        if let Ok(rows) = load(&pool, &owned, None, until).await {
                            q.loaded_until = until;
                            for (id, p, due) in rows {
                                q.insert(p, id, micros(due));
                            }
                        }
                    }
                }
            },
            _ = refill.tick() => {
                let owned: Vec<i32> = q.owned.iter().copied().collect();
                if !owned.is_empty() {
                    let until = now_micros() + horizon;
                    let from = (q.loaded_until > 0).then_some(q.loaded_until);
                    match load(&pool, &owned, from, until).await {
                        Ok(rows) => {
                            q.loaded_until = until;
                            for (id, p, due) in rows {
                                q.insert(p, id, micros(due));
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "refilling timers failed"),
                    }
                }
                metrics::gauge!("tousu_sla_timers_in_memory").set(q.due.len() as f64);
            }
            _ = tokio::time::sleep(sleep) => {
                let now = now_micros();
                let mut batch = Vec::new();
                while batch.len() < BATCH {
                    match q.due.first_key_value() {
                        Some((&(due, id), &p)) if due <= now => {
                            q.due.pop_first();
                            batch.push((id, due, p));
                        }
                        _ => break,
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let ids: Vec<i64> = batch.iter().map(|b| b.0).collect();
                let (sla, pool) = (sla.clone(), pool.clone());
                in_flight.push(async move {
                    let result = fire(&sla, &pool, &ids).await;
                    (batch, result)
                });
            }
            _ = cancel.cancelled() => return,
        }
    }
}

type FiredRow = (i64, Uuid, String, String, i32, OffsetDateTime);

/// Fires the timers `ids` that are still pending: one transaction that
/// deletes them and writes their events. Returns how many fired.
pub async fn fire(sla: &Sla, pool: &PgPool, ids: &[i64]) -> Result<usize, HandleError> {
    let rules = sla.rules();
    let mut tx = pool.begin().await?;
    let fired: Vec<FiredRow> = sqlx::query_as(
        "DELETE FROM timers WHERE id = ANY($1)
         RETURNING id, complaint_id, target, kind, arg, due_at",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    if fired.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    // Events by the policy version of their clock.
    let mut by_version: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
    let (simple, mut other): (Vec<_>, Vec<_>) = fired
        .iter()
        .partition(|f| matches!(Kind::parse(&f.3), Some(Kind::Warning | Kind::Breach)));
    fire_simple(&mut tx, &simple, &mut by_version).await?;
    // One lock order for every transaction: by complaint.
    other.sort_by_key(|f| f.1);
    for f in other {
        let mut out = Out::default();
        let version = fire_one(sla, &rules, &mut tx, f, &mut out).await?;
        by_version.entry(version).or_default().extend(out.0);
    }
    by_version.retain(|_, items| !items.is_empty());
    for (version, items) in by_version {
        sla.outbox
            .enqueue_many(&mut tx, &version, items)
            .await
            .map_err(|e| HandleError::Retry(e.to_string()))?;
    }
    tx.commit().await?;
    let now = OffsetDateTime::now_utc();
    for f in &fired {
        let late = (now - f.5).as_seconds_f64().max(0.0);
        metrics::histogram!("tousu_sla_fire_lateness_seconds").record(late);
    }
    metrics::counter!("tousu_sla_fired_total").increment(fired.len() as u64);
    Ok(fired.len())
}

/// Warnings and breaches, the bulk of all fires: one read and one write
/// for the whole batch.
async fn fire_simple(
    tx: &mut sqlx::PgConnection,
    fired: &[&FiredRow],
    out: &mut BTreeMap<String, Vec<Pending>>,
) -> Result<(), HandleError> {
    if fired.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = fired.iter().map(|f| f.1).collect();
    let targets: Vec<&str> = fired.iter().map(|f| f.2.as_str()).collect();
    let clocks: Vec<SimpleClock> = sqlx::query_as(
        "SELECT c.complaint_id, c.target, c.department, c.state, c.deadline, c.policy_version FROM clocks c
         JOIN unnest($1::uuid[], $2::text[]) AS u(id, target)
           ON c.complaint_id = u.id AND c.target = u.target
         ORDER BY c.complaint_id, c.target FOR UPDATE OF c",
    )
    .bind(&ids)
    .bind(&targets)
    .fetch_all(&mut *tx)
    .await?;
    let clocks: BTreeMap<(Uuid, String), SimpleClock> = clocks
        .into_iter()
        .map(|c| ((c.complaint_id, c.target.clone()), c))
        .collect();
    // Per clock: keys to add to `fired`, and whether it breached.
    let mut changes: BTreeMap<(Uuid, String), (Vec<String>, bool)> = BTreeMap::new();
    for f in fired {
        let key = (f.1, f.2.clone());
        let Some(clock) = clocks.get(&key) else {
            continue;
        };
        if clock.state != "running" {
            continue;
        }
        let (dept, deadline) = (&clock.department, clock.deadline);
        let out = out.entry(clock.policy_version.clone()).or_default();
        let Ok(target) = f.2.parse::<Target>() else {
            continue;
        };
        let kind = Kind::parse(&f.3);
        let entry = changes.entry(key).or_default();
        match kind {
            Some(Kind::Warning) => {
                entry.0.push(Kind::Warning.key(f.4));
                out.push(Pending::new(
                    f.1,
                    Payload::SlaWarning(pb::SlaWarning {
                        target: pb_target(target) as i32,
                        department: dept.clone(),
                        deadline: deadline.map(tousu_bus::to_timestamp),
                        percent: u32::try_from(f.4).unwrap_or(0),
                    }),
                ));
            }
            Some(Kind::Breach) => {
                if entry.1 {
                    continue;
                }
                entry.0.push(Kind::Breach.key(0));
                entry.1 = true;
                out.push(Pending::new(
                    f.1,
                    Payload::SlaBreached(pb::SlaBreached {
                        target: pb_target(target) as i32,
                        department: dept.clone(),
                        deadline: deadline.map(tousu_bus::to_timestamp),
                    }),
                ));
            }
            _ => {}
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(changes.len());
    let mut targets = Vec::with_capacity(changes.len());
    let mut keys = Vec::with_capacity(changes.len());
    let mut breach = Vec::with_capacity(changes.len());
    for ((id, target), (k, b)) in changes {
        ids.push(id);
        targets.push(target);
        keys.push(k.join(","));
        breach.push(b);
    }
    sqlx::query(
        "UPDATE clocks c SET fired = c.fired || string_to_array(u.keys, ','),
             state = CASE WHEN u.breach THEN 'breached' ELSE c.state END,
             breached_at = CASE WHEN u.breach THEN now() ELSE c.breached_at END,
             updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[]) AS u(id, target, keys, breach)
         WHERE c.complaint_id = u.id AND c.target = u.target",
    )
    .bind(&ids)
    .bind(&targets)
    .bind(&keys)
    .bind(&breach)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The columns a warning or breach needs.
#[derive(sqlx::FromRow)]
struct SimpleClock {
    complaint_id: Uuid,
    target: String,
    department: String,
    state: String,
    deadline: Option<OffsetDateTime>,
    policy_version: String,
}

/// Escalations, acknowledgement timeouts, pause caps, regrades. Returns
/// the policy version the events go out under (the clock's).
async fn fire_one(
    sla: &Sla,
    rules: &Rules,
    tx: &mut sqlx::PgConnection,
    f: &FiredRow,
    out: &mut Out,
) -> Result<String, HandleError> {
    let (_, id, target, kind, arg, _) = f;
    let Ok(target) = target.parse::<Target>() else {
        return Ok(String::new());
    };
    let mut clocks = store::clocks(tx, *id, true).await?;
    let Some(row) = clocks.iter_mut().find(|c| c.target == target) else {
        return Ok(String::new());
    };
    fire_on(sla, rules, tx, row, kind, *arg, out).await?;
    Ok(row.policy_version.clone())
}

async fn fire_on(
    sla: &Sla,
    rules: &Rules,
    tx: &mut sqlx::PgConnection,
    row: &mut crate::store::ClockRow,
    kind: &str,
    arg: i32,
    out: &mut Out,
) -> Result<(), HandleError> {
    let (id, target) = (row.complaint_id, row.target);
    match Kind::parse(kind) {
        Some(Kind::Escalation) => {
            if row.state != "running" && row.state != "breached" {
                return Ok(());
            }
            escalate(sla, rules, tx, row, arg, None, out).await?;
            row.fired.push(Kind::Escalation.key(arg));
            store::update(tx, row).await?;
        }
        Some(Kind::AckTimeout) => {
            let pending: Option<(Option<OffsetDateTime>, Option<i32>, String)> = sqlx::query_as(
                "SELECT acked_at, escalated_to, level FROM escalations WHERE complaint_id = $1 AND step = $2",
            )
            .bind(id)
            .bind(arg)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((None, None, level)) = pending else {
                return Ok(());
            };
            let next = arg + 1;
            if !row.is_open() && row.state != "breached" {
                return Ok(());
            }
            let within = rules
                .policy
                .escalation
                .get(usize::try_from(arg - 1).unwrap_or(usize::MAX))
                .and_then(|l| l.ack_within)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let why = format!("step {arg} ({level}) not acknowledged within {within}");
            if escalate(sla, rules, tx, row, next, Some(&why), out).await? {
                sqlx::query(
                    "UPDATE escalations SET escalated_to = $3 WHERE complaint_id = $1 AND step = $2",
                )
                .bind(id)
                .bind(arg)
                .bind(next)
                .execute(&mut *tx)
                .await?;
                // The next level went out now; its own trigger must not send it again.
                sqlx::query(
                    "DELETE FROM timers WHERE complaint_id = $1 AND target = $2 AND kind = 'escalation' AND arg = $3",
                )
                .bind(id)
                .bind(target.as_str())
                .bind(next)
                .execute(&mut *tx)
                .await?;
                row.fired.push(Kind::Escalation.key(next));
                store::update(tx, row).await?;
            }
        }
        Some(Kind::PauseCap) => {
            let cap = row.model.open_pause().and_then(|p| p.cap_at);
            if let Some(cap) = cap {
                sla.resume(
                    tx,
                    rules,
                    row,
                    cap,
                    "system",
                    "the pause reached its cap",
                    out,
                )
                .await?;
            }
        }
        Some(Kind::Regrade) => {
            regrade(sla, rules, tx, row, arg, out).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Sends ladder step `step` (1-based) for a clock, once. Returns whether
/// it went out (false: no such step, or it was sent before).
async fn escalate(
    sla: &Sla,
    rules: &Rules,
    tx: &mut sqlx::PgConnection,
    row: &crate::store::ClockRow,
    step: i32,
    why: Option<&str>,
    out: &mut Out,
) -> Result<bool, HandleError> {
    let Some(level) = usize::try_from(step - 1)
        .ok()
        .and_then(|i| rules.policy.escalation.get(i))
    else {
        return Ok(false);
    };
    let now = OffsetDateTime::now_utc();
    let ack_deadline = level
        .needs_ack
        .then(|| level.ack_within.map(|d| rules.add(now, d)))
        .flatten();
    let urgency = row.urgency.parse().unwrap_or(tousu_domain::Urgency::Normal);
    let reason = match why {
        Some(w) => w.to_owned(),
        None => format!("{} {}", row.target, level.after(urgency)),
    };
    let inserted = sqlx::query(
        "INSERT INTO escalations (complaint_id, step, level, role, target, needs_ack, ack_deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(row.complaint_id)
    .bind(step)
    .bind(&level.level)
    .bind(&level.role)
    .bind(row.target.as_str())
    .bind(level.needs_ack)
    .bind(ack_deadline)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    out.push(
        row.complaint_id,
        Payload::Escalation(pb::Escalation {
            level: level.level.clone(),
            department: row.department.clone(),
            reason,
            needs_ack: level.needs_ack,
            target: pb_target(row.target) as i32,
            ack_deadline: ack_deadline.map(tousu_bus::to_timestamp),
            step: u32::try_from(step).unwrap_or(0),
            role: level.role.clone(),
        }),
    );
    if let Some(at) = ack_deadline {
        store::add_timers(
            tx,
            sla.partitions,
            &[NewTimer {
                complaint_id: row.complaint_id,
                target: row.target,
                fire: Fire {
                    at,
                    kind: Kind::AckTimeout,
                    arg: step,
                },
            }],
        )
        .await?;
    }
    Ok(true)
}

/// The time-based grading rules at `days` open (property: unresolved
/// through our fault at +7 days → 热点, +30 → 重大): a stricter grade
/// re-arms the resolution clock and is published as `complaint.regraded`.
async fn regrade(
    sla: &Sla,
    rules: &Rules,
    tx: &mut sqlx::PgConnection,
    row: &mut crate::store::ClockRow,
    days: i32,
    out: &mut Out,
) -> Result<(), HandleError> {
    let key = Kind::Regrade.key(days);
    if (!row.is_open() && row.state != "breached") || row.fired.contains(&key) {
        return Ok(());
    }
    let current = Grade::try_from(u8::try_from(row.grade).unwrap_or(4)).unwrap_or(Grade::GENERAL);
    let mut facts = tousu_policy::cel::Facts::default();
    facts.days_open = i64::from(days);
    // Waiting on the complainant or an appraisal is not our delay.
    facts.delay_ours = row.state != "paused";
    facts.grade = current;
    facts.urgency = row.urgency.parse().unwrap_or(tousu_domain::Urgency::Normal);
    let mut best: Option<(Grade, &str)> = None;
    for rule in &rules.policy.grading {
        let (Some(cond), Some(grade)) = (&rule.matches.when, rule.grade) else {
            continue;
        };
        if !rule.matches.keywords.is_empty() || !cond.source().contains("days_open") {
            continue;
        }
        if cond.eval(&facts).unwrap_or(false) && grade.get() < best.map_or(current, |b| b.0).get() {
            best = Some((grade, rule.id.as_str()));
        }
    }
    row.fired.push(key);
    store::update(tx, row).await?;
    let Some((grade, rule)) = best else {
        return Ok(());
    };
    sqlx::query("UPDATE complaints SET grade = $2 WHERE complaint_id = $1")
        .bind(row.complaint_id)
        .bind(i16::from(grade.get()))
        .execute(&mut *tx)
        .await?;
    out.push(
        row.complaint_id,
        Payload::Regraded(pb::ComplaintRegraded {
            old_grade: u32::from(current.get()),
            new_grade: u32::from(grade.get()),
            reason: format!("{rule}: open {days} days, unresolved through our fault"),
            actor: crate::NAME.into(),
        }),
    );
    sla.rearm(tx, rules, row, grade, "regraded", crate::NAME, out)
        .await?;
    Ok(())
}
