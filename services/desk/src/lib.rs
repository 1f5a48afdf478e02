//! tousu desk: the case record and its lifecycle, read and acted on by
//! department systems and the console.
//!
//! - [`Recorder`] consumes every event (`tousu.evt.>`) and folds it into the
//!   `cases` row and the `timeline`: the complaint record, classification,
//!   (re)assignments, SLA deadlines, follow-ups and linked complaints.
//! - [`actions`]: sign for, return, transfer … close. Each runs the
//!   lifecycle state machine ([`tousu_domain::lifecycle`]) on the locked
//!   row, and writes the new state, the timeline row and the lifecycle
//!   event (outbox) in one transaction.
//! - [`http`] serves `GET /v1/complaints[/{id}[/timeline]]` and
//!   `POST /v1/complaints/{id}/<action>`; [`grpc`] serves
//!   `tousu.desk.v1.DeskService`; both act through [`actions::Desk`].
//!
//! Desk loads the policy like routing and sla (the file, or the version
//! published to the KV bucket, hot reloaded) to check pause reasons,
//! departments and return windows.

pub mod actions;
pub mod cases;
pub mod grpc;
pub mod http;

use std::sync::Arc;

use sqlx::PgConnection;
use tousu_bus::{ConsumerSpec, Delivery, EventExt, HandleError, Handler, Payload};
use tousu_domain::lifecycle::Status;
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_proto::v1 as pb;
use tousu_routing::reload;

pub const NAME: &str = "desk";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub async fn start(config: Config) -> anyhow::Result<Running> {
    // A policy file that does not load stops the service before it binds.
    let file_policy = tousu_routing::load_policy(&config)?;
    let dir = reload::base_dir(&config.policy);
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let store = reload::bucket(&ctx.js, ctx.config.stream_replicas).await?;
    let policy = reload::published(&store, &dir).await.unwrap_or(file_policy);
    let desk = Arc::new(actions::Desk::new(
        ctx.pool.clone(),
        ctx.outbox.clone(),
        policy,
    ));
    {
        let desk = desk.clone();
        ctx.tracker.spawn(reload::watch(
            store,
            dir,
            NAME,
            ctx.cancel.clone(),
            move |policy| {
                desk.set_policy(policy);
                Ok(())
            },
        ));
    }
    ctx.spawn_consumer(
        ConsumerSpec::new("desk", &["tousu.evt.>"]),
        Arc::new(Recorder),
    );
    tousu_kit::serve(&ctx, http::router(desk.clone()), Some(grpc::routes(desk))).await
}

/// Folds events into the case record.
///
/// Events of different producers may arrive in any order, so most columns
/// only move forward (the status by rank along the main path). Two
/// exceptions:
/// - desk's own lifecycle events were applied by the action that produced
///   them, in the same transaction as their timeline row; seeing them again
///   changes nothing;
/// - `complaint.assigned` after a return or transfer moves the status back
///   to `assigned`, with the new department, and is applied only while the
///   case waits for an assignment (never to a case being handled, closed,
///   withdrawn …).
pub struct Recorder;

/// Main-path statuses only move forward; this is their rank.
fn main_path(status: pb::Status) -> Option<i16> {
    let n = status as i16;
    (1..=pb::Status::Closed as i16).contains(&n).then_some(n)
}

/// Statuses in which a case takes a (new) assignment.
fn awaits_assignment(status: i16) -> bool {
    status == 0
        || matches!(
            Status::from_number(i32::from(status)),
            Some(
                Status::Received
                    | Status::Acknowledged
                    | Status::Classified
                    | Status::Assigned
                    | Status::Returned
                    | Status::Transferred
            )
        )
}

/// The author of a follow-up as shown in the case: name, forum username
/// or address, as received.
fn author_of(a: Option<&pb::Complainant>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    [
        &a.name,
        &a.forum_username,
        &a.email,
        &a.phone,
        &a.wechat_openid,
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .cloned()
    .unwrap_or_default()
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
        let (action, actor, reason) = match &e.payload {
            Some(Payload::Lifecycle(l)) => (
                Some(l.action.as_str()).filter(|a| !a.is_empty()),
                Some(l.actor.as_str()).filter(|a| !a.is_empty()),
                Some(l.reason.as_str()).filter(|a| !a.is_empty()),
            ),
            _ => (None, None, None),
        };
        // Desk's own actions wrote this row already (same event id).
        sqlx::query(
            "INSERT INTO timeline (complaint_id, event_id, event_type, producer, sequence, occurred_at,
                                   action, actor, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(event_id)
        .bind(e.event_type())
        .bind(&e.producer)
        .bind(e.sequence as i64)
        .bind(e.occurred_at.as_ref().and_then(tousu_bus::from_timestamp))
        .bind(action)
        .bind(actor)
        .bind(reason)
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
            Some(Payload::FollowedUp(f)) => {
                sqlx::query(
                    "INSERT INTO follow_ups (event_id, complaint_id, channel, author, text, attachments, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(event_id)
                .bind(id)
                .bind(tousu_bus::channel_token(f.channel))
                .bind(author_of(f.author.as_ref()))
                .bind(&f.text)
                .bind(f.attachments.len().min(i32::MAX as usize) as i32)
                .bind(
                    f.received_at
                        .as_ref()
                        .and_then(tousu_bus::from_timestamp)
                        .or_else(|| e.occurred_at.as_ref().and_then(tousu_bus::from_timestamp)),
                )
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE cases SET updated_at = now() WHERE id = $1")
                    .bind(id)
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
            Some(Payload::Assigned(a)) if !d.stale => assigned(conn, d, a).await?,
            Some(Payload::SlaStarted(s)) if s.target == pb::SlaTarget::Resolution as i32 => {
                resolution_deadline(conn, d, s.deadline.as_ref()).await?;
            }
            Some(Payload::SlaResumed(s)) if s.target == pb::SlaTarget::Resolution as i32 => {
                resolution_deadline(conn, d, s.deadline.as_ref()).await?;
            }
            Some(Payload::SlaExtended(s)) if s.target == pb::SlaTarget::Resolution as i32 => {
                resolution_deadline(conn, d, s.new_deadline.as_ref()).await?;
            }
            Some(Payload::Lifecycle(_)) if e.producer == NAME => {}
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

/// A newer resolution deadline from sla (armed, resumed, extended). Stale
/// sla events (an older sequence) do not move it back.
async fn resolution_deadline(
    conn: &mut PgConnection,
    d: &Delivery,
    deadline: Option<&tousu_proto::Timestamp>,
) -> Result<(), HandleError> {
    if d.stale {
        return Ok(());
    }
    sqlx::query("UPDATE cases SET resolution_deadline = $2, updated_at = now() WHERE id = $1")
        .bind(d.complaint_id)
        .bind(deadline.and_then(tousu_bus::from_timestamp))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `complaint.assigned`: the classification and linked complaints always;
/// the department, handler and status when the case waits for an
/// assignment (first one, or after a return or transfer).
async fn assigned(
    conn: &mut PgConnection,
    d: &Delivery,
    a: &pb::ComplaintAssigned,
) -> Result<(), HandleError> {
    let id = d.complaint_id;
    let c = a.classification.clone().unwrap_or_default();
    let asg = a.assignment.clone().unwrap_or_default();
    let linked: Vec<uuid::Uuid> = a
        .linked_complaint_ids
        .iter()
        .filter_map(|l| uuid::Uuid::parse_str(l).ok())
        .filter(|l| *l != id)
        .collect();
    let (status, mut returned_by): (i16, Vec<String>) =
        sqlx::query_as("SELECT status, returned_by FROM cases WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(
        "UPDATE cases SET category = $2, grade = $3, urgency = $4, confidence = $5,
             linked_complaint_ids = ARRAY(
                 SELECT DISTINCT l FROM unnest(linked_complaint_ids || $6::uuid[]) AS l),
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&c.category)
    .bind(c.grade as i16)
    .bind(c.urgency as i16)
    .bind(c.confidence)
    .bind(&linked)
    .execute(&mut *conn)
    .await?;
    // Linked cases are listed on each other: the earlier ones learn of this one.
    sqlx::query(
        "UPDATE cases SET linked_complaint_ids = array_append(linked_complaint_ids, $1), updated_at = now()
         WHERE id = ANY($2) AND NOT ($1 = ANY(linked_complaint_ids))",
    )
    .bind(id)
    .bind(&linked)
    .execute(&mut *conn)
    .await?;
    if !awaits_assignment(status) {
        tracing::info!(
            complaint = %id,
            status = %crate::cases::status_name(status),
            department = %asg.department,
            "assignment not applied: the case is not waiting for one"
        );
        return Ok(());
    }
    for r in &a.returned_by {
        if !returned_by.contains(r) {
            returned_by.push(r.clone());
        }
    }
    sqlx::query(
        "UPDATE cases SET department = $2, handler = NULLIF($3, ''), status = $4, assigned_at = $5,
             arbitrated = arbitrated OR $6, returned_by = $7, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&asg.department)
    .bind(&asg.handler)
    .bind(Status::Assigned.number())
    .bind(
        d.event
            .occurred_at
            .as_ref()
            .and_then(tousu_bus::from_timestamp),
    )
    .bind(a.arbitrated)
    .bind(&returned_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
