//! `tousu notify log|retry` against a running notify (real nats-server and
//! Postgres, started by the test harness), on deliveries that fail: one
//! to an address that is no URL (permanent: dead at once), one to a port
//! nobody listens on (transient: dead after `notify_max_attempts`).

use std::time::Duration;

use sqlx::types::Uuid;
use tousu_notify::channels::Channels;
use tousu_notify::model::Message;
use tousu_tests::Stack;

fn tousu(args: &[&str]) -> (bool, String) {
    tousu_tests::run_cli(env!("CARGO_BIN_EXE_tousu"), args)
}

async fn insert(
    db: &mut sqlx::PgConnection,
    channels: &Channels,
    recipient: &str,
    address: &str,
) -> (i64, Uuid) {
    let cause = Uuid::now_v7();
    let complaint = Uuid::now_v7();
    let message = Message {
        language: "zh-CN".into(),
        subject: "【预警】投诉 TS-20261125-000042 距办结时限不足 4 小时".into(),
        text: "投诉 TS-20261125-000042（发票开错，财务结算部）即将超时。".into(),
        link: format!("http://127.0.0.1:8084/complaints/{complaint}"),
        event_type: "sla.warning".into(),
        event_id: cause.to_string(),
        complaint_id: complaint.to_string(),
        tracking_no: "TS-20261125-000042".into(),
        ..Message::default()
    };
    let id = tousu_tests::pending_webhook(db, channels, recipient, address, message)
        .await
        .unwrap();
    (id, complaint)
}

/// Waits until delivery `id` is dead after `attempts` attempts.
async fn wait_dead(db: &mut sqlx::PgConnection, id: i64, attempts: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (s, n): (String, i32) =
            sqlx::query_as("SELECT status, attempts FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *db)
                .await
                .unwrap();
        if s == "dead" && n == attempts {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery {id} is {s} after {n} attempts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row(listing: &str, id: i64) -> &str {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("no row {id} in\n{listing}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lists_filters_and_retries_dead_deliveries() {
    let stack = Stack::start_only(&["notify"], |_, c| c.notify_max_attempts = 2)
        .await
        .unwrap();
    let url = format!("http://{}", stack.http("notify"));
    let channels = Channels::new(&stack.config("notify")).unwrap();
    let mut db = stack.db("notify").await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (bad, bad_complaint) = insert(
        &mut db,
        &channels,
        "zheng.hua",
        "ftp://hooks.example.com/in",
    )
    .await;
    let (refused, _) = insert(
        &mut db,
        &channels,
        "tang.yu",
        &format!("http://127.0.0.1:{closed}/hook"),
    )
    .await;
    wait_dead(&mut db, bad, 1).await;
    wait_dead(&mut db, refused, 2).await;

    let (ok, listed) = tousu(&["notify", "log", "--url", &url]);
    assert!(ok, "{listed}");
    let header = listed.lines().next().unwrap();
    for column in ["ID", "STATUS", "TRIES", "CODE", "LATENCY", "ERROR"] {
        assert!(header.contains(column), "{header}");
    }
    let line = row(&listed, bad);
    assert!(
        line.contains("dead") && line.contains("zheng.hua") && line.contains("sla.warning"),
        "{line}"
    );
    assert!(line.contains("not an http(s) URL"), "{line}");
    let line = row(&listed, refused);
    assert!(line.contains("dead") && line.contains("tang.yu"), "{line}");
    // Two attempts, no status code (nobody answered), a latency.
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[5], "2", "{line}");
    assert_eq!(cells[6], "-", "{line}");
    assert!(line.contains(" ms"), "{line}");

    // Filters, and every attempt on request.
    let (ok, only) = tousu(&[
        "notify",
        "log",
        "--url",
        &url,
        "--status",
        "dead",
        "--recipient",
        "tang.yu",
        "--attempts",
    ]);
    assert!(ok, "{only}");
    assert!(!only.contains("zheng.hua"), "{only}");
    let attempt_lines: Vec<&str> = only
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(attempt_lines.len(), 2, "{only}");
    assert!(
        attempt_lines.iter().all(|l| l.contains("transient")),
        "{only}"
    );
    let (ok, by_complaint) = tousu(&[
        "notify",
        "log",
        "--url",
        &url,
        "--complaint",
        &bad_complaint.to_string(),
    ]);
    assert!(ok, "{by_complaint}");
    assert_eq!(by_complaint.lines().count(), 2, "{by_complaint}");
    let (ok, none) = tousu(&["notify", "log", "--url", &url, "--status", "delivered"]);
    assert!(ok && none.contains("no deliveries"), "{none}");
    let (ok, bad_filter) = tousu(&["notify", "log", "--url", &url, "--complaint", "TS-1"]);
    assert!(
        !ok && bad_filter.contains("400") && bad_filter.contains("complaint"),
        "{bad_filter}"
    );

    // Retry: back to pending, tried again (and dead again: the address is
    // still no URL), its earlier attempt kept.
    let (ok, retried) = tousu(&["notify", "retry", &bad.to_string(), "--url", &url]);
    assert!(ok && retried.contains("pending"), "{retried}");
    wait_dead(&mut db, bad, 2).await;
    let (ok, again) = tousu(&["notify", "retry", "99999", "--url", &url]);
    assert!(!ok && again.contains("404"), "{again}");
    stack.stop().await.unwrap();
}
