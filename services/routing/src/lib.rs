//! tousu routing: classifies, grades and assigns each received complaint.
//!
//! `complaint.received.*` → [`Router`] applies the policy → one row in
//! `decisions` (the explanation) plus `complaint.classified`,
//! `complaint.assigned.<dept>` and, for grade 1, `alert.major` — all in the
//! transaction that records the event in the inbox. A complaint that
//! already has a decision gets no second one.

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;
use sqlx::PgConnection;
use tousu_bus::{ConsumerSpec, Delivery, HandleError, Handler, Outbox, Payload};
use tousu_domain::policy::{Decision, Policy};
use tousu_domain::{Grade, Urgency};
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_proto::v1 as pb;

pub const NAME: &str = "routing";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Reads and validates the policy file named in the configuration.
pub fn load_policy(config: &Config) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(&config.policy)
        .with_context(|| format!("reading policy {}", config.policy.display()))?;
    Policy::from_toml(&text).with_context(|| format!("policy {}", config.policy.display()))
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let policy = load_policy(&config)?;
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    ctx.spawn_consumer(
        ConsumerSpec::new("routing", &["tousu.evt.complaint.received.>"]),
        Arc::new(Router {
            policy,
            outbox: ctx.outbox.clone(),
        }),
    );
    tousu_kit::serve(&ctx, axum::Router::new(), None).await
}

/// The `complaint.received` handler.
pub struct Router {
    policy: Policy,
    outbox: Outbox,
}

pub fn pb_urgency(u: Urgency) -> pb::Urgency {
    match u {
        Urgency::Normal => pb::Urgency::Normal,
        Urgency::Expedited => pb::Urgency::Expedited,
        Urgency::Urgent => pb::Urgency::Urgent,
    }
}

fn text_of(c: &pb::Complaint) -> String {
    let content = c.content.clone().unwrap_or_default();
    [
        content.title,
        content.description,
        content.product,
        content.category_hint,
    ]
    .join("\n")
}

fn hits(d: &Decision) -> Vec<pb::RuleHit> {
    d.hits
        .iter()
        .map(|h| pb::RuleHit {
            rule: h.rule.clone(),
            reason: h.reason.clone(),
        })
        .collect()
}

impl Handler for Router {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let Some(Payload::Received(received)) = &delivery.event.payload else {
            return Ok(());
        };
        let complaint = received
            .complaint
            .as_ref()
            .ok_or_else(|| HandleError::Reject("complaint.received without a complaint".into()))?;
        let d = self.policy.decide(&text_of(complaint));
        let rules = json!(
            d.hits
                .iter()
                .map(|h| json!({"rule": h.rule, "reason": h.reason}))
                .collect::<Vec<_>>()
        );
        let fresh = sqlx::query(
            "INSERT INTO decisions (complaint_id, category, department, grade, urgency, rules, policy_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (complaint_id) DO NOTHING",
        )
        .bind(delivery.complaint_id)
        .bind(&d.category)
        .bind(d.department.as_str())
        .bind(i16::from(d.grade.get()))
        .bind(d.urgency.as_str())
        .bind(&rules)
        .bind(&self.policy.version)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            tracing::info!(complaint = %delivery.complaint_id, "already routed; no second assignment");
            return Ok(());
        }
        let classification = pb::Classification {
            category: d.category.clone(),
            confidence: if d.hits.first().is_some_and(|h| h.rule == "default") {
                0.0
            } else {
                1.0
            },
            grade: u32::from(d.grade.get()),
            urgency: pb_urgency(d.urgency) as i32,
            matched_terms: d.matched_terms.clone(),
            safety: d.grade == Grade::MAJOR && d.urgency == Urgency::Urgent,
            ..Default::default()
        };
        let assignment = pb::Assignment {
            department: d.department.to_string(),
            sla_policy: self.policy.name.clone(),
            ..Default::default()
        };
        let content = complaint.content.clone().unwrap_or_default();
        let summary: String = if content.title.is_empty() {
            content.description
        } else {
            content.title
        }
        .chars()
        .take(80)
        .collect();
        let version = &self.policy.version;
        let id = delivery.complaint_id;
        self.outbox
            .enqueue(
                conn,
                id,
                version,
                Payload::Classified(pb::ComplaintClassified {
                    classification: Some(classification.clone()),
                    rules: hits(&d),
                }),
            )
            .await?;
        self.outbox
            .enqueue(
                conn,
                id,
                version,
                Payload::Assigned(pb::ComplaintAssigned {
                    assignment: Some(assignment),
                    classification: Some(classification),
                    tracking_no: complaint.tracking_no.clone(),
                    summary: summary.clone(),
                    rules: hits(&d),
                    previous_department: String::new(),
                }),
            )
            .await?;
        if d.grade == Grade::MAJOR {
            self.outbox
                .enqueue(
                    conn,
                    id,
                    version,
                    Payload::AlertMajor(pb::AlertMajor {
                        department: d.department.to_string(),
                        tracking_no: complaint.tracking_no.clone(),
                        summary,
                        rules: hits(&d),
                    }),
                )
                .await?;
        }
        metrics::counter!("tousu_routing_assigned_total", "department" => d.department.to_string())
            .increment(1);
        tracing::info!(complaint = %id, department = %d.department, grade = %d.grade, "assigned");
        Ok(())
    }
}
