//! Forum: Discourse webhooks and the generic forum JSON.
//!
//! **Discourse** posts a webhook per event with the headers
//! `X-Discourse-Event` (`post_created`, `post_edited`, `topic_created`,
//! `ping`…), `X-Discourse-Instance` (the forum's base URL) and
//! `X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//! Post events carry `{"post": {...}}` as serialized by Discourse's
//! `WebHookPostSerializer` (`id`, `topic_id`, `topic_title`, `topic_slug`,
//! `username`, `name`, `raw`, `cooked`, `created_at`, `post_number`,
//! `post_type`, `category_id`, `deleted_at`, `hidden`…).
//!
//! Every post becomes an [`Inbound`] whose thread key and `reply_to` are the
//! topic (`forum:<host>:topic:<topic_id>`): the first post of a topic opens a
//! complaint, and a later post in a topic that intake already knows joins it
//! as a follow-up (跟帖). A post in a topic that is not a complaint opens one.
//!
//! The dedup key is `<host>:<post id>`; an edit gets
//! `<host>:<post id>:edit:<16 hex of SHA-256(raw)>`, so that each distinct
//! text of a post is recorded once while Discourse's retries (and edits that
//! do not change the text) are answered as repeats.
//!
//! **Generic** forums (anything that can post JSON, signed with
//! `X-Tousu-Signature`, same `sha256=<hex>` form) send
//! `{"forum", "post_id", "thread_id", "author", "title", "body",
//! "created_at", "url"}`.
//!
//! Usernames are lower-cased in `forum_username` (`<host>/<username>`):
//! Discourse, like most forums, treats them case-insensitively, and the
//! same person must link across posts.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::text::{clean, html_to_text};
use crate::{Fields, Inbound, Invalid};

/// The deepest JSON nesting accepted from a channel. Real payloads nest a
/// few levels; a limit well below serde_json's own (128) keeps parsing and
/// dropping of hostile bodies shallow.
pub const MAX_JSON_DEPTH: usize = 64;

/// Longest id or name accepted in a dedup or thread key (post, thread and
/// call ids, forum names, usernames), in bytes.
const MAX_ID_LEN: usize = 200;

/// Lower-case hex HMAC-SHA256 of `body` with `secret`: what Discourse puts
/// after `sha256=` in `X-Discourse-Event-Signature`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a signature header against the raw body, in constant time.
///
/// Accepts `sha256=<hex>` (Discourse's `X-Discourse-Event-Signature`, and
/// `X-Tousu-Signature` of the generic format) and bare hex, in either case.
/// An empty secret verifies nothing: a missing configuration must not turn
/// into "anyone can post".
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let header = header.trim();
    let hex_part = match header.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &header[7..],
        _ => header,
    };
    let Ok(given) = hex::decode(hex_part.trim()) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(body);
    // verify_slice compares in constant time and rejects wrong lengths.
    mac.verify_slice(&given).is_ok()
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long keys are hashed), so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// What a Discourse webhook turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per request, moved straight into intake; Post(Inbound) is the API intake matches on"
)]
pub enum Discourse {
    /// A post with text: a new complaint, or a follow-up of the topic's.
    Post(Inbound),
    /// Events that carry no complaint (ping, topic_created without text,
    /// deleted, hidden or system posts, staff whispers…), with the reason.
    /// Intake answers them 200 and stores nothing.
    Ignored(&'static str),
}

/// The host (with port, if any) of a forum base URL, lower-cased:
/// `https://Forum.Example.com/` → `forum.example.com`. This is the
/// instance part of Discourse dedup and thread keys. `None` when there is
/// no usable host.
pub fn instance_host(instance: &str) -> Option<String> {
    let s = instance.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let end = s.find(['/', '?', '#']).unwrap_or(s.len());
    let authority = &s[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.to_lowercase();
    let ok = !host.is_empty()
        && host.chars().count() <= 253
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']' | '_'));
    ok.then_some(host)
}

/// Parses a Discourse webhook body for `event` (`X-Discourse-Event`) from
/// `instance` (`X-Discourse-Instance`).
///
/// `post_created` and `post_edited` become [`Discourse::Post`];
/// `topic_created` is ignored because it carries no text (the
/// `post_created` of post 1 follows it), and so are `ping` and every other
/// event. Their bodies are not parsed. Deleted and hidden posts, system
/// notices (post types 2 and 3) and staff whispers (type 4) are ignored.
pub fn parse_discourse(event: &str, instance: &str, body: &[u8]) -> Result<Discourse, Invalid> {
    let event = event.trim();
    let edited = if event.eq_ignore_ascii_case("post_created") {
        false
    } else if event.eq_ignore_ascii_case("post_edited") {
        true
    } else if event.eq_ignore_ascii_case("topic_created") {
        return Ok(Discourse::Ignored("topic without post text"));
    } else if event.eq_ignore_ascii_case("ping") {
        return Ok(Discourse::Ignored("ping"));
    } else {
        return Ok(Discourse::Ignored("event without a new post"));
    };
    let host = instance_host(instance).ok_or_else(|| {
        Invalid::new(
            "X-Discourse-Instance",
            "missing or not a forum URL (expected e.g. https://forum.example.com)",
        )
    })?;
    let scheme = if instance
        .trim_start()
        .as_bytes()
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"http://"))
    {
        "http"
    } else {
        "https"
    };

    let root = parse_json_object(body)?;
    let post = match root.get("post") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(Invalid::new("post", "must be an object")),
        None => return Err(Invalid::new("post", "missing (not a post event body)")),
    };
    let p = "post.";
    let id = required(uint(post, "id", p)?, "post.id")?;
    let topic_id = required(uint(post, "topic_id", p)?, "post.topic_id")?;
    let username = required(string(post, "username", p)?, "post.username")?.trim();
    if username.is_empty()
        || username.len() > MAX_ID_LEN
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(Invalid::new("post.username", "empty or not a username"));
    }
    let raw = string(post, "raw", p)?;
    let cooked = string(post, "cooked", p)?;
    let name = string(post, "name", p)?;
    let topic_title = string(post, "topic_title", p)?;
    let topic_slug = string(post, "topic_slug", p)?;
    let category_slug = string(post, "category_slug", p)?;
    let created_at = string(post, "created_at", p)?;
    let post_number = uint(post, "post_number", p)?;
    let post_type = uint(post, "post_type", p)?;
    let category_id = uint(post, "category_id", p)?;
    let reply_to_post_number = uint(post, "reply_to_post_number", p)?;
    let hidden = boolean(post, "hidden", p)?.unwrap_or(false);
    let user_deleted = boolean(post, "user_deleted", p)?.unwrap_or(false);
    let staff = ["staff", "admin", "moderator"]
        .into_iter()
        .map(|k| boolean(post, k, p))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .any(|b| b == Some(true));

    if post.get("deleted_at").is_some_and(|v| !v.is_null()) || user_deleted {
        return Ok(Discourse::Ignored("deleted post"));
    }
    if hidden {
        return Ok(Discourse::Ignored("hidden post"));
    }
    match post_type {
        Some(2 | 3) => return Ok(Discourse::Ignored("forum action notice, not a user post")),
        Some(4) => return Ok(Discourse::Ignored("staff whisper")),
        _ => {}
    }

    // raw is the author's markdown; cooked (HTML) only when raw is absent.
    let (description, source) = match (raw.filter(|r| !r.trim().is_empty()), cooked) {
        (Some(raw), _) => (clean(raw), raw),
        (None, Some(cooked)) if !cooked.trim().is_empty() => (html_to_text(cooked), cooked),
        _ => {
            return Err(Invalid::new(
                "post.raw",
                "no post text (raw and cooked are both missing or empty)",
            ));
        }
    };
    if description.is_empty() {
        return Err(Invalid::new("post.raw", "no text left after cleaning"));
    }
    let occurred_at = created_at
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            normalize_rfc3339(s)
                .ok_or_else(|| Invalid::new("post.created_at", "not an RFC 3339 timestamp"))
        })
        .transpose()?;

    let channel_message_id = if edited {
        let digest = hex::encode(Sha256::digest(source.as_bytes()));
        format!("{host}:{id}:edit:{}", &digest[..16])
    } else {
        format!("{host}:{id}")
    };
    let title = topic_title.map(clean).filter(|t| !t.is_empty());
    let topic_key = format!("forum:{host}:topic:{topic_id}");

    let mut extra = Vec::new();
    let slug = topic_slug.map(str::trim).filter(|s| url_safe_segment(s));
    let url = match (slug, post_number) {
        (Some(slug), Some(n)) => format!("{scheme}://{host}/t/{slug}/{topic_id}/{n}"),
        (Some(slug), None) => format!("{scheme}://{host}/t/{slug}/{topic_id}"),
        (None, Some(n)) => format!("{scheme}://{host}/t/{topic_id}/{n}"),
        (None, None) => format!("{scheme}://{host}/t/{topic_id}"),
    };
    extra.push(("url".to_owned(), url));
    extra.push(("topic_id".to_owned(), topic_id.to_string()));
    if let Some(n) = post_number {
        extra.push(("post_number".to_owned(), n.to_string()));
    }
    if let Some(n) = reply_to_post_number {
        extra.push(("reply_to_post_number".to_owned(), n.to_string()));
    }
    if let Some(c) = category_id {
        extra.push(("category_id".to_owned(), c.to_string()));
    }
    if let Some(c) = category_slug.map(str::trim).filter(|c| !c.is_empty()) {
        extra.push(("category_slug".to_owned(), c.to_owned()));
    }
    if edited {
        extra.push(("event".to_owned(), "post_edited".to_owned()));
    }
    if staff {
        // A staff reply in a complaint topic is the forum answering, not the complainant.
        extra.push(("author_staff".to_owned(), "true".to_owned()));
    }

    let tracking_refs = title
        .as_deref()
        .map(crate::tracking_numbers)
        .unwrap_or_default();
    let original = if description == source {
        String::new()
    } else {
        source.to_owned()
    };
    Ok(Discourse::Post(Inbound {
        fields: Fields {
            channel_message_id: Some(channel_message_id),
            title,
            description: Some(description),
            name: name.map(clean).filter(|n| !n.is_empty()),
            forum_username: Some(format!("{host}/{}", username.to_lowercase())),
            occurred_at,
            ..Fields::default()
        },
        attachments: Vec::new(),
        thread_keys: vec![topic_key.clone()],
        reply_to: vec![topic_key],
        tracking_refs,
        original,
        extra,
    }))
}

/// Parses the generic forum JSON: `{"forum", "post_id", "thread_id",
/// "author", "title", "body", "created_at", "url"}`. `forum`, `post_id`,
/// `thread_id`, `author` and `body` are required; ids may be strings or
/// integers. The dedup key is `<forum>:<post_id>`, the thread key (and
/// `reply_to`) `forum:<forum>:thread:<thread_id>`. A `forum` given as a URL
/// is reduced to its host, like a Discourse instance. An HTML body is
/// converted to text; `url` must be http(s) (it is shown to case workers
/// as a link).
pub fn parse_generic(body: &[u8]) -> Result<Inbound, Invalid> {
    let root = parse_json_object(body)?;
    let forum_raw = required(string(&root, "forum", "")?, "forum")?;
    let forum = if forum_raw.contains("://") {
        instance_host(forum_raw)
    } else {
        let f = forum_raw.trim().to_lowercase();
        (!f.is_empty()
            && f.len() <= MAX_ID_LEN
            && !f
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/'))
        .then_some(f)
    }
    .ok_or_else(|| Invalid::new("forum", "empty or not a forum name or URL"))?;
    let post_id = required(id(&root, "post_id", "")?, "post_id")?;
    let thread_id = required(id(&root, "thread_id", "")?, "thread_id")?;
    let author = required(string(&root, "author", "")?, "author")?.trim();
    if author.is_empty()
        || author.len() > MAX_ID_LEN
        || author.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(Invalid::new("author", "empty or not a username"));
    }
    let title = string(&root, "title", "")?;
    let text = required(string(&root, "body", "")?, "body")?;
    let created_at = string(&root, "created_at", "")?;
    let url = string(&root, "url", "")?
        .map(str::trim)
        .filter(|u| !u.is_empty());

    let description = if looks_like_html(text) {
        html_to_text(text)
    } else {
        clean(text)
    };
    if description.is_empty() {
        return Err(Invalid::new("body", "empty"));
    }
    let occurred_at = created_at
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            normalize_rfc3339(s)
                .ok_or_else(|| Invalid::new("created_at", "not an RFC 3339 timestamp"))
        })
        .transpose()?;
    let mut extra = Vec::new();
    if let Some(url) = url {
        if !is_http_url(url) {
            return Err(Invalid::new("url", "must be an http:// or https:// URL"));
        }
        extra.push(("url".to_owned(), url.to_owned()));
    }
    extra.push(("thread_id".to_owned(), thread_id.clone()));

    let title = title.map(clean).filter(|t| !t.is_empty());
    let tracking_refs = title
        .as_deref()
        .map(crate::tracking_numbers)
        .unwrap_or_default();
    let thread_key = format!("forum:{forum}:thread:{thread_id}");
    let original = if description == text {
        String::new()
    } else {
        text.to_owned()
    };
    Ok(Inbound {
        fields: Fields {
            channel_message_id: Some(format!("{forum}:{post_id}")),
            title,
            description: Some(description),
            forum_username: Some(format!("{forum}/{}", author.to_lowercase())),
            occurred_at,
            ..Fields::default()
        },
        attachments: Vec::new(),
        thread_keys: vec![thread_key.clone()],
        reply_to: vec![thread_key],
        tracking_refs,
        original,
        extra,
    })
}

// ---------------------------------------------------------------------------
// JSON and value helpers, shared with the phone parser.

/// Parses `body` as a JSON object: UTF-8 (a leading BOM is skipped), at most
/// [`MAX_JSON_DEPTH`] levels deep. Errors name `body`.
pub(crate) fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Invalid::new(
            "body",
            format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Invalid::new("body", "empty"));
    }
    if !nesting_within(text.as_bytes(), MAX_JSON_DEPTH) {
        return Err(Invalid::new(
            "body",
            format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Invalid::new("body", "must be a JSON object")),
        Err(e) => Err(Invalid::new("body", format!("invalid JSON: {e}"))),
    }
}

/// Whether the brackets of a JSON text nest at most `max` deep. Strings
/// (with escapes) are skipped; on malformed input the answer only has to
/// be safe, since the parser rejects such input anyway.
fn nesting_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// An RFC 3339 timestamp, re-formatted without fractional seconds and with
/// its offset kept: `2026-11-22T08:30:00.123Z` → `2026-11-22T08:30:00Z`.
pub(crate) fn normalize_rfc3339(s: &str) -> Option<String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    format_rfc3339(t)
}

/// `t` as RFC 3339 without fractional seconds; `None` outside years 0–9999.
pub(crate) fn format_rfc3339(t: OffsetDateTime) -> Option<String> {
    t.replace_nanosecond(0).ok()?.format(&Rfc3339).ok()
}

pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new(field, "missing"))
}

/// `obj[key]` as a string; absent or `null` is `None`, another type an error
/// naming `<path><key>`.
pub(crate) fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(format!("{path}{key}"), "must be a string")),
    }
}

/// `obj[key]` as a non-negative integer (Discourse ids and numbers).
pub(crate) fn uint(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<u64>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Invalid::new(format!("{path}{key}"), "must be a non-negative integer")),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Invalid::new(
            format!("{path}{key}"),
            "must be true or false",
        )),
    }
}

/// An id given as a string or an integer (connectors differ), trimmed;
/// empty is `None`. Ids become part of dedup and thread keys, so control
/// characters and very long ids are refused.
pub(crate) fn id(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, Invalid> {
    let field = || format!("{path}{key}");
    let s = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(Invalid::new(field(), "must be a string or an integer")),
    };
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(field(), "must not contain control characters"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Invalid::new(
            field(),
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok((!s.is_empty()).then_some(s))
}

/// Whether `s` can go into a URL path as one segment unchanged (Discourse
/// slugs are ASCII or already percent-encoded).
fn url_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.bytes().all(|b| b == b'.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%'))
}

fn is_http_url(s: &str) -> bool {
    let b = s.as_bytes();
    let has_prefix = |p: &[u8]| b.len() > p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    (has_prefix(b"http://") || has_prefix(b"https://"))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether a generic forum body is HTML rather than plain text or markdown:
/// a tag start (`<p`, `<br`, `</div`, `<!--`…) with a `>` somewhere after it.
fn looks_like_html(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(last_gt) = b.iter().rposition(|&c| c == b'>') else {
        return false;
    };
    b[..last_gt]
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert!(nesting_within(br#"{"a":[1,{"b":[]}]}"#, 4));
        assert!(!nesting_within(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(nesting_within(br#"{"a":"[[[[{{{{"}"#, 1));
        assert!(nesting_within(br#"{"a":"\"[[[[\\"}"#, 1));
        assert!(
            !nesting_within(br#"{"a":"\\"[[}"#, 2),
            "an escaped backslash ends the escape"
        );
        assert!(
            nesting_within(b"]]]]}}}}[", 1),
            "malformed input gives an answer, not a panic"
        );
    }

    #[test]
    fn rfc3339_is_normalized_to_whole_seconds_keeping_the_offset() {
        assert_eq!(
            normalize_rfc3339("2026-11-22T08:30:00.123Z").as_deref(),
            Some("2026-11-22T08:30:00Z")
        );
        assert_eq!(
            normalize_rfc3339(" 2026-11-22T16:30:00+08:00 ").as_deref(),
            Some("2026-11-22T16:30:00+08:00")
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22 08:30:00",
            "2026-13-01T00:00:00Z",
            "昨天",
        ] {
            assert_eq!(normalize_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn html_is_recognised_by_its_tags() {
        assert!(looks_like_html("<p>快递丢了</p>"));
        assert!(looks_like_html("第一行<br>第二行"));
        assert!(looks_like_html("<!-- x --> text"));
        assert!(!looks_like_html("价格 <50 元, >3 天"));
        assert!(!looks_like_html("a <b but never closed"));
        assert!(!looks_like_html("closed first > then <b"));
        assert!(!looks_like_html("<"));
    }

    #[test]
    fn urls_and_slugs_are_checked() {
        assert!(is_http_url("https://bbs.example.cn/t/1"));
        assert!(is_http_url("HTTP://bbs.example.cn"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(!is_http_url("https://a b"));
        assert!(!is_http_url("ftp://x"));
        assert!(url_safe_segment("charged-twice-for-march"));
        assert!(url_safe_segment("%E5%BF%AB%E9%80%92"));
        assert!(!url_safe_segment("../admin"));
        assert!(!url_safe_segment(".."));
        assert!(!url_safe_segment("快递"));
        assert!(!url_safe_segment(""));
    }

    #[test]
    fn ids_accept_strings_and_integers_only() {
        let obj = serde_json::json!({
            "s": " p-1 ", "n": 42, "neg": -7, "f": 1.5, "b": true, "e": "", "c": "a\nb"
        });
        let obj = obj.as_object().unwrap();
        assert_eq!(id(obj, "s", ""), Ok(Some("p-1".to_owned())));
        assert_eq!(id(obj, "n", ""), Ok(Some("42".to_owned())));
        assert_eq!(id(obj, "neg", ""), Ok(Some("-7".to_owned())));
        assert_eq!(id(obj, "e", ""), Ok(None));
        assert_eq!(id(obj, "absent", ""), Ok(None));
        assert_eq!(id(obj, "f", "x.").unwrap_err().field, "x.f");
        assert_eq!(id(obj, "b", "").unwrap_err().field, "b");
        assert_eq!(id(obj, "c", "").unwrap_err().field, "c");
    }
}
