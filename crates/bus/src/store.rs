//! The bus tables every service schema holds: outbox, inbox, per-complaint
//! sequences and consumer positions. Created idempotently at service start
//! (before the service's own migrations), under an advisory lock so that
//! replicas starting together don't race.

use sqlx::PgPool;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (
        id          bigserial PRIMARY KEY,
        event_id    uuid NOT NULL UNIQUE,
        subject     text NOT NULL,
        event_type  text NOT NULL,
        payload     bytea NOT NULL,
        traceparent text,
        tracestate  text,
        created_at  timestamptz NOT NULL DEFAULT now()
    )",
    "CREATE TABLE IF NOT EXISTS inbox (
        consumer     text NOT NULL,
        event_id     uuid NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )",
    "CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox (processed_at)",
    "CREATE TABLE IF NOT EXISTS event_sequence (
        complaint_id uuid PRIMARY KEY,
        last_seq     bigint NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS consumer_position (
        consumer     text NOT NULL,
        complaint_id uuid NOT NULL,
        producer     text NOT NULL,
        last_seq     bigint NOT NULL,
        PRIMARY KEY (consumer, complaint_id, producer)
    )",
];

/// Creates the bus tables in the pool's schema (its `search_path`).
pub async fn ensure_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tousu_bus'))")
        .execute(&mut *tx)
        .await?;
    for ddl in DDL {
        sqlx::query(*ddl).execute(&mut *tx).await?;
    }
    tx.commit().await
}
