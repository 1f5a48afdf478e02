//! Desk actions: department systems and the console act on a case (sign
//! for, return, transfer … close), over HTTP ([`crate::http`]) and gRPC
//! ([`crate::grpc`]), through one implementation, [`Desk::act`].
//!
//! An action is validated against the policy in force (pause reasons,
//! departments, the extension's duration), then, in **one transaction**:
//! the case row is locked (`SELECT … FOR UPDATE`), the lifecycle state
//! machine ([`tousu_domain::lifecycle`]) decides, the policy's rules on the
//! case's history are checked (the department's return window, how often a
//! pause reason was used), the row is updated, the timeline row is written
//! and the `ComplaintLifecycle` event is enqueued in the outbox. The
//! [`Recorder`](crate::Recorder) later sees that event come back from NATS
//! and leaves the case alone: its timeline row, keyed by the event id, is
//! already there.

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_bus::outbox::EnqueueError;
use tousu_bus::{EventExt, Outbox, Payload};
use tousu_domain::ComplaintId;
use tousu_domain::lifecycle::{
    self, Action, ActionKind, ApproverRole, CaseState, Refusal, Satisfaction, Status, Transition,
};
use tousu_kit::problem::FieldError;
use tousu_policy::schema::Policy;
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::cases::{self, CaseRow, Key};

/// An action as received over HTTP or gRPC, before validation. Empty
/// strings are "not given"; `satisfaction` 0 is "not given".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    SignFor {
        handler: String,
    },
    Return {
        reason: String,
    },
    Transfer {
        to_department: String,
        reason: String,
    },
    Arbitrate {
        to_department: String,
        reason: String,
    },
    Contact {
        note: String,
    },
    Pause {
        reason: String,
        note: String,
    },
    Resume,
    Extend {
        duration: String,
        approver_role: String,
        reason: String,
    },
    Resolve {
        resolution: String,
    },
    ReturnVisit {
        satisfaction: u32,
        note: String,
    },
    Close {
        reason: String,
    },
    Reopen {
        reason: String,
    },
    Withdraw {
        reason: String,
    },
    Reject {
        reason: String,
    },
    Merge {
        into: String,
        reason: String,
    },
    Feedback {
        satisfaction: u32,
        note: String,
    },
}

impl Input {
    pub fn kind(&self) -> ActionKind {
        match self {
            Input::SignFor { .. } => ActionKind::SignFor,
            Input::Return { .. } => ActionKind::Return,
            Input::Transfer { .. } => ActionKind::Transfer,
            Input::Arbitrate { .. } => ActionKind::Arbitrate,
            Input::Contact { .. } => ActionKind::Contact,
            Input::Pause { .. } => ActionKind::Pause,
            Input::Resume => ActionKind::Resume,
            Input::Extend { .. } => ActionKind::Extend,
            Input::Resolve { .. } => ActionKind::Resolve,
            Input::ReturnVisit { .. } => ActionKind::ReturnVisit,
            Input::Close { .. } => ActionKind::Close,
            Input::Reopen { .. } => ActionKind::Reopen,
            Input::Withdraw { .. } => ActionKind::Withdraw,
            Input::Reject { .. } => ActionKind::Reject,
            Input::Merge { .. } => ActionKind::Merge,
            Input::Feedback { .. } => ActionKind::Feedback,
        }
    }
}

/// One action on one case.
#[derive(Debug, Clone)]
pub struct Request {
    /// Complaint id (UUID) or tracking number.
    pub id: String,
    /// Who acts (user or system id); required.
    pub actor: String,
    pub input: Input,
}

/// Why an action was not done. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The complaint id is malformed (HTTP 400, INVALID_ARGUMENT).
    #[error("id: {0}")]
    BadId(String),
    /// Fields are missing or wrong (HTTP 422, INVALID_ARGUMENT).
    #[error("{}", field_detail(.0))]
    Invalid(Vec<FieldError>),
    /// Desk has no such complaint (HTTP 404, NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The lifecycle refused it (HTTP 409 / FAILED_PRECONDITION, or 422 /
    /// INVALID_ARGUMENT naming the field, by [`Refusal::kind`]).
    #[error("{0}")]
    Refused(Refusal),
    /// A rule of the policy on the case's history refused it (the return
    /// window, a pause reason used up); the message names the action and
    /// the status (HTTP 409, FAILED_PRECONDITION).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (HTTP 503, UNAVAILABLE).
    #[error("database: {0}")]
    Unavailable(#[from] sqlx::Error),
    /// A bug or bad data (HTTP 500, INTERNAL).
    #[error("{0}")]
    Internal(String),
}

/// `field: message; …`, as in problem+json details and gRPC messages.
pub(crate) fn field_detail(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// An action validated at the edge; a merge's target is looked up in the
/// transaction.
enum Parsed {
    Ready(Action),
    Merge { into: Key, reason: String },
}

/// Carries out desk actions.
pub struct Desk {
    pool: PgPool,
    outbox: Outbox,
    policy: RwLock<Arc<Policy>>,
}

impl Desk {
    pub fn new(pool: PgPool, outbox: Outbox, policy: Policy) -> Self {
        Desk {
            pool,
            outbox,
            policy: RwLock::new(Arc::new(policy)),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes up a new policy version (hot reload).
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
    }

    /// Validates and applies one action; the case as it is afterwards.
    pub async fn act(&self, request: Request) -> Result<CaseRow, ActionError> {
        let kind = request.input.kind();
        let result = self.act_inner(request).await;
        let outcome = match &result {
            Ok(_) => "done",
            Err(ActionError::Refused(r)) if r.kind() == lifecycle::RefusalKind::Conflict => {
                "refused"
            }
            Err(ActionError::Conflict(_)) => "refused",
            Err(ActionError::NotFound(_)) => "not_found",
            Err(ActionError::Unavailable(_) | ActionError::Internal(_)) => "error",
            Err(_) => "invalid",
        };
        metrics::counter!("tousu_desk_actions_total", "action" => kind.as_str(), "outcome" => outcome)
            .increment(1);
        if let Err(e @ (ActionError::Unavailable(_) | ActionError::Internal(_))) = &result {
            tracing::error!(action = %kind, error = %e, "desk action failed");
        }
        result
    }

    async fn act_inner(&self, request: Request) -> Result<CaseRow, ActionError> {
        let key = Key::parse(request.id.trim()).map_err(ActionError::BadId)?;
        let policy = self.policy();
        let actor = request.actor.trim().to_owned();
        let input = match request.input {
            // The handler is whoever signs unless someone signs for another.
            Input::SignFor { handler } if handler.trim().is_empty() => Input::SignFor {
                handler: actor.clone(),
            },
            input => input,
        };
        let parsed = parse(&policy, input);
        let parsed = match (actor.is_empty(), parsed) {
            (false, Ok(p)) => p,
            (true, Ok(_)) => return Err(ActionError::Invalid(vec![field("actor", "required")])),
            (empty, Err(mut errors)) => {
                if empty {
                    errors.insert(0, field("actor", "required"));
                }
                return Err(ActionError::Invalid(errors));
            }
        };

        let mut tx = self.pool.begin().await?;
        let not_found =
            || ActionError::NotFound(format!("desk has no complaint {} (yet)", request.id));
        let row = cases::row(&mut tx, &key, true)
            .await?
            .ok_or_else(not_found)?;
        // A row without a status was made by an event that overtook
        // `complaint.received`: desk does not know the complaint yet.
        let status = Status::from_number(i32::from(row.status)).ok_or_else(not_found)?;
        let action = match parsed {
            Parsed::Ready(a) => a,
            Parsed::Merge { into, reason } => Action::Merge {
                into: merge_target(&mut tx, &row, &into).await?,
                reason,
            },
        };
        let state = state_of(&row, status);
        let t = lifecycle::apply(&state, &action).map_err(ActionError::Refused)?;
        let now = OffsetDateTime::now_utc();
        check_policy_rules(&mut tx, &policy, &row, status, &action, now).await?;

        write_case(&mut tx, &row, &t, &action, &actor, now).await?;
        let department = row
            .department
            .clone()
            .unwrap_or_else(|| policy.triage_department.as_str().to_owned());
        let event = lifecycle_event(&t, &action, &department, &actor);
        let event = self
            .outbox
            .enqueue(&mut tx, row.id, &policy.version, Payload::Lifecycle(event))
            .await
            .map_err(|e| match e {
                EnqueueError::Db(e) => ActionError::Unavailable(e),
                EnqueueError::Invalid(e) => ActionError::Internal(format!(
                    "the {} event of complaint {} cannot be published: {e}",
                    t.action.event(),
                    row.id
                )),
            })?;
        let (reason, detail) = audit(&t, &action);
        sqlx::query(
            "INSERT INTO timeline (complaint_id, event_id, event_type, producer, sequence, occurred_at,
                                   action, actor, reason, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), $10)",
        )
        .bind(row.id)
        .bind(Uuid::parse_str(&event.id).map_err(|e| ActionError::Internal(e.to_string()))?)
        .bind(event.event_type())
        .bind(&event.producer)
        .bind(event.sequence as i64)
        .bind(event.occurred_at.as_ref().and_then(tousu_bus::from_timestamp))
        .bind(t.action.event())
        .bind(&actor)
        .bind(reason)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.outbox.wake();
        tracing::info!(complaint = %row.id, action = %t.action, from = %t.from, to = %t.to, %actor, "desk action");
        cases::get(&self.pool, &Key::Id(row.id))
            .await?
            .ok_or_else(|| ActionError::Internal(format!("complaint {} vanished", row.id)))
    }
}

/// Field checks that need no case: syntax, and membership in the policy
/// (pause reasons, departments). Empty free-text fields are left to the
/// state machine, which says which ones an action requires.
fn parse(policy: &Policy, input: Input) -> Result<Parsed, Vec<FieldError>> {
    let mut errors = Vec::new();
    let department = |errors: &mut Vec<FieldError>, code: &str| {
        let code = code.trim();
        if !code.is_empty() && policy.department(code).is_none() {
            let known: Vec<&str> = policy.departments.keys().map(String::as_str).collect();
            errors.push(field(
                "to_department",
                format!(
                    "{code:?} is not a department of the policy (known: {})",
                    known.join(", ")
                ),
            ));
        }
    };
    let satisfaction = |errors: &mut Vec<FieldError>, n: u32| match n {
        0 => {
            errors.push(field(
                "satisfaction",
                "required: 1 (very dissatisfied) to 5 (very satisfied)",
            ));
            None
        }
        n => Satisfaction::try_from(n)
            .map_err(|e| errors.push(field("satisfaction", e.reason)))
            .ok(),
    };
    let action = match input {
        Input::SignFor { handler } => Action::SignFor { handler },
        Input::Return { reason } => Action::Return { reason },
        Input::Transfer {
            to_department,
            reason,
        } => {
            department(&mut errors, &to_department);
            Action::Transfer {
                to_department: to_department.trim().to_owned(),
                reason,
            }
        }
        Input::Arbitrate {
            to_department,
            reason,
        } => {
            department(&mut errors, &to_department);
            Action::Arbitrate {
                to_department: to_department.trim().to_owned(),
                reason,
            }
        }
        Input::Contact { note } => Action::Contact { note },
        Input::Pause { reason, note } => {
            let code = reason.trim();
            if !code.is_empty() && !policy.pause_reasons.iter().any(|p| p.code == code) {
                let known: Vec<&str> = policy
                    .pause_reasons
                    .iter()
                    .map(|p| p.code.as_str())
                    .collect();
                errors.push(field(
                    "reason",
                    format!(
                        "{code:?} is not a pause reason of the policy (known: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            Action::Pause {
                reason: code.to_owned(),
                note,
            }
        }
        Input::Resume => Action::Resume,
        Input::Extend {
            duration,
            approver_role,
            reason,
        } => {
            let duration = match duration.trim() {
                "" => {
                    errors.push(field(
                        "duration",
                        "required, e.g. \"5wd\", \"24h\", \"15d\"",
                    ));
                    None
                }
                d => d
                    .parse::<tousu_policy::schema::Duration>()
                    .map_err(|e| errors.push(field("duration", e)))
                    .ok()
                    .map(|d| d.to_calendar()),
            };
            let role = match approver_role.trim() {
                "" => {
                    errors.push(field(
                        "approver_role",
                        "required: department_head or senior_leader",
                    ));
                    None
                }
                r => r
                    .parse::<ApproverRole>()
                    .map_err(|e| errors.push(field("approver_role", e.reason)))
                    .ok(),
            };
            match (duration, role) {
                (Some(duration), Some(approver_role)) => Action::Extend {
                    duration,
                    approver_role,
                    reason,
                },
                _ => return Err(errors),
            }
        }
        Input::Resolve { resolution } => Action::Resolve { resolution },
        Input::ReturnVisit {
            satisfaction: n,
            note,
        } => match satisfaction(&mut errors, n) {
            Some(satisfaction) => Action::ReturnVisit { satisfaction, note },
            None => return Err(errors),
        },
        Input::Close { reason } => Action::Close { reason },
        Input::Reopen { reason } => Action::Reopen { reason },
        Input::Withdraw { reason } => Action::Withdraw { reason },
        Input::Reject { reason } => Action::Reject { reason },
        Input::Merge { into, reason } => {
            return match into.trim() {
                "" => Err(vec![field(
                    "into",
                    "required: the id of the complaint this one duplicates",
                )]),
                into => Key::parse(into)
                    .map(|into| Parsed::Merge { into, reason })
                    .map_err(|e| vec![field("into", e)]),
            };
        }
        Input::Feedback {
            satisfaction: n,
            note,
        } => match satisfaction(&mut errors, n) {
            Some(satisfaction) => Action::Feedback { satisfaction, note },
            None => return Err(errors),
        },
    };
    if errors.is_empty() {
        Ok(Parsed::Ready(action))
    } else {
        Err(errors)
    }
}

/// The id of the complaint a merge keeps: known to desk, not this one, not
/// merged itself.
async fn merge_target(
    conn: &mut PgConnection,
    row: &CaseRow,
    into: &Key,
) -> Result<ComplaintId, ActionError> {
    let Some(target) = cases::row(conn, into, false).await? else {
        return Err(ActionError::Invalid(vec![field(
            "into",
            "desk has no such complaint",
        )]));
    };
    if target.id == row.id {
        return Err(ActionError::Invalid(vec![field(
            "into",
            "a complaint cannot be merged into itself",
        )]));
    }
    if let Some(further) = target.merged_into {
        return Err(ActionError::Invalid(vec![field(
            "into",
            format!(
                "{} is itself merged into {further}; merge into that one",
                target.id
            ),
        )]));
    }
    ComplaintId::try_from(target.id)
        .map_err(|e| ActionError::Invalid(vec![field("into", e.reason)]))
}

/// What the state machine needs of the row.
fn state_of(row: &CaseRow, status: Status) -> CaseState {
    let who = row.complaint().complainant.unwrap_or_default();
    CaseState {
        status,
        department: row.department.clone(),
        handler: row.handler.clone(),
        arbitrated: row.arbitrated,
        paused_from: row
            .paused_from
            .and_then(|s| Status::from_number(i32::from(s))),
        extensions: row.extensions.max(0) as u32,
        returned_by: row.returned_by.clone(),
        resolution: row.resolution.clone(),
        return_visited: row.return_visited,
        satisfaction: row
            .satisfaction
            .and_then(|s| Satisfaction::try_from(s.max(0) as u32).ok()),
        return_visit_waived: who.anonymous || who.confidential,
        reopens: row.reopens.max(0) as u32,
        merged_into: row
            .merged_into
            .and_then(|id| ComplaintId::try_from(id).ok()),
    }
}

/// The refusal message of a policy rule, in the state machine's words.
fn conflict(action: ActionKind, status: Status, why: String) -> ActionError {
    ActionError::Conflict(format!(
        "cannot {} a complaint in status {status}: {why}",
        action.verb()
    ))
}

/// The policy's rules on the case's history: a return within the
/// department's return window; a pause reason at most `max_times` per case.
async fn check_policy_rules(
    conn: &mut PgConnection,
    policy: &Policy,
    row: &CaseRow,
    status: Status,
    action: &Action,
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    match action {
        Action::Return { .. } => {
            let Some(dept) = row.department.as_deref().and_then(|d| policy.department(d)) else {
                return Ok(());
            };
            let hours = dept.return_window_hours;
            if hours == 0 {
                return Err(conflict(
                    ActionKind::Return,
                    status,
                    format!(
                        "department {} may not return complaints (its return window is 0 h)",
                        dept.code
                    ),
                ));
            }
            if let Some(at) = row.assigned_at {
                let end = at + time::Duration::hours(i64::from(hours));
                if now > end {
                    return Err(conflict(
                        ActionKind::Return,
                        status,
                        format!(
                            "the return window of department {} ({hours} h after the assignment) ended at {}; ask the complaint centre to transfer or arbitrate",
                            dept.code,
                            end.format(&Rfc3339).unwrap_or_default()
                        ),
                    ));
                }
            }
            Ok(())
        }
        Action::Pause { reason, .. } => {
            let Some(max) = policy
                .pause_reasons
                .iter()
                .find(|p| p.code == *reason)
                .and_then(|p| p.max_times)
            else {
                return Ok(());
            };
            let (used,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM timeline WHERE complaint_id = $1 AND action = 'paused' AND reason = $2",
            )
            .bind(row.id)
            .bind(reason)
            .fetch_one(&mut *conn)
            .await?;
            if used >= i64::from(max) {
                return Err(conflict(
                    ActionKind::Pause,
                    status,
                    format!(
                        "pause reason {reason} was used {used} times; the policy allows {max} per complaint"
                    ),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Writes the new state into the row.
async fn write_case(
    conn: &mut PgConnection,
    row: &CaseRow,
    t: &Transition,
    action: &Action,
    actor: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let s = &t.state;
    // The pause columns describe the pause in force: set by a pause, kept
    // while it lasts, cleared when it ends.
    let (reason, note, by, at) = match (action, s.paused_from) {
        (Action::Pause { reason, note }, _) => (
            Some(reason.clone()),
            Some(note.clone()).filter(|n| !n.trim().is_empty()),
            Some(actor.to_owned()),
            Some(now),
        ),
        (_, Some(_)) => (
            row.pause_reason.clone(),
            row.pause_note.clone(),
            row.paused_by.clone(),
            row.paused_at,
        ),
        (_, None) => (None, None, None, None),
    };
    sqlx::query(
        "UPDATE cases SET status = $2, handler = $3, arbitrated = $4, paused_from = $5,
             pause_reason = $6, pause_note = $7, paused_by = $8, paused_at = $9, extensions = $10,
             returned_by = $11, resolution = $12, return_visited = $13, satisfaction = $14,
             reopens = $15, merged_into = $16, updated_at = $17
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(t.to.number())
    .bind(&s.handler)
    .bind(s.arbitrated)
    .bind(s.paused_from.map(Status::number))
    .bind(reason)
    .bind(note)
    .bind(by)
    .bind(at)
    .bind(s.extensions.min(i16::MAX as u32) as i16)
    .bind(&s.returned_by)
    .bind(&s.resolution)
    .bind(s.return_visited)
    .bind(s.satisfaction.map(|v| i16::from(v.get())))
    .bind(s.reopens.min(i16::MAX as u32) as i16)
    .bind(s.merged_into.map(|c| c.as_uuid()))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The `ComplaintLifecycle` event of a transition: `action` names the
/// subject, `department` is the department that had the case when it
/// happened.
fn lifecycle_event(
    t: &Transition,
    action: &Action,
    department: &str,
    actor: &str,
) -> pb::ComplaintLifecycle {
    let mut e = pb::ComplaintLifecycle {
        status: i32::from(t.to.number()),
        department: department.to_owned(),
        actor: actor.to_owned(),
        action: t.action.event().to_owned(),
        arbitrated: t.state.arbitrated,
        handler: t.state.handler.clone().unwrap_or_default(),
        ..Default::default()
    };
    match action {
        Action::Transfer {
            to_department,
            reason,
        }
        | Action::Arbitrate {
            to_department,
            reason,
        } => {
            e.to_department = to_department.clone();
            e.reason = reason.trim().to_owned();
        }
        Action::Pause { reason, .. } => {
            e.reason = reason.clone();
            e.pause_reason = reason.clone();
        }
        Action::Extend {
            duration,
            approver_role,
            reason,
        } => {
            e.reason = reason.trim().to_owned();
            e.extension = Some(pb::Extension {
                duration: duration.to_string(),
                approver: actor.to_owned(),
                approver_role: approver_role.as_str().to_owned(),
                number: t.state.extensions,
            });
        }
        Action::ReturnVisit { satisfaction, note } | Action::Feedback { satisfaction, note } => {
            e.satisfaction = u32::from(satisfaction.get());
            e.reason = note.trim().to_owned();
        }
        Action::Contact { note } => e.reason = note.trim().to_owned(),
        Action::Resolve { resolution } => e.reason = resolution.trim().to_owned(),
        Action::Return { reason }
        | Action::Close { reason }
        | Action::Reopen { reason }
        | Action::Withdraw { reason }
        | Action::Reject { reason }
        | Action::Merge { reason, .. } => e.reason = reason.trim().to_owned(),
        Action::SignFor { .. } | Action::Resume => {}
    }
    e
}

/// The timeline's `reason` and `detail` of a transition.
fn audit(t: &Transition, action: &Action) -> (String, Value) {
    let mut detail = json!({ "from": t.from.as_str(), "to": t.to.as_str() });
    let mut put = |k: &str, v: Value| {
        if let Some(map) = detail.as_object_mut() {
            map.insert(k.to_owned(), v);
        }
    };
    let reason = match action {
        Action::SignFor { handler } => {
            put("handler", json!(handler.trim()));
            String::new()
        }
        Action::Transfer {
            to_department,
            reason,
        }
        | Action::Arbitrate {
            to_department,
            reason,
        } => {
            put("to_department", json!(to_department));
            reason.trim().to_owned()
        }
        Action::Pause { reason, note } => {
            put("note", json!(note.trim()));
            reason.clone()
        }
        Action::Extend {
            duration,
            approver_role,
            reason,
        } => {
            put("duration", json!(duration.to_string()));
            put("approver_role", json!(approver_role.as_str()));
            put("number", json!(t.state.extensions));
            reason.trim().to_owned()
        }
        Action::ReturnVisit { satisfaction, note } | Action::Feedback { satisfaction, note } => {
            put("satisfaction", json!(satisfaction.get()));
            note.trim().to_owned()
        }
        Action::Merge { into, reason } => {
            put("into", json!(into.to_string()));
            reason.trim().to_owned()
        }
        Action::Contact { note } => note.trim().to_owned(),
        Action::Resolve { resolution } => resolution.trim().to_owned(),
        Action::Return { reason }
        | Action::Close { reason }
        | Action::Reopen { reason }
        | Action::Withdraw { reason }
        | Action::Reject { reason } => reason.trim().to_owned(),
        Action::Resume => String::new(),
    };
    (reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
        Policy::load(&path).expect("the default policy loads").0
    }

    fn fields(r: Result<Parsed, Vec<FieldError>>) -> Vec<(String, String)> {
        match r {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn pause_reasons_and_departments_come_from_the_policy() {
        let p = policy();
        let ok = parse(
            &p,
            Input::Pause {
                reason: "appraisal".into(),
                note: "送检".into(),
            },
        );
        assert!(matches!(ok, Ok(Parsed::Ready(Action::Pause { .. }))));
        let bad = fields(parse(
            &p,
            Input::Pause {
                reason: "staff_leave".into(),
                note: String::new(),
            },
        ));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "reason");
        assert!(
            bad[0].1.contains("\"staff_leave\" is not a pause reason"),
            "{}",
            bad[0].1
        );
        assert!(bad[0].1.contains("waiting_complainant"), "{}", bad[0].1);

        let bad = fields(parse(
            &p,
            Input::Transfer {
                to_department: "marketing".into(),
                reason: "职责调整".into(),
            },
        ));
        assert_eq!(bad[0].0, "to_department");
        assert!(
            bad[0].1.contains("logistics"),
            "lists the known ones: {}",
            bad[0].1
        );
        // Empty is the state machine's "required".
        assert!(
            parse(
                &p,
                Input::Arbitrate {
                    to_department: String::new(),
                    reason: "x".into()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn extension_fields_are_parsed() {
        let p = policy();
        let extend = |d: &str, r: &str| {
            fields(parse(
                &p,
                Input::Extend {
                    duration: d.into(),
                    approver_role: r.into(),
                    reason: "等待检测报告".into(),
                },
            ))
        };
        assert!(extend("5wd", "department_head").is_empty());
        assert!(extend("24h", "senior_leader").is_empty());
        let both = extend("five days", "manager");
        let names: Vec<&str> = both.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["duration", "approver_role"]);
        assert_eq!(extend("", "department_head")[0].0, "duration");
        assert_eq!(extend("0d", "department_head")[0].0, "duration");
        assert_eq!(extend("200000d", "department_head")[0].0, "duration");
    }

    #[test]
    fn satisfaction_and_merge_target_are_required() {
        let p = policy();
        for n in [0, 6] {
            let e = fields(parse(
                &p,
                Input::ReturnVisit {
                    satisfaction: n,
                    note: String::new(),
                },
            ));
            assert_eq!(e[0].0, "satisfaction", "{n}");
        }
        let e = fields(parse(
            &p,
            Input::Merge {
                into: "not-an-id".into(),
                reason: String::new(),
            },
        ));
        assert_eq!(e[0].0, "into");
        let e = fields(parse(
            &p,
            Input::Merge {
                into: String::new(),
                reason: String::new(),
            },
        ));
        assert_eq!(e[0].0, "into");
    }
}
