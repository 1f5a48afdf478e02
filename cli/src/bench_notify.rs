//! `tousu bench notify`: event-to-delivered latency of notify under a burst
//! of SLA breaches.
//!
//! Brings up a private stack (nats-server, Postgres with fsync on), a
//! webhook receiver in this process (HTTP/1.1 with keep-alive, recording
//! the arrival time of every request) and notify in this process, with a
//! copy of `policies/default.toml` whose only notification rule sends
//! every `sla.breached` to the department head on the `webhook` channel
//! (the head of `logistics` gets the receiver as webhook contact; it is
//! also `notify_webhook_url`). Digests are out of the way
//! (`notify_digest_threshold` very high) and every breach is about a
//! complaint of its own.
//!
//! Then publishes `--rate` `sla.breached` events per second for
//! `--seconds` straight onto NATS, as sla would
//! (`tousu.evt.sla.breached.logistics`, protobuf `Event`, `Nats-Msg-Id`),
//! on a fixed schedule (open loop), and prints the latency from each
//! event's `occurred_at` to the arrival of its notification at the
//! receiver (p50/p90/p99/max), deliveries per second, duplicates and
//! failures (events without a notification, dead deliveries).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use sqlx::Connection as _;
use sqlx::types::Uuid;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tousu_bus::{EventExt, HEADER_EVENT, Payload, encode_event, to_timestamp};
use tousu_proto::v1 as pb;

use crate::bench::Private;

/// The department every breach is about, and its head (roster member).
const DEPARTMENT: &str = "logistics";
const HEAD: &str = "guo.qiang";

#[derive(clap::Args)]
pub struct NotifyArgs {
    /// Breaches published per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of the burst.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent sends of notify (`notify_workers`); default: its default.
    #[arg(long)]
    workers: Option<u32>,
    /// Events planned side by side per replica (`notify_planners`);
    /// default: its default.
    #[arg(long)]
    planners: Option<u32>,
    /// notify replicas (in this process), sharing the work.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Write the deliveries straight into notify's table (as the planner
    /// would) instead of publishing events: measures the sender alone.
    #[arg(long)]
    direct: bool,
    /// How long to wait for the last notifications after the burst.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
}

/// What the receiver saw: arrival time and body of every request.
type Arrivals = Arc<Mutex<Vec<(OffsetDateTime, Vec<u8>)>>>;

fn arrivals_lock(a: &Arrivals) -> std::sync::MutexGuard<'_, Vec<(OffsetDateTime, Vec<u8>)>> {
    a.lock().unwrap_or_else(|e| e.into_inner())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serves one keep-alive connection: every request is answered 200 `{"ok":true}`.
async fn connection(mut stream: TcpStream, arrivals: Arrivals) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let total = head_end + 4 + length;
        while buf.len() < total {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let at = OffsetDateTime::now_utc();
        let body = buf[head_end + 4..total].to_vec();
        buf.drain(..total);
        arrivals_lock(&arrivals).push((at, body));
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}",
            )
            .await?;
    }
}

async fn receive(listener: TcpListener, arrivals: Arrivals) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, arrivals.clone()));
    }
}

/// The UUIDs (8-4-4-4-12 hex) in a text.
fn uuids(text: &[u8]) -> Vec<String> {
    let shape = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    text.windows(36)
        .filter(|w| shape(w))
        .map(|w| String::from_utf8_lossy(w).to_ascii_lowercase())
        .collect()
}

/// A copy of the default policy: one notification rule (breaches to the
/// department head by webhook), the head's webhook contact set to `hook`.
fn bench_policy(repo: &Path, hook: &str) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let shipped = repo.join("policies");
    let text = std::fs::read_to_string(shipped.join("default.toml"))
        .context("reading policies/default.toml")?;
    let rule = "event = \"sla.breached\"\n\
                description = \"bench: every breach to the department head's webhook\"\n\
                roles = [\"department_head\"]\nchannels = [\"webhook\"]\n";
    let mut out = String::with_capacity(text.len());
    let (mut skipping, mut replaced, mut contact) = (false, false, false);
    let mut in_head = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            skipping = false;
            in_head = false;
            if trimmed == "[[notify]]" {
                if !replaced {
                    replaced = true;
                    out.push_str("[[notify]]\n");
                    out.push_str(rule);
                }
                skipping = true;
                continue;
            }
        }
        if skipping {
            continue;
        }
        if trimmed == format!("id = \"{HEAD}\"") {
            in_head = true;
        }
        if in_head && trimmed.starts_with("contacts = {") && trimmed.ends_with('}') {
            let inner = trimmed
                .trim_start_matches("contacts = {")
                .trim_end_matches('}')
                .trim();
            out.push_str(&format!("contacts = {{ {inner}, webhook = \"{hook}\" }}\n"));
            contact = true;
            in_head = false;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    anyhow::ensure!(
        replaced && contact,
        "policies/default.toml has no [[notify]] rules or no inline contacts for {HEAD}"
    );
    let dir = tempfile::Builder::new()
        .prefix("tousu-bench-policy-")
        .tempdir_in("/tmp")?;
    for linked in ["calendars", "testdata"] {
        let target = shipped.join(linked);
        if target.exists() {
            std::os::unix::fs::symlink(target.canonicalize()?, dir.path().join(linked))?;
        }
    }
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, out)?;
    Ok((dir, path))
}

fn breach(complaint: Uuid, at: OffsetDateTime) -> pb::Event {
    pb::Event {
        id: Uuid::now_v7().to_string(),
        complaint_id: complaint.to_string(),
        sequence: 1,
        occurred_at: Some(to_timestamp(at)),
        policy_version: String::new(),
        producer: "sla".into(),
        payload: Some(Payload::SlaBreached(pb::SlaBreached {
            target: pb::SlaTarget::Resolution as i32,
            department: DEPARTMENT.into(),
            deadline: Some(to_timestamp(at)),
        })),
    }
}

async fn publish(
    js: &jetstream::Context,
    event: &pb::Event,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_EVENT, event.event_type().as_str());
    let message = PublishMessage::build()
        .payload(encode_event(event).into())
        .headers(headers)
        .message_id(event.id.clone());
    Ok(js.send_publish(event.subject()?, message).await?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn notify(args: NotifyArgs, repo: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0,
        "--rate and --seconds must be positive"
    );
    println!(
        "starting a private stack (nats-server, Postgres with fsync on), a webhook receiver and notify…"
    );
    let private = Private::infra(repo).await?;
    let result = run(&args, &private, repo).await;
    private.stop().await;
    result
}

async fn run(args: &NotifyArgs, private: &Private, repo: &Path) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let receiver = tokio::spawn(receive(listener, arrivals.clone()));
    let (_policy_dir, policy) = bench_policy(repo, &hook)?;

    let mut config = tousu_kit::Config::defaults(tousu_notify::NAME);
    config.nats_url = private.nats_url.clone();
    config.database_url = private.database_url.clone();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.policy = policy;
    config.notify_webhook_url = hook.clone();
    config.notify_digest_threshold = 1_000_000_000;
    if let Some(w) = args.workers {
        config.notify_workers = w;
    }
    if let Some(p) = args.planners {
        config.notify_planners = p;
    }
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let workers = config.notify_workers;
    let endpoint = tousu_notify::channels::Channels::new(&config)?.endpoint("webhook", &hook);
    let mut replicas = Vec::new();
    for _ in 0..args.replicas.max(1) {
        replicas.push(tousu_notify::start(config.clone()).await?);
    }
    let target = Target { hook, endpoint };
    let result = measure(
        args,
        private,
        &arrivals,
        (workers, config.notify_planners),
        &target,
    )
    .await;
    for notify in replicas {
        let _ = notify.stop().await;
    }
    receiver.abort();
    result
}

/// Where `--direct` deliveries go.
struct Target {
    hook: String,
    endpoint: String,
}

/// Writes `--direct` deliveries as they come, in one transaction for
/// whatever is waiting (with `announce`, as the planner does).
async fn write_direct(
    database_url: String,
    target: (String, String),
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(Uuid, OffsetDateTime)>,
) -> anyhow::Result<()> {
    let mut db = sqlx::PgConnection::connect(&database_url).await?;
    let (hook, endpoint) = target;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 200).await > 0 {
        let mut causes = Vec::with_capacity(batch.len());
        let mut complaints = Vec::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        let mut ats = Vec::with_capacity(batch.len());
        for (complaint, at) in batch.drain(..) {
            let cause = Uuid::now_v7();
            messages.push(serde_json::json!({
                "language": "zh-CN",
                "subject": "【超时】投诉已超出办结时限",
                "text": "投诉已超出办结时限，请尽快处理。",
                "link": format!("http://127.0.0.1:8084/complaints/{complaint}"),
                "event_type": "sla.breached",
                "event_id": cause.to_string(),
                "complaint_id": complaint.to_string(),
                "data": { "department": DEPARTMENT },
            }));
            causes.push(cause);
            complaints.push(complaint);
            ats.push(at);
        }
        let mut tx = db.begin().await?;
        sqlx::query(
            "INSERT INTO notify.deliveries (cause_event_id, complaint_id, event_type, recipient,
                 channel, status, attempts, detail, address, endpoint, message, rule, event_at)
             SELECT c, p, 'sla.breached', $5, 'webhook', 'pending', 0, '', $6, $7, m, 'bench', a
             FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::timestamptz[]) AS u(c, p, m, a)",
        )
        .bind(&causes)
        .bind(&complaints)
        .bind(&messages)
        .bind(&ats)
        .bind(HEAD)
        .bind(&hook)
        .bind(&endpoint)
        .execute(&mut *tx)
        .await?;
        tousu_notify::send::announce(&mut tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn measure(
    args: &NotifyArgs,
    private: &Private,
    arrivals: &Arrivals,
    (workers, planners): (u32, u32),
    target: &Target,
) -> anyhow::Result<()> {
    let js = jetstream::new(async_nats::connect(&private.nats_url).await?);

    // Warm up: connections, prepared statements, the consumer.
    let warm: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    for c in &warm {
        publish(&js, &breach(*c, OffsetDateTime::now_utc()))
            .await?
            .await?;
    }
    let until = Instant::now() + Duration::from_secs(30);
    while arrivals_lock(arrivals).len() < warm.len() {
        if Instant::now() > until {
            let mut db = sqlx::PgConnection::connect(&private.database_url).await?;
            let statuses: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, count(*) FROM notify.deliveries GROUP BY status ORDER BY status",
            )
            .fetch_all(&mut db)
            .await
            .unwrap_or_default();
            anyhow::bail!(
                "warm-up: {} of {} breaches reached the webhook receiver within 30 s (deliveries by status: {statuses:?})",
                arrivals_lock(arrivals).len(),
                warm.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    arrivals_lock(arrivals).clear();

    let count = args.rate * args.seconds;
    println!(
        "burst: {} sla.breached/s for {} s ({count} events, one complaint each) → notify ({} replica(s), workers {workers}, planners {planners}) → webhook{}",
        args.rate,
        args.seconds,
        args.replicas.max(1),
        if args.direct {
            " (--direct: deliveries written straight into notify's table, no events, no planner)"
        } else {
            ""
        }
    );
    let (direct_tx, direct_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = args.direct.then(|| {
        tokio::spawn(write_direct(
            private.database_url.clone(),
            (target.hook.clone(), target.endpoint.clone()),
            direct_rx,
        ))
    });
    let mut occurred: HashMap<String, OffsetDateTime> = HashMap::with_capacity(count as usize);
    let (ack_tx, mut ack_rx) =
        tokio::sync::mpsc::unbounded_channel::<jetstream::context::PublishAckFuture>();
    let acks = tokio::spawn(async move {
        let mut failed = 0u64;
        while let Some(ack) = ack_rx.recv().await {
            if ack.await.is_err() {
                failed += 1;
            }
        }
        failed
    });
    let interval = Duration::from_nanos(1_000_000_000 / args.rate);
    let start = Instant::now();
    for i in 0..count {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let complaint = Uuid::now_v7();
        let at = OffsetDateTime::now_utc();
        occurred.insert(complaint.to_string(), at);
        if args.direct {
            let _ = direct_tx.send((complaint, at));
        } else {
            let ack = publish(&js, &breach(complaint, at)).await?;
            let _ = ack_tx.send(ack);
        }
    }
    drop(ack_tx);
    drop(direct_tx);
    if let Some(writer) = writer {
        writer.await??;
    }
    let published_in = start.elapsed();
    let publish_failed = acks.await.unwrap_or(0);

    // Wait for the notifications.
    let until = Instant::now() + Duration::from_secs(args.drain_secs);
    loop {
        let n = arrivals_lock(arrivals).len();
        if n as u64 >= count || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let late duplicates show.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let seen = std::mem::take(&mut *arrivals_lock(arrivals));
    let mut first: HashMap<String, OffsetDateTime> = HashMap::new();
    let mut duplicates = 0u64;
    let mut unmatched = 0u64;
    for (at, body) in &seen {
        let Some(id) = uuids(body).into_iter().find(|u| occurred.contains_key(u)) else {
            unmatched += 1;
            continue;
        };
        match first.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => duplicates += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(*at);
            }
        }
    }
    let mut latencies: Vec<f64> = first
        .iter()
        .filter_map(|(id, at)| {
            occurred
                .get(id)
                .map(|o| (*at - *o).as_seconds_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let span = match (first.values().min(), first.values().max()) {
        (Some(a), Some(b)) => (*b - *a).as_seconds_f64().max(0.001),
        _ => 0.001,
    };
    let mut db = sqlx::PgConnection::connect(&private.database_url).await?;
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM notify.deliveries GROUP BY status ORDER BY status",
    )
    .fetch_all(&mut db)
    .await?;
    let (retried,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM notify.delivery_attempts WHERE outcome <> 'delivered'",
    )
    .fetch_one(&mut db)
    .await?;
    println!(
        "published {count} in {:.2} s ({publish_failed} publish failures)",
        published_in.as_secs_f64()
    );
    println!(
        "delivered {} of {count} to the webhook ({:.0} deliveries/s); missing {}, duplicates {duplicates}, unmatched requests {unmatched}",
        first.len(),
        first.len() as f64 / span,
        count - first.len() as u64,
    );
    println!(
        "event → delivered latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    println!("deliveries by status: {statuses:?}; failed attempts: {retried}");
    // Where the time goes: the planner (event → row committed) and the
    // sender (row → outcome committed).
    let (plan50, plan99, send50, send99): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p), percentile_cont(0.99) WITHIN GROUP (ORDER BY p),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY s), percentile_cont(0.99) WITHIN GROUP (ORDER BY s)
         FROM (SELECT extract(epoch FROM created_at - event_at)::float8 * 1000 AS p,
                      extract(epoch FROM delivered_at - created_at)::float8 * 1000 AS s
               FROM notify.deliveries WHERE status = 'delivered' AND complaint_id::text = ANY($1)) x",
    )
    .bind(occurred.keys().cloned().collect::<Vec<String>>())
    .fetch_one(&mut db)
    .await?;
    println!(
        "breakdown ms: planner (event → row) p50 {plan50:.1}  p99 {plan99:.1}; sender (row → outcome written) p50 {send50:.1}  p99 {send99:.1}"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_uuids_in_a_body() {
        let body =
            br#"{"complaint_id":"0190A1B2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","x":"not-a-uuid-0000"}"#;
        assert_eq!(uuids(body), vec!["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]);
        assert!(uuids(b"").is_empty());
    }

    #[test]
    fn the_bench_policy_has_one_rule_and_the_heads_webhook() {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let (_dir, path) = bench_policy(&repo, "http://127.0.0.1:9/hook").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("[[notify]]").count(), 1);
        assert!(text.contains("event = \"sla.breached\""));
        assert!(text.contains("webhook = \"http://127.0.0.1:9/hook\""));
        let policy = crate::policy::load(&path);
        assert!(policy.is_ok(), "{:?}", policy.err());
    }
}
