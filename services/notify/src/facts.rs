//! What notify knows of each complaint (`complaint_facts`): tracking
//! number, summary, grade, department, handler and the complainant's
//! contacts and Acknowledgement, from `complaint.received`, `classified`,
//! `assigned`, `regraded` and the lifecycle events.
//!
//! Events arrive in any order across subjects (and replicas): each group of
//! facts (receipt, grade, assignment, status) keeps the time of the event
//! that set it and only a newer event replaces it; one upsert per event
//! records what it carries and returns the facts as they now stand.

use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;
use tousu_bus::{Payload, channel_token, from_timestamp, lifecycle_name};
use uuid::Uuid;

use crate::recipients::{AckFacts, Complainant};

/// The facts of one complaint.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Facts {
    pub complaint_id: Uuid,
    pub tracking_no: String,
    pub summary: String,
    pub complainant: Option<Json<Complainant>>,
    pub ack: Option<Json<AckFacts>>,
    pub received_at: Option<OffsetDateTime>,
    pub grade: Option<i16>,
    pub department: Option<String>,
    pub handler: Option<String>,
    pub co_departments: Vec<String>,
    pub status: String,
    pub closed: bool,
}

impl Facts {
    pub fn complainant(&self) -> Complainant {
        self.complainant
            .as_ref()
            .map(|j| j.0.clone())
            .unwrap_or_default()
    }

    pub fn ack(&self) -> Option<&AckFacts> {
        self.ack.as_ref().map(|j| &j.0)
    }
}

/// What one event says about its complaint; `None` = says nothing.
#[derive(Debug, Default)]
struct Update {
    tracking_no: Option<String>,
    summary: Option<String>,
    complainant: Option<Json<Complainant>>,
    ack: Option<Json<AckFacts>>,
    received_at: Option<OffsetDateTime>,
    grade: Option<i16>,
    /// Department: with `assigned_at` it is an assignment (newest wins),
    /// without it only fills a gap.
    department: Option<String>,
    handler: Option<String>,
    co_departments: Option<Vec<String>>,
    assigned_at: Option<OffsetDateTime>,
    status: Option<String>,
    closed: Option<bool>,
}

/// The first words of a text, for display.
pub fn summary_of(title: &str, description: &str) -> String {
    let source = if title.trim().is_empty() {
        description
    } else {
        title
    };
    let line = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        out.push('…');
    }
    out
}

fn grade_of(g: u32) -> Option<i16> {
    (1..=4).contains(&g).then_some(g as i16)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_owned())
}

/// Statuses after which nothing more is owed (repeats stop).
fn is_closed(status: &str) -> bool {
    matches!(status, "closed" | "withdrawn" | "rejected" | "merged")
}

fn update(payload: &Payload, at: OffsetDateTime) -> Update {
    match payload {
        Payload::Received(r) => {
            let Some(c) = &r.complaint else {
                return Update::default();
            };
            let who = c.complainant.clone().unwrap_or_default();
            let content = c.content.clone().unwrap_or_default();
            Update {
                tracking_no: Some(c.tracking_no.clone()),
                summary: Some(summary_of(&content.title, &content.description)),
                complainant: Some(Json(Complainant {
                    name: who.name,
                    phone: who.phone,
                    email: who.email,
                    wechat_openid: who.wechat_openid,
                    anonymous: who.anonymous,
                })),
                ack: r.ack.as_ref().map(|a| {
                    Json(AckFacts {
                        channel: channel_token(a.channel),
                        address: a.address.clone(),
                        reply_message_id: a.reply_message_id.clone(),
                        subject: a.subject.clone(),
                        language: if a.language.is_empty() {
                            content.language.clone()
                        } else {
                            a.language.clone()
                        },
                        answered_inline: a.answered_inline,
                    })
                }),
                received_at: Some(
                    c.received_at
                        .as_ref()
                        .and_then(from_timestamp)
                        .unwrap_or(at),
                ),
                ..Update::default()
            }
        }
        Payload::Classified(c) => Update {
            grade: c.classification.as_ref().and_then(|c| grade_of(c.grade)),
            ..Update::default()
        },
        Payload::Assigned(a) => {
            let assignment = a.assignment.clone().unwrap_or_default();
            Update {
                tracking_no: non_empty(&a.tracking_no),
                summary: non_empty(&a.summary),
                grade: a.classification.as_ref().and_then(|c| grade_of(c.grade)),
                department: non_empty(&assignment.department),
                handler: Some(assignment.handler.trim().to_owned()),
                co_departments: Some(assignment.co_departments),
                assigned_at: Some(at),
                ..Update::default()
            }
        }
        Payload::Regraded(r) => Update {
            grade: grade_of(r.new_grade),
            ..Update::default()
        },
        Payload::Lifecycle(l) => {
            let status = if l.action.is_empty() {
                lifecycle_name(l.status)
            } else {
                l.action.clone()
            };
            let signed = status == "signed_for" && !l.handler.trim().is_empty();
            let reopened = matches!(status.as_str(), "reopened");
            Update {
                department: non_empty(&l.department),
                handler: signed.then(|| l.handler.trim().to_owned()),
                assigned_at: signed.then_some(at),
                closed: Some(is_closed(&status) && !reopened),
                status: Some(status),
                ..Update::default()
            }
        }
        Payload::AlertMajor(a) => Update {
            tracking_no: non_empty(&a.tracking_no),
            summary: non_empty(&a.summary),
            grade: Some(1),
            department: non_empty(&a.department),
            ..Update::default()
        },
        Payload::SlaWarning(w) => dept_only(&w.department),
        Payload::SlaBreached(b) => dept_only(&b.department),
        Payload::SlaExtended(e) => dept_only(&e.department),
        Payload::Escalation(e) => dept_only(&e.department),
        _ => Update::default(),
    }
}

fn dept_only(department: &str) -> Update {
    Update {
        department: non_empty(department),
        ..Update::default()
    }
}

/// Records what the event says about its complaint and returns the facts
/// as they now stand.
pub async fn record(
    conn: &mut PgConnection,
    complaint_id: Uuid,
    payload: &Payload,
    at: OffsetDateTime,
) -> sqlx::Result<Facts> {
    let u = update(payload, at);
    // A grade carried by an event is as of the event; a handler of an
    // assignment may be empty (nobody picked yet): NULL.
    let handler = u.handler.as_ref().map(|h| h.trim().to_owned());
    sqlx::query_as::<_, Facts>(
        "INSERT INTO complaint_facts AS f (complaint_id, tracking_no, summary, complainant, ack,
             received_at, grade, grade_at, department, handler, co_departments, assigned_at,
             status, status_at, closed)
         VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), $4, $5, $6, $7,
             CASE WHEN $7::smallint IS NULL THEN NULL ELSE $8::timestamptz END,
             $9, NULLIF($10, ''), COALESCE($11, '{}'), $12, COALESCE($13, ''),
             CASE WHEN $13::text IS NULL THEN NULL ELSE $8 END, COALESCE($14, false))
         ON CONFLICT (complaint_id) DO UPDATE SET
             tracking_no = CASE WHEN $2 IS NOT NULL AND ($6::timestamptz IS NOT NULL OR f.tracking_no = '')
                 THEN $2 ELSE f.tracking_no END,
             summary = CASE WHEN $3 IS NOT NULL AND ($6 IS NOT NULL OR f.summary = '')
                 THEN $3 ELSE f.summary END,
             complainant = COALESCE($4, f.complainant),
             ack = COALESCE($5, f.ack),
             received_at = COALESCE($6, f.received_at),
             grade = CASE WHEN $7 IS NOT NULL AND (f.grade_at IS NULL OR f.grade_at <= $8)
                 THEN $7 ELSE f.grade END,
             grade_at = CASE WHEN $7 IS NOT NULL AND (f.grade_at IS NULL OR f.grade_at <= $8)
                 THEN $8 ELSE f.grade_at END,
             department = CASE
                 WHEN $12::timestamptz IS NOT NULL AND (f.assigned_at IS NULL OR f.assigned_at <= $12)
                     THEN COALESCE($9, f.department)
                 ELSE COALESCE(f.department, $9) END,
             handler = CASE WHEN $12 IS NOT NULL AND $10 IS NOT NULL
                     AND (f.assigned_at IS NULL OR f.assigned_at <= $12)
                 THEN NULLIF($10, '') ELSE f.handler END,
             co_departments = CASE WHEN $11::text[] IS NOT NULL
                     AND (f.assigned_at IS NULL OR f.assigned_at <= $12)
                 THEN $11 ELSE f.co_departments END,
             assigned_at = CASE WHEN $12 IS NOT NULL AND (f.assigned_at IS NULL OR f.assigned_at <= $12)
                 THEN $12 ELSE f.assigned_at END,
             status = CASE WHEN $13 IS NOT NULL AND (f.status_at IS NULL OR f.status_at <= $8)
                 THEN $13 ELSE f.status END,
             closed = CASE WHEN $14::boolean IS NOT NULL AND (f.status_at IS NULL OR f.status_at <= $8)
                 THEN $14 ELSE f.closed END,
             status_at = CASE WHEN $13 IS NOT NULL AND (f.status_at IS NULL OR f.status_at <= $8)
                 THEN $8 ELSE f.status_at END,
             updated_at = now()
         RETURNING complaint_id, tracking_no, summary, complainant, ack, received_at, grade,
             department, handler, co_departments, status, closed",
    )
    .bind(complaint_id)
    .bind(u.tracking_no)
    .bind(u.summary)
    .bind(u.complainant)
    .bind(u.ack)
    .bind(u.received_at)
    .bind(u.grade)
    .bind(at)
    .bind(u.department)
    .bind(handler)
    .bind(u.co_departments)
    .bind(u.assigned_at)
    .bind(u.status)
    .bind(u.closed)
    .fetch_one(conn)
    .await
}

/// The facts of a complaint, if notify has heard of it.
pub async fn load(conn: &mut PgConnection, complaint_id: Uuid) -> sqlx::Result<Option<Facts>> {
    sqlx::query_as::<_, Facts>(
        "SELECT complaint_id, tracking_no, summary, complainant, ack, received_at, grade,
             department, handler, co_departments, status, closed
         FROM complaint_facts WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .fetch_optional(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(summary_of("电梯故障", "三天没人修"), "电梯故障");
        assert_eq!(summary_of("  ", "三天  没人\n修"), "三天 没人 修");
        let long = "很".repeat(80);
        let s = summary_of("", &long);
        assert_eq!(s.chars().count(), 61);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn lifecycle_updates() {
        use tousu_proto::v1 as pb;
        let at = OffsetDateTime::UNIX_EPOCH;
        let signed = Payload::Lifecycle(pb::ComplaintLifecycle {
            action: "signed_for".into(),
            department: "quality".into(),
            handler: "ma".into(),
            ..Default::default()
        });
        let u = update(&signed, at);
        assert_eq!(u.handler.as_deref(), Some("ma"));
        assert_eq!(u.assigned_at, Some(at));
        assert_eq!(u.closed, Some(false));
        let closed = Payload::Lifecycle(pb::ComplaintLifecycle {
            action: "closed".into(),
            department: "quality".into(),
            ..Default::default()
        });
        let u = update(&closed, at);
        assert_eq!(u.closed, Some(true));
        assert_eq!(u.handler, None);
        assert_eq!(u.assigned_at, None);
        let merged = Payload::Lifecycle(pb::ComplaintLifecycle {
            status: pb::Status::Merged as i32,
            ..Default::default()
        });
        assert_eq!(update(&merged, at).closed, Some(true));
    }
}
