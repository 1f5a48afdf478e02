//! The tousu service kit: what every service does the same way.
//!
//! A service's `main.rs` is a handful of lines:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! # async fn start(_: tousu_kit::Config) -> anyhow::Result<tousu_kit::Running> { unimplemented!() }
//! let config = tousu_kit::Config::load_or_exit("intake"); // exit 64 on bad config
//! let _telemetry = tousu_kit::telemetry::init("intake");
//! let running = start(config).await?;                     // connect, migrate, serve
//! tousu_kit::shutdown::signal().await;                    // SIGTERM / SIGINT
//! running.stop().await                                    // drain with a grace timeout
//! # }
//! ```
//!
//! - [`config`]: layered configuration (file, then `TOUSU_*` environment).
//! - [`telemetry`]: tracing, OTLP export (`OTEL_*`), Prometheus metrics.
//! - [`boot`]: connect to NATS and Postgres, create the schema, migrate,
//!   provision streams, start the outbox relay.
//! - [`serve`]: HTTP (with `/healthz`, `/readyz`, `/metrics`) and gRPC servers.
//! - [`shutdown`]: signals and the drain.
//! - [`problem`]: RFC 9457 problem+json responses.

pub mod boot;
pub mod config;
pub mod problem;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use boot::{Ctx, ServiceSpec, boot};
pub use config::{Config, ConfigError};
pub use problem::Problem;
pub use serve::{Running, serve};
