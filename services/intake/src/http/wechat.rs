//! `GET|POST /v1/channels/wechat`: the WeChat official account (公众号)
//! server push protocol, plaintext and safe (AES) mode.
//!
//! Tencent waits 5 s for an answer and retries three times, so every
//! message is deduplicated on its `MsgId` and answered with the same
//! passive reply (the tracking number) each time. Events (`subscribe`,
//! menu clicks) answer `success` and make no complaint. Several messages
//! from one openid within `wechat_merge_secs` join one complaint.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tousu_channels::wechat::{self, Cipher};
use tousu_domain::Channel;

use super::{
    App, AppState, Raw, malformed, not_configured, read_request, reject, text_response,
    unauthorized,
};
use crate::accept::{self, Rejection};
use crate::commit::Receipt;

const PATH: &str = "/v1/channels/wechat";
/// Tencent's timestamps must be within 5 minutes of ours.
const WINDOW_SECS: i64 = 300;

/// URL verification: `echostr` when the signature holds.
pub(super) async fn handle_verify(State(app): AppState, RawQuery(query): RawQuery) -> Response {
    let raw = Raw {
        query: query.unwrap_or_default(),
        ..Raw::default()
    };
    let token = &app.intake.config.wechat_token;
    if token.is_empty() {
        return not_configured("WeChat", "wechat_token").into_response();
    }
    let q = |n: &str| raw.query_param(n).unwrap_or_default();
    if wechat::verify_signature(token, &q("timestamp"), &q("nonce"), &q("signature")) {
        text_response(StatusCode::OK, "text/plain; charset=utf-8", q("echostr"))
    } else {
        reject(
            &app,
            Some(Channel::WeChat),
            PATH,
            &raw,
            unauthorized("signature does not match token, timestamp and nonce"),
        )
        .await
    }
}

pub(super) async fn handle(
    State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = app.intake.config.max_body_bytes;
    match read_request(&app, Channel::WeChat, PATH, headers, query, body, limit).await {
        Ok(raw) => submit(&app, raw).await,
        Err(response) => response,
    }
}

pub(super) async fn submit(app: &App, raw: Raw) -> Response {
    let config = &app.intake.config;
    if config.wechat_token.is_empty() {
        return not_configured("WeChat", "wechat_token").into_response();
    }
    let q = |n: &str| raw.query_param(n).unwrap_or_default();
    let (timestamp, nonce) = (q("timestamp"), q("nonce"));
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if !raw.replay && !wechat::timestamp_fresh(&timestamp, now, WINDOW_SECS) {
        let p = unauthorized(format!(
            "timestamp {timestamp:?} is more than {WINDOW_SECS} s from now: stale or replayed"
        ));
        return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
    }
    let Ok(body) = std::str::from_utf8(&raw.body) else {
        let p = malformed("body", "the XML is not valid UTF-8");
        return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
    };
    let safe_mode = q("encrypt_type") == "aes";
    let cipher = if safe_mode {
        if config.wechat_aes_key.is_empty() {
            return not_configured("WeChat safe mode", "wechat_aes_key and wechat_app_id")
                .into_response();
        }
        match Cipher::new(&config.wechat_aes_key, &config.wechat_app_id) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "wechat_aes_key unusable");
                return not_configured("WeChat safe mode", "a valid wechat_aes_key")
                    .into_response();
            }
        }
    } else {
        None
    };

    let xml = match &cipher {
        Some(cipher) => {
            let encrypt = match wechat::encrypted_envelope(body) {
                Ok(e) => e,
                Err(e) => {
                    let p = malformed(&e.field, e.message);
                    return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
                }
            };
            let msg_signature = q("msg_signature");
            if !raw.replay
                && !wechat::verify_msg_signature(
                    &config.wechat_token,
                    &timestamp,
                    &nonce,
                    &encrypt,
                    &msg_signature,
                )
            {
                let p = unauthorized(
                    "msg_signature does not match token, timestamp, nonce and Encrypt",
                );
                return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
            }
            match cipher.decrypt(&encrypt) {
                Ok(xml) => xml,
                Err(e) => {
                    let p = malformed(&e.field, e.message);
                    return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
                }
            }
        }
        None => {
            if !raw.replay
                && !wechat::verify_signature(
                    &config.wechat_token,
                    &timestamp,
                    &nonce,
                    &q("signature"),
                )
            {
                let p = unauthorized("signature does not match token, timestamp and nonce");
                return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
            }
            body.to_owned()
        }
    };

    let message = match wechat::parse_message(&xml) {
        Ok(m) => m,
        Err(e) => {
            let p = malformed(&e.field, e.message);
            return reject(app, Some(Channel::WeChat), PATH, &raw, p).await;
        }
    };
    let Some(inbound) = message.to_inbound() else {
        // Events are answered, never complaints.
        return text_response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "success".into(),
        );
    };
    let language = crate::submission::detect_language(
        inbound.fields.description.as_deref().unwrap_or_default(),
    );
    let key = Some(format!("wechat:{}", message.dedup_id()));
    match accept::accept(&app.intake, Channel::WeChat, inbound, key, true).await {
        Ok(receipt) => {
            let content = reply_text(&receipt, language);
            let reply = wechat::text_reply(&message.from_user, &message.to_user, now, &content);
            let body = match &cipher {
                Some(cipher) => wechat::encrypted_reply(
                    cipher,
                    &config.wechat_token,
                    &now.to_string(),
                    &nonce_for_reply(),
                    &reply,
                    random16(),
                ),
                None => reply,
            };
            text_response(StatusCode::OK, "application/xml; charset=utf-8", body)
        }
        Err(Rejection::Unavailable(e)) => {
            tracing::error!(error = %e, "WeChat message not committed");
            // No answer within 5 s makes Tencent retry: the retry finds
            // the message again (nothing was stored).
            tousu_kit::Problem::not_ready().into_response()
        }
        Err(r) => reject(app, Some(Channel::WeChat), PATH, &raw, r.problem()).await,
    }
}

/// The passive reply: the tracking number, in the complainant's language.
fn reply_text(r: &Receipt, language: &str) -> String {
    match (language, r.follow_up) {
        ("en", false) => format!(
            "Your complaint has been received. Tracking number: {}. We will get back to you soon.",
            r.tracking_no
        ),
        ("en", true) => format!(
            "Your message has been added to complaint {}.",
            r.tracking_no
        ),
        (_, false) => format!(
            "您的投诉已受理，受理编号：{}。我们会尽快处理并回复您。",
            r.tracking_no
        ),
        (_, true) => format!("您的补充内容已加入投诉 {}。", r.tracking_no),
    }
}

fn random16() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

fn nonce_for_reply() -> String {
    let b = random16();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]).to_string()
}
