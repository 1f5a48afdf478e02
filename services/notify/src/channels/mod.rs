//! Channels: send one rendered [`Message`] to one address.
//!
//! | channel | address (a roster member's contact) |
//! |---|---|
//! | `email` | an email address |
//! | `sms` | an E.164 phone number |
//! | `wecom` | a user id to @mention through the default group robot, or a robot webhook URL of its own |
//! | `dingtalk` | a mobile / user id to @mention through the default robot, or a robot webhook URL |
//! | `feishu` | an open_id to @mention through the default bot, or a bot webhook URL |
//! | `webhook` | a URL (empty: the default `notify_webhook_url`) |
//! | `wechat` | a complainant's openid (customer-service message) |

use std::time::Duration;

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
    _private: (),
}

impl Channels {
    /// Builds the channels (HTTP client, SMTP pool) from the settings;
    /// channels without settings answer `Permanent` "not configured".
    pub fn new(_config: &Config) -> anyhow::Result<Channels> {
        Ok(Channels { _private: () })
    }

    /// Sends `message` to `address` on `channel`.
    pub async fn send(
        &self,
        channel: &str,
        _address: &str,
        _message: &Message,
    ) -> Result<Sent, SendError> {
        Err(SendError::Permanent {
            status: None,
            detail: format!("channel {channel} is not implemented yet"),
        })
    }

    /// The endpoint a send goes to, for the circuit breaker: one key per
    /// SMTP server / robot webhook / gateway (no secrets in it).
    pub fn endpoint(&self, channel: &str, _address: &str) -> String {
        channel.to_owned()
    }
}
