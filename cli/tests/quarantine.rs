//! `tousu quarantine list|show|replay` against a running intake (real
//! nats-server and Postgres, started by the test harness).

use tousu_tests::{Stack, http};

fn tousu(args: &[&str]) -> (bool, String) {
    tousu_tests::run_cli(env!("CARGO_BIN_EXE_tousu"), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_replay_a_rejected_phone_record() {
    let stack = Stack::start_only(&["intake"], |_, _| {}).await.unwrap();
    let intake = stack.http("intake");
    let url = format!("http://{intake}");
    // A call record with the caller's complaint in a field the connector
    // misnamed: rejected (no transcript or notes) and kept.
    let body = br#"{"call_id":"CC-9001","caller":"13812345678","transcipt":"wifi keeps dropping"}"#;
    let r = http(
        intake,
        "POST",
        "/v1/channels/phone",
        &[("Content-Type", "application/json")],
        body,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);

    let (ok, listed) = tousu(&["quarantine", "list", "--url", &url]);
    assert!(ok, "{listed}");
    assert!(
        listed.contains("phone") && listed.contains("transcript"),
        "{listed}"
    );
    let id = listed.split_whitespace().next().unwrap().to_owned();

    let (ok, shown) = tousu(&["quarantine", "show", &id, "--url", &url]);
    assert!(ok, "{shown}");
    assert!(
        shown.contains("CC-9001") && shown.contains("/v1/channels/phone"),
        "{shown}"
    );

    // Replaying the same body fails the same way: exit status 1, entry marked.
    let (ok, replayed) = tousu(&["quarantine", "replay", &id, "--url", &url]);
    assert!(!ok, "{replayed}");
    assert!(replayed.contains("400"), "{replayed}");
    let (_, shown) = tousu(&["quarantine", "show", &id, "--url", &url]);
    assert!(shown.contains("\"replay_result\": \"400"), "{shown}");

    let (ok, missing) = tousu(&["quarantine", "show", "999999", "--url", &url]);
    assert!(!ok && missing.contains("404"), "{missing}");
    stack.stop().await.unwrap();
}
