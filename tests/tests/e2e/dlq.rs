use std::time::Duration;

use serde_json::json;
use tousu_tests::{Stack, submit_json, wait_for_status, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dead_letter_stream_with_its_reason() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let client = async_nats::connect(&stack.nats.url).await?;
    let js = async_nats::jetstream::new(client);
    js.publish(
        "tousu.evt.complaint.received.webform",
        "not protobuf at all".into(),
    )
    .await?
    .await?;
    let started = std::time::Instant::now();

    let letters = loop {
        let letters = tousu_bus::dlq::list(&js, 100).await.unwrap_or_default();
        if letters.iter().any(|l| l.consumer == "routing")
            && letters.iter().any(|l| l.consumer == "desk")
        {
            break letters;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "no dead letters: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let routing = letters.iter().find(|l| l.consumer == "routing").unwrap();
    assert!(
        routing.reason.contains("not a tousu.v1.Event"),
        "{}",
        routing.reason
    );
    assert_eq!(routing.subject, "tousu.evt.complaint.received.webform");
    assert_eq!(&routing.payload[..], b"not protobuf at all");

    // The consumers carry on with good messages.
    let r = submit_json(
        stack.http("intake"),
        &json!({"description": "快递丢了", "anonymous": true}),
        &[],
    )
    .await?;
    assert_eq!(r.status, 202);
    wait_for_status(
        stack.http("desk"),
        r.json()["id"].as_str().unwrap(),
        "assigned",
        Duration::from_secs(10),
    )
    .await?;

    // Replaying puts it back on its subject and takes it off the DLQ; still
    // poison, it comes back with a new sequence.
    let subject = tousu_bus::dlq::replay(&js, routing.sequence)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    assert_eq!(subject, "tousu.evt.complaint.received.webform");
    wait_until(Duration::from_secs(10), || {
        let js = js.clone();
        let old = routing.sequence;
        async move {
            let now = tousu_bus::dlq::list(&js, 100).await.unwrap_or_default();
            !now.iter().any(|l| l.sequence == old)
                && now
                    .iter()
                    .any(|l| l.consumer == "routing" && l.sequence > old)
        }
    })
    .await?;
    stack.stop().await
}
