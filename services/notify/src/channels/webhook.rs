//! The generic webhook: `POST` JSON (the message's subject, text, links,
//! cause event and `data`) to the address, or to `notify_webhook_url` when
//! the address is empty. Headers: `X-Tousu-Timestamp` (unix seconds),
//! `X-Tousu-Event` (the cause event type) and, with
//! `notify_webhook_secret`, `X-Tousu-Signature: sha256=<hex HMAC-SHA256(
//! secret, "{timestamp}.{body}")>`. 2xx sent; 408/429/5xx transient (with
//! `Retry-After`); other statuses permanent.

use serde_json::json;
use tousu_kit::Config;

use super::{
    SendError, Sent, execute, hmac_sha256, not_configured, parse_http_url, permanent, setting_url,
    unix_seconds, url_endpoint,
};
use crate::model::Message;

pub(super) struct Webhook {
    http: reqwest::Client,
    default: Option<reqwest::Url>,
    secret: String,
}

impl Webhook {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<Webhook> {
        Ok(Webhook {
            http,
            default: setting_url("notify_webhook_url", &config.notify_webhook_url)?,
            secret: config.notify_webhook_secret.clone(),
        })
    }

    fn target(&self, address: &str) -> Result<reqwest::Url, SendError> {
        if address.is_empty() {
            return self.default.clone().ok_or_else(|| {
                not_configured(
                    "webhook",
                    "notify_webhook_url, or give a URL as the address",
                )
            });
        }
        let mut url = parse_http_url(address)
            .ok_or_else(|| permanent(None, "webhook: the address is not an http(s) URL"))?;
        url.set_fragment(None);
        Ok(url)
    }

    /// `webhook:host[:port]/path`, plus a fingerprint of the query (which
    /// may hold a token).
    pub(super) fn endpoint(&self, address: &str) -> Option<String> {
        let url = self.target(address).ok()?;
        Some(url_endpoint(
            "webhook",
            &url,
            url.path(),
            url.query().unwrap_or(""),
        ))
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        let url = self.target(address)?;
        let body = serde_json::to_vec(&body(message))
            .map_err(|e| permanent(None, format!("webhook: cannot encode the body: {e}")))?;
        let timestamp = unix_seconds();
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Tousu-Timestamp", timestamp.to_string())
            .header("X-Tousu-Event", header_safe(&message.event_type));
        if !self.secret.is_empty() {
            request = request.header(
                "X-Tousu-Signature",
                signature(&self.secret, timestamp, &body),
            );
        }
        execute(request.body(body)).await?.into_result()
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub(super) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

fn body(message: &Message) -> serde_json::Value {
    json!({
        "event_type": message.event_type,
        "event_id": message.event_id,
        "complaint_id": message.complaint_id,
        "tracking_no": message.tracking_no,
        "language": message.language,
        "subject": message.subject,
        "text": message.text,
        "link": message.link,
        "ack_link": message.ack_link,
        "data": message.data,
    })
}

fn header_safe(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_formula() {
        // hex(HMAC-SHA256("s3cret", "1700000000.{}")), recomputed from
        // RFC 2104 over sha2's plain digest.
        let expected = {
            use sha2::{Digest, Sha256};
            let mut k = [0u8; 64];
            k[..6].copy_from_slice(b"s3cret");
            let inner: Vec<u8> = k
                .iter()
                .map(|b| b ^ 0x36)
                .chain(*b"1700000000.{}")
                .collect();
            let inner = Sha256::digest(&inner);
            let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner).collect();
            format!("sha256={}", hex::encode(Sha256::digest(&outer)))
        };
        assert_eq!(signature("s3cret", 1_700_000_000, b"{}"), expected);
    }

    #[test]
    fn targets_and_endpoints() {
        let mut config = Config::defaults("notify");
        let http = reqwest::Client::new();
        let none = Webhook::new(&config, http.clone()).unwrap();
        assert!(matches!(none.target(""), Err(SendError::Permanent { .. })));
        assert!(matches!(
            none.target("mailto:x"),
            Err(SendError::Permanent { .. })
        ));
        config.notify_webhook_url = "https://hooks.example/tousu?token=abc".into();
        let w = Webhook::new(&config, http).unwrap();
        assert_eq!(
            w.endpoint("").as_deref(),
            Some("webhook:hooks.example/tousu#906b1a00")
        );
        assert_eq!(
            w.endpoint("http://127.0.0.1:9000/in#frag").as_deref(),
            Some("webhook:127.0.0.1:9000/in")
        );
    }
}
