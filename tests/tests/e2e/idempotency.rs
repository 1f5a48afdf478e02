use std::time::Duration;

use serde_json::json;
use tousu_tests::{Stack, submit_json, wait_for_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_complaint() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let body = json!({"description": "Refund not received", "email": "a@example.com"});
    let key = [("Idempotency-Key", "form-7f3a")];
    let first = submit_json(stack.http("intake"), &body, &key).await?;
    let second = submit_json(stack.http("intake"), &body, &key).await?;
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 200);
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(first.json()["tracking_no"], second.json()["tracking_no"]);
    assert_eq!(second.json()["duplicate"], true);

    // Without a key, two submissions are two complaints.
    let a = submit_json(stack.http("intake"), &body, &[]).await?;
    let b = submit_json(stack.http("intake"), &body, &[]).await?;
    assert_ne!(a.json()["id"], b.json()["id"]);
    assert_ne!(a.json()["tracking_no"], b.json()["tracking_no"]);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_repeats_make_one_complaint_routed_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let intake = stack.http("intake");
    let body =
        json!({"description": "电费多收了200元", "phone": "13800001111", "external_id": "form-42"});
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move { submit_json(intake, &body, &[]).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await??;
        assert!(r.status == 202 || r.status == 200, "{}", r.status);
        created += usize::from(r.status == 202);
        ids.insert(r.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    let id = ids.into_iter().next().unwrap();
    wait_for_status(stack.http("desk"), &id, "assigned", Duration::from_secs(10)).await?;
    let mut intake_db = stack.db("intake").await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints")
        .fetch_one(&mut intake_db)
        .await?;
    assert_eq!(n, 1);
    let mut routing_db = stack.db("routing").await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&mut routing_db)
        .await?;
    assert_eq!(n, 1);
    stack.stop().await
}
