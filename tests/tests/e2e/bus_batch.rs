//! A batching consumer (`ConsumerSpec::batch`) against a real nats-server
//! and Postgres: events waiting together are handled in shared
//! transactions; an event that fails rolls its batch back and every event
//! of that batch is handled on its own, so only the failing one is retried
//! or dead-lettered; a duplicate is handled once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tousu_bus::{ConsumerSpec, Delivery, HandleError, Handler};
use tousu_proto::v1 as pb;
use tousu_tests::{NatsServer, fresh_database, wait_until};
use uuid::Uuid;

/// Records each event with the transaction that handled it; refuses events
/// of producer `poison`, and those of `flaky` at their first delivery.
struct Recorder {
    committed: AtomicUsize,
}

impl Handler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, d: &Delivery) -> Result<(), HandleError> {
        match d.event.producer.as_str() {
            "poison" => return Err(HandleError::Reject("poison".into())),
            "flaky" if d.attempt == 1 => return Err(HandleError::Retry("not yet".into())),
            _ => {}
        }
        sqlx::query(
            "INSERT INTO seen (event_id, complaint_id, tx) VALUES ($1::uuid, $2, txid_current())",
        )
        .bind(&d.event.id)
        .bind(d.complaint_id)
        .execute(conn)
        .await?;
        Ok(())
    }

    fn committed(&self) {
        self.committed.fetch_add(1, Ordering::SeqCst);
    }
}

fn event(id: Uuid, producer: &str) -> pb::Event {
    pb::Event {
        id: id.to_string(),
        complaint_id: Uuid::now_v7().to_string(),
        sequence: 1,
        occurred_at: Some(tousu_bus::to_timestamp(time::OffsetDateTime::now_utc())),
        policy_version: String::new(),
        producer: producer.into(),
        payload: Some(pb::event::Payload::SlaBreached(pb::SlaBreached {
            target: pb::SlaTarget::Resolution as i32,
            department: "logistics".into(),
            deadline: None,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_consumer_shares_transactions_and_isolates_failures() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let pool = PgPool::connect(&fresh_database().await?).await?;
    tousu_bus::store::ensure_tables(&pool).await?;
    sqlx::query("CREATE TABLE seen (event_id uuid PRIMARY KEY, complaint_id uuid, tx bigint)")
        .execute(&pool)
        .await?;
    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    tousu_bus::streams::provision(&js, 1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Everything is on the stream before the consumer starts, so it finds
    // many messages waiting: 45 good ones, one of them twice (no
    // Nats-Msg-Id: the stream keeps both), 2 poison, 2 that fail once.
    let mut good = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..45 {
        let id = Uuid::now_v7();
        good.push(id);
        payloads.push(event(id, "sla"));
        if i == 20 {
            payloads.push(event(id, "sla"));
        }
        if i % 20 == 5 {
            payloads.push(event(Uuid::now_v7(), "poison"));
        }
        if i % 20 == 10 {
            let id = Uuid::now_v7();
            good.push(id);
            payloads.push(event(id, "flaky"));
        }
    }
    for e in &payloads {
        js.publish(
            "tousu.evt.sla.breached.logistics",
            tousu_bus::encode_event(e).into(),
        )
        .await?
        .await?;
    }

    let handler = Arc::new(Recorder {
        committed: AtomicUsize::new(0),
    });
    let cancel = CancellationToken::new();
    let spec = ConsumerSpec {
        batch: 16,
        max_deliver: 3,
        ..ConsumerSpec::new("batcher", &["tousu.evt.sla.>"])
    };
    let run = tokio::spawn(tousu_bus::consumer::run(
        js.clone(),
        pool.clone(),
        spec,
        handler.clone(),
        None,
        cancel.clone(),
    ));

    wait_until(Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        n == good.len() as i64
    })
    .await?;
    let poisoned = wait_for_dead_letters(&js, 2).await;
    // Every good event once (the duplicate too), the flaky ones after
    // their retry, each committed once.
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM seen ORDER BY event_id")
        .fetch_all(&pool)
        .await?;
    let mut expected = good.clone();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(handler.committed.load(Ordering::SeqCst), good.len());
    // Shared transactions: fewer transactions than events.
    let txs: i64 = sqlx::query_scalar("SELECT count(DISTINCT tx) FROM seen")
        .fetch_one(&pool)
        .await?;
    assert!(
        txs < good.len() as i64,
        "{txs} transactions for {} events",
        good.len()
    );
    // The poison ones, and only they, in the dead-letter stream.
    assert_eq!(poisoned.len(), 2, "{poisoned:?}");
    assert!(poisoned.iter().all(|r| r == "poison"), "{poisoned:?}");
    // Their inbox rows were rolled back with them: recorded are exactly
    // the events handled.
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'batcher'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(inbox, good.len() as i64);

    cancel.cancel();
    run.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The reasons of the first `n` dead letters of consumer `batcher`, once
/// there are `n` (or after 30 s).
async fn wait_for_dead_letters(js: &jetstream::Context, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reasons: Vec<String> = tousu_bus::dlq::list(js, 100)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.consumer == "batcher")
            .map(|l| l.reason)
            .collect();
        if reasons.len() >= n || tokio::time::Instant::now() > deadline {
            return reasons;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
