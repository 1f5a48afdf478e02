//! `tousu bench intake`: accepted complaints per second over HTTP with
//! durable commit, and latency at a fixed offered rate.
//!
//! Without `--url` it brings up its own stack in a temporary directory: a
//! nats-server with JetStream on disk, a Postgres cluster with its default
//! durability (`fsync` and `synchronous_commit` on), and the intake
//! service in this process; so the figures include a real WAL flush behind
//! every 202. With `--url` it loads an intake that is already running.
//!
//! Two phases, each printed as it ends:
//! 1. **throughput**: `--concurrency` clients post as fast as they are
//!    answered for `--seconds`; prints accepted/s and latency percentiles;
//! 2. **latency**: requests are sent on a fixed schedule of `--rate` per
//!    second for `--seconds` (open loop: a slow answer does not delay the
//!    next request), latency measured from the scheduled send time, so a
//!    stall shows in the percentiles instead of hiding (no coordinated
//!    omission).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tokio::process::Command;

use crate::up::{nats, postgres::Cluster};

#[derive(clap::Args)]
pub struct IntakeArgs {
    /// Intake to load; default: start a private stack (nats-server, Postgres, intake).
    #[arg(long)]
    url: Option<String>,
    /// Clients in the throughput phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Offered requests per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of each phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// `Authorization: Bearer` key, when the intake requires one.
    #[arg(long, env = "TOUSU_BENCH_API_KEY")]
    api_key: Option<String>,
}

/// Latencies of one phase, in microseconds.
#[derive(Default)]
struct Sample {
    accepted: u64,
    failed: u64,
    micros: Vec<u64>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.accepted += other.accepted;
        self.failed += other.failed;
        self.micros.extend(other.micros);
    }

    fn percentile(sorted: &[u64], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
    }

    fn report(mut self, phase: &str, elapsed: Duration) {
        self.micros.sort_unstable();
        let secs = elapsed.as_secs_f64();
        println!(
            "{phase}: {} accepted in {secs:.1} s = {:.0} accepted/s ({} failed); latency ms p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.accepted,
            self.accepted as f64 / secs,
            self.failed,
            Self::percentile(&self.micros, 0.50),
            Self::percentile(&self.micros, 0.90),
            Self::percentile(&self.micros, 0.99),
            Self::percentile(&self.micros, 1.0),
        );
    }
}

/// A private stack for the benchmarks; stopped on drop of the guard.
pub(crate) struct Private {
    nats: tokio::process::Child,
    pub(crate) nats_url: String,
    pub(crate) database_url: String,
    cluster: Option<Cluster>,
    intake: Option<tousu_kit::Running>,
    _dir: tempfile::TempDir,
}

impl Private {
    /// nats-server with JetStream on disk and a Postgres cluster with its
    /// default durability, in a temporary directory.
    pub(crate) async fn infra(repo: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tousu-bench-")
            .tempdir_in("/tmp")?;
        std::fs::create_dir_all(dir.path().join("logs"))?;
        let nats_port = free_port()?;
        let binary = nats::server_binary(repo).await?;
        let nats = Command::new(&binary)
            .args(["-js", "--store_dir"])
            .arg(dir.path().join("nats"))
            .args(["-p", &nats_port.to_string(), "-a", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server")?;
        let mut private = Private {
            nats,
            nats_url: String::new(),
            database_url: String::new(),
            cluster: None,
            intake: None,
            _dir: dir,
        };
        let nats_url = format!("nats://127.0.0.1:{nats_port}");
        let pg_port = free_port()?;
        let database_url =
            Cluster::start(private._dir.path(), pg_port, &mut private.cluster).await?;
        private.nats_url = nats_url;
        private.database_url = database_url;
        Ok(private)
    }

    async fn start(repo: &Path) -> anyhow::Result<(Self, String)> {
        let mut private = Private::infra(repo).await?;
        let mut config = tousu_kit::Config::defaults(tousu_intake::NAME);
        config.nats_url = private.nats_url.clone();
        config.database_url = private.database_url.clone();
        config.http_addr = "127.0.0.1:0".parse()?;
        config.grpc_addr = "127.0.0.1:0".parse()?;
        config.db_max_connections = 8;
        let running = tousu_intake::start(config).await?;
        let url = format!("http://{}", running.http_addr);
        private.intake = Some(running);
        Ok((private, url))
    }

    pub(crate) async fn stop(mut self) {
        if let Some(running) = self.intake.take() {
            let _ = running.stop().await;
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.stop().await;
        }
        let _ = self.nats.kill().await;
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn intake(args: IntakeArgs, repo: &Path) -> anyhow::Result<()> {
    let (private, url) = match &args.url {
        Some(url) => (None, url.trim_end_matches('/').to_owned()),
        None => {
            println!("starting a private stack (nats-server, Postgres with fsync on, intake)…");
            let (p, url) = Private::start(repo).await?;
            (Some(p), url)
        }
    };
    let mut result = run_phases(&args, &url).await;
    if let Some(p) = private {
        if result.is_ok() {
            result = p.report_relay().await;
        }
        p.stop().await;
    }
    result
}

impl Private {
    /// How long the outbox relay needed, after the load, to publish every
    /// accepted complaint's event to JetStream.
    async fn report_relay(&self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let ended = Instant::now();
        let mut db = sqlx::PgConnection::connect(&self.database_url).await?;
        loop {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.outbox")
                .fetch_one(&mut db)
                .await?;
            if waiting == 0 || ended.elapsed() > Duration::from_secs(120) {
                let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.complaints")
                    .fetch_one(&mut db)
                    .await?;
                let js = async_nats::jetstream::new(async_nats::connect(&self.nats_url).await?);
                let published = js
                    .get_stream("TOUSU_EVENTS")
                    .await?
                    .info()
                    .await?
                    .state
                    .messages;
                println!(
                    "relay: {committed} complaints committed, {published} events on TOUSU_EVENTS, \
                     outbox {} {:.1} s after the load ended",
                    if waiting == 0 {
                        "empty"
                    } else {
                        "still draining"
                    },
                    ended.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn run_phases(args: &IntakeArgs, url: &str) -> anyhow::Result<()> {
    let endpoint = format!("{url}/v1/complaints");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(256))
        .timeout(Duration::from_secs(10))
        .build()?;
    let run = uuid_like();
    let counter = Arc::new(AtomicU64::new(0));
    let phase = Duration::from_secs(args.seconds);
    let post = {
        let (client, endpoint, key, counter) = (
            client.clone(),
            endpoint.clone(),
            args.api_key.clone(),
            counter.clone(),
        );
        move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let mut request = client.post(&endpoint).json(&json!({
                "external_id": format!("bench-{run}-{n}"),
                "title": "快递延误",
                "description": format!("第 {n} 件：快递已经五天没有更新物流信息，客服电话无人接听，请尽快处理。"),
                "phone": "13812345678",
                "product": "快递服务",
            }));
            if let Some(k) = &key {
                request = request.bearer_auth(k);
            }
            request.send()
        }
    };

    // Warm up connections and the database.
    for _ in 0..50 {
        let _ = post().await;
    }

    println!(
        "throughput phase: {} clients for {} s against {endpoint}",
        args.concurrency, args.seconds
    );
    let start = Instant::now();
    let deadline = start + phase;
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let post = post.clone();
        clients.push(tokio::spawn(async move {
            let mut s = Sample::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                match post().await {
                    Ok(r) if r.status().as_u16() == 202 => {
                        s.accepted += 1;
                        s.micros.push(t.elapsed().as_micros() as u64);
                    }
                    _ => s.failed += 1,
                }
            }
            s
        }));
    }
    let mut total = Sample::default();
    for c in clients {
        total.merge(c.await?);
    }
    total.report("throughput", start.elapsed());

    println!(
        "latency phase: {} requests/s offered for {} s",
        args.rate, args.seconds
    );
    let interval = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let start = Instant::now();
    let count = args.rate * args.seconds;
    let mut requests = Vec::with_capacity(count as usize);
    for i in 0..count {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let post = post.clone();
        requests.push(tokio::spawn(async move {
            let ok = matches!(post().await, Ok(r) if r.status().as_u16() == 202);
            (ok, scheduled.elapsed().as_micros() as u64)
        }));
    }
    let mut total = Sample::default();
    for r in requests {
        let (ok, micros) = r.await?;
        if ok {
            total.accepted += 1;
            total.micros.push(micros);
        } else {
            total.failed += 1;
        }
    }
    total.report("latency", start.elapsed());
    Ok(())
}

/// A short unique run id, so that repeated runs don't collide on dedup keys.
fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}", t.as_nanos())
}

/// `tousu bench classify FILE`: accuracy and confusion matrix of the
/// policy's classifier on a labeled JSONL set (one complaint per line with
/// its expected `category`), and classifications per second.
pub fn classify(file: &Path, policy: &Path, show_misses: bool) -> anyhow::Result<()> {
    use tousu_policy::classify::Classifier;

    let policy = crate::policy::load(policy)?;
    let keywords = Classifier::new(&policy.taxonomy, policy.classify_threshold)
        .map_err(|e| anyhow::anyhow!("taxonomy of {}: {e}", policy.name))?;
    // With `classifier_training`, the policy's classifier is keywords +
    // the model trained on that file; the keywords alone are shown too.
    let trained = if policy.classifier_training.is_empty() {
        None
    } else {
        let start = Instant::now();
        let classifier = Classifier::with_training(
            &policy.taxonomy,
            policy.classify_threshold,
            &policy.classifier_training,
        )
        .map_err(|e| anyhow::anyhow!("classifier_training of {}: {e}", policy.name))?;
        Some((classifier, start.elapsed()))
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let samples = tousu_policy::classify::load_jsonl(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    anyhow::ensure!(!samples.is_empty(), "{} has no samples", file.display());
    println!(
        "policy {} ({}), {} samples from {}",
        policy.name,
        policy.version,
        samples.len(),
        file.display()
    );
    let classifier = match &trained {
        Some((classifier, took)) => {
            let vocabulary = classifier.model().map_or(0, |m| m.vocabulary_len());
            println!(
                "model: naive Bayes trained on {} samples of {} in {:.0} ms, {vocabulary} features",
                policy.classifier_training.len(),
                policy.classifier_training_file.as_deref().unwrap_or("?"),
                took.as_secs_f64() * 1e3
            );
            let alone = tousu_policy::classify::evaluate(&keywords, &samples);
            println!(
                "keywords alone: {:.1}% ({}/{})",
                alone.accuracy * 100.0,
                alone.correct,
                alone.total
            );
            println!("keywords + model:");
            classifier
        }
        None => &keywords,
    };
    let evaluation = tousu_policy::classify::evaluate(classifier, &samples);
    println!("{evaluation}");
    if show_misses {
        for m in &evaluation.misses {
            println!(
                "miss {}: expected {} got {} ({:.2}) terms {:?}",
                m.id, m.expected, m.predicted, m.confidence, m.terms
            );
        }
    }
    // Speed: classify the whole set repeatedly for about a second.
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for s in &samples {
            std::hint::black_box(classifier.classify(&s.input()));
            n += 1;
        }
    }
    println!(
        "speed: {:.0} classifications/s on one core",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `tousu bench routing`: in-process decisions per second on one core —
/// classification, similarity lookup (against an index of `index_size`
/// earlier complaints), grading and routing — as routing runs them.
pub fn routing(
    policy: &Path,
    corpus: &Path,
    index_size: usize,
    decisions: usize,
) -> anyhow::Result<()> {
    use tousu_policy::engine::{Complaint, Engine};

    let policy = crate::policy::load(policy)?;
    let text =
        std::fs::read_to_string(corpus).with_context(|| format!("reading {}", corpus.display()))?;
    let samples = tousu_policy::classify::load_jsonl(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", corpus.display()))?;
    anyhow::ensure!(!samples.is_empty(), "{} has no samples", corpus.display());
    anyhow::ensure!(decisions > 0, "--decisions must be at least 1");
    tousu_policy::text::init();
    let mut engine = Engine::new(std::sync::Arc::new(policy), time::UtcOffset::UTC)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Synthetic history: the corpus's complaints, varied, from many people
    // and places over the last 30 days.
    let now = time::OffsetDateTime::now_utc();
    let places = [
        "3号楼",
        "5号楼",
        "天河店",
        "南山店",
        "Chaoyang store",
        "",
        "",
        "",
    ];
    let complaint = |i: usize, at: time::OffsetDateTime, keys: &[String]| {
        let s = &samples[i % samples.len()];
        (
            format!("{} 第{}次", s.text, i / samples.len()),
            s.title.clone(),
            s.product.clone(),
            places[i % places.len()].to_owned(),
            at,
            keys.to_vec(),
        )
    };
    let started = Instant::now();
    for i in 0..index_size {
        let at = now
            - time::Duration::seconds(((index_size - i) as i64 * 2_592_000) / index_size as i64);
        let keys = [format!("phone:+86138{:08}", i % 40_000)];
        let (text, title, product, location, at, keys) = complaint(i, at, &keys);
        let id = format!("h{i}");
        engine.decide(&Complaint {
            id: &id,
            received_at: Some(at),
            title: &title,
            description: &text,
            product: &product,
            location: &location,
            identity_keys: &keys,
            group_size: 1,
            ..Complaint::default()
        });
    }
    println!(
        "index: {index_size} complaints decided and indexed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The engine's memory with its index, before the inputs below.
    let indexed_rss = rss();

    // The complaints to decide on are built before the clock starts: the
    // figure is of decisions, not of generating test data.
    let inputs: Vec<_> = (0..decisions)
        .map(|i| {
            let keys = [format!("phone:+86139{:08}", i % 10_000)];
            let (text, title, product, location, _, keys) = complaint(i * 7 + 3, now, &keys);
            (format!("n{i}"), text, title, product, location, keys)
        })
        .collect();
    let mut micros = Vec::with_capacity(decisions);
    let started = Instant::now();
    for (id, text, title, product, location, keys) in &inputs {
        let t = Instant::now();
        let d = engine.decide(&Complaint {
            id,
            received_at: Some(now),
            title,
            description: text,
            product,
            location,
            identity_keys: keys,
            group_size: 1,
            ..Complaint::default()
        });
        // Dropped here, inside the measured time, as routing drops it
        // after publishing.
        std::hint::black_box(d);
        micros.push(t.elapsed().as_micros() as u64);
    }
    let secs = started.elapsed().as_secs_f64();
    micros.sort_unstable();
    println!(
        "routing: {decisions} decisions in {secs:.2} s = {:.0} decisions/s on one core (index of {index_size}); per decision µs p50 {}  p99 {}  max {}",
        decisions as f64 / secs,
        micros[micros.len() / 2],
        micros[micros.len() * 99 / 100],
        micros[micros.len() - 1],
    );
    if let (Some(indexed), Some(end)) = (indexed_rss, rss()) {
        println!("memory: {indexed} after indexing, {end} at the end (with the inputs)");
    }
    Ok(())
}

/// The process's resident set size as `/proc` says it (`123456 kB`).
fn rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" "),
    )
}
