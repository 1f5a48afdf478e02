//! `tousu dlq list|replay`: the dead-letter stream `TOUSU_DLQ`.

use anyhow::Context as _;
use async_nats::jetstream;
use tousu_bus::{decode_event, dlq};

async fn connect(nats: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(nats)
        .await
        .with_context(|| format!("connecting to NATS at {nats}"))?;
    Ok(jetstream::new(client))
}

pub async fn list(nats: &str, limit: usize) -> anyhow::Result<()> {
    let js = connect(nats).await?;
    let letters = dlq::list(&js, limit)
        .await
        .map_err(|e| anyhow::anyhow!("listing {}: {e}", tousu_bus::subjects::DLQ_STREAM))?;
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(());
    }
    println!(
        "{:>6}  {:<22} {:<20} {:<38} {:>5}  {:<24} reason",
        "seq", "event", "consumer", "complaint", "tries", "subject"
    );
    for l in &letters {
        let complaint = decode_event(&l.payload)
            .map(|e| e.complaint_id)
            .unwrap_or_else(|_| "-".into());
        println!(
            "{:>6}  {:<22} {:<20} {:<38} {:>5}  {:<24} {}",
            l.sequence, l.event_type, l.consumer, complaint, l.deliveries, l.subject, l.reason
        );
    }
    println!(
        "\n{} dead letter(s); `tousu dlq replay <seq>` publishes one again",
        letters.len()
    );
    Ok(())
}

pub async fn replay(nats: &str, sequence: u64) -> anyhow::Result<()> {
    let js = connect(nats).await?;
    let subject = dlq::replay(&js, sequence)
        .await
        .map_err(|e| anyhow::anyhow!("replaying dead letter {sequence}: {e}"))?;
    println!("dead letter {sequence} published again on {subject} and removed from the DLQ");
    Ok(())
}
