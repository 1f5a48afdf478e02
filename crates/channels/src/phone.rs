//! Phone: call-centre call records and FreeSWITCH `mod_json_cdr`.
//!
//! A **call record** is what a CTI or call-centre system posts after the
//! call (or after speech recognition):
//! `{"call_id", "caller", "callee", "agent_id", "started_at", "ended_at",
//! "ivr_path": [..], "transcript", "notes", "recording_url",
//! "category_hint", "customer_ref"}`.
//!
//! - `call_id` (string or integer) is the dedup key.
//! - `transcript` or `notes` is required. With both, the description is the
//!   transcript, a blank line, the line `坐席备注 / Agent notes:` and the
//!   notes; with one, that text alone.
//! - `caller` goes into `fields.phone` only when it is a phone number
//!   ([`PhoneNumber`]). A withheld, anonymous or internal number is kept as
//!   `extra` `caller` (raw), and a call without a usable caller number is
//!   still a complaint: it is marked `anonymous` with `extra`
//!   `caller_withheld = true` (the agent may have taken other contact
//!   details into the notes).
//! - `started_at` (RFC 3339) is `occurred_at`; `callee`, `agent_id`,
//!   `ended_at`, `ivr_path` (joined with ` > `), `recording_url`,
//!   `customer_ref` and `duration_seconds` go into `extra`.
//! - Tracking numbers in `notes` (where an agent writes which complaint a
//!   call is about) make the call a follow-up of that complaint. The
//!   transcript is not searched: speech recognition is no reference.
//!
//! Every problem is reported at once, each naming its field.
//!
//! A **FreeSWITCH CDR** (`mod_json_cdr`, recognised by its top-level
//! `variables` object) is mapped from its channel variables, which
//! `mod_json_cdr` URL-encodes by default (`encode-values`; `%XX`, `+` stays
//! `+`), so every value read is percent-decoded:
//!
//! | variable | becomes |
//! |---|---|
//! | `uuid` (`call_uuid`) | call id |
//! | `caller_id_number`, the caller profile's `caller_id_number`, `sip_from_user`, `effective_caller_id_number` | caller |
//! | `destination_number`, the caller profile's `destination_number`, `sip_to_user` | callee |
//! | `start_epoch` / `end_epoch`, else `start_stamp` / `end_stamp` | start, end |
//! | `tousu_transcript`, `asr_result`, `transcript` | transcript |
//! | `tousu_notes`, `notes` | notes |
//! | `tousu_category_hint`, `tousu_customer_ref`, `tousu_recording_url`, `tousu_ivr_path` | as named |
//! | `tousu_agent_id`, `cc_agent` (mod_callcenter) | agent id |
//! | `hangup_cause` | `extra` |
//!
//! `start_stamp`/`end_stamp` are the switch's local time without an offset
//! (`2026-11-22 10:15:03`); they are read as China Standard Time (+08:00),
//! the time zone of the call centres this serves. The epochs are exact and
//! win when present. Times from a CDR are given at +08:00.

use serde_json::{Map, Value};
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use tousu_domain::PhoneNumber;

use crate::forum::{format_rfc3339, id, parse_json_object, string};
use crate::text::clean;
use crate::{Fields, Inbound, Invalid};

/// The line between transcript and agent notes when a call has both.
pub const NOTES_HEADING: &str = "坐席备注 / Agent notes:";

/// The offset assumed for FreeSWITCH's local `*_stamp` times.
const SWITCH_OFFSET: UtcOffset = offset!(+8);

/// Parses a call record (or a FreeSWITCH CDR, recognised by its
/// `variables` object). On failure, every problem found, each naming its
/// field (`call_id`, `ivr_path[2]`, `variables.uuid`…).
pub fn parse(body: &[u8]) -> Result<Inbound, Vec<Invalid>> {
    let root = parse_json_object(body).map_err(|e| vec![e])?;
    let (call, errors) = match root.get("variables") {
        Some(Value::Object(vars)) => from_cdr(&root, vars),
        _ => from_record(&root),
    };
    call.into_inbound(errors)
}

/// A call, read from either format, before it becomes an [`Inbound`].
#[derive(Default)]
struct Call {
    call_id: Option<String>,
    caller: Option<String>,
    callee: Option<String>,
    agent_id: Option<String>,
    started: Option<OffsetDateTime>,
    ended: Option<OffsetDateTime>,
    ivr_path: Option<String>,
    transcript: Option<String>,
    notes: Option<String>,
    recording_url: Option<String>,
    category_hint: Option<String>,
    customer_ref: Option<String>,
    /// Format-specific facts for `extra`.
    more: Vec<(String, String)>,
    /// Field names for a missing id or text and a bad end time in this format.
    id_field: &'static str,
    text_field: &'static str,
    ended_field: &'static str,
}

impl Call {
    /// The complaint, or `errors` (type errors found while reading) plus
    /// whatever is missing or inconsistent.
    fn into_inbound(self, mut errors: Vec<Invalid>) -> Result<Inbound, Vec<Invalid>> {
        let named = |errors: &[Invalid], field: &str| errors.iter().any(|e| e.field == field);
        if self.call_id.is_none() && !named(&errors, self.id_field) {
            errors.insert(0, Invalid::new(self.id_field, "missing"));
        }
        let transcript = self
            .transcript
            .as_deref()
            .map(clean)
            .filter(|t| !t.is_empty());
        let notes = self.notes.as_deref().map(clean).filter(|t| !t.is_empty());
        let description = match (&transcript, &notes) {
            (Some(t), Some(n)) => format!("{t}\n\n{NOTES_HEADING}\n{n}"),
            (Some(t), None) => t.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => {
                if !named(&errors, self.text_field) {
                    errors.push(Invalid::new(
                        self.text_field,
                        "a transcript or agent notes are required",
                    ));
                }
                String::new()
            }
        };
        let duration = match (self.started, self.ended) {
            (Some(s), Some(e)) if e < s => {
                errors.push(Invalid::new(
                    self.ended_field,
                    "before the start of the call",
                ));
                None
            }
            (Some(s), Some(e)) => Some((e - s).whole_seconds()),
            _ => None,
        };
        let (Some(call_id), true) = (self.call_id, errors.is_empty()) else {
            return Err(errors);
        };

        let mut extra = Vec::new();
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                extra.push((k.to_owned(), v));
            }
        };
        let phone = self
            .caller
            .as_deref()
            .and_then(|c| c.parse::<PhoneNumber>().ok())
            .map(|p| p.to_string());
        if phone.is_none() {
            push("caller", self.caller.clone());
            push("caller_withheld", Some("true".to_owned()));
        }
        push("callee", self.callee);
        push("agent_id", self.agent_id);
        push("ended_at", self.ended.and_then(format_rfc3339));
        push("duration_seconds", duration.map(|d| d.to_string()));
        push("ivr_path", self.ivr_path);
        push("recording_url", self.recording_url);
        push("customer_ref", self.customer_ref);
        extra.extend(self.more);

        let tracking_refs = notes
            .as_deref()
            .map(crate::tracking_numbers)
            .unwrap_or_default();
        Ok(Inbound {
            fields: Fields {
                channel_message_id: Some(call_id),
                description: Some(description),
                anonymous: phone.is_none(),
                phone,
                occurred_at: self.started.and_then(format_rfc3339),
                category_hint: self
                    .category_hint
                    .map(|c| clean(&c))
                    .filter(|c| !c.is_empty()),
                ..Fields::default()
            },
            tracking_refs,
            extra,
            ..Inbound::default()
        })
    }
}

/// Collects errors while reading fields, so that all are reported at once.
#[derive(Default)]
struct Errors(Vec<Invalid>);

impl Errors {
    fn take<T>(&mut self, r: Result<Option<T>, Invalid>) -> Option<T> {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            None
        })
    }
}

fn from_record(root: &Map<String, Value>) -> (Call, Vec<Invalid>) {
    let mut errs = Errors::default();
    let text = |errs: &mut Errors, key| errs.take(string(root, key, "")).map(str::to_owned);
    let call = Call {
        call_id: errs.take(id(root, "call_id", "")),
        caller: errs.take(phone_value(root, "caller")),
        callee: errs.take(phone_value(root, "callee")),
        agent_id: errs.take(id(root, "agent_id", "")),
        started: errs.take(timestamp(root, "started_at")),
        ended: errs.take(timestamp(root, "ended_at")),
        ivr_path: errs.take(ivr_path(root)),
        transcript: text(&mut errs, "transcript"),
        notes: text(&mut errs, "notes"),
        recording_url: text(&mut errs, "recording_url").map(|u| u.trim().to_owned()),
        category_hint: text(&mut errs, "category_hint"),
        customer_ref: errs.take(id(root, "customer_ref", "")),
        more: Vec::new(),
        id_field: "call_id",
        text_field: "transcript",
        ended_field: "ended_at",
    };
    (call, errs.0)
}

/// A phone-number-like value: a string, or an integer (some CTI systems
/// send `13812345678` as a number).
fn phone_value(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(Invalid::new(key, "must be a string")),
    }
}

fn timestamp(obj: &Map<String, Value>, key: &str) -> Result<Option<OffsetDateTime>, Invalid> {
    let Some(s) = string(obj, key, "")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|_| {
            Invalid::new(
                key,
                "not an RFC 3339 timestamp (e.g. 2026-11-22T10:15:03+08:00)",
            )
        })
}

/// The IVR menu path as `欢迎 > 投诉 > 人工`: an array of strings (or
/// numbers, for key presses).
fn ivr_path(obj: &Map<String, Value>) -> Result<Option<String>, Invalid> {
    let items = match obj.get("ivr_path") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Invalid::new("ivr_path", "must be an array of strings")),
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => steps.push(clean(s).replace('\n', " ")),
            Value::Number(n) => steps.push(n.to_string()),
            _ => return Err(Invalid::new(format!("ivr_path[{i}]"), "must be a string")),
        }
    }
    steps.retain(|s| !s.is_empty());
    Ok((!steps.is_empty()).then(|| steps.join(" > ")))
}

// ---------------------------------------------------------------------------
// FreeSWITCH mod_json_cdr

fn from_cdr(root: &Map<String, Value>, vars: &Map<String, Value>) -> (Call, Vec<Invalid>) {
    let mut errs = Errors::default();
    let var = |errs: &mut Errors, names: &[&str]| -> Option<String> {
        names.iter().find_map(|name| {
            errs.take(cdr_var(vars, name))
                .filter(|v| !v.trim().is_empty())
        })
    };
    let profiles = caller_profiles(root);
    // The oldest caller profile is the call as it arrived (later ones follow transfers).
    let profile = |key: &str| {
        profiles
            .iter()
            .rev()
            .find_map(|p| p.get(key).and_then(Value::as_str))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };

    let mut call_id = var(&mut errs, &["uuid", "call_uuid"]).map(|s| s.trim().to_owned());
    if call_id
        .as_deref()
        .is_some_and(|c| c.chars().any(char::is_control) || c.len() > 200)
    {
        errs.0.push(Invalid::new("variables.uuid", "not a call id"));
        call_id = None;
    }
    let mut more = Vec::new();
    if let Some(h) = var(&mut errs, &["hangup_cause"]) {
        more.push(("hangup_cause".to_owned(), h));
    }
    let call = Call {
        call_id,
        caller: var(&mut errs, &["caller_id_number"])
            .or_else(|| profile("caller_id_number"))
            .or_else(|| var(&mut errs, &["sip_from_user", "effective_caller_id_number"])),
        callee: var(&mut errs, &["destination_number"])
            .or_else(|| profile("destination_number"))
            .or_else(|| var(&mut errs, &["sip_to_user"])),
        agent_id: var(&mut errs, &["tousu_agent_id", "cc_agent"]),
        started: cdr_time(&mut errs, vars, "start"),
        ended: cdr_time(&mut errs, vars, "end"),
        ivr_path: var(&mut errs, &["tousu_ivr_path"]),
        transcript: var(&mut errs, &["tousu_transcript", "asr_result", "transcript"]),
        notes: var(&mut errs, &["tousu_notes", "notes"]),
        recording_url: var(&mut errs, &["tousu_recording_url"]),
        category_hint: var(&mut errs, &["tousu_category_hint"]),
        customer_ref: var(&mut errs, &["tousu_customer_ref"]),
        more,
        id_field: "variables.uuid",
        text_field: "variables.tousu_transcript",
        ended_field: "variables.end_stamp",
    };
    (call, errs.0)
}

/// A channel variable, percent-decoded. Absent is `None`; a value that is
/// not a string or does not decode to UTF-8 is an error naming it.
fn cdr_var(vars: &Map<String, Value>, name: &str) -> Result<Option<String>, Invalid> {
    match vars.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => percent_decode(s).map(Some).ok_or_else(|| {
            Invalid::new(
                format!("variables.{name}"),
                "not UTF-8 once percent-decoded",
            )
        }),
        Some(_) => Err(Invalid::new(
            format!("variables.{name}"),
            "must be a string",
        )),
    }
}

/// The caller profiles of a CDR's `callflow`: an array of
/// `{"caller_profile": {..}}` in current FreeSWITCH (newest first), a single
/// object in old versions.
fn caller_profiles(root: &Map<String, Value>) -> Vec<&Map<String, Value>> {
    let flows: Vec<&Value> = match root.get("callflow") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    flows
        .into_iter()
        .filter_map(|f| f.get("caller_profile").and_then(Value::as_object))
        .collect()
}

/// `<which>_epoch` (seconds; `0` means unset) or else `<which>_stamp`
/// (local time, read as +08:00), at +08:00.
fn cdr_time(errs: &mut Errors, vars: &Map<String, Value>, which: &str) -> Option<OffsetDateTime> {
    let epoch_name = format!("{which}_epoch");
    if let Some(epoch) = errs.take(cdr_var(vars, &epoch_name)) {
        let epoch = epoch.trim();
        let parsed = epoch
            .parse::<i64>()
            .ok()
            .filter(|&n| n >= 0)
            .and_then(|n| OffsetDateTime::from_unix_timestamp(n).ok())
            .and_then(|t| t.checked_to_offset(SWITCH_OFFSET));
        match parsed {
            Some(t) if t.unix_timestamp() > 0 => return Some(t),
            Some(_) => {} // 0: not set, try the stamp
            None => {
                errs.0.push(Invalid::new(
                    format!("variables.{epoch_name}"),
                    "not a Unix time in seconds",
                ));
                return None;
            }
        }
    }
    let stamp_name = format!("{which}_stamp");
    let stamp = errs.take(cdr_var(vars, &stamp_name))?;
    let stamp = stamp.trim();
    if stamp.is_empty() {
        return None;
    }
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    match PrimitiveDateTime::parse(stamp, format) {
        Ok(t) => Some(t.assume_offset(SWITCH_OFFSET)),
        Err(_) => {
            errs.0.push(Invalid::new(
                format!("variables.{stamp_name}"),
                "not a time like 2026-11-22 10:15:03",
            ));
            None
        }
    }
}

/// Decodes `%XX` escapes as FreeSWITCH's `switch_url_decode` does: a `%`
/// not followed by two hex digits is kept, and `+` stays `+` (FreeSWITCH
/// encodes a plus as `%2B`, never a space as `+`). `None` when the bytes are
/// not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex_val(*c)),
                b.get(i + 2).and_then(|c| hex_val(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_follows_freeswitch() {
        assert_eq!(
            percent_decode("2026-11-22%2010%3A15%3A03").as_deref(),
            Some("2026-11-22 10:15:03")
        );
        assert_eq!(
            percent_decode("%E6%8A%95%E8%AF%89").as_deref(),
            Some("投诉")
        );
        assert_eq!(
            percent_decode("%e6%8a%95%e8%af%89").as_deref(),
            Some("投诉")
        );
        assert_eq!(
            percent_decode("a+b%2Bc").as_deref(),
            Some("a+b+c"),
            "plus stays plus"
        );
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("50%zz%4").as_deref(), Some("50%zz%4"));
        assert_eq!(percent_decode("已经%").as_deref(), Some("已经%"));
        assert_eq!(
            percent_decode("%25E6").as_deref(),
            Some("%E6"),
            "decoded once"
        );
        assert_eq!(percent_decode("%E6%8A"), None, "a cut UTF-8 sequence");
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("").as_deref(), Some(""));
    }

    #[test]
    fn cdr_times_prefer_epochs_and_read_stamps_as_china_time() {
        let vars = serde_json::json!({
            "start_epoch": "1795313703", "start_stamp": "2026-11-22%2003%3A00%3A00",
            "end_epoch": "0", "end_stamp": "2026-11-22%2010%3A21%3A40"
        });
        let vars = vars.as_object().unwrap();
        let mut errs = Errors::default();
        let start = cdr_time(&mut errs, vars, "start").and_then(format_rfc3339);
        let end = cdr_time(&mut errs, vars, "end").and_then(format_rfc3339);
        assert!(errs.0.is_empty(), "{:?}", errs.0);
        assert_eq!(start.as_deref(), Some("2026-11-22T10:15:03+08:00"));
        assert_eq!(end.as_deref(), Some("2026-11-22T10:21:40+08:00"));

        for epoch in ["-5", "99999999999999999999", "253402300800", "1.5e9"] {
            let vars = serde_json::json!({ "start_epoch": epoch });
            let mut errs = Errors::default();
            assert_eq!(
                cdr_time(&mut errs, vars.as_object().unwrap(), "start"),
                None
            );
            assert_eq!(errs.0.len(), 1, "{epoch}");
            assert_eq!(errs.0[0].field, "variables.start_epoch");
        }
        let vars = serde_json::json!({ "start_epoch": "0", "start_stamp": "" });
        let mut errs = Errors::default();
        assert_eq!(
            cdr_time(&mut errs, vars.as_object().unwrap(), "start"),
            None
        );
        assert!(errs.0.is_empty(), "unset times are not errors");
    }
}
