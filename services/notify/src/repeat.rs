//! Repeats: a rule with `repeat` (`alert.major`: daily until closed) keeps
//! only its next repeat (`repeats`). When it is due and the complaint is
//! still open, the cause event is planned again under that rule as the
//! policy in force has it, as a fresh notice (its own cause id: its own
//! deliveries, ladder and ack links), and the next repeat is set. A closed
//! complaint, or a rule the policy no longer has, ends the repeats.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::facts::{self, Facts};
use crate::plan::{Notice, Planner, rule_key};

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    complaint_id: Uuid,
    rule: String,
    event: Vec<u8>,
    sent: i32,
}

/// Plans the repeats that are due; how many went out.
pub async fn fire_due(pool: &PgPool, planner: &Planner) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, complaint_id, rule, event, sent FROM repeats
         WHERE next_at <= now() ORDER BY next_at LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let loaded = planner.loaded();
    let mut fired = 0;
    for d in due {
        let facts = facts::load(&mut tx, d.complaint_id)
            .await?
            .unwrap_or_else(|| Facts {
                complaint_id: d.complaint_id,
                ..Facts::default()
            });
        let rule = loaded
            .policy
            .notify
            .iter()
            .find(|r| r.repeat.is_some() && rule_key(r) == d.rule);
        let event = tousu_bus::decode_event(&d.event);
        let (Some(rule), Ok(event), false) = (rule, &event, facts.closed) else {
            tracing::info!(rule = %d.rule, complaint = %d.complaint_id, closed = facts.closed, "repeats end");
            sqlx::query("DELETE FROM repeats WHERE id = $1")
                .bind(d.id)
                .execute(&mut *tx)
                .await?;
            continue;
        };
        let Some(mut notice) = Notice::of(event, d.complaint_id, Uuid::now_v7()) else {
            sqlx::query("DELETE FROM repeats WHERE id = $1")
                .bind(d.id)
                .execute(&mut *tx)
                .await?;
            continue;
        };
        notice.repeat = u32::try_from(d.sent).unwrap_or(0) + 1;
        planner
            .plan(&mut tx, &notice, &facts, Some(&d.rule))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let every = rule.repeat.unwrap_or(tousu_policy::schema::Duration {
            amount: 1,
            unit: tousu_policy::schema::Unit::Days,
        });
        sqlx::query("UPDATE repeats SET sent = sent + 1, next_at = $2 WHERE id = $1")
            .bind(d.id)
            .bind(loaded.after(OffsetDateTime::now_utc(), every))
            .execute(&mut *tx)
            .await?;
        fired += 1;
    }
    tx.commit().await?;
    planner.outbox.wake();
    planner.announcer.poke();
    Ok(fired)
}
