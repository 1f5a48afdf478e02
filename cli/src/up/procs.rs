//! The child processes of `tousu up`: spawned with their output in a log
//! file, watched for exit, stopped with SIGTERM (then SIGKILL after a grace
//! period).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::Command;
use tokio::sync::mpsc;

/// A child that ended: its name and how.
pub struct Exit {
    pub name: String,
    pub status: std::io::Result<ExitStatus>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.status {
            Ok(s) => write!(f, "{} exited ({s})", self.name),
            Err(e) => write!(f, "{} could not be waited for: {e}", self.name),
        }
    }
}

/// The children.
pub struct Procs {
    logs: PathBuf,
    /// Pid of each child that has not ended, by name.
    running: BTreeMap<String, u32>,
    exit_tx: mpsc::UnboundedSender<Exit>,
    exit_rx: mpsc::UnboundedReceiver<Exit>,
}

impl Procs {
    /// Children whose output goes to `<logs>/<name>.log`.
    pub fn new(logs: &Path) -> Self {
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        Procs {
            logs: logs.to_owned(),
            running: BTreeMap::new(),
            exit_tx,
            exit_rx,
        }
    }

    /// Starts `command` as `name`. The child gets a process group of its
    /// own, so a Ctrl-C in the terminal reaches only `tousu up`, which then
    /// stops the children in order.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> anyhow::Result<()> {
        let log = self.log(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("child has no pid")?;
        let tx = self.exit_tx.clone();
        let owned = name.to_owned();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(Exit {
                name: owned,
                status,
            });
        });
        self.running.insert(name.to_owned(), pid);
        Ok(())
    }

    /// Whether no child is running.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The log file of `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Waits for the next child to end.
    pub async fn exited(&mut self) -> Exit {
        let exit = self
            .exit_rx
            .recv()
            .await
            .expect("Procs holds a sender, so the channel stays open");
        self.running.remove(&exit.name);
        exit
    }

    /// The last `n` lines of a child's log, to explain an unexpected exit.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let path = self.log(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", path.display())
    }

    /// Sends SIGTERM to the children in `names` that still run, waits up
    /// to `grace` for them to end, then kills what is left.
    pub async fn stop(&mut self, names: &[&str], grace: Duration) {
        let targets: Vec<(String, u32)> = names
            .iter()
            .filter_map(|n| self.running.get(*n).map(|pid| (n.to_string(), *pid)))
            .collect();
        for (_, pid) in &targets {
            signal("-TERM", *pid).await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while targets.iter().any(|(n, _)| self.running.contains_key(n)) {
            if tokio::time::timeout_at(deadline, self.exited())
                .await
                .is_err()
            {
                break;
            }
        }
        for (name, pid) in &targets {
            if self.running.contains_key(name) {
                eprintln!("{name} did not stop within {grace:?}; killing it");
                signal("-KILL", *pid).await;
                while self.running.contains_key(name) {
                    self.exited().await;
                }
            }
        }
    }
}

/// `kill <sig> <pid>`: the program, because `unsafe` (libc) is forbidden.
async fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .await;
}
