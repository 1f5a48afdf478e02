//! `POST /v1/channels/phone`: a call record from the call centre (or a
//! FreeSWITCH `mod_json_cdr` body).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;

use super::{App, AppState, Raw, answer, read_request, reject};
use crate::accept;

const PATH: &str = "/v1/channels/phone";

pub(super) async fn handle(
    State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = app.intake.config.max_body_bytes;
    match read_request(&app, Channel::Phone, PATH, headers, query, body, limit).await {
        Ok(raw) => submit(&app, raw).await,
        Err(response) => response,
    }
}

pub(super) async fn submit(app: &App, raw: Raw) -> Response {
    if let Err(p) = super::check_api_key(app, &raw) {
        return reject(app, Some(Channel::Phone), PATH, &raw, p).await;
    }
    let media = raw.media_type();
    if media.as_deref() != Some("application/json") {
        let p = super::unsupported_media_type(media.as_deref(), "application/json");
        return reject(app, Some(Channel::Phone), PATH, &raw, p).await;
    }
    let inbound = match tousu_channels::phone::parse(&raw.body) {
        Ok(i) => i,
        Err(errors) => {
            let p = Problem::validation(
                errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: e.field,
                        message: e.message,
                    })
                    .collect(),
            );
            return reject(app, Some(Channel::Phone), PATH, &raw, p).await;
        }
    };
    let key = accept::dedup_key(Channel::Phone, &inbound);
    let result = accept::accept(&app.intake, Channel::Phone, inbound, key, false).await;
    answer(app, Channel::Phone, PATH, &raw, result).await
}
