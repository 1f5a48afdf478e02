//! Lifecycle events → clocks: which clock starts, stops, pauses, resumes,
//! is extended or re-armed on each event, with its timers and the `sla.*`
//! events, all in the consumer's transaction.
//!
//! | event | clocks |
//! |---|---|
//! | `complaint.received` | remembers the receipt time |
//! | first `complaint.assigned` | starts acknowledge, dispatch (met at once unless assigned to the triage department), sign-off, resolution, the overlay, and the regrade checks |
//! | later `complaint.assigned` (return, transfer, arbitration) | moves every open clock to the new department, deadlines kept; meets dispatch when it leaves triage; re-arms sign-off (the new department must sign) |
//! | `signed_for` | meets sign-off, starts first contact |
//! | `contacted` | meets first contact and acknowledge |
//! | `paused` / `resumed` | stops / restarts the resolution clock (the overlay never pauses) |
//! | `extended` | extends resolution; the overlay moves to its next limit |
//! | `resolved` | meets resolution and the overlay, starts the return visit |
//! | `return_visited` | meets the return visit |
//! | `reopened` | re-arms resolution with half its budget (domain.md §6) |
//! | `closed`, `withdrawn`, `rejected`, `merged` | stops every open clock |
//! | `complaint.regraded` | re-arms resolution for the new grade, from the same start |

use std::sync::{Arc, RwLock};

use sqlx::PgConnection;
use time::OffsetDateTime;
use tousu_bus::{Delivery, HandleError, Handler, Outbox, Payload, Pending};
use tousu_domain::clock::{Extension, Target};
use tousu_domain::{Grade, Urgency};
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::rules::{Kind, Rules};
use crate::store::{self, Audit, ClockRow, NewTimer};

/// What sla shares between its consumer, its timers and its API.
pub struct Sla {
    pub rules: RwLock<Arc<Rules>>,
    pub outbox: Outbox,
    pub partitions: u32,
}

pub fn pb_target(t: Target) -> pb::SlaTarget {
    match t {
        Target::Acknowledge => pb::SlaTarget::Acknowledge,
        Target::Dispatch => pb::SlaTarget::Dispatch,
        Target::SignOff => pb::SlaTarget::SignOff,
        Target::FirstContact => pb::SlaTarget::FirstContact,
        Target::Resolution => pb::SlaTarget::Resolution,
        Target::ReturnVisit => pb::SlaTarget::ReturnVisit,
        Target::Overlay => pb::SlaTarget::Overlay,
    }
}

fn ts(t: OffsetDateTime) -> Option<tousu_proto::Timestamp> {
    Some(tousu_bus::to_timestamp(t))
}

fn urgency_of(c: &pb::Classification) -> Urgency {
    match pb::Urgency::try_from(c.urgency).unwrap_or(pb::Urgency::Normal) {
        pb::Urgency::Urgent => Urgency::Urgent,
        pb::Urgency::Expedited => Urgency::Expedited,
        _ => Urgency::Normal,
    }
}

fn grade_of(n: i16) -> Grade {
    u8::try_from(n)
        .ok()
        .and_then(|n| Grade::try_from(n).ok())
        .unwrap_or(Grade::GENERAL)
}

/// Events to publish, collected while the transaction runs.
#[derive(Default)]
pub struct Out(pub Vec<Pending>);

impl Out {
    pub fn push(&mut self, id: Uuid, payload: Payload) {
        self.0.push(Pending::new(id, payload));
    }
}

/// sla's view of a complaint (table `complaints`).
#[derive(Debug, Clone)]
pub struct Facts {
    pub received_at: OffsetDateTime,
    pub department: String,
    pub grade: Grade,
    pub urgency: Urgency,
    pub variant: String,
}

async fn facts(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Facts>> {
    let row: Option<(OffsetDateTime, String, i16, String, String)> = sqlx::query_as(
        "SELECT received_at, department, grade, urgency, variant FROM complaints WHERE complaint_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        row.map(|(received_at, department, grade, urgency, variant)| Facts {
            received_at,
            department,
            grade: grade_of(grade),
            urgency: urgency.parse().unwrap_or(Urgency::Normal),
            variant,
        }),
    )
}

impl Sla {
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts `target` for a complaint (nothing when the policy has no
    /// target for it or the clock exists).
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        id: Uuid,
        target: Target,
        started: OffsetDateTime,
        f: &Facts,
        out: &mut Out,
    ) -> Result<Option<ClockRow>, HandleError> {
        let variant = Some(f.variant.as_str()).filter(|v| !v.is_empty());
        let Some(armed) = rules.arm(target, started, f.grade, f.urgency, variant) else {
            return Ok(None);
        };
        let row = ClockRow {
            complaint_id: id,
            target,
            department: f.department.clone(),
            state: "running".into(),
            deadline: Some(armed.deadline),
            model: armed.clock,
            explanation: armed.explanation,
            policy_version: rules.version().to_owned(),
            duration: armed.duration,
            calendar: armed.calendar,
            grade: i16::from(f.grade.get()),
            urgency: f.urgency.as_str().to_owned(),
            variant: f.variant.clone(),
            fired: Vec::new(),
            met_at: None,
            breached_at: None,
        };
        if !store::insert(conn, &row).await? {
            return Ok(None);
        }
        self.arm_timers(conn, rules, &row).await?;
        out.push(id, started_event(&row));
        Ok(Some(row))
    }

    /// Replaces the pending timers of a clock by what it has ahead now.
    pub async fn arm_timers(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        row: &ClockRow,
    ) -> Result<(), HandleError> {
        store::drop_timers(
            conn,
            row.complaint_id,
            row.target,
            Some(&[
                Kind::Warning,
                Kind::Breach,
                Kind::Escalation,
                Kind::PauseCap,
            ]),
        )
        .await?;
        if !row.is_open() {
            return Ok(());
        }
        let urgency = row.urgency.parse().unwrap_or(Urgency::Normal);
        let mut fires = rules.schedule(&row.model, urgency, &row.fired);
        if row.state == "breached" {
            fires.retain(|f| f.kind == Kind::Escalation);
        }
        let timers: Vec<NewTimer> = fires
            .into_iter()
            .map(|fire| NewTimer {
                complaint_id: row.complaint_id,
                target: row.target,
                fire,
            })
            .collect();
        store::add_timers(conn, self.partitions, &timers).await?;
        Ok(())
    }

    /// Meets a clock at `at`: `sla.met` when on time; a breached clock only
    /// records when it was met.
    async fn meet(
        &self,
        conn: &mut PgConnection,
        row: &mut ClockRow,
        at: OffsetDateTime,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        if row.met_at.is_some() || row.state == "stopped" {
            return Ok(());
        }
        row.met_at = Some(at);
        if row.state != "breached" {
            row.state = "met".into();
            out.push(
                row.complaint_id,
                Payload::SlaMet(pb::SlaMet {
                    target: pb_target(row.target) as i32,
                    department: row.department.clone(),
                    deadline: row.deadline.and_then(ts),
                    met_at: ts(at),
                }),
            );
        }
        store::drop_timers(conn, row.complaint_id, row.target, None).await?;
        store::update(conn, row).await?;
        Ok(())
    }

    async fn handle_assigned(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        d: &Delivery,
        a: &pb::ComplaintAssigned,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        let id = d.complaint_id;
        let now = occurred(d);
        let department = a
            .assignment
            .as_ref()
            .map(|a| a.department.clone())
            .unwrap_or_default();
        let classification = a.classification.clone().unwrap_or_default();
        let grade = u8::try_from(classification.grade)
            .ok()
            .and_then(|g| Grade::try_from(g).ok())
            .unwrap_or(Grade::GENERAL);
        let urgency = urgency_of(&classification);
        let variant = a
            .assignment
            .as_ref()
            .map(|a| a.sla_policy.clone())
            .unwrap_or_default();
        // The receipt time, when the received event came first; else now.
        sqlx::query(
            "INSERT INTO complaints (complaint_id, received_at, department, grade, urgency, variant)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (complaint_id) DO UPDATE SET department = $3, grade = $4, urgency = $5, variant = $6",
        )
        .bind(id)
        .bind(now)
        .bind(&department)
        .bind(i16::from(grade.get()))
        .bind(urgency.as_str())
        .bind(&variant)
        .execute(&mut *conn)
        .await?;
        let f = facts(conn, id)
            .await?
            .ok_or_else(|| HandleError::Retry("complaint row just written".into()))?;
        let triage = rules.policy.triage_department.as_str() == department;
        let mut clocks = store::clocks(conn, id, true).await?;
        if clocks.is_empty() {
            for target in [
                Target::Acknowledge,
                Target::Dispatch,
                Target::Resolution,
                Target::Overlay,
            ] {
                if let Some(mut row) = self
                    .start(conn, rules, id, target, f.received_at, &f, out)
                    .await?
                    && target == Target::Dispatch
                    && !triage
                {
                    self.meet(conn, &mut row, now, out).await?;
                }
            }
            self.start(conn, rules, id, Target::SignOff, now, &f, out)
                .await?;
            let regrades: Vec<NewTimer> = rules
                .regrade_days()
                .into_iter()
                .map(|days| NewTimer {
                    complaint_id: id,
                    target: Target::Resolution,
                    fire: crate::rules::Fire {
                        at: f.received_at + time::Duration::days(i64::from(days)),
                        kind: Kind::Regrade,
                        arg: days,
                    },
                })
                .collect();
            store::add_timers(conn, self.partitions, &regrades).await?;
            return Ok(());
        }
        // A reassignment: the clocks keep running, in the new department.
        let why = if a.reassigned_because.is_empty() {
            "reassigned"
        } else {
            a.reassigned_because.as_str()
        };
        for row in &mut clocks {
            if !row.is_open() && row.target != Target::SignOff {
                continue;
            }
            let old = std::mem::replace(&mut row.department, department.clone());
            match row.target {
                Target::Dispatch if !triage && row.is_open() => {
                    self.meet(conn, row, now, out).await?;
                }
                Target::SignOff if old != department => {
                    // The new department must sign for it: the clock starts again.
                    if let Some(armed) = rules.arm(
                        Target::SignOff,
                        now,
                        f.grade,
                        f.urgency,
                        Some(f.variant.as_str()).filter(|v| !v.is_empty()),
                    ) {
                        let before = row.deadline;
                        row.model = armed.clock;
                        row.deadline = Some(armed.deadline);
                        row.explanation = format!("{} ({why} from {old})", armed.explanation);
                        row.state = "running".into();
                        row.met_at = None;
                        row.breached_at = None;
                        row.fired.clear();
                        store::update(conn, row).await?;
                        self.arm_timers(conn, rules, row).await?;
                        store::audit(
                            conn,
                            row.audit("reassigned", before, "routing", why, rules.version()),
                        )
                        .await?;
                        out.push(id, started_event(row));
                    }
                }
                _ => {
                    store::update(conn, row).await?;
                    store::audit(
                        conn,
                        row.audit(
                            "reassigned",
                            row.deadline,
                            "routing",
                            &format!("{why}: {old} → {department}"),
                            rules.version(),
                        ),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn handle_lifecycle(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        d: &Delivery,
        l: &pb::ComplaintLifecycle,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        let id = d.complaint_id;
        let now = occurred(d);
        let action = if l.action.is_empty() {
            tousu_bus::lifecycle_name(l.status)
        } else {
            l.action.clone()
        };
        let mut clocks = store::clocks(conn, id, true).await?;
        let find =
            |clocks: &mut Vec<ClockRow>, t: Target| clocks.iter().position(|c| c.target == t);
        match action.as_str() {
            "signed_for" => {
                if let Some(i) = find(&mut clocks, Target::SignOff) {
                    self.meet(conn, &mut clocks[i], now, out).await?;
                }
                if let Some(f) = facts(conn, id).await? {
                    self.start(conn, rules, id, Target::FirstContact, now, &f, out)
                        .await?;
                }
            }
            "contacted" => {
                for t in [Target::FirstContact, Target::Acknowledge] {
                    if let Some(i) = find(&mut clocks, t) {
                        self.meet(conn, &mut clocks[i], now, out).await?;
                    }
                }
            }
            "acknowledged" => {
                if let Some(i) = find(&mut clocks, Target::Acknowledge) {
                    self.meet(conn, &mut clocks[i], now, out).await?;
                }
            }
            "paused" => {
                let reason = if l.pause_reason.is_empty() {
                    l.reason.as_str()
                } else {
                    l.pause_reason.as_str()
                };
                if let Some(i) = find(&mut clocks, Target::Resolution) {
                    self.pause(conn, rules, &mut clocks[i], now, reason, &l.actor, out)
                        .await?;
                }
            }
            "resumed" => {
                if let Some(i) = find(&mut clocks, Target::Resolution) {
                    self.resume(conn, rules, &mut clocks[i], now, &l.actor, "resumed", out)
                        .await?;
                }
            }
            "extended" => {
                let ext = l.extension.clone().unwrap_or_default();
                self.extend(conn, rules, &mut clocks, now, &ext, &l.reason, out)
                    .await?;
            }
            "resolved" => {
                for t in [Target::Resolution, Target::Overlay] {
                    if let Some(i) = find(&mut clocks, t) {
                        if clocks[i].state == "paused" {
                            let _ = clocks[i].model.resume(now);
                        }
                        self.meet(conn, &mut clocks[i], now, out).await?;
                    }
                }
                if let Some(f) = facts(conn, id).await? {
                    self.start(conn, rules, id, Target::ReturnVisit, now, &f, out)
                        .await?;
                }
            }
            "return_visited" => {
                if let Some(i) = find(&mut clocks, Target::ReturnVisit) {
                    self.meet(conn, &mut clocks[i], now, out).await?;
                }
            }
            "reopened" => {
                if let Some(i) = find(&mut clocks, Target::Resolution) {
                    self.reopen(conn, rules, &mut clocks[i], now, &l.actor, out)
                        .await?;
                }
            }
            "closed" | "withdrawn" | "rejected" | "merged" => {
                for row in clocks.iter_mut().filter(|c| c.is_open()) {
                    row.state = "stopped".into();
                    store::drop_timers(conn, id, row.target, None).await?;
                    store::update(conn, row).await?;
                }
                sqlx::query("UPDATE complaints SET open = false WHERE complaint_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM timers WHERE complaint_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops the resolution clock for a listed reason.
    #[allow(clippy::too_many_arguments)]
    pub async fn pause(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        row: &mut ClockRow,
        at: OffsetDateTime,
        reason: &str,
        actor: &str,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        if row.state != "running" {
            tracing::info!(complaint = %row.complaint_id, state = %row.state, "pause of a clock that is not running: nothing to do");
            return Ok(());
        }
        let listed = rules.policy.pause_reasons.iter().find(|r| r.code == reason);
        let used = row
            .model
            .pauses
            .iter()
            .filter(|p| p.reason == reason)
            .count();
        if let Some(max) = listed.and_then(|r| r.max_times)
            && used >= max as usize
        {
            store::audit(
                conn,
                row.audit(
                    "pause_refused",
                    row.deadline,
                    actor,
                    &format!("{reason}: at most {max} pause(s) for this reason"),
                    rules.version(),
                ),
            )
            .await?;
            return Ok(());
        }
        let cap_at = listed.and_then(|r| r.max).map(|max| rules.add(at, max));
        if let Err(e) = row.model.pause(at, reason, actor, cap_at) {
            tracing::warn!(complaint = %row.complaint_id, error = %e, "pause refused by the clock");
            return Ok(());
        }
        let old = row.deadline;
        row.state = "paused".into();
        row.deadline = None;
        store::update(conn, row).await?;
        self.arm_timers(conn, rules, row).await?;
        store::audit(
            conn,
            row.audit("paused", old, actor, reason, rules.version()),
        )
        .await?;
        out.push(
            row.complaint_id,
            Payload::SlaPaused(pb::SlaPaused {
                target: pb_target(row.target) as i32,
                department: row.department.clone(),
                reason: reason.to_owned(),
                actor: actor.to_owned(),
            }),
        );
        Ok(())
    }

    /// Restarts a paused clock; its deadline moves by the time it stood still.
    #[allow(clippy::too_many_arguments)]
    pub async fn resume(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        row: &mut ClockRow,
        at: OffsetDateTime,
        actor: &str,
        why: &str,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        if row.state != "paused" {
            return Ok(());
        }
        if let Err(e) = row.model.resume(at) {
            tracing::warn!(complaint = %row.complaint_id, error = %e, "resume refused by the clock");
            return Ok(());
        }
        let basis = rules.basis(&row.model);
        let deadline = row
            .model
            .deadline(basis)
            .map_err(|e| HandleError::Reject(format!("deadline after resume: {e}")))?;
        row.deadline = deadline;
        row.state = if deadline.is_some_and(|d| d <= at) && row.breached_at.is_some() {
            "breached".into()
        } else {
            "running".into()
        };
        store::update(conn, row).await?;
        self.arm_timers(conn, rules, row).await?;
        let paused = row
            .model
            .pauses
            .last()
            .and_then(|p| basis.measure(p.from, at).ok())
            .unwrap_or_default();
        store::audit(
            conn,
            row.audit(
                "resumed",
                None,
                actor,
                &format!(
                    "{why}: stood still {} ({})",
                    human(paused),
                    if row.model.working {
                        "working time"
                    } else {
                        "24×7"
                    }
                ),
                rules.version(),
            ),
        )
        .await?;
        out.push(
            row.complaint_id,
            Payload::SlaResumed(pb::SlaResumed {
                target: pb_target(row.target) as i32,
                department: row.department.clone(),
                deadline: row.deadline.and_then(ts),
            }),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn extend(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        clocks: &mut [ClockRow],
        at: OffsetDateTime,
        ext: &pb::Extension,
        reason: &str,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        let duration: tousu_policy::schema::Duration = ext
            .duration
            .parse()
            .map_err(|e| HandleError::Reject(format!("extension duration: {e}")))?;
        for row in clocks.iter_mut().filter(|c| c.is_open()) {
            let basis = rules.basis(&row.model);
            let old = row
                .model
                .projected_deadline(basis, at)
                .map_err(|e| HandleError::Reject(format!("deadline: {e}")))?;
            let new = match row.target {
                Target::Resolution => rules.add(old, duration),
                Target::Overlay => {
                    // The regulatory clock moves to its next limit (bank:
                    // 15 → 30 → 60 days), counted from its start.
                    let limits = rules
                        .policy
                        .sla
                        .overlay
                        .as_ref()
                        .map(|o| o.extensions.clone())
                        .unwrap_or_default();
                    let n = row.model.extensions.len();
                    match limits.get(n) {
                        Some(limit) => rules.add(row.model.started, *limit),
                        None => continue,
                    }
                }
                _ => continue,
            };
            if new <= old {
                continue;
            }
            let record = Extension {
                duration: ext.duration.clone(),
                approver: ext.approver.clone(),
                approver_role: ext.approver_role.clone(),
                at,
                old_deadline: old,
                new_deadline: new,
            };
            row.model
                .extend(basis, old, new, record)
                .map_err(|e| HandleError::Reject(format!("extension: {e}")))?;
            row.deadline = row
                .model
                .deadline(basis)
                .map_err(|e| HandleError::Reject(format!("deadline: {e}")))?;
            if row.state == "breached" && row.deadline.is_some_and(|d| d > at) {
                // Extended after the breach: the clock runs again; the breach stays recorded.
                row.state = "running".into();
                row.fired.retain(|f| f != "breach");
            }
            store::update(conn, row).await?;
            self.arm_timers(conn, rules, row).await?;
            store::audit(
                conn,
                Audit {
                    new_deadline: Some(new),
                    ..row.audit(
                        "extended",
                        Some(old),
                        &ext.approver,
                        reason,
                        rules.version(),
                    )
                },
            )
            .await?;
            out.push(
                row.complaint_id,
                Payload::SlaExtended(pb::SlaExtended {
                    target: pb_target(row.target) as i32,
                    department: row.department.clone(),
                    old_deadline: ts(old),
                    new_deadline: ts(new),
                    approver: ext.approver.clone(),
                    reason: reason.to_owned(),
                    // domain.md §5: the complainant is told the reason and
                    // the new date before the old one passes.
                    complainant_must_be_told: true,
                }),
            );
        }
        Ok(())
    }

    /// Dissatisfied at the return visit: the case is handled again with
    /// half the original time, from now.
    async fn reopen(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        row: &mut ClockRow,
        at: OffsetDateTime,
        actor: &str,
        out: &mut Out,
    ) -> Result<(), HandleError> {
        let basis = rules.basis(&row.model);
        let half = row.model.budget() / 2;
        let deadline = basis
            .advance(at, half)
            .map_err(|e| HandleError::Reject(format!("deadline: {e}")))?;
        let old = row.deadline;
        let mut model = tousu_domain::clock::Clock::new(row.target, basis, at, deadline, true)
            .map_err(|e| HandleError::Reject(format!("clock: {e}")))?;
        model.working = row.model.working;
        row.model = model;
        row.deadline = Some(deadline);
        row.state = "running".into();
        row.met_at = None;
        row.breached_at = None;
        row.fired.clear();
        row.explanation = format!(
            "{}; reopened at {at}: handled again with half the original time",
            row.explanation
        );
        store::update(conn, row).await?;
        self.arm_timers(conn, rules, row).await?;
        store::audit(
            conn,
            row.audit(
                "reopened",
                old,
                actor,
                "dissatisfied at the return visit: half the original time",
                rules.version(),
            ),
        )
        .await?;
        out.push(row.complaint_id, started_event(row));
        Ok(())
    }

    /// Re-arms an open clock for a new grade or a new policy, from its
    /// original start, keeping its pauses and extensions. Returns whether
    /// the deadline moved.
    #[allow(clippy::too_many_arguments)]
    pub async fn rearm(
        &self,
        conn: &mut PgConnection,
        rules: &Rules,
        row: &mut ClockRow,
        grade: Grade,
        change: &str,
        actor: &str,
        out: &mut Out,
    ) -> Result<bool, HandleError> {
        let urgency: Urgency = row.urgency.parse().unwrap_or(Urgency::Normal);
        let variant = Some(row.variant.as_str()).filter(|v| !v.is_empty());
        let Some(armed) = rules.arm(row.target, row.model.started, grade, urgency, variant) else {
            return Ok(false);
        };
        let mut model = armed.clock;
        // The extensions granted keep their length on the new basis.
        let basis = rules.basis(&model);
        for e in &row.model.extensions {
            let more = basis
                .measure(e.old_deadline, e.new_deadline)
                .unwrap_or_default();
            model.grow_budget(more);
        }
        model.extensions = row.model.extensions.clone();
        model.pauses = row.model.pauses.clone();
        let deadline = model
            .deadline(basis)
            .map_err(|e| HandleError::Reject(format!("deadline: {e}")))?;
        let old = row.deadline;
        let version_changed = row.policy_version != rules.version();
        if deadline == old && i16::from(grade.get()) == row.grade && !version_changed {
            return Ok(false);
        }
        row.model = model;
        row.deadline = deadline;
        row.grade = i16::from(grade.get());
        row.duration = armed.duration;
        row.calendar = armed.calendar;
        row.explanation = armed.explanation;
        row.policy_version = rules.version().to_owned();
        store::update(conn, row).await?;
        self.arm_timers(conn, rules, row).await?;
        if deadline != old {
            store::audit(
                conn,
                row.audit(
                    change,
                    old,
                    actor,
                    &format!("grade {grade}, policy {}", rules.policy.name),
                    rules.version(),
                ),
            )
            .await?;
            out.push(row.complaint_id, started_event(row));
        }
        Ok(deadline != old)
    }
}

/// `sla.started` for a clock as it stands.
pub fn started_event(row: &ClockRow) -> Payload {
    Payload::SlaStarted(pb::SlaStarted {
        target: pb_target(row.target) as i32,
        department: row.department.clone(),
        started_at: ts(row.model.started),
        deadline: row.deadline.and_then(ts),
        explanation: row.explanation.clone(),
        calendar: row.calendar.clone(),
    })
}

/// When the event happened (its envelope time), else now.
fn occurred(d: &Delivery) -> OffsetDateTime {
    d.event
        .occurred_at
        .as_ref()
        .and_then(tousu_bus::from_timestamp)
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// `2 h 30 min`, `45 s`.
pub fn human(d: time::Duration) -> String {
    let s = d.whole_seconds();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, _) => format!("{m} min"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The consumer of every complaint event.
pub struct Consumer(pub Arc<Sla>);

impl Handler for Consumer {
    async fn handle(&self, conn: &mut PgConnection, d: &Delivery) -> Result<(), HandleError> {
        let sla = &self.0;
        let rules = sla.rules();
        let mut out = Out::default();
        match &d.event.payload {
            Some(Payload::Received(r)) => {
                let at = r
                    .complaint
                    .as_ref()
                    .and_then(|c| c.received_at.as_ref())
                    .and_then(tousu_bus::from_timestamp)
                    .unwrap_or_else(|| occurred(d));
                sqlx::query(
                    "INSERT INTO complaints (complaint_id, received_at) VALUES ($1, $2)
                     ON CONFLICT (complaint_id) DO NOTHING",
                )
                .bind(d.complaint_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            Some(Payload::Assigned(a)) => {
                sla.handle_assigned(conn, &rules, d, a, &mut out).await?;
            }
            Some(Payload::Lifecycle(l)) if !d.stale => {
                sla.handle_lifecycle(conn, &rules, d, l, &mut out).await?;
            }
            Some(Payload::NotifyAcked(a))
                if a.escalation_step > 0 && a.cause_event_type.starts_with("escalation.") =>
            {
                // Acknowledged through notify's ack link: the ladder stops here.
                let at = a
                    .acked_at
                    .as_ref()
                    .and_then(tousu_bus::from_timestamp)
                    .unwrap_or_else(|| occurred(d));
                let step = i32::try_from(a.escalation_step).unwrap_or(i32::MAX);
                let actor = if a.actor.is_empty() {
                    &a.recipient
                } else {
                    &a.actor
                };
                store::ack_escalation(conn, d.complaint_id, step, actor, at).await?;
            }
            Some(Payload::Regraded(r)) if r.actor != crate::NAME => {
                let grade = u8::try_from(r.new_grade)
                    .ok()
                    .and_then(|g| Grade::try_from(g).ok())
                    .ok_or_else(|| HandleError::Reject(format!("grade {}", r.new_grade)))?;
                sqlx::query("UPDATE complaints SET grade = $2 WHERE complaint_id = $1")
                    .bind(d.complaint_id)
                    .bind(i16::from(grade.get()))
                    .execute(&mut *conn)
                    .await?;
                for mut row in store::clocks(conn, d.complaint_id, true).await? {
                    if row.target == Target::Resolution && row.is_open() {
                        sla.rearm(
                            conn, &rules, &mut row, grade, "regraded", &r.actor, &mut out,
                        )
                        .await?;
                    }
                }
            }
            _ => {}
        }
        if !out.0.is_empty() {
            sla.outbox
                .enqueue_many(conn, rules.version(), out.0)
                .await
                .map_err(|e| HandleError::Retry(e.to_string()))?;
        }
        Ok(())
    }
}
