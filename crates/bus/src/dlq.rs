//! Reading and replaying the dead-letter stream (`tousu dlq list|replay`).

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage as Publish};

use crate::consumer::{DLQ_CONSUMER, DLQ_DELIVERIES, DLQ_REASON, DLQ_STREAM_SEQ, DLQ_SUBJECT};
use crate::subjects::DLQ_STREAM;

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Sequence in `TOUSU_DLQ` (what `replay` takes).
    pub sequence: u64,
    pub consumer: String,
    pub reason: String,
    /// Subject it was published on originally.
    pub subject: String,
    pub original_sequence: String,
    pub deliveries: String,
    pub event_type: String,
    pub payload: bytes::Bytes,
    headers: HeaderMap,
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// Up to `limit` dead letters, oldest first.
pub async fn list(
    js: &jetstream::Context,
    limit: usize,
) -> Result<Vec<DeadLetter>, async_nats::Error> {
    let mut stream = js.get_stream(DLQ_STREAM).await?;
    let info = stream.info().await?.clone();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return Ok(out);
    }
    let mut seq = info.state.first_sequence;
    while seq <= info.state.last_sequence && out.len() < limit {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(DeadLetter {
                sequence: m.sequence,
                consumer: header(&m.headers, DLQ_CONSUMER),
                reason: header(&m.headers, DLQ_REASON),
                subject: header(&m.headers, DLQ_SUBJECT),
                original_sequence: header(&m.headers, DLQ_STREAM_SEQ),
                deliveries: header(&m.headers, DLQ_DELIVERIES),
                event_type: header(&m.headers, crate::HEADER_EVENT),
                payload: m.payload,
                headers: m.headers,
            });
        }
        seq += 1;
    }
    Ok(out)
}

/// Publishes dead letter `sequence` again on its original subject, then
/// removes it from the dead-letter stream. Consumers that processed it
/// before skip it (their inbox has its event id).
pub async fn replay(js: &jetstream::Context, sequence: u64) -> Result<String, async_nats::Error> {
    let stream = js.get_stream(DLQ_STREAM).await?;
    let m = stream.get_raw_message(sequence).await?;
    let subject = header(&m.headers, DLQ_SUBJECT);
    if subject.is_empty() {
        return Err(format!("dead letter {sequence} has no {DLQ_SUBJECT} header").into());
    }
    let mut headers = HeaderMap::new();
    for (name, values) in m.headers.iter() {
        if AsRef::<str>::as_ref(name).starts_with("Tousu-Dlq-") {
            continue;
        }
        for v in values {
            headers.append(name.clone(), v.clone());
        }
    }
    let publish = Publish::build()
        .payload(m.payload.clone())
        .headers(headers)
        .message_id(format!("replay:{sequence}"));
    js.send_publish(subject.clone(), publish).await?.await?;
    stream.delete_message(sequence).await?;
    Ok(subject)
}

impl DeadLetter {
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}
