//! tousu intake: takes complaints in from every channel, commits them, and
//! publishes `complaint.received.<channel>`.
//!
//! A request flows: [`http`] (or [`grpc`]) parses the body → [`submission`]
//! validates it into one complaint record, naming every invalid field →
//! [`store::submit`] commits the complaint, its dedup key, its tracking
//! number and the `complaint.received` event (outbox) in one transaction →
//! only then the caller gets 202 (or gRPC OK). Rejected input is kept in the
//! quarantine table with its reason.

pub mod grpc;
pub mod http;
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
    let intake = Arc::new(store::Intake::new(&ctx));
    let http = http::router(intake.clone(), ctx.config.max_body_bytes);
    let grpc = grpc::routes(intake);
    tousu_kit::serve(&ctx, http, Some(grpc)).await
}
