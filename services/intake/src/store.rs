//! The intake service's state, and the quarantine of rejected input.

use std::sync::Arc;
use std::sync::Mutex;

use serde_json::Value;
use sqlx::PgPool;
use tousu_domain::Channel;
use tousu_kit::Config;

use crate::commit::{Committer, Intent, Receipt, Unavailable};
use crate::evidence::Evidence;

/// Unauthenticated rejections stored per minute per process; beyond that
/// they are only counted (a flood of bad signatures must not fill the disk).
const UNAUTHENTICATED_PER_MINUTE: u64 = 60;

/// The intake service's state, shared by every transport.
pub struct Intake {
    pub pool: PgPool,
    pub committer: Committer,
    pub evidence: Evidence,
    pub config: Arc<Config>,
    /// (minute, count) of unauthenticated rejections stored.
    unauthenticated: Mutex<(i64, u64)>,
}

/// A rejected input, as kept in quarantine.
#[derive(Debug, Clone, Default)]
pub struct Rejected<'a> {
    pub channel: Option<Channel>,
    /// The HTTP status answered (gRPC and NATS use the matching status).
    pub status: u16,
    pub reason: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// What a replay needs besides the body: transport, path, query,
    /// selected headers.
    pub meta: Value,
}

impl Intake {
    pub fn new(ctx: &tousu_kit::Ctx, evidence: Evidence) -> Self {
        Self {
            pool: ctx.pool.clone(),
            committer: Committer::start(
                ctx.pool.clone(),
                ctx.outbox.clone(),
                ctx.cancel.clone(),
                &ctx.tracker,
            ),
            evidence,
            config: ctx.config.clone(),
            unauthenticated: Mutex::new((0, 0)),
        }
    }

    /// Commits a validated submission (in some batch); answers after the commit.
    pub async fn submit(&self, intent: Intent) -> Result<Receipt, Unavailable> {
        self.committer.commit(intent).await
    }

    /// Keeps rejected input with its reason. Failure to store is logged,
    /// never turned into a different answer to the caller.
    pub async fn quarantine(&self, r: Rejected<'_>) {
        let channel = r.channel.map_or("unknown", |c| c.as_str());
        metrics::counter!("tousu_intake_rejected_total", "channel" => channel, "status" => r.status.to_string())
            .increment(1);
        if r.status == 401 && !self.admit_unauthenticated() {
            return;
        }
        let result = sqlx::query(
            "INSERT INTO quarantine (channel, status, reason, content_type, body, meta)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(channel)
        .bind(r.status as i16)
        .bind(r.reason)
        .bind(r.content_type)
        .bind(r.body)
        .bind(sqlx::types::Json(&r.meta))
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, reason = %r.reason, "could not store rejected input in quarantine");
        }
    }

    /// Whether another unauthenticated rejection may be stored this minute.
    fn admit_unauthenticated(&self) -> bool {
        let minute = time::OffsetDateTime::now_utc().unix_timestamp() / 60;
        let mut window = self
            .unauthenticated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= UNAUTHENTICATED_PER_MINUTE {
            metrics::counter!("tousu_intake_unauthenticated_dropped_total").increment(1);
            return false;
        }
        window.1 += 1;
        true
    }
}
