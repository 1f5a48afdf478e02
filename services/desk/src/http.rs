//! `GET /v1/complaints/{id}`, `GET /v1/complaints`,
//! `GET /v1/complaints/{id}/timeline`, and the actions
//! `POST /v1/complaints/{id}/<action>` (docs/desk.md).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tousu_domain::lifecycle::{ActionKind, RefusalKind};
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use uuid::Uuid;

use crate::actions::{ActionError, Desk, Input, Request, field_detail};
use crate::cases::{self, Key};

pub fn router(desk: Arc<Desk>) -> Router {
    let mut router = Router::new()
        .route("/v1/complaints", get(list))
        .route("/v1/complaints/{id}", get(show))
        .route("/v1/complaints/{id}/timeline", get(timeline));
    for kind in ActionKind::ALL {
        router = router.route(
            &format!("/v1/complaints/{{id}}/{}", path_of(kind)),
            post(
                move |State(desk): State<Arc<Desk>>,
                      Path(id): Path<String>,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    act(&desk, kind, id, &headers, &body).await
                },
            ),
        );
    }
    router.with_state(desk)
}

/// The path segment of an action: `sign-for`, `return-visit`, `pause` …
pub fn path_of(kind: ActionKind) -> String {
    kind.as_str().replace('_', "-")
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

fn not_found(id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such complaint",
        format!("desk has no complaint {id} (yet)"),
    )
    .into_response()
}

async fn show(State(desk): State<Arc<Desk>>, Path(id): Path<String>) -> Response {
    let key = match Key::parse(&id) {
        Ok(k) => k,
        Err(e) => return invalid("id", e),
    };
    match cases::get(desk.pool(), &key).await {
        Ok(Some(row)) => axum::Json(row.to_json()).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => db_error(e),
    }
}

async fn timeline(State(desk): State<Arc<Desk>>, Path(id): Path<String>) -> Response {
    let key = match Key::parse(&id) {
        Ok(k) => k,
        Err(e) => return invalid("id", e),
    };
    let row = match cases::get(desk.pool(), &key).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(&id),
        Err(e) => return db_error(e),
    };
    match cases::timeline(desk.pool(), row.id).await {
        Ok(entries) => axum::Json(json!({
            "id": row.id,
            "timeline": entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        }))
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

async fn list(State(desk): State<Arc<Desk>>, Query(q): Query<ListQuery>) -> Response {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match s.parse::<tousu_domain::lifecycle::Status>() {
            Ok(s) => Some(s.number()),
            Err(_) => return invalid("status", format!("{s:?} is not a status")),
        },
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return invalid("limit", "must be 1 to 500".into());
    }
    match cases::list(desk.pool(), q.department.as_deref(), status, limit, q.after).await {
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

/// The fields each action's JSON body may have (besides `actor`).
fn fields_of(kind: ActionKind) -> &'static [&'static str] {
    match kind {
        ActionKind::SignFor => &["handler"],
        ActionKind::Return
        | ActionKind::Close
        | ActionKind::Reopen
        | ActionKind::Withdraw
        | ActionKind::Reject => &["reason"],
        ActionKind::Transfer | ActionKind::Arbitrate => &["to_department", "reason"],
        ActionKind::Contact => &["note"],
        ActionKind::Pause => &["reason", "note"],
        ActionKind::Resume => &[],
        ActionKind::Extend => &["duration", "approver_role", "reason"],
        ActionKind::Resolve => &["resolution"],
        ActionKind::ReturnVisit | ActionKind::Feedback => &["satisfaction", "note"],
        ActionKind::Merge => &["into", "reason"],
    }
}

/// A body that is not the JSON object the action takes: 400.
fn malformed(field: &str, message: impl Into<String>) -> Problem {
    let mut p = Problem::validation(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }]);
    p.title = "Malformed request body".into();
    p.kind = "https://tousu.dev/problems/malformed".into();
    p
}

/// The action's JSON body: `(actor, input)`, or a 400/415 problem.
fn read_body(
    kind: ActionKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Input), Problem> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("{essence} is not accepted; send application/json"),
            ));
        }
    }
    let allowed = fields_of(kind);
    let expected = || {
        std::iter::once("actor")
            .chain(allowed.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let object: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(malformed(
                "body",
                format!("expected a JSON object with {}", expected()),
            ));
        }
        Err(e) => return Err(malformed("body", format!("not JSON: {e}"))),
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| *k != "actor" && !allowed.contains(&k.as_str()))
    {
        return Err(malformed(
            unknown,
            format!("unknown field for {kind}; expected {}", expected()),
        ));
    }
    let text = |name: &str| -> Result<String, Problem> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(malformed(name, "must be a string")),
        }
    };
    let number = |name: &str| -> Result<u32, Problem> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| malformed(name, "must be a whole number")),
            Some(_) => Err(malformed(name, "must be a number")),
        }
    };
    let input = match kind {
        ActionKind::SignFor => Input::SignFor {
            handler: text("handler")?,
        },
        ActionKind::Return => Input::Return {
            reason: text("reason")?,
        },
        ActionKind::Transfer => Input::Transfer {
            to_department: text("to_department")?,
            reason: text("reason")?,
        },
        ActionKind::Arbitrate => Input::Arbitrate {
            to_department: text("to_department")?,
            reason: text("reason")?,
        },
        ActionKind::Contact => Input::Contact {
            note: text("note")?,
        },
        ActionKind::Pause => Input::Pause {
            reason: text("reason")?,
            note: text("note")?,
        },
        ActionKind::Resume => Input::Resume,
        ActionKind::Extend => Input::Extend {
            duration: text("duration")?,
            approver_role: text("approver_role")?,
            reason: text("reason")?,
        },
        ActionKind::Resolve => Input::Resolve {
            resolution: text("resolution")?,
        },
        ActionKind::ReturnVisit => Input::ReturnVisit {
            satisfaction: number("satisfaction")?,
            note: text("note")?,
        },
        ActionKind::Close => Input::Close {
            reason: text("reason")?,
        },
        ActionKind::Reopen => Input::Reopen {
            reason: text("reason")?,
        },
        ActionKind::Withdraw => Input::Withdraw {
            reason: text("reason")?,
        },
        ActionKind::Reject => Input::Reject {
            reason: text("reason")?,
        },
        ActionKind::Merge => Input::Merge {
            into: text("into")?,
            reason: text("reason")?,
        },
        ActionKind::Feedback => Input::Feedback {
            satisfaction: number("satisfaction")?,
            note: text("note")?,
        },
    };
    Ok((text("actor")?, input))
}

async fn act(
    desk: &Desk,
    kind: ActionKind,
    id: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let (actor, input) = match read_body(kind, headers, body) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match desk.act(Request { id, actor, input }).await {
        Ok(row) => axum::Json(row.to_json()).into_response(),
        Err(e) => problem(kind, e).into_response(),
    }
}

/// 422: fields the action cannot be done with.
fn unprocessable(kind: ActionKind, errors: Vec<FieldError>, detail: String) -> Problem {
    Problem {
        errors,
        ..Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            &format!("Invalid {kind}"),
            detail,
        )
    }
}

/// The problem+json of a refused or failed action.
pub fn problem(kind: ActionKind, e: ActionError) -> Problem {
    let conflict = |detail: String| {
        Problem::new(
            StatusCode::CONFLICT,
            "transition-refused",
            "Action not allowed",
            detail,
        )
    };
    match e {
        ActionError::BadId(message) => Problem::validation(vec![FieldError {
            field: "id".into(),
            message,
        }]),
        ActionError::Invalid(errors) => {
            let detail = field_detail(&errors);
            unprocessable(kind, errors, detail)
        }
        ActionError::NotFound(detail) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such complaint",
            detail,
        ),
        ActionError::Refused(r) => match r.kind() {
            RefusalKind::Conflict => conflict(r.to_string()),
            RefusalKind::Invalid { field } => unprocessable(
                kind,
                vec![FieldError {
                    field: field.into(),
                    message: r.why(),
                }],
                r.to_string(),
            ),
        },
        ActionError::Conflict(detail) => conflict(detail),
        ActionError::Unavailable(_) => Problem::not_ready(),
        ActionError::Internal(detail) => Problem::internal(detail),
    }
}
