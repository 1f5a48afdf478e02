//! Committing complaints: dedup key, tracking number, record and the
//! `complaint.received` event in one transaction.

use prost::Message;
use sqlx::PgPool;
use time::{OffsetDateTime, UtcOffset};
use tousu_bus::Outbox;
use tousu_domain::{Channel, ComplaintId, TrackingNo};
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::submission::Valid;

/// China Standard Time: tracking numbers carry the local date of receipt.
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("valid offset"),
};

/// What the caller is told once the complaint is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: Uuid,
    pub tracking_no: String,
    /// True when the dedup key was seen before: no new complaint was made.
    pub duplicate: bool,
}

/// The intake service's state.
pub struct Intake {
    pub pool: PgPool,
    pub outbox: Outbox,
}

/// Why a submission could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The database (or the outbox) could not commit: nothing was stored.
    #[error("not committed: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for SubmitError {
    fn from(e: sqlx::Error) -> Self {
        SubmitError::Unavailable(e.to_string())
    }
}

impl From<tousu_bus::outbox::EnqueueError> for SubmitError {
    fn from(e: tousu_bus::outbox::EnqueueError) -> Self {
        SubmitError::Unavailable(e.to_string())
    }
}

fn pb_channel(c: Channel) -> pb::Channel {
    match c {
        Channel::Phone => pb::Channel::Phone,
        Channel::Email => pb::Channel::Email,
        Channel::WebForm => pb::Channel::Webform,
        Channel::WeChat => pb::Channel::Wechat,
        Channel::Forum => pb::Channel::Forum,
        Channel::Manual => pb::Channel::Manual,
    }
}

impl Intake {
    pub fn new(ctx: &tousu_kit::Ctx) -> Self {
        Self {
            pool: ctx.pool.clone(),
            outbox: ctx.outbox.clone(),
        }
    }

    /// Commits a complaint, or returns the one an earlier submission with
    /// the same `dedup_key` created. Answers only after the commit.
    pub async fn submit(
        &self,
        valid: Valid,
        dedup_key: Option<String>,
    ) -> Result<Receipt, SubmitError> {
        let id = ComplaintId::new();
        let now = OffsetDateTime::now_utc();
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &dedup_key {
            // Concurrent submissions with one key queue on this row; all but
            // the first find it taken and answer with the first's complaint.
            let fresh = sqlx::query(
                "INSERT INTO dedup_keys (key, complaint_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                tx.rollback().await?;
                let (id, tracking_no): (Uuid, String) = sqlx::query_as(
                    "SELECT c.id, c.tracking_no FROM dedup_keys d JOIN complaints c ON c.id = d.complaint_id
                     WHERE d.key = $1",
                )
                .bind(key)
                .fetch_one(&self.pool)
                .await?;
                return Ok(Receipt {
                    id,
                    tracking_no,
                    duplicate: true,
                });
            }
        }
        let day = now.to_offset(CST).date();
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO tracking_sequence (day, last_seq) VALUES ($1, 1)
             ON CONFLICT (day) DO UPDATE SET last_seq = tracking_sequence.last_seq + 1
             RETURNING last_seq",
        )
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
        let tracking_no = TrackingNo::new(day, seq as u64)
            .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        let complaint = pb::Complaint {
            id: id.to_string(),
            tracking_no: tracking_no.to_string(),
            channel: pb_channel(valid.channel) as i32,
            channel_message_id: valid.channel_message_id.clone(),
            complainant: Some(valid.complainant),
            content: Some(valid.content),
            classification: None,
            assignment: None,
            status: pb::Status::Received as i32,
            received_at: Some(tousu_bus::to_timestamp(now)),
        };
        sqlx::query(
            "INSERT INTO complaints (id, tracking_no, channel, channel_message_id, record, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_uuid())
        .bind(tracking_no.as_str())
        .bind(valid.channel.as_str())
        .bind(Some(valid.channel_message_id).filter(|s| !s.is_empty()))
        .bind(complaint.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.outbox
            .enqueue(
                &mut tx,
                id.as_uuid(),
                "",
                pb::event::Payload::Received(pb::ComplaintReceived {
                    complaint: Some(complaint),
                }),
            )
            .await?;
        tx.commit().await?;
        self.outbox.wake();
        metrics::counter!("tousu_intake_accepted_total", "channel" => valid.channel.as_str())
            .increment(1);
        Ok(Receipt {
            id: id.as_uuid(),
            tracking_no: tracking_no.to_string(),
            duplicate: false,
        })
    }

    /// Keeps rejected input with its reason. Failure to store is logged,
    /// never turned into a different answer to the caller.
    pub async fn quarantine(
        &self,
        channel: Channel,
        reason: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let result = sqlx::query(
            "INSERT INTO quarantine (channel, reason, content_type, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(channel.as_str())
        .bind(reason)
        .bind(content_type)
        .bind(body)
        .execute(&self.pool)
        .await;
        metrics::counter!("tousu_intake_rejected_total", "channel" => channel.as_str())
            .increment(1);
        if let Err(e) = result {
            tracing::error!(error = %e, %reason, "could not store rejected input in quarantine");
        }
    }
}
