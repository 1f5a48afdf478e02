//! tousu notify: tells the right people, on their channel, in seconds.
//!
//! - [`plan`]: events → deliveries (policy rules, rosters, templates, dedup, digests).
//! - [`send`]: deliveries → channels (retries, circuit breaker, dead letter, log).
//! - [`channels`]: email, SMS, WeCom, DingTalk, Feishu, webhook, WeChat.
//! - [`acks`]: acknowledgement links and the ladder.
//!
//! IN PROGRESS: the old log-only notifier still runs until the planner lands.

pub mod acks;
pub mod channels;
pub mod model;
pub mod plan;
pub mod send;

use std::sync::Arc;

use sqlx::PgConnection;
use tousu_bus::{ConsumerSpec, Delivery, EventExt, HandleError, Handler, Payload};
use tousu_kit::{Config, Running, ServiceSpec};

pub const NAME: &str = "notify";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let channels = Arc::new(channels::Channels::new(&config)?);
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    ctx.spawn_consumer(
        ConsumerSpec::new(
            "notify",
            &[
                "tousu.evt.complaint.assigned.>",
                "tousu.evt.alert.>",
                "tousu.evt.sla.>",
                "tousu.evt.escalation.>",
            ],
        ),
        Arc::new(LogNotifier),
    );
    send::spawn(&ctx, channels);
    tousu_kit::serve(&ctx, axum::Router::new(), None).await
}

/// Delivers every notification to the log.
pub struct LogNotifier;

/// Who is told about an event (the policy's rosters come later).
fn recipient(payload: &Payload) -> String {
    match payload {
        Payload::Assigned(a) => format!(
            "department:{}",
            a.assignment
                .as_ref()
                .map(|a| a.department.as_str())
                .unwrap_or("?")
        ),
        Payload::AlertMajor(_) | Payload::AlertHot(_) => "role:leadership".into(),
        Payload::SlaBreached(b) => format!("department_head:{}", b.department),
        Payload::SlaWarning(w) => format!("department_head:{}", w.department),
        Payload::Escalation(e) => format!("level:{}", e.level),
        _ => "role:complaint_centre".into(),
    }
}

impl Handler for LogNotifier {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let Some(payload) = &delivery.event.payload else {
            return Ok(());
        };
        let event_type = delivery.event.event_type();
        let recipient = recipient(payload);
        let event_id = uuid::Uuid::parse_str(&delivery.event.id)
            .map_err(|e| HandleError::Reject(format!("event id: {e}")))?;
        sqlx::query(
            "INSERT INTO deliveries (cause_event_id, complaint_id, event_type, recipient, channel, status, attempts, detail)
             VALUES ($1, $2, $3, $4, 'log', 'delivered', 1, $5) ON CONFLICT DO NOTHING",
        )
        .bind(event_id)
        .bind(delivery.complaint_id)
        .bind(&event_type)
        .bind(&recipient)
        .bind(format!("{payload:?}"))
        .execute(conn)
        .await?;
        tracing::info!(
            event = %event_type,
            complaint = %delivery.complaint_id,
            %recipient,
            "notification (log channel)"
        );
        metrics::counter!("tousu_notify_delivered_total", "channel" => "log").increment(1);
        Ok(())
    }
}
