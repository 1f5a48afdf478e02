//! Returns (退单), transfers (转办) and arbitration across two department
//! systems, each with its own durable consumer on
//! `tousu.evt.complaint.assigned.<its dept>`, acting through desk's HTTP
//! action API; and routing's handler selection (round robin, also shared
//! by two routing replicas; least open cases). Skills are unit-tested in
//! `services/routing/src/handlers.rs`.
//!
//! A fire in a store caused by a power bank is a premises safety incident:
//! the default policy sends it to operations (rule `premises-safety`);
//! without operations, `product-safety` sends it to quality; without
//! both, nothing is left but the complaint centre (`service`, the triage
//! department).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use serde_json::{Value, json};
use tousu_proto::v1 as pb;
use tousu_tests::{HttpResponse, Stack, desk_case, http, submit_json, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// A department system's durable consumer of its assignments.
async fn department(js: &jetstream::Context, dept: &str) -> anyhow::Result<PullConsumer> {
    let stream = js.get_stream("TOUSU_EVENTS").await?;
    Ok(stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(format!("{dept}-system")),
            filter_subject: format!("tousu.evt.complaint.assigned.{dept}"),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?)
}

/// The next assignment the department receives (acked, as its system
/// would after taking it in).
async fn next_assignment(
    consumer: &PullConsumer,
) -> anyhow::Result<(pb::Event, pb::ComplaintAssigned)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        if let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let event = tousu_bus::decode_event(&m.payload).map_err(|e| anyhow::anyhow!(e))?;
            let Some(pb::event::Payload::Assigned(a)) = event.payload.clone() else {
                anyhow::bail!("not an assignment on {}: {event:?}", m.subject);
            };
            return Ok((event, a));
        }
    }
    anyhow::bail!("no assignment within {WAIT:?}")
}

/// Messages waiting for (or delivered to and not yet acked by) the
/// department's consumer.
async fn waiting(consumer: &mut PullConsumer) -> anyhow::Result<u64> {
    let info = consumer.info().await?;
    Ok(info.num_pending + info.num_ack_pending as u64)
}

async fn submit(
    stack: &Stack,
    title: &str,
    description: &str,
    phone: &str,
) -> anyhow::Result<String> {
    let r = submit_json(
        stack.http("intake"),
        &json!({"title": title, "description": description, "name": "顾客", "phone": phone}),
        &[],
    )
    .await?;
    anyhow::ensure!(r.status == 202, "{}", String::from_utf8_lossy(&r.body));
    Ok(r.json()["id"].as_str().unwrap_or_default().to_owned())
}

/// `POST /v1/complaints/{id}/{action}` on desk.
async fn act(stack: &Stack, id: &str, action: &str, body: Value) -> anyhow::Result<HttpResponse> {
    http(
        stack.http("desk"),
        "POST",
        &format!("/v1/complaints/{id}/{action}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// Waits until desk shows the complaint with `department` (it has taken
/// in routing's assignment).
async fn desk_shows(stack: &Stack, id: &str, department: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = desk_case(stack.http("desk"), id).await
            && r.status == 200
        {
            last = r.json();
            if last["department"] == department && last["status"] == "assigned" {
                return Ok(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("desk does not show {id} assigned to {department}; last seen {last}")
}

/// One audit row of `reassignments`.
type Reassignment = (
    i32,
    String,
    String,
    String,
    String,
    String,
    Vec<String>,
    bool,
);

async fn reassignments(stack: &Stack, id: &str) -> anyhow::Result<Vec<Reassignment>> {
    let mut db = stack.db("routing").await?;
    Ok(sqlx::query_as(
        "SELECT version, because, from_department, to_department, actor, reason, returned_by, arbitrated
           FROM reassignments WHERE complaint_id = $1::uuid ORDER BY version",
    )
    .bind(id)
    .fetch_all(&mut db)
    .await?)
}

const FIRE_TITLE: &str = "门店充电宝爆炸起火";
const FIRE_TEXT: &str =
    "在你们商场门店试用充电宝时突然爆炸起火，店里货架烧了，我的手被烫伤，要求赔偿。";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_reroute_away_from_each_returner_and_arbitration_ends_returns() -> anyhow::Result<()>
{
    let stack = Stack::start_only(&["intake", "routing", "desk"], |_, _| {}).await?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let mut operations = department(&js, "operations").await?;
    let mut quality = department(&js, "quality").await?;
    let mut centre = department(&js, "service").await?;

    let id = submit(&stack, FIRE_TITLE, FIRE_TEXT, "13811112222").await?;
    let (first_event, first) = next_assignment(&operations).await?;
    assert_eq!(first_event.complaint_id, id);
    let a = first.assignment.clone().unwrap_or_default();
    assert_eq!(a.department, "operations");
    assert!(["peng.bo", "lu.xin"].contains(&a.handler.as_str()), "{a:?}");
    assert_eq!(a.co_departments, ["legal"]);
    assert_eq!(first.reassigned_because, "");
    assert!(first.previous_department.is_empty() && first.returned_by.is_empty());
    let classification = first.classification.clone().unwrap_or_default();
    assert_eq!(classification.grade, 1, "{classification:?}");
    assert!(classification.safety);
    desk_shows(&stack, &id, "operations").await?;

    // (a) operations returns it: quality gets it; operations hears nothing more.
    let r = act(
        &stack,
        &id,
        "return",
        json!({"actor": "deng.wei", "reason": "起火原因是充电宝质量问题，不属于门店运营"}),
    )
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, second) = next_assignment(&quality).await?;
    let a2 = second.assignment.clone().unwrap_or_default();
    assert_eq!(a2.department, "quality");
    assert!(["ma.li", "he.jun"].contains(&a2.handler.as_str()), "{a2:?}");
    assert_eq!(second.previous_department, "operations");
    assert_eq!(second.reassigned_because, "returned");
    assert_eq!(second.returned_by, ["operations"]);
    assert!(!second.arbitrated);
    // The complaint is the same: classification, tracking number, summary.
    assert_eq!(second.classification, first.classification);
    assert_eq!(second.tracking_no, first.tracking_no);
    assert_eq!(second.summary, first.summary);
    let why: Vec<&str> = second.rules.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(why.first(), Some(&"returned"), "{why:?}");
    assert!(why.contains(&"product-safety"), "{why:?}");
    assert!(
        second.rules[0].reason.contains("不属于门店运营"),
        "{:?}",
        second.rules[0]
    );
    assert_eq!(
        waiting(&mut operations).await?,
        0,
        "operations gets nothing more"
    );
    assert_eq!(waiting(&mut centre).await?, 0);
    desk_shows(&stack, &id, "quality").await?;

    // (b) quality returns it too: the complaint centre (triage) gets it.
    let r = act(
        &stack,
        &id,
        "return",
        json!({"actor": "sun.hao", "reason": "门店安全事故应由门店负责"}),
    )
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, third) = next_assignment(&centre).await?;
    let a3 = third.assignment.clone().unwrap_or_default();
    assert_eq!(a3.department, "service");
    assert_eq!(third.previous_department, "quality");
    assert_eq!(third.returned_by, ["operations", "quality"]);
    assert!(
        third.rules.iter().any(|h| h.rule == "triage"),
        "{:?}",
        third.rules
    );
    assert_eq!(waiting(&mut operations).await?, 0);
    assert_eq!(waiting(&mut quality).await?, 0);
    desk_shows(&stack, &id, "service").await?;

    // The centre arbitrates: operations it is, and no further return.
    let r = act(
        &stack,
        &id,
        "arbitrate",
        json!({"actor": "chen.jing", "to_department": "operations",
               "reason": "事故发生在门店，由运营部牵头，质量部协助调查"}),
    )
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, fourth) = next_assignment(&operations).await?;
    assert_eq!(
        fourth.assignment.clone().unwrap_or_default().department,
        "operations"
    );
    assert!(fourth.arbitrated);
    assert_eq!(fourth.reassigned_because, "arbitrated");
    assert_eq!(fourth.previous_department, "service");
    assert_eq!(fourth.returned_by, ["operations", "quality"]);
    desk_shows(&stack, &id, "operations").await?;

    let r = act(
        &stack,
        &id,
        "return",
        json!({"actor": "deng.wei", "reason": "再次退回"}),
    )
    .await?;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));

    // The audit trail: who, why, from, to.
    let audit = reassignments(&stack, &id).await?;
    let expected: Vec<Reassignment> = vec![
        (
            2,
            "returned".into(),
            "operations".into(),
            "quality".into(),
            "deng.wei".into(),
            "起火原因是充电宝质量问题，不属于门店运营".into(),
            vec!["operations".into()],
            false,
        ),
        (
            3,
            "returned".into(),
            "quality".into(),
            "service".into(),
            "sun.hao".into(),
            "门店安全事故应由门店负责".into(),
            vec!["operations".into(), "quality".into()],
            false,
        ),
        (
            4,
            "arbitrated".into(),
            "service".into(),
            "operations".into(),
            "chen.jing".into(),
            "事故发生在门店，由运营部牵头，质量部协助调查".into(),
            vec!["operations".into(), "quality".into()],
            true,
        ),
    ];
    assert_eq!(audit, expected);

    // Defence in depth: a return that slipped past desk is refused by
    // routing too (dead-lettered with the reason), and changes nothing.
    let forged = pb::Event {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: id.clone(),
        sequence: 1_000_000,
        producer: "desk".into(),
        payload: Some(pb::event::Payload::Lifecycle(pb::ComplaintLifecycle {
            status: pb::Status::Returned as i32,
            action: "returned".into(),
            department: "operations".into(),
            actor: "deng.wei".into(),
            reason: "绕过前台".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    js.publish(
        "tousu.evt.complaint.returned.operations",
        tousu_bus::encode_event(&forged).into(),
    )
    .await?
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = loop {
        let letters = tousu_bus::dlq::list(&js, 100).await.unwrap_or_default();
        if let Some(l) = letters
            .iter()
            .find(|l| l.consumer == tousu_routing::reassign::DURABLE)
        {
            break l.reason.clone();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no dead letter from routing: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reason.contains("arbitrated"), "{reason}");
    assert_eq!(reassignments(&stack, &id).await?.len(), 3);
    assert_eq!(waiting(&mut quality).await?, 0);
    assert_eq!(waiting(&mut centre).await?, 0);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_the_complaint_as_it_is() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "desk"], |_, _| {}).await?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let mut operations = department(&js, "operations").await?;
    let quality = department(&js, "quality").await?;

    let id = submit(&stack, FIRE_TITLE, FIRE_TEXT, "13833334444").await?;
    let (_, first) = next_assignment(&operations).await?;
    assert_eq!(
        first.assignment.clone().unwrap_or_default().department,
        "operations"
    );
    desk_shows(&stack, &id, "operations").await?;

    // Transfers to a department that does not exist are refused by desk.
    let r = act(
        &stack,
        &id,
        "transfer",
        json!({"actor": "deng.wei", "to_department": "nowhere", "reason": "x"}),
    )
    .await?;
    assert!(
        [400, 422].contains(&r.status),
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );

    let r = act(
        &stack,
        &id,
        "transfer",
        json!({"actor": "deng.wei", "to_department": "quality", "reason": "产品质量问题，转质量部"}),
    )
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, moved) = next_assignment(&quality).await?;
    let a = moved.assignment.clone().unwrap_or_default();
    assert_eq!(a.department, "quality");
    assert!(["ma.li", "he.jun"].contains(&a.handler.as_str()), "{a:?}");
    assert_eq!(moved.reassigned_because, "transferred");
    assert_eq!(moved.previous_department, "operations");
    assert!(moved.returned_by.is_empty());
    assert!(!moved.arbitrated);
    // Same complaint, same clocks' inputs: classification and SLA policy
    // unchanged; legal stays co-handler.
    assert_eq!(moved.classification, first.classification);
    let first_a = first.assignment.clone().unwrap_or_default();
    assert_eq!(a.sla_policy, first_a.sla_policy);
    assert_eq!(a.co_departments, ["legal"]);
    assert_eq!(moved.linked_complaint_ids, first.linked_complaint_ids);
    assert_eq!(waiting(&mut operations).await?, 0);

    let audit = reassignments(&stack, &id).await?;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].1.as_str(),
            audit[0].2.as_str(),
            audit[0].3.as_str()
        ),
        ("transferred", "operations", "quality")
    );

    // Redelivery: desk's transfer event once more (a new stream message,
    // same event id) makes no second reassignment.
    let stream = js.get_stream("TOUSU_EVENTS").await?;
    let capture = stream
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: "tousu.evt.complaint.transferred.operations".into(),
            ..Default::default()
        })
        .await?;
    let transfer = capture
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await?
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("desk published no transfer event"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let again = js
        .publish(transfer.subject.clone(), transfer.payload.clone())
        .await?
        .await?;
    // An old return arriving late — quality's, with a desk sequence number
    // before the transfer's — does not undo the transfer.
    let late = pb::Event {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: id.clone(),
        sequence: 1,
        producer: "desk".into(),
        payload: Some(pb::event::Payload::Lifecycle(pb::ComplaintLifecycle {
            status: pb::Status::Returned as i32,
            action: "returned".into(),
            department: "quality".into(),
            actor: "sun.hao".into(),
            reason: "迟到的退单".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let late = js
        .publish(
            "tousu.evt.complaint.returned.quality",
            tousu_bus::encode_event(&late).into(),
        )
        .await?
        .await?;
    let last = again.sequence.max(late.sequence);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = stream
            .consumer_info(tousu_routing::reassign::DURABLE)
            .await?;
        if info.ack_floor.stream_sequence >= last {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "routing did not process stream message {last}: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reassignments(&stack, &id).await?.len(), 1);
    let mut db = stack.db("routing").await?;
    let (department, version): (String, i32) =
        sqlx::query_as("SELECT department, version FROM assignments WHERE complaint_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await?;
    assert_eq!((department.as_str(), version), ("quality", 2));
    assert_eq!(waiting(&mut operations).await?, 0);
    let mut quality = quality;
    assert_eq!(waiting(&mut quality).await?, 0);
    let letters = tousu_bus::dlq::list(&js, 100).await.unwrap_or_default();
    assert!(
        !letters
            .iter()
            .any(|l| l.consumer == tousu_routing::reassign::DURABLE),
        "ignored, not refused: {letters:?}"
    );
    stack.stop().await
}

/// Publishes `text` as the policy in force and waits until routing
/// explains with it.
async fn publish_policy(stack: &Stack, text: &str) -> anyhow::Result<()> {
    let (policy, _) = tousu_policy::schema::Policy::from_toml_in_dir(
        text,
        "test",
        tousu_tests::default_policy()
            .parent()
            .unwrap_or(std::path::Path::new(".")),
    )
    .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let store = js.get_key_value(tousu_routing::reload::BUCKET).await?;
    store
        .put(
            tousu_routing::reload::KEY,
            text.to_owned().into_bytes().into(),
        )
        .await?;
    let routing = stack.http("routing");
    wait_until(WAIT, || async {
        http(
            routing,
            "POST",
            "/v1/explain",
            &[("Content-Type", "application/json")],
            json!({"description": "快递三天没到"})
                .to_string()
                .as_bytes(),
        )
        .await
        .is_ok_and(|r| r.json()["policy_version"] == policy.version.as_str())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_gives_each_handler_in_turn() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "desk"], |_, _| {}).await?;
    // logistics with a third handler (its head helps out).
    let text = std::fs::read_to_string(tousu_tests::default_policy())?;
    let two = "handlers = [\"xu.fang\", \"lin.tao\"]";
    anyhow::ensure!(text.contains(two), "policies/default.toml changed");
    publish_policy(
        &stack,
        &text.replace(two, "handlers = [\"xu.fang\", \"lin.tao\", \"guo.qiang\"]"),
    )
    .await?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let logistics = department(&js, "logistics").await?;

    let parcels = [
        (
            "快递延误",
            "我的快递已经三天没到了，物流信息一直不更新",
            "13800000001",
        ),
        (
            "包裹丢失",
            "快递显示已签收但我根本没收到包裹",
            "13800000002",
        ),
        (
            "配送太慢",
            "同城快递送了五天还没送到，客服也联系不上",
            "13800000003",
        ),
        // The first complainant again, about another parcel.
        (
            "又一个快递没送到",
            "快递没送上门，直接扔在楼下快递柜也不通知",
            "13800000001",
        ),
    ];
    let mut handlers = Vec::new();
    let mut ids = Vec::new();
    let mut linked = Vec::new();
    for (title, text, phone) in parcels {
        // One at a time: the turn order is the order of assignment.
        let id = submit(&stack, title, text, phone).await?;
        let (event, assigned) = next_assignment(&logistics).await?;
        assert_eq!(event.complaint_id, id);
        let a = assigned.assignment.unwrap_or_default();
        assert_eq!(a.department, "logistics");
        assert!(
            assigned.rules.last().is_some_and(|h| h.rule == "handler"
                && h.reason.starts_with("round_robin: turn")
                && h.reason.ends_with(&a.handler)),
            "{:?}",
            assigned.rules
        );
        handlers.push(a.handler);
        ids.push(id);
        linked = assigned.linked_complaint_ids;
    }
    assert_eq!(handlers, ["xu.fang", "lin.tao", "guo.qiang", "xu.fang"]);
    // The same person's earlier complaint is linked to the last one.
    assert!(
        linked.contains(&ids[0]),
        "{linked:?} should name {}",
        ids[0]
    );
    let mut db = stack.db("routing").await?;
    let next: i64 =
        sqlx::query_scalar("SELECT next FROM handler_cursors WHERE department = 'logistics'")
            .fetch_one(&mut db)
            .await?;
    assert_eq!(next, 4);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_open_picks_the_handler_with_fewer_open_cases() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "desk"], |_, _| {}).await?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let quality = department(&js, "quality").await?;
    let batteries = [
        (
            "充电宝爆炸",
            "充电宝充电时突然爆炸，孩子手臂烫伤，要求赔偿",
            "13900000001",
        ),
        (
            "手机电池鼓包起火",
            "新买的手机电池鼓包，充电时起火，手被烧伤",
            "13900000002",
        ),
        (
            "电热水器漏电",
            "电热水器漏电，洗澡时被电击受伤，产品有质量问题",
            "13900000003",
        ),
        (
            "电动车电池爆炸",
            "电动车电池在家里充电时爆炸，邻居受伤",
            "13900000004",
        ),
    ];
    let mut ids = Vec::new();
    let mut handlers = Vec::new();
    for (title, text, phone) in &batteries[..2] {
        let id = submit(&stack, title, text, phone).await?;
        let (_, a) = next_assignment(&quality).await?;
        let a = a.assignment.unwrap_or_default();
        assert_eq!(a.department, "quality");
        handlers.push(a.handler);
        ids.push(id);
    }
    // Nobody has anything: the first listed; then the other one.
    assert_eq!(handlers, ["ma.li", "he.jun"]);

    // quality signs for the second one naming ma.li: she has two open
    // cases, he.jun none — the next two go to him.
    desk_shows(&stack, &ids[1], "quality").await?;
    let r = act(
        &stack,
        &ids[1],
        "sign-for",
        json!({"actor": "sun.hao", "handler": "ma.li"}),
    )
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut db = stack.db("routing").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let handler: Option<String> =
            sqlx::query_scalar("SELECT handler FROM assignments WHERE complaint_id = $1::uuid")
                .bind(&ids[1])
                .fetch_one(&mut db)
                .await?;
        if handler.as_deref() == Some("ma.li") {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "routing did not take up the sign-for: {handler:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (title, text, phone) in &batteries[2..] {
        submit(&stack, title, text, phone).await?;
        let (_, a) = next_assignment(&quality).await?;
        let a = a.assignment.unwrap_or_default();
        assert_eq!(a.department, "quality");
        handlers.push(a.handler);
    }
    assert_eq!(handlers, ["ma.li", "he.jun", "he.jun", "he.jun"]);
    let open: Vec<(String, i64)> = sqlx::query_as(
        "SELECT handler, count(*) FROM assignments WHERE open AND department = 'quality'
          GROUP BY handler ORDER BY handler",
    )
    .fetch_all(&mut db)
    .await?;
    assert_eq!(open, [("he.jun".to_owned(), 2), ("ma.li".to_owned(), 2)]);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routing_replicas_share_one_turn_order() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "routing"], |_, _| {}).await?;
    let js = jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let logistics = department(&js, "logistics").await?;
    // Ten parcels at once, shared by the two replicas.
    let intake = stack.http("intake");
    let submitted = futures::future::join_all((0..10).map(|i| async move {
        submit_json(
            intake,
            &json!({
                "title": format!("快递{i}号没到"),
                "description": format!("订单{i}的快递已经五天没送到了，物流信息一直不更新"),
                "phone": format!("1370000{i:04}"),
            }),
            &[],
        )
        .await
    }))
    .await;
    for r in submitted {
        assert_eq!(r?.status, 202);
    }
    let mut turns = Vec::new();
    let mut per_handler = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..10 {
        let (_, a) = next_assignment(&logistics).await?;
        let handler = a.assignment.unwrap_or_default().handler;
        let reason = &a.rules.last().expect("handler hit").reason;
        // `round_robin: turn N of xu.fang, lin.tao → …`
        let turn: u32 = reason
            .strip_prefix("round_robin: turn ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no turn in {reason:?}"))?;
        turns.push(turn);
        *per_handler.entry(handler).or_default() += 1;
    }
    turns.sort_unstable();
    assert_eq!(turns, (1..=10).collect::<Vec<_>>(), "each turn once");
    assert_eq!(
        per_handler.into_iter().collect::<Vec<_>>(),
        [("lin.tao".to_owned(), 5), ("xu.fang".to_owned(), 5)]
    );
    stack.stop().await
}
