//! tousu sla: arms the SLA clocks of each assigned complaint and reports
//! when a deadline passes.
//!
//! `complaint.assigned.*` → [`Arm`] stores the resolution clock (deadline
//! from the policy's grade × urgency table) and publishes `sla.started`.
//! [`watch_deadlines`] claims running clocks whose deadline has passed and
//! publishes `sla.breached` in the same transaction.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tousu_bus::{ConsumerSpec, Delivery, HandleError, Handler, Outbox, Payload};
use tousu_domain::calendar::Calendar;
use tousu_domain::{Grade, Urgency};
use tousu_kit::{Config, Running, ServiceSpec};
use tousu_policy::schema::{Policy, Step};
use tousu_proto::v1 as pb;
use tousu_routing::reload;
use uuid::Uuid;

pub const NAME: &str = "sla";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How often running clocks are checked for a passed deadline.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

pub async fn start(config: Config) -> anyhow::Result<Running> {
    // The policy file and its calendar must load before anything binds.
    let dir = reload::base_dir(&config.policy);
    let file_rules = Rules::new(tousu_routing::load_policy(&config)?, &dir)?;
    let ctx = tousu_kit::boot(
        &ServiceSpec {
            name: NAME,
            migrator: &MIGRATOR,
        },
        config,
    )
    .await?;
    let store = reload::bucket(&ctx.js, ctx.config.stream_replicas).await?;
    let rules = match reload::published(&store, &dir).await {
        Some(p) if p.version != file_rules.policy.version => {
            Rules::new(p, &dir).unwrap_or_else(|e| {
                tracing::error!(error = %e, "published policy refused; using the file");
                file_rules
            })
        }
        _ => file_rules,
    };
    let arm = Arc::new(Arm {
        rules: RwLock::new(Arc::new(rules)),
        outbox: ctx.outbox.clone(),
    });
    {
        let arm = arm.clone();
        let calendars = dir.clone();
        ctx.tracker.spawn(reload::watch(
            store,
            dir,
            NAME,
            ctx.cancel.clone(),
            move |policy| {
                let rules = Rules::new(policy, &calendars).map_err(|e| e.to_string())?;
                *arm.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
                Ok(())
            },
        ));
    }
    ctx.spawn_consumer(
        ConsumerSpec::new("sla", &["tousu.evt.complaint.assigned.>"]),
        arm,
    );
    ctx.tracker.spawn(watch_deadlines(
        ctx.pool.clone(),
        ctx.outbox.clone(),
        ctx.cancel.clone(),
    ));
    tousu_kit::serve(&ctx, axum::Router::new(), None).await
}

/// The policy's calendar, from `calendars/<name>/` in the policies
/// directory `dir` (where the policy file is).
fn load_calendar(dir: &std::path::Path, policy: &Policy) -> anyhow::Result<Option<Calendar>> {
    let Some(name) = &policy.calendar else {
        return Ok(None);
    };
    Calendar::load(&dir.join("calendars"), name)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("calendar {name} of policy {}: {e}", policy.name))
}

/// The policy in force and its calendar; replaced whole on a reload.
pub struct Rules {
    policy: Policy,
    calendar: Option<Calendar>,
}

impl Rules {
    /// `dir`: the policies directory (calendars are in `dir/calendars`).
    fn new(policy: Policy, dir: &std::path::Path) -> anyhow::Result<Rules> {
        let calendar = load_calendar(dir, &policy)?;
        Ok(Rules { policy, calendar })
    }
}

/// Arms the resolution clock when a complaint is assigned.
pub struct Arm {
    rules: RwLock<Arc<Rules>>,
    outbox: Outbox,
}

impl Rules {
    /// The resolution deadline from `started` and why. Working-time targets
    /// need the calendar; when it has no data for the dates involved (a
    /// year not yet published), they count as calendar time and the
    /// explanation says so.
    fn resolution(
        &self,
        started: OffsetDateTime,
        grade: Grade,
        urgency: Urgency,
        variant: Option<&str>,
    ) -> (OffsetDateTime, String, String) {
        let target = self
            .policy
            .sla_target(Step::Resolution, grade, urgency, variant)
            // A policy that loaded has a resolution target for every grade
            // × urgency (the check refuses it otherwise); 5 working days is
            // the domain default should that ever change.
            .unwrap_or(tousu_policy::schema::Duration {
                amount: 5,
                unit: tousu_policy::schema::Unit::WorkingDays,
            });
        let head = format!(
            "resolution: grade {grade} ({}) × {} ({}){} → {target}, policy {}",
            grade.name_zh(),
            urgency,
            urgency.name_zh(),
            variant
                .map(|v| format!(", variant {v}"))
                .unwrap_or_default(),
            self.policy.name
        );
        let fallback = |why: String| {
            let minutes = target.approx_minutes().min(i64::MAX as u64) as i64;
            let at = started + time::Duration::minutes(minutes);
            (
                at,
                format!("{head}; {why}: counted as calendar time"),
                String::new(),
            )
        };
        match (&self.calendar, target.is_working_time()) {
            (Some(calendar), _) => match calendar.deadline(started, &target.to_calendar()) {
                Ok(d) => (
                    d.at,
                    format!("{head}; {}", d.explanation),
                    calendar.name().to_owned(),
                ),
                Err(e) => fallback(e.to_string()),
            },
            (None, false) => {
                let minutes = target.fixed_minutes().unwrap_or(0) as i64;
                (
                    started + time::Duration::minutes(minutes),
                    format!("{head} (24×7)"),
                    String::new(),
                )
            }
            (None, true) => fallback("the policy names no calendar".into()),
        }
    }
}

fn urgency_of(c: &pb::Classification) -> Urgency {
    match pb::Urgency::try_from(c.urgency).unwrap_or(pb::Urgency::Normal) {
        pb::Urgency::Urgent => Urgency::Urgent,
        pb::Urgency::Expedited => Urgency::Expedited,
        _ => Urgency::Normal,
    }
}

impl Handler for Arm {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(Payload::Assigned(assigned)) = &delivery.event.payload else {
            return Ok(());
        };
        let department = assigned
            .assignment
            .as_ref()
            .map(|a| a.department.clone())
            .unwrap_or_default();
        let classification = assigned.classification.clone().unwrap_or_default();
        let grade = Grade::try_from(classification.grade).unwrap_or(Grade::GENERAL);
        let urgency = urgency_of(&classification);
        let started = delivery
            .event
            .occurred_at
            .as_ref()
            .and_then(tousu_bus::from_timestamp)
            .unwrap_or_else(OffsetDateTime::now_utc);
        let variant = assigned
            .assignment
            .as_ref()
            .map(|a| a.sla_policy.as_str())
            .filter(|v| !v.is_empty());
        let (deadline, explanation, calendar) = rules.resolution(started, grade, urgency, variant);
        let fresh = sqlx::query(
            "INSERT INTO clocks (complaint_id, target, department, started_at, deadline, explanation, policy_version)
             VALUES ($1, 'resolution', $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(delivery.complaint_id)
        .bind(&department)
        .bind(started)
        .bind(deadline)
        .bind(&explanation)
        .bind(&rules.policy.version)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            self.outbox
                .enqueue(
                    conn,
                    delivery.complaint_id,
                    &rules.policy.version,
                    Payload::SlaStarted(pb::SlaStarted {
                        target: pb::SlaTarget::Resolution as i32,
                        department,
                        started_at: Some(tousu_bus::to_timestamp(started)),
                        deadline: Some(tousu_bus::to_timestamp(deadline)),
                        explanation,
                        calendar,
                    }),
                )
                .await?;
        }
        Ok(())
    }
}

/// Publishes `sla.breached` for running clocks whose deadline passed.
/// Clocks are claimed with `SKIP LOCKED`, so replicas never double-fire.
pub async fn watch_deadlines(pool: PgPool, outbox: Outbox, cancel: CancellationToken) {
    loop {
        match fire_due(&pool, &outbox).await {
            Ok(0) => {}
            Ok(n) => {
                outbox.wake();
                metrics::counter!("tousu_sla_breached_total").increment(n);
            }
            Err(e) => tracing::warn!(error = %e, "deadline check failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

async fn fire_due(pool: &PgPool, outbox: &Outbox) -> Result<u64, HandleError> {
    let mut tx = pool.begin().await?;
    let due: Vec<(Uuid, String, String, OffsetDateTime, String)> = sqlx::query_as(
        "UPDATE clocks SET state = 'breached'
         WHERE (complaint_id, target) IN (
             SELECT complaint_id, target FROM clocks
             WHERE state = 'running' AND deadline <= now()
             ORDER BY deadline LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING complaint_id, target, department, deadline, policy_version",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, _target, department, deadline, version) in &due {
        outbox
            .enqueue(
                &mut tx,
                *id,
                version,
                Payload::SlaBreached(pb::SlaBreached {
                    target: pb::SlaTarget::Resolution as i32,
                    department: department.clone(),
                    deadline: Some(tousu_bus::to_timestamp(*deadline)),
                }),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(due.len() as u64)
}
