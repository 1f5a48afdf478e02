//! notify's sender against a real HTTP receiver (started in the test, one
//! endpoint per path): retries, the dead letter, the delivery log and its
//! API, endpoints that fail or hang without holding up other recipients,
//! and `notify.delivered` / `notify.failed` on the bus.
//!
//! Most deliveries are written into notify's `deliveries` table the way
//! the planner writes them (a rendered message, the endpoint key,
//! `announce` in the same transaction), which exercises exactly the
//! sender; the last test goes through a real `sla.breached` event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tousu_notify::channels::Channels;
use tousu_notify::model::Message;
use tousu_proto::v1 as pb;
use tousu_tests::{Stack, http, policy_with, wait_until};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// How the receiver answers on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    /// 500, always.
    Fail,
    /// 500 the first time, 200 afterwards.
    FailOnce,
    /// Holds the request until released, then 200.
    Hold,
    /// 503 with `Retry-After: 120`, always.
    Busy,
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Book {
    modes: HashMap<String, Mode>,
    seen: Vec<Seen>,
    /// Requests on `Hold` paths received and not yet answered.
    held: usize,
}

/// A webhook receiver: HTTP/1.1 with keep-alive, one behaviour per path.
/// Its 200 answers please the webhook and the WeCom robot alike.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    release: watch::Sender<bool>,
}

impl Receiver {
    async fn start(modes: &[(&str, Mode)]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let book = Arc::new(Mutex::new(Book {
            modes: modes.iter().map(|(p, m)| ((*p).to_owned(), *m)).collect(),
            ..Book::default()
        }));
        let (release, _) = watch::channel(false);
        let r = Receiver {
            addr,
            book,
            release,
        };
        let server = r.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().connection(stream));
            }
        });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, mode: Mode) {
        self.book
            .lock()
            .unwrap()
            .modes
            .insert(path.to_owned(), mode);
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let book = self.book.lock().unwrap();
        book.seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn held(&self) -> usize {
        self.book.lock().unwrap().held
    }

    async fn connection(self, mut stream: tokio::net::TcpStream) {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let head_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < head_end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Value = serde_json::from_slice(&buf[head_end + 4..head_end + 4 + length])
                .unwrap_or(Value::Null);
            buf.drain(..head_end + 4 + length);
            let mode = {
                let book = self.book.lock().unwrap();
                let mode = book.modes.get(&path).copied().unwrap_or(Mode::Ok);
                let before = book.seen.iter().filter(|s| s.path == path).count();
                match mode {
                    Mode::FailOnce if before > 0 => Mode::Ok,
                    m => m,
                }
            };
            if mode == Mode::Hold {
                self.book.lock().unwrap().held += 1;
                let mut release = self.release.subscribe();
                let _ = release.wait_for(|r| *r).await;
                self.book.lock().unwrap().held -= 1;
            }
            let status = match mode {
                Mode::Fail | Mode::FailOnce => 500,
                Mode::Busy => 503,
                Mode::Ok | Mode::Hold => 200,
            };
            self.book
                .lock()
                .unwrap()
                .seen
                .push(Seen { path, status, body });
            let answer = if status == 200 {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 37\r\n\r\n{\"ok\":true,\"errcode\":0,\"errmsg\":\"ok\"}"
            } else if status == 503 {
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 120\r\ncontent-length: 4\r\n\r\nbusy"
            } else {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 21\r\n\r\nupstream store broken"
            };
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// A delivery as the planner writes it.
struct Row {
    id: i64,
    cause_event_id: Uuid,
    complaint_id: Uuid,
}

async fn insert(db: &mut PgConnection, channels: &Channels, recipient: &str, url: &str) -> Row {
    let cause = Uuid::now_v7();
    let complaint = Uuid::now_v7();
    let tracking = format!("TS-20261125-{:06}", cause.as_u128() % 1_000_000);
    let message = Message {
        language: "zh-CN".into(),
        subject: format!("【超时】投诉 {tracking} 已超出办结时限"),
        text: format!(
            "投诉 {tracking}（快递延误，物流部）已超出办结时限，请尽快处理。联系人 138****5678。"
        ),
        markdown: format!("**投诉 {tracking} 已超时**\n\n物流部，请尽快处理。"),
        link: format!("http://127.0.0.1:8084/complaints/{complaint}"),
        event_type: "sla.breached".into(),
        event_id: cause.to_string(),
        complaint_id: complaint.to_string(),
        tracking_no: tracking,
        data: json!({ "department": "logistics", "target": "resolution", "grade": 3 }),
        ..Message::default()
    };
    let id = tousu_tests::pending_webhook(db, channels, recipient, url, message)
        .await
        .unwrap();
    Row {
        id,
        cause_event_id: cause,
        complaint_id: complaint,
    }
}

async fn status(db: &mut PgConnection, id: i64) -> (String, i32) {
    sqlx::query_as("SELECT status, attempts FROM deliveries WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn wait_status(db: &mut PgConnection, id: i64, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, attempts) = status(db, id).await;
        if s == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery {id} is {s} after {attempts} attempts, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every `notify.*` event on the bus so far.
async fn notify_events(stack: &Stack) -> Vec<pb::Event> {
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await.unwrap());
    let stream = js.get_stream("TOUSU_EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: "tousu.evt.notify.>".into(),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let mut got = 0;
        while let Some(Ok(m)) = batch.next().await {
            got += 1;
            events.push(tousu_bus::decode_event(&m.payload).unwrap());
        }
        if got == 0 {
            return events;
        }
    }
}

async fn wait_events(stack: &Stack, n: usize) -> Vec<pb::Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = notify_events(stack).await;
        if events.len() >= n || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_retries_to_delivery_and_dead_letters_a_broken_endpoint() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[
        ("/flaky", Mode::FailOnce),
        ("/broken", Mode::Fail),
        ("/ok", Mode::Ok),
    ])
    .await;
    let stack = Stack::start_only(&["notify"], |_, c| c.notify_max_attempts = 3)
        .await
        .unwrap();
    let channels = Channels::new(&stack.config("notify")).unwrap();
    let mut db = stack.db("notify").await.unwrap();

    let flaky = insert(&mut db, &channels, "guo.qiang", &receiver.url("/flaky")).await;
    let broken = insert(&mut db, &channels, "ops-bridge", &receiver.url("/broken")).await;
    let ok = insert(&mut db, &channels, "xu.fang", &receiver.url("/ok")).await;

    wait_status(&mut db, ok.id, "delivered").await;
    wait_status(&mut db, flaky.id, "delivered").await;
    wait_status(&mut db, broken.id, "dead").await;

    // 500 then 200: the message arrived once, after one retry.
    let seen = receiver.seen("/flaky");
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 200],
        "{seen:?}"
    );
    assert_eq!(seen[1].body["complaint_id"], flaky.complaint_id.to_string());
    assert_eq!(seen[1].body["event_type"], "sla.breached");
    assert_eq!(status(&mut db, flaky.id).await, ("delivered".into(), 2));
    // The other recipient: once, at the first attempt.
    assert_eq!(receiver.seen("/ok").len(), 1);
    assert_eq!(status(&mut db, ok.id).await, ("delivered".into(), 1));
    // 500 forever: notify_max_attempts attempts, then the dead letter.
    assert_eq!(receiver.seen("/broken").len(), 3);
    assert_eq!(status(&mut db, broken.id).await, ("dead".into(), 3));

    // Every attempt is in the log with its outcome, status code and latency.
    let attempts: Vec<(i32, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT attempt, outcome, status_code, error FROM delivery_attempts
         WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(broken.id)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for (i, (n, outcome, code, error)) in attempts.iter().enumerate() {
        assert_eq!(*n, i as i32 + 1);
        assert_eq!(outcome, "transient");
        assert_eq!(*code, Some(500));
        assert!(
            error.as_deref().is_some_and(|e| e.contains("500")),
            "{error:?}"
        );
    }

    // The log API: the dead letter with its attempts.
    let notify = stack.http("notify");
    let r = http(notify, "GET", "/v1/deliveries?status=dead", &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let listed = r.json();
    assert_eq!(listed["count"], 1, "{listed}");
    let dead = &listed["deliveries"][0];
    assert_eq!(dead["id"], broken.id);
    assert_eq!(dead["recipient"], "ops-bridge");
    assert_eq!(dead["last_status"], 500);
    assert_eq!(dead["attempt_log"].as_array().map(Vec::len), Some(3));
    assert!(dead["attempt_log"][0]["latency_ms"].is_i64());
    let r = http(
        notify,
        "GET",
        &format!("/v1/deliveries?complaint={}", flaky.complaint_id),
        &[],
        b"",
    )
    .await
    .unwrap();
    let by_complaint = r.json();
    assert_eq!(by_complaint["count"], 1);
    let outcomes: Vec<&str> = by_complaint["deliveries"][0]["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["transient", "delivered"]);

    // notify.delivered for the two delivered, notify.failed for the dead one.
    let events = wait_events(&stack, 3).await;
    let mut delivered = HashMap::new();
    let mut failed = Vec::new();
    for e in &events {
        match &e.payload {
            Some(pb::event::Payload::NotifyDelivered(d)) => {
                delivered.insert(
                    d.cause_event_id.clone(),
                    (e.complaint_id.clone(), d.clone()),
                );
            }
            Some(pb::event::Payload::NotifyFailed(f)) => {
                failed.push((e.complaint_id.clone(), f.clone()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delivered.len(), 2, "{events:?}");
    let (complaint, d) = &delivered[&flaky.cause_event_id.to_string()];
    assert_eq!(complaint, &flaky.complaint_id.to_string());
    assert_eq!(
        (d.recipient.as_str(), d.channel.as_str(), d.attempts),
        ("guo.qiang", "webhook", 2)
    );
    assert_eq!(delivered[&ok.cause_event_id.to_string()].1.attempts, 1);
    assert_eq!(failed.len(), 1, "{events:?}");
    let (complaint, f) = &failed[0];
    assert_eq!(complaint, &broken.complaint_id.to_string());
    assert_eq!(f.cause_event_id, broken.cause_event_id.to_string());
    assert_eq!((f.recipient.as_str(), f.attempts), ("ops-bridge", 3));
    assert!(f.error.contains("500"), "{}", f.error);

    // Retrying: only a dead delivery; once the endpoint is fixed it arrives.
    let r = http(
        notify,
        "POST",
        &format!("/v1/deliveries/{}/retry", ok.id),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    let r = http(notify, "POST", "/v1/deliveries/99999999/retry", &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = http(notify, "GET", "/v1/deliveries/abc", &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_fields(), ["id"]);
    receiver.set("/broken", Mode::Ok);
    let r = http(
        notify,
        "POST",
        &format!("/v1/deliveries/{}/retry", broken.id),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    wait_status(&mut db, broken.id, "delivered").await;
    assert_eq!(status(&mut db, broken.id).await, ("delivered".into(), 4));
    let statuses: Vec<u16> = receiver.seen("/broken").iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);

    // Nothing was sent twice meanwhile.
    assert_eq!(receiver.seen("/flaky").len(), 2);
    assert_eq!(receiver.seen("/ok").len(), 1);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_a_hanging_endpoint_does_not_hold_other_recipients() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[("/hang", Mode::Hold), ("/ok", Mode::Ok)]).await;
    // Two workers: without a share per endpoint, two hanging sends would
    // hold every worker until the 60 s timeout.
    let stack = Stack::start_only(&["notify"], |_, c| {
        c.notify_workers = 2;
        c.notify_timeout_secs = 60;
    })
    .await
    .unwrap();
    let channels = Channels::new(&stack.config("notify")).unwrap();
    let mut db = stack.db("notify").await.unwrap();

    let mut hanging = Vec::new();
    for who in ["sun.hao", "ma.li", "he.jun"] {
        hanging.push(insert(&mut db, &channels, who, &receiver.url("/hang")).await);
    }
    wait_until(WAIT, || async { receiver.held() >= 1 })
        .await
        .unwrap();
    let ok = insert(&mut db, &channels, "xu.fang", &receiver.url("/ok")).await;
    wait_status(&mut db, ok.id, "delivered").await;
    // Delivered while the hanging endpoint still holds its one send, and
    // its other deliveries wait for that endpoint's share instead of
    // taking the second worker.
    assert_eq!(receiver.held(), 1);
    assert_eq!(receiver.seen("/ok").len(), 1);
    for h in &hanging {
        assert_eq!(status(&mut db, h.id).await.0, "pending");
    }

    // The endpoint answers again: every one of its deliveries goes out, once.
    receiver.release.send_replace(true);
    for h in &hanging {
        wait_status(&mut db, h.id, "delivered").await;
    }
    let seen = receiver.seen("/hang");
    assert_eq!(seen.len(), 3, "{seen:?}");
    let mut complaints: Vec<String> = seen
        .iter()
        .map(|s| s.body["complaint_id"].as_str().unwrap_or("").to_owned())
        .collect();
    complaints.sort();
    let mut expected: Vec<String> = hanging.iter().map(|h| h.complaint_id.to_string()).collect();
    expected.sort();
    assert_eq!(complaints, expected);
    stack.stop().await.unwrap();
}

/// `next_attempt_at` of a delivery, as seconds from now.
async fn due_in(db: &mut PgConnection, id: i64) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM deliveries WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_a_stopping_replica_gives_back_what_it_claimed_ahead() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[("/hang", Mode::Hold)]).await;
    // One send at a time to an endpoint; a claim takes more rows ahead.
    let mut stack = Stack::start_only(&["notify"], |_, c| {
        c.notify_workers = 2;
        c.notify_timeout_secs = 20;
    })
    .await
    .unwrap();
    let channels = Channels::new(&stack.config("notify")).unwrap();
    let mut db = stack.db("notify").await.unwrap();
    let mut rows = Vec::new();
    for who in ["sun.hao", "ma.li", "he.jun", "xu.fang"] {
        rows.push(insert(&mut db, &channels, who, &receiver.url("/hang")).await);
    }
    // One is being sent, and all four are claimed (leased for the send
    // timeout + 30 s).
    wait_until(WAIT, || async { receiver.held() == 1 })
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    wait_until(WAIT, || async {
        let Ok(mut db) = stack.db("notify").await else {
            return false;
        };
        let leased: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries
             WHERE id = ANY($1) AND next_attempt_at > now() + interval '30 seconds'",
        )
        .bind(&ids)
        .fetch_one(&mut db)
        .await
        .unwrap_or(0);
        leased == 4
    })
    .await
    .unwrap();

    // The replica stops (its one send still hanging): the three rows it
    // only queued are due again at once, not after their lease.
    let (_, first) = stack.services.remove(0);
    let stopping = tokio::spawn(first.stop());
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut due, mut leased) = (Vec::new(), Vec::new());
    while tokio::time::Instant::now() < deadline {
        due.clear();
        leased.clear();
        for r in &rows {
            if due_in(&mut db, r.id).await <= 0.0 {
                due.push(r.id);
            } else {
                leased.push(r.id);
            }
        }
        if due.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(due.len(), 3, "due {due:?}, leased {leased:?}");
    for id in &due {
        assert_eq!(status(&mut db, *id).await, ("pending".into(), 0));
    }
    // The hanging send ends; another replica sends the rest, each once.
    receiver.release.send_replace(true);
    stopping.await.unwrap().unwrap();
    stack.start_service("notify").await.unwrap();
    for r in &rows {
        wait_status(&mut db, r.id, "delivered").await;
        assert_eq!(status(&mut db, r.id).await.1, 1);
    }
    let seen = receiver.seen("/hang");
    assert_eq!(seen.len(), 4, "{seen:?}");
    stack.stop().await.unwrap();
}

/// A copy of the default policy whose only notification rule sends every
/// `sla.breached` to the department head by webhook, the head of
/// logistics (`guo.qiang`) having `hook` as webhook contact.
fn breach_policy(hook: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    head_policy(
        "event = \"sla.breached\"\nroles = [\"department_head\"]\nchannels = [\"webhook\"]",
        &format!("webhook = \"{hook}\""),
    )
}

/// A copy of the default policy with `rules` as its `[[notify]]` rules and
/// `contacts` added to those of the head of logistics (`guo.qiang`).
fn head_policy(rules: &str, contacts: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = policy_with(&[("notify", rules)]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let before = "contacts = { email = \"guo.qiang@example.com\", wecom = \"guoqiang\" }";
    assert!(
        text.contains(before),
        "the default policy changed: update this test"
    );
    let text = text.replace(
        before,
        &format!("contacts = {{ email = \"guo.qiang@example.com\", {contacts} }}"),
    );
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Publishes an SLA event about a complaint of logistics as sla would;
/// its id.
async fn publish_sla(stack: &Stack, complaint: Uuid, payload: pb::event::Payload) -> Uuid {
    let id = Uuid::now_v7();
    let (kind, subject) = match &payload {
        pb::event::Payload::SlaBreached(_) => ("sla.breached", "tousu.evt.sla.breached.logistics"),
        _ => ("sla.warning", "tousu.evt.sla.warning.logistics"),
    };
    let event = pb::Event {
        id: id.to_string(),
        complaint_id: complaint.to_string(),
        sequence: 1,
        occurred_at: Some(tousu_bus::to_timestamp(time::OffsetDateTime::now_utc())),
        policy_version: String::new(),
        producer: "sla".into(),
        payload: Some(payload),
    };
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await.unwrap());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(tousu_bus::HEADER_EVENT, kind);
    js.publish_with_headers(subject, headers, tousu_bus::encode_event(&event).into())
        .await
        .unwrap()
        .await
        .unwrap();
    id
}

fn breach() -> pb::event::Payload {
    let now = tousu_bus::to_timestamp(time::OffsetDateTime::now_utc());
    pb::event::Payload::SlaBreached(pb::SlaBreached {
        target: pb::SlaTarget::Resolution as i32,
        department: "logistics".into(),
        deadline: Some(now),
    })
}

/// `(id, channel, status, attempts, fallback_of)` of every delivery of a
/// cause event, by id.
async fn rows_of(
    db: &mut PgConnection,
    cause: Uuid,
) -> Vec<(i64, String, String, i32, Option<i64>)> {
    sqlx::query_as(
        "SELECT id, channel, status, attempts, fallback_of FROM deliveries
         WHERE cause_event_id = $1 ORDER BY id",
    )
    .bind(cause)
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_a_failing_channel_falls_back_on_the_recipients_next_one() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[("/hook", Mode::Busy), ("/robot", Mode::Ok)]).await;
    // Breaches must reach the head within 30 s; warnings have no time.
    // Both go by webhook, else by WeCom (his own robot).
    let rules = "event = \"sla.breached\"\nroles = [\"department_head\"]\n\
                 channels = [\"webhook\", \"wecom\"]\nwithin = \"30s\"\n\n\
                 [[notify]]\nevent = \"sla.warning\"\nroles = [\"department_head\"]\n\
                 channels = [\"webhook\", \"wecom\"]";
    let (_dir, policy) = head_policy(
        rules,
        &format!(
            "webhook = \"{}\", wecom = \"{}\"",
            receiver.url("/hook"),
            receiver.url("/robot")
        ),
    );
    let stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
        c.notify_max_attempts = 2;
    })
    .await
    .unwrap();
    let mut db = stack.db("notify").await.unwrap();

    // The webhook answers 503 with Retry-After: 120: its retry would come
    // after the 30 s, so the breach goes out on WeCom at once while the
    // webhook row keeps its retry.
    let breach_cause = publish_sla(&stack, Uuid::now_v7(), breach()).await;
    wait_until(WAIT, || async {
        let Ok(mut db) = stack.db("notify").await else {
            return false;
        };
        rows_of(&mut db, breach_cause)
            .await
            .iter()
            .any(|r| r.2 == "delivered")
    })
    .await
    .unwrap();
    let rows = rows_of(&mut db, breach_cause).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (hook, robot) = (&rows[0], &rows[1]);
    assert_eq!(
        (hook.1.as_str(), hook.2.as_str(), hook.3),
        ("webhook", "pending", 1)
    );
    assert_eq!(
        (robot.1.as_str(), robot.2.as_str(), robot.4),
        ("wecom", "delivered", Some(hook.0))
    );
    assert!(
        due_in(&mut db, hook.0).await > 100.0,
        "the webhook retries after its Retry-After"
    );
    let seen = receiver.seen("/robot");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body["msgtype"], "markdown", "{}", seen[0].body);
    // The log shows where it came from.
    let r = http(
        stack.http("notify"),
        "GET",
        &format!("/v1/deliveries/{}", robot.0),
        &[],
        b"",
    )
    .await
    .unwrap();
    let view = r.json();
    assert_eq!(view["fallback_of"], hook.0, "{view}");
    assert!(
        view["due_by"].is_string() && view["late"] == false,
        "{view}"
    );
    assert!(
        view["detail"].as_str().unwrap_or("").contains("fallback"),
        "{view}"
    );

    // A warning (no time set) keeps retrying on its channel and falls back
    // only once dead: 500 twice (notify_max_attempts), then WeCom.
    receiver.set("/hook", Mode::Fail);
    let warning = pb::event::Payload::SlaWarning(pb::SlaWarning {
        target: pb::SlaTarget::Resolution as i32,
        department: "logistics".into(),
        percent: 80,
        ..Default::default()
    });
    let warning_cause = publish_sla(&stack, Uuid::now_v7(), warning).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let rows = loop {
        let rows = rows_of(&mut db, warning_cause).await;
        if rows.len() == 2 && rows[1].2 == "delivered" {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str(), rows[0].3),
        ("webhook", "dead", 2)
    );
    assert_eq!((rows[1].1.as_str(), rows[1].4), ("wecom", Some(rows[0].0)));
    assert_eq!(receiver.seen("/robot").len(), 2);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_a_breach_event_reaches_a_flaky_webhook_once() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[("/head", Mode::FailOnce)]).await;
    let (_dir, policy) = breach_policy(&receiver.url("/head"));
    let stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
        c.notify_max_attempts = 3;
    })
    .await
    .unwrap();

    // A breach as sla publishes it.
    let complaint = Uuid::now_v7();
    let cause = publish_sla(&stack, complaint, breach()).await;

    let mut db = stack.db("notify").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let id: i64 = loop {
        let row: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE complaint_id = $1 AND status = 'delivered'",
        )
        .bind(complaint)
        .fetch_optional(&mut db)
        .await
        .unwrap();
        if let Some(id) = row {
            break id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery for the breach"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seen = receiver.seen("/head");
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 200]
    );
    assert_eq!(seen[1].body["complaint_id"], complaint.to_string());
    assert_eq!(seen[1].body["event_id"], cause.to_string());
    let (recipient, attempts): (String, i32) =
        sqlx::query_as("SELECT recipient, attempts FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!((recipient.as_str(), attempts), ("guo.qiang", 2));
    let events = wait_events(&stack, 1).await;
    let delivered: Vec<&pb::NotifyDelivered> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(pb::event::Payload::NotifyDelivered(d)) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), 1, "{events:?}");
    assert_eq!(delivered[0].cause_event_id, cause.to_string());
    assert_eq!(delivered[0].attempts, 2);
    stack.stop().await.unwrap();
}

/// Inserts what notify knows of a complaint, as the planner records it.
async fn fact(db: &mut PgConnection, tracking: &str, grade: i16, closed: bool, days_ago: i64) {
    sqlx::query(
        "INSERT INTO complaint_facts (complaint_id, tracking_no, summary, received_at, grade,
             department, closed)
         VALUES ($1, $2, '电梯困人一小时无人处理', now() - make_interval(days => $3::int), $4,
             'logistics', $5)",
    )
    .bind(Uuid::now_v7())
    .bind(tracking)
    .bind(days_ago as i32)
    .bind(grade)
    .bind(closed)
    .execute(db)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_send_leadership_gets_one_daily_digest_of_open_major_complaints() {
    let _load = tousu_tests::LOAD.read().await;
    let receiver = Receiver::start(&[("/wang", Mode::Ok), ("/li", Mode::Ok)]).await;
    let (_dir, policy) = policy_with(&[(
        "notify",
        "event = \"digest.major\"\nroles = [\"leadership\"]\nchannels = [\"webhook\"]",
    )])
    .unwrap();
    let text = std::fs::read_to_string(&policy).unwrap();
    let mut patched = text.clone();
    for (who, path) in [("wanggang", "/wang"), ("lina", "/li")] {
        let before = format!("wecom = \"{who}\",");
        assert!(patched.contains(&before), "the default policy changed");
        patched = patched.replace(
            &before,
            &format!("{before} webhook = \"{}\",", receiver.url(path)),
        );
    }
    std::fs::write(&policy, patched).unwrap();
    // The first replica (the digest off) creates the schema; the facts
    // go in; then replicas with the digest due since 00:00 start.
    let digest_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on = digest_on.clone();
    let mut stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
        c.notify_major_digest_at = if on.load(std::sync::atomic::Ordering::SeqCst) {
            "00:00".into()
        } else {
            String::new()
        };
    })
    .await
    .unwrap();
    let mut db = stack.db("notify").await.unwrap();
    fact(&mut db, "TS-OPEN-OLD", 1, false, 9).await;
    fact(&mut db, "TS-OPEN-NEW", 1, false, 1).await;
    fact(&mut db, "TS-CLOSED", 1, true, 5).await;
    fact(&mut db, "TS-MINOR", 3, false, 2).await;
    digest_on.store(true, std::sync::atomic::Ordering::SeqCst);
    stack.start_service("notify").await.unwrap();

    wait_until(WAIT, || async {
        !receiver.seen("/wang").is_empty() && !receiver.seen("/li").is_empty()
    })
    .await
    .unwrap();
    for path in ["/wang", "/li"] {
        let seen = receiver.seen(path);
        assert_eq!(seen.len(), 1, "{seen:?}");
        let body = &seen[0].body;
        assert_eq!(body["event_type"], "digest.major");
        assert_eq!(body["data"]["count"], 2, "{body}");
        let text = body["text"].as_str().unwrap_or("");
        let (old, new) = (
            text.find("TS-OPEN-OLD").expect("the older one listed"),
            text.find("TS-OPEN-NEW").expect("the newer one listed"),
        );
        assert!(old < new, "oldest first: {text}");
        assert!(
            !text.contains("TS-CLOSED") && !text.contains("TS-MINOR"),
            "{text}"
        );
        assert!(
            body["subject"].as_str().unwrap_or("").contains('2'),
            "{body}"
        );
    }
    // Another replica coming up the same day sends nothing more.
    stack.start_service("notify").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE event_type = 'digest.major'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(rows, 2);
    assert_eq!(receiver.seen("/wang").len() + receiver.seen("/li").len(), 2);
    stack.stop().await.unwrap();
}
