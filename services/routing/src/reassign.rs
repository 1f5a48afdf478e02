//! Reassignment: returns (退单), transfers (转办) and arbitration.
//!
//! [`Reassigner`] consumes desk's lifecycle events ([`SUBJECTS`], durable
//! consumer `routing-lifecycle`):
//!
//! - `complaint.returned.<dept>`: the complaint is routed again by the
//!   policy in force, on the facts of its first decision (same
//!   classification, grade, urgency and flags), skipping every routing
//!   rule that decides a department which returned it; when no rule is
//!   left and the taxonomy's department returned it too, the triage
//!   department (the complaint centre) gets it. The triage department is
//!   never excluded: what it returns comes back to it, and the centre
//!   arbitrates. A return of an arbitrated complaint is refused.
//! - `complaint.transferred.<dept>`: to `to_department`;
//! - `complaint.arbitrated.<dept>`: to `to_department`, and from then on
//!   the complaint cannot be returned.
//!
//! Each publishes `complaint.assigned.<new dept>` with the previous
//! department, why, the departments that returned it, the arbitration
//! flag, the first assignment's classification, SLA policy and linked
//! complaints, and a handler picked in the new department
//! ([`crate::handlers`]); and records who, why, from, to and when in
//! `reassignments`. The SLA clocks are sla's: a reassignment does not
//! restart them.
//!
//! Order: `assignments.lifecycle_seq` keeps desk's sequence number of the
//! last lifecycle event applied to the complaint; an older event arriving
//! late (a return overtaken by a later transfer) changes nothing, and
//! neither does a return or transfer from a department that no longer has
//! the complaint. The same event twice is stopped by the inbox, and
//! `reassignments.event_id` is unique besides.
//!
//! The same consumer keeps the open assignments that `least_open` and
//! `skills` count: `signed_for` names the handler, `resolved`, `closed`,
//! `withdrawn`, `rejected` and `merged` close the assignment and
//! `reopened` opens it again.

use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use tousu_bus::{Delivery, HandleError, Handler, Outbox, Payload};
use tousu_domain::{Grade, Urgency};
use tousu_policy::Hit;
use tousu_policy::cel::{Facts, Flag, Flags};
use tousu_policy::schema::{Policy, Routing};
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::{explain, handlers};

/// The durable consumer of lifecycle events.
pub const DURABLE: &str = "routing-lifecycle";

/// The lifecycle subjects routing consumes.
pub const SUBJECTS: &[&str] = &[
    "tousu.evt.complaint.returned.>",
    "tousu.evt.complaint.transferred.>",
    "tousu.evt.complaint.arbitrated.>",
    "tousu.evt.complaint.signed_for.>",
    "tousu.evt.complaint.resolved.>",
    "tousu.evt.complaint.closed.>",
    "tousu.evt.complaint.withdrawn.>",
    "tousu.evt.complaint.rejected.>",
    "tousu.evt.complaint.merged.>",
    "tousu.evt.complaint.reopened.>",
    "tousu.evt.complaint.regraded",
];

/// Why a complaint changes department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Returned,
    Transferred,
    Arbitrated,
}

impl Kind {
    /// `reassigned_because` and the `reassignments.because` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Returned => "returned",
            Kind::Transferred => "transferred",
            Kind::Arbitrated => "arbitrated",
        }
    }
}

/// The lifecycle action of an event: its `action`, else the subject's
/// token after `complaint.` (older producers name the event by status).
pub fn action<'a>(l: &'a pb::ComplaintLifecycle, subject: &'a str) -> &'a str {
    if !l.action.is_empty() {
        return &l.action;
    }
    subject
        .strip_prefix("tousu.evt.complaint.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or("")
}

/// A complaint's assignment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub department: String,
    pub handler: Option<String>,
    pub version: i32,
    pub lifecycle_seq: i64,
    pub returned_by: Vec<String>,
    pub arbitrated: bool,
    pub open: bool,
}

/// A return, transfer or arbitration, as desk reported it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub kind: Kind,
    /// The department that had the complaint (the event's `department`);
    /// empty when the producer did not say.
    pub from: &'a str,
    /// `to_department` (transfers and arbitration).
    pub to: &'a str,
    /// desk's sequence number of the event.
    pub seq: i64,
    /// The consumer already applied a later event of desk's.
    pub stale: bool,
}

/// Where the complaint goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Routed again, without these departments (they returned it).
    Reroute { excluded: Vec<String> },
    /// To this department.
    To(String),
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: an old event, or one about an assignment that has moved on.
    Ignore(String),
    /// Never processable: to the dead-letter stream with the reason.
    Refuse(String),
    /// Reassign.
    Move {
        /// The department that has it (also for an arbitration, whoever
        /// asked for it).
        from: String,
        target: Target,
        returned_by: Vec<String>,
        arbitrated: bool,
    },
}

/// Judges a request against the current assignment and the policy.
pub fn judge(current: &Current, r: &Request<'_>, policy: &Policy) -> Verdict {
    let what = r.kind.as_str();
    if r.stale || r.seq <= current.lifecycle_seq {
        return Verdict::Ignore(format!(
            "{what} event (desk sequence {}) is older than the last one applied ({}): the assignment stays with {}",
            r.seq, current.lifecycle_seq, current.department
        ));
    }
    let from = if r.from.is_empty() {
        current.department.as_str()
    } else {
        r.from
    };
    // The centre may arbitrate whoever holds the complaint; a department
    // can only return or transfer what it has.
    if r.kind != Kind::Arbitrated && from != current.department {
        return Verdict::Ignore(format!(
            "{what} by {from}, but the complaint is now with {} (assignment {}): nothing to do",
            current.department, current.version
        ));
    }
    if !current.open {
        return Verdict::Refuse(format!(
            "complaint is no longer open (resolved, closed, withdrawn, rejected or merged): it cannot be {what}"
        ));
    }
    let mut returned_by = current.returned_by.clone();
    match r.kind {
        Kind::Returned => {
            if current.arbitrated {
                return Verdict::Refuse(format!(
                    "return by {from} refused: the complaint centre arbitrated the complaint to {}; it cannot be returned",
                    current.department
                ));
            }
            if !returned_by.iter().any(|d| d == from) {
                returned_by.push(from.to_owned());
            }
            Verdict::Move {
                from: current.department.clone(),
                target: Target::Reroute {
                    excluded: returned_by.clone(),
                },
                returned_by,
                arbitrated: false,
            }
        }
        Kind::Transferred | Kind::Arbitrated => {
            if r.to.is_empty() {
                return Verdict::Refuse(format!("{what} event without to_department"));
            }
            if policy.department(r.to).is_none() {
                let known: Vec<&str> = policy.departments.keys().map(String::as_str).collect();
                return Verdict::Refuse(format!(
                    "{what} to {:?}: not a department of the policy (known: {})",
                    r.to,
                    known.join(", ")
                ));
            }
            if r.kind == Kind::Transferred && r.to == current.department {
                return Verdict::Refuse(format!(
                    "transfer to {}: the complaint is already there",
                    r.to
                ));
            }
            Verdict::Move {
                from: current.department.clone(),
                target: Target::To(r.to.to_owned()),
                returned_by,
                arbitrated: current.arbitrated || r.kind == Kind::Arbitrated,
            }
        }
    }
}

/// Routes `facts` with the policy's rules, skipping every rule that
/// decides one of `excluded`; when the result is still one of them (the
/// taxonomy's department returned it), the triage department. The triage
/// department itself is never excluded.
pub fn route_excluding(policy: &Policy, facts: &Facts, excluded: &[String]) -> Routing {
    let triage = policy.triage_department.as_str();
    let is_out = |d: &str| d != triage && excluded.iter().any(|e| e == d);
    let mut routing = if excluded.is_empty() {
        policy.route(facts)
    } else {
        let mut p = policy.clone();
        p.routing
            .retain(|rule| rule.department.as_ref().is_none_or(|d| !is_out(d.as_str())));
        p.route(facts)
    };
    if is_out(routing.department.as_str()) {
        routing.hits.push(Hit {
            rule: "triage".into(),
            reason: format!(
                "{} returned it and no routing rule is left → triage department {triage}",
                routing.department
            ),
        });
        routing.department = policy.triage_department.clone();
        routing.co_departments.retain(|d| d.as_str() != triage);
        routing.strategy = policy
            .department(triage)
            .map(|d| d.strategy)
            .unwrap_or_default();
    }
    routing
}

/// The parts of a stored decision (`decisions.decision`, the engine's
/// `Decision` as JSON) that routing again needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Judged {
    pub classification: JudgedClass,
    pub grading: JudgedGrading,
    pub similar: JudgedSimilar,
    pub routing: JudgedRouting,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JudgedClass {
    pub category: String,
    pub confidence: f64,
    pub terms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JudgedGrading {
    pub grade: Grade,
    pub urgency: Urgency,
    pub flags: Vec<Flag>,
}

impl Default for JudgedGrading {
    fn default() -> Self {
        JudgedGrading {
            grade: Grade::GENERAL,
            urgency: Urgency::Normal,
            flags: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JudgedSimilar {
    pub repeat_count: i64,
    pub similar_complainants: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JudgedRouting {
    pub skills: Vec<String>,
}

/// The facts routing rules saw at the first decision: the complaint as
/// received, with the stored classification, grading and similarity (not
/// judged again: a return changes the department, not the complaint), and
/// `days_open` as of `now`. Without the complaint (routed before it was
/// stored) only the stored judgement is known.
pub fn facts(
    complaint: Option<&pb::Complaint>,
    judged: &Judged,
    received_at: Option<OffsetDateTime>,
    offset: time::UtcOffset,
    now: OffsetDateTime,
) -> Facts {
    let mut f = match complaint {
        Some(c) => {
            let v = crate::view(c);
            let mut f = Facts::new(v.title, v.description);
            f.channel = v.channel.to_owned();
            f.language = v.language.to_owned();
            f.product = v.product.to_owned();
            f.location = v.location.to_owned();
            f.category_hint = v.category_hint.to_owned();
            f.demand = v.demand.to_owned();
            f.amount = v.amount;
            f.customer_tier = v.customer_tier.to_owned();
            f.group_size = v.group_size;
            f.follow_ups = v.follow_ups;
            f.anonymous = v.anonymous;
            f
        }
        None => Facts::new("", ""),
    };
    let at = complaint
        .and_then(|c| c.received_at.as_ref())
        .and_then(tousu_bus::from_timestamp)
        .or(received_at)
        .unwrap_or(now);
    let local = at.to_offset(offset);
    f.hour = i64::from(local.hour());
    f.weekday = i64::from(local.weekday().number_from_monday());
    f.days_open = (now - at).whole_days().max(0);
    f.category.clone_from(&judged.classification.category);
    f.confidence = judged.classification.confidence;
    f.terms.clone_from(&judged.classification.terms);
    f.repeat_count = judged.similar.repeat_count;
    f.similar_complainants = judged.similar.similar_complainants.max(1);
    f.grade = judged.grading.grade;
    f.urgency = judged.grading.urgency;
    f.flags = judged.grading.flags.iter().copied().collect::<Flags>();
    f
}

/// The lifecycle handler.
pub struct Reassigner {
    pub(crate) engine: explain::Shared,
    pub(crate) outbox: Outbox,
}

impl Reassigner {
    pub fn new(engine: explain::Shared, outbox: Outbox) -> Self {
        Reassigner { engine, outbox }
    }

    /// `complaint.regraded` (sla's time-based rules, or a person): the
    /// decision takes the new grade, so a later reassignment carries it,
    /// and a complaint that becomes 重大 alerts leadership at once, as one
    /// graded 1 on arrival does.
    async fn regraded(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
        r: &pb::ComplaintRegraded,
    ) -> Result<(), HandleError> {
        let new = u8::try_from(r.new_grade)
            .ok()
            .and_then(|g| Grade::try_from(g).ok())
            .ok_or_else(|| HandleError::Reject(format!("regraded to grade {}", r.new_grade)))?;
        let row: Option<(i16, String, String, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT d.grade, coalesce(a.department, d.department), d.policy_version, a.first_event
             FROM decisions d LEFT JOIN assignments a USING (complaint_id)
             WHERE d.complaint_id = $1 FOR UPDATE OF d",
        )
        .bind(delivery.complaint_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((old, department, version, first)) = row else {
            return Err(HandleError::Retry(
                "regraded before routing decided: waiting for the decision".into(),
            ));
        };
        sqlx::query("UPDATE decisions SET grade = $2 WHERE complaint_id = $1")
            .bind(delivery.complaint_id)
            .bind(i16::from(new.get()))
            .execute(&mut *conn)
            .await?;
        if new == Grade::MAJOR && old != i16::from(Grade::MAJOR.get()) {
            let first: pb::ComplaintAssigned = first
                .and_then(|b| prost::Message::decode(b.as_slice()).ok())
                .unwrap_or_default();
            self.outbox
                .enqueue(
                    conn,
                    delivery.complaint_id,
                    &version,
                    Payload::AlertMajor(pb::AlertMajor {
                        department,
                        tracking_no: first.tracking_no,
                        summary: first.summary,
                        rules: vec![pb::RuleHit {
                            rule: "regraded".into(),
                            reason: format!(
                                "grade {old} → 1 by {}: {}",
                                if r.actor.is_empty() { "?" } else { &r.actor },
                                r.reason
                            ),
                        }],
                    }),
                )
                .await?;
        }
        tracing::info!(complaint = %delivery.complaint_id, old, new = %new, "regraded");
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    department: String,
    handler: Option<String>,
    version: i32,
    lifecycle_seq: i64,
    returned_by: Vec<String>,
    arbitrated: bool,
    open: bool,
    first_event: Option<Vec<u8>>,
    complaint: Option<Vec<u8>>,
    decision: Option<serde_json::Value>,
    received_at: Option<OffsetDateTime>,
    category: String,
    grade: i16,
    urgency: String,
    confidence: f64,
}

impl Handler for Reassigner {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        if let Some(Payload::Regraded(r)) = &delivery.event.payload {
            return self.regraded(conn, delivery, r).await;
        }
        let Some(Payload::Lifecycle(l)) = &delivery.event.payload else {
            return Ok(());
        };
        let kind = match action(l, &delivery.subject) {
            "returned" => Kind::Returned,
            "transferred" => Kind::Transferred,
            "arbitrated" => Kind::Arbitrated,
            "signed_for" if !l.handler.is_empty() => {
                return track(conn, delivery, Track::Handler(&l.handler)).await;
            }
            "resolved" | "closed" | "withdrawn" | "rejected" | "merged" => {
                return track(conn, delivery, Track::Open(false)).await;
            }
            "reopened" => return track(conn, delivery, Track::Open(true)).await,
            _ => return Ok(()),
        };
        self.reassign(conn, delivery, l, kind).await
    }
}

enum Track<'a> {
    Handler(&'a str),
    Open(bool),
}

/// Applies a lifecycle step that changes who has the case open.
async fn track(
    conn: &mut PgConnection,
    delivery: &Delivery,
    change: Track<'_>,
) -> Result<(), HandleError> {
    if delivery.stale {
        return Ok(());
    }
    let seq = delivery.event.sequence as i64;
    let query = match change {
        Track::Handler(h) => sqlx::query(
            "UPDATE assignments SET handler = $3, handler_reason = 'signed for by the department',
                 lifecycle_seq = $2, updated_at = now()
             WHERE complaint_id = $1 AND lifecycle_seq < $2",
        )
        .bind(delivery.complaint_id)
        .bind(seq)
        .bind(h.to_owned()),
        Track::Open(open) => sqlx::query(
            "UPDATE assignments SET open = $3, lifecycle_seq = $2, updated_at = now()
             WHERE complaint_id = $1 AND lifecycle_seq < $2",
        )
        .bind(delivery.complaint_id)
        .bind(seq)
        .bind(open),
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

fn hit(rule: &str, reason: String) -> pb::RuleHit {
    pb::RuleHit {
        rule: rule.to_owned(),
        reason,
    }
}

impl Reassigner {
    async fn reassign(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
        l: &pb::ComplaintLifecycle,
        kind: Kind,
    ) -> Result<(), HandleError> {
        let id = delivery.complaint_id;
        let row: Option<Row> = sqlx::query_as(
            "SELECT a.department, a.handler, a.version, a.lifecycle_seq, a.returned_by, a.arbitrated,
                    a.open, a.first_event, d.complaint, d.decision, d.received_at, d.category,
                    d.grade, d.urgency, d.confidence
               FROM assignments a JOIN decisions d USING (complaint_id)
              WHERE a.complaint_id = $1
              FOR UPDATE OF a",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            // desk acts only on assigned complaints: routing has not
            // recorded this one yet (its consumers run independently).
            return Err(HandleError::Retry(format!(
                "complaint {id} {} before routing assigned it",
                kind.as_str()
            )));
        };
        let current = Current {
            department: row.department.clone(),
            handler: row.handler.clone(),
            version: row.version,
            lifecycle_seq: row.lifecycle_seq,
            returned_by: row.returned_by.clone(),
            arbitrated: row.arbitrated,
            open: row.open,
        };
        let policy = self
            .engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .policy()
            .clone();
        let request = Request {
            kind,
            from: &l.department,
            to: &l.to_department,
            seq: delivery.event.sequence as i64,
            stale: delivery.stale,
        };
        let (from, target, returned_by, arbitrated) = match judge(&current, &request, &policy) {
            Verdict::Ignore(why) => {
                metrics::counter!("tousu_routing_reassign_ignored_total", "because" => kind.as_str())
                    .increment(1);
                tracing::info!(complaint = %id, "{why}");
                return Ok(());
            }
            Verdict::Refuse(why) => return Err(HandleError::Reject(why)),
            Verdict::Move {
                from,
                target,
                returned_by,
                arbitrated,
            } => (from, target, returned_by, arbitrated),
        };

        let judged: Judged = row
            .decision
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| Judged {
                classification: JudgedClass {
                    category: row.category.clone(),
                    confidence: row.confidence,
                    terms: Vec::new(),
                },
                grading: JudgedGrading {
                    grade: u8::try_from(row.grade)
                        .ok()
                        .and_then(|g| Grade::try_from(g).ok())
                        .unwrap_or(Grade::GENERAL),
                    urgency: row.urgency.parse().unwrap_or(Urgency::Normal),
                    flags: Vec::new(),
                },
                ..Judged::default()
            });
        let first: pb::ComplaintAssigned = match &row.first_event {
            Some(bytes) => prost::Message::decode(bytes.as_slice()).map_err(|e| {
                HandleError::Reject(format!("stored first assignment does not decode: {e}"))
            })?,
            None => pb::ComplaintAssigned {
                classification: Some(pb::Classification {
                    category: judged.classification.category.clone(),
                    confidence: judged.classification.confidence,
                    grade: u32::from(judged.grading.grade.get()),
                    urgency: crate::pb_urgency(judged.grading.urgency) as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        let first_assignment = first.assignment.clone().unwrap_or_default();

        let mut rules = vec![hit(
            kind.as_str(),
            match kind {
                Kind::Returned => format!(
                    "returned by {from} ({}): {}",
                    l.actor,
                    if l.reason.is_empty() {
                        "no reason given"
                    } else {
                        &l.reason
                    }
                ),
                Kind::Transferred => format!(
                    "transferred by {from} ({}) to {}: {}",
                    l.actor, l.to_department, l.reason
                ),
                Kind::Arbitrated => format!(
                    "arbitrated by {} to {}: {}; it can no longer be returned",
                    l.actor, l.to_department, l.reason
                ),
            },
        )];
        let (to, co_departments, strategy, skills) = match target {
            Target::Reroute { excluded } => {
                let complaint: Option<pb::Complaint> = match &row.complaint {
                    Some(bytes) => Some(prost::Message::decode(bytes.as_slice()).map_err(|e| {
                        HandleError::Reject(format!("stored complaint does not decode: {e}"))
                    })?),
                    None => None,
                };
                let now = OffsetDateTime::now_utc();
                let f = facts(
                    complaint.as_ref(),
                    &judged,
                    row.received_at,
                    crate::policy_offset(&policy),
                    now,
                );
                rules.push(hit(
                    "exclude",
                    format!("not to {}: returned by them", excluded.join(", ")),
                ));
                let routing = route_excluding(&policy, &f, &excluded);
                rules.extend(routing.hits.iter().map(|h| hit(&h.rule, h.reason.clone())));
                (
                    routing.department.to_string(),
                    routing
                        .co_departments
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                    Some(routing.strategy),
                    routing.skills,
                )
            }
            Target::To(to) => {
                let co = first_assignment
                    .co_departments
                    .iter()
                    .filter(|d| **d != to)
                    .cloned()
                    .collect();
                (to, co, None, judged.routing.skills.clone())
            }
        };

        // An arbitration confirming the department that has it keeps its
        // handler; otherwise the department picks one (a return to the
        // triage department by itself too: the returner's handler is not
        // counted).
        let (handler, handler_reason) = if kind == Kind::Arbitrated && to == current.department {
            (
                current.handler.clone(),
                "the department keeps the complaint and its handler".to_owned(),
            )
        } else {
            match policy.department(&to) {
                Some(dept) => {
                    let strategy = strategy.unwrap_or(dept.strategy);
                    match handlers::pick(
                        conn,
                        dept,
                        strategy,
                        &skills,
                        &judged.classification.category,
                        id,
                    )
                    .await?
                    {
                        Some(c) => (Some(c.handler), c.reason),
                        None => (None, format!("department {to} lists no handlers")),
                    }
                }
                None => (None, format!("department {to} is not in the policy")),
            }
        };
        rules.push(hit("handler", handler_reason.clone()));

        let version = current.version + 1;
        let rules_json = json!(
            rules
                .iter()
                .map(|h| json!({"rule": h.rule, "reason": h.reason}))
                .collect::<Vec<_>>()
        );
        let occurred_at = delivery
            .event
            .occurred_at
            .as_ref()
            .and_then(tousu_bus::from_timestamp);
        let event_id = Uuid::parse_str(&delivery.event.id)
            .map_err(|e| HandleError::Reject(format!("event id: {e}")))?;
        let recorded = sqlx::query(
            "INSERT INTO reassignments (complaint_id, event_id, version, because, from_department,
                 to_department, handler, actor, reason, returned_by, arbitrated, rules, policy_version,
                 occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(id)
        .bind(event_id)
        .bind(version)
        .bind(kind.as_str())
        .bind(&from)
        .bind(&to)
        .bind(&handler)
        .bind(&l.actor)
        .bind(&l.reason)
        .bind(&returned_by)
        .bind(arbitrated)
        .bind(&rules_json)
        .bind(&policy.version)
        .bind(occurred_at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !recorded {
            tracing::info!(complaint = %id, event = %event_id, "reassignment already recorded");
            return Ok(());
        }
        sqlx::query(
            "UPDATE assignments SET department = $2, handler = $3, handler_reason = $4, version = $5,
                 lifecycle_seq = $6, returned_by = $7, arbitrated = $8, assigned_at = now(),
                 updated_at = now()
             WHERE complaint_id = $1",
        )
        .bind(id)
        .bind(&to)
        .bind(&handler)
        .bind(&handler_reason)
        .bind(version)
        .bind(request.seq)
        .bind(&returned_by)
        .bind(arbitrated)
        .execute(&mut *conn)
        .await?;

        let assigned = pb::ComplaintAssigned {
            assignment: Some(pb::Assignment {
                department: to.clone(),
                handler: handler.clone().unwrap_or_default(),
                co_departments,
                sla_policy: first_assignment.sla_policy.clone(),
            }),
            rules,
            previous_department: current.department.clone(),
            reassigned_because: kind.as_str().to_owned(),
            returned_by: returned_by.clone(),
            arbitrated,
            ..first
        };
        self.outbox
            .enqueue(conn, id, &policy.version, Payload::Assigned(assigned))
            .await?;
        metrics::counter!("tousu_routing_reassigned_total", "because" => kind.as_str(), "department" => to.clone())
            .increment(1);
        tracing::info!(
            complaint = %id,
            because = kind.as_str(),
            from = %current.department,
            %to,
            handler = handler.as_deref().unwrap_or(""),
            "reassigned"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> &'static Policy {
        crate::test_policy()
    }

    fn current(department: &str) -> Current {
        Current {
            department: department.into(),
            handler: Some("xu.fang".into()),
            version: 1,
            lifecycle_seq: 3,
            returned_by: Vec::new(),
            arbitrated: false,
            open: true,
        }
    }

    fn request<'a>(kind: Kind, from: &'a str, to: &'a str, seq: i64) -> Request<'a> {
        Request {
            kind,
            from,
            to,
            seq,
            stale: false,
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn a_return_reroutes_without_every_department_that_returned_it() {
        let mut c = current("billing");
        c.returned_by = strings(&["logistics"]);
        assert_eq!(
            judge(&c, &request(Kind::Returned, "billing", "", 4), policy()),
            Verdict::Move {
                from: "billing".into(),
                target: Target::Reroute {
                    excluded: strings(&["logistics", "billing"])
                },
                returned_by: strings(&["logistics", "billing"]),
                arbitrated: false,
            }
        );
    }

    #[test]
    fn a_return_of_an_arbitrated_complaint_is_refused() {
        let mut c = current("logistics");
        c.arbitrated = true;
        match judge(&c, &request(Kind::Returned, "logistics", "", 9), policy()) {
            Verdict::Refuse(why) => {
                assert!(why.contains("arbitrated"), "{why}");
                assert!(why.contains("logistics"), "{why}");
            }
            v => panic!("{v:?}"),
        }
        // A transfer stays possible, and the complaint stays arbitrated.
        assert_eq!(
            judge(
                &c,
                &request(Kind::Transferred, "logistics", "billing", 9),
                policy()
            ),
            Verdict::Move {
                from: "logistics".into(),
                target: Target::To("billing".into()),
                returned_by: Vec::new(),
                arbitrated: true,
            }
        );
    }

    #[test]
    fn old_or_misdirected_events_change_nothing() {
        let c = current("billing");
        // Older than the last lifecycle event applied.
        assert!(matches!(
            judge(&c, &request(Kind::Returned, "billing", "", 3), policy()),
            Verdict::Ignore(_)
        ));
        // Marked stale by the consumer.
        let mut r = request(Kind::Returned, "billing", "", 10);
        r.stale = true;
        assert!(matches!(judge(&c, &r, policy()), Verdict::Ignore(_)));
        // A return from a department that no longer has it (it was
        // transferred away meanwhile).
        match judge(&c, &request(Kind::Returned, "logistics", "", 10), policy()) {
            Verdict::Ignore(why) => assert!(why.contains("now with billing"), "{why}"),
            v => panic!("{v:?}"),
        }
        // An empty department means the one that has it.
        assert!(matches!(
            judge(&c, &request(Kind::Returned, "", "", 10), policy()),
            Verdict::Move { .. }
        ));
    }

    #[test]
    fn transfers_and_arbitration_need_a_policy_department() {
        let c = current("logistics");
        for kind in [Kind::Transferred, Kind::Arbitrated] {
            match judge(&c, &request(kind, "logistics", "nowhere", 4), policy()) {
                Verdict::Refuse(why) => {
                    assert!(why.contains("\"nowhere\""), "{why}");
                    assert!(why.contains("billing"), "lists the known ones: {why}");
                }
                v => panic!("{v:?}"),
            }
            assert!(matches!(
                judge(&c, &request(kind, "logistics", "", 4), policy()),
                Verdict::Refuse(_)
            ));
        }
        // Transferring to where it is makes no sense; arbitrating to it
        // confirms it and ends the returns.
        assert!(matches!(
            judge(
                &c,
                &request(Kind::Transferred, "logistics", "logistics", 4),
                policy()
            ),
            Verdict::Refuse(_)
        ));
        assert_eq!(
            judge(
                &c,
                &request(Kind::Arbitrated, "logistics", "logistics", 4),
                policy()
            ),
            Verdict::Move {
                from: "logistics".into(),
                target: Target::To("logistics".into()),
                returned_by: Vec::new(),
                arbitrated: true,
            }
        );
        // The centre may arbitrate whatever department the event names
        // (desk lets it decide while the complaint is still being
        // re-routed after a return): it moves from where it is.
        let mut c = current("quality");
        c.returned_by = strings(&["operations"]);
        assert_eq!(
            judge(
                &c,
                &request(Kind::Arbitrated, "operations", "operations", 4),
                policy()
            ),
            Verdict::Move {
                from: "quality".into(),
                target: Target::To("operations".into()),
                returned_by: strings(&["operations"]),
                arbitrated: true,
            }
        );
    }

    #[test]
    fn nothing_moves_once_the_case_is_closed() {
        let mut c = current("logistics");
        c.open = false;
        for kind in [Kind::Returned, Kind::Transferred, Kind::Arbitrated] {
            assert!(matches!(
                judge(&c, &request(kind, "logistics", "billing", 4), policy()),
                Verdict::Refuse(_)
            ));
        }
    }

    fn facts_of(
        title: &str,
        description: &str,
        category: &str,
        confidence: f64,
        flags: &[Flag],
    ) -> Facts {
        let complaint = pb::Complaint {
            id: "0190a1b2-0000-7000-8000-000000000001".into(),
            channel: pb::Channel::Webform as i32,
            content: Some(pb::Content {
                title: title.into(),
                description: description.into(),
                language: "zh".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let judged = Judged {
            classification: JudgedClass {
                category: category.into(),
                confidence,
                terms: Vec::new(),
            },
            grading: JudgedGrading {
                grade: if flags.contains(&Flag::Safety) {
                    Grade::MAJOR
                } else {
                    Grade::GENERAL
                },
                urgency: Urgency::Normal,
                flags: flags.to_vec(),
            },
            ..Judged::default()
        };
        let now = OffsetDateTime::now_utc();
        facts(
            Some(&complaint),
            &judged,
            Some(now),
            time::UtcOffset::UTC,
            now,
        )
    }

    #[test]
    fn rerouting_skips_the_rules_of_departments_that_returned_it() {
        // An exploding charger in the store: premises-safety (operations)
        // decides; once operations returned it, product-safety (quality).
        let f = facts_of(
            "店里充电宝爆炸",
            "在门店试用充电宝时突然爆炸，手被烫伤",
            "product_quality",
            0.9,
            &[Flag::Safety],
        );
        let first = route_excluding(policy(), &f, &[]);
        assert_eq!(first.department.as_str(), "operations");
        let again = route_excluding(policy(), &f, &strings(&["operations"]));
        assert_eq!(again.department.as_str(), "quality");
        assert!(
            again.hits.iter().any(|h| h.rule == "product-safety"),
            "{:?}",
            again.hits
        );
        // quality returned it too: the taxonomy's department is quality as
        // well, so the triage department (the complaint centre) gets it.
        let last = route_excluding(policy(), &f, &strings(&["operations", "quality"]));
        assert_eq!(last.department.as_str(), "service");
        let triage = last.hits.last().unwrap();
        assert_eq!(triage.rule, "triage");
        assert!(
            triage.reason.contains("quality returned it"),
            "{}",
            triage.reason
        );
        assert_eq!(last.strategy, tousu_policy::schema::Strategy::Skills);
    }

    #[test]
    fn rerouting_by_the_taxonomy_falls_back_to_triage() {
        let f = facts_of("快递没到", "快递一个星期了还没送到", "logistics", 0.8, &[]);
        assert_eq!(
            route_excluding(policy(), &f, &[]).department.as_str(),
            "logistics"
        );
        let r = route_excluding(policy(), &f, &strings(&["logistics"]));
        assert_eq!(r.department.as_str(), "service");
        // The triage department is never excluded: what it returns comes
        // back to it.
        let r = route_excluding(policy(), &f, &strings(&["logistics", "service"]));
        assert_eq!(r.department.as_str(), "service");
    }

    #[test]
    fn facts_carry_the_stored_judgement_and_the_days_open() {
        let complaint = pb::Complaint {
            content: Some(pb::Content {
                title: "退款".into(),
                description: "退款两周了还没到账".into(),
                product: "会员卡".into(),
                amount: "299.00".into(),
                ..Default::default()
            }),
            complainant: Some(pb::Complainant {
                customer_tier: "vip".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let decision = json!({
            "classification": {"category": "refund_aftersales", "confidence": 0.72, "triage": false,
                               "scores": [], "terms": ["退款"]},
            "grading": {"grade": 3, "urgency": "expedited", "flags": ["repeat"], "hits": []},
            "similar": {"fingerprint": 1, "similar_complainants": 2, "repeat_count": 1,
                        "similar_count": 1, "same_person_count": 1, "linked": []},
            "routing": {"department": "billing", "co_departments": [], "strategy": "round_robin",
                        "skills": ["refund"], "sla": null, "hits": []},
            "frequency": "偶发", "hot": null, "policy_version": "sha256:x", "hits": []
        });
        let judged: Judged = serde_json::from_value(decision).unwrap();
        assert_eq!(judged.routing.skills, ["refund"]);
        let received = OffsetDateTime::from_unix_timestamp(1_767_250_800).unwrap(); // 2026-01-01 07:00 UTC
        let now = received + time::Duration::days(3) + time::Duration::hours(5);
        let f = facts(
            Some(&complaint),
            &judged,
            Some(received),
            time::UtcOffset::from_hms(8, 0, 0).unwrap(),
            now,
        );
        assert_eq!(f.category, "refund_aftersales");
        assert_eq!(f.confidence, 0.72);
        assert_eq!(f.grade, Grade::IMPORTANT);
        assert_eq!(f.urgency, Urgency::Expedited);
        assert!(f.flags.contains(Flag::Repeat));
        assert!(!f.flags.contains(Flag::Safety));
        assert_eq!((f.repeat_count, f.similar_complainants), (1, 2));
        assert_eq!((f.hour, f.weekday, f.days_open), (15, 4, 3));
        assert_eq!((f.amount, f.customer_tier.as_str()), (299.0, "vip"));
        assert_eq!(f.product, "会员卡");
    }

    #[test]
    fn the_action_comes_from_the_event_or_its_subject() {
        let mut l = pb::ComplaintLifecycle {
            action: "returned".into(),
            ..Default::default()
        };
        assert_eq!(
            action(&l, "tousu.evt.complaint.returned.logistics"),
            "returned"
        );
        l.action.clear();
        assert_eq!(action(&l, "tousu.evt.complaint.closed.logistics"), "closed");
        assert_eq!(action(&l, "tousu.evt.other"), "");
    }
}
