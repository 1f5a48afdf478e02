//! `tousu up`: the whole stack on one machine.
//!
//! Start: nats-server (unless `TOUSU_NATS_URL` names one), a private
//! Postgres cluster (unless `DATABASE_URL` names one), then `tousu service
//! <name>` for each service, each in its own process with its log in
//! `<data>/logs`; ready when every `/readyz` answers 200. Stop, on
//! SIGINT/SIGTERM or when any child ends: the services (SIGTERM, they
//! drain), then nats-server, then Postgres.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::Command;
use tousu_kit::config::default_ports;

use crate::service::Service;
use postgres::Cluster;
use procs::{Exit, Procs};

pub(crate) mod nats;
pub(crate) mod postgres;
mod procs;

/// How long the services get to become ready (first start runs migrations).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long nats-server gets to accept JetStream requests.
const NATS_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a child gets after SIGTERM; a service's own grace is 10 s.
const STOP_GRACE: Duration = Duration::from_secs(20);
const NATS_SERVER: &str = "nats-server";

#[derive(clap::Args)]
pub struct Args {
    /// Directory for the NATS store, the Postgres cluster and the logs.
    #[arg(long, default_value = ".tousu")]
    data: PathBuf,
    /// Policy file the services load [default: policies/default.toml of the repository].
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Port of the private Postgres cluster (not used when DATABASE_URL is set).
    #[arg(long, default_value_t = 5433)]
    pg_port: u16,
    /// Port of the local nats-server (not used when TOUSU_NATS_URL is set).
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
}

/// What `up` runs, so that it can all be stopped.
struct Stack {
    procs: Procs,
    cluster: Option<Cluster>,
}

/// Where the running stack answers.
struct Endpoints {
    nats_url: String,
    database_url: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let repo = repo_root(&cwd);
    let data = cwd.join(&args.data);
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let policy = match &args.policy {
        Some(p) => cwd.join(p),
        None => repo.join("policies/default.toml"),
    };
    let version = crate::policy::load(&policy)?.version;

    let mut stack = Stack {
        procs: Procs::new(&logs),
        cluster: None,
    };
    let signal = tousu_kit::shutdown::signal();
    tokio::pin!(signal);
    let started = tokio::select! {
        r = stack.start(&args, &repo, &data, &policy) => Some(r),
        _ = &mut signal => None,
    };
    let outcome = match started {
        None => {
            eprintln!("interrupted while starting");
            Ok(())
        }
        Some(Err(e)) => Err(e),
        Some(Ok(endpoints)) => {
            print_endpoints(&endpoints, &logs, &policy, &version);
            tokio::select! {
                _ = &mut signal => Ok(()),
                exit = stack.procs.exited() => Err(stack.unexpected(exit)),
            }
        }
    };
    if let Err(e) = &outcome {
        eprintln!("tousu up: {e:#}");
    }
    stack.stop().await;
    outcome.map_err(|_| anyhow::anyhow!("the stack was stopped after the failure above"))
}

impl Stack {
    async fn start(
        &mut self,
        args: &Args,
        repo: &Path,
        data: &Path,
        policy: &Path,
    ) -> anyhow::Result<Endpoints> {
        let own_nats = std::env::var("TOUSU_NATS_URL").is_err();
        let external_db = std::env::var("TOUSU_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .ok();
        let mut ports: Vec<(u16, &str)> = Service::ALL
            .iter()
            .flat_map(|s| {
                let (http, grpc) = default_ports(s.name());
                [(http, s.name()), (grpc, s.name())]
            })
            .collect();
        if own_nats {
            ports.push((args.nats_port, NATS_SERVER));
        }
        if external_db.is_none() {
            ports.push((args.pg_port, "postgres"));
        }
        for (port, who) in ports {
            std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                format!("port {port} (for {who}) is taken: is a stack already up?")
            })?;
        }

        let nats_url = match std::env::var("TOUSU_NATS_URL") {
            Ok(url) => url,
            Err(_) => {
                let binary = nats::server_binary(repo).await?;
                let mut command = Command::new(&binary);
                command
                    .args(["-js", "--store_dir"])
                    .arg(data.join("nats"))
                    .args(["-p", &args.nats_port.to_string(), "-a", "127.0.0.1"]);
                self.procs.spawn(NATS_SERVER, command)?;
                let url = format!("nats://127.0.0.1:{}", args.nats_port);
                println!("nats-server {} started at {url}", binary.display());
                self.watch(wait_for_nats(&url)).await?;
                url
            }
        };

        let database_url = match external_db {
            Some(url) => url,
            None => {
                let url = Cluster::start(data, args.pg_port, &mut self.cluster).await?;
                println!("Postgres started at {url}");
                url
            }
        };

        let exe = std::env::current_exe().context("locating the tousu binary")?;
        for service in Service::ALL {
            let name = service.name();
            let (http, grpc) = default_ports(name);
            let prefix = format!("TOUSU_{}_", name.to_ascii_uppercase());
            let mut command = Command::new(&exe);
            command
                .args(["service", name])
                .env("TOUSU_NATS_URL", &nats_url)
                .env("TOUSU_DATABASE_URL", &database_url)
                .env("TOUSU_POLICY", policy)
                .env("NO_COLOR", "1")
                .env(format!("{prefix}HTTP_ADDR"), format!("127.0.0.1:{http}"))
                .env(format!("{prefix}GRPC_ADDR"), format!("127.0.0.1:{grpc}"));
            self.procs.spawn(name, command)?;
        }
        self.watch(wait_until_ready()).await?;
        Ok(Endpoints {
            nats_url,
            database_url,
        })
    }

    /// Runs `work` unless a child ends first.
    async fn watch<T>(
        &mut self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            r = work => r,
            exit = self.procs.exited() => Err(self.unexpected(exit)),
        }
    }

    /// The error for a child that ended on its own, with its last words.
    fn unexpected(&self, exit: Exit) -> anyhow::Error {
        anyhow::anyhow!(
            "{exit} unexpectedly\n{}",
            self.procs.log_tail(&exit.name, 20)
        )
    }

    /// Services first (they drain into NATS and Postgres), then NATS,
    /// then Postgres.
    async fn stop(&mut self) {
        if self.procs.is_empty() && self.cluster.is_none() {
            return;
        }
        eprintln!("stopping…");
        let services = Service::ALL.map(Service::name);
        self.procs.stop(&services, STOP_GRACE).await;
        self.procs.stop(&[NATS_SERVER], STOP_GRACE).await;
        if let Some(cluster) = self.cluster.take() {
            cluster.stop().await;
        }
        eprintln!("stopped");
    }
}

/// Until nats-server answers JetStream requests.
async fn wait_for_nats(url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + NATS_TIMEOUT;
    loop {
        let attempt = async {
            let client = async_nats::connect(url).await?;
            async_nats::jetstream::new(client).query_account().await?;
            Ok::<_, async_nats::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(())) => return Ok(()),
            _ if tokio::time::Instant::now() > deadline => {
                anyhow::bail!("nats-server at {url} not ready after {NATS_TIMEOUT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Until every service's `/readyz` answers 200.
async fn wait_until_ready() -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut pending: Vec<&str> = Service::ALL.map(Service::name).to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for name in pending {
            let url = format!("http://127.0.0.1:{}/readyz", default_ports(name).0);
            match client.get(&url).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => println!("{name} ready"),
                _ => still.push(name),
            }
        }
        pending = still;
        if !pending.is_empty() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "not ready after {READY_TIMEOUT:?}: {}",
                pending.join(", ")
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

fn print_endpoints(e: &Endpoints, logs: &Path, policy: &Path, version: &str) {
    println!("\ntousu is up\n");
    println!("  {:<9} {:<24} gRPC", "service", "HTTP");
    for service in Service::ALL {
        let name = service.name();
        let (http, grpc) = default_ports(name);
        // sla and notify serve no gRPC yet; they keep their port free.
        let (note, grpc) = match service {
            Service::Intake => (
                "POST /v1/complaints, /v1/channels/*, GET /form",
                format!("127.0.0.1:{grpc}"),
            ),
            Service::Routing => ("POST /v1/explain", format!("127.0.0.1:{grpc}")),
            Service::Desk => ("GET /v1/complaints/{id}", format!("127.0.0.1:{grpc}")),
            _ => ("", "-".to_owned()),
        };
        println!(
            "  {name:<9} {:<24} {grpc:<17} {note}",
            format!("http://127.0.0.1:{http}")
        );
    }
    println!();
    println!("  NATS          {}", e.nats_url);
    println!("  DATABASE_URL  {}", e.database_url);
    println!("  policy        {} ({version})", policy.display());
    println!("  logs          {}", logs.display());
    println!("\nEvery service also serves /healthz, /readyz and /metrics.");
    println!("Try `tousu submit` and `tousu tail` in another terminal. Ctrl-C stops everything.\n");
}

/// The repository `tousu` runs from (where `.tools/` and `policies/` are):
/// the nearest ancestor of the working directory holding the workspace,
/// else the one this binary was built from.
pub(crate) fn repo_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("cli/Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .filter(|p| p.is_dir())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// An executable `name` in a directory of PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
