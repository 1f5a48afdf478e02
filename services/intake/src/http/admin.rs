//! The quarantine API (`tousu quarantine list|show|replay` uses it):
//!
//! - `GET /v1/quarantine?channel=&limit=&before=`: newest first, without bodies;
//! - `GET /v1/quarantine/{id}`: one entry with its body (text, or base64)
//!   and what a replay needs;
//! - `POST /v1/quarantine/{id}/replay`: runs the entry through the handler
//!   that rejected it again, now that the cause is fixed (a configuration,
//!   a connector bug, a parser bug). Credentials, signatures and timestamps
//!   are not checked again: the operator vouches for the message. Answers
//!   with what the handler answers, and records it on the entry.
//!
//! Protected by the API keys when they are configured.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tousu_kit::Problem;

use super::{App, AppState, Raw};

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    channel: Option<String>,
    limit: Option<i64>,
    before: Option<i64>,
}

type Row = (
    i64,
    String,
    i16,
    String,
    Option<String>,
    i32,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<String>,
);

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let raw = Raw {
        headers: headers.clone(),
        ..Raw::default()
    };
    super::check_api_key(app, &raw)
}

fn entry_json(r: &Row) -> Value {
    let time = |t: &OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "id": r.0,
        "channel": r.1,
        "status": r.2,
        "reason": r.3,
        "content_type": r.4,
        "size": r.5,
        "received_at": time(&r.6),
        "replayed_at": r.7.as_ref().map(time),
        "replay_result": r.8,
    })
}

/// The columns of a [`Row`] (a macro, so that queries stay literal).
macro_rules! columns {
    () => {
        "id, channel, status, reason, content_type, octet_length(body), received_at, replayed_at, replay_result"
    };
}

pub(super) async fn list(
    State(app): AppState,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(p) = authorize(&app, &headers) {
        return p.into_response();
    }
    let Ok(Query(q)) = query else {
        return bad_query("channel (text), limit (1-1000) and before (an id) only");
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return bad_query("limit must be 1 to 1000");
    }
    let rows: Result<Vec<Row>, _> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM quarantine
         WHERE ($1::text IS NULL OR channel = $1) AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(q.channel)
    .bind(q.before)
    .bind(limit)
    .fetch_all(&app.intake.pool)
    .await;
    match rows {
        Ok(rows) => Json(json!({"entries": rows.iter().map(entry_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => db_error(e),
    }
}

pub(super) async fn show(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(p) = authorize(&app, &headers) {
        return p.into_response();
    }
    match fetch(&app, id).await {
        Ok(Some((row, body, meta))) => {
            let mut v = entry_json(&row);
            match std::str::from_utf8(&body) {
                Ok(text) => v["body"] = Value::from(text),
                Err(_) => {
                    v["body_base64"] =
                        Value::from(base64::engine::general_purpose::STANDARD.encode(&body))
                }
            }
            v["meta"] = meta;
            Json(v).into_response()
        }
        Ok(None) => not_found(id),
        Err(e) => db_error(e),
    }
}

pub(super) async fn replay(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(p) = authorize(&app, &headers) {
        return p.into_response();
    }
    let (_, body, meta) = match fetch(&app, id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return not_found(id),
        Err(e) => return db_error(e),
    };
    let response = match meta["transport"].as_str() {
        Some("grpc") | Some("nats") => crate::grpc::replay(&app.intake, &body).await,
        _ => {
            let mut headers = HeaderMap::new();
            if let Some(h) = meta["headers"].as_object() {
                for (k, v) in h {
                    if let (Ok(name), Some(Ok(value))) = (
                        HeaderName::try_from(k.as_str()),
                        v.as_str().map(HeaderValue::try_from),
                    ) {
                        headers.insert(name, value);
                    }
                }
            }
            let raw = Raw {
                headers,
                query: meta["query"].as_str().unwrap_or_default().to_owned(),
                body: Bytes::from(body),
                replay: true,
            };
            let path = meta["path"].as_str().unwrap_or_default();
            match super::replay(&app, path, raw).await {
                Some(r) => r,
                None => {
                    return Problem::new(
                        StatusCode::CONFLICT,
                        "not-replayable",
                        "Entry cannot be replayed",
                        format!("quarantine entry {id} has no known path ({path:?})"),
                    )
                    .into_response();
                }
            }
        }
    };
    // Record the outcome: the status and, for an accepted one, its body.
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let result = format!("{} {}", status.as_u16(), String::from_utf8_lossy(&bytes));
    if let Err(e) =
        sqlx::query("UPDATE quarantine SET replayed_at = now(), replay_result = $2 WHERE id = $1")
            .bind(id)
            .bind(&result)
            .execute(&app.intake.pool)
            .await
    {
        tracing::warn!(error = %e, id, "replay outcome not recorded");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn fetch(app: &App, id: i64) -> Result<Option<(Row, Vec<u8>, Value)>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM quarantine WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&app.intake.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (body, meta): (Vec<u8>, sqlx::types::Json<Value>) =
        sqlx::query_as("SELECT body, meta FROM quarantine WHERE id = $1")
            .bind(id)
            .fetch_one(&app.intake.pool)
            .await?;
    Ok(Some((row, body, meta.0)))
}

fn bad_query(detail: &str) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "Invalid query",
        detail,
    )
    .into_response()
}

fn not_found(id: i64) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such quarantine entry",
        format!("no quarantine entry {id}"),
    )
    .into_response()
}

fn db_error(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "quarantine query failed");
    Problem::not_ready().into_response()
}
