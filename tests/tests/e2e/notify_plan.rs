//! notify's planner end to end, against a webhook receiver in the test (a
//! small HTTP server: each roster member's `webhook` contact is a path on
//! it): the grade-1 ladder with acknowledgement, digests, masking beyond
//! the handling department, and one delivery per event across replicas.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tousu_bus::{Payload, decode_event};
use tousu_proto::v1 as pb;
use tousu_tests::{Stack, http, policy_with, submit_json, wait_until};

/// One request the receiver got: its path and JSON body.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    body: Value,
}

/// A webhook receiver answering 200 to every POST and keeping what came.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(Mutex::new(Vec::new()));
        let kept = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, kept).await;
                });
            }
        });
        Ok(Receiver { addr, hits })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let want = format!("/{path}");
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == want)
            .cloned()
            .collect()
    }
}

/// Serves the requests of one connection (keep-alive).
async fn serve(
    mut stream: tokio::net::TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
        buf.drain(..end + 4 + length);
        hits.lock().unwrap().push(Hit { path, body });
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
            )
            .await?;
    }
}

/// `HH:MM` in Asia/Shanghai, `minutes` from now.
fn cst_clock(minutes: i64) -> String {
    let t = OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        + time::Duration::minutes(minutes);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A duty schedule naming `member` (the shipped one names members the
/// test rosters do not have).
fn duty(member: &str) -> String {
    format!(
        r#"role = "duty_leader"
members = ["{member}"]
weekdays = ["mon"]
from = "08:00"
to = "09:00""#
    )
}

/// A policy whose `[[notify]]` rules are `rules` and whose only roster
/// member is `id` (`member`: its other TOML lines), reached by webhook at
/// `url` and on duty in the only shift.
fn one_member_policy(
    rules: &str,
    id: &str,
    member: &str,
    url: &str,
) -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf)> {
    policy_with(&[
        ("notify", rules),
        (
            "rosters.members",
            &format!("id = \"{id}\"\n{member}\ncontacts = {{ webhook = \"{url}\" }}"),
        ),
        ("rosters.duty", &duty(id)),
    ])
}

async fn wait_hits(r: &Receiver, path: &str, n: usize, within: Duration) -> Vec<Hit> {
    let _ = wait_until(within, || async { r.hits(path).len() >= n }).await;
    r.hits(path)
}

async fn scalar(stack: &Stack, sql: &str) -> anyhow::Result<i64> {
    let mut db = stack.db("notify").await?;
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut db)
        .await?;
    Ok(n)
}

/// Publishes an event as its producer would.
async fn publish(js: &async_nats::jetstream::Context, event: &pb::Event) -> anyhow::Result<()> {
    let subject = tousu_bus::EventExt::subject(event)?;
    js.publish(subject, prost::Message::encode_to_vec(event).into())
        .await?
        .await?;
    Ok(())
}

fn sla_event(complaint: uuid::Uuid, payload: Payload) -> pb::Event {
    pb::Event {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: complaint.to_string(),
        sequence: 1,
        occurred_at: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
        policy_version: String::new(),
        producer: "sla".into(),
        payload: Some(payload),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grade_one_complaint_climbs_the_ladder_until_someone_acknowledges() -> anyhow::Result<()>
{
    let r = Receiver::start().await?;
    // `duty.now` is on duty for the next three hours, `duty.later` the
    // rest of the day; `boss` is leadership, the ladder's next level.
    let (_dir, policy) = policy_with(&[
        (
            "notify",
            r#"event = "alert.major"
min_grade = 1
roles = ["duty_leader", "leadership"]
channels = ["webhook"]
ack_within = "2s""#,
        ),
        (
            "rosters.members",
            &format!(
                r#"id = "duty.now"
name = "值班 Now"
roles = ["duty_leader"]
contacts = {{ webhook = "{}" }}

[[rosters.members]]
id = "duty.later"
name = "值班 Later"
roles = ["duty_leader"]
contacts = {{ webhook = "{}" }}

[[rosters.members]]
id = "boss"
name = "王刚"
roles = ["leadership"]
contacts = {{ webhook = "{}" }}
quiet_hours = "00:00-23:59""#,
                r.url("duty-now"),
                r.url("duty-later"),
                r.url("boss"),
            ),
        ),
        (
            "rosters.duty",
            &format!(
                r#"role = "duty_leader"
members = ["duty.now"]
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
from = "{a}"
to = "{b}"

[[rosters.duty]]
role = "duty_leader"
members = ["duty.later"]
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
from = "{b}"
to = "{a}""#,
                a = cst_clock(-90),
                b = cst_clock(90),
            ),
        ),
    ])?;
    let stack = Stack::start_only(&["intake", "routing", "notify"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let nats = async_nats::connect(&stack.nats.url).await?;
    let mut acked_events = nats.subscribe("tousu.evt.notify.acked").await?;
    nats.flush().await?;

    // Nobody acknowledges the first: the next level hears of it after 2 s
    // (quiet hours do not hold back a grade-1 notice).
    let submit = |text: &'static str| {
        let intake = stack.http("intake");
        async move {
            let r = submit_json(
                intake,
                &json!({"description": text, "phone": "13812345678"}),
                &[],
            )
            .await?;
            anyhow::ensure!(r.status == 202, "submit: {} {:?}", r.status, r.json());
            anyhow::Ok(r.json()["id"].as_str().unwrap_or_default().to_owned())
        }
    };
    let ignored = submit("充电宝在宿舍充电时爆炸起火，孩子手被烧伤").await?;
    let first = wait_hits(&r, "duty-now", 1, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 1, "the duty leader is told");
    let body = &first[0].body;
    assert_eq!(body["event_type"], "alert.major");
    assert_eq!(body["complaint_id"], ignored.as_str());
    assert_eq!(body["data"]["recipient"], "duty.now");
    assert_eq!(body["data"]["step"], 0);
    assert!(body["subject"].as_str().unwrap().contains("重大"), "{body}");
    let ack_link = body["ack_link"].as_str().unwrap().to_owned();
    assert!(
        ack_link.starts_with(&format!("http://{}/v1/acks/", stack.http("notify"))),
        "{ack_link}"
    );
    assert!(body["text"].as_str().unwrap().contains(&ack_link));
    assert!(
        body["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/complaints/{ignored}"))
    );
    let up = wait_hits(&r, "boss", 1, Duration::from_secs(15)).await;
    assert_eq!(up.len(), 1, "nobody acknowledged: the next level is told");
    assert_eq!(up[0].body["complaint_id"], ignored.as_str());
    assert_eq!(up[0].body["data"]["step"], 1);
    assert!(r.hits("duty-later").is_empty(), "off duty: not told");

    // The second is acknowledged through its link before 2 s pass.
    let acked = submit("小区配电房起火爆炸，有人受伤送医").await?;
    wait_until(Duration::from_secs(20), || async {
        r.hits("duty-now")
            .iter()
            .any(|h| h.body["complaint_id"] == acked.as_str())
    })
    .await?;
    let hit = r
        .hits("duty-now")
        .into_iter()
        .find(|h| h.body["complaint_id"] == acked.as_str())
        .unwrap();
    let link = hit.body["ack_link"].as_str().unwrap().to_owned();
    let path = link
        .split_once("/v1/acks/")
        .map(|(_, t)| format!("/v1/acks/{t}"))
        .unwrap();
    let notify = stack.http("notify");
    // A GET (a link scanner's prefetch) shows the page and acknowledges nothing.
    let page = http(notify, "GET", &path, &[], b"").await?;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<form method=\"post\">"), "{html}");
    let state = http(notify, "GET", &path, &[("Accept", "application/json")], b"").await?;
    assert_eq!(state.json()["acked"], false);
    assert_eq!(state.json()["recipient"], "duty.now");
    let ladder: Vec<(u64, String)> = state.json()["ladder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_u64().unwrap(),
                s["recipient"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(ladder, [(0, "duty.now".to_owned()), (1, "boss".to_owned())]);
    // The POST acknowledges, stops the ladder and says so on NATS.
    let ack = http(
        notify,
        "POST",
        &path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"actor=duty.now",
    )
    .await?;
    assert_eq!(ack.status, 200);
    assert!(String::from_utf8_lossy(&ack.body).contains("duty.now"));
    let state = http(notify, "GET", &path, &[("Accept", "application/json")], b"").await?;
    assert_eq!(state.json()["acked"], true, "{}", state.json());
    assert_eq!(state.json()["acked_by"], "duty.now");
    let boss_row = state.json()["ladder"][1].clone();
    assert_eq!(boss_row["status"], "cancelled", "{boss_row}");
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let msg = acked_events.next().await.expect("subscription");
            let e = decode_event(&msg.payload).expect("event");
            if e.complaint_id == acked {
                return e;
            }
        }
    })
    .await?;
    let Some(Payload::NotifyAcked(a)) = &event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(a.cause_event_type, "alert.major");
    assert_eq!(a.recipient, "duty.now");
    assert_eq!(a.actor, "duty.now");
    // Acknowledging again changes nothing.
    let again = http(
        notify,
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        br#"{"actor": "someone.else"}"#,
    )
    .await?;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["already"], true);
    assert_eq!(again.json()["acked_by"], "duty.now");
    // Well past the 2 s: the boss never heard of the acknowledged one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        r.hits("boss")
            .iter()
            .all(|h| h.body["complaint_id"] != acked.as_str()),
        "an acknowledged ladder stops"
    );
    assert_eq!(r.hits("boss").len(), 1);
    // Unknown and malformed tokens.
    let missing = http(
        notify,
        "GET",
        &format!("/v1/acks/{}", "0".repeat(64)),
        &[],
        b"",
    )
    .await?;
    assert_eq!(missing.status, 404);
    let bad = http(notify, "POST", "/v1/acks/not-a-token", &[], b"").await?;
    assert_eq!(bad.status, 404);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_warnings_for_one_department_make_one_digest() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (_dir, policy) = one_member_policy(
        r#"event = "sla.warning"
roles = ["department_head"]
channels = ["webhook"]"#,
        "sun.hao",
        r#"name = "孙浩"
department = "quality""#,
        &r.url("head"),
    )?;
    let stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
        c.notify_digest_threshold = 3;
        c.notify_digest_window_secs = 6;
    })
    .await?;
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    for _ in 0..100 {
        let e = sla_event(
            uuid::Uuid::now_v7(),
            Payload::SlaWarning(pb::SlaWarning {
                target: pb::SlaTarget::Resolution as i32,
                department: "quality".into(),
                percent: 80,
                deadline: Some(tousu_bus::to_timestamp(
                    OffsetDateTime::now_utc() + time::Duration::hours(4),
                )),
            }),
        );
        publish(&js, &e).await?;
    }
    // Three warnings as usual, then one digest of the other 97 when the
    // window closes.
    let hits = wait_hits(&r, "head", 4, Duration::from_secs(30)).await;
    assert_eq!(hits.len(), 4, "{hits:?}");
    // Nothing more comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hits = r.hits("head");
    assert_eq!(hits.len(), 4, "100 warnings: 3 messages and 1 digest");
    let warnings = hits
        .iter()
        .filter(|h| h.body["event_type"] == "sla.warning")
        .count();
    assert_eq!(warnings, 3);
    let digest = hits
        .iter()
        .find(|h| h.body["event_type"] == "digest")
        .expect("a digest");
    assert_eq!(digest.body["data"]["count"], 97);
    assert_eq!(digest.body["data"]["department"], "quality");
    let text = digest.body["text"].as_str().unwrap();
    assert!(text.contains("97"), "{text}");
    assert!(
        text.contains("……另有 47 条未列出"),
        "50 listed, the rest counted: {text}"
    );
    assert_eq!(
        scalar(
            &stack,
            "SELECT count(*) FROM deliveries WHERE status = 'digested'"
        )
        .await?,
        97
    );
    assert_eq!(
        scalar(
            &stack,
            "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        )
        .await?,
        4
    );
    assert_eq!(
        scalar(
            &stack,
            "SELECT count(DISTINCT digest_of) FROM deliveries WHERE status = 'digested'"
        )
        .await?,
        1
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complainants_phone_is_masked_beyond_the_handling_department() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (_dir, policy) = policy_with(&[
        (
            "notify",
            r#"event = "complaint.assigned"
roles = ["handler", "complaint_centre"]
channels = ["webhook"]

[[notify]]
event = "complaint.received"
roles = ["complainant"]
channels = ["sms", "email"]"#,
        ),
        (
            "rosters.members",
            &format!(
                r#"id = "ma.li"
name = "马丽"
department = "quality"
contacts = {{ webhook = "{}" }}

[[rosters.members]]
id = "chen.jing"
name = "陈静"
roles = ["complaint_centre"]
department = "service"
contacts = {{ webhook = "{}" }}"#,
                r.url("handler"),
                r.url("centre"),
            ),
        ),
        ("rosters.duty", &duty("chen.jing")),
    ])?;
    // No routing: the test assigns the complaint as routing would.
    let stack = Stack::start_only(&["intake", "notify"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let sub = submit_json(
        stack.http("intake"),
        &json!({"description": "买的电水壶用了两次就漏电，客服不理", "phone": "13812345678", "name": "张三"}),
        &[],
    )
    .await?;
    assert_eq!(sub.status, 202, "{:?}", sub.json());
    let id = sub.json()["id"].as_str().unwrap().to_owned();
    let tracking = sub.json()["tracking_no"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // notify has the complaint's facts.
    let complaint = uuid::Uuid::parse_str(&id)?;
    let query = format!(
        "SELECT count(*) FROM complaint_facts WHERE complaint_id = '{complaint}' AND received_at IS NOT NULL"
    );
    let mut known = false;
    for _ in 0..200 {
        if scalar(&stack, &query).await? == 1 {
            known = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(known, "complaint.received reached notify");
    // The web form answered with the tracking number: no second
    // acknowledgement to the complainant.
    assert_eq!(
        scalar(
            &stack,
            &format!(
                "SELECT count(*) FROM deliveries WHERE complaint_id = '{complaint}'
                 AND recipient = 'complainant' AND status = 'suppressed'
                 AND detail LIKE 'intake already gave%'"
            )
        )
        .await?,
        1
    );

    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let assigned = pb::Event {
        producer: "routing".into(),
        ..sla_event(
            complaint,
            Payload::Assigned(pb::ComplaintAssigned {
                assignment: Some(pb::Assignment {
                    department: "quality".into(),
                    handler: "ma.li".into(),
                    ..Default::default()
                }),
                classification: Some(pb::Classification {
                    grade: 3,
                    urgency: pb::Urgency::Normal as i32,
                    ..Default::default()
                }),
                tracking_no: tracking.clone(),
                summary: "电水壶漏电".into(),
                ..Default::default()
            }),
        )
    };
    publish(&js, &assigned).await?;
    let handler = wait_hits(&r, "handler", 1, Duration::from_secs(15)).await;
    let centre = wait_hits(&r, "centre", 1, Duration::from_secs(15)).await;
    assert_eq!((handler.len(), centre.len()), (1, 1));
    let to_handler = handler[0].body.to_string();
    let to_centre = centre[0].body.to_string();
    // The handling department sees the number; the complaint centre does not.
    assert!(to_handler.contains("13812345678"), "{to_handler}");
    assert!(!to_centre.contains("13812345678"), "{to_centre}");
    assert!(
        centre[0].body["text"]
            .as_str()
            .unwrap()
            .contains("138****5678"),
        "{to_centre}"
    );
    assert_eq!(
        centre[0].body["data"]["complainant"]["phone"],
        "138****5678"
    );
    assert_eq!(centre[0].body["data"]["complainant"]["name"], "张*");
    assert!(handler[0].body["text"].as_str().unwrap().contains("张三"));
    assert_eq!(handler[0].body["tracking_no"], tracking.as_str());
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_delivered_twice_to_two_replicas_is_told_once() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (_dir, policy) = one_member_policy(
        r#"event = "sla.breached"
roles = ["department_head"]
channels = ["webhook"]"#,
        "guo.qiang",
        r#"name = "郭强"
department = "logistics""#,
        &r.url("head"),
    )?;
    let mut stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    stack.start_service("notify").await?;
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let complaint = uuid::Uuid::now_v7();
    let breach = sla_event(
        complaint,
        Payload::SlaBreached(pb::SlaBreached {
            target: pb::SlaTarget::Resolution as i32,
            department: "logistics".into(),
            deadline: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
        }),
    );
    // The same event twice on the stream (a producer's retry without the
    // stream's dedup): the replicas share the work.
    publish(&js, &breach).await?;
    publish(&js, &breach).await?;
    let hits = wait_hits(&r, "head", 1, Duration::from_secs(15)).await;
    assert_eq!(hits.len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.hits("head").len(), 1, "told once");
    assert_eq!(
        scalar(
            &stack,
            &format!("SELECT count(*) FROM deliveries WHERE complaint_id = '{complaint}'")
        )
        .await?,
        1
    );
    // And the unique key holds on its own: planning the same rows again
    // (another replica racing past the inbox) inserts nothing.
    let mut db = stack.db("notify").await?;
    let row = tousu_notify::plan::Row {
        cause_event_id: uuid::Uuid::parse_str(&breach.id)?,
        complaint_id: complaint,
        event_type: "sla.breached".into(),
        recipient: "guo.qiang".into(),
        channel: "webhook".into(),
        status: "pending".into(),
        detail: String::new(),
        address: r.url("head"),
        endpoint: String::new(),
        message: tousu_notify::model::Message::default(),
        rule: "sla.breached>department_head".into(),
        event_at: OffsetDateTime::now_utc(),
        next_attempt_at: OffsetDateTime::now_utc(),
        step: 0,
        ack_token: None,
        digest_of: None,
        due_by: None,
        fallbacks: Vec::new(),
    };
    assert_eq!(
        tousu_notify::plan::insert(&mut db, std::slice::from_ref(&row)).await?,
        0
    );
    let other = tousu_notify::plan::Row {
        recipient: "someone.else".into(),
        status: "suppressed".into(),
        ..row
    };
    assert_eq!(tousu_notify::plan::insert(&mut db, &[other]).await?, 1);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_arriving_out_of_order_keep_the_newest() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["notify"], |_, _| {}).await?;
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let complaint = uuid::Uuid::now_v7();
    let t0 = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let at = |minutes: i64, producer: &str, payload: Payload| pb::Event {
        occurred_at: Some(tousu_bus::to_timestamp(
            t0 + time::Duration::minutes(minutes),
        )),
        producer: producer.into(),
        ..sla_event(complaint, payload)
    };
    let assigned = |department: &str, handler: &str, grade: u32| {
        Payload::Assigned(pb::ComplaintAssigned {
            assignment: Some(pb::Assignment {
                department: department.into(),
                handler: handler.into(),
                ..Default::default()
            }),
            classification: Some(pb::Classification {
                grade,
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    // Newest first: the transfer to logistics (t0 + 5), then the first
    // assignment to quality (t0 + 2), then a regrade (t0 + 3), then the
    // receipt itself (t0).
    publish(&js, &at(5, "routing", assigned("logistics", "xu.fang", 3))).await?;
    publish(&js, &at(2, "routing", assigned("quality", "ma.li", 4))).await?;
    publish(
        &js,
        &at(
            3,
            "sla",
            Payload::Regraded(pb::ComplaintRegraded {
                old_grade: 4,
                new_grade: 2,
                reason: "unresolved 7 days".into(),
                actor: "system".into(),
            }),
        ),
    )
    .await?;
    publish(
        &js,
        &at(
            0,
            "intake",
            Payload::Received(pb::ComplaintReceived {
                complaint: Some(pb::Complaint {
                    id: complaint.to_string(),
                    tracking_no: "TS-OUT-OF-ORDER".into(),
                    complainant: Some(pb::Complainant {
                        phone: "+8613812345678".into(),
                        ..Default::default()
                    }),
                    content: Some(pb::Content {
                        description: "快递三次改期还没送到".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ack: None,
            }),
        ),
    )
    .await?;
    // Wait for the four events to be in (the older assignment may be retried
    // while the receipt is missing).
    wait_until(Duration::from_secs(15), || async {
        let mut db = stack.db("notify").await.expect("db");
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbox WHERE consumer = 'notify'")
            .fetch_one(&mut db)
            .await
            .unwrap_or((0,));
        n == 4
    })
    .await?;
    let mut db = stack.db("notify").await?;
    let row: (
        String,
        Option<String>,
        Option<String>,
        Option<i16>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT tracking_no, department, handler, grade, complainant->>'phone'
             FROM complaint_facts WHERE complaint_id = $1",
    )
    .bind(complaint)
    .fetch_one(&mut db)
    .await?;
    assert_eq!(
        row,
        (
            "TS-OUT-OF-ORDER".to_owned(),
            Some("logistics".to_owned()),
            Some("xu.fang".to_owned()),
            Some(3),
            Some("+8613812345678".to_owned())
        ),
        "the newest assignment and grade win whatever the arrival order"
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_major_complaint_is_repeated_until_closed() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (_dir, policy) = one_member_policy(
        r#"event = "alert.major"
min_grade = 1
roles = ["duty_leader"]
channels = ["webhook"]
repeat = "2s""#,
        "li.na",
        r#"name = "李娜"
roles = ["duty_leader"]"#,
        &r.url("duty"),
    )?;
    let stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let complaint = uuid::Uuid::now_v7();
    let event = |producer: &str, payload: Payload| pb::Event {
        producer: producer.into(),
        ..sla_event(complaint, payload)
    };
    publish(
        &js,
        &event(
            "intake",
            Payload::Received(pb::ComplaintReceived {
                complaint: Some(pb::Complaint {
                    id: complaint.to_string(),
                    tracking_no: "TS-MAJOR-1".into(),
                    ..Default::default()
                }),
                ack: None,
            }),
        ),
    )
    .await?;
    publish(
        &js,
        &event(
            "routing",
            Payload::AlertMajor(pb::AlertMajor {
                department: "quality".into(),
                tracking_no: "TS-MAJOR-1".into(),
                summary: "电池爆炸致人受伤".into(),
                rules: vec![],
            }),
        ),
    )
    .await?;
    // The alert, then a repeat every 2 s, each a notice of its own.
    let hits = wait_hits(&r, "duty", 3, Duration::from_secs(20)).await;
    assert!(hits.len() >= 3, "{hits:?}");
    assert_eq!(hits[0].body["data"]["repeat"], 0);
    assert_eq!(hits[1].body["data"]["repeat"], 1);
    assert_eq!(hits[2].body["data"]["repeat"], 2);
    assert!(
        hits[1].body["subject"]
            .as_str()
            .unwrap()
            .contains("第2次提醒"),
        "{}",
        hits[1].body["subject"]
    );
    let causes: std::collections::HashSet<_> = hits
        .iter()
        .map(|h| h.body["event_id"].to_string())
        .collect();
    assert_eq!(causes.len(), hits.len(), "each repeat has its own cause");
    // Closed: the repeats end.
    publish(
        &js,
        &event(
            "desk",
            Payload::Lifecycle(pb::ComplaintLifecycle {
                status: pb::Status::Closed as i32,
                action: "closed".into(),
                department: "quality".into(),
                actor: "chen.jing".into(),
                ..Default::default()
            }),
        ),
    )
    .await?;
    let closed = format!(
        "SELECT count(*) FROM complaint_facts WHERE complaint_id = '{complaint}' AND closed"
    );
    let mut done = false;
    for _ in 0..200 {
        if scalar(&stack, &closed).await? == 1 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "the close reached notify");
    let told = r.hits("duty").len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        r.hits("duty").len() <= told + 1,
        "at most one repeat already under way when the close came"
    );
    assert_eq!(scalar(&stack, "SELECT count(*) FROM repeats").await?, 0);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_policy_changes_who_is_told() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (dir, policy) = one_member_policy(
        r#"event = "sla.breached"
roles = ["department_head"]
channels = ["webhook"]"#,
        "guo.qiang",
        r#"name = "郭强"
department = "logistics""#,
        &r.url("before"),
    )?;
    let file = policy.clone();
    let stack = Stack::start_only(&["notify"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let notify = stack.http("notify");
    let version = || async move {
        http(notify, "GET", "/v1/policy", &[], b"")
            .await
            .unwrap()
            .json()["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(version().await.starts_with("sha256:"));
    // The head's webhook moves.
    let text = std::fs::read_to_string(&file)?.replace(&r.url("before"), &r.url("after"));
    let (published, _) = tousu_policy::schema::Policy::from_toml_in_dir(&text, "x", dir.path())
        .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    js.get_key_value(tousu_routing::reload::BUCKET)
        .await?
        .put(tousu_routing::reload::KEY, text.into_bytes().into())
        .await?;
    wait_until(Duration::from_secs(10), || async {
        version().await == published.version
    })
    .await?;
    let complaint = uuid::Uuid::now_v7();
    publish(
        &js,
        &sla_event(
            complaint,
            Payload::SlaBreached(pb::SlaBreached {
                target: pb::SlaTarget::Resolution as i32,
                department: "logistics".into(),
                deadline: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
            }),
        ),
    )
    .await?;
    let hits = wait_hits(&r, "after", 1, Duration::from_secs(15)).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body["complaint_id"], complaint.to_string());
    assert!(r.hits("before").is_empty());
    stack.stop().await
}
