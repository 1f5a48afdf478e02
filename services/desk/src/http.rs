//! `GET /v1/complaints/{id}` and `GET /v1/complaints`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use uuid::Uuid;

use crate::cases::{self, Key};

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/v1/complaints", get(list))
        .route("/v1/complaints/{id}", get(show))
        .with_state(pool)
}

fn invalid(field: &str, message: String) -> Response {
    Problem::validation(vec![FieldError {
        field: field.into(),
        message,
    }])
    .into_response()
}

fn db_error(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "case query failed");
    Problem::not_ready().into_response()
}

async fn show(State(pool): State<PgPool>, Path(id): Path<String>) -> Response {
    let key = match Key::parse(&id) {
        Ok(k) => k,
        Err(e) => return invalid("id", e),
    };
    match cases::get(&pool, &key).await {
        Ok(Some(row)) => axum::Json(row.to_json()).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such complaint",
            format!("desk has no complaint {id} (yet)"),
        )
        .into_response(),
        Err(e) => db_error(e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    department: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    after: Option<Uuid>,
}

async fn list(State(pool): State<PgPool>, Query(q): Query<ListQuery>) -> Response {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match tousu_proto::v1::Status::from_str_name(&format!(
            "STATUS_{}",
            s.to_ascii_uppercase()
        )) {
            Some(s) => Some(s as i16),
            None => return invalid("status", format!("{s:?} is not a status")),
        },
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return invalid("limit", "must be 1 to 500".into());
    }
    match cases::list(&pool, q.department.as_deref(), status, limit, q.after).await {
        Ok(rows) => {
            let next = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            let items: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
            axum::Json(json!({ "complaints": items, "next_after": next })).into_response()
        }
        Err(e) => db_error(e),
    }
}
