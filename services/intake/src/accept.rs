//! The one path every accepted message takes, whatever the transport:
//! validate the fields → check and store evidence → build the intent
//! (dedup key, threading, acknowledgement) → group commit.

use std::time::Duration;

use axum::http::StatusCode;
use tousu_channels::Inbound;
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use tousu_proto::v1 as pb;

use crate::commit::{Intent, Receipt};
use crate::store::Intake;
use crate::submission;

/// Prefix of the thread key a WeChat message carries for its openid; intake
/// turns it into a merge window.
const WECHAT_OPENID_KEY: &str = "wechat:openid:";

/// Why a message was not accepted.
#[derive(Debug, Clone)]
pub enum Rejection {
    /// 400: fields that are missing or invalid, each named.
    Invalid(Vec<FieldError>),
    /// 413: an attachment over the limit.
    TooLarge(FieldError),
    /// 503: not committed (database, object store or shutdown).
    Unavailable(String),
}

impl Rejection {
    pub fn problem(&self) -> Problem {
        match self {
            Rejection::Invalid(errors) => Problem::validation(errors.clone()),
            Rejection::TooLarge(e) => Problem {
                errors: vec![e.clone()],
                ..Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Attachment too large",
                    format!("{}: {}", e.field, e.message),
                )
            },
            Rejection::Unavailable(_) => Problem::not_ready(),
        }
    }
}

/// The default dedup key of a channel message: `<channel>:<message id>`.
pub fn dedup_key(channel: Channel, inbound: &Inbound) -> Option<String> {
    inbound
        .fields
        .channel_message_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| format!("{}:{id}", channel.as_str()))
}

/// Validates and commits one message. `answered_inline` says the
/// transport gives the tracking number in its own answer (WeChat passive
/// reply, the form's confirmation page, the API's 202).
pub async fn accept(
    intake: &Intake,
    channel: Channel,
    inbound: Inbound,
    dedup_key: Option<String>,
    answered_inline: bool,
) -> Result<Receipt, Rejection> {
    let Inbound {
        fields,
        attachments,
        mut thread_keys,
        mut reply_to,
        tracking_refs,
        original,
        extra,
    } = inbound;
    let mut valid = submission::validate(channel, fields).map_err(Rejection::Invalid)?;

    let max = intake.evidence.max_bytes;
    if let Some((i, a)) = attachments
        .iter()
        .enumerate()
        .find(|(_, a)| a.data.len() > max)
    {
        return Err(Rejection::TooLarge(FieldError {
            field: format!("attachments[{i}]"),
            message: format!(
                "{} is {} bytes; the limit is {max} bytes",
                if a.filename.is_empty() {
                    "the file"
                } else {
                    &a.filename
                },
                a.data.len()
            ),
        }));
    }
    for a in &attachments {
        let stored = intake.evidence.put(a).await.map_err(|e| {
            tracing::error!(error = %e, "evidence not stored");
            Rejection::Unavailable(format!("evidence not stored: {e}"))
        })?;
        valid.content.attachments.push(stored);
    }
    if !original.is_empty() {
        valid.content.original = original;
    }
    valid.content.channel_details.extend(extra);

    // Several WeChat messages from one openid within the window are one complaint.
    let mut merge = None;
    if channel == Channel::WeChat {
        let is_openid_key = |k: &String| k.starts_with(WECHAT_OPENID_KEY);
        let key = thread_keys
            .iter()
            .chain(&reply_to)
            .find(|k| is_openid_key(k))
            .cloned();
        thread_keys.retain(|k| !is_openid_key(k));
        reply_to.retain(|k| !is_openid_key(k));
        let window = intake.config.wechat_merge_secs;
        if let Some(key) = key.filter(|_| window > 0) {
            merge = Some((key, Duration::from_secs(window)));
        }
    }

    let c = &valid.complainant;
    let address = match channel {
        Channel::Email => c.email.clone(),
        Channel::WeChat => c.wechat_openid.clone(),
        Channel::Forum => c.forum_username.clone(),
        _ if !c.email.is_empty() => c.email.clone(),
        _ => c.phone.clone(),
    };
    let ack = pb::Acknowledgement {
        channel: tousu_bus::channel_to_pb(channel) as i32,
        address,
        reply_message_id: if channel == Channel::Email {
            valid.channel_message_id.clone()
        } else {
            String::new()
        },
        subject: valid.content.title.clone(),
        language: valid.content.language.clone(),
        answered_inline,
    };
    let mut intent = Intent::new(valid, dedup_key, ack);
    intent.thread_keys = thread_keys;
    intent.reply_to = reply_to;
    intent.tracking_refs = tracking_refs;
    intent.merge = merge;
    intake
        .submit(intent)
        .await
        .map_err(|e| Rejection::Unavailable(e.0))
}
