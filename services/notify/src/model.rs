//! What the planner hands the sender: a rendered message for one
//! recipient on one channel, stored as JSON in `deliveries.message`.

use serde::{Deserialize, Serialize};

/// The channels notify speaks (`deliveries.channel`, policy `channels`,
/// roster `contacts` keys).
pub const CHANNELS: [&str; 7] = [
    "email", "sms", "wecom", "dingtalk", "feishu", "webhook", "wechat",
];

/// A rendered notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// `zh-CN` or `en`.
    pub language: String,
    /// Email subject; the first line / title on robots and SMS.
    pub subject: String,
    /// Plain text body (email text part, SMS, WeChat, robots' text type).
    pub text: String,
    /// Email HTML part.
    pub html: String,
    /// Markdown body for WeCom / DingTalk / Feishu.
    pub markdown: String,
    /// The complaint in the console.
    pub link: String,
    /// `GET/POST` here acknowledges (ladder notifications only).
    pub ack_link: String,
    /// Email threading for replies to the complainant: the original
    /// message's Message-ID (`<…>`), set as In-Reply-To and References.
    pub in_reply_to: String,
    /// The cause event.
    pub event_type: String,
    pub event_id: String,
    pub complaint_id: String,
    pub tracking_no: String,
    /// Machine-readable facts for webhook consumers (event, complaint,
    /// department, grade, deadline …), contact data masked.
    pub data: serde_json::Value,
}
