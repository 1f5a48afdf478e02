//! tousu desk: the case record and its state, read by department systems
//! and the console.
//!
//! [`Recorder`] consumes every event (`tousu.evt.>`) and folds it into the
//! `cases` row and the `timeline`; events may arrive in any order, so each
//! column only moves forward. [`http`] serves `GET /v1/complaints/{id}` and
//! `GET /v1/complaints`; [`grpc`] serves `tousu.desk.v1.DeskService`.

pub mod cases;
pub mod grpc;
pub mod http;

use std::sync::Arc;

use sqlx::PgConnection;
use tousu_bus::{ConsumerSpec, Delivery, EventExt, HandleError, Handler, Payload};
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_proto::v1 as pb;

pub const NAME: &str = "desk";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    ctx.spawn_consumer(
        ConsumerSpec::new("desk", &["tousu.evt.>"]),
        Arc::new(Recorder),
    );
    let http = http::router(ctx.pool.clone());
    let grpc = grpc::routes(ctx.pool.clone());
    tousu_kit::serve(&ctx, http, Some(grpc)).await
}

/// Folds events into the case record.
pub struct Recorder;

/// Main-path statuses only move forward; this is their rank.
fn main_path(status: pb::Status) -> Option<i16> {
    let n = status as i16;
    (1..=pb::Status::Closed as i16).contains(&n).then_some(n)
}

impl Handler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, d: &Delivery) -> Result<(), HandleError> {
        let id = d.complaint_id;
        let e = &d.event;
        let event_id = uuid::Uuid::parse_str(&e.id)
            .map_err(|err| HandleError::Reject(format!("event id: {err}")))?;
        sqlx::query("INSERT INTO cases (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO timeline (complaint_id, event_id, event_type, producer, sequence, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(event_id)
        .bind(e.event_type())
        .bind(&e.producer)
        .bind(e.sequence as i64)
        .bind(e.occurred_at.as_ref().and_then(tousu_bus::from_timestamp))
        .execute(&mut *conn)
        .await?;

        match &e.payload {
            Some(Payload::Received(r)) => {
                let Some(c) = &r.complaint else { return Ok(()) };
                let channel = tousu_bus::channel_token(c.channel);
                sqlx::query(
                    "UPDATE cases SET record = $2, tracking_no = $3, channel = $4, received_at = $5,
                         status = GREATEST(status, $6), updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(prost::Message::encode_to_vec(c))
                .bind(&c.tracking_no)
                .bind(channel)
                .bind(c.received_at.as_ref().and_then(tousu_bus::from_timestamp))
                .bind(pb::Status::Received as i16)
                .execute(&mut *conn)
                .await?;
            }
            Some(Payload::Classified(c)) if !d.stale => {
                let c = c.classification.clone().unwrap_or_default();
                sqlx::query(
                    "UPDATE cases SET category = $2, grade = $3, urgency = $4, confidence = $5,
                         status = GREATEST(status, $6), updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(&c.category)
                .bind(c.grade as i16)
                .bind(c.urgency as i16)
                .bind(c.confidence)
                .bind(pb::Status::Classified as i16)
                .execute(&mut *conn)
                .await?;
            }
            Some(Payload::Assigned(a)) if !d.stale => {
                let c = a.classification.clone().unwrap_or_default();
                let asg = a.assignment.clone().unwrap_or_default();
                sqlx::query(
                    "UPDATE cases SET department = $2, handler = NULLIF($3, ''), category = $4, grade = $5,
                         urgency = $6, confidence = $7, status = GREATEST(status, $8), updated_at = now()
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&asg.department)
                .bind(&asg.handler)
                .bind(&c.category)
                .bind(c.grade as i16)
                .bind(c.urgency as i16)
                .bind(c.confidence)
                .bind(pb::Status::Assigned as i16)
                .execute(&mut *conn)
                .await?;
            }
            Some(Payload::SlaStarted(s)) if s.target == pb::SlaTarget::Resolution as i32 => {
                sqlx::query(
                    "UPDATE cases SET resolution_deadline = $2, updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(s.deadline.as_ref().and_then(tousu_bus::from_timestamp))
                .execute(&mut *conn)
                .await?;
            }
            Some(Payload::Lifecycle(l)) if !d.stale => {
                if let Some(rank) = pb::Status::try_from(l.status).ok().and_then(main_path) {
                    sqlx::query("UPDATE cases SET status = GREATEST(status, $2), updated_at = now() WHERE id = $1")
                        .bind(id)
                        .bind(rank)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
