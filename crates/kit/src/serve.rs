//! HTTP and gRPC servers, health endpoints, and the graceful stop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Ctx;

/// A running service.
pub struct Running {
    pub http_addr: SocketAddr,
    pub grpc_addr: Option<SocketAddr>,
    ctx: Ctx,
}

impl Running {
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Stops taking work, lets in-flight work finish for up to the grace
    /// period, then drains the NATS connection.
    pub async fn stop(self) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.ctx.config.shutdown_grace_secs);
        self.ctx.cancel.cancel();
        self.ctx.tracker.close();
        if tokio::time::timeout(grace, self.ctx.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = self.ctx.name,
                ?grace,
                "grace period over; stopping anyway"
            );
        }
        self.ctx.nats.drain().await?;
        self.ctx.pool.close().await;
        tracing::info!(service = self.ctx.name, "stopped");
        Ok(())
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready only when NATS is connected and Postgres answers (migrations ran
/// before the server started).
async fn readyz(State(ctx): State<Ctx>) -> impl IntoResponse {
    let nats_ok = matches!(
        ctx.nats.connection_state(),
        async_nats::connection::State::Connected
    );
    let pg_ok = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&ctx.pool),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let body = serde_json::json!({ "nats": nats_ok, "postgres": pg_ok, "migrations": true });
    let status = if nats_ok && pg_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}

/// Binds the configured addresses and serves `http` (plus `/healthz`,
/// `/readyz`, `/metrics`) and, when given, the gRPC `routes`.
pub async fn serve(
    ctx: &Ctx,
    http: Router,
    grpc: Option<tonic::service::Routes>,
) -> anyhow::Result<Running> {
    let router = http
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .with_state(ctx.clone()),
        )
        .route("/metrics", get(metrics));
    let listener = TcpListener::bind(ctx.config.http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding HTTP {}: {e}", ctx.config.http_addr))?;
    let http_addr = listener.local_addr()?;
    let cancel = ctx.cancel.clone();
    ctx.tracker.spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        // Handlers may read the client address (`ConnectInfo<SocketAddr>`),
        // e.g. to rate-limit a public form.
        let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let grpc_addr = match grpc {
        None => None,
        Some(routes) => {
            let listener = TcpListener::bind(ctx.config.grpc_addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding gRPC {}: {e}", ctx.config.grpc_addr))?;
            let addr = listener.local_addr()?;
            let cancel = ctx.cancel.clone();
            ctx.tracker.spawn(async move {
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let result = tonic::transport::Server::builder()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            });
            Some(addr)
        }
    };
    tracing::info!(service = ctx.name, %http_addr, ?grpc_addr, "serving");
    Ok(Running {
        http_addr,
        grpc_addr,
        ctx: ctx.clone(),
    })
}
