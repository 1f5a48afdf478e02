use serde_json::json;
use tousu_tests::{Stack, http, submit_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_web_form_input_is_answered_kept_and_survived() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let intake = stack.http("intake");
    let post = |ct: &'static str, body: Vec<u8>| async move {
        http(
            intake,
            "POST",
            "/v1/complaints",
            &[("Content-Type", ct)],
            &body,
        )
        .await
    };

    let malformed = post(
        "application/json",
        br#"{"description": "x", "phone": "#.to_vec(),
    )
    .await?;
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(malformed.problem_fields(), ["body"]);
    assert!(
        malformed.json()["detail"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );

    let empty = submit_json(
        intake,
        &json!({"description": "   ", "phone": "13812345678"}),
        &[],
    )
    .await?;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(empty.problem_fields(), ["description"]);
    assert_eq!(empty.json()["status"], 400);

    let wrong_type =
        submit_json(intake, &json!({"description": 42, "anonymous": "no"}), &[]).await?;
    assert_eq!(wrong_type.status, 400);
    assert_eq!(wrong_type.problem_fields(), ["description", "anonymous"]);

    let no_contact = submit_json(intake, &json!({"description": "rude staff"}), &[]).await?;
    assert_eq!(no_contact.status, 400);
    assert_eq!(no_contact.problem_fields(), ["phone"]);

    let bad_utf8 = post(
        "application/json",
        b"{\"description\": \"\xff\xfe\", \"anonymous\": true}".to_vec(),
    )
    .await?;
    assert_eq!(bad_utf8.status, 400);
    assert_eq!(bad_utf8.problem_fields(), ["body"]);

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nested = post("application/json", deep.into_bytes()).await?;
    assert_eq!(nested.status, 400);

    let xml = post("application/xml", b"<complaint/>".to_vec()).await?;
    assert_eq!(xml.status, 415);
    assert_eq!(xml.header("content-type"), Some("application/problem+json"));

    let huge = json!({"description": "x".repeat(2 << 20), "anonymous": true}).to_string();
    let too_large = post("application/json", huge.into_bytes()).await?;
    assert_eq!(too_large.status, 413);

    // Every rejection is kept with its reason.
    let mut db = stack.db("intake").await?;
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM quarantine ORDER BY id")
        .fetch_all(&mut db)
        .await?;
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    assert!(reasons[1].contains("description"), "{reasons:?}");
    let complaints: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(complaints, 0);

    // The service is still up and takes good input; the form encoding works too.
    let ok = submit_json(
        intake,
        &json!({"description": "still here", "anonymous": true}),
        &[],
    )
    .await?;
    assert_eq!(ok.status, 202);
    let form = post(
        "application/x-www-form-urlencoded",
        b"description=%E5%99%AA%E9%9F%B3%E6%89%B0%E6%B0%91&phone=13812345678".to_vec(),
    )
    .await?;
    assert_eq!(form.status, 202, "{}", String::from_utf8_lossy(&form.body));
    stack.stop().await
}
