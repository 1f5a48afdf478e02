//! The sender: claims due deliveries, sends them on their channel, retries
//! with backoff, breaks circuits, dead-letters, logs every attempt and
//! publishes `notify.delivered` / `notify.failed`.
//!
//! STUB: being written.

use std::sync::Arc;

use sqlx::PgConnection;

use crate::channels::Channels;

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

/// Starts the sender tasks of this replica.
pub fn spawn(_ctx: &tousu_kit::Ctx, _channels: Arc<Channels>) {}
