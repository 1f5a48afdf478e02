//! tousu sla: the SLA clocks of every complaint, fired on time.
//!
//! - [`clocks`]: lifecycle events → clocks (start, meet, pause, resume,
//!   extend, re-arm), with their timers and `sla.*` events.
//! - [`timers`]: exact, durable timers: Postgres is the truth, partitions
//!   are shared by lease, each replica holds the next minutes in memory.
//! - [`rules`]: the policy's targets on its calendar, warnings, ladder.
//! - [`api`]: `GET /v1/complaints/{id}/clocks`, `GET /v1/calendar/deadline`,
//!   escalation acks, and gRPC `tousu.sla.v1.SlaService`.
//! - [`recompute`]: open clocks re-armed when a new policy or calendar
//!   version is published (audited, old and new deadline).

pub mod api;
pub mod clocks;
pub mod rules;
pub mod seed;
pub mod store;
pub mod timers;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use tousu_bus::ConsumerSpec;
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_routing::reload;

use crate::clocks::{Consumer, Out, Sla};
use crate::rules::Rules;

pub const NAME: &str = "sla";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub async fn start(config: Config) -> anyhow::Result<Running> {
    // The policy file and its calendar must load before anything binds.
    let dir = reload::base_dir(&config.policy);
    let file_rules = Rules::new(tousu_routing::load_policy(&config)?, &dir)?;
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let store = reload::bucket(&ctx.js, ctx.config.stream_replicas).await?;
    let rules = match reload::published(&store, &dir).await {
        Some(p) if p.version != file_rules.policy.version => {
            Rules::new(p, &dir).unwrap_or_else(|e| {
                tracing::error!(error = %e, "published policy refused; using the file");
                file_rules
            })
        }
        _ => file_rules,
    };
    let sla = Arc::new(Sla {
        rules: RwLock::new(Arc::new(rules)),
        outbox: ctx.outbox.clone(),
        partitions: ctx.config.sla_partitions,
    });
    {
        let sla = sla.clone();
        let pool = ctx.pool.clone();
        let calendars = dir.clone();
        let tracker = ctx.tracker.clone();
        ctx.tracker.spawn(reload::watch(
            store,
            dir,
            NAME,
            ctx.cancel.clone(),
            move |policy| {
                let rules = Rules::new(policy, &calendars).map_err(|e| e.to_string())?;
                *sla.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
                tracker.spawn(recompute(sla.clone(), pool.clone()));
                Ok(())
            },
        ));
    }
    ctx.spawn_consumer(
        ConsumerSpec::new("sla", &["tousu.evt.complaint.>", "tousu.evt.notify.acked"]),
        Arc::new(Consumer(sla.clone())),
    );
    timers::spawn(
        &ctx.tracker,
        sla.clone(),
        ctx.pool.clone(),
        timers::Settings {
            partitions: ctx.config.sla_partitions,
            lease: Duration::from_secs(ctx.config.sla_lease_secs),
            horizon: Duration::from_secs(ctx.config.sla_horizon_secs),
            owner: owner(&ctx.config),
        },
        ctx.cancel.clone(),
    );
    let http = api::router(sla.clone(), ctx.pool.clone());
    let grpc = api::routes(sla, ctx.pool.clone());
    tousu_kit::serve(&ctx, http, Some(grpc)).await
}

/// The replica's name in the lease table: host and HTTP port, stable
/// across restarts (a restarted replica renews the leases it held at once
/// instead of waiting for them to lapse; two live processes cannot share a
/// host and port). With an OS-picked port, a fresh name.
fn owner(config: &tousu_kit::Config) -> String {
    match config.http_addr.port() {
        0 => format!("{}:{}", hostname(), uuid::Uuid::now_v7()),
        port => format!("{}:{port}", hostname()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "sla".into())
}

/// Re-arms every open clock under the policy in force: each whose deadline
/// moves is audited (`recomputed`, old and new deadline) and announced with
/// a fresh `sla.started`. Replicas share the work (`SKIP LOCKED`).
pub async fn recompute(sla: Arc<Sla>, pool: PgPool) {
    let rules = sla.rules();
    let mut after = None;
    let mut moved = 0u64;
    loop {
        let page = async {
            let mut tx = pool.begin().await?;
            let rows = store::open_clocks_page(&mut tx, after.clone(), 500).await?;
            let mut out = Out::default();
            let mut last = None;
            for mut row in rows.iter().cloned() {
                last = Some((row.complaint_id, row.target.as_str().to_owned()));
                let grade = tousu_domain::Grade::try_from(u8::try_from(row.grade).unwrap_or(4))
                    .unwrap_or(tousu_domain::Grade::GENERAL);
                if sla
                    .rearm(
                        &mut tx,
                        &rules,
                        &mut row,
                        grade,
                        "recomputed",
                        NAME,
                        &mut out,
                    )
                    .await?
                {
                    moved += 1;
                }
            }
            if !out.0.is_empty() {
                sla.outbox
                    .enqueue_many(&mut tx, rules.version(), out.0)
                    .await
                    .map_err(|e| tousu_bus::HandleError::Retry(e.to_string()))?;
            }
            tx.commit().await?;
            Ok::<_, tousu_bus::HandleError>(last)
        }
        .await;
        match page {
            Ok(Some(last)) => after = Some(last),
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "recomputing clocks failed; the rest keep their deadlines");
                break;
            }
        }
    }
    sla.outbox.wake();
    tracing::info!(version = %rules.version(), moved, "open clocks recomputed");
}
