//! The HTTP edge: the web form API, the public HTML form, the channel
//! webhooks (email, WeChat, forum, phone) and the quarantine API.
//!
//! Every channel handler is a function of a [`Raw`] request (headers,
//! query, body already read within its limit), so that a quarantined
//! request can be replayed through exactly the code that rejected it.

mod admin;
mod email;
mod form;
mod forum;
mod phone;
mod webform;
mod wechat;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;

use crate::accept::Rejection;
use crate::commit::Receipt;
use crate::store::{Intake, Rejected};

pub use form::RateLimiter;

/// Headers kept with a quarantined request so that a replay sees what the
/// handler saw. Credentials (`Authorization`) are never kept.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "idempotency-key",
    "accept-language",
    "x-discourse-event",
    "x-discourse-event-id",
    "x-discourse-instance",
    "x-discourse-event-signature",
    "x-tousu-signature",
];

#[derive(Clone)]
pub(crate) struct App {
    pub intake: Arc<Intake>,
    pub form_limiter: Arc<RateLimiter>,
}

/// A request as a channel handler sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    pub headers: HeaderMap,
    /// The query string, undecoded.
    pub query: String,
    pub body: Bytes,
    /// A replay by an operator: credentials, signatures and timestamps are
    /// not checked again (the operator vouches for the message); every
    /// other check is.
    pub replay: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The media type without parameters, lower-case.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// What quarantine keeps besides the body.
    pub fn meta(&self, path: &str) -> Value {
        let headers: serde_json::Map<String, Value> = KEPT_HEADERS
            .iter()
            .filter_map(|h| self.header(h).map(|v| (h.to_string(), Value::from(v))))
            .collect();
        json!({"transport": "http", "path": path, "query": self.query, "headers": headers})
    }
}

pub fn router(intake: Arc<Intake>) -> Router {
    let form_limiter = Arc::new(RateLimiter::per_minute(intake.config.form_rate_per_minute));
    Router::new()
        .route("/v1/complaints", post(webform::handle))
        .route("/form", get(form::page).post(form::handle))
        .route("/v1/channels/email", post(email::handle))
        .route(
            "/v1/channels/wechat",
            get(wechat::handle_verify).post(wechat::handle),
        )
        .route("/v1/channels/forum", post(forum::handle))
        .route("/v1/channels/phone", post(phone::handle))
        .route("/v1/quarantine", get(admin::list))
        .route("/v1/quarantine/{id}", get(admin::show))
        .route("/v1/quarantine/{id}/replay", post(admin::replay))
        .with_state(App {
            intake,
            form_limiter,
        })
}

/// Runs the handler of `path` on a quarantined request (see [`Raw::replay`]).
pub(crate) async fn replay(app: &App, path: &str, raw: Raw) -> Option<Response> {
    Some(match path {
        "/v1/complaints" => webform::submit(app, raw).await,
        "/v1/channels/email" => email::submit(app, raw).await,
        "/v1/channels/wechat" => wechat::submit(app, raw).await,
        "/v1/channels/forum" => forum::submit(app, raw).await,
        "/v1/channels/phone" => phone::submit(app, raw).await,
        "/form" => form::submit(app, raw, None).await,
        _ => return None,
    })
}

/// Reads the body up to `max` bytes without buffering more than that.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
    max: usize,
) -> Result<Raw, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!("the body is larger than {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_large())?;
    Ok(Raw {
        headers: headers.clone(),
        query: query.unwrap_or_default(),
        body,
        replay: false,
    })
}

/// Reads a channel request's body within `limit`; a body over it is
/// answered 413 (and the rejection quarantined) as the `Err` response.
pub(crate) async fn read_request(
    app: &App,
    channel: Channel,
    path: &str,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
    limit: usize,
) -> Result<Raw, Response> {
    match read_body(&headers, query, body, limit).await {
        Ok(raw) => Ok(raw),
        Err(p) => {
            let raw = Raw {
                headers,
                ..Raw::default()
            };
            Err(reject(app, Some(channel), path, &raw, p).await)
        }
    }
}

/// A malformed body (unparseable JSON, XML, MIME…): 400 naming `field`.
pub(crate) fn malformed(field: &str, message: impl Into<String>) -> Problem {
    let mut p = Problem::validation(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }]);
    p.title = "Malformed request body".into();
    p.kind = "https://tousu.dev/problems/malformed".into();
    p
}

pub(crate) fn unsupported_media_type(got: Option<&str>, accepted: &str) -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!(
            "{} is not accepted; send {accepted}",
            got.unwrap_or("a body without Content-Type")
        ),
    )
}

pub(crate) fn unauthorized(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Bad or missing credentials",
        detail,
    )
}

pub(crate) fn not_configured(channel: &str, settings: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "channel-not-configured",
        "Channel not configured",
        format!("the {channel} channel needs {settings} (see docs/configuration.md)"),
    )
}

/// Checks `Authorization: Bearer <key>` when API keys are configured.
pub(crate) fn check_api_key(app: &App, raw: &Raw) -> Result<(), Problem> {
    let keys = app.intake.config.api_key_list();
    if keys.is_empty() || raw.replay {
        return Ok(());
    }
    let given = raw
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    if keys
        .iter()
        .any(|k| tousu_channels::constant_time_eq(k.as_bytes(), given.as_bytes()))
    {
        Ok(())
    } else if given.is_empty() {
        Err(unauthorized("send Authorization: Bearer <API key>"))
    } else {
        Err(unauthorized("the API key is not valid"))
    }
}

/// Keeps the rejected request in quarantine and answers with `problem`.
pub(crate) async fn reject(
    app: &App,
    channel: Option<Channel>,
    path: &str,
    raw: &Raw,
    problem: Problem,
) -> Response {
    if !raw.replay {
        app.intake
            .quarantine(Rejected {
                channel,
                status: problem.status,
                reason: &problem.detail,
                content_type: raw.header("content-type"),
                body: &raw.body,
                meta: raw.meta(path),
            })
            .await;
    }
    problem.into_response()
}

/// The answer to an accepted (or not) message: the receipt, 503 when not
/// committed (nothing stored: the sender retries), else the rejection
/// (quarantined).
pub(crate) async fn answer(
    app: &App,
    channel: Channel,
    path: &str,
    raw: &Raw,
    result: Result<Receipt, Rejection>,
) -> Response {
    match result {
        Ok(r) => receipt_response(&r),
        Err(Rejection::Unavailable(e)) => {
            tracing::error!(error = %e, %channel, "message not committed");
            Problem::not_ready().into_response()
        }
        Err(r) => reject(app, Some(channel), path, raw, r.problem()).await,
    }
}

/// 202 for a new complaint or follow-up, 200 for a repeat.
pub(crate) fn receipt_response(r: &Receipt) -> Response {
    let status = if r.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = json!({
        "id": r.id,
        "tracking_no": r.tracking_no,
        "status": "received",
        "duplicate": r.duplicate,
        "follow_up": r.follow_up,
    });
    (status, axum::Json(body)).into_response()
}

/// 200 for a message that is deliberately not a complaint (auto-reply,
/// bounce, forum ping…).
pub(crate) fn ignored_response(reason: &str) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"status": "ignored", "reason": reason})),
    )
        .into_response()
}

pub(crate) fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The app state for handlers.
pub(crate) type AppState = State<App>;
