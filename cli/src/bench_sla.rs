//! `tousu bench sla`: the timer engine under a million pending timers.
//!
//! Brings up a private stack (nats-server, Postgres with fsync on) and the
//! sla service as a child process (`tousu service sla`), so its memory is
//! its own; seeds `--timers` pending breach timers straight into sla's
//! tables (as the consumer stores them, announced like new timers):
//! - most of them due in a day (pending, beyond the in-memory horizon);
//! - a **paced** set due at `--rate` per second for `--seconds`;
//! - a **burst** set of `--burst` all due at the same instant.
//!
//! Then prints fire lateness p50/p99/max of the paced set (the fire
//! transaction's time minus the deadline), fires per second in the burst,
//! the service's RSS (current and peak) with every timer pending, and the
//! cold restart time after a SIGKILL: until `/readyz` answers and the
//! replica holds its partitions with their timers loaded.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::Connection as _;
use time::OffsetDateTime;
use tokio::process::{Child, Command};

use crate::bench::{Private, free_port};

#[derive(clap::Args)]
pub struct SlaArgs {
    /// Pending timers in all.
    #[arg(long, default_value_t = 1_000_000)]
    timers: usize,
    /// Fires per second in the paced phase.
    #[arg(long, default_value_t = 1000)]
    rate: usize,
    /// Length of the paced phase.
    #[arg(long, default_value_t = 30)]
    seconds: usize,
    /// Timers due at one instant in the burst phase.
    #[arg(long, default_value_t = 100_000)]
    burst: usize,
}

struct Sla {
    child: Child,
    http: String,
}

async fn spawn(private: &Private, http_port: u16) -> anyhow::Result<Sla> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["service", "sla"])
        .env("TOUSU_SLA_NATS_URL", &private.nats_url)
        .env("TOUSU_SLA_DATABASE_URL", &private.database_url)
        .env("TOUSU_SLA_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("TOUSU_SLA_GRPC_ADDR", format!("127.0.0.1:{}", free_port()?))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting tousu service sla")?;
    Ok(Sla {
        child,
        http: format!("http://127.0.0.1:{http_port}"),
    })
}

impl Sla {
    /// Until `/readyz` answers 200 and the metrics say it holds its
    /// partitions with their timers loaded.
    async fn wait_firing(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until {
            let ready = client
                .get(format!("{}/readyz", self.http))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready
                && let Ok(r) = client.get(format!("{}/metrics", self.http)).send().await
                && let Ok(text) = r.text().await
                && text.lines().any(|l| l.starts_with("tousu_sla_firing 1"))
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("sla did not become ready within 120 s")
    }

    fn memory(&self) -> String {
        let Some(pid) = self.child.id() else {
            return "unknown".into();
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or("?".into(), |kb| format!("{:.0} MB", kb / 1024.0))
        };
        format!("RSS {} (peak {})", field("VmRSS:"), field("VmHWM:"))
    }
}

pub async fn sla(args: SlaArgs, repo: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0,
        "--rate and --seconds must be positive"
    );
    let paced = args.rate * args.seconds;
    anyhow::ensure!(
        args.timers >= paced + args.burst,
        "--timers must be at least rate × seconds + burst ({})",
        paced + args.burst
    );
    println!("starting a private stack (nats-server, Postgres with fsync on) and sla…");
    let private = Private::infra(repo).await?;
    let result = run(&args, &private).await;
    private.stop().await;
    result
}

async fn run(args: &SlaArgs, private: &Private) -> anyhow::Result<()> {
    let port = free_port()?;
    let mut sla = spawn(private, port).await?;
    sla.wait_firing().await?;
    let mut db = sqlx::PgConnection::connect(&private.database_url).await?;
    sqlx::query("SET search_path TO sla")
        .execute(&mut db)
        .await?;
    let partitions = tousu_kit::Config::defaults("sla").sla_partitions;
    let paced = args.rate * args.seconds;
    let far = args.timers - paced - args.burst;

    let t = Instant::now();
    let tomorrow = OffsetDateTime::now_utc() + time::Duration::days(1);
    tousu_sla::seed::breaches(&mut db, partitions, far, |i| {
        tomorrow + time::Duration::milliseconds((i % 3_600_000) as i64)
    })
    .await?;
    // The near sets start a few seconds after they are written.
    let start = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let step = time::Duration::nanoseconds(1_000_000_000 / args.rate as i64);
    let paced_ids =
        tousu_sla::seed::breaches(&mut db, partitions, paced, |i| start + step * (i as i32))
            .await?;
    let burst_at = start + time::Duration::seconds(args.seconds as i64 + 5);
    let burst_ids =
        tousu_sla::seed::breaches(&mut db, partitions, args.burst, |_| burst_at).await?;
    println!(
        "seeded {} pending timers in {:.1} s ({far} due tomorrow, {paced} paced at {}/s, {} in a burst); {}",
        args.timers,
        t.elapsed().as_secs_f64(),
        args.rate,
        args.burst,
        sla.memory()
    );

    // Wait for the burst to be fired.
    let until =
        Instant::now() + Duration::from_secs(args.seconds as u64 + 10) + Duration::from_secs(120);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM clocks WHERE complaint_id = ANY($1) AND state = 'running'",
        )
        .bind(&burst_ids)
        .fetch_one(&mut db)
        .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < until, "{left} burst timers still pending");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (p50, p99, max, n): (f64, f64, f64, i64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.99) WITHIN GROUP (ORDER BY l),
                max(l), count(*)
         FROM (SELECT extract(epoch FROM breached_at - deadline)::float8 * 1000 AS l
               FROM clocks WHERE complaint_id = ANY($1) AND state = 'breached') x",
    )
    .bind(&paced_ids)
    .fetch_one(&mut db)
    .await?;
    println!(
        "paced: {n} fires at {}/s: lateness p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        args.rate
    );
    let (first, last, fired): (OffsetDateTime, OffsetDateTime, i64) = sqlx::query_as(
        "SELECT min(breached_at), max(breached_at), count(*) FROM clocks WHERE complaint_id = ANY($1)",
    )
    .bind(&burst_ids)
    .fetch_one(&mut db)
    .await?;
    let span = (last - burst_at).as_seconds_f64().max(0.001);
    println!(
        "burst: {fired} timers due at one instant fired in {:.2} s: {:.0} fires/s (first {:.0} ms, last {:.0} ms after the deadline)",
        span,
        fired as f64 / span,
        (first - burst_at).as_seconds_f64() * 1000.0,
        (last - burst_at).as_seconds_f64() * 1000.0,
    );
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM timers")
        .fetch_one(&mut db)
        .await?;
    println!("memory with {pending} timers pending: {}", sla.memory());

    // Cold restart: SIGKILL, start again with the same name (port).
    sla.child.kill().await?;
    let t = Instant::now();
    let sla = spawn(private, port).await?;
    sla.wait_firing().await?;
    println!(
        "cold restart after SIGKILL with {pending} timers pending: ready and firing in {:.2} s; {}",
        t.elapsed().as_secs_f64(),
        sla.memory()
    );
    drop(sla);
    Ok(())
}
