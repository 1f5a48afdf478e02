//! Channels: send one rendered [`Message`] to one address.
//!
//! | channel | address (a roster member's contact) |
//! |---|---|
//! | `email` | an email address |
//! | `sms` | an E.164 phone number |
//! | `wecom` | a user id (or mobile) to @mention through the default group robot, or a robot webhook URL of its own |
//! | `dingtalk` | a mobile / user id to @mention through the default robot, or a robot webhook URL (its signing secret after `#`) |
//! | `feishu` | an open_id to @mention through the default bot, or a bot webhook URL (its signing secret after `#`) |
//! | `webhook` | a URL (empty: the default `notify_webhook_url`) |
//! | `wechat` | a complainant's openid (customer-service message) |
//!
//! Every channel answers [`Sent`] or a [`SendError`] that says whether a
//! retry can help: HTTP 408/429/5xx, timeouts, connection errors, SMTP 4xx
//! and the robots' rate-limit codes are transient (with `Retry-After` when
//! the endpoint gave one); other 4xx, SMTP 5xx, the robots' other error
//! codes and a channel without its settings are permanent. Secrets (robot
//! keys, signing secrets, passwords, access tokens) appear in no error, no
//! endpoint and no log line.

mod dingtalk;
mod email;
mod feishu;
mod sms;
mod webhook;
mod wechat;
mod wecom;

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tousu_kit::Config;

use crate::model::Message;

/// A send the endpoint accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// HTTP status, or the SMTP reply code.
    pub status: u16,
    /// What the endpoint answered (message id, errcode …), short.
    pub detail: String,
}

/// A send that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: 5xx, 429, timeouts, connection errors, robots'
    /// rate-limit error codes. `retry_after` when the endpoint said.
    #[error("{detail}")]
    Transient {
        status: Option<u16>,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying: 4xx, a bad address, a channel not
    /// configured, a robot's refusal (bad signature, bad key).
    #[error("{detail}")]
    Permanent { status: Option<u16>, detail: String },
}

/// Every channel, configured from notify's settings.
pub struct Channels {
    email: Option<email::Email>,
    wecom: wecom::WeCom,
    dingtalk: dingtalk::DingTalk,
    feishu: feishu::Feishu,
    webhook: webhook::Webhook,
    sms: Option<sms::Sms>,
    wechat: Option<wechat::WeChat>,
}

impl Channels {
    /// Builds the channels (HTTP client, SMTP pool) from the settings;
    /// channels without settings answer `Permanent` "not configured".
    /// Malformed settings (a URL that does not parse, an SMS template with
    /// a syntax error, a bad sender address) are an error here, naming the
    /// setting.
    pub fn new(config: &Config) -> anyhow::Result<Channels> {
        let timeout = Duration::from_secs(config.notify_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tousu-notify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Channels {
            email: email::Email::new(config, timeout)?,
            wecom: wecom::WeCom::new(config, http.clone())?,
            dingtalk: dingtalk::DingTalk::new(config, http.clone())?,
            feishu: feishu::Feishu::new(config, http.clone())?,
            webhook: webhook::Webhook::new(config, http.clone())?,
            sms: sms::Sms::new(config, http.clone())?,
            wechat: wechat::WeChat::new(config, http)?,
        })
    }

    /// Sends `message` to `address` on `channel`.
    pub async fn send(
        &self,
        channel: &str,
        address: &str,
        message: &Message,
    ) -> Result<Sent, SendError> {
        let address = address.trim();
        match channel {
            "email" => match &self.email {
                Some(email) => email.send(address, message).await,
                None => Err(not_configured("email", "notify_smtp_url")),
            },
            "wecom" => self.wecom.send(address, message).await,
            "dingtalk" => self.dingtalk.send(address, message).await,
            "feishu" => self.feishu.send(address, message).await,
            "webhook" => self.webhook.send(address, message).await,
            "sms" => match &self.sms {
                Some(sms) => sms.send(address, message).await,
                None => Err(not_configured("sms", "notify_sms_url")),
            },
            "wechat" => match &self.wechat {
                Some(wechat) => wechat.send(address, message).await,
                None => Err(not_configured(
                    "wechat",
                    "wechat_app_id and notify_wechat_secret",
                )),
            },
            other => Err(permanent(
                None,
                format!(
                    "unknown channel {other:?} (one of {})",
                    crate::model::CHANNELS.join(", ")
                ),
            )),
        }
    }

    /// The endpoint a send goes to, for the circuit breaker: one key per
    /// SMTP server / robot webhook / gateway (no secrets in it).
    pub fn endpoint(&self, channel: &str, address: &str) -> String {
        let address = address.trim();
        let endpoint = match channel {
            "email" => self.email.as_ref().map(|e| e.endpoint()),
            "wecom" => self.wecom.endpoint(address),
            "dingtalk" => self.dingtalk.endpoint(address),
            "feishu" => self.feishu.endpoint(address),
            "webhook" => self.webhook.endpoint(address),
            "sms" => self.sms.as_ref().map(|s| s.endpoint()),
            "wechat" => self.wechat.as_ref().map(|w| w.endpoint()),
            _ => None,
        };
        endpoint.unwrap_or_else(|| channel.to_owned())
    }
}

// ---------------------------------------------------------------------------
// Shared by the channels.

/// How long a `Retry-After` may ask to wait at most.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How much of an answer is kept in `detail`.
const DETAIL_CHARS: usize = 200;
/// How much of an answer body is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

fn permanent(status: Option<u16>, detail: impl Into<String>) -> SendError {
    SendError::Permanent {
        status,
        detail: detail.into(),
    }
}

fn transient(status: Option<u16>, detail: impl Into<String>) -> SendError {
    SendError::Transient {
        status,
        detail: detail.into(),
        retry_after: None,
    }
}

fn not_configured(channel: &str, settings: &str) -> SendError {
    permanent(
        None,
        format!("channel {channel} is not configured (set {settings})"),
    )
}

/// HMAC-SHA256 of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The first 8 hex digits of SHA-256(`secret`): tells robots apart in an
/// endpoint without showing their key.
fn fingerprint(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))[..8].to_owned()
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One line, at most [`DETAIL_CHARS`] characters.
fn short(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    match flat.char_indices().nth(DETAIL_CHARS) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat.to_owned(),
    }
}

/// `s` plus the message's console and ack links when `s` lacks them, so
/// no channel drops them.
fn with_links(s: &str, message: &Message, markdown: bool) -> String {
    let mut out = s.trim_end().to_owned();
    for (link, label) in [
        (&message.link, label_open(message)),
        (&message.ack_link, label_ack(message)),
    ] {
        if link.is_empty() || out.contains(link.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        if markdown {
            out.push_str(&format!("[{label}]({link})"));
        } else {
            out.push_str(&format!("{label}: {link}"));
        }
    }
    out
}

fn is_en(message: &Message) -> bool {
    message.language.starts_with("en")
}

fn label_open(message: &Message) -> &'static str {
    if is_en(message) {
        "Open the complaint"
    } else {
        "查看投诉"
    }
}

fn label_ack(message: &Message) -> &'static str {
    if is_en(message) {
        "Acknowledge"
    } else {
        "确认收到"
    }
}

/// The plain-text body of a robot / SMS / WeChat message: subject, text,
/// links.
fn plain_body(message: &Message) -> String {
    let text = message.text.trim();
    let body = if message.subject.is_empty() || text.starts_with(message.subject.trim()) {
        text.to_owned()
    } else if text.is_empty() {
        message.subject.trim().to_owned()
    } else {
        format!("{}\n{}", message.subject.trim(), text)
    };
    with_links(&body, message, false)
}

/// The markdown body of a robot message: `markdown`, else the subject in
/// bold and the text; with links.
fn markdown_body(message: &Message) -> String {
    let body = if message.markdown.trim().is_empty() {
        let text = message.text.trim();
        if message.subject.is_empty() {
            text.to_owned()
        } else {
            format!("**{}**\n\n{}", message.subject.trim(), text)
        }
    } else {
        message.markdown.trim().to_owned()
    };
    with_links(&body, message, true)
}

/// A short title: the subject, else the first line of the text.
fn title(message: &Message) -> String {
    let t = message.subject.trim();
    let t = if t.is_empty() {
        message.text.lines().next().unwrap_or("").trim()
    } else {
        t
    };
    cut_bytes(t, 120).to_owned()
}

/// A setting that must be an http(s) URL when set.
fn setting_url(name: &str, value: &str) -> anyhow::Result<Option<Url>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match parse_http_url(value) {
        Some(url) => Ok(Some(url)),
        None => anyhow::bail!("{name}: not an http(s) URL"),
    }
}

fn parse_http_url(value: &str) -> Option<Url> {
    let url = Url::parse(value).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(url)
}

fn looks_like_url(address: &str) -> bool {
    let lower = address.get(..8).unwrap_or(address).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `channel:host[:port]/path`, plus `#<fingerprint>` of `secret` when set.
fn url_endpoint(channel: &str, url: &Url, path: &str, secret: &str) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    if secret.is_empty() {
        format!("{channel}:{host}{port}{path}")
    } else {
        format!("{channel}:{host}{port}{path}#{}", fingerprint(secret))
    }
}

/// A robot webhook: its URL (fragment removed) and its signing secret.
#[derive(Clone)]
struct Robot {
    url: Url,
    secret: String,
}

/// Which robot a robot address (wecom, dingtalk, feishu) goes to, and
/// whom to @mention: a URL is a robot of its own (`#secret` after it, for
/// signing robots); anything else is a member to mention through the
/// default robot.
enum Target<'a> {
    Robot(Robot, Option<&'a str>),
    NotConfigured,
    BadUrl,
}

impl<'a> Target<'a> {
    /// The robot and whom to mention, or why `channel` cannot send to this
    /// address (`setting` is its default webhook, `noun` "robot" or "bot").
    fn resolve(
        self,
        channel: &str,
        setting: &str,
        noun: &str,
    ) -> Result<(Robot, Option<&'a str>), SendError> {
        match self {
            Target::Robot(robot, mention) => Ok((robot, mention)),
            Target::NotConfigured => Err(not_configured(
                channel,
                &format!("{setting}, or give the member a {noun} URL"),
            )),
            Target::BadUrl => Err(permanent(
                None,
                format!("{channel}: the address is not a {noun} URL"),
            )),
        }
    }

    /// The robot, when there is one (for the endpoint key).
    fn robot(self) -> Option<Robot> {
        match self {
            Target::Robot(robot, _) => Some(robot),
            _ => None,
        }
    }
}

fn robot_target<'a>(default: &Option<Robot>, address: &'a str) -> Target<'a> {
    if looks_like_url(address) {
        let Some(mut url) = parse_http_url(address) else {
            return Target::BadUrl;
        };
        let fragment = url.fragment().unwrap_or("").to_owned();
        url.set_fragment(None);
        let secret = if !fragment.is_empty() {
            fragment
        } else {
            // The default robot given as an address keeps its secret.
            match default {
                Some(d) if d.url == url => d.secret.clone(),
                _ => String::new(),
            }
        };
        return Target::Robot(Robot { url, secret }, None);
    }
    match default {
        Some(robot) => Target::Robot(robot.clone(), (!address.is_empty()).then_some(address)),
        None => Target::NotConfigured,
    }
}

/// A robot's default webhook setting (`#secret` after it also works).
fn default_robot(name: &str, url: &str, secret: &str) -> anyhow::Result<Option<Robot>> {
    Ok(setting_url(name, url)?.map(|mut url| {
        let fragment = url.fragment().unwrap_or("").to_owned();
        url.set_fragment(None);
        let secret = if secret.trim().is_empty() {
            fragment
        } else {
            secret.trim().to_owned()
        };
        Robot { url, secret }
    }))
}

/// A mobile number (digits, optionally `+` first).
fn is_mobile(address: &str) -> bool {
    let digits = address.strip_prefix('+').unwrap_or(address);
    digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What an HTTP endpoint answered.
struct Answer {
    status: u16,
    body: String,
    retry_after: Option<Duration>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// HTTP 408, 429 and 5xx: worth retrying whatever the body says.
    fn retryable(&self) -> bool {
        matches!(self.status, 408 | 429) || self.status >= 500
    }

    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    fn transient(&self, detail: String) -> SendError {
        SendError::Transient {
            status: Some(self.status),
            detail,
            retry_after: self.retry_after,
        }
    }

    /// The generic mapping: 2xx sent, 408/429/5xx transient, else permanent.
    fn into_result(self) -> Result<Sent, SendError> {
        let detail = format!("HTTP {}: {}", self.status, short(&self.body));
        if self.ok() {
            Ok(Sent {
                status: self.status,
                detail,
            })
        } else if self.retryable() {
            Err(self.transient(detail))
        } else {
            Err(permanent(Some(self.status), detail))
        }
    }

    /// The robots' mapping: HTTP 408/429/5xx transient; else the error
    /// code in the JSON answer (`code(json) -> (code, message)`): 0 sent,
    /// one of `rate_limited` transient, others permanent.
    fn robot_result(
        self,
        code: impl Fn(&serde_json::Value) -> Option<(i64, String)>,
        rate_limited: impl Fn(i64, &str) -> bool,
    ) -> Result<Sent, SendError> {
        if self.retryable() {
            return Err(self.transient(format!("HTTP {}: {}", self.status, short(&self.body))));
        }
        match self.json().as_ref().and_then(code) {
            Some((0, msg)) if self.ok() => Ok(Sent {
                status: self.status,
                detail: short(&format!("errcode 0 {msg}")),
            }),
            Some((c, msg)) if rate_limited(c, &msg) => {
                Err(self.transient(short(&format!("errcode {c}: {msg}"))))
            }
            Some((c, msg)) => Err(permanent(
                Some(self.status),
                short(&format!("HTTP {}, errcode {c}: {msg}", self.status)),
            )),
            None => Err(permanent(
                Some(self.status),
                format!(
                    "HTTP {}: answer without an error code: {}",
                    self.status,
                    short(&self.body)
                ),
            )),
        }
    }
}

/// Sends `request`; transport failures become transient errors (without
/// the URL, which may carry a key).
async fn execute(request: reqwest::RequestBuilder) -> Result<Answer, SendError> {
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, OffsetDateTime::now_utc()));
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // The status arrived: a body cut short still tells it.
            Err(_) => break,
        }
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        retry_after,
    })
}

fn transport_error(err: reqwest::Error) -> SendError {
    let err = err.without_url();
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_builder() {
        return permanent(None, format!("bad request: {}", error_chain(&err)));
    } else {
        "request failed"
    };
    transient(None, format!("{kind}: {}", error_chain(&err)))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    short(&out)
}

/// `Retry-After`: delay-seconds or an HTTP-date (IMF-fixdate, RFC 850 or
/// asctime, RFC 9110 §10.2.3), as a wait from `now`; a date in the past
/// is no wait; at most a day.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    let wait = at - now;
    if wait.is_negative() {
        return Some(Duration::ZERO);
    }
    Some(
        Duration::try_from(wait)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    )
}

/// An HTTP-date in any of its three formats, always GMT.
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let cleaned = value.replace(',', " ");
    let mut tokens: Vec<&str> = cleaned.split_whitespace().collect();
    // The weekday is redundant.
    if tokens
        .first()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()) && month(t).is_none())
    {
        tokens.remove(0);
    }
    let (day, month_no, year, clock) = match tokens.as_slice() {
        // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
        [day, mon, year, clock, "GMT"] => {
            (day.parse().ok()?, month(mon)?, year.parse().ok()?, *clock)
        }
        // RFC 850: 06-Nov-94 08:49:37 GMT
        [date, clock, "GMT"] => {
            let mut parts = date.split('-');
            let day: u8 = parts.next()?.parse().ok()?;
            let mon = month(parts.next()?)?;
            let yy: i32 = parts.next()?.parse().ok()?;
            let year = match yy {
                0..=69 => 2000 + yy,
                70..=99 => 1900 + yy,
                _ => yy,
            };
            (day, mon, year, *clock)
        }
        // asctime: Nov  6 08:49:37 1994
        [mon, day, clock, year] => (day.parse().ok()?, month(mon)?, year.parse().ok()?, *clock),
        _ => return None,
    };
    let mut hms = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let date = time::Date::from_calendar_date(year, month_no, day).ok()?;
    let t = time::Time::from_hms(h, m, s).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn month(name: &str) -> Option<time::Month> {
    use time::Month::*;
    Some(match name {
        "Jan" => January,
        "Feb" => February,
        "Mar" => March,
        "Apr" => April,
        "May" => May,
        "Jun" => June,
        "Jul" => July,
        "Aug" => August,
        "Sep" => September,
        "Oct" => October,
        "Nov" => November,
        "Dec" => December,
        _ => return None,
    })
}

fn unix_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn unix_millis() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_seconds() {
        let now = datetime!(2025-03-01 12:00:00 UTC);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
    }

    #[test]
    fn retry_after_http_dates() {
        // RFC 9110 §5.6.7's example date, in its three formats.
        let now = datetime!(1994-11-06 08:48:37 UTC);
        let minute = Some(Duration::from_secs(60));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            minute
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            minute
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), minute);
        // In the past: no wait.
        let later = datetime!(1994-11-06 09:00:00 UTC);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        // Far future: capped.
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "tomorrow",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn fingerprints_hide_keys() {
        // SHA-256("abc") starts ba7816bf (FIPS 180-2 example).
        assert_eq!(fingerprint("abc"), "ba7816bf");
        let url = Url::parse("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc").unwrap();
        assert_eq!(
            url_endpoint("wecom", &url, url.path(), "abc"),
            "wecom:qyapi.weixin.qq.com/cgi-bin/webhook/send#ba7816bf"
        );
        let local = Url::parse("http://127.0.0.1:8080/hook").unwrap();
        assert_eq!(
            url_endpoint("webhook", &local, local.path(), ""),
            "webhook:127.0.0.1:8080/hook"
        );
    }

    #[test]
    fn robot_targets() {
        let default = Some(Robot {
            url: Url::parse("https://oapi.dingtalk.com/robot/send?access_token=t").unwrap(),
            secret: "SECdefault".into(),
        });
        match robot_target(&default, "13800001111") {
            Target::Robot(r, Some("13800001111")) => assert_eq!(r.secret, "SECdefault"),
            _ => panic!("mention through the default robot"),
        }
        match robot_target(&default, "") {
            Target::Robot(_, None) => {}
            _ => panic!("the default robot, no mention"),
        }
        match robot_target(
            &default,
            "https://oapi.dingtalk.com/robot/send?access_token=u#SECown",
        ) {
            Target::Robot(r, None) => {
                assert_eq!(r.secret, "SECown");
                assert_eq!(r.url.fragment(), None);
                assert!(r.url.as_str().ends_with("access_token=u"));
            }
            _ => panic!("a robot of its own"),
        }
        match robot_target(
            &default,
            "https://oapi.dingtalk.com/robot/send?access_token=t",
        ) {
            Target::Robot(r, None) => assert_eq!(r.secret, "SECdefault"),
            _ => panic!("the default robot by URL"),
        }
        assert!(matches!(
            robot_target(&None, "zhangsan"),
            Target::NotConfigured
        ));
        assert!(matches!(robot_target(&default, "https://"), Target::BadUrl));
    }

    #[test]
    fn bodies_keep_links() {
        let m = Message {
            language: "en".into(),
            subject: "Breach".into(),
            text: "TS-1 is overdue".into(),
            link: "http://console/c/1".into(),
            ack_link: "http://notify/v1/acks/x".into(),
            ..Message::default()
        };
        assert_eq!(
            plain_body(&m),
            "Breach\nTS-1 is overdue\n\nOpen the complaint: http://console/c/1\n\nAcknowledge: http://notify/v1/acks/x"
        );
        assert_eq!(
            markdown_body(&m),
            "**Breach**\n\nTS-1 is overdue\n\n[Open the complaint](http://console/c/1)\n\n[Acknowledge](http://notify/v1/acks/x)"
        );
        let has = Message {
            markdown: "see [it](http://console/c/1)".into(),
            ..m.clone()
        };
        assert_eq!(
            markdown_body(&has),
            "see [it](http://console/c/1)\n\n[Acknowledge](http://notify/v1/acks/x)"
        );
    }

    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(cut_bytes("投诉abc", 4), "投");
        assert_eq!(cut_bytes("abc", 10), "abc");
        assert_eq!(short(&"长".repeat(300)).chars().count(), DETAIL_CHARS + 1);
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn generic_status_mapping() {
        assert!(answer(204, "").into_result().is_ok());
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(answer(s, "").into_result(), Err(SendError::Transient { status: Some(x), .. }) if x == s),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 410, 422] {
            assert!(
                matches!(answer(s, "").into_result(), Err(SendError::Permanent { status: Some(x), .. }) if x == s),
                "{s}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_and_unconfigured_channels_are_permanent() {
        let config = Config::defaults("notify");
        let channels = Channels::new(&config).unwrap();
        let m = Message::default();
        for (channel, setting) in [
            ("email", "notify_smtp_url"),
            ("sms", "notify_sms_url"),
            ("wecom", "notify_wecom_webhook"),
            ("dingtalk", "notify_dingtalk_webhook"),
            ("feishu", "notify_feishu_webhook"),
            ("webhook", "notify_webhook_url"),
            ("wechat", "notify_wechat_secret"),
        ] {
            // The webhook's address is a URL; empty means the default.
            let address = if channel == "webhook" { "" } else { "someone" };
            match channels.send(channel, address, &m).await {
                Err(SendError::Permanent { detail, .. }) => {
                    assert!(detail.contains("not configured"), "{channel}: {detail}");
                    assert!(detail.contains(setting), "{channel}: {detail}");
                }
                other => panic!("{channel}: {other:?}"),
            }
            assert_eq!(channels.endpoint(channel, address), channel);
        }
        assert!(matches!(
            channels.send("pigeon", "x", &m).await,
            Err(SendError::Permanent { .. })
        ));
    }

    /// The sender shares one `Channels` between tasks and spawns sends.
    #[allow(dead_code)]
    fn channels_are_shared_across_tasks(channels: &Channels, m: &Message) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        send_sync(channels);
        send(channels.send("webhook", "", m));
    }

    #[test]
    fn malformed_settings_fail_naming_the_setting() {
        let mut config = Config::defaults("notify");
        config.notify_dingtalk_webhook = "not a url".into();
        let err = Channels::new(&config).err().expect("an error").to_string();
        assert!(err.contains("notify_dingtalk_webhook"), "{err}");
    }
}
