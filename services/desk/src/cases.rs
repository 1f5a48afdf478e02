//! Reading cases back.

use prost::Message;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_proto::desk::Case;
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
}

const COLUMNS: &str = "id, tracking_no, record, channel, status, department, handler, category, grade, \
                       urgency, confidence, resolution_deadline, received_at, updated_at";

/// How a case is looked up: its id or its tracking number.
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

pub async fn get(pool: &PgPool, key: &Key) -> Result<Option<CaseRow>, sqlx::Error> {
    let by = |column: &str| {
        sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM cases WHERE {column} = $1"))
    };
    match key {
        Key::Id(id) => {
            sqlx::query_as(by("id"))
                .bind(*id)
                .fetch_optional(pool)
                .await
        }
        Key::TrackingNo(t) => {
            sqlx::query_as(by("tracking_no"))
                .bind(t)
                .fetch_optional(pool)
                .await
        }
    }
}

/// Newest first; `after` is the last id of the previous page.
pub async fn list(
    pool: &PgPool,
    department: Option<&str>,
    status: Option<i16>,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
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
    .fetch_all(pool)
    .await
}

fn status_name(s: i16) -> String {
    pb::Status::try_from(i32::from(s))
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
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

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

impl CaseRow {
    fn complaint(&self) -> pb::Complaint {
        self.record
            .as_deref()
            .and_then(|b| pb::Complaint::decode(b).ok())
            .unwrap_or_default()
    }

    /// The JSON served at `GET /v1/complaints/{id}`.
    pub fn to_json(&self) -> Value {
        let c = self.complaint();
        let content = c.content.unwrap_or_default();
        let who = c.complainant.unwrap_or_default();
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
        }
    }
}
