//! The delivery log over HTTP (what `tousu notify log` reads):
//!
//! - `GET /v1/deliveries?complaint=<uuid>&status=<s>&recipient=<r>&channel=<c>&limit=<n>`:
//!   deliveries, newest first (`limit` 1–1000, default 50), each with its
//!   attempts;
//! - `GET /v1/deliveries/{id}`: one delivery with its attempts;
//! - `POST /v1/deliveries/{id}/retry`: a `dead` delivery goes back to
//!   `pending`, due now; its attempts stay in the log (409 for any other
//!   status).
//!
//! Errors are problem+json: 400 for a bad filter or id, 404, 409.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use uuid::Uuid;

/// The delivery log routes, on notify's HTTP port.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/{id}", get(one))
        .route("/v1/deliveries/{id}/retry", post(retry))
        .with_state(pool)
}

/// One delivery as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DeliveryView {
    pub id: i64,
    pub complaint_id: Uuid,
    pub cause_event_id: Uuid,
    pub event_type: String,
    pub rule: String,
    pub recipient: String,
    pub channel: String,
    pub address: String,
    pub endpoint: String,
    pub status: String,
    pub detail: String,
    /// The message's subject line.
    pub subject: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    pub step: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub event_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it is (or was) due next; while a send is in flight, the end of its lease.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub acked_at: Option<OffsetDateTime>,
    pub acked_by: Option<String>,
    pub digest_of: Option<i64>,
    /// When the rule wants it sent by (`within`), if it says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_by: Option<OffsetDateTime>,
    /// Delivered after `due_by`.
    pub late: bool,
    /// This row sends, on another channel, the delivery with this id that
    /// failed.
    pub fallback_of: Option<i64>,
    /// Every attempt, first first.
    #[sqlx(skip)]
    pub attempt_log: Vec<AttemptView>,
}

/// One attempt.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct AttemptView {
    #[serde(skip)]
    pub delivery_id: i64,
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `delivered`, `transient` (retried, or dead after the last attempt) or `permanent`.
    pub outcome: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, complaint_id, cause_event_id, event_type, rule, recipient, channel,
    address, endpoint, status, detail, message->>'subject' AS subject, attempts, step,
    last_status, last_error, event_at, created_at, next_attempt_at, delivered_at, acked_at,
    acked_by, digest_of, due_by,
    COALESCE(delivered_at > due_by, false) AS late, fallback_of";

#[derive(Debug, Default, Deserialize)]
struct Filter {
    complaint: Option<String>,
    status: Option<String>,
    recipient: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn not_found(id: i64) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no delivery {id}"),
    )
    .into_response()
}

fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "delivery log query failed");
    Problem::not_ready().into_response()
}

fn word(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 32
        && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The filter, checked.
struct Checked {
    complaint: Option<Uuid>,
    status: Option<String>,
    recipient: Option<String>,
    channel: Option<String>,
    limit: i64,
}

fn check(f: Filter) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let complaint = match f.complaint.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => match Uuid::parse_str(c) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(field("complaint", "must be a complaint id (UUID)"));
                None
            }
        },
    };
    let status = f.status.filter(|s| !s.is_empty());
    if status.as_deref().is_some_and(|s| !word(s)) {
        errors.push(field(
            "status",
            "must be a delivery status (pending, delivered, dead, digested, collecting, suppressed, cancelled)",
        ));
    }
    let channel = f.channel.filter(|s| !s.is_empty());
    if channel.as_deref().is_some_and(|s| !word(s)) {
        errors.push(field(
            "channel",
            "must be a channel name (email, sms, webhook …)",
        ));
    }
    let recipient = f.recipient.filter(|s| !s.is_empty());
    if recipient.as_deref().is_some_and(|r| r.len() > 200) {
        errors.push(field("recipient", "at most 200 characters"));
    }
    let limit = match f.limit.as_deref().map(str::trim) {
        None | Some("") => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push(field("limit", "must be a number from 1 to 1000"));
                50
            }
        },
    };
    if errors.is_empty() {
        Ok(Checked {
            complaint,
            status,
            recipient,
            channel,
            limit,
        })
    } else {
        Err(errors)
    }
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0)
}

fn bad_id() -> Response {
    Problem::validation(vec![field(
        "id",
        "must be a delivery id (a positive number)",
    )])
    .into_response()
}

/// Fills in the attempts of `deliveries`.
async fn with_attempts(
    pool: &PgPool,
    mut deliveries: Vec<DeliveryView>,
) -> sqlx::Result<Vec<DeliveryView>> {
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let attempts: Vec<AttemptView> = sqlx::query_as(
        "SELECT delivery_id, attempt, at, outcome, status_code, latency_ms, error
         FROM delivery_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt, id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    for a in attempts {
        if let Some(d) = deliveries.iter_mut().find(|d| d.id == a.delivery_id) {
            d.attempt_log.push(a);
        }
    }
    Ok(deliveries)
}

/// Deliveries matching the filter, newest first, with their attempts.
pub async fn query(
    pool: &PgPool,
    complaint: Option<Uuid>,
    status: Option<&str>,
    recipient: Option<&str>,
    channel: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryView>> {
    let rows: Vec<DeliveryView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE ($1::uuid IS NULL OR complaint_id = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR recipient = $3)
           AND ($4::text IS NULL OR channel = $4)
         ORDER BY id DESC LIMIT $5"
    )))
    .bind(complaint)
    .bind(status)
    .bind(recipient)
    .bind(channel)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    with_attempts(pool, rows).await
}

/// One delivery with its attempts.
pub async fn get_one(pool: &PgPool, id: i64) -> sqlx::Result<Option<DeliveryView>> {
    let row: Option<DeliveryView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deliveries WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(with_attempts(pool, vec![r]).await?.pop()),
    }
}

async fn list(State(pool): State<PgPool>, Query(filter): Query<Filter>) -> Response {
    let f = match check(filter) {
        Ok(f) => f,
        Err(errors) => return Problem::validation(errors).into_response(),
    };
    match query(
        &pool,
        f.complaint,
        f.status.as_deref(),
        f.recipient.as_deref(),
        f.channel.as_deref(),
        f.limit,
    )
    .await
    {
        Ok(deliveries) => Json(serde_json::json!({
            "count": deliveries.len(),
            "deliveries": deliveries,
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn one(State(pool): State<PgPool>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id();
    };
    match get_one(&pool, id).await {
        Ok(Some(d)) => Json(d).into_response(),
        Ok(None) => not_found(id),
        Err(e) => unavailable(e),
    }
}

/// Why a retry was refused.
#[derive(Debug)]
pub enum RetryError {
    NotFound,
    /// Only `dead` deliveries can be retried; this one is in the status.
    NotDead(String),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for RetryError {
    fn from(e: sqlx::Error) -> Self {
        RetryError::Db(e)
    }
}

/// Puts a dead delivery back to `pending`, due now, and wakes the senders.
pub async fn retry_dead(pool: &PgPool, id: i64) -> Result<(), RetryError> {
    let mut tx = pool.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match status.as_deref() {
        None => return Err(RetryError::NotFound),
        Some("dead") => {}
        Some(other) => return Err(RetryError::NotDead(other.to_owned())),
    }
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    crate::send::announce(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(delivery = id, "dead delivery put back to pending");
    Ok(())
}

async fn retry(State(pool): State<PgPool>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id();
    };
    match retry_dead(&pool, id).await {
        Ok(()) => match get_one(&pool, id).await {
            Ok(Some(d)) => Json(d).into_response(),
            Ok(None) => not_found(id),
            Err(e) => unavailable(e),
        },
        Err(RetryError::NotFound) => not_found(id),
        Err(RetryError::NotDead(status)) => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Not possible now",
            format!("delivery {id} is {status}; only a dead delivery can be retried"),
        )
        .into_response(),
        Err(RetryError::Db(e)) => unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let mut f = Filter::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "complaint" => f.complaint = v,
                "status" => f.status = v,
                "recipient" => f.recipient = v,
                "channel" => f.channel = v,
                "limit" => f.limit = v,
                _ => {}
            }
        }
        f
    }

    #[test]
    fn filters_are_checked_with_every_error_named() {
        let ok = check(filter(&[
            ("complaint", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            ("status", "dead"),
            ("recipient", "duty-leader-wang"),
            ("limit", "10"),
        ]))
        .ok()
        .unwrap();
        assert_eq!(ok.limit, 10);
        assert_eq!(ok.status.as_deref(), Some("dead"));
        assert!(ok.complaint.is_some());
        let defaults = check(Filter::default()).ok().unwrap();
        assert_eq!(defaults.limit, 50);
        assert!(defaults.complaint.is_none() && defaults.status.is_none());

        let errors = check(filter(&[
            ("complaint", "TS-2026-000123"),
            ("status", "DEAD; drop table"),
            ("channel", "e-mail"),
            ("limit", "0"),
        ]))
        .err()
        .unwrap();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["complaint", "status", "channel", "limit"]);
        assert!(check(filter(&[("limit", "1001")])).is_err());
        assert!(check(filter(&[("recipient", &"x".repeat(201))])).is_err());
    }

    #[test]
    fn ids_must_be_positive_numbers() {
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("-3"), None);
        assert_eq!(parse_id("abc"), None);
        assert_eq!(parse_id("99999999999999999999"), None);
    }
}
