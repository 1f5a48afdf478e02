//! Routing's dry run: `POST /v1/explain` and gRPC `RoutingService/Explain`
//! answer with category, grade, urgency, department, handler strategy and
//! the rules that fired — and store nothing.

use serde_json::json;
use tousu_proto::routing::ExplainRequest;
use tousu_proto::routing::routing_service_client::RoutingServiceClient;
use tousu_tests::{Stack, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_decision_and_why_without_storing_it() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["routing"], |_, _| {}).await?;
    let routing = stack.http("routing");
    let post = |body: serde_json::Value| async move {
        http(
            routing,
            "POST",
            "/v1/explain",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await
    };

    // A battery that exploded while charging: grade 1, urgent, safety,
    // routed to quality (domain.md §3, seeds_A TC-01).
    let r = post(json!({
        "title": "充电宝爆炸",
        "description": "昨晚充电宝在充电时突然爆炸起火，把床单烧了，孩子手臂烫伤，要求赔偿。",
        "channel": "phone",
        "product": "充电宝"
    }))
    .await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let e = r.json();
    assert_eq!(e["grade"], 1, "{e}");
    assert_eq!(e["urgency"], "urgent");
    assert_eq!(e["department"], "quality");
    assert_eq!(e["category"], "product_quality");
    assert!(e["flags"].as_array().unwrap().iter().any(|f| f == "safety"));
    assert!(e["policy_version"].as_str().unwrap().starts_with("sha256:"));
    let rules = e["rules"].as_array().unwrap();
    assert_eq!(rules[0]["rule"], "classifier");
    assert!(rules.len() >= 2, "{e}");

    // A plain delivery delay: grade 4, logistics.
    let r = post(json!({"description": "快递一个星期了还没送到，物流信息一直不更新。"})).await?;
    let e = r.json();
    assert_eq!(
        (e["grade"].as_u64(), e["department"].as_str()),
        (Some(4), Some("logistics")),
        "{e}"
    );
    assert!(!e["handler_strategy"].as_str().unwrap().is_empty());

    // Bad requests name the field.
    let r = post(json!({"description": "  "})).await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_fields(), ["description"]);
    let r = post(json!({"description": "x", "channel": "fax"})).await?;
    assert_eq!(r.problem_fields(), ["channel"]);
    let r = post(json!({"description": "x", "unknown": 1})).await?;
    assert_eq!(
        (r.status, r.problem_fields()),
        (400, vec!["body".to_owned()])
    );

    // gRPC answers the same.
    let grpc = stack
        .service("routing")
        .grpc_addr
        .expect("routing serves gRPC");
    let mut client = RoutingServiceClient::connect(format!("http://{grpc}")).await?;
    let reply = client
        .explain(ExplainRequest {
            description: "The courier lost my parcel and nobody answers the hotline.".into(),
            channel: "email".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(reply.department, "logistics", "{reply:?}");
    assert_eq!(reply.grade, 4);
    let status = client
        .explain(ExplainRequest::default())
        .await
        .expect_err("empty description");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("description"));

    // Nothing was stored.
    let mut db = stack.db("routing").await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(n, 0);
    stack.stop().await
}

/// Under `property`, a group complaint signed by 3 owners is 热点 (grade 2)
/// and one by 10 is 重大 (grade 1) — whether the web form says how many
/// signed (`group_size`) or the text does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_complaints_are_graded_by_how_many_signed() -> anyhow::Result<()> {
    let (_dir, policy) = tousu_tests::profile_with("property", &[])?;
    let stack = Stack::start_only(&["intake", "routing"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut routing = stack.db("routing").await?;
    let mut grade_of = async |body: serde_json::Value| -> anyhow::Result<i16> {
        let r = tousu_tests::submit_json(stack.http("intake"), &body, &[]).await?;
        anyhow::ensure!(r.status == 202, "{:?}", r.json());
        let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
        for _ in 0..250 {
            let grade: Option<i16> =
                sqlx::query_scalar("SELECT grade FROM decisions WHERE complaint_id = $1::uuid")
                    .bind(&id)
                    .fetch_optional(&mut routing)
                    .await?;
            if let Some(grade) = grade {
                return Ok(grade);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        anyhow::bail!("no decision for {id}")
    };
    let grade = grade_of(json!({
        "description": "小区南门的道闸坏了一个月，车辆进出要排很久",
        "phone": "13812345678",
        "group_size": 3,
    }))
    .await?;
    assert_eq!(grade, 2, "3 owners signing → 热点");
    let grade = grade_of(json!({
        "description": "小区南门的道闸坏了一个月，车辆进出要排很久",
        "phone": "13812345679",
        "group_size": 10,
    }))
    .await?;
    assert_eq!(grade, 1, "10 owners signing → 重大");
    let grade = grade_of(json!({
        "description": "我们12户业主联名投诉：地下车库漏水三个月没人处理",
        "phone": "13812345670",
    }))
    .await?;
    assert_eq!(grade, 1, "the text says 12 households signed");
    let grade = grade_of(json!({
        "description": "我家3个人都觉得物业态度太差",
        "phone": "13812345671",
    }))
    .await?;
    assert!(
        grade > 2,
        "a family of three is not a group complaint (grade {grade})"
    );

    // The dry run reads the text the same way.
    let r = http(
        stack.http("routing"),
        "POST",
        "/v1/explain",
        &[("Content-Type", "application/json")],
        json!({"description": "三位业主一起来反映楼道堆放杂物"})
            .to_string()
            .as_bytes(),
    )
    .await?;
    assert_eq!(r.json()["grade"], 2, "{:?}", r.json());
    stack.stop().await
}
