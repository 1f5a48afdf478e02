//! Email over SMTP (`notify_smtp_url`), through lettre's pooled async
//! transport: multipart/alternative text + HTML, From `notify_smtp_from`,
//! and In-Reply-To / References from `Message.in_reply_to` so a reply to a
//! complainant threads under their original mail. SMTP 4xx and connection
//! trouble are transient, 5xx permanent.

use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tousu_kit::Config;

use super::{SendError, Sent, permanent, short, transient, with_links};
use crate::model::Message;

pub(super) struct Email {
    /// Built at the first send: lettre's pool needs a running Tokio
    /// runtime, `Channels::new` does not.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    url: String,
    pool_size: u32,
    from: Mailbox,
    /// `email:host:port`.
    endpoint: String,
    timeout: Duration,
}

impl Email {
    pub(super) fn new(config: &Config, timeout: Duration) -> anyhow::Result<Option<Email>> {
        let url = config.notify_smtp_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = config
            .notify_smtp_from
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("notify_smtp_from: not an email address ({e})"))?;
        // lettre's errors here name the scheme or the host, never the password.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("notify_smtp_url: {e}"))?;
        let parsed =
            reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("notify_smtp_url: {e}"))?;
        let host = parsed.host_str().unwrap_or("?");
        let port = parsed
            .port()
            .unwrap_or(match (parsed.scheme(), parsed.query()) {
                ("smtps", _) => 465,
                (_, Some(q)) if q.contains("tls=") => 587,
                _ => 25,
            });
        Ok(Some(Email {
            transport: OnceLock::new(),
            url: url.to_owned(),
            pool_size: config.notify_workers.clamp(1, 16),
            from,
            endpoint: format!("email:{host}:{port}"),
            timeout,
        }))
    }

    pub(super) fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, SendError> {
        if let Some(t) = self.transport.get() {
            return Ok(t);
        }
        // Checked in `new`; a failure here would be lettre changing its mind.
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| permanent(None, format!("notify_smtp_url: {e}")))?;
        let transport = builder
            .timeout(Some(self.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(self.pool_size)
                    .idle_timeout(Duration::from_secs(60)),
            )
            .build();
        Ok(self.transport.get_or_init(|| transport))
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        let to: Mailbox = address.parse().map_err(|e| {
            permanent(
                None,
                format!("email: the address is not an email address ({e})"),
            )
        })?;
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain());
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&message.subject))
            .message_id(Some(message_id.clone()));
        if let Some(id) = message_id_of(&message.in_reply_to) {
            builder = builder.in_reply_to(id.clone()).references(id);
        }
        let text = with_links(&message.text, message, false);
        let email = if message.html.trim().is_empty() {
            builder.singlepart(SinglePart::plain(text))
        } else {
            builder.multipart(MultiPart::alternative_plain_html(
                text,
                message.html.clone(),
            ))
        }
        .map_err(|e| permanent(None, format!("cannot build the email: {e}")))?;

        let transport = self.transport()?;
        let sent = tokio::time::timeout(self.timeout, transport.send(email))
            .await
            .map_err(|_| transient(None, format!("smtp: timeout after {:?}", self.timeout)))?;
        match sent {
            Ok(response) => Ok(Sent {
                status: u16::from(response.code()),
                detail: short(&format!(
                    "{} {}; message-id {message_id}",
                    response.code(),
                    response.first_line().unwrap_or("")
                )),
            }),
            Err(e) => Err(smtp_error(&e)),
        }
    }
}

/// SMTP 4xx → transient, 5xx → permanent; a message lettre refuses to
/// send → permanent; network, TLS, timeouts → transient.
fn smtp_error(e: &lettre::transport::smtp::Error) -> SendError {
    let detail = short(&format!("smtp: {}", super::error_chain(e)));
    let status = e.status().map(u16::from);
    if e.is_permanent() || e.is_client() {
        SendError::Permanent { status, detail }
    } else {
        SendError::Transient {
            status,
            detail,
            retry_after: None,
        }
    }
}

/// A header value on one line.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<id>` from what the planner stored: brackets added when missing,
/// anything that is not a plain msg-id character dropped (no header
/// injection), `None` when nothing is left.
fn message_id_of(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let inner = match (raw.find('<'), raw.find('>')) {
        (Some(a), Some(b)) if a < b => &raw[a + 1..b],
        _ => raw,
    };
    let clean: String = inner
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        .collect();
    (!clean.is_empty()).then(|| format!("<{clean}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(
            message_id_of("<a1@mail.example>").as_deref(),
            Some("<a1@mail.example>")
        );
        assert_eq!(
            message_id_of("a1@mail.example").as_deref(),
            Some("<a1@mail.example>")
        );
        assert_eq!(
            message_id_of("<a1@x>\r\nBcc: evil@x").as_deref(),
            Some("<a1@x>")
        );
        assert_eq!(
            message_id_of("a1@x\r\nBcc: e@x").as_deref(),
            Some("<a1@xBcc:e@x>")
        );
        assert_eq!(message_id_of("  ").as_deref(), None);
    }

    #[test]
    fn subjects_on_one_line() {
        assert_eq!(one_line("投诉\r\n超时  \n提醒"), "投诉 超时 提醒");
    }

    #[test]
    fn endpoints_without_passwords() {
        let mut config = Config::defaults("notify");
        config.notify_smtp_url = "smtp://user:s3cret@mail.example:2525".into();
        let email = Email::new(&config, Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(email.endpoint(), "email:mail.example:2525");
        config.notify_smtp_url = "smtps://user:s3cret@mail.example".into();
        let email = Email::new(&config, Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(email.endpoint(), "email:mail.example:465");
        config.notify_smtp_url = "gopher://mail.example".into();
        let err = Email::new(&config, Duration::from_secs(5))
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("notify_smtp_url:"), "{err}");
        config.notify_smtp_url = "smtp://mail.example".into();
        config.notify_smtp_from = "not an address".into();
        let err = Email::new(&config, Duration::from_secs(5))
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("notify_smtp_from:"), "{err}");
    }
}
