//! sla's tables: clocks, pending timers, the audit of deadline changes.

use sqlx::PgConnection;
use time::OffsetDateTime;
use tousu_domain::clock::{Clock, Target};
use uuid::Uuid;

use crate::rules::{Fire, Kind};

/// The channel a transaction that adds timers notifies, so the replica
/// holding the partition puts near ones in memory at once.
pub const CHANNEL: &str = "tousu_sla_timers";

/// A clock as stored.
#[derive(Debug, Clone)]
pub struct ClockRow {
    pub complaint_id: Uuid,
    pub target: Target,
    pub department: String,
    /// running | paused | met | breached | stopped
    pub state: String,
    pub deadline: Option<OffsetDateTime>,
    pub model: Clock,
    pub explanation: String,
    pub policy_version: String,
    pub duration: String,
    pub calendar: String,
    pub grade: i16,
    pub urgency: String,
    pub variant: String,
    pub fired: Vec<String>,
    pub met_at: Option<OffsetDateTime>,
    pub breached_at: Option<OffsetDateTime>,
}

impl ClockRow {
    pub fn is_open(&self) -> bool {
        self.state == "running" || self.state == "paused"
    }

    /// An audit line for a change of this clock, its deadline now the new one.
    pub fn audit<'a>(
        &self,
        change: &'a str,
        old_deadline: Option<OffsetDateTime>,
        actor: &'a str,
        reason: &'a str,
        policy_version: &'a str,
    ) -> Audit<'a> {
        Audit {
            complaint_id: self.complaint_id,
            target: self.target,
            change,
            old_deadline,
            new_deadline: self.deadline,
            actor,
            reason,
            policy_version,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Raw {
    complaint_id: Uuid,
    target: String,
    department: String,
    state: String,
    deadline: Option<OffsetDateTime>,
    model: Option<serde_json::Value>,
    explanation: String,
    policy_version: String,
    duration: String,
    calendar: String,
    grade: i16,
    urgency: String,
    variant: String,
    fired: Vec<String>,
    met_at: Option<OffsetDateTime>,
    breached_at: Option<OffsetDateTime>,
    started_at: OffsetDateTime,
}

const COLUMNS: &str = "complaint_id, target, department, state, deadline, model, explanation, \
     policy_version, duration, calendar, grade, urgency, variant, fired, met_at, breached_at, started_at";

fn from_raw(r: Raw) -> Option<ClockRow> {
    let target: Target = r.target.parse().ok()?;
    // Clocks armed before the clock model existed (and seeded ones) have
    // no model: a wall clock from start to deadline stands in.
    let model = match r.model {
        Some(v) => serde_json::from_value(v).ok()?,
        None => Clock::wall(
            target,
            r.started_at,
            r.deadline.unwrap_or(r.started_at),
            target != Target::Overlay,
        ),
    };
    Some(ClockRow {
        complaint_id: r.complaint_id,
        target,
        department: r.department,
        state: r.state,
        deadline: r.deadline,
        model,
        explanation: r.explanation,
        policy_version: r.policy_version,
        duration: r.duration,
        calendar: r.calendar,
        grade: r.grade,
        urgency: r.urgency,
        variant: r.variant,
        fired: r.fired,
        met_at: r.met_at,
        breached_at: r.breached_at,
    })
}

/// The clocks of a complaint, locked for update when `lock`.
pub async fn clocks(
    conn: &mut PgConnection,
    complaint_id: Uuid,
    lock: bool,
) -> sqlx::Result<Vec<ClockRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM clocks WHERE complaint_id = $1 ORDER BY started_at, target{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<Raw> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(complaint_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().filter_map(from_raw).collect())
}

/// Open clocks of many complaints (a recompute), locked.
pub async fn open_clocks_page(
    conn: &mut PgConnection,
    after: Option<(Uuid, String)>,
    limit: i64,
) -> sqlx::Result<Vec<ClockRow>> {
    let (id, target) = after.unwrap_or((Uuid::nil(), String::new()));
    let sql = format!(
        "SELECT {COLUMNS} FROM clocks WHERE state IN ('running', 'paused')
           AND (complaint_id, target) > ($1, $2)
         ORDER BY complaint_id, target LIMIT $3 FOR UPDATE SKIP LOCKED"
    );
    let rows: Vec<Raw> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(target)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().filter_map(from_raw).collect())
}

/// Stores a new clock; false when the complaint already has one for the target.
pub async fn insert(conn: &mut PgConnection, row: &ClockRow) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO clocks (complaint_id, target, department, started_at, deadline, state, explanation,
             policy_version, model, duration, calendar, grade, urgency, variant, fired)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (complaint_id, target) DO NOTHING",
    )
    .bind(row.complaint_id)
    .bind(row.target.as_str())
    .bind(&row.department)
    .bind(row.model.started)
    .bind(row.deadline)
    .bind(&row.state)
    .bind(&row.explanation)
    .bind(&row.policy_version)
    .bind(serde_json::to_value(&row.model).unwrap_or_default())
    .bind(&row.duration)
    .bind(&row.calendar)
    .bind(row.grade)
    .bind(&row.urgency)
    .bind(&row.variant)
    .bind(&row.fired)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes back a changed clock (also a re-armed one: start and model).
pub async fn update(conn: &mut PgConnection, row: &ClockRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE clocks SET department = $3, started_at = $4, deadline = $5, state = $6, explanation = $7,
             policy_version = $8, model = $9, duration = $10, calendar = $11, grade = $12, urgency = $13,
             fired = $14, met_at = $15, breached_at = $16, updated_at = now()
         WHERE complaint_id = $1 AND target = $2",
    )
    .bind(row.complaint_id)
    .bind(row.target.as_str())
    .bind(&row.department)
    .bind(row.model.started)
    .bind(row.deadline)
    .bind(&row.state)
    .bind(&row.explanation)
    .bind(&row.policy_version)
    .bind(serde_json::to_value(&row.model).unwrap_or_default())
    .bind(&row.duration)
    .bind(&row.calendar)
    .bind(row.grade)
    .bind(&row.urgency)
    .bind(&row.fired)
    .bind(row.met_at)
    .bind(row.breached_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The partition of a complaint: its id's random tail modulo the count.
pub fn partition_of(id: Uuid, partitions: u32) -> i32 {
    let b = id.as_bytes();
    let tail = u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    (tail % u64::from(partitions.max(1))) as i32
}

/// A timer to store.
#[derive(Debug, Clone)]
pub struct NewTimer {
    pub complaint_id: Uuid,
    pub target: Target,
    pub fire: Fire,
}

/// Stores timers and tells the replicas (at commit) about them.
pub async fn add_timers(
    conn: &mut PgConnection,
    partitions: u32,
    timers: &[NewTimer],
) -> sqlx::Result<()> {
    if timers.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::with_capacity(timers.len());
    let mut due = Vec::with_capacity(timers.len());
    let mut ids = Vec::with_capacity(timers.len());
    let mut targets = Vec::with_capacity(timers.len());
    let mut kinds = Vec::with_capacity(timers.len());
    let mut args = Vec::with_capacity(timers.len());
    for t in timers {
        parts.push(partition_of(t.complaint_id, partitions));
        due.push(t.fire.at);
        ids.push(t.complaint_id);
        targets.push(t.target.as_str());
        kinds.push(t.fire.kind.as_str());
        args.push(t.fire.arg);
    }
    let added: Vec<(i64, i32, OffsetDateTime)> = sqlx::query_as(
        "INSERT INTO timers (partition, due_at, complaint_id, target, kind, arg)
         SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::int[])
         RETURNING id, partition, due_at",
    )
    .bind(&parts)
    .bind(&due)
    .bind(&ids)
    .bind(&targets)
    .bind(&kinds)
    .bind(&args)
    .fetch_all(&mut *conn)
    .await?;
    announce(conn, &added).await
}

/// `pg_notify` of `partition:id:due_micros` entries, in payloads under the
/// 8000-byte limit; delivered when the transaction commits.
pub async fn announce(
    conn: &mut PgConnection,
    added: &[(i64, i32, OffsetDateTime)],
) -> sqlx::Result<()> {
    let mut payload = String::new();
    for (id, partition, due) in added {
        let micros = due.unix_timestamp_nanos() / 1000;
        if !payload.is_empty() {
            payload.push(';');
        }
        payload.push_str(&format!("{partition}:{id}:{micros}"));
        if payload.len() > 7000 {
            notify(conn, &payload).await?;
            payload.clear();
        }
    }
    if !payload.is_empty() {
        notify(conn, &payload).await?;
    }
    Ok(())
}

async fn notify(conn: &mut PgConnection, payload: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Parses an announcement; bad entries are skipped.
pub fn parse_announcement(payload: &str) -> impl Iterator<Item = (i32, i64, i64)> + '_ {
    payload.split(';').filter_map(|e| {
        let mut it = e.split(':');
        let p = it.next()?.parse().ok()?;
        let id = it.next()?.parse().ok()?;
        let micros = it.next()?.parse().ok()?;
        Some((p, id, micros))
    })
}

/// Drops the pending timers of a clock (it stopped, paused or changed).
pub async fn drop_timers(
    conn: &mut PgConnection,
    complaint_id: Uuid,
    target: Target,
    kinds: Option<&[Kind]>,
) -> sqlx::Result<()> {
    match kinds {
        None => {
            sqlx::query("DELETE FROM timers WHERE complaint_id = $1 AND target = $2")
                .bind(complaint_id)
                .bind(target.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Some(kinds) => {
            let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            sqlx::query(
                "DELETE FROM timers WHERE complaint_id = $1 AND target = $2 AND kind = ANY($3)",
            )
            .bind(complaint_id)
            .bind(target.as_str())
            .bind(&kinds)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Records the acknowledgement of escalation `step` (one that needs it,
/// was not acknowledged yet and did not go up the ladder) and drops its
/// acknowledgement timeout. False when there was nothing to acknowledge.
pub async fn ack_escalation(
    conn: &mut PgConnection,
    complaint_id: Uuid,
    step: i32,
    actor: &str,
    at: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE escalations SET acked_by = $3, acked_at = $4
         WHERE complaint_id = $1 AND step = $2 AND needs_ack
           AND acked_at IS NULL AND escalated_to IS NULL",
    )
    .bind(complaint_id)
    .bind(step)
    .bind(actor)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        sqlx::query(
            "DELETE FROM timers WHERE complaint_id = $1 AND kind = 'ack_timeout' AND arg = $2",
        )
        .bind(complaint_id)
        .bind(step)
        .execute(&mut *conn)
        .await?;
    }
    Ok(done)
}

/// A line of the audit of deadline changes.
pub struct Audit<'a> {
    pub complaint_id: Uuid,
    pub target: Target,
    pub change: &'a str,
    pub old_deadline: Option<OffsetDateTime>,
    pub new_deadline: Option<OffsetDateTime>,
    pub actor: &'a str,
    pub reason: &'a str,
    pub policy_version: &'a str,
}

pub async fn audit(conn: &mut PgConnection, a: Audit<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO clock_audit (complaint_id, target, change, old_deadline, new_deadline, actor, reason, policy_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.complaint_id)
    .bind(a.target.as_str())
    .bind(a.change)
    .bind(a.old_deadline)
    .bind(a.new_deadline)
    .bind(a.actor)
    .bind(a.reason)
    .bind(a.policy_version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spread_and_stay_in_range() {
        let mut seen = [0u32; 16];
        for _ in 0..1600 {
            let p = partition_of(Uuid::now_v7(), 16);
            assert!((0..16).contains(&p));
            seen[p as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "uneven: {seen:?}");
        let id = Uuid::now_v7();
        assert_eq!(partition_of(id, 64), partition_of(id, 64));
    }

    #[test]
    fn announcements_round_trip_and_skip_garbage() {
        let got: Vec<_> = parse_announcement("3:17:1700000000000000;x;5:9:12").collect();
        assert_eq!(got, vec![(3, 17, 1_700_000_000_000_000), (5, 9, 12)]);
    }
}
