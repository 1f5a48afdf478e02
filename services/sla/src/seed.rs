//! Pending timers written straight into sla's tables, for the restart and
//! takeover tests and `tousu bench sla`: each is a running resolution clock
//! of a made-up complaint with its breach timer, exactly as the consumer
//! stores them, announced to the replicas like any new timer.

use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store;

/// Seeds `n` clocks whose breach timers fall at `due(i)`; returns the
/// complaint ids in order. Department `bench`, policy version `seed`.
pub async fn breaches(
    conn: &mut PgConnection,
    partitions: u32,
    n: usize,
    due: impl Fn(usize) -> OffsetDateTime,
) -> anyhow::Result<Vec<Uuid>> {
    const CHUNK: usize = 10_000;
    let mut all = Vec::with_capacity(n);
    let now = OffsetDateTime::now_utc();
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let ids: Vec<Uuid> = (start..end).map(|_| Uuid::now_v7()).collect();
        let dues: Vec<OffsetDateTime> = (start..end).map(&due).collect();
        let parts: Vec<i32> = ids
            .iter()
            .map(|id| store::partition_of(*id, partitions))
            .collect();
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO clocks (complaint_id, target, department, started_at, deadline, explanation, policy_version)
             SELECT id, 'resolution', 'bench', $3, due, 'seeded', 'seed'
             FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, due)",
        )
        .bind(&ids)
        .bind(&dues)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let added: Vec<(i64, i32, OffsetDateTime)> = sqlx::query_as(
            "INSERT INTO timers (partition, due_at, complaint_id, target, kind, arg)
             SELECT p, due, id, 'resolution', 'breach', 0
             FROM unnest($1::int[], $2::timestamptz[], $3::uuid[]) AS u(p, due, id)
             RETURNING id, partition, due_at",
        )
        .bind(&parts)
        .bind(&dues)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        store::announce(&mut tx, &added).await?;
        tx.commit().await?;
        all.extend(ids);
    }
    Ok(all)
}
