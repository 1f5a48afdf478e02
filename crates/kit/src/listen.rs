//! Postgres `LISTEN` with reconnection, for the services that wake on
//! `pg_notify` (notify's senders, sla's timers).

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// What the listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Listening (again): whatever was announced while nobody listened is
    /// lost, so look at the state afresh.
    Listening,
    /// A notice and its payload.
    Notice(String),
}

/// Listens on `channel` until `cancel` fires or `on` answers false,
/// reconnecting after a second when the connection fails (`what` names the
/// listener in the logs).
pub async fn listen<F, Fut>(
    pool: PgPool,
    channel: &'static str,
    what: &'static str,
    cancel: CancellationToken,
    mut on: F,
) where
    F: FnMut(Heard) -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let mut listener = match connect(&pool, channel).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, listener = what, "cannot listen; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = cancel.cancelled() => return,
                }
            }
        };
        if !on(Heard::Listening).await {
            return;
        }
        loop {
            let heard = tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => Heard::Notice(n.payload().to_owned()),
                    // Lost and re-established: notices in between are gone.
                    Ok(None) => Heard::Listening,
                    Err(e) => {
                        tracing::warn!(error = %e, listener = what, "listener failed; reconnecting");
                        break;
                    }
                },
                _ = cancel.cancelled() => return,
            };
            if !on(heard).await {
                return;
            }
        }
    }
}

async fn connect(pool: &PgPool, channel: &str) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
