//! `tousu`: the command people use around the services.
//!
//! - [`service`]: run one service in this process (what `up` spawns, and
//!   what a container runs).
//! - [`up`]: the whole stack on one machine — nats-server, a private
//!   Postgres cluster, the five services — until Ctrl-C.
//! - [`submit`]: post a sample web-form complaint to intake.
//! - [`tail`]: print events as they are published.
//! - [`dlq`]: list and replay the dead-letter stream.
//! - [`policy`]: validate a policy file.
//! - [`quarantine`]: list, show and replay input intake rejected.
//! - [`sla`]: the deadline calculator (`tousu sla deadline`).
//! - [`notify`]: notify's delivery log (`tousu notify log|retry`).
//! - [`bench`]: benchmarks that print figures (`tousu bench intake`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod api;
mod bench;
mod bench_notify;
mod bench_sla;
mod dlq;
mod notify;
mod policy;
mod quarantine;
mod service;
mod sla;
mod submit;
mod tail;
mod up;

/// Default NATS URL of the local stack.
const LOCAL_NATS: &str = "nats://127.0.0.1:4222";

#[derive(Parser)]
#[command(
    name = "tousu",
    version,
    about = "tousu: complaint intake and handling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one service in this process (configured by TOUSU_* variables).
    Service {
        #[arg(value_enum)]
        name: service::Service,
    },
    /// Start nats-server, Postgres and all five services locally; Ctrl-C stops them.
    Up(up::Args),
    /// Post a sample web-form complaint to intake and print its id and tracking number.
    Submit {
        /// Base URL of the intake service.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Complaint text (default: a parcel delivery delay, in Chinese).
        #[arg(long)]
        description: Option<String>,
    },
    /// Print events as they are published.
    Tail {
        #[arg(long, env = "TOUSU_NATS_URL", default_value = LOCAL_NATS)]
        nats: String,
        /// Subject filter within the event stream.
        #[arg(long, default_value = "tousu.evt.>")]
        subject: String,
        /// Start from the first stored event instead of new ones.
        #[arg(long)]
        all: bool,
        /// Print whole payloads instead of cutting them at 240 characters.
        #[arg(long)]
        full: bool,
    },
    /// Work the dead-letter stream (TOUSU_DLQ).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// SLA tools.
    Sla {
        #[command(subcommand)]
        command: SlaCommand,
    },
    /// Input intake rejected: list, show, replay.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The delivery log of notify: list deliveries with their attempts, retry a dead one.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Benchmarks; each prints its figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// List entries, newest first.
    List {
        #[command(flatten)]
        conn: quarantine::Conn,
        /// Only this channel (webform, email, wechat, forum, phone).
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Print one entry with its body and what a replay uses.
    Show {
        id: i64,
        #[command(flatten)]
        conn: quarantine::Conn,
    },
    /// Run an entry through intake again (after fixing the cause).
    Replay {
        id: i64,
        #[command(flatten)]
        conn: quarantine::Conn,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Deliveries, newest first: status, attempts, last status code, latency, error.
    Log(notify::LogArgs),
    /// Put a dead delivery back to pending (its attempts stay in the log).
    Retry {
        id: i64,
        #[command(flatten)]
        conn: notify::Conn,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Accepted complaints per second over HTTP with durable commit, and p50/p99 latency.
    Intake(bench::IntakeArgs),
    /// Timer fire lateness, burst fires per second, RSS and cold restart with a million pending timers.
    Sla(bench_sla::SlaArgs),
    /// Event-to-delivered latency of notify under a burst of SLA breaches to a webhook.
    Notify(bench_notify::NotifyArgs),
    /// Accuracy and confusion matrix of the classifier on a labeled JSONL set.
    Classify {
        /// Labeled complaints, one JSON object per line with its `category`.
        #[arg(default_value = "policies/testdata/classify.jsonl")]
        file: PathBuf,
        /// The policy whose taxonomy classifies.
        #[arg(long, default_value = "policies/default.toml")]
        policy: PathBuf,
        /// Also list every misclassified sample.
        #[arg(long)]
        misses: bool,
    },
    /// In-process routing decisions per second (classification, similarity, grading, routing).
    Routing {
        #[arg(long, default_value = "policies/default.toml")]
        policy: PathBuf,
        /// Complaint texts to draw from (labeled JSONL).
        #[arg(long, default_value = "policies/testdata/classify.jsonl")]
        corpus: PathBuf,
        /// Complaints in the similarity index before measuring.
        #[arg(long, default_value_t = 100_000)]
        index: usize,
        /// Decisions measured.
        #[arg(long, default_value_t = 20_000)]
        decisions: usize,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        #[arg(long, env = "TOUSU_NATS_URL", default_value = LOCAL_NATS)]
        nats: String,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Publish dead letter SEQ again on its original subject and remove it.
    Replay {
        /// Sequence in TOUSU_DLQ, as `dlq list` prints it.
        seq: u64,
        #[arg(long, env = "TOUSU_NATS_URL", default_value = LOCAL_NATS)]
        nats: String,
    },
}

#[derive(Subcommand)]
enum SlaCommand {
    /// The deadline of a duration from an instant on a working calendar,
    /// with the days skipped and why (the clocks' own arithmetic).
    Deadline {
        /// Start, RFC 3339 (e.g. 2026-09-30T16:00:00+08:00).
        #[arg(long)]
        from: String,
        /// 5wd (working days), 4wh (working hours), 24h, 30m, 15d (calendar days).
        #[arg(long)]
        duration: String,
        /// Calendar name (a directory under --calendars).
        #[arg(long, default_value = "cn")]
        calendar: String,
        /// Where the calendars are.
        #[arg(long, default_value = "policies/calendars")]
        calendars: PathBuf,
        /// Ask a running sla service instead (e.g. http://127.0.0.1:8082).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Parse and validate a policy file; exit 1 when it is invalid.
    Check { file: PathBuf },
    /// Validate a policy and publish it to the services (hot reload through
    /// the JetStream KV bucket `tousu_policy`); an invalid one is not published.
    Publish {
        file: PathBuf,
        #[arg(long, env = "TOUSU_NATS_URL", default_value = LOCAL_NATS)]
        nats: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Service { name } => service::run(name).await,
        Command::Up(args) => up::run(args).await,
        Command::Submit { url, description } => submit::run(&url, description).await,
        Command::Tail {
            nats,
            subject,
            all,
            full,
        } => tail::run(&nats, &subject, all, full).await,
        Command::Dlq { command } => match command {
            DlqCommand::List { nats, limit } => dlq::list(&nats, limit).await,
            DlqCommand::Replay { seq, nats } => dlq::replay(&nats, seq).await,
        },
        Command::Sla { command } => match command {
            SlaCommand::Deadline {
                from,
                duration,
                calendar,
                calendars,
                url,
            } => sla::deadline(&from, &duration, &calendar, &calendars, url.as_deref()).await,
        },
        Command::Policy { command } => match command {
            PolicyCommand::Check { file } => policy::check(&file),
            PolicyCommand::Publish { file, nats } => policy::publish(&file, &nats).await,
        },
        Command::Quarantine { command } => match command {
            QuarantineCommand::List {
                conn,
                channel,
                limit,
            } => quarantine::list(&conn, channel, limit).await,
            QuarantineCommand::Show { id, conn } => quarantine::show(&conn, id).await,
            QuarantineCommand::Replay { id, conn } => quarantine::replay(&conn, id).await,
        },
        Command::Notify { command } => match command {
            NotifyCommand::Log(args) => notify::log(&args).await,
            NotifyCommand::Retry { id, conn } => notify::retry(&conn, id).await,
        },
        Command::Bench { command } => match command {
            BenchCommand::Classify {
                file,
                policy,
                misses,
            } => bench::classify(&file, &policy, misses),
            BenchCommand::Routing {
                policy,
                corpus,
                index,
                decisions,
            } => bench::routing(&policy, &corpus, index, decisions),
            BenchCommand::Intake(args) => {
                let cwd = std::env::current_dir().unwrap_or_default();
                bench::intake(args, &up::repo_root(&cwd)).await
            }
            BenchCommand::Sla(args) => {
                let cwd = std::env::current_dir().unwrap_or_default();
                bench_sla::sla(args, &up::repo_root(&cwd)).await
            }
            BenchCommand::Notify(args) => {
                let cwd = std::env::current_dir().unwrap_or_default();
                bench_notify::notify(args, &up::repo_root(&cwd)).await
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tousu: {e:#}");
            ExitCode::FAILURE
        }
    }
}
