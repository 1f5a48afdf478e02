//! Streams and subjects (architecture §3).

use tousu_domain::InvalidValue;

/// The event stream: every event of every service.
pub const EVENTS_STREAM: &str = "TOUSU_EVENTS";
/// Subjects of the event stream.
pub const EVENTS_PREFIX: &str = "tousu.evt.";
/// The dead-letter stream.
pub const DLQ_STREAM: &str = "TOUSU_DLQ";
/// Subjects of the dead-letter stream: `tousu.dlq.<consumer>`.
pub const DLQ_PREFIX: &str = "tousu.dlq.";
/// Request/reply submission subjects: `tousu.intake.<channel>`.
pub const INTAKE_PREFIX: &str = "tousu.intake.";

/// Checks that `token` can stand as one token of a NATS subject: not
/// empty, no `.`, `*`, `>` or white space.
pub fn check_token(token: &str) -> Result<&str, InvalidValue> {
    if token.is_empty() {
        return Err(InvalidValue {
            what: "subject token",
            reason: "empty".into(),
        });
    }
    if let Some(c) = token
        .chars()
        .find(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
    {
        return Err(InvalidValue {
            what: "subject token",
            reason: format!("{token:?} contains {c:?}"),
        });
    }
    Ok(token)
}

/// The full subject for an event type and optional trailing token
/// (`complaint.assigned` + `quality` → `tousu.evt.complaint.assigned.quality`).
pub fn event_subject(event_type: &str, token: Option<&str>) -> Result<String, InvalidValue> {
    for part in event_type.split('.') {
        check_token(part)?;
    }
    match token {
        Some(t) => Ok(format!("{EVENTS_PREFIX}{event_type}.{}", check_token(t)?)),
        None => Ok(format!("{EVENTS_PREFIX}{event_type}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_subjects_and_refuses_bad_tokens() {
        assert_eq!(
            event_subject("complaint.assigned", Some("quality")).unwrap(),
            "tousu.evt.complaint.assigned.quality"
        );
        assert_eq!(
            event_subject("alert.major", None).unwrap(),
            "tousu.evt.alert.major"
        );
        for bad in ["", "a.b", "*", ">", "a b", "x\n"] {
            assert!(
                event_subject("complaint.assigned", Some(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(event_subject("complaint..assigned", None).is_err());
    }
}
