use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_proto::desk::GetComplaintRequest;
use tousu_proto::desk::desk_service_client::DeskServiceClient;
use tousu_proto::intake::Submission;
use tousu_proto::intake::intake_service_client::IntakeServiceClient;
use tousu_tests::{Stack, desk_case, http, submit_json, wait_for_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_form_complaint_is_routed_armed_and_shown_in_desk() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let before = OffsetDateTime::now_utc();
    let r = submit_json(
        stack.http("intake"),
        &json!({
            "title": "快递延误",
            "description": "我的快递已经三天没到了，请尽快处理",
            "name": "张三",
            "phone": "13812345678"
        }),
        &[],
    )
    .await?;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let receipt = r.json();
    let id = receipt["id"].as_str().expect("id").to_owned();
    let tracking_no = receipt["tracking_no"].as_str().expect("tracking_no");
    assert!(
        tracking_no.parse::<tousu_domain::TrackingNo>().is_ok(),
        "{tracking_no}"
    );
    assert_eq!(receipt["status"], "received");

    let case =
        wait_for_status(stack.http("desk"), &id, "assigned", Duration::from_secs(10)).await?;
    assert_eq!(case["department"], "logistics");
    assert_eq!(case["category"], "logistics");
    assert_eq!(case["grade"], 4);
    assert_eq!(case["urgency"], "normal");
    assert_eq!(case["tracking_no"], tracking_no);
    assert_eq!(case["complainant"]["phone"], "+8613812345678");

    // sla arms the resolution clock: grade 4 × normal = 5 working days in
    // the default policy, on the cn calendar (end of business of the fifth
    // working day after the day of receipt).
    let mut deadline = case["resolution_deadline"].clone();
    for _ in 0..200 {
        if deadline.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        deadline = desk_case(stack.http("desk"), &id).await?.json()["resolution_deadline"].clone();
    }
    let deadline = OffsetDateTime::parse(deadline.as_str().expect("deadline set"), &Rfc3339)?;
    let calendar = tousu_domain::calendar::Calendar::load(
        &tousu_tests::default_policy()
            .parent()
            .expect("policies/")
            .join("calendars"),
        "cn",
    )?;
    let five = "5wd".parse()?;
    let expected = [before, OffsetDateTime::now_utc()].map(|t| calendar.deadline_at(t, &five));
    assert!(
        expected.iter().any(|e| e.as_ref().ok() == Some(&deadline)),
        "deadline {deadline}, expected {expected:?}"
    );

    // notify received the assignment event and logged it.
    let mut notify = stack.db("notify").await?;
    let mut delivered = 0i64;
    for _ in 0..200 {
        delivered = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE complaint_id = $1::uuid AND event_type = 'complaint.assigned'
             AND fallback_of IS NULL",
        )
        .bind(&id)
        .fetch_one(&mut notify)
        .await?;
        if delivered > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivered, 1);

    // The routing decision is stored with its rule and the policy version.
    let mut routing = stack.db("routing").await?;
    let (rules, version): (serde_json::Value, String) =
        sqlx::query_as("SELECT rules, policy_version FROM decisions WHERE complaint_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut routing)
            .await?;
    // The classifier's reasoning comes first, naming the terms it matched;
    // the rule that picked the department follows.
    assert_eq!(rules[0]["rule"], "classifier");
    assert!(
        rules[0]["reason"]
            .as_str()
            .unwrap()
            .contains("category logistics"),
        "{rules}"
    );
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "taxonomy:logistics"),
        "{rules}"
    );
    assert!(version.starts_with("sha256:"));

    // Desk finds it by tracking number too.
    let by_tracking = desk_case(stack.http("desk"), tracking_no).await?;
    assert_eq!(by_tracking.json()["id"], id.as_str());
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_submit_and_desk_service_agree_with_http() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let intake_addr = stack.service("intake").grpc_addr.expect("intake gRPC");
    let desk_addr = stack.service("desk").grpc_addr.expect("desk gRPC");
    let mut intake = IntakeServiceClient::connect(format!("http://{intake_addr}")).await?;
    let submission = Submission {
        channel: tousu_proto::v1::Channel::Phone as i32,
        channel_message_id: "call-1".into(),
        description: "The battery exploded and my hand was injured".into(),
        phone: "+8613900001111".into(),
        ..Default::default()
    };
    let reply = intake.submit(submission.clone()).await?.into_inner();
    assert!(!reply.duplicate);
    let again = intake.submit(submission).await?.into_inner();
    assert!(again.duplicate);
    assert_eq!(again.id, reply.id);

    let bad = intake
        .submit(Submission {
            channel: tousu_proto::v1::Channel::Phone as i32,
            description: " ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("description"), "{}", bad.message());

    let case = wait_for_status(
        stack.http("desk"),
        &reply.id,
        "assigned",
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(case["department"], "quality");
    assert_eq!(case["grade"], 1);
    assert_eq!(case["urgency"], "urgent");

    let mut desk = DeskServiceClient::connect(format!("http://{desk_addr}")).await?;
    let got = desk
        .get_complaint(GetComplaintRequest {
            id: reply.tracking_no.clone(),
        })
        .await?
        .into_inner();
    let complaint = got.complaint.expect("complaint");
    assert_eq!(complaint.id, reply.id);
    assert_eq!(
        complaint.assignment.expect("assignment").department,
        "quality"
    );
    let missing = desk
        .get_complaint(GetComplaintRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A grade-1 complaint raises alert.major: notify plans the leader on duty
    // at once (step 0) and the next level of its ladder for later.
    tousu_tests::wait_until(Duration::from_secs(10), || async {
        let Ok(mut notify) = stack.db("notify").await else { return false };
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM deliveries WHERE complaint_id = $1::uuid AND event_type = 'alert.major' AND fallback_of IS NULL
             AND recipient IN ('wang.gang', 'li.na') AND step = 0",
        )
        .bind(&reply.id)
        .fetch_one(&mut notify)
        .await
        .is_ok_and(|n| n == 1)
    })
    .await?;

    // Health, readiness and metrics answer on every service.
    for (name, running) in &stack.services {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let r = http(running.http_addr, "GET", path, &[], b"").await?;
            assert_eq!(r.status, 200, "{name} {path}");
        }
    }
    stack.stop().await
}
