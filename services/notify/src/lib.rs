//! tousu notify: tells the right people, on their channel, in seconds.
//!
//! - [`plan`]: events → deliveries (policy rules, rosters, templates, dedup,
//!   digests), with [`facts`] (what notify knows of each complaint),
//!   [`recipients`] (roles → members → channels, duty, quiet hours),
//!   [`templates`] (minijinja, zh-CN and en, masking), [`digest`]
//!   (throttling) and [`repeat`] (`repeat` rules).
//! - [`send`]: deliveries → channels (retries, circuit breaker, dead
//!   letter), with [`breaker`] and [`log`] (the delivery log API).
//! - [`channels`]: email, SMS, WeCom, DingTalk, Feishu, webhook, WeChat.
//! - [`acks`]: acknowledgement links and the ladder.
//!
//! HTTP: `GET /v1/policy`, `GET/POST /v1/acks/{token}`, the delivery log
//! (`/v1/deliveries…`).

pub mod acks;
pub mod breaker;
pub mod channels;
pub mod daily;
pub mod digest;
pub mod facts;
pub mod log;
pub mod model;
pub mod plan;
pub mod recipients;
pub mod repeat;
pub mod send;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use tousu_bus::ConsumerSpec;
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_routing::reload;

use crate::plan::{Consumer, Loaded, Planner};

pub const NAME: &str = "notify";

/// Events a planner plans in one transaction when several are waiting
/// (one inbox insert and one commit for all of them).
pub const PLAN_BATCH: usize = 32;

/// The durable consumer of the planner.
pub const DURABLE: &str = "notify";

/// What the planner subscribes to.
pub const SUBJECTS: &[&str] = &[
    "tousu.evt.complaint.>",
    "tousu.evt.alert.>",
    "tousu.evt.sla.>",
    "tousu.evt.escalation.>",
];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub async fn start(config: Config) -> anyhow::Result<Running> {
    // The policy file must load before anything binds.
    let dir = reload::base_dir(&config.policy);
    let file_policy = tousu_routing::load_policy(&config)?;
    let channels = Arc::new(channels::Channels::new(&config)?);
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let store = reload::bucket(&ctx.js, ctx.config.stream_replicas).await?;
    let policy = match reload::published(&store, &dir).await {
        Some(p) if p.version != file_policy.version => p,
        _ => file_policy,
    };
    let planner = Arc::new(Planner::new(
        Loaded::new(policy, &dir),
        &ctx.config,
        ctx.outbox.clone(),
        channels.clone(),
        &ctx.pool,
    )?);
    {
        let planner = planner.clone();
        let calendars = dir.clone();
        ctx.tracker.spawn(reload::watch(
            store,
            dir,
            NAME,
            ctx.cancel.clone(),
            move |policy| {
                planner.set_policy(Loaded::new(policy, &calendars));
                Ok(())
            },
        ));
    }
    let http = axum::Router::new()
        .route("/v1/policy", get(http_policy))
        .with_state(planner.clone())
        .merge(acks::router(planner.clone(), ctx.pool.clone()))
        .merge(log::router(ctx.pool.clone()));
    let running = tousu_kit::serve(&ctx, http, None).await?;
    // Ack links point at the port actually bound (an OS-picked one too),
    // so the planners start only now.
    let config = &running.ctx().config;
    planner.set_ack_base(if config.notify_public_url.trim().is_empty() {
        plan::ack_base(&config.public_url, running.http_addr.port())
    } else {
        config
            .notify_public_url
            .trim()
            .trim_end_matches('/')
            .to_owned()
    });
    let ctx = running.ctx();
    spawn_planners(ctx, planner.clone());
    send::spawn(ctx, channels, &planner.announcer);
    spawn_due(ctx, planner);
    Ok(running)
}

/// The planner's consumers (`notify_planners`, sharing the durable
/// consumer), on a pool of their own with a connection each: events of
/// different complaints are planned side by side (their commits share the
/// disk's flushes), and a burst of events does not take the connections the
/// senders need, nor the other way round.
fn spawn_planners(ctx: &tousu_kit::Ctx, planner: Arc<Planner>) {
    let planners = ctx.config.notify_planners.max(1);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(planners)
        .connect_lazy_with((*ctx.pool.connect_options()).clone());
    let handler = Arc::new(Consumer(planner));
    for _ in 0..planners {
        let (js, pool, outbox, cancel) = (
            ctx.js.clone(),
            pool.clone(),
            ctx.outbox.clone(),
            ctx.cancel.clone(),
        );
        let handler = handler.clone();
        ctx.tracker.spawn(async move {
            // The planner keeps its own order (each fact carries its
            // event's time): no per-complaint sequence tracking.
            let spec = ConsumerSpec {
                order: false,
                batch: PLAN_BATCH,
                ..ConsumerSpec::new(DURABLE, SUBJECTS)
            };
            if let Err(e) =
                tousu_bus::consumer::run(js, pool, spec, handler, Some(outbox), cancel).await
            {
                tracing::error!(consumer = DURABLE, error = %e, "planner stopped");
            }
        });
    }
}

/// `GET /v1/policy`: the policy in force (tests wait on it after a publish).
async fn http_policy(State(planner): State<Arc<Planner>>) -> impl IntoResponse {
    let loaded = planner.loaded();
    axum::Json(serde_json::json!({
        "name": loaded.policy.name,
        "version": loaded.policy.version,
    }))
}

/// The planner's own timers, every half second: digests whose window
/// closed, repeats that are due (replicas share them, `SKIP LOCKED`), the
/// daily digest of open major complaints.
fn spawn_due(ctx: &tousu_kit::Ctx, planner: Arc<Planner>) {
    let pool = ctx.pool.clone();
    let cancel = ctx.cancel.clone();
    let daily = daily::Daily::new(&ctx.config);
    ctx.tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            loop {
                match digest::close_due(&pool, &planner).await {
                    Ok(20..) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "closing digests failed; retrying");
                        break;
                    }
                }
            }
            if let Err(e) = daily.fire_due(&pool, &planner).await {
                tracing::warn!(error = %e, "the daily digest of major complaints failed; retrying");
            }
            loop {
                match repeat::fire_due(&pool, &planner).await {
                    Ok(20..) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "repeats failed; retrying");
                        break;
                    }
                }
            }
        }
    });
}
