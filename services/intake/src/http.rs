//! The HTTP edge: `POST /v1/complaints` (web form: JSON or urlencoded).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;

use crate::store::Intake;
use crate::submission::{self, Fields};

#[derive(Clone)]
struct AppState {
    intake: Arc<Intake>,
    max_body: usize,
}

pub fn router(intake: Arc<Intake>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/complaints", post(submit_webform))
        .with_state(AppState { intake, max_body })
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Reads the body up to `max` bytes without buffering more than that.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Problem> {
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
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_large())
}

fn body_problem(message: String) -> Problem {
    let mut p = Problem::validation(vec![FieldError {
        field: "body".into(),
        message,
    }]);
    p.title = "Malformed request body".into();
    p.kind = "https://tousu.dev/problems/malformed".into();
    p
}

fn parse_fields(media: Option<&str>, body: &[u8]) -> Result<Fields, Problem> {
    match media {
        Some("application/json") => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| body_problem(format!("malformed JSON: {e}")))?;
            let obj = value
                .as_object()
                .ok_or_else(|| body_problem("expected a JSON object".into()))?;
            submission::fields_from_json(obj).map_err(Problem::validation)
        }
        Some("application/x-www-form-urlencoded") => {
            let text = std::str::from_utf8(body)
                .map_err(|_| body_problem("the form is not valid UTF-8".into()))?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
                .map_err(|e| body_problem(format!("malformed form: {e}")))?;
            Ok(submission::fields_from_form(&pairs))
        }
        other => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!(
                "{} is not accepted; send application/json or application/x-www-form-urlencoded",
                other.unwrap_or("a body without Content-Type")
            ),
        )),
    }
}

async fn submit_webform(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let media = media_type(&headers);
    let reject = |problem: Problem, body: &[u8]| {
        let intake = state.intake.clone();
        let media = media.clone();
        let body = body.to_vec();
        async move {
            intake
                .quarantine(Channel::WebForm, &problem.detail, media.as_deref(), &body)
                .await;
            problem.into_response()
        }
    };
    let bytes = match read_body(&headers, body, state.max_body).await {
        Ok(b) => b,
        Err(p) => return reject(p, b"").await,
    };
    let fields = match parse_fields(media.as_deref(), &bytes) {
        Ok(f) => f,
        Err(p) => return reject(p, &bytes).await,
    };
    let valid = match submission::validate(Channel::WebForm, fields) {
        Ok(v) => v,
        Err(errors) => return reject(Problem::validation(errors), &bytes).await,
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if idempotency_key.is_some_and(|k| k.len() > 255) {
        let p = Problem::validation(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "longer than 255 characters".into(),
        }]);
        return reject(p, &bytes).await;
    }
    let dedup_key = match (idempotency_key, valid.channel_message_id.as_str()) {
        (Some(k), _) => Some(format!("webform:idem:{k}")),
        (None, "") => None,
        (None, ext) => Some(format!("webform:{ext}")),
    };
    match state.intake.submit(valid, dedup_key).await {
        Ok(r) => {
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
            });
            (status, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "complaint not committed");
            Problem::not_ready().into_response()
        }
    }
}
