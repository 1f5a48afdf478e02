//! Hot reload: a policy published to the KV bucket is taken up by routing
//! and sla without a restart; an invalid one is refused and the version in
//! force stays.

use std::time::Duration;

use serde_json::json;
use tousu_tests::{Stack, http, submit_json, wait_until};

async fn explained_version(stack: &Stack) -> String {
    let r = http(
        stack.http("routing"),
        "POST",
        "/v1/explain",
        &[("Content-Type", "application/json")],
        json!({"description": "快递三天没到"})
            .to_string()
            .as_bytes(),
    )
    .await
    .unwrap();
    r.json()["policy_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The policy version sla has in force.
async fn sla_version(stack: &Stack) -> String {
    let r = http(stack.http("sla"), "GET", "/v1/policy", &[], b"")
        .await
        .unwrap();
    r.json()["version"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_policy_is_taken_up_and_a_bad_one_refused() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "sla"], |_, _| {}).await?;
    let file_version = explained_version(&stack).await;
    assert!(file_version.starts_with("sha256:"));

    // A new version: parcels that don't arrive become 热点 (grade 2).
    let text = std::fs::read_to_string(tousu_tests::default_policy())?;
    let changed = format!(
        "{text}\n[[grading]]\nid = \"reload-test\"\ndescription = \"published by the test\"\nkeywords = [\"快递\"]\ngrade = 2\n"
    );
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let store = js.get_key_value(tousu_routing::reload::BUCKET).await?;
    store
        .put(
            tousu_routing::reload::KEY,
            changed.clone().into_bytes().into(),
        )
        .await?;
    let (new_version, _) = tousu_policy::schema::Policy::from_toml_in_dir(
        &changed,
        "x",
        tousu_tests::default_policy().parent().unwrap(),
    )
    .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let new_version = new_version.version;
    assert_ne!(new_version, file_version);
    // Both services take it up (each on its own watch of the bucket).
    wait_until(Duration::from_secs(10), || async {
        explained_version(&stack).await == new_version && sla_version(&stack).await == new_version
    })
    .await?;

    // A complaint now is decided and clocked under the new version.
    let r = submit_json(
        stack.http("intake"),
        &json!({"description": "快递三天没到，电话也打不通", "phone": "13812345678"}),
        &[],
    )
    .await?;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let mut routing = stack.db("routing").await?;
    let mut sla = stack.db("sla").await?;
    let mut decided: Option<(i16, String)> = None;
    let mut clocked: Option<String> = None;
    for _ in 0..250 {
        decided = sqlx::query_as(
            "SELECT grade, policy_version FROM decisions WHERE complaint_id = $1::uuid",
        )
        .bind(&id)
        .fetch_optional(&mut routing)
        .await?;
        clocked =
            sqlx::query_scalar("SELECT policy_version FROM clocks WHERE complaint_id = $1::uuid")
                .bind(&id)
                .fetch_optional(&mut sla)
                .await?;
        if decided.is_some() && clocked.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(decided, Some((2, new_version.clone())));
    assert_eq!(clocked, Some(new_version.clone()));

    // A broken version is refused by both; the new version stays in force.
    store
        .put(
            tousu_routing::reload::KEY,
            b"name = \"broken\"\nnot_a_key = 1\n".to_vec().into(),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(explained_version(&stack).await, new_version);
    assert_eq!(sla_version(&stack).await, new_version);
    let r = submit_json(
        stack.http("intake"),
        &json!({"description": "快递又丢了", "phone": "13812345678"}),
        &[],
    )
    .await?;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let mut clocked: Option<String> = None;
    for _ in 0..250 {
        clocked =
            sqlx::query_scalar("SELECT policy_version FROM clocks WHERE complaint_id = $1::uuid")
                .bind(&id)
                .fetch_optional(&mut sla)
                .await?;
        if clocked.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(clocked, Some(new_version));
    stack.stop().await
}
