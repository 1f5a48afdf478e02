//! `tousu tail`: events as they are published, through an ephemeral
//! ordered consumer on `TOUSU_EVENTS` (nothing is acknowledged, nothing is
//! left behind on the server).

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use time::format_description::well_known::Rfc3339;
use tousu_bus::subjects::EVENTS_STREAM;
use tousu_bus::{EventExt as _, decode_event, from_timestamp};

/// Longest payload shown without `--full`.
const CUT: usize = 240;

pub async fn run(nats: &str, subject: &str, all: bool, full: bool) -> anyhow::Result<()> {
    let client = async_nats::connect(nats)
        .await
        .with_context(|| format!("connecting to NATS at {nats}"))?;
    let js = jetstream::new(client);
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .with_context(|| format!("stream {EVENTS_STREAM} (has a service started yet?)"))?;
    let deliver_policy = if all {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::New
    };
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("creating the ordered consumer")?
        .messages()
        .await
        .context("reading events")?;
    eprintln!("tailing {subject} on {nats} (Ctrl-C to stop)");

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let message = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            m = messages.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("the event stream ended");
        };
        let message = message.context("reading events")?;
        println!("{}", line(&message.subject, &message.payload, full));
    }
}

/// One event as a line: time, subject, type, complaint, sequence, payload.
fn line(subject: &str, bytes: &[u8], full: bool) -> String {
    let event = match decode_event(bytes) {
        Ok(e) => e,
        Err(e) => return format!("{subject}  (undecodable: {e})"),
    };
    let at = event
        .occurred_at
        .as_ref()
        .and_then(from_timestamp)
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into());
    let mut payload = event
        .payload
        .as_ref()
        .map(|p| format!("{p:?}"))
        .unwrap_or_default();
    if !full && payload.chars().count() > CUT {
        payload = payload.chars().take(CUT).collect::<String>() + "…";
    }
    format!(
        "{at}  {subject}  {}  complaint={} seq={}  {payload}",
        event.event_type(),
        event.complaint_id,
        event.sequence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tousu_bus::{Event, Payload, encode_event, to_timestamp};
    use tousu_proto::v1::AlertMajor;

    #[test]
    fn a_line_names_time_type_complaint_and_sequence() {
        let event = Event {
            id: "e".into(),
            complaint_id: "c-1".into(),
            sequence: 3,
            occurred_at: Some(to_timestamp(time::macros::datetime!(2026-11-22 08:30 UTC))),
            payload: Some(Payload::AlertMajor(AlertMajor::default())),
            ..Default::default()
        };
        let l = line("tousu.evt.alert.major", &encode_event(&event), false);
        assert!(
            l.starts_with("2026-11-22T08:30:00Z  tousu.evt.alert.major  alert.major"),
            "{l}"
        );
        assert!(l.contains("complaint=c-1 seq=3"), "{l}");
        assert!(line("x", b"\xff", false).contains("undecodable"));
    }
}
