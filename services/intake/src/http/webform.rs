//! `POST /v1/complaints`: the web form API (JSON, urlencoded or multipart
//! with attachments as evidence). `Idempotency-Key` makes retries safe.

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tousu_channels::{Attachment, Inbound};
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;

use super::{App, AppState, Raw, answer, malformed, read_request, reject};
use crate::accept;
use crate::submission;

const PATH: &str = "/v1/complaints";
/// Deepest JSON accepted (serde_json would stop at 128; a form is flat).
const MAX_JSON_DEPTH: usize = 32;

pub(super) async fn handle(
    axum::extract::State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = body_limit(&app, &headers);
    match read_request(&app, Channel::WebForm, PATH, headers, query, body, limit).await {
        Ok(raw) => submit(&app, raw).await,
        Err(response) => response,
    }
}

/// JSON and urlencoded bodies are bounded by `max_body_bytes`; multipart
/// (with files) by `max_email_bytes`.
pub(super) fn body_limit(app: &App, headers: &HeaderMap) -> usize {
    let multipart = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if multipart {
        app.intake.config.max_email_bytes
    } else {
        app.intake.config.max_body_bytes
    }
}

pub(super) async fn submit(app: &App, raw: Raw) -> Response {
    if let Err(p) = super::check_api_key(app, &raw) {
        return reject(app, Some(Channel::WebForm), PATH, &raw, p).await;
    }
    let inbound = match parse(&raw).await {
        Ok(i) => i,
        Err(p) => return reject(app, Some(Channel::WebForm), PATH, &raw, p).await,
    };
    let idempotency_key = raw.header("idempotency-key").map(str::to_owned);
    if idempotency_key.as_ref().is_some_and(|k| k.len() > 255) {
        let p = Problem::validation(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "longer than 255 characters".into(),
        }]);
        return reject(app, Some(Channel::WebForm), PATH, &raw, p).await;
    }
    let dedup_key = match idempotency_key {
        Some(k) => Some(format!("webform:idem:{k}")),
        None => accept::dedup_key(Channel::WebForm, &inbound),
    };
    let result = accept::accept(&app.intake, Channel::WebForm, inbound, dedup_key, true).await;
    answer(app, Channel::WebForm, PATH, &raw, result).await
}

/// The fields and files of a web-form body, by media type.
pub(super) async fn parse(raw: &Raw) -> Result<Inbound, Problem> {
    let media = raw.media_type();
    match media.as_deref() {
        Some("application/json") => {
            let value: Value = serde_json::from_slice(&raw.body)
                .map_err(|e| malformed("body", format!("malformed JSON: {e}")))?;
            if depth(&value) > MAX_JSON_DEPTH {
                return Err(malformed(
                    "body",
                    format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
                ));
            }
            let obj = value
                .as_object()
                .ok_or_else(|| malformed("body", "expected a JSON object"))?;
            let fields = submission::fields_from_json(obj).map_err(Problem::validation)?;
            Ok(Inbound {
                fields,
                ..Inbound::default()
            })
        }
        Some("application/x-www-form-urlencoded") => {
            let text = std::str::from_utf8(&raw.body)
                .map_err(|_| malformed("body", "the form is not valid UTF-8"))?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
                .map_err(|e| malformed("body", format!("malformed form: {e}")))?;
            Ok(Inbound {
                fields: submission::fields_from_form(&pairs),
                ..Inbound::default()
            })
        }
        Some("multipart/form-data") => {
            let (pairs, attachments) = multipart(raw).await?;
            Ok(Inbound {
                fields: submission::fields_from_form(&pairs),
                attachments,
                ..Inbound::default()
            })
        }
        other => Err(super::unsupported_media_type(
            other,
            "application/json, application/x-www-form-urlencoded or multipart/form-data",
        )),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Text fields and file parts of a `multipart/form-data` body (already
/// read within its limit).
pub(super) async fn multipart(
    raw: &Raw,
) -> Result<(Vec<(String, String)>, Vec<Attachment>), Problem> {
    let content_type = raw.header("content-type").unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| malformed("body", format!("multipart without a usable boundary: {e}")))?;
    let body = raw.body.clone();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    let mut files = Vec::new();
    loop {
        let field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(malformed("body", format!("malformed multipart body: {e}"))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                let media_type = field
                    .content_type()
                    .map(|m| m.essence_str().to_ascii_lowercase())
                    .unwrap_or_else(|| "application/octet-stream".into());
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| malformed(&name, format!("unreadable file part: {e}")))?;
                // A file input left empty still sends a part with no name and no bytes.
                if !(filename.is_empty() && data.is_empty()) {
                    files.push(Attachment {
                        filename,
                        media_type,
                        data: data.to_vec(),
                    });
                }
            }
            None => {
                let value = field
                    .bytes()
                    .await
                    .map_err(|e| malformed(&name, format!("unreadable part: {e}")))?;
                let value = String::from_utf8(value.to_vec())
                    .map_err(|_| malformed(&name, "is not valid UTF-8"))?;
                pairs.push((name, value));
            }
        }
    }
    Ok((pairs, files))
}
