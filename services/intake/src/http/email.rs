//! `POST /v1/channels/email`: one raw RFC 5322 message, as a mail gateway
//! delivers it. Replies join their complaint; auto-replies and bounces are
//! answered 200 `ignored` and never become complaints.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tousu_channels::email::{self, Email};
use tousu_domain::Channel;

use super::{App, AppState, Raw, answer, ignored_response, malformed, read_request, reject};
use crate::accept;

const PATH: &str = "/v1/channels/email";

pub(super) async fn handle(
    State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = app.intake.config.max_email_bytes;
    match read_request(&app, Channel::Email, PATH, headers, query, body, limit).await {
        Ok(raw) => submit(&app, raw).await,
        Err(response) => response,
    }
}

pub(super) async fn submit(app: &App, raw: Raw) -> Response {
    if let Err(p) = super::check_api_key(app, &raw) {
        return reject(app, Some(Channel::Email), PATH, &raw, p).await;
    }
    let media = raw.media_type();
    if !matches!(
        media.as_deref(),
        Some("message/rfc822") | Some("application/octet-stream")
    ) {
        let p = super::unsupported_media_type(media.as_deref(), "message/rfc822");
        return reject(app, Some(Channel::Email), PATH, &raw, p).await;
    }
    let inbound = match email::parse(&raw.body) {
        Ok(Email::Message(m)) => m,
        Ok(Email::Ignored(reason)) => {
            metrics::counter!("tousu_intake_ignored_total", "channel" => "email", "reason" => reason)
                .increment(1);
            return ignored_response(reason);
        }
        Err(e) => {
            let p = malformed(&e.field, e.message);
            return reject(app, Some(Channel::Email), PATH, &raw, p).await;
        }
    };
    let key = accept::dedup_key(Channel::Email, &inbound);
    let result = accept::accept(&app.intake, Channel::Email, inbound, key, false).await;
    answer(app, Channel::Email, PATH, &raw, result).await
}
