//! Reading cases back: the `cases` row with its follow-ups, as JSON (HTTP)
//! and as `tousu.desk.v1.Case` (gRPC).

use prost::Message;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_domain::lifecycle::Status;
use tousu_proto::desk::{Case, FollowUp, Pause};
use tousu_proto::v1 as pb;
use uuid::Uuid;

/// A `cases` row.
#[derive(Debug, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub tracking_no: Option<String>,
    pub record: Option<Vec<u8>>,
    pub channel: Option<String>,
    pub status: i16,
    pub department: Option<String>,
    pub handler: Option<String>,
    pub category: Option<String>,
    pub grade: Option<i16>,
    pub urgency: Option<i16>,
    pub confidence: Option<f64>,
    pub resolution_deadline: Option<OffsetDateTime>,
    pub received_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    pub arbitrated: bool,
    pub paused_from: Option<i16>,
    pub pause_reason: Option<String>,
    pub pause_note: Option<String>,
    pub paused_by: Option<String>,
    pub paused_at: Option<OffsetDateTime>,
    pub extensions: i16,
    pub returned_by: Vec<String>,
    pub resolution: Option<String>,
    pub return_visited: bool,
    pub satisfaction: Option<i16>,
    pub reopens: i16,
    pub merged_into: Option<Uuid>,
    pub linked_complaint_ids: Vec<Uuid>,
    pub assigned_at: Option<OffsetDateTime>,
    /// Loaded by [`get`] and [`list`], not part of the row.
    #[sqlx(skip)]
    pub follow_ups: Vec<FollowUpRow>,
}

/// A `follow_ups` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FollowUpRow {
    pub complaint_id: Uuid,
    pub channel: String,
    pub author: String,
    pub text: String,
    pub attachments: i32,
    pub received_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, tracking_no, record, channel, status, department, handler, category, grade, \
                       urgency, confidence, resolution_deadline, received_at, updated_at, arbitrated, \
                       paused_from, pause_reason, pause_note, paused_by, paused_at, extensions, \
                       returned_by, resolution, return_visited, satisfaction, reopens, merged_into, \
                       linked_complaint_ids, assigned_at";

/// How a case is looked up: its id or its tracking number.
#[derive(Debug, Clone)]
pub enum Key {
    Id(Uuid),
    TrackingNo(String),
}

impl Key {
    pub fn parse(s: &str) -> Result<Key, String> {
        if s.starts_with("TS") {
            s.parse::<tousu_domain::TrackingNo>()
                .map(|t| Key::TrackingNo(t.to_string()))
                .map_err(|e| e.to_string())
        } else {
            Uuid::parse_str(s).map(Key::Id).map_err(|_| {
                format!("{s:?} is neither a complaint id (UUID) nor a tracking number (TS…)")
            })
        }
    }
}

/// The row of `key`; with `FOR UPDATE` when `lock` (inside a transaction).
/// Follow-ups are not loaded.
pub async fn row(
    conn: &mut PgConnection,
    key: &Key,
    lock: bool,
) -> Result<Option<CaseRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let by = |column: &str| {
        sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cases WHERE {column} = $1{lock}"
        ))
    };
    match key {
        Key::Id(id) => {
            sqlx::query_as(by("id"))
                .bind(*id)
                .fetch_optional(conn)
                .await
        }
        Key::TrackingNo(t) => {
            sqlx::query_as(by("tracking_no"))
                .bind(t)
                .fetch_optional(conn)
                .await
        }
    }
}

/// The case with its follow-ups.
pub async fn get(pool: &PgPool, key: &Key) -> Result<Option<CaseRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let Some(mut case) = row(&mut conn, key, false).await? else {
        return Ok(None);
    };
    case.follow_ups = follow_ups(&mut conn, &[case.id]).await?;
    Ok(Some(case))
}

/// Follow-ups of the complaints `ids`, oldest first.
async fn follow_ups(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<FollowUpRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT complaint_id, channel, author, text, attachments, received_at FROM follow_ups
         WHERE complaint_id = ANY($1) ORDER BY received_at, event_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Newest first; `after` is the last id of the previous page.
pub async fn list(
    pool: &PgPool,
    department: Option<&str>,
    status: Option<i16>,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut rows = sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cases
         WHERE ($1::text IS NULL OR department = $1)
           AND ($2::smallint IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    )))
    .bind(department)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    for f in follow_ups(&mut conn, &ids).await? {
        if let Some(r) = rows.iter_mut().find(|r| r.id == f.complaint_id) {
            r.follow_ups.push(f);
        }
    }
    Ok(rows)
}

/// One entry of the audit trail.
#[derive(Debug, sqlx::FromRow)]
pub struct TimelineRow {
    pub event_id: Uuid,
    pub event_type: String,
    pub producer: String,
    pub sequence: i64,
    pub occurred_at: Option<OffsetDateTime>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<Value>,
}

/// The timeline of a complaint, in the order desk recorded it.
pub async fn timeline(pool: &PgPool, id: Uuid) -> Result<Vec<TimelineRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, event_type, producer, sequence, occurred_at, action, actor, reason, detail
         FROM timeline WHERE complaint_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

impl TimelineRow {
    pub fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "event_type": self.event_type,
            "producer": self.producer,
            "sequence": self.sequence,
            "occurred_at": rfc3339(self.occurred_at),
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "detail": self.detail,
        })
    }
}

/// The lower-case status name; `unspecified` before desk saw the complaint.
pub fn status_name(s: i16) -> &'static str {
    Status::from_number(i32::from(s)).map_or("unspecified", Status::as_str)
}

fn urgency_name(u: i16) -> Option<String> {
    pb::Urgency::try_from(i32::from(u))
        .ok()
        .filter(|u| *u != pb::Urgency::Unspecified)
        .map(|u| {
            u.as_str_name()
                .trim_start_matches("URGENCY_")
                .to_ascii_lowercase()
        })
}

pub(crate) fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

impl CaseRow {
    /// The complaint record as intake committed it (default before desk
    /// saw `complaint.received`).
    pub fn complaint(&self) -> pb::Complaint {
        self.record
            .as_deref()
            .and_then(|b| pb::Complaint::decode(b).ok())
            .unwrap_or_default()
    }

    /// The JSON served at `GET /v1/complaints/{id}` and answered by the
    /// actions.
    pub fn to_json(&self) -> Value {
        let c = self.complaint();
        let content = c.content.unwrap_or_default();
        let who = c.complainant.unwrap_or_default();
        let pause = match self.paused_from {
            Some(from) => json!({
                "from": status_name(from),
                "reason": self.pause_reason,
                "note": self.pause_note,
                "actor": self.paused_by,
                "since": rfc3339(self.paused_at),
            }),
            None => Value::Null,
        };
        let follow_ups: Vec<Value> = self
            .follow_ups
            .iter()
            .map(|f| {
                json!({
                    "channel": f.channel,
                    "author": f.author,
                    "text": f.text,
                    "attachments": f.attachments,
                    "received_at": rfc3339(f.received_at),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "tracking_no": self.tracking_no,
            "status": status_name(self.status),
            "channel": self.channel,
            "department": self.department,
            "handler": self.handler,
            "category": self.category,
            "grade": self.grade,
            "urgency": self.urgency.and_then(urgency_name),
            "confidence": self.confidence,
            "resolution_deadline": rfc3339(self.resolution_deadline),
            "received_at": rfc3339(self.received_at),
            "assigned_at": rfc3339(self.assigned_at),
            "updated_at": rfc3339(Some(self.updated_at)),
            "title": content.title,
            "description": content.description,
            "language": content.language,
            "product": content.product,
            "location": content.location,
            "amount": content.amount,
            "demand": content.demand,
            "complainant": {
                "name": who.name,
                "phone": who.phone,
                "email": who.email,
                "anonymous": who.anonymous,
            },
            "arbitrated": self.arbitrated,
            "pause": pause,
            "extensions": self.extensions,
            "returned_by": self.returned_by,
            "resolution": self.resolution,
            "return_visited": self.return_visited,
            "satisfaction": self.satisfaction,
            "reopens": self.reopens,
            "merged_into": self.merged_into,
            "linked_complaint_ids": self.linked_complaint_ids,
            "follow_ups": follow_ups,
        })
    }

    /// The `tousu.desk.v1.Case` served over gRPC.
    pub fn to_proto(&self) -> Case {
        let mut c = self.complaint();
        c.id = self.id.to_string();
        c.tracking_no = self.tracking_no.clone().unwrap_or_default();
        c.status = i32::from(self.status);
        if self.category.is_some() {
            c.classification = Some(pb::Classification {
                category: self.category.clone().unwrap_or_default(),
                confidence: self.confidence.unwrap_or_default(),
                grade: self.grade.unwrap_or_default() as u32,
                urgency: i32::from(self.urgency.unwrap_or_default()),
                ..Default::default()
            });
        }
        if let Some(department) = &self.department {
            c.assignment = Some(pb::Assignment {
                department: department.clone(),
                handler: self.handler.clone().unwrap_or_default(),
                ..Default::default()
            });
        }
        Case {
            complaint: Some(c),
            resolution_deadline: self.resolution_deadline.map(tousu_bus::to_timestamp),
            updated_at: Some(tousu_bus::to_timestamp(self.updated_at)),
            arbitrated: self.arbitrated,
            pause: self.paused_from.map(|from| Pause {
                from_status: i32::from(from),
                reason: self.pause_reason.clone().unwrap_or_default(),
                note: self.pause_note.clone().unwrap_or_default(),
                actor: self.paused_by.clone().unwrap_or_default(),
                since: self.paused_at.map(tousu_bus::to_timestamp),
            }),
            extensions: self.extensions.max(0) as u32,
            returned_by: self.returned_by.clone(),
            linked_complaint_ids: self
                .linked_complaint_ids
                .iter()
                .map(Uuid::to_string)
                .collect(),
            follow_ups: self
                .follow_ups
                .iter()
                .map(|f| FollowUp {
                    channel: channel_number(&f.channel),
                    author: f.author.clone(),
                    text: f.text.clone(),
                    attachments: f.attachments.max(0) as u32,
                    received_at: f.received_at.map(tousu_bus::to_timestamp),
                })
                .collect(),
            resolution: self.resolution.clone().unwrap_or_default(),
            return_visited: self.return_visited,
            satisfaction: self.satisfaction.unwrap_or(0).max(0) as u32,
            reopens: self.reopens.max(0) as u32,
            merged_into: self.merged_into.map(|u| u.to_string()).unwrap_or_default(),
            assigned_at: self.assigned_at.map(tousu_bus::to_timestamp),
        }
    }
}

/// The proto number of a channel token (`webform` → 3).
fn channel_number(token: &str) -> i32 {
    pb::Channel::from_str_name(&format!("CHANNEL_{}", token.to_ascii_uppercase()))
        .map_or(0, |c| c as i32)
}
