//! Test harness for end-to-end tests: a real `nats-server` per test on a
//! random port with a temporary store, a fresh Postgres database per test,
//! and the services started in-process (or as child processes when a test
//! must SIGKILL one).
//!
//! Needs `DATABASE_URL` (an admin connection; `scripts/test` starts a
//! private cluster and sets it) and a `nats-server` ≥ 2.11 on `PATH` or in
//! `TOUSU_NATS_SERVER` (`scripts/bootstrap` installs one).

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tousu_kit::{Config, Running};

type StartFn = fn(Config) -> Pin<Box<dyn Future<Output = anyhow::Result<Running>> + Send>>;

/// The `start` function of a service by name.
pub fn service_by_name(name: &str) -> Option<StartFn> {
    Some(match name {
        "intake" => |c| Box::pin(tousu_intake::start(c)),
        "routing" => |c| Box::pin(tousu_routing::start(c)),
        "sla" => |c| Box::pin(tousu_sla::start(c)),
        "notify" => |c| Box::pin(tousu_notify::start(c)),
        "desk" => |c| Box::pin(tousu_desk::start(c)),
        _ => return None,
    })
}

pub const SERVICES: [&str; 5] = ["intake", "routing", "sla", "notify", "desk"];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `nats-server` child process with JetStream in a temporary store;
/// killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    _store: tempfile::TempDir,
}

impl NatsServer {
    pub async fn start() -> anyhow::Result<Self> {
        let bin = std::env::var("TOUSU_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let store = tempfile::tempdir()?;
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--store_dir",
            ])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {bin} (run scripts/bootstrap, or set TOUSU_NATS_SERVER)")
            })?;
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        };
        wait_until(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await
        .context("nats-server did not start")?;
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database on the server of `DATABASE_URL`.
pub async fn fresh_database() -> anyhow::Result<String> {
    let admin = std::env::var("DATABASE_URL")
        .context("DATABASE_URL must point at a Postgres server (scripts/test sets it)")?;
    let name = format!("tousu_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .context("connecting to DATABASE_URL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(base);
    Ok(format!("{base}/{name}{query}"))
}

/// The policy the tests use: `policies/default.toml`.
pub fn default_policy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml")
}

/// Tests in this binary run two at a time. Those that load the machine
/// (thousands of timers, SIGKILL and restart) hold this shared; the one
/// that checks a deadline fires within 100 ms holds it exclusively, so what
/// it measures is tousu and not a neighbour's burst.
pub static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A copy of the default policy with some `[section]` tables replaced
/// (e.g. `("sla.resolution", "default = { urgent = \"2s\", … }")`; for an
/// array of tables such as `[[escalation]]`, every entry), in a
/// temporary directory beside links to the shipped calendars and labeled
/// sets, so the copy loads like the original. Keep the directory alive
/// while the services run.
pub fn policy_with(sections: &[(&str, &str)]) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    profile_with("default", sections)
}

/// [`policy_with`] for another shipped profile (`property`, `bank` …).
pub fn profile_with(
    profile: &str,
    sections: &[(&str, &str)],
) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let original = default_policy().with_file_name(format!("{profile}.toml"));
    let shipped = original.parent().expect("policies directory");
    let text = std::fs::read_to_string(&original)?;
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    let mut replaced: Vec<&str> = Vec::new();
    for line in text.lines() {
        let header = line.trim_start().starts_with('[');
        if header {
            skipping = false;
            let name = line.trim().trim_start_matches('[').trim_end_matches(']');
            if let Some((section, body)) = sections.iter().find(|(s, _)| *s == name) {
                // An array of tables (`[[escalation]]`) is replaced whole:
                // the body takes the first one's place, the others go.
                if !replaced.contains(section) {
                    replaced.push(section);
                    out.push_str(line);
                    out.push('\n');
                    out.push_str(body);
                    out.push('\n');
                }
                skipping = true;
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let dir = tempfile::tempdir()?;
    for linked in ["calendars", "testdata"] {
        std::os::unix::fs::symlink(
            shipped.join(linked).canonicalize()?,
            dir.path().join(linked),
        )?;
    }
    let path = dir.path().join("test.toml");
    std::fs::write(&path, out)?;
    Ok((dir, path))
}

/// Runs `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("condition not met within {timeout:?}")
}

/// Changes a service's configuration before it starts (`(service, config)`).
pub type Configure = std::sync::Arc<dyn Fn(&str, &mut Config) + Send + Sync>;

/// NATS, a database and the five services.
pub struct Stack {
    pub nats: NatsServer,
    pub database_url: String,
    pub services: Vec<(&'static str, Running)>,
    pub configure: Option<Configure>,
}

impl Stack {
    /// Starts every service but those in `except`.
    pub async fn start_except(except: &[&str]) -> anyhow::Result<Self> {
        init_test_logging();
        let nats = NatsServer::start().await?;
        let database_url = fresh_database().await?;
        let mut stack = Stack {
            nats,
            database_url,
            services: Vec::new(),
            configure: None,
        };
        for name in SERVICES.iter().filter(|s| !except.contains(s)) {
            stack.start_service(name).await?;
        }
        Ok(stack)
    }

    /// Starts only the services in `only`, each configured by `configure`.
    pub async fn start_only(
        only: &[&'static str],
        configure: impl Fn(&str, &mut Config) + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        init_test_logging();
        let mut stack = Stack {
            nats: NatsServer::start().await?,
            database_url: fresh_database().await?,
            services: Vec::new(),
            configure: Some(std::sync::Arc::new(configure)),
        };
        for name in only {
            stack.start_service(name).await?;
        }
        Ok(stack)
    }

    pub async fn start() -> anyhow::Result<Self> {
        Self::start_except(&[]).await
    }

    /// The configuration a service gets in this stack (ports picked by the OS).
    pub fn config(&self, service: &str) -> Config {
        let mut config = Config {
            nats_url: self.nats.url.clone(),
            database_url: self.database_url.clone(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            policy: default_policy(),
            shutdown_grace_secs: 5,
            connect_timeout_secs: 20,
            // The daily digest of major complaints only where a test asks
            // for it: it would otherwise go out at whatever time tests run.
            notify_major_digest_at: String::new(),
            ..Config::defaults(service)
        };
        if let Some(configure) = &self.configure {
            configure(service, &mut config);
        }
        config
    }

    pub async fn start_service(&mut self, name: &'static str) -> anyhow::Result<()> {
        let start = service_by_name(name).expect("known service");
        let running = start(self.config(name))
            .await
            .with_context(|| format!("starting {name}"))?;
        self.services.push((name, running));
        Ok(())
    }

    pub fn service(&self, name: &str) -> &Running {
        &self
            .services
            .iter()
            .find(|(n, _)| *n == name)
            .expect("service running")
            .1
    }

    pub fn http(&self, name: &str) -> SocketAddr {
        self.service(name).http_addr
    }

    /// The environment a child-process service needs to join this stack.
    pub fn child_env(&self, service: &str) -> Vec<(String, String)> {
        let p = format!("TOUSU_{}_", service.to_ascii_uppercase());
        vec![
            (format!("{p}NATS_URL"), self.nats.url.clone()),
            (format!("{p}DATABASE_URL"), self.database_url.clone()),
            (
                format!("{p}HTTP_ADDR"),
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                format!("{p}GRPC_ADDR"),
                format!("127.0.0.1:{}", free_port()),
            ),
            (format!("{p}POLICY"), default_policy().display().to_string()),
        ]
    }

    /// A connection to the service's schema, to check its tables.
    pub async fn db(&self, schema: &str) -> anyhow::Result<PgConnection> {
        let mut conn = PgConnection::connect(&self.database_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        for (_, running) in self.services {
            running.stop().await?;
        }
        Ok(())
    }
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber_init();
    }
}

fn tracing_subscriber_init() -> Option<()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::mem::forget(tousu_kit::telemetry::init("test"));
    });
    Some(())
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `field`s named by a problem+json body's `errors`.
    pub fn problem_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough to
/// drive the services as a connector would.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(req.as_bytes()).await?;
    // A server may answer (413) and close before reading a large body; read its answer anyway.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end])?.trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).context("short chunk")?);
        data = data.get(size + 2..).context("short chunk")?;
    }
}

/// POSTs a web-form JSON complaint to intake.
pub async fn submit_json(
    intake: SocketAddr,
    body: &Value,
    extra_headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra_headers);
    http(
        intake,
        "POST",
        "/v1/complaints",
        &headers,
        body.to_string().as_bytes(),
    )
    .await
}

/// GETs a complaint from desk.
pub async fn desk_case(desk: SocketAddr, id: &str) -> anyhow::Result<HttpResponse> {
    http(desk, "GET", &format!("/v1/complaints/{id}"), &[], b"").await
}

/// Waits until desk shows the complaint with `status`.
pub async fn wait_for_status(
    desk: SocketAddr,
    id: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = desk_case(desk, id).await
            && r.status == 200
        {
            last = r.json();
            if last["status"] == status {
                return Ok(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("complaint {id} not {status} in desk within {timeout:?}; last seen {last}")
}

/// A child process killed (SIGKILL) and reaped on drop, so a failing test
/// leaves no service behind.
pub struct ChildProcess(Child);

impl ChildProcess {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        cmd.spawn().map(ChildProcess)
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(|_| ())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Writes a pending webhook delivery of `message` to `recipient` at
/// `address` into notify's table as the planner does (`plan::insert` and
/// `send::announce` in one transaction): cause, complaint and event type
/// come from the message. Its id.
pub async fn pending_webhook(
    db: &mut PgConnection,
    channels: &tousu_notify::channels::Channels,
    recipient: &str,
    address: &str,
    message: tousu_notify::model::Message,
) -> anyhow::Result<i64> {
    let cause = uuid::Uuid::parse_str(&message.event_id)?;
    let now = time::OffsetDateTime::now_utc();
    let row = tousu_notify::plan::Row {
        cause_event_id: cause,
        complaint_id: uuid::Uuid::parse_str(&message.complaint_id)?,
        event_type: message.event_type.clone(),
        recipient: recipient.into(),
        channel: "webhook".into(),
        status: "pending".into(),
        detail: String::new(),
        address: address.into(),
        endpoint: channels.endpoint("webhook", address),
        rule: message.event_type.clone(),
        message,
        event_at: now,
        next_attempt_at: now,
        step: 0,
        ack_token: None,
        digest_of: None,
        due_by: None,
        fallbacks: Vec::new(),
    };
    let mut tx = db.begin().await?;
    tousu_notify::plan::insert(&mut tx, std::slice::from_ref(&row)).await?;
    tousu_notify::send::announce(&mut tx).await?;
    let id = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE cause_event_id = $1 AND recipient = $2 AND channel = 'webhook'",
    )
    .bind(cause)
    .bind(recipient)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Runs the `tousu` binary at `bin` (a CLI test's `CARGO_BIN_EXE_tousu`)
/// with `args`: whether it succeeded, and its stdout and stderr.
pub fn run_cli(bin: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("running tousu");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
