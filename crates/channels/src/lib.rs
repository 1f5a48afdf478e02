//! The wire formats of tousu's channels, parsed into one shape.
//!
//! Every parser here is pure (bytes in, values out, no I/O) so that it can
//! be unit-tested with realistic messages and fuzzed (`fuzz/`). The intake
//! service does the I/O: it checks credentials with the helpers here,
//! stores evidence, validates [`Fields`] and commits.
//!
//! A channel message becomes an [`Inbound`]: the submission [`Fields`]
//! (validated later, exactly as for the web form), the evidence
//! [`Attachment`]s, and the threading keys that let a reply join the
//! complaint it answers instead of opening a new one.
//!
//! - [`email`]: raw RFC 5322 / MIME (charsets, encoded words, HTML-only
//!   mail, attachments, replies, auto-replies and bounces).
//! - [`wechat`]: the 公众号 server push protocol (signatures, AES safe mode,
//!   XML messages, passive replies).
//! - [`forum`]: Discourse webhooks and the generic forum JSON (HMAC).
//! - [`phone`]: call-centre call records and FreeSWITCH `mod_json_cdr`.
//! - [`text`]: HTML to text and whitespace cleaning.

pub mod email;
pub mod forum;
pub mod phone;
pub mod text;
pub mod wechat;

pub use tousu_domain::Channel;

/// The fields of a submission, as strings, before validation. Every
/// transport (web form JSON or form, gRPC, NATS, the channel parsers)
/// produces these; the intake service validates them all the same way.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The channel's own message id (the dedup key within the channel).
    pub channel_message_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub wechat_openid: Option<String>,
    pub forum_username: Option<String>,
    pub anonymous: bool,
    pub product: Option<String>,
    pub location: Option<String>,
    /// RFC 3339.
    pub occurred_at: Option<String>,
    pub amount: Option<String>,
    pub demand: Option<String>,
    pub category_hint: Option<String>,
    pub customer_tier: Option<String>,
    /// Number of complainants signing (联名, a group complaint); validated
    /// by intake (a whole number from 1).
    pub group_size: Option<String>,
}

/// An evidence file carried by a message (email attachment, multipart
/// file). Stored by intake in the object store; the complaint keeps a
/// reference (name, size, media type, SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name as sent (may be empty).
    pub filename: String,
    /// Media type, lower-case, e.g. `image/jpeg`; `application/octet-stream` when unknown.
    pub media_type: String,
    pub data: Vec<u8>,
}

/// A channel message, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// The submission fields. `fields.channel_message_id` is the dedup key
    /// within the channel (Message-ID, MsgId, `<instance>:<post id>`, call id).
    pub fields: Fields,
    /// Evidence files.
    pub attachments: Vec<Attachment>,
    /// Keys under which later messages can refer to this one (an email's
    /// Message-ID as `email:<id>`, a forum topic as `forum:<instance>:topic:<id>`).
    /// Intake records them against the complaint this message creates or joins.
    pub thread_keys: Vec<String>,
    /// Keys this message answers (`email:<In-Reply-To>`, each `References`
    /// id, the forum topic). When one is known, the message becomes a
    /// follow-up of that complaint instead of a new one.
    pub reply_to: Vec<String>,
    /// Tracking numbers mentioned where a reply would put them
    /// (`[TS20261122-000123]` in an email subject), upper-case.
    pub tracking_refs: Vec<String>,
    /// The original text before cleaning (e.g. the HTML body), kept for
    /// inspection; empty when the cleaned text is the original.
    pub original: String,
    /// Free-form facts worth keeping that have no field (forum URL, call
    /// recording URL, IVR path, WeChat location…), as `key: value` lines
    /// appended to nothing — intake stores them with the complaint.
    pub extra: Vec<(String, String)>,
}

impl Inbound {
    /// The value of fact `key` in [`extra`](Inbound::extra), if any.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a message could not be parsed: the part at fault and what is wrong
/// with it. HTTP turns these into problem+json `errors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Constant-time equality of two byte strings (for signatures and tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Tracking numbers (`TS` + 8 digits + `-` + 6 digits) found in `text`,
/// upper-cased, in order, without repeats.
pub fn tracking_numbers(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 17 <= bytes.len() {
        let w = &bytes[i..i + 17];
        let ok = w[0].eq_ignore_ascii_case(&b'T')
            && w[1].eq_ignore_ascii_case(&b'S')
            && w[2..10].iter().all(u8::is_ascii_digit)
            && w[10] == b'-'
            && w[11..17].iter().all(u8::is_ascii_digit)
            && !bytes.get(i + 17).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if ok {
            let t = String::from_utf8_lossy(w).to_ascii_uppercase();
            if !found.contains(&t) {
                found.push(t);
            }
            i += 17;
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_found_in_subjects() {
        assert_eq!(
            tracking_numbers("Re: [TS20261122-000123] 快递延误 ts20261122-000123"),
            ["TS20261122-000123"]
        );
        assert!(tracking_numbers("TS20261122-0001234 XTS20261122-000123").is_empty());
        assert_eq!(
            tracking_numbers("回复：投诉TS20261122-000001、TS20261123-000002"),
            ["TS20261122-000001", "TS20261123-000002"]
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
