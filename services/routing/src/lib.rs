//! tousu routing: classifies, grades and assigns each received complaint.
//!
//! `complaint.received.*` → [`Router`] runs the policy engine
//! (`tousu-policy`: classification, similarity, grading, routing, hot
//! topics) → one row in `decisions` (the whole explanation) plus
//! `complaint.classified`, `complaint.assigned.<dept>`, `alert.major` for
//! grade 1 and `alert.hot` when a surge completes — all in the transaction
//! that records the event in the inbox. A complaint that already has a
//! decision gets no second one.
//!
//! The similarity index lives in memory; at start it is rebuilt from the
//! decisions of the policy's similarity window. [`explain`] serves dry runs
//! (`POST /v1/explain`, gRPC `RoutingService/Explain`).
//!
//! Each assignment names a handler of the department ([`handlers`]: round
//! robin, least open cases, skills) and the complaints linked to it
//! (same person, same issue). Returns (退单), transfers (转办) and the
//! complaint centre's arbitration come back as desk's lifecycle events and
//! are reassigned by [`reassign`].

pub mod explain;
pub mod group;
pub mod handlers;
pub mod reassign;
pub mod reload;

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tousu_bus::{ConsumerSpec, Delivery, HandleError, Handler, Outbox, Payload};
use tousu_domain::{Grade, Urgency};
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_policy::cel::Flag;
use tousu_policy::engine::{Complaint, Decision, Engine};
use tousu_policy::schema::Policy;
use tousu_policy::similar::Entry;
use tousu_proto::v1 as pb;

pub const NAME: &str = "routing";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Reads and validates a policy file; warnings are logged, errors refuse it.
pub fn load_policy_file(path: &Path) -> anyhow::Result<Policy> {
    match Policy::load(path) {
        Ok((policy, warnings)) => {
            for w in warnings {
                tracing::warn!(policy = %path.display(), "{w}");
            }
            Ok(policy)
        }
        Err(diagnostics) => {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "policy {} is not valid:\n{}",
                path.display(),
                lines.join("\n")
            )
        }
    }
}

/// Reads and validates the policy file named in the configuration.
pub fn load_policy(config: &Config) -> anyhow::Result<Policy> {
    load_policy_file(&config.policy)
}

/// The UTC offset of the policy's time zone now (for hour/weekday facts).
pub fn policy_offset(policy: &Policy) -> time::UtcOffset {
    jiff::tz::TimeZone::get(&policy.time_zone)
        .ok()
        .and_then(|tz| {
            let seconds = tz.to_offset(jiff::Timestamp::now()).seconds();
            time::UtcOffset::from_whole_seconds(seconds).ok()
        })
        .unwrap_or(time::UtcOffset::UTC)
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    // A policy file that does not load stops the service before it binds.
    let file_policy = load_policy(&config)?;
    let policy_file = config.policy.clone();
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let store = reload::bucket(&ctx.js, ctx.config.stream_replicas).await?;
    let published = reload::published(&store, &reload::base_dir(&policy_file)).await;
    let policy = Arc::new(published.unwrap_or(file_policy));
    let mut engine = Engine::new(policy.clone(), policy_offset(&policy))
        .map_err(|e| anyhow::anyhow!("policy {}: {e}", policy_file.display()))?;
    let loaded = load_index(&ctx.pool, &mut engine, &policy)
        .await
        .context("rebuilding the similarity index")?;
    tracing::info!(loaded, "similarity index rebuilt");
    let engine: explain::Shared = Arc::new(Mutex::new(engine));
    {
        let engine = engine.clone();
        ctx.tracker.spawn(reload::watch(
            store,
            reload::base_dir(&policy_file),
            NAME,
            ctx.cancel.clone(),
            move |policy| {
                let offset = policy_offset(&policy);
                engine
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_policy(Arc::new(policy), offset)
            },
        ));
    }
    ctx.spawn_consumer(
        ConsumerSpec::new("routing", &["tousu.evt.complaint.received.>"]),
        Arc::new(Router {
            engine: engine.clone(),
            outbox: ctx.outbox.clone(),
        }),
    );
    ctx.spawn_consumer(
        ConsumerSpec::new(reassign::DURABLE, reassign::SUBJECTS),
        Arc::new(reassign::Reassigner::new(
            engine.clone(),
            ctx.outbox.clone(),
        )),
    );
    tousu_kit::serve(
        &ctx,
        explain::router(engine.clone()),
        Some(explain::routes(engine)),
    )
    .await
}

/// `(complaint_id, received_at, identity_keys, fingerprint, category, product, location)`.
type IndexRow = (
    uuid::Uuid,
    OffsetDateTime,
    Vec<String>,
    i64,
    String,
    String,
    String,
);

/// Loads the decisions of the similarity window into the engine's index.
async fn load_index(pool: &PgPool, engine: &mut Engine, policy: &Policy) -> anyhow::Result<usize> {
    let since =
        OffsetDateTime::now_utc() - time::Duration::days(i64::from(policy.similarity.window_days));
    let rows: Vec<IndexRow> = sqlx::query_as(
        "SELECT complaint_id, received_at, identity_keys, fingerprint, category, product, location
             FROM decisions WHERE received_at >= $1 ORDER BY received_at",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    let n = rows.len();
    let index = engine.index_mut();
    for (id, at, identity_keys, fingerprint, category, product, location) in rows {
        index.insert(Entry {
            id: id.to_string(),
            at,
            identity_keys,
            fingerprint: fingerprint as u64,
            category,
            product,
            location,
        });
    }
    Ok(n)
}

/// The `complaint.received` handler.
pub struct Router {
    /// Decisions take microseconds; the lock is never held across an await.
    engine: explain::Shared,
    outbox: Outbox,
}

pub fn pb_urgency(u: Urgency) -> pb::Urgency {
    match u {
        Urgency::Normal => pb::Urgency::Normal,
        Urgency::Expedited => pb::Urgency::Expedited,
        Urgency::Urgent => pb::Urgency::Urgent,
    }
}

/// The decision's explanation as protobuf rule hits.
pub(crate) fn hits(d: &Decision) -> Vec<pb::RuleHit> {
    d.hits
        .iter()
        .map(|h| pb::RuleHit {
            rule: h.rule.clone(),
            reason: h.reason.clone(),
        })
        .collect()
}

/// The engine's view of a received complaint.
pub(crate) fn view(c: &pb::Complaint) -> Complaint<'_> {
    let content = c.content.as_ref();
    let complainant = c.complainant.as_ref();
    let text = |f: fn(&pb::Content) -> &String| content.map_or("", |c| f(c).as_str());
    Complaint {
        id: &c.id,
        received_at: c.received_at.as_ref().and_then(tousu_bus::from_timestamp),
        channel: tousu_bus::channel_from_pb(c.channel).map_or("", |c| c.as_str()),
        language: text(|c| &c.language),
        title: text(|c| &c.title),
        description: text(|c| &c.description),
        product: text(|c| &c.product),
        location: text(|c| &c.location),
        category_hint: text(|c| &c.category_hint),
        demand: text(|c| &c.demand),
        amount: content
            .and_then(|c| c.amount.parse::<f64>().ok())
            .unwrap_or(0.0),
        customer_tier: complainant.map_or("", |p| p.customer_tier.as_str()),
        identity_keys: complainant.map_or(&[], |p| p.identity_keys.as_slice()),
        anonymous: complainant.is_some_and(|p| p.anonymous),
        group_size: group::of(c),
        follow_ups: 0,
    }
}

fn classification(d: &Decision, group_size: i64) -> pb::Classification {
    let flags = d.grading.flags;
    pb::Classification {
        category: d.classification.category.clone(),
        confidence: d.classification.confidence,
        grade: u32::from(d.grading.grade.get()),
        urgency: pb_urgency(d.grading.urgency) as i32,
        frequency: d.frequency.to_owned(),
        group_size: u32::try_from(group_size).unwrap_or(0),
        repeat: flags.contains(Flag::Repeat) || d.similar.repeat_count > 0,
        media_risk: flags.contains(Flag::MediaRisk),
        litigation: flags.contains(Flag::Litigation),
        regulator_referred: flags.contains(Flag::RegulatorReferred),
        safety: flags.contains(Flag::Safety),
        matched_terms: d.classification.terms.clone(),
    }
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
        let v = view(complaint);
        let (d, policy) = {
            let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            (engine.decide(&v), engine.policy().clone())
        };
        let department = d.routing.department.to_string();
        let rules = json!(
            d.hits
                .iter()
                .map(|h| json!({"rule": h.rule, "reason": h.reason}))
                .collect::<Vec<_>>()
        );
        let fresh = sqlx::query(
            "INSERT INTO decisions (complaint_id, category, department, grade, urgency, rules, policy_version,
                 confidence, fingerprint, identity_keys, product, location, received_at, decision, complaint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (complaint_id) DO NOTHING",
        )
        .bind(delivery.complaint_id)
        .bind(&d.classification.category)
        .bind(&department)
        .bind(i16::from(d.grading.grade.get()))
        .bind(d.grading.urgency.as_str())
        .bind(&rules)
        .bind(&d.policy_version)
        .bind(d.classification.confidence)
        .bind(d.similar.fingerprint as i64)
        .bind(v.identity_keys)
        .bind(v.product.trim())
        .bind(v.location.trim())
        .bind(v.received_at.unwrap_or_else(OffsetDateTime::now_utc))
        .bind(serde_json::to_value(&d).unwrap_or_default())
        .bind(prost::Message::encode_to_vec(complaint))
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            tracing::info!(complaint = %delivery.complaint_id, "already routed; no second assignment");
            return Ok(());
        }
        let (handler, handler_reason) = match policy.department(&department) {
            Some(dept) => match handlers::pick(
                conn,
                dept,
                d.routing.strategy,
                &d.routing.skills,
                &d.classification.category,
                delivery.complaint_id,
            )
            .await?
            {
                Some(c) => (Some(c.handler), c.reason),
                None => (None, format!("department {department} lists no handlers")),
            },
            None => (
                None,
                format!("department {department} is not in the policy"),
            ),
        };
        let classification = classification(&d, v.group_size);
        let assignment = pb::Assignment {
            department: department.clone(),
            handler: handler.clone().unwrap_or_default(),
            co_departments: d
                .routing
                .co_departments
                .iter()
                .map(ToString::to_string)
                .collect(),
            sla_policy: d.routing.sla.clone().unwrap_or_default(),
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
        let version = &d.policy_version;
        let id = delivery.complaint_id;
        let mut assigned_rules = hits(&d);
        assigned_rules.push(pb::RuleHit {
            rule: "handler".into(),
            reason: handler_reason.clone(),
        });
        let assigned = pb::ComplaintAssigned {
            assignment: Some(assignment),
            classification: Some(classification.clone()),
            tracking_no: complaint.tracking_no.clone(),
            summary: summary.clone(),
            rules: assigned_rules,
            linked_complaint_ids: d.similar.linked.clone(),
            ..Default::default()
        };
        sqlx::query(
            "INSERT INTO assignments (complaint_id, department, handler, handler_reason, first_event)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&department)
        .bind(&handler)
        .bind(&handler_reason)
        .bind(prost::Message::encode_to_vec(&assigned))
        .execute(&mut *conn)
        .await?;
        let mut events = vec![
            Payload::Classified(pb::ComplaintClassified {
                classification: Some(classification),
                rules: hits(&d),
            }),
            Payload::Assigned(assigned),
        ];
        if d.grading.grade == Grade::MAJOR {
            events.push(Payload::AlertMajor(pb::AlertMajor {
                department: department.clone(),
                tracking_no: complaint.tracking_no.clone(),
                summary,
                rules: hits(&d),
            }));
        }
        if let Some(hot) = &d.hot {
            events.push(Payload::AlertHot(pb::AlertHot {
                topic: hot.topic.clone(),
                place: hot.place.clone(),
                count: hot.count as u32,
                window_seconds: hot.window_secs.clamp(0, i64::from(u32::MAX)) as u32,
                sample_complaint_ids: hot.sample_ids.clone(),
            }));
        }
        for payload in events {
            self.outbox.enqueue(conn, id, version, payload).await?;
        }
        metrics::counter!("tousu_routing_assigned_total", "department" => department.clone())
            .increment(1);
        tracing::info!(
            complaint = %id,
            %department,
            handler = handler.as_deref().unwrap_or(""),
            grade = %d.grading.grade,
            "assigned"
        );
        Ok(())
    }
}

/// `policies/default.toml`, loaded once for the unit tests.
#[cfg(test)]
pub(crate) fn test_policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        load_policy_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/default.toml"
        )))
        .expect("policies/default.toml loads")
    })
}
