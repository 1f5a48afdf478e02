//! The tousu service kit: what every service does the same way.
//!
//! A service's `main.rs` is a handful of lines:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     // config (exit 64 when invalid) → telemetry → start (connect, migrate,
//!     // serve) → SIGTERM/SIGINT → drain with a grace timeout
//!     tousu_kit::run(tousu_intake::NAME, tousu_intake::start).await
//! }
//! ```
//!
//! - [`config`]: layered configuration (file, then `TOUSU_*` environment).
//! - [`telemetry`]: tracing, OTLP export (`OTEL_*`), Prometheus metrics.
//! - [`boot`]: connect to NATS and Postgres, create the schema, migrate,
//!   provision streams, start the outbox relay.
//! - [`serve`]: HTTP (with `/healthz`, `/readyz`, `/metrics`) and gRPC servers.
//! - [`shutdown`]: signals and the drain.
//! - [`problem`]: RFC 9457 problem+json responses.
//! - [`html`]: escaping for the HTML services write themselves.
//! - [`listen`]: Postgres `LISTEN` with reconnection.

pub mod boot;
pub mod config;
pub mod html;
pub mod listen;
pub mod problem;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use boot::{Ctx, ServiceSpec, boot};
pub use config::{Config, ConfigError};
pub use problem::Problem;
pub use serve::{Running, serve};

/// A service's whole life as a process: configuration (exit 64 when
/// invalid, before any port is bound), telemetry, `start`, then serve until
/// SIGTERM/SIGINT and drain.
pub async fn run<F, Fut>(name: &str, start: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<Running>>,
{
    let config = Config::load_or_exit(name);
    let _telemetry = telemetry::init(name);
    let running = start(config).await?;
    shutdown::signal().await;
    running.stop().await
}
