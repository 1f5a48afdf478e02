//! sla's API: the clocks of a complaint and why, the deadline calculator,
//! escalation acknowledgements. HTTP (JSON, problem+json errors) and gRPC
//! `tousu.sla.v1.SlaService` answer from the same functions.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Request, Response as GrpcResponse, Status};
use tousu_domain::calendar::{Calendar, SkipReason};
use tousu_domain::clock::Target;
use tousu_kit::Problem;
use tousu_kit::problem::FieldError;
use tousu_proto::sla::sla_service_server::{SlaService, SlaServiceServer};
use tousu_proto::sla::{self as pb};
use uuid::Uuid;

use crate::clocks::Sla;
use crate::store;

#[derive(Clone)]
struct Api {
    sla: Arc<Sla>,
    pool: PgPool,
}

pub fn router(sla: Arc<Sla>, pool: PgPool) -> Router {
    Router::new()
        .route("/v1/complaints/{id}/clocks", get(http_clocks))
        .route("/v1/complaints/{id}/escalations/{step}/ack", post(http_ack))
        .route("/v1/calendar/deadline", get(http_deadline))
        .route("/v1/policy", get(http_policy))
        .with_state(Api { sla, pool })
}

pub fn routes(sla: Arc<Sla>, pool: PgPool) -> tonic::service::Routes {
    tonic::service::Routes::new(SlaServiceServer::new(Api { sla, pool }))
}

/// Why a request failed, for both transports.
enum Failure {
    Invalid(Vec<FieldError>),
    NotFound(String),
    Precondition(String),
    Unavailable(String),
}

impl Failure {
    fn field(field: &str, message: impl Into<String>) -> Self {
        Failure::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn http(self) -> Response {
        match self {
            Failure::Invalid(errors) => Problem::validation(errors).into_response(),
            Failure::NotFound(detail) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
                    .into_response()
            }
            Failure::Precondition(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Not possible now", detail)
                    .into_response()
            }
            Failure::Unavailable(detail) => {
                tracing::error!(%detail, "sla query failed");
                Problem::not_ready().into_response()
            }
        }
    }

    fn grpc(self) -> Status {
        match self {
            Failure::Invalid(errors) => {
                Status::invalid_argument(Problem::validation(errors).detail)
            }
            Failure::NotFound(d) => Status::not_found(d),
            Failure::Precondition(d) => Status::failed_precondition(d),
            Failure::Unavailable(d) => {
                tracing::error!(detail = %d, "sla query failed");
                Status::unavailable("database unavailable")
            }
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Unavailable(e.to_string())
    }
}

fn ts(t: OffsetDateTime) -> Option<tousu_proto::Timestamp> {
    Some(tousu_bus::to_timestamp(t))
}

fn parse_id(id: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(id.trim())
        .map_err(|e| Failure::field("complaint_id", format!("not a UUID: {e}")))
}

impl Api {
    async fn clocks(&self, id: &str) -> Result<pb::Clocks, Failure> {
        let id = parse_id(id)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::clocks(&mut conn, id, false).await?;
        if rows.is_empty() {
            return Err(Failure::NotFound(format!(
                "sla has armed no clock for complaint {id} (yet)"
            )));
        }
        let changes: Vec<ChangeRow> = sqlx::query_as(
            "SELECT target, at, change, old_deadline, new_deadline, actor, reason, policy_version
                 FROM clock_audit WHERE complaint_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let escalations: Vec<EscalationRow> =
            sqlx::query_as(
                "SELECT step, level, role, target, fired_at, needs_ack, ack_deadline, acked_by, acked_at, escalated_to
                 FROM escalations WHERE complaint_id = $1 ORDER BY step",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let rules = self.sla.rules();
        let now = OffsetDateTime::now_utc();
        let mut effective: Option<OffsetDateTime> = None;
        let mut clocks = Vec::with_capacity(rows.len());
        for row in &rows {
            let basis = rules.basis(&row.model);
            let projected = row.model.projected_deadline(basis, now).ok();
            if matches!(row.target, Target::Resolution | Target::Overlay)
                && row.is_open()
                && let Some(d) = row.deadline.or(projected)
            {
                effective = Some(effective.map_or(d, |e| e.min(d)));
            }
            let until = row.met_at.unwrap_or(now);
            let elapsed = row.model.used(basis, until).unwrap_or_default();
            let mut explanation = row.explanation.clone();
            for p in &row.model.pauses {
                let stood = basis
                    .measure(p.from, p.until.unwrap_or(now))
                    .unwrap_or_default();
                explanation.push_str(&format!(
                    "; paused {} ({}, by {}){}: {}",
                    p.from,
                    p.reason,
                    p.actor,
                    p.until.map(|u| format!(" until {u}")).unwrap_or_default(),
                    crate::clocks::human(stood)
                ));
            }
            for e in &row.model.extensions {
                explanation.push_str(&format!(
                    "; extended {} by {} ({}): {} → {}",
                    e.duration, e.approver, e.approver_role, e.old_deadline, e.new_deadline
                ));
            }
            clocks.push(pb::Clock {
                target: row.target.as_str().to_owned(),
                duration: row.duration.clone(),
                department: row.department.clone(),
                state: row.state.clone(),
                started_at: ts(row.model.started),
                deadline: row.deadline.and_then(ts),
                projected_deadline: projected.and_then(ts),
                elapsed_seconds: elapsed.whole_seconds(),
                budget_seconds: row.model.budget_secs,
                working_time: row.model.working,
                pauses: row
                    .model
                    .pauses
                    .iter()
                    .map(|p| pb::Pause {
                        reason: p.reason.clone(),
                        actor: p.actor.clone(),
                        from: ts(p.from),
                        until: p.until.and_then(ts),
                        cap_at: p.cap_at.and_then(ts),
                    })
                    .collect(),
                extensions: row
                    .model
                    .extensions
                    .iter()
                    .map(|e| pb::Extension {
                        duration: e.duration.clone(),
                        approver: e.approver.clone(),
                        approver_role: e.approver_role.clone(),
                        at: ts(e.at),
                        old_deadline: ts(e.old_deadline),
                        new_deadline: ts(e.new_deadline),
                    })
                    .collect(),
                calendar: row.calendar.clone(),
                policy_version: row.policy_version.clone(),
                explanation,
                met_at: row.met_at.and_then(ts),
                breached_at: row.breached_at.and_then(ts),
                fired: row.fired.clone(),
                changes: changes
                    .iter()
                    .filter(|c| c.target == row.target.as_str())
                    .map(|c| pb::Change {
                        at: ts(c.at),
                        change: c.change.clone(),
                        old_deadline: c.old_deadline.and_then(ts),
                        new_deadline: c.new_deadline.and_then(ts),
                        actor: c.actor.clone(),
                        reason: c.reason.clone(),
                        policy_version: c.policy_version.clone(),
                    })
                    .collect(),
            });
        }
        Ok(pb::Clocks {
            complaint_id: id.to_string(),
            clocks,
            effective_deadline: effective.and_then(ts),
            escalations: escalations.into_iter().map(Into::into).collect(),
        })
    }

    fn deadline(
        &self,
        from: Option<&str>,
        duration: Option<&str>,
        calendar: Option<&str>,
    ) -> Result<pb::DeadlineReply, Failure> {
        let mut errors = Vec::new();
        let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errors.push(FieldError {
                    field: "from".into(),
                    message: "is required (RFC 3339, e.g. 2026-09-30T16:00:00+08:00)".into(),
                });
                None
            }
            Some(s) => match OffsetDateTime::parse(s, &Rfc3339) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(FieldError {
                        field: "from".into(),
                        message: format!("not an RFC 3339 time: {e}"),
                    });
                    None
                }
            },
        };
        let duration = match duration.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errors.push(FieldError {
                    field: "duration".into(),
                    message: "is required, e.g. 5wd, 4wh, 24h, 30m or 15d".into(),
                });
                None
            }
            Some(s) => match s.parse::<tousu_domain::calendar::Duration>() {
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(FieldError {
                        field: "duration".into(),
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        let rules = self.sla.rules();
        let name = calendar.map(str::trim).filter(|s| !s.is_empty());
        let loaded;
        let cal: Option<&Calendar> = match name {
            None => match &rules.calendar {
                Some(c) => Some(c),
                None => {
                    errors.push(FieldError {
                        field: "calendar".into(),
                        message: "the policy in force names no calendar: give one".into(),
                    });
                    None
                }
            },
            Some(n) if rules.calendar.as_ref().is_some_and(|c| c.name() == n) => {
                rules.calendar.as_ref()
            }
            Some(n) => {
                if !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    errors.push(FieldError {
                        field: "calendar".into(),
                        message: "a calendar name is letters, digits, '-' or '_'".into(),
                    });
                    None
                } else {
                    match Calendar::load(&rules.calendars_dir, n) {
                        Ok(c) => {
                            loaded = c;
                            Some(&loaded)
                        }
                        Err(e) => {
                            errors.push(FieldError {
                                field: "calendar".into(),
                                message: e.to_string(),
                            });
                            None
                        }
                    }
                }
            }
        };
        let (Some(from), Some(duration), Some(cal)) = (from, duration, cal) else {
            return Err(Failure::Invalid(errors));
        };
        let d = cal
            .deadline(from, &duration)
            .map_err(|e| Failure::field("from", e.to_string()))?;
        Ok(pb::DeadlineReply {
            deadline: ts(d.at),
            skipped: d
                .skipped
                .iter()
                .map(|s| pb::SkippedDay {
                    date: s.date.to_string(),
                    reason: match &s.reason {
                        SkipReason::Weekend => "weekend".into(),
                        SkipReason::Holiday(name) => format!("holiday: {name}"),
                    },
                })
                .collect(),
            makeup_days: d
                .makeup_days
                .iter()
                .map(|m| pb::SkippedDay {
                    date: m.date.to_string(),
                    reason: format!("make-up working day (调休): {}", m.name),
                })
                .collect(),
            explanation: d.explanation,
            calendar: cal.name().to_owned(),
            time_zone: cal.time_zone().to_owned(),
        })
    }

    async fn ack(&self, id: &str, step: u32, actor: &str) -> Result<pb::Escalation, Failure> {
        let id = parse_id(id)?;
        if actor.trim().is_empty() {
            return Err(Failure::field("actor", "is required"));
        }
        let step = i32::try_from(step).map_err(|_| Failure::field("step", "too large"))?;
        let mut tx = self.pool.begin().await?;
        let row: Option<EscalationRow> =
            sqlx::query_as(
                "SELECT step, level, role, target, fired_at, needs_ack, ack_deadline, acked_by, acked_at, escalated_to
                 FROM escalations WHERE complaint_id = $1 AND step = $2 FOR UPDATE",
            )
            .bind(id)
            .bind(step)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(e) = row else {
            return Err(Failure::NotFound(format!(
                "no escalation step {step} for complaint {id}"
            )));
        };
        if !e.needs_ack {
            return Err(Failure::Precondition(format!(
                "escalation step {step} ({}) needs no acknowledgement",
                e.level
            )));
        }
        if let Some(to) = e.escalated_to {
            return Err(Failure::Precondition(format!(
                "escalation step {step} ({}) was not acknowledged in time and went up to step {to}",
                e.level
            )));
        }
        if e.acked_at.is_some() {
            // Acknowledging twice is harmless: answer with the first ack.
            tx.commit().await?;
            return Ok(e.into());
        }
        let now = OffsetDateTime::now_utc();
        store::ack_escalation(&mut tx, id, step, actor.trim(), now).await?;
        tx.commit().await?;
        Ok(EscalationRow {
            acked_by: Some(actor.trim().to_owned()),
            acked_at: Some(now),
            ..e
        }
        .into())
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    target: String,
    at: OffsetDateTime,
    change: String,
    old_deadline: Option<OffsetDateTime>,
    new_deadline: Option<OffsetDateTime>,
    actor: String,
    reason: String,
    policy_version: String,
}

#[derive(sqlx::FromRow)]
struct EscalationRow {
    step: i32,
    level: String,
    role: String,
    target: String,
    fired_at: OffsetDateTime,
    needs_ack: bool,
    ack_deadline: Option<OffsetDateTime>,
    acked_by: Option<String>,
    acked_at: Option<OffsetDateTime>,
    escalated_to: Option<i32>,
}

impl From<EscalationRow> for pb::Escalation {
    fn from(e: EscalationRow) -> Self {
        pb::Escalation {
            step: u32::try_from(e.step).unwrap_or(0),
            level: e.level,
            role: e.role,
            target: e.target,
            fired_at: ts(e.fired_at),
            needs_ack: e.needs_ack,
            ack_deadline: e.ack_deadline.and_then(ts),
            acked_by: e.acked_by.unwrap_or_default(),
            acked_at: e.acked_at.and_then(ts),
            escalated_to: e
                .escalated_to
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(0),
        }
    }
}

// ---------------------------------------------------------------- JSON

fn rfc3339(t: &Option<tousu_proto::Timestamp>) -> serde_json::Value {
    t.as_ref()
        .and_then(tousu_bus::from_timestamp)
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

fn clocks_json(c: &pb::Clocks) -> serde_json::Value {
    use serde_json::json;
    json!({
        "complaint_id": c.complaint_id,
        "effective_deadline": rfc3339(&c.effective_deadline),
        "clocks": c.clocks.iter().map(|k| json!({
            "target": k.target,
            "duration": k.duration,
            "department": k.department,
            "state": k.state,
            "started_at": rfc3339(&k.started_at),
            "deadline": rfc3339(&k.deadline),
            "projected_deadline": rfc3339(&k.projected_deadline),
            "elapsed_seconds": k.elapsed_seconds,
            "budget_seconds": k.budget_seconds,
            "working_time": k.working_time,
            "pauses": k.pauses.iter().map(|p| json!({
                "reason": p.reason, "actor": p.actor, "from": rfc3339(&p.from),
                "until": rfc3339(&p.until), "cap_at": rfc3339(&p.cap_at),
            })).collect::<Vec<_>>(),
            "extensions": k.extensions.iter().map(|e| json!({
                "duration": e.duration, "approver": e.approver, "approver_role": e.approver_role,
                "at": rfc3339(&e.at), "old_deadline": rfc3339(&e.old_deadline),
                "new_deadline": rfc3339(&e.new_deadline),
            })).collect::<Vec<_>>(),
            "calendar": k.calendar,
            "policy_version": k.policy_version,
            "explanation": k.explanation,
            "met_at": rfc3339(&k.met_at),
            "breached_at": rfc3339(&k.breached_at),
            "fired": k.fired,
            "changes": k.changes.iter().map(|ch| json!({
                "at": rfc3339(&ch.at), "change": ch.change,
                "old_deadline": rfc3339(&ch.old_deadline), "new_deadline": rfc3339(&ch.new_deadline),
                "actor": ch.actor, "reason": ch.reason, "policy_version": ch.policy_version,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "escalations": c.escalations.iter().map(escalation_json).collect::<Vec<_>>(),
    })
}

fn escalation_json(e: &pb::Escalation) -> serde_json::Value {
    serde_json::json!({
        "step": e.step, "level": e.level, "role": e.role, "target": e.target,
        "fired_at": rfc3339(&e.fired_at), "needs_ack": e.needs_ack,
        "ack_deadline": rfc3339(&e.ack_deadline),
        "acked_by": if e.acked_by.is_empty() { serde_json::Value::Null } else { e.acked_by.clone().into() },
        "acked_at": rfc3339(&e.acked_at),
        "escalated_to": if e.escalated_to == 0 { serde_json::Value::Null } else { e.escalated_to.into() },
    })
}

async fn http_clocks(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.clocks(&id).await {
        Ok(c) => axum::Json(clocks_json(&c)).into_response(),
        Err(f) => f.http(),
    }
}

#[derive(Deserialize)]
struct DeadlineQuery {
    from: Option<String>,
    duration: Option<String>,
    calendar: Option<String>,
}

async fn http_deadline(State(api): State<Api>, Query(q): Query<DeadlineQuery>) -> Response {
    match api.deadline(q.from.as_deref(), q.duration.as_deref(), q.calendar.as_deref()) {
        Ok(d) => axum::Json(serde_json::json!({
            "from": q.from.as_deref().map(str::trim),
            "duration": q.duration.as_deref().map(str::trim),
            "deadline": rfc3339(&d.deadline),
            "calendar": d.calendar,
            "time_zone": d.time_zone,
            "skipped": d.skipped.iter().map(|s| serde_json::json!({"date": s.date, "reason": s.reason})).collect::<Vec<_>>(),
            "makeup_days": d.makeup_days.iter().map(|s| serde_json::json!({"date": s.date, "reason": s.reason})).collect::<Vec<_>>(),
            "explanation": d.explanation,
        }))
        .into_response(),
        Err(f) => f.http(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    actor: String,
}

async fn http_ack(
    State(api): State<Api>,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let body: AckBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return Failure::field("body", format!("expected {{\"actor\": \"…\"}}: {e}")).http();
        }
    };
    let Ok(step) = step.parse::<u32>() else {
        return Failure::field("step", "a ladder step number (1, 2, …)").http();
    };
    match api.ack(&id, step, &body.actor).await {
        Ok(e) => axum::Json(escalation_json(&e)).into_response(),
        Err(f) => f.http(),
    }
}

async fn http_policy(State(api): State<Api>) -> Response {
    let rules = api.sla.rules();
    axum::Json(serde_json::json!({
        "name": rules.policy.name,
        "version": rules.policy.version,
        "calendar": rules.calendar.as_ref().map(|c| c.name().to_owned()),
    }))
    .into_response()
}

#[tonic::async_trait]
impl SlaService for Api {
    async fn get_clocks(
        &self,
        request: Request<pb::GetClocksRequest>,
    ) -> Result<GrpcResponse<pb::Clocks>, Status> {
        self.clocks(&request.get_ref().complaint_id)
            .await
            .map(GrpcResponse::new)
            .map_err(Failure::grpc)
    }

    async fn deadline(
        &self,
        request: Request<pb::DeadlineRequest>,
    ) -> Result<GrpcResponse<pb::DeadlineReply>, Status> {
        let r = request.get_ref();
        let from = r
            .from
            .as_ref()
            .and_then(tousu_bus::from_timestamp)
            .and_then(|t| t.format(&Rfc3339).ok());
        Api::deadline(self, from.as_deref(), Some(&r.duration), Some(&r.calendar))
            .map(GrpcResponse::new)
            .map_err(Failure::grpc)
    }

    async fn ack_escalation(
        &self,
        request: Request<pb::AckEscalationRequest>,
    ) -> Result<GrpcResponse<pb::Escalation>, Status> {
        let r = request.get_ref();
        self.ack(&r.complaint_id, r.step, &r.actor)
            .await
            .map(GrpcResponse::new)
            .map_err(Failure::grpc)
    }
}
