//! The `Event` envelope: type names, subjects, encoding.

use prost::Message;
use time::OffsetDateTime;
use tousu_domain::InvalidValue;
use tousu_proto::Timestamp;
use tousu_proto::v1::{Event, SlaTarget, event::Payload};

use crate::subjects::event_subject;

/// What every consumer asks of an event.
pub trait EventExt {
    /// The event type (`complaint.received`, `sla.breached` …), also the
    /// value of the `Tousu-Event` header.
    fn event_type(&self) -> String;
    /// The subject the event is published on.
    fn subject(&self) -> Result<String, InvalidValue>;
}

/// The lower-case name of a status (`signed_for`, `resolved` …): the
/// lifecycle event name when the event carries no action.
pub fn lifecycle_name(status: i32) -> String {
    use tousu_proto::v1::Status;
    Status::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The subject token of a proto channel: `webform`, `email`… (`unspecified`
/// for values outside the enum).
pub fn channel_token(channel: i32) -> String {
    tousu_proto::v1::Channel::try_from(channel)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("CHANNEL_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unspecified".into())
}

/// The proto enum value of a domain channel.
pub fn channel_to_pb(channel: tousu_domain::Channel) -> tousu_proto::v1::Channel {
    use tousu_domain::Channel as C;
    use tousu_proto::v1::Channel as P;
    match channel {
        C::Phone => P::Phone,
        C::Email => P::Email,
        C::WebForm => P::Webform,
        C::WeChat => P::Wechat,
        C::Forum => P::Forum,
        C::Manual => P::Manual,
    }
}

/// The domain channel of a proto enum value; `None` for unspecified or unknown.
pub fn channel_from_pb(channel: i32) -> Option<tousu_domain::Channel> {
    use tousu_domain::Channel as C;
    use tousu_proto::v1::Channel as P;
    Some(match P::try_from(channel).ok()? {
        P::Unspecified => return None,
        P::Phone => C::Phone,
        P::Email => C::Email,
        P::Webform => C::WebForm,
        P::Wechat => C::WeChat,
        P::Forum => C::Forum,
        P::Manual => C::Manual,
    })
}

/// `(type, trailing subject token)` of a payload.
fn type_and_token(payload: &Payload) -> (String, Option<String>) {
    use Payload::*;
    match payload {
        Received(p) => (
            "complaint.received".into(),
            Some(channel_token(p.complaint.as_ref().map_or(0, |c| c.channel))),
        ),
        FollowedUp(p) => ("complaint.followup".into(), Some(channel_token(p.channel))),
        Classified(_) => ("complaint.classified".into(), None),
        Assigned(p) => (
            "complaint.assigned".into(),
            p.assignment.as_ref().map(|a| a.department.clone()),
        ),
        Lifecycle(p) => (
            format!(
                "complaint.{}",
                if p.action.is_empty() {
                    lifecycle_name(p.status)
                } else {
                    p.action.clone()
                }
            ),
            Some(p.department.clone()),
        ),
        Regraded(_) => ("complaint.regraded".into(), None),
        SlaStarted(p) => ("sla.started".into(), Some(p.department.clone())),
        SlaWarning(p) => ("sla.warning".into(), Some(p.department.clone())),
        SlaBreached(p) => ("sla.breached".into(), Some(p.department.clone())),
        SlaMet(p) => ("sla.met".into(), Some(p.department.clone())),
        SlaPaused(p) => ("sla.paused".into(), Some(p.department.clone())),
        SlaResumed(p) => ("sla.resumed".into(), Some(p.department.clone())),
        SlaExtended(p) => ("sla.extended".into(), Some(p.department.clone())),
        Escalation(p) => ("escalation".into(), Some(p.level.clone())),
        AlertHot(_) => ("alert.hot".into(), None),
        AlertMajor(_) => ("alert.major".into(), None),
        NotifyDelivered(_) => ("notify.delivered".into(), None),
        NotifyFailed(_) => ("notify.failed".into(), None),
        NotifyAcked(_) => ("notify.acked".into(), None),
    }
}

impl EventExt for Event {
    fn event_type(&self) -> String {
        self.payload
            .as_ref()
            .map(|p| type_and_token(p).0)
            .unwrap_or_else(|| "empty".into())
    }

    fn subject(&self) -> Result<String, InvalidValue> {
        let payload = self.payload.as_ref().ok_or_else(|| InvalidValue {
            what: "event",
            reason: "no payload".into(),
        })?;
        let (ty, token) = type_and_token(payload);
        event_subject(&ty, token.as_deref())
    }
}

/// Protobuf bytes of an event.
pub fn encode_event(event: &Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decodes an event, refusing one without a payload.
pub fn decode_event(bytes: &[u8]) -> Result<Event, String> {
    let event = Event::decode(bytes).map_err(|e| format!("not a tousu.v1.Event: {e}"))?;
    if event.payload.is_none() {
        return Err("event has no payload".into());
    }
    Ok(event)
}

pub fn to_timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

pub fn from_timestamp(t: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Lower-case name of an SLA target (`resolution`, `sign_off` …).
pub fn sla_target_name(target: SlaTarget) -> String {
    target
        .as_str_name()
        .trim_start_matches("SLA_TARGET_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tousu_proto::v1::*;

    #[test]
    fn subjects_follow_the_contract() {
        let mut e = Event {
            payload: Some(Payload::Assigned(ComplaintAssigned {
                assignment: Some(Assignment {
                    department: "quality".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(e.event_type(), "complaint.assigned");
        assert_eq!(e.subject().unwrap(), "tousu.evt.complaint.assigned.quality");

        e.payload = Some(Payload::Received(ComplaintReceived {
            complaint: Some(Complaint {
                channel: Channel::Webform as i32,
                ..Default::default()
            }),
            ack: None,
        }));
        assert_eq!(e.subject().unwrap(), "tousu.evt.complaint.received.webform");

        e.payload = Some(Payload::FollowedUp(tousu_proto::v1::ComplaintFollowedUp {
            channel: Channel::Email as i32,
            ..Default::default()
        }));
        assert_eq!(e.event_type(), "complaint.followup");
        assert_eq!(e.subject().unwrap(), "tousu.evt.complaint.followup.email");
        assert_eq!(channel_token(99), "unspecified");
        for c in [
            tousu_domain::Channel::Phone,
            tousu_domain::Channel::Email,
            tousu_domain::Channel::WebForm,
            tousu_domain::Channel::WeChat,
            tousu_domain::Channel::Forum,
            tousu_domain::Channel::Manual,
        ] {
            assert_eq!(channel_from_pb(channel_to_pb(c) as i32), Some(c));
            assert_eq!(channel_token(channel_to_pb(c) as i32), c.as_str());
        }
        assert_eq!(channel_from_pb(0), None);

        e.payload = Some(Payload::Lifecycle(ComplaintLifecycle {
            status: Status::Resolved as i32,
            department: "quality".into(),
            ..Default::default()
        }));
        assert_eq!(e.subject().unwrap(), "tousu.evt.complaint.resolved.quality");

        e.payload = Some(Payload::SlaBreached(SlaBreached {
            department: "bad.dept".into(),
            ..Default::default()
        }));
        assert!(
            e.subject().is_err(),
            "a dept with a dot must not make a subject"
        );

        e.payload = None;
        assert!(e.subject().is_err());
    }

    #[test]
    fn encode_decode_round_trip() {
        let e = Event {
            id: "0190a0a0-0000-7000-8000-000000000000".into(),
            complaint_id: "c".into(),
            sequence: 7,
            payload: Some(Payload::AlertMajor(AlertMajor::default())),
            ..Default::default()
        };
        assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
        assert!(decode_event(b"\xff\xff\xff").is_err());
        assert!(decode_event(&encode_event(&Event::default())).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let t = time::macros::datetime!(2026-11-22 08:30:15.123456789 UTC);
        assert_eq!(from_timestamp(&to_timestamp(t)).unwrap(), t);
    }
}
