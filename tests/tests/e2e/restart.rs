use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tousu_tests::{ChildProcess, Stack, submit_json, wait_until};

const COMPLAINTS: usize = 200;

fn spawn_routing(stack: &Stack) -> ChildProcess {
    ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_tousu-service"))
            .arg("routing")
            .envs(stack.child_env("routing"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }),
    )
    .expect("spawn routing")
}

/// A count from a service's schema; -1 while the schema is not there yet.
async fn count(stack: &Stack, schema: &str, sql: &'static str) -> i64 {
    let Ok(mut db) = stack.db(schema).await else {
        return -1;
    };
    sqlx::query_scalar(sql)
        .fetch_one(&mut db)
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_routing_mid_flight_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let _heavy = tousu_tests::LOAD.read().await;
    let stack = Stack::start_except(&["routing"]).await?;
    let mut routing = spawn_routing(&stack);

    let intake = stack.http("intake");
    let submitting: Vec<_> = (0..COMPLAINTS)
        .map(|i| {
            tokio::spawn(async move {
                let body =
                    json!({"description": format!("快递延误 第{i}件"), "phone": "13812345678"});
                submit_json(intake, &body, &[]).await
            })
        })
        .collect();

    // Kill routing while it is working through the burst.
    wait_until(Duration::from_secs(30), || async {
        count(&stack, "routing", "SELECT count(*) FROM decisions").await >= 10
    })
    .await?;
    routing.kill()?; // SIGKILL
    let routed_at_kill = count(&stack, "routing", "SELECT count(*) FROM decisions").await;

    let mut ids = Vec::new();
    for t in submitting {
        let r = t.await??;
        assert_eq!(r.status, 202);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    assert!(
        (routed_at_kill as usize) < COMPLAINTS,
        "the kill must land mid-flight"
    );

    let routing = spawn_routing(&stack);
    let all_assigned = wait_until(Duration::from_secs(60), || async {
        count(
            &stack,
            "desk",
            "SELECT count(*) FROM cases WHERE status = 4",
        )
        .await
            == COMPLAINTS as i64
    })
    .await;
    drop(routing);
    all_assigned?;

    assert_eq!(
        count(&stack, "routing", "SELECT count(*) FROM decisions").await,
        COMPLAINTS as i64
    );
    // Exactly one assignment event per complaint reached the stream…
    let client = async_nats::connect(&stack.nats.url).await?;
    let js = async_nats::jetstream::new(client);
    let events = js.get_stream("TOUSU_EVENTS").await?;
    let info = events
        .info_with_subjects("tousu.evt.complaint.assigned.>")
        .await?;
    let mut assigned = 0u64;
    {
        use futures::StreamExt;
        let mut subjects = info;
        while let Some(s) = subjects.next().await {
            assigned += s?.1 as u64;
        }
    }
    assert_eq!(assigned, COMPLAINTS as u64);
    // …and desk and notify saw each exactly once.
    assert_eq!(
        count(
            &stack,
            "desk",
            "SELECT count(*) FROM timeline WHERE event_type = 'complaint.assigned'"
        )
        .await,
        COMPLAINTS as i64
    );
    wait_until(Duration::from_secs(10), || async {
        count(
            &stack,
            "notify",
            "SELECT count(*) FROM deliveries WHERE event_type = 'complaint.assigned' AND fallback_of IS NULL",
        )
        .await
            == COMPLAINTS as i64
    })
    .await?;
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        COMPLAINTS
    );
    stack.stop().await
}
