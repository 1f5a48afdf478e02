//! Start-up shared by every service: connect, prepare the schema, migrate,
//! provision the streams, start the outbox relay.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tousu_bus::{ConsumerSpec, Handler, Outbox};

use crate::Config;

/// What distinguishes one service at start.
pub struct ServiceSpec {
    /// `intake`, `routing`, …: the Postgres schema, the outbox producer name
    /// and the prefix of per-service environment variables.
    pub name: &'static str,
    /// The service's own migrations (`sqlx::migrate!()`).
    pub migrator: &'static Migrator,
}

/// A booted service: its connections and the means to stop its tasks.
#[derive(Clone)]
pub struct Ctx {
    pub name: &'static str,
    pub config: Arc<Config>,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub pool: PgPool,
    pub outbox: Outbox,
    /// Fires when the service must stop taking work.
    pub cancel: CancellationToken,
    /// Every background task, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Ctx {
    /// Runs an idempotent consumer until shutdown.
    pub fn spawn_consumer<H: Handler>(&self, spec: ConsumerSpec, handler: Arc<H>) {
        let (js, pool, outbox, cancel) = (
            self.js.clone(),
            self.pool.clone(),
            self.outbox.clone(),
            self.cancel.clone(),
        );
        let name = spec.durable.clone();
        self.tracker.spawn(async move {
            if let Err(e) =
                tousu_bus::consumer::run(js, pool, spec, handler, Some(outbox), cancel).await
            {
                tracing::error!(consumer = %name, error = %e, "consumer stopped");
            }
        });
    }
}

fn schema_ident(name: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {name:?} must be lower-case letters and _"
    );
    Ok(name)
}

async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    deadline: Instant,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut wait = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, "{what} not reachable yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => anyhow::bail!("{what} not reachable: {e}"),
        }
    }
}

/// Connects to NATS and Postgres (retrying for `connect_timeout_secs`),
/// creates the service's schema, its bus tables and runs its migrations,
/// provisions the streams and starts the outbox relay.
pub async fn boot(spec: &ServiceSpec, config: Config) -> anyhow::Result<Ctx> {
    let deadline = Instant::now() + Duration::from_secs(config.connect_timeout_secs);
    let schema = schema_ident(spec.name)?;

    let nats_name = format!("tousu-{}", spec.name);
    let nats = retry("NATS", deadline, || {
        async_nats::ConnectOptions::new()
            .name(&nats_name)
            .connect(config.nats_url.as_str())
    })
    .await?;
    let js = jetstream::new(nats.clone());

    let options = PgConnectOptions::from_str(&config.database_url)
        .context("database_url")?
        .options([("search_path", schema)]);
    let pool = retry("Postgres", deadline, || {
        PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
    })
    .await?;

    {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tousu.create_schema'))")
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    tousu_bus::store::ensure_tables(&pool)
        .await
        .context("creating the outbox/inbox tables")?;
    spec.migrator
        .run(&pool)
        .await
        .with_context(|| format!("migrating schema {schema}"))?;
    retry("JetStream", deadline, || {
        tousu_bus::streams::provision(&js, config.stream_replicas)
    })
    .await?;

    let ctx = Ctx {
        name: spec.name,
        config: Arc::new(config),
        nats,
        js,
        pool,
        outbox: Outbox::new(spec.name),
        cancel: CancellationToken::new(),
        tracker: TaskTracker::new(),
    };
    ctx.tracker.spawn(tousu_bus::relay::run(
        ctx.outbox.clone(),
        ctx.pool.clone(),
        ctx.js.clone(),
        ctx.cancel.clone(),
    ));
    tracing::info!(
        service = spec.name,
        "connected, migrated, streams provisioned"
    );
    Ok(ctx)
}
