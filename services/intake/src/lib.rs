//! tousu intake: takes complaints in from every channel, commits them, and
//! publishes `complaint.received.<channel>` (or `complaint.followup.<channel>`
//! when a message joins an existing complaint).
//!
//! A message flows: a transport ([`http`] webhooks and forms, [`grpc`],
//! [`nats`] request/reply) reads and authenticates it and parses it with
//! `tousu-channels` → [`accept`] validates it ([`submission`]), stores its
//! evidence ([`evidence`]) and builds the intent (dedup key, threading,
//! acknowledgement) → [`commit`] commits it with others in one transaction
//! (complaint or follow-up, dedup key, tracking number, thread keys, event
//! in the outbox) → only then the caller is answered. Rejected input is kept
//! in quarantine ([`store`]) with its reason, listable and replayable.

pub mod accept;
pub mod commit;
pub mod evidence;
pub mod grpc;
pub mod http;
pub mod nats;
pub mod store;
pub mod submission;

use std::sync::Arc;

use tousu_kit::{Config, Running, ServiceSpec};

pub const NAME: &str = "intake";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Connects, migrates and serves; returns once serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let evidence = evidence::Evidence::open(
        &ctx.js,
        &ctx.config.environment,
        ctx.config.stream_replicas,
        ctx.config.max_attachment_bytes,
    )
    .await?;
    let intake = Arc::new(store::Intake::new(&ctx, evidence));
    let responder = nats::serve(ctx.nats.clone(), intake.clone(), ctx.cancel.clone()).await?;
    ctx.tracker.spawn(async move {
        let _ = responder.await;
    });
    let http = http::router(intake.clone());
    let grpc = grpc::routes(intake);
    tousu_kit::serve(&ctx, http, Some(grpc)).await
}
