//! Acknowledgements: `GET/POST /v1/acks/{token}`.
//!
//! Ladder notifications (rules with `ack_within`, `escalation.*` events
//! with `needs_ack`) carry an ack token (random, 64 hex characters) and the
//! message an ack link to it.
//!
//! - `GET /v1/acks/{token}`: a small HTML page with a confirm button (a GET
//!   never acknowledges: mail scanners prefetch links); with `Accept:
//!   application/json`, the state as JSON.
//! - `POST /v1/acks/{token}` (form `actor=…` or JSON `{"actor": "…"}`,
//!   both optional: the recipient by default) acknowledges: every delivery
//!   of the same ladder (same cause event and rule) is marked acknowledged,
//!   the ladder's later steps still pending (and pending fallbacks on
//!   other channels) become `cancelled` (never sent), and `notify.acked` is published through the outbox (sla takes
//!   it as the acknowledgement of an escalation step). Acknowledging again
//!   changes nothing and answers the state (`already: true`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use tousu_bus::Payload;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::model::Message;
use crate::plan::{Planner, is_token, local_time};

#[derive(Clone)]
struct Acks {
    planner: Arc<Planner>,
    pool: PgPool,
}

pub fn router(planner: Arc<Planner>, pool: PgPool) -> Router {
    Router::new()
        .route("/v1/acks/{token}", get(show).post(acknowledge))
        .with_state(Acks { planner, pool })
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Ack {
    cause_event_id: Uuid,
    complaint_id: Uuid,
    event_type: String,
    recipient: String,
    channel: String,
    rule: String,
    step: i32,
    status: String,
    acked_at: Option<OffsetDateTime>,
    acked_by: Option<String>,
    message: Option<Json<Message>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Step {
    recipient: String,
    channel: String,
    step: i32,
    status: String,
    next_attempt_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

const SELECT_ACK: &str = "SELECT cause_event_id, complaint_id, event_type, recipient, channel,
     rule, step, status, acked_at, acked_by, message
     FROM deliveries WHERE ack_token = $1";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no notification has this ack token",
    )
    .into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "ack failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        "the acknowledgement could not be recorded; try again",
    )
    .into_response()
}

/// The state of a token's ladder as JSON.
async fn state_json(pool: &PgPool, ack: &Ack, extra: Value) -> Result<Value, sqlx::Error> {
    let steps: Vec<Step> = sqlx::query_as(
        "SELECT recipient, channel, step, status, next_attempt_at, delivered_at FROM deliveries
         WHERE cause_event_id = $1 AND rule = $2 ORDER BY step, id",
    )
    .bind(ack.cause_event_id)
    .bind(&ack.rule)
    .fetch_all(pool)
    .await?;
    let message = ack.message.as_ref().map(|m| &m.0);
    let mut v = json!({
        "cause_event_id": ack.cause_event_id.to_string(),
        "event_type": ack.event_type,
        "complaint_id": ack.complaint_id.to_string(),
        "tracking_no": message.map(|m| m.tracking_no.clone()).unwrap_or_default(),
        "subject": message.map(|m| m.subject.clone()).unwrap_or_default(),
        "recipient": ack.recipient,
        "channel": ack.channel,
        "step": ack.step,
        "status": ack.status,
        "acked": ack.acked_at.is_some(),
        "acked_at": ack.acked_at.map(rfc3339),
        "acked_by": ack.acked_by,
        "ladder": steps.iter().map(|s| json!({
            "recipient": s.recipient,
            "channel": s.channel,
            "step": s.step,
            "status": s.status,
            "due_at": rfc3339(s.next_attempt_at),
            "delivered_at": s.delivered_at.map(rfc3339),
        })).collect::<Vec<_>>(),
    });
    if let (Value::Object(v), Value::Object(e)) = (&mut v, extra) {
        v.extend(e);
    }
    Ok(v)
}

fn page(planner: &Planner, ack: &Ack, done: bool) -> Response {
    let message = ack
        .message
        .as_ref()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    let offset = planner.loaded().offset(OffsetDateTime::now_utc());
    let ctx = minijinja::context! {
        subject => message.subject,
        tracking_no => message.tracking_no,
        event_type => ack.event_type.clone(),
        link => message.link,
        recipient => ack.recipient.clone(),
        acked_at => ack.acked_at.map(|t| local_time(t, offset)).unwrap_or_default(),
        acked_by => ack.acked_by.clone().unwrap_or_default(),
        done => done,
    };
    match planner.templates.ack_page(ctx) {
        Ok(html) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
                (
                    header::HeaderName::from_static("x-robots-tag"),
                    HeaderValue::from_static("noindex"),
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => Problem::internal(format!("ack page: {e}")).into_response(),
    }
}

async fn find(pool: &PgPool, token: &str) -> Result<Option<Ack>, sqlx::Error> {
    if !is_token(token) {
        return Ok(None);
    }
    sqlx::query_as(sqlx::AssertSqlSafe(SELECT_ACK))
        .bind(token)
        .fetch_optional(pool)
        .await
}

async fn show(State(acks): State<Acks>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let ack = match find(&acks.pool, &token).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(e),
    };
    if wants_json(&headers) {
        return match state_json(&acks.pool, &ack, json!({})).await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => unavailable(e),
        };
    }
    page(&acks.planner, &ack, false)
}

/// `actor` from a JSON or form body; empty when not given.
fn actor_of(headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let actor = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else if content_type.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("actor") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("actor must be a string".into()),
        }
    } else {
        let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_owned())?;
        form_value(text, "actor").unwrap_or_default()
    };
    let actor = actor.trim().to_owned();
    if actor.chars().count() > 200 {
        return Err("actor is longer than 200 characters".into());
    }
    if actor.chars().any(char::is_control) {
        return Err("actor has control characters".into());
    }
    Ok(actor)
}

/// The value of `key` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == key).then(|| percent_decode(v))?
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn acknowledge(
    State(acks): State<Acks>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_request = wants_json(&headers)
        || headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    let actor = match actor_of(&headers, &body) {
        Ok(a) => a,
        Err(message) => {
            return Problem::validation(vec![FieldError {
                field: "actor".into(),
                message,
            }])
            .into_response();
        }
    };
    if !is_token(&token) {
        return not_found();
    }
    let outcome = record(&acks, &token, actor).await;
    let (ack, extra) = match outcome {
        Ok(Some(x)) => x,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(e),
    };
    if json_request {
        match state_json(&acks.pool, &ack, extra).await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => unavailable(e),
        }
    } else {
        page(&acks.planner, &ack, true)
    }
}

/// Acknowledges the ladder of `token` (once); the delivery as it now
/// stands and what happened.
async fn record(acks: &Acks, token: &str, actor: String) -> anyhow::Result<Option<(Ack, Value)>> {
    let mut tx = acks.pool.begin().await?;
    let ack: Option<Ack> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_ACK} FOR UPDATE")))
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(mut ack) = ack else {
        return Ok(None);
    };
    if ack.acked_at.is_some() {
        tx.commit().await?;
        return Ok(Some((ack, json!({ "already": true }))));
    }
    let actor = if actor.is_empty() {
        ack.recipient.clone()
    } else {
        actor
    };
    let now = OffsetDateTime::now_utc();
    sqlx::query(
        "UPDATE deliveries SET acked_at = $3, acked_by = $4, updated_at = now()
         WHERE cause_event_id = $1 AND rule = $2 AND acked_at IS NULL",
    )
    .bind(ack.cause_event_id)
    .bind(&ack.rule)
    .bind(now)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', detail = $4, updated_at = now()
         WHERE cause_event_id = $1 AND rule = $2 AND status = 'pending'
           AND (step > $3 OR fallback_of IS NOT NULL)",
    )
    .bind(ack.cause_event_id)
    .bind(&ack.rule)
    .bind(ack.step)
    .bind(format!(
        "not sent: {actor} acknowledged at step {} first",
        ack.step
    ))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let escalation_step = ack
        .message
        .as_ref()
        .and_then(|m| m.0.data.get("escalation_step"))
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let version = acks.planner.loaded().policy.version.clone();
    acks.planner
        .outbox
        .enqueue(
            &mut tx,
            ack.complaint_id,
            &version,
            Payload::NotifyAcked(pb::NotifyAcked {
                cause_event_id: ack.cause_event_id.to_string(),
                cause_event_type: ack.event_type.clone(),
                recipient: ack.recipient.clone(),
                actor: actor.clone(),
                escalation_step,
                acked_at: Some(tousu_bus::to_timestamp(now)),
            }),
        )
        .await?;
    tx.commit().await?;
    acks.planner.outbox.wake();
    metrics::counter!("tousu_notify_acked_total").increment(1);
    tracing::info!(cause = %ack.cause_event_id, rule = %ack.rule, %actor, cancelled, "acknowledged");
    ack.acked_at = Some(now);
    ack.acked_by = Some(actor);
    Ok(Some((
        ack,
        json!({ "already": false, "cancelled": cancelled }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h
    }

    #[test]
    fn actors_from_forms_and_json() {
        let form = headers("application/x-www-form-urlencoded");
        assert_eq!(
            actor_of(&form, b"actor=wang.gang").as_deref(),
            Ok("wang.gang")
        );
        assert_eq!(
            actor_of(&form, "actor=%E7%8E%8B%E5%88%9A+duty".as_bytes()).as_deref(),
            Ok("王刚 duty")
        );
        assert_eq!(actor_of(&form, b"").as_deref(), Ok(""));
        assert_eq!(actor_of(&form, b"other=1").as_deref(), Ok(""));
        let json = headers("application/json");
        assert_eq!(
            actor_of(&json, br#"{"actor": " li.na "}"#).as_deref(),
            Ok("li.na")
        );
        assert_eq!(actor_of(&json, b"{}").as_deref(), Ok(""));
        assert!(actor_of(&json, br#"{"actor": 7}"#).is_err());
        assert!(actor_of(&json, b"{not json").is_err());
        let long = format!(r#"{{"actor": "{}"}}"#, "x".repeat(201));
        assert!(actor_of(&json, long.as_bytes()).is_err());
        assert!(actor_of(&json, br#"{"actor": "a\u0007b"}"#).is_err());
        // A bad percent escape gives no value rather than garbage.
        assert_eq!(actor_of(&form, b"actor=%zz").as_deref(), Ok(""));
    }
}
