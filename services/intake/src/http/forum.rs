//! `POST /v1/channels/forum`: Discourse webhooks (`X-Discourse-Event`,
//! HMAC in `X-Discourse-Event-Signature`) and the generic forum JSON (HMAC
//! in `X-Tousu-Signature`). A post in a topic that is already a complaint
//! is a follow-up (跟帖) and raises its thread heat.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tousu_channels::forum::{self, Discourse};
use tousu_domain::Channel;

use super::{
    App, AppState, Raw, answer, ignored_response, malformed, not_configured, read_request, reject,
    unauthorized,
};
use crate::accept;

const PATH: &str = "/v1/channels/forum";

pub(super) async fn handle(
    State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = app.intake.config.max_body_bytes;
    match read_request(&app, Channel::Forum, PATH, headers, query, body, limit).await {
        Ok(raw) => submit(&app, raw).await,
        Err(response) => response,
    }
}

pub(super) async fn submit(app: &App, raw: Raw) -> Response {
    let media = raw.media_type();
    if media.as_deref() != Some("application/json") {
        let p = super::unsupported_media_type(media.as_deref(), "application/json");
        return reject(app, Some(Channel::Forum), PATH, &raw, p).await;
    }
    let config = &app.intake.config;
    let parsed = if let Some(event) = raw.header("x-discourse-event") {
        if config.discourse_secret.is_empty() {
            return not_configured("Discourse", "discourse_secret").into_response();
        }
        let signature = raw
            .header("x-discourse-event-signature")
            .unwrap_or_default();
        if !raw.replay
            && !forum::verify_signature(config.discourse_secret.as_bytes(), &raw.body, signature)
        {
            let p = unauthorized(if signature.is_empty() {
                "X-Discourse-Event-Signature is missing"
            } else {
                "X-Discourse-Event-Signature does not match the body"
            });
            return reject(app, Some(Channel::Forum), PATH, &raw, p).await;
        }
        let Some(instance) = raw.header("x-discourse-instance") else {
            let p = malformed("X-Discourse-Instance", "the header is required");
            return reject(app, Some(Channel::Forum), PATH, &raw, p).await;
        };
        match forum::parse_discourse(event, instance, &raw.body) {
            Ok(Discourse::Post(p)) => Ok(p),
            Ok(Discourse::Ignored(reason)) => return ignored_response(reason),
            Err(e) => Err(e),
        }
    } else {
        if config.forum_secret.is_empty() {
            return not_configured("generic forum", "forum_secret").into_response();
        }
        let signature = raw.header("x-tousu-signature").unwrap_or_default();
        if !raw.replay
            && !forum::verify_signature(config.forum_secret.as_bytes(), &raw.body, signature)
        {
            let p = unauthorized(if signature.is_empty() {
                "X-Tousu-Signature is missing"
            } else {
                "X-Tousu-Signature does not match the body"
            });
            return reject(app, Some(Channel::Forum), PATH, &raw, p).await;
        }
        forum::parse_generic(&raw.body)
    };
    let inbound = match parsed {
        Ok(i) => i,
        Err(e) => {
            let p = malformed(&e.field, e.message);
            return reject(app, Some(Channel::Forum), PATH, &raw, p).await;
        }
    };
    let key = accept::dedup_key(Channel::Forum, &inbound);
    let result = accept::accept(&app.intake, Channel::Forum, inbound, key, false).await;
    answer(app, Channel::Forum, PATH, &raw, result).await
}
