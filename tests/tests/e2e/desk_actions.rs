//! Desk actions (docs/desk.md) over HTTP and gRPC against intake, routing
//! and desk: the lifecycle from sign-for to close with its events on NATS,
//! the refusals (409 / 422 / 404 / 400 and their gRPC codes), and what
//! desk shows of other services' events after an action (routing's
//! reassignment after an arbitration, linked complaints, follow-ups).

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use serde_json::{Value, json};
use tousu_proto::desk::desk_service_client::DeskServiceClient;
use tousu_proto::desk::{
    ExtendRequest, GetComplaintRequest, PauseRequest, ResolveRequest, ReturnRequest, SignForRequest,
};
use tousu_proto::v1 as pb;
use tousu_tests::{HttpResponse, Stack, desk_case, http, submit_json, wait_for_status, wait_until};

const WAIT: Duration = Duration::from_secs(20);

async fn stack() -> anyhow::Result<Stack> {
    Stack::start_only(&["intake", "routing", "desk"], |_, _| {}).await
}

/// `POST /v1/complaints/{id}/{action}` with a JSON body.
async fn act(
    desk: SocketAddr,
    id: &str,
    action: &str,
    body: Value,
) -> anyhow::Result<HttpResponse> {
    http(
        desk,
        "POST",
        &format!("/v1/complaints/{id}/{action}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// The case JSON of a 200 answer.
fn case(r: &HttpResponse) -> Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// The problem+json of a refusal with `status`.
fn problem(r: &HttpResponse, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["status"], status);
    p
}

/// A logistics complaint by web form, assigned by routing; its id.
async fn logistics_complaint(stack: &Stack, phone: &str) -> anyhow::Result<String> {
    let r = submit_json(
        stack.http("intake"),
        &json!({
            "title": "快递延误",
            "description": "我的快递已经五天没到了，物流信息一直不更新，请尽快处理",
            "name": "王芳",
            "phone": phone,
        }),
        &[],
    )
    .await?;
    anyhow::ensure!(r.status == 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
    let case = wait_for_status(stack.http("desk"), &id, "assigned", WAIT).await?;
    anyhow::ensure!(case["department"] == "logistics", "{case}");
    Ok(id)
}

/// Desk's lifecycle events of complaint `id` on NATS, by sequence, once
/// `n` have arrived.
async fn lifecycle_events(
    sub: &mut async_nats::Subscriber,
    seen: &mut Vec<(String, pb::Event)>,
    id: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, pb::Event)>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mine = |seen: &Vec<(String, pb::Event)>| {
        let mut v: Vec<(String, pb::Event)> = seen
            .iter()
            .filter(|(_, e)| e.producer == "desk" && e.complaint_id == id)
            .cloned()
            .collect();
        v.sort_by_key(|(_, e)| e.sequence);
        v
    };
    while mine(seen).len() < n {
        let msg = tokio::time::timeout_at(deadline, sub.next())
            .await
            .map_err(|_| anyhow::anyhow!("only {} of {n} desk events", mine(seen).len()))?
            .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
        let event = tousu_bus::decode_event(&msg.payload).map_err(|e| anyhow::anyhow!(e))?;
        seen.push((msg.subject.to_string(), event));
    }
    Ok(mine(seen))
}

/// The case once desk shows it as `wanted`.
async fn case_when(
    desk: SocketAddr,
    id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        last = desk_case(desk, id).await?.json();
        if wanted(&last) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("desk never showed {id} as wanted; last seen {last}")
}

fn lifecycle(e: &pb::Event) -> pb::ComplaintLifecycle {
    match &e.payload {
        Some(pb::event::Payload::Lifecycle(l)) => l.clone(),
        other => panic!("not a lifecycle event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_goes_from_sign_for_to_close_and_each_step_is_published() -> anyhow::Result<()>
{
    let stack = stack().await?;
    let desk = stack.http("desk");
    let nats = async_nats::connect(&stack.nats.url).await?;
    let mut sub = nats.subscribe("tousu.evt.complaint.*.*").await?;
    let id = logistics_complaint(&stack, "13812340001").await?;

    // Resolving before anyone signed for it is refused, naming the status.
    let p = problem(
        &act(
            desk,
            &id,
            "resolve",
            json!({"actor": "xu.fang", "resolution": "已补发"}),
        )
        .await?,
        409,
    );
    assert_eq!(
        p["detail"],
        "cannot resolve a complaint in status assigned: it has not been signed for yet"
    );

    let c = case(&act(desk, &id, "sign-for", json!({"actor": "xu.fang"})).await?);
    assert_eq!(c["status"], "signed_for");
    assert_eq!(c["handler"], "xu.fang", "the handler defaults to who signs");
    assert_eq!(c["id"], id.as_str());

    let c = case(
        &act(
            desk,
            &id,
            "contact",
            json!({"actor": "xu.fang", "note": "电话联系王女士，核实收货地址，约定明日补发"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "investigating");

    let c = case(
        &act(
            desk,
            &id,
            "pause",
            json!({"actor": "xu.fang", "reason": "waiting_complainant", "note": "请投诉人提供订单截图"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "paused");
    assert_eq!(c["pause"]["from"], "investigating");
    assert_eq!(c["pause"]["reason"], "waiting_complainant");
    assert_eq!(c["pause"]["note"], "请投诉人提供订单截图");
    assert_eq!(c["pause"]["actor"], "xu.fang");
    assert!(c["pause"]["since"].is_string());

    let c = case(&act(desk, &id, "resume", json!({"actor": "xu.fang"})).await?);
    assert_eq!(
        c["status"], "investigating",
        "back to the status before the pause"
    );
    assert_eq!(c["pause"], Value::Null);

    let c = case(
        &act(
            desk,
            &id,
            "extend",
            json!({"actor": "guo.qiang", "duration": "5wd", "approver_role": "department_head",
                   "reason": "承运商需 5 个工作日查件"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "investigating");
    assert_eq!(c["extensions"], 1);

    // A second extension needs a senior leader.
    let p = problem(
        &act(
            desk,
            &id,
            "extend",
            json!({"actor": "guo.qiang", "duration": "3wd", "approver_role": "department_head",
                   "reason": "承运商仍未答复"}),
        )
        .await?,
        409,
    );
    assert_eq!(
        p["detail"],
        "cannot extend a complaint in status investigating: it was extended once; a second extension needs a senior_leader's approval"
    );

    let c = case(
        &act(
            desk,
            &id,
            "resolve",
            json!({"actor": "xu.fang", "resolution": "已补发商品并赔偿运费 12.00 元"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "resolved");
    assert_eq!(c["resolution"], "已补发商品并赔偿运费 12.00 元");

    // Not anonymous: closing needs the return visit first.
    let p = problem(
        &act(desk, &id, "close", json!({"actor": "chen.jing"})).await?,
        409,
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cannot close a complaint in status resolved: no return visit"),
        "{p}"
    );

    let c = case(
        &act(
            desk,
            &id,
            "return-visit",
            json!({"actor": "zhou.min", "satisfaction": 5, "note": "已收到补发商品，满意"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "return_visit");
    assert_eq!(c["satisfaction"], 5);
    assert_eq!(c["return_visited"], true);

    let c = case(
        &act(
            desk,
            &id,
            "close",
            json!({"actor": "chen.jing", "reason": "回访满意，结案"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "closed");

    // A satisfied complainant's case does not reopen.
    let p = problem(
        &act(
            desk,
            &id,
            "reopen",
            json!({"actor": "chen.jing", "reason": "复查"}),
        )
        .await?,
        409,
    );
    assert!(
        p["detail"].as_str().unwrap_or_default().starts_with(
            "cannot reopen a complaint in status closed: the complainant was not dissatisfied"
        ),
        "{p}"
    );

    // Desk shows the final state.
    let shown = desk_case(desk, &id).await?.json();
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["handler"], "xu.fang");
    assert_eq!(shown["extensions"], 1);

    // One event per action done, none for the refusals, on the subjects
    // of the contract, with their fields.
    let mut seen = Vec::new();
    let events = lifecycle_events(&mut sub, &mut seen, &id, 8).await?;
    let subjects: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "tousu.evt.complaint.signed_for.logistics",
            "tousu.evt.complaint.contacted.logistics",
            "tousu.evt.complaint.paused.logistics",
            "tousu.evt.complaint.resumed.logistics",
            "tousu.evt.complaint.extended.logistics",
            "tousu.evt.complaint.resolved.logistics",
            "tousu.evt.complaint.return_visited.logistics",
            "tousu.evt.complaint.closed.logistics",
        ]
    );
    let l: Vec<pb::ComplaintLifecycle> = events.iter().map(|(_, e)| lifecycle(e)).collect();
    let statuses: Vec<pb::Status> = l
        .iter()
        .map(|l| pb::Status::try_from(l.status).unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        [
            pb::Status::SignedFor,
            pb::Status::Investigating,
            pb::Status::Paused,
            pb::Status::Investigating,
            pb::Status::Investigating,
            pb::Status::Resolved,
            pb::Status::ReturnVisit,
            pb::Status::Closed,
        ]
    );
    for (l, actor) in l.iter().zip([
        "xu.fang",
        "xu.fang",
        "xu.fang",
        "xu.fang",
        "guo.qiang",
        "xu.fang",
        "zhou.min",
        "chen.jing",
    ]) {
        assert_eq!(l.actor, actor, "{l:?}");
        assert_eq!(l.department, "logistics");
        assert!(!l.arbitrated);
    }
    assert_eq!(l[0].action, "signed_for");
    assert_eq!(l[0].handler, "xu.fang");
    assert_eq!(l[1].reason, "电话联系王女士，核实收货地址，约定明日补发");
    assert_eq!(l[2].pause_reason, "waiting_complainant");
    assert_eq!(l[2].reason, "waiting_complainant");
    assert_eq!(
        l[4].extension,
        Some(pb::Extension {
            duration: "5wd".into(),
            approver: "guo.qiang".into(),
            approver_role: "department_head".into(),
            number: 1,
        })
    );
    assert_eq!(l[4].reason, "承运商需 5 个工作日查件");
    assert_eq!(l[5].reason, "已补发商品并赔偿运费 12.00 元");
    assert_eq!(l[6].satisfaction, 5);
    assert_eq!(l[7].reason, "回访满意，结案");
    let e0 = &events[0].1;
    assert!(
        !e0.policy_version.is_empty(),
        "events carry the policy version"
    );

    // The timeline holds the same steps with who and why, once each (the
    // events coming back from NATS do not add rows).
    let t = http(
        desk,
        "GET",
        &format!("/v1/complaints/{id}/timeline"),
        &[],
        b"",
    )
    .await?
    .json();
    let mine: Vec<&Value> = t["timeline"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["producer"] == "desk").collect())
        .unwrap_or_default();
    let actions: Vec<&str> = mine
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "signed_for",
            "contacted",
            "paused",
            "resumed",
            "extended",
            "resolved",
            "return_visited",
            "closed"
        ]
    );
    assert_eq!(mine[4]["actor"], "guo.qiang");
    assert_eq!(mine[4]["detail"]["approver_role"], "department_head");
    assert_eq!(mine[4]["detail"]["duration"], "5wd");
    assert_eq!(mine[2]["detail"]["from"], "investigating");
    assert_eq!(mine[2]["detail"]["to"], "paused");
    // Desk consumed its own events (they are in its inbox) and left the
    // case as the actions made it.
    let mut db = stack.db("desk").await?;
    let consumed = || async {
        let mut db = stack.db("desk").await.ok()?;
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM inbox i JOIN timeline t ON t.event_id = i.event_id
              WHERE i.consumer = 'desk' AND t.producer = 'desk' AND t.complaint_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&mut db)
        .await
        .ok()
    };
    wait_until(WAIT, || async { consumed().await == Some(8) }).await?;
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timeline WHERE complaint_id = $1::uuid AND producer = 'desk'",
    )
    .bind(&id)
    .fetch_one(&mut db)
    .await?;
    assert_eq!(rows, 8);
    assert_eq!(desk_case(desk, &id).await?.json()["status"], "closed");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_409_422_404_400_and_change_nothing() -> anyhow::Result<()> {
    let stack = stack().await?;
    let desk = stack.http("desk");
    let id = logistics_complaint(&stack, "13812340002").await?;

    // Unknown complaint: 404.
    let unknown = "0190a0a0-0000-7000-8000-00000000beef";
    let p = problem(
        &act(desk, unknown, "sign-for", json!({"actor": "xu.fang"})).await?,
        404,
    );
    assert!(
        p["detail"].as_str().unwrap_or_default().contains(unknown),
        "{p}"
    );
    // Not an id: 400 naming it.
    let r = act(desk, "order-123", "sign-for", json!({"actor": "xu.fang"})).await?;
    problem(&r, 400);
    assert_eq!(r.problem_fields(), ["id"]);
    // Malformed JSON, a field the action does not take, a wrong type: 400.
    let r = http(
        desk,
        "POST",
        &format!("/v1/complaints/{id}/sign-for"),
        &[("Content-Type", "application/json")],
        br#"{"actor": "xu.fang""#,
    )
    .await?;
    let p = problem(&r, 400);
    assert_eq!(p["type"], "https://tousu.dev/problems/malformed");
    assert_eq!(r.problem_fields(), ["body"]);
    let r = act(
        desk,
        &id,
        "return",
        json!({"actor": "xu.fang", "reasn": "不归我们管"}),
    )
    .await?;
    problem(&r, 400);
    assert_eq!(r.problem_fields(), ["reasn"]);
    let r = act(
        desk,
        &id,
        "return",
        json!({"actor": "xu.fang", "reason": 42}),
    )
    .await?;
    problem(&r, 400);
    assert_eq!(r.problem_fields(), ["reason"]);
    let r = http(
        desk,
        "POST",
        &format!("/v1/complaints/{id}/sign-for"),
        &[("Content-Type", "text/plain")],
        b"actor=xu.fang",
    )
    .await?;
    problem(&r, 415);

    // Missing actor, missing reason, unknown department: 422 naming the field.
    let r = act(desk, &id, "sign-for", json!({})).await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["actor"]);
    let r = act(
        desk,
        &id,
        "return",
        json!({"actor": "guo.qiang", "reason": "  "}),
    )
    .await?;
    let p = problem(&r, 422);
    assert_eq!(r.problem_fields(), ["reason"]);
    assert_eq!(
        p["detail"],
        "cannot return a complaint in status assigned: reason is required"
    );
    let r = act(
        desk,
        &id,
        "transfer",
        json!({"actor": "guo.qiang", "to_department": "marketing", "reason": "营销活动引起"}),
    )
    .await?;
    let p = problem(&r, 422);
    assert_eq!(r.problem_fields(), ["to_department"]);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("\"marketing\" is not a department"),
        "{p}"
    );
    let r = act(
        desk,
        &id,
        "transfer",
        json!({"actor": "guo.qiang", "to_department": "logistics", "reason": "转给自己"}),
    )
    .await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["to_department"]);

    case(
        &act(
            desk,
            &id,
            "sign-for",
            json!({"actor": "guo.qiang", "handler": "lin.tao"}),
        )
        .await?,
    );
    // Unknown pause reason: 422 naming `reason`, listing the known ones.
    let r = act(
        desk,
        &id,
        "pause",
        json!({"actor": "lin.tao", "reason": "staff_leave", "note": "经办人休假"}),
    )
    .await?;
    let p = problem(&r, 422);
    assert_eq!(r.problem_fields(), ["reason"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("waiting_complainant"),
        "{p}"
    );
    // Bad extension fields: both named.
    let r = act(
        desk,
        &id,
        "extend",
        json!({"actor": "guo.qiang", "duration": "a week", "approver_role": "manager", "reason": "查件"}),
    )
    .await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["duration", "approver_role"]);
    // A return after sign-for: 409.
    let p = problem(
        &act(
            desk,
            &id,
            "return",
            json!({"actor": "guo.qiang", "reason": "不属于物流"}),
        )
        .await?,
        409,
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cannot return a complaint in status signed_for"),
        "{p}"
    );
    // Pause twice: 409; resume when not paused: 409.
    case(
        &act(
            desk,
            &id,
            "pause",
            json!({"actor": "lin.tao", "reason": "appraisal"}),
        )
        .await?,
    );
    let p = problem(
        &act(
            desk,
            &id,
            "pause",
            json!({"actor": "lin.tao", "reason": "complainant_deferral"}),
        )
        .await?,
        409,
    );
    assert_eq!(
        p["detail"],
        "cannot pause a complaint in status paused: it is already paused"
    );
    let c = case(&act(desk, &id, "resume", json!({"actor": "lin.tao"})).await?);
    assert_eq!(c["status"], "signed_for");
    problem(
        &act(desk, &id, "resume", json!({"actor": "lin.tao"})).await?,
        409,
    );
    // Waiting for the complainant: at most twice per complaint (policy).
    let wait =
        json!({"actor": "lin.tao", "reason": "waiting_complainant", "note": "请提供快递单号"});
    for _ in 0..2 {
        case(&act(desk, &id, "pause", wait.clone()).await?);
        case(&act(desk, &id, "resume", json!({"actor": "lin.tao"})).await?);
    }
    let p = problem(&act(desk, &id, "pause", wait).await?, 409);
    assert_eq!(
        p["detail"],
        "cannot pause a complaint in status signed_for: pause reason waiting_complainant was used 2 times; the policy allows 2 per complaint"
    );

    // Withdrawn is final: everything after is 409 naming it.
    problem(
        &act(desk, &id, "withdraw", json!({"actor": "zhou.min"})).await?,
        422,
    );
    let c = case(
        &act(
            desk,
            &id,
            "withdraw",
            json!({"actor": "zhou.min", "reason": "投诉人来电撤诉，已核实系自愿"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "withdrawn");
    let p = problem(
        &act(
            desk,
            &id,
            "contact",
            json!({"actor": "lin.tao", "note": "回电"}),
        )
        .await?,
        409,
    );
    assert_eq!(
        p["detail"],
        "cannot record a contact on a complaint in status withdrawn: withdrawn is a final status"
    );

    // Only the actions done left a trace.
    let t = http(
        desk,
        "GET",
        &format!("/v1/complaints/{id}/timeline"),
        &[],
        b"",
    )
    .await?
    .json();
    let actions: Vec<&str> = t["timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["producer"] == "desk")
                .map(|e| e["action"].as_str().unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "signed_for",
            "paused",
            "resumed",
            "paused",
            "resumed",
            "paused",
            "resumed",
            "withdrawn"
        ]
    );
    let shown = desk_case(desk, &id).await?.json();
    assert_eq!(shown["status"], "withdrawn");
    assert_eq!(shown["handler"], "lin.tao");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitration_ends_returns_and_desk_shows_the_new_assignment() -> anyhow::Result<()> {
    let stack = stack().await?;
    let desk = stack.http("desk");
    let first = logistics_complaint(&stack, "13812340003").await?;
    // The same person again: routing links the two.
    let id = logistics_complaint(&stack, "13812340003").await?;
    let shown = desk_case(desk, &id).await?.json();
    assert_eq!(shown["linked_complaint_ids"], json!([first]), "{shown}");
    // … and listed on each other: the first case shows the second.
    let earlier = desk_case(desk, &first).await?.json();
    assert_eq!(earlier["linked_complaint_ids"], json!([id]), "{earlier}");

    // The complaint centre decides: quality handles it, no return.
    let c = case(
        &act(
            desk,
            &id,
            "arbitrate",
            json!({"actor": "chen.jing", "to_department": "quality",
                   "reason": "包裹内商品破损，由质量部牵头处理"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "transferred");
    assert_eq!(c["arbitrated"], true);
    let p = problem(
        &act(
            desk,
            &id,
            "return",
            json!({"actor": "sun.hao", "reason": "不属于质量部"}),
        )
        .await?,
        409,
    );
    assert!(
        p["detail"].as_str().unwrap_or_default().contains(
            "the complaint centre arbitrated the department; it can no longer be returned"
        ),
        "{p}"
    );

    // Routing's new assignment comes back: assigned to quality, arbitrated.
    let last = case_when(desk, &id, |c| {
        c["status"] == "assigned" && c["department"] == "quality"
    })
    .await?;
    assert_eq!(last["arbitrated"], true);
    assert!(
        ["ma.li", "he.jun"].contains(&last["handler"].as_str().unwrap_or_default()),
        "routing picked a quality handler: {last}"
    );
    assert!(last["assigned_at"].is_string());
    let p = problem(
        &act(
            desk,
            &id,
            "return",
            json!({"actor": "sun.hao", "reason": "不属于质量部"}),
        )
        .await?,
        409,
    );
    assert!(
        p["detail"].as_str().unwrap_or_default().starts_with(
            "cannot return a complaint in status assigned: the complaint centre arbitrated"
        ),
        "{p}"
    );
    // Quality signs for it: the handling goes on in the new department.
    let c = case(&act(desk, &id, "sign-for", json!({"actor": "ma.li"})).await?);
    assert_eq!(
        (c["status"].as_str(), c["department"].as_str()),
        (Some("signed_for"), Some("quality"))
    );

    // A third complaint of the same person duplicates this one: merged.
    let dup = logistics_complaint(&stack, "13812340003").await?;
    let r = act(
        desk,
        &dup,
        "merge",
        json!({"actor": "chen.jing", "into": dup}),
    )
    .await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["into"]);
    let r = act(
        desk,
        &dup,
        "merge",
        json!({"actor": "chen.jing", "into": "0190a0a0-0000-7000-8000-00000000beef"}),
    )
    .await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["into"]);
    let c = case(
        &act(
            desk,
            &dup,
            "merge",
            json!({"actor": "chen.jing", "into": id, "reason": "同一投诉人重复投诉同一包裹"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "merged");
    assert_eq!(c["merged_into"], id.as_str());
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_are_allowed_only_within_the_department_return_window() -> anyhow::Result<()> {
    let stack = stack().await?;
    let desk = stack.http("desk");

    // Within logistics' 24 h: returned, and routing re-routes it.
    let id = logistics_complaint(&stack, "13812340005").await?;
    let c = case(
        &act(
            desk,
            &id,
            "return",
            json!({"actor": "guo.qiang", "reason": "商品质量问题，非物流原因"}),
        )
        .await?,
    );
    assert_eq!(c["status"], "returned");
    assert_eq!(c["returned_by"], json!(["logistics"]));
    assert_eq!(c["handler"], Value::Null);
    let c = case_when(desk, &id, |c| c["status"] == "assigned").await?;
    assert_ne!(
        c["department"], "logistics",
        "never back to who returned it"
    );
    assert_eq!(c["returned_by"], json!(["logistics"]));

    // The complaint centre may not return what it gets (0 h).
    let to_centre = logistics_complaint(&stack, "13812340006").await?;
    case(
        &act(
            desk,
            &to_centre,
            "transfer",
            json!({"actor": "guo.qiang", "to_department": "service", "reason": "投诉人要求客服中心统一答复"}),
        )
        .await?,
    );
    case_when(desk, &to_centre, |c| {
        c["status"] == "assigned" && c["department"] == "service"
    })
    .await?;
    let p = problem(
        &act(
            desk,
            &to_centre,
            "return",
            json!({"actor": "chen.jing", "reason": "退回"}),
        )
        .await?,
        409,
    );
    assert_eq!(
        p["detail"],
        "cannot return a complaint in status assigned: department service may not return complaints (its return window is 0 h)"
    );

    // 25 hours after the assignment logistics' window has passed.
    let late = logistics_complaint(&stack, "13812340007").await?;
    let mut db = stack.db("desk").await?;
    sqlx::query("UPDATE cases SET assigned_at = now() - interval '25 hours' WHERE id = $1::uuid")
        .bind(&late)
        .execute(&mut db)
        .await?;
    let p = problem(
        &act(
            desk,
            &late,
            "return",
            json!({"actor": "guo.qiang", "reason": "不属于物流"}),
        )
        .await?,
        409,
    );
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(
            "cannot return a complaint in status assigned: the return window of department logistics (24 h after the assignment) ended at "
        ),
        "{detail}"
    );
    assert_eq!(desk_case(desk, &late).await?.json()["status"], "assigned");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_shows_follow_ups_with_their_author() -> anyhow::Result<()> {
    let stack = stack().await?;
    let desk = stack.http("desk");
    let intake = stack.http("intake");
    let email = |raw: String| async move {
        http(
            intake,
            "POST",
            "/v1/channels/email",
            &[("Content-Type", "message/rfc822")],
            raw.as_bytes(),
        )
        .await
    };
    let r = email(
        "From: =?UTF-8?B?5byg5LiJ?= <zhangsan@example.com>\r\nTo: complaints@tousu.example\r\n\
         Subject: =?UTF-8?B?5b+r6YCS5bu26K+v?=\r\nMessage-ID: <order-77@example.com>\r\n\
         Date: Mon, 23 Nov 2026 09:00:00 +0800\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         我的快递已经三天没到了，物流信息一直不更新。\r\n"
            .into(),
    )
    .await?;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
    let tracking = r.json()["tracking_no"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_for_status(desk, &id, "assigned", WAIT).await?;

    let r = email(format!(
        "From: zhangsan@example.com\r\nTo: complaints@tousu.example\r\nSubject: Re: [{tracking}] 还没处理\r\n\
         Message-ID: <order-77-reply@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n请问处理进度如何？\r\n"
    ))
    .await?;
    assert_eq!(
        r.json()["follow_up"],
        true,
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    let last = case_when(desk, &id, |c| {
        c["follow_ups"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await?;
    let f = &last["follow_ups"][0];
    assert_eq!(f["channel"], "email");
    assert_eq!(f["author"], "zhangsan@example.com");
    // The text as intake cleaned it: the subject line, then the body.
    let text = f["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("还没处理") && text.ends_with("请问处理进度如何？"),
        "{text:?}"
    );
    assert!(f["received_at"].is_string());
    // The follow-up does not change the lifecycle.
    assert_eq!(last["status"], "assigned");
    stack.stop().await
}

/// `google.rpc.Status` and `google.rpc.BadRequest`, to read the details
/// of INVALID_ARGUMENT as any gRPC client would.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
}

/// The fields of an INVALID_ARGUMENT's `google.rpc.BadRequest`.
fn violations(s: &tonic::Status) -> Vec<String> {
    let status = rpc::RpcStatus::decode(s.details()).unwrap_or_default();
    status
        .details
        .iter()
        .filter(|d| d.type_url == "type.googleapis.com/google.rpc.BadRequest")
        .filter_map(|d| rpc::BadRequest::decode(d.value.as_slice()).ok())
        .flat_map(|b| b.field_violations.into_iter().map(|v| v.field))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_actions_follow_the_same_rules() -> anyhow::Result<()> {
    let stack = stack().await?;
    let id = logistics_complaint(&stack, "13812340004").await?;
    let addr = stack.service("desk").grpc_addr.expect("desk gRPC");
    let mut desk = DeskServiceClient::connect(format!("http://{addr}")).await?;

    let e = desk
        .sign_for(SignForRequest {
            id: "0190a0a0-0000-7000-8000-00000000beef".into(),
            actor: "xu.fang".into(),
            handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

    let e = desk
        .resolve(ResolveRequest {
            id: id.clone(),
            actor: "xu.fang".into(),
            resolution: "已补发".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "cannot resolve a complaint in status assigned: it has not been signed for yet"
    );

    let e = desk
        .r#return(ReturnRequest {
            id: id.clone(),
            actor: String::new(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(violations(&e), ["actor"]);

    let signed = desk
        .sign_for(SignForRequest {
            id: id.clone(),
            actor: "guo.qiang".into(),
            handler: "xu.fang".into(),
        })
        .await?
        .into_inner();
    let c = signed.complaint.clone().unwrap_or_default();
    assert_eq!(c.status, pb::Status::SignedFor as i32);
    assert_eq!(c.assignment.unwrap_or_default().handler, "xu.fang");

    let e = desk
        .pause(PauseRequest {
            id: id.clone(),
            actor: "xu.fang".into(),
            reason: "lunch_break".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(violations(&e), ["reason"]);
    assert!(
        e.message()
            .starts_with("reason: \"lunch_break\" is not a pause reason"),
        "{}",
        e.message()
    );

    let e = desk
        .extend(ExtendRequest {
            id: id.clone(),
            actor: "guo.qiang".into(),
            duration: "5 days".into(),
            approver_role: "department_head".into(),
            reason: "查件".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(violations(&e), ["duration"]);

    let paused = desk
        .pause(PauseRequest {
            id: id.clone(),
            actor: "xu.fang".into(),
            reason: "appraisal".into(),
            note: "商品送检".into(),
        })
        .await?
        .into_inner();
    let pause = paused.pause.clone().unwrap_or_default();
    assert_eq!(pause.from_status, pb::Status::SignedFor as i32);
    assert_eq!(
        (pause.reason.as_str(), pause.actor.as_str()),
        ("appraisal", "xu.fang")
    );

    let extended = desk
        .extend(ExtendRequest {
            id: id.clone(),
            actor: "guo.qiang".into(),
            duration: "5wd".into(),
            approver_role: "department_head".into(),
            reason: "检测需 5 个工作日".into(),
        })
        .await?
        .into_inner();
    assert_eq!(extended.extensions, 1);
    assert_eq!(
        extended.complaint.unwrap_or_default().status,
        pb::Status::Paused as i32,
        "an extension keeps the pause"
    );

    // HTTP and gRPC show the same case.
    let got = desk
        .get_complaint(GetComplaintRequest { id: id.clone() })
        .await?
        .into_inner();
    let json = desk_case(stack.http("desk"), &id).await?.json();
    assert_eq!(json["status"], "paused");
    assert_eq!(got.extensions, 1);
    assert_eq!(got.pause, paused.pause);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_checks_actions_against_a_newly_published_policy() -> anyhow::Result<()> {
    let stack = stack().await?;
    let desk = stack.http("desk");
    let id = logistics_complaint(&stack, "13812340008").await?;
    case(&act(desk, &id, "sign-for", json!({"actor": "xu.fang"})).await?);
    let recall =
        json!({"actor": "xu.fang", "reason": "supplier_recall", "note": "等待厂家召回方案"});
    let r = act(desk, &id, "pause", recall.clone()).await?;
    problem(&r, 422);
    assert_eq!(r.problem_fields(), ["reason"]);

    // `tousu policy publish` of the default policy with one more pause reason.
    let text = std::fs::read_to_string(tousu_tests::default_policy())?
        + "\n[[pause_reasons]]\ncode = \"supplier_recall\"\nname = \"等待厂家召回方案 Waiting for the supplier's recall plan\"\n";
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let store = js.get_key_value(tousu_routing::reload::BUCKET).await?;
    store
        .put(tousu_routing::reload::KEY, text.into_bytes().into())
        .await?;
    // Desk takes it up without a restart; until then the reason is unknown.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = act(desk, &id, "pause", recall.clone()).await?;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "desk did not take up the published policy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = desk_case(desk, &id).await?.json();
    assert_eq!(c["status"], "paused");
    assert_eq!(c["pause"]["reason"], "supplier_recall");
    stack.stop().await
}
