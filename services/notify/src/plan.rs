//! The planner: each event → who is told, on which channel, with which
//! rendered message (rows in `deliveries`, which the sender sends).
//!
//! For one event:
//!
//! 1. its facts are recorded ([`facts::record`]) and read back;
//! 2. every `[[notify]]` rule that applies (event type × grade ×
//!    department) names roles; each role resolves to roster members (or the
//!    complainant) and each member to one channel ([`recipients`]);
//!    `escalation.<level>` events also reach the role in the event, on the
//!    ladder level's channels;
//! 3. a rule with `ack_within` is a ladder: its first role is told at once,
//!    role *i* gets rows due at `now + i × ack_within` (`step = i`), all
//!    carrying an ack token; an ack cancels the later steps' rows before
//!    they are due ([`crate::acks`]);
//! 4. quiet hours defer a member's row to their end (never for grade 1);
//! 5. `sla.warning` / `sla.breached` beyond the digest threshold are folded
//!    into a digest ([`crate::digest`]);
//! 6. each row gets its message rendered ([`crate::templates`]) and all are
//!    inserted with `ON CONFLICT (cause_event_id, recipient, channel) DO
//!    NOTHING` (one delivery per event per recipient and channel, across
//!    replicas), and the senders are woken in the same transaction.

use std::path::Path;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use sqlx::PgConnection;
use sqlx::types::Json;
use time::{OffsetDateTime, UtcOffset};
use tousu_bus::{Delivery, EventExt, HandleError, Handler, Outbox, Payload, from_timestamp};
use tousu_domain::Grade;
use tousu_domain::calendar::Calendar;
use tousu_policy::schema::{self, Policy};
use tousu_proto::v1 as pb;
use uuid::Uuid;

use crate::channels::Channels;
use crate::facts::{self, Facts};
use crate::model::Message;
use crate::recipients::{self, COMPLAINANT, Scope};
use crate::templates::{self, Audience, Templates};
use crate::{digest, send};

/// Event types that wildcards (`sla.*`, `complaint.>`) do not cover: clock
/// bookkeeping nobody wants a message about. A rule naming one exactly
/// still gets it.
pub const BOOKKEEPING: &[&str] = &["sla.started", "sla.met", "sla.paused", "sla.resumed"];

/// Event types folded into digests beyond the threshold.
pub const DIGESTED: &[&str] = &["sla.warning", "sla.breached"];

/// Channels of an escalation level the policy no longer has.
const FALLBACK_CHANNELS: &[&str] = &["wecom", "dingtalk", "feishu", "email", "sms", "webhook"];

/// The policy in force and its calendar (working-time `ack_within` and
/// `repeat`); replaced whole on a reload.
pub struct Loaded {
    pub policy: Policy,
    pub calendar: Option<Calendar>,
}

impl Loaded {
    /// `dir`: the policies directory (calendars in `dir/calendars`). A
    /// calendar that does not load leaves working units approximated.
    pub fn new(policy: Policy, dir: &Path) -> Loaded {
        let calendar = policy.calendar.as_ref().and_then(|name| {
            Calendar::load(&dir.join("calendars"), name)
                .map_err(|e| {
                    tracing::warn!(calendar = %name, error = %e, "calendar not loaded; working time approximated");
                })
                .ok()
        });
        Loaded { policy, calendar }
    }

    /// The policy's UTC offset at `at`.
    pub fn offset(&self, at: OffsetDateTime) -> UtcOffset {
        match &self.calendar {
            Some(c) if c.time_zone() == self.policy.time_zone => c
                .utc_offset(at)
                .unwrap_or_else(|_| tousu_routing::policy_offset(&self.policy)),
            _ => tousu_routing::policy_offset(&self.policy),
        }
    }

    /// `from` + `d`: working units on the calendar when there is one, else
    /// their rough wall-clock length.
    pub fn after(&self, from: OffsetDateTime, d: schema::Duration) -> OffsetDateTime {
        if d.is_working_time()
            && let Some(c) = &self.calendar
            && let Ok(at) = c.deadline_at(from, &d.to_calendar())
        {
            return at;
        }
        let wall = match d.unit {
            schema::Unit::Seconds => time::Duration::seconds(i64::from(d.amount)),
            _ => time::Duration::minutes(d.approx_minutes().min(1 << 40) as i64),
        };
        from + wall
    }

    /// `from` + `n` × `d`.
    pub fn after_n(&self, from: OffsetDateTime, d: schema::Duration, n: usize) -> OffsetDateTime {
        (0..n).fold(from, |at, _| self.after(at, d))
    }
}

/// The planner of one replica, shared by its consumers, the due loop and
/// the ack API.
pub struct Planner {
    current: RwLock<Arc<Loaded>>,
    pub templates: Templates,
    pub channels: Arc<Channels>,
    pub outbox: Outbox,
    /// Wakes the senders after a planning transaction committed.
    pub announcer: send::Announcer,
    /// Console base URL (`public_url`).
    public_url: String,
    /// Base URL of notify's own HTTP API (ack links).
    ack_base: RwLock<String>,
    pub digest_threshold: u32,
    pub digest_window: time::Duration,
    /// Connections for the digest counters: statements committed at once
    /// without waiting for the disk (see [`digest::fold`]).
    pub counters: sqlx::PgPool,
}

/// One event, as the planner sees it.
#[derive(Debug, Clone)]
pub struct Notice<'e> {
    /// The cause id of the deliveries (the event id; a fresh one per repeat).
    pub cause_id: Uuid,
    pub complaint_id: Uuid,
    /// The type rules match (`escalation.<level>`, `complaint.<action>` …).
    pub event_type: String,
    /// Further types rules may name for it (`complaint.graded`).
    pub aliases: Vec<String>,
    pub occurred_at: OffsetDateTime,
    pub payload: &'e Payload,
    /// 0 for the event itself, n for its n-th repeat.
    pub repeat: u32,
}

impl<'e> Notice<'e> {
    /// The notice of an event; `None` for an event without a payload.
    pub fn of(event: &'e pb::Event, complaint_id: Uuid, cause_id: Uuid) -> Option<Notice<'e>> {
        let payload = event.payload.as_ref()?;
        let mut event_type = event.event_type();
        let mut aliases = Vec::new();
        match payload {
            Payload::Escalation(e) => event_type = format!("escalation.{}", e.level),
            Payload::Classified(_) => aliases.push("complaint.graded".to_owned()),
            Payload::Regraded(r) if r.new_grade < r.old_grade => {
                aliases.push("complaint.graded".to_owned())
            }
            _ => {}
        }
        Some(Notice {
            cause_id,
            complaint_id,
            event_type,
            aliases,
            occurred_at: event
                .occurred_at
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_else(OffsetDateTime::now_utc),
            payload,
            repeat: 0,
        })
    }

    fn types(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.event_type.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The department the event names, if any.
    pub fn department(&self) -> Option<&str> {
        let d = match self.payload {
            Payload::Assigned(a) => a.assignment.as_ref().map(|a| a.department.as_str()),
            Payload::Lifecycle(l) => Some(l.department.as_str()),
            Payload::SlaStarted(s) => Some(s.department.as_str()),
            Payload::SlaWarning(s) => Some(s.department.as_str()),
            Payload::SlaBreached(s) => Some(s.department.as_str()),
            Payload::SlaMet(s) => Some(s.department.as_str()),
            Payload::SlaPaused(s) => Some(s.department.as_str()),
            Payload::SlaResumed(s) => Some(s.department.as_str()),
            Payload::SlaExtended(s) => Some(s.department.as_str()),
            Payload::Escalation(e) => Some(e.department.as_str()),
            Payload::AlertMajor(a) => Some(a.department.as_str()),
            _ => None,
        };
        d.filter(|d| !d.trim().is_empty())
    }
}

/// A rule's identity in `deliveries.rule` and `repeats.rule`: its event
/// pattern and roles (stable across reloads that keep the rule).
pub fn rule_key(rule: &schema::NotifyRule) -> String {
    format!("{}>{}", rule.event, rule.roles.join(","))
}

/// One recipient on one channel, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Roster member id, or [`COMPLAINANT`].
    pub recipient: String,
    pub name: String,
    pub role: String,
    pub channel: String,
    pub address: String,
    pub in_reply_to: String,
    pub language: &'static str,
    pub audience: Audience,
    /// One of the handling department's own people: sees the complainant's
    /// contacts unmasked.
    pub insider: bool,
    pub rule: String,
    pub step: i32,
    pub due: OffsetDateTime,
    pub needs_ack: bool,
    /// Ladders: when the next level is told if nobody acknowledges.
    pub next_step_at: Option<OffsetDateTime>,
    /// `pending` or `suppressed`.
    pub status: &'static str,
    pub detail: String,
    /// Throttled into digests beyond the threshold.
    pub digestible: bool,
    /// The rule's `within`: when the notice must have gone out (the event
    /// time, or a later ladder step's own time, + `within`).
    pub due_by: Option<OffsetDateTime>,
    /// The recipient's other channels among the rule's, in its order:
    /// used when this one fails (see [`crate::send`]).
    pub fallbacks: Vec<Fallback>,
}

/// A channel to fall back on, and the recipient's address there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fallback {
    pub channel: String,
    pub address: String,
}

/// What a notice is planned against.
pub struct Subject<'a> {
    pub facts: &'a Facts,
    pub grade: Grade,
    pub department: Option<&'a str>,
}

fn grade_of(n: Option<i16>) -> Option<Grade> {
    n.and_then(|g| u8::try_from(g).ok())
        .and_then(|g| Grade::try_from(g).ok())
}

/// One rule (or an escalation level) to plan.
struct RulePlan {
    key: String,
    roles: Vec<String>,
    channels: Vec<String>,
    /// `ack_within`: the roles are a ladder.
    ladder: Option<schema::Duration>,
    needs_ack: bool,
    within: Option<schema::Duration>,
}

/// Who is told of `notice`, on which channel and when (pure: no I/O).
/// `only_rule`: plan that rule only (a repeat).
pub fn targets(
    loaded: &Loaded,
    notice: &Notice<'_>,
    subject: &Subject<'_>,
    now: OffsetDateTime,
    only_rule: Option<&str>,
) -> Vec<Planned> {
    let policy = &loaded.policy;
    let facts = subject.facts;
    let scope = Scope {
        department: subject.department,
        handler: facts.handler.as_deref().filter(|h| !h.is_empty()),
        co_departments: &facts.co_departments,
    };
    let mut out: Vec<Planned> = Vec::new();
    let mut plans: Vec<RulePlan> = Vec::new();
    for rule in &policy.notify {
        let key = rule_key(rule);
        if only_rule.is_some_and(|r| r != key) {
            continue;
        }
        let applies = notice.types().any(|t| {
            rule.applies(t, subject.grade, subject.department)
                && (rule.event == t || !BOOKKEEPING.contains(&t))
        });
        if applies {
            plans.push(RulePlan {
                key,
                roles: rule.roles.clone(),
                channels: rule.channels.clone(),
                ladder: rule.ack_within,
                needs_ack: rule.ack_within.is_some(),
                within: rule.within,
            });
        }
    }
    let mut escalation_deadline = None;
    if let (Payload::Escalation(e), None) = (notice.payload, only_rule) {
        let level = policy.escalation.iter().find(|l| l.level == e.level);
        let role = if e.role.is_empty() {
            level.map(|l| l.role.clone()).unwrap_or_default()
        } else {
            e.role.clone()
        };
        let channels = level
            .map(|l| l.channels.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| FALLBACK_CHANNELS.iter().map(|c| (*c).to_owned()).collect());
        if !role.is_empty() {
            escalation_deadline = e.ack_deadline.as_ref().and_then(from_timestamp);
            plans.insert(
                0,
                RulePlan {
                    key: format!("escalation.{}", e.level),
                    roles: vec![role],
                    channels,
                    ladder: None,
                    needs_ack: e.needs_ack,
                    within: None,
                },
            );
        }
    }
    let is_escalation = matches!(notice.payload, Payload::Escalation(_));

    for RulePlan {
        key,
        roles,
        channels,
        ladder,
        needs_ack,
        within,
    } in plans
    {
        for (i, role) in roles.iter().enumerate() {
            let (step, due, next_step_at) = match ladder {
                Some(d) => (
                    i as i32,
                    loaded.after_n(now, d, i),
                    (i + 1 < roles.len()).then(|| loaded.after_n(now, d, i + 1)),
                ),
                None if is_escalation && key.starts_with("escalation.") => {
                    (0, now, escalation_deadline)
                }
                None => (0, now, None),
            };
            // Step 0 answers for the event's time; a later step for its own.
            let due_by =
                within.map(|w| loaded.after(if step == 0 { notice.occurred_at } else { due }, w));
            let base = Planned {
                recipient: String::new(),
                name: String::new(),
                role: role.clone(),
                channel: channels.first().cloned().unwrap_or_else(|| "none".into()),
                address: String::new(),
                in_reply_to: String::new(),
                language: "zh-CN",
                audience: Audience::Staff,
                insider: false,
                rule: key.clone(),
                step,
                due,
                needs_ack,
                next_step_at,
                status: "pending",
                detail: String::new(),
                digestible: false,
                due_by,
                fallbacks: Vec::new(),
            };
            if role == COMPLAINANT {
                out.push(complainant_target(notice, facts, &channels, base));
                continue;
            }
            let offset = loaded.offset(due);
            let members = recipients::members(policy, role, &scope, due, offset);
            if members.is_empty() {
                tracing::warn!(role, rule = %key, department = ?subject.department, "nobody holds the role; not told");
                metrics::counter!("tousu_notify_unresolved_total", "role" => role.clone())
                    .increment(1);
            }
            for m in members {
                let mut p = Planned {
                    recipient: m.id.clone(),
                    name: m.name.clone(),
                    insider: recipients::is_insider(policy, m, subject.department, scope.handler),
                    ..base.clone()
                };
                let mut reachable = recipients::reachable(&channels, &m.contacts);
                if reachable.is_empty() {
                    p.status = "suppressed";
                    p.detail = format!("no contact on {}", channels.join(", "));
                } else {
                    let (channel, address) = reachable.remove(0);
                    p.channel = channel.to_owned();
                    p.address = address.to_owned();
                    p.fallbacks = reachable
                        .into_iter()
                        .map(|(channel, address)| Fallback {
                            channel: channel.to_owned(),
                            address: address.to_owned(),
                        })
                        .collect();
                    if let Some(until) = recipients::deferred(m, subject.grade, due, offset) {
                        // Quiet hours never hold a notice past its `within`.
                        match p.due_by.filter(|by| *by < until) {
                            Some(by) => {
                                p.due = by.max(due);
                                p.detail = format!(
                                    "in quiet hours until {}; sent at {} to be within the rule's time",
                                    local_time(until, loaded.offset(until)),
                                    local_time(p.due, loaded.offset(p.due))
                                );
                            }
                            None => {
                                p.due = until;
                                p.detail = format!(
                                    "deferred to the end of quiet hours ({})",
                                    local_time(until, loaded.offset(until))
                                );
                            }
                        }
                    }
                }
                p.digestible = p.status == "pending"
                    && !p.needs_ack
                    && subject.grade != Grade::MAJOR
                    && DIGESTED.contains(&notice.event_type.as_str());
                out.push(p);
            }
        }
    }
    // One row per recipient and channel: the earliest wins (a member both
    // on duty now and in the ladder's next level is told now, once).
    out.sort_by_key(|p| p.due);
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert((p.recipient.clone(), p.channel.clone())));
    out
}

fn complainant_target(
    notice: &Notice<'_>,
    facts: &Facts,
    channels: &[String],
    base: Planned,
) -> Planned {
    let who = facts.complainant();
    let ack = facts.ack();
    let mut p = Planned {
        recipient: COMPLAINANT.into(),
        name: who.name.clone(),
        audience: Audience::Complainant,
        language: recipients::language(ack.map(|a| a.language.as_str()).unwrap_or("")),
        needs_ack: false,
        next_step_at: None,
        ..base
    };
    if notice.event_type == "complaint.received" && ack.is_some_and(|a| a.answered_inline) {
        p.status = "suppressed";
        p.detail = "intake already gave the tracking number in its answer".into();
        return p;
    }
    match recipients::complainant_channel(channels, &who, ack) {
        Some(a) => {
            p.fallbacks = recipients::complainant_fallbacks(channels, &who, &a.channel)
                .into_iter()
                .map(|(channel, address)| Fallback { channel, address })
                .collect();
            p.channel = a.channel;
            p.address = a.address;
            p.in_reply_to = a.in_reply_to;
        }
        None => {
            p.status = "suppressed";
            p.detail = if who.anonymous {
                "the complainant is anonymous".into()
            } else if facts.received_at.is_none() {
                "complaint.received not seen: no contact for the complainant".into()
            } else {
                format!("the complainant left no contact on {}", channels.join(", "))
            };
        }
    }
    p
}

/// `2026-01-07 10:00` in the policy's time zone.
pub fn local_time(t: OffsetDateTime, offset: UtcOffset) -> String {
    let l = t.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        l.year(),
        u8::from(l.month()),
        l.day(),
        l.hour(),
        l.minute()
    )
}

/// `一级（重大）` / `grade 1 (major)`.
pub fn grade_name(grade: Grade, language: &str) -> String {
    let n = grade.get();
    if language == "en" {
        let name = ["major", "hot", "important", "general"][usize::from(n.clamp(1, 4) - 1)];
        format!("grade {n} ({name})")
    } else {
        let num = ["一", "二", "三", "四"][usize::from(n.clamp(1, 4) - 1)];
        format!("{num}级（{}）", grade.name_zh())
    }
}

/// The name of an SLA target in a language.
pub fn target_name(target: i32, language: &str) -> String {
    use pb::SlaTarget as T;
    let t = T::try_from(target).unwrap_or(T::Unspecified);
    let (zh, en) = match t {
        T::Acknowledge => ("受理", "acknowledgement"),
        T::Dispatch => ("派单", "dispatch"),
        T::SignOff => ("签收", "sign-off"),
        T::FirstContact => ("首次联系", "first contact"),
        T::Resolution => ("办结", "resolution"),
        T::ReturnVisit => ("回访", "return visit"),
        T::Overlay => ("监管时限", "regulatory"),
        T::Unspecified => ("办理", "handling"),
    };
    if language == "en" { en } else { zh }.to_owned()
}

/// A random, unguessable ack token (244 random bits, hex).
pub fn new_token() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

/// Whether a string looks like a token [`new_token`] makes.
pub fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The base URL of notify's HTTP API as the console's users reach it:
/// `public_url`'s scheme and host with notify's own port.
pub fn ack_base(public_url: &str, port: u16) -> String {
    let (scheme, rest) = public_url
        .trim()
        .split_once("://")
        .unwrap_or(("http", public_url.trim()));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority.to_owned(), |(h, _)| format!("{h}]"))
    } else {
        authority
            .split_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned()
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    format!("{scheme}://{host}:{port}")
}

/// A row for `deliveries`.
#[derive(Debug, Clone)]
pub struct Row {
    pub cause_event_id: Uuid,
    pub complaint_id: Uuid,
    pub event_type: String,
    pub recipient: String,
    pub channel: String,
    pub status: String,
    pub detail: String,
    pub address: String,
    pub endpoint: String,
    pub message: Message,
    pub rule: String,
    pub event_at: OffsetDateTime,
    pub next_attempt_at: OffsetDateTime,
    pub step: i32,
    pub ack_token: Option<String>,
    pub digest_of: Option<i64>,
    pub due_by: Option<OffsetDateTime>,
    pub fallbacks: Vec<Fallback>,
}

/// Inserts rows (a row already there for its event, recipient and channel
/// stays as it is); the number inserted.
pub async fn insert(conn: &mut PgConnection, rows: &[Row]) -> sqlx::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO deliveries (cause_event_id, complaint_id, event_type, recipient, channel,
             status, attempts, detail, address, endpoint, message, rule, event_at,
             next_attempt_at, step, ack_token, digest_of, due_by, fallbacks) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.cause_event_id)
            .push_bind(r.complaint_id)
            .push_bind(&r.event_type)
            .push_bind(&r.recipient)
            .push_bind(&r.channel)
            .push_bind(&r.status)
            .push_bind(0i32)
            .push_bind(&r.detail)
            .push_bind(&r.address)
            .push_bind(&r.endpoint)
            .push_bind(Json(&r.message))
            .push_bind(&r.rule)
            .push_bind(r.event_at)
            .push_bind(r.next_attempt_at)
            .push_bind(r.step)
            .push_bind(&r.ack_token)
            .push_bind(r.digest_of)
            .push_bind(r.due_by)
            .push_bind(Json(&r.fallbacks));
    });
    q.push(" ON CONFLICT (cause_event_id, recipient, channel) DO NOTHING");
    Ok(q.build().execute(conn).await?.rows_affected())
}

impl Planner {
    pub fn new(
        loaded: Loaded,
        config: &tousu_kit::Config,
        outbox: Outbox,
        channels: Arc<Channels>,
        pool: &sqlx::PgPool,
    ) -> anyhow::Result<Planner> {
        let counters = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(
                (*pool.connect_options())
                    .clone()
                    .options([("synchronous_commit", "off")]),
            );
        Ok(Planner {
            counters,
            current: RwLock::new(Arc::new(loaded)),
            templates: Templates::new()?,
            channels,
            outbox,
            announcer: send::Announcer::new(),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            ack_base: RwLock::new(ack_base(&config.public_url, config.http_addr.port())),
            digest_threshold: config.notify_digest_threshold,
            digest_window: time::Duration::seconds(
                i64::try_from(config.notify_digest_window_secs).unwrap_or(i64::MAX / 2),
            ),
        })
    }

    /// The policy in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes up a new policy.
    pub fn set_policy(&self, loaded: Loaded) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
    }

    /// Where ack links point (`…/v1/acks/{token}`).
    pub fn ack_base(&self) -> String {
        self.ack_base
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_ack_base(&self, base: String) {
        *self.ack_base.write().unwrap_or_else(|e| e.into_inner()) = base;
    }

    /// The console link of a complaint.
    pub fn link(&self, complaint_id: Uuid) -> String {
        format!("{}/complaints/{complaint_id}", self.public_url)
    }

    /// The template variables for one planned delivery.
    fn context(
        &self,
        loaded: &Loaded,
        notice: &Notice<'_>,
        subject: &Subject<'_>,
        p: &Planned,
        ack_link: &str,
    ) -> Value {
        let lang = p.language;
        let facts = subject.facts;
        let offset = loaded.offset(notice.occurred_at);
        let at = |t: &Option<tousu_proto::Timestamp>| {
            t.as_ref()
                .and_then(from_timestamp)
                .map(|t| local_time(t, offset))
                .unwrap_or_default()
        };
        let who = facts.complainant();
        let complainant = match p.audience {
            Audience::Complainant => json!({ "name": who.name }),
            Audience::Staff if who.anonymous => json!({}),
            Audience::Staff if p.insider => json!({
                "name": who.name,
                "phone": who.phone,
                "email": who.email,
                "wechat": who.wechat_openid,
            }),
            Audience::Staff => json!({
                "name": templates::mask_name(&who.name),
                "phone": templates::mask_phone(&who.phone),
                "email": templates::mask_email(&who.email),
                "wechat": templates::mask_openid(&who.wechat_openid),
            }),
        };
        let department = subject.department.unwrap_or_default();
        let member_name = |id: &str| {
            loaded
                .policy
                .rosters
                .members
                .iter()
                .find(|m| m.id == id)
                .map_or_else(|| id.to_owned(), |m| m.name.clone())
        };
        let handler = facts.handler.clone().unwrap_or_default();
        let mut ctx = json!({
            "language": lang,
            "event_type": notice.event_type,
            "event_id": notice.cause_id.to_string(),
            "complaint_id": notice.complaint_id.to_string(),
            "time": local_time(notice.occurred_at, offset),
            "tracking_no": facts.tracking_no,
            "summary": facts.summary,
            "grade": subject.grade.get(),
            "grade_name": grade_name(subject.grade, lang),
            "department": department,
            "department_name": loaded.policy.departments.get(department).map(|d| d.name.clone()).unwrap_or_default(),
            "handler": handler,
            "handler_name": if handler.is_empty() { String::new() } else { member_name(&handler) },
            "recipient": { "id": p.recipient, "name": p.name, "role": p.role },
            "complainant": complainant,
            "link": if p.audience == Audience::Complainant { String::new() } else { self.link(notice.complaint_id) },
            "ack_link": ack_link,
            "ack_deadline": p.next_step_at.map(|t| local_time(t, offset)).unwrap_or_default(),
            "repeat": notice.repeat,
            "step": p.step,
        });
        let extra = match notice.payload {
            Payload::SlaWarning(w) => json!({ "sla": {
                "target": tousu_bus::event::sla_target_name(w.target()),
                "target_name": target_name(w.target, lang),
                "percent": w.percent,
                "deadline": at(&w.deadline),
            }}),
            Payload::SlaBreached(b) => json!({ "sla": {
                "target": tousu_bus::event::sla_target_name(b.target()),
                "target_name": target_name(b.target, lang),
                "deadline": at(&b.deadline),
            }}),
            Payload::SlaExtended(e) => json!({
                "sla": {
                    "target": tousu_bus::event::sla_target_name(e.target()),
                    "target_name": target_name(e.target, lang),
                    "deadline": at(&e.new_deadline),
                },
                "extension": {
                    "old_deadline": at(&e.old_deadline),
                    "new_deadline": at(&e.new_deadline),
                    "approver": e.approver,
                    "reason": e.reason,
                },
            }),
            Payload::Escalation(e) => json!({ "escalation": {
                "level": e.level,
                "reason": e.reason,
                "step": e.step,
                "role": e.role,
                "needs_ack": e.needs_ack,
                "ack_deadline": at(&e.ack_deadline),
            }}),
            Payload::AlertHot(h) => json!({ "alert": {
                "topic": h.topic,
                "place": h.place,
                "count": h.count,
                "window": window_text(u64::from(h.window_seconds), lang),
                "samples": h.sample_complaint_ids,
            }}),
            Payload::AlertMajor(a) => json!({ "alert": {
                "rules": a.rules.iter().map(|r| r.reason.clone()).collect::<Vec<_>>(),
            }}),
            Payload::Lifecycle(l) => json!({ "lifecycle": {
                "action": l.action,
                "actor": l.actor,
                "reason": l.reason,
                "to_department": l.to_department,
                "satisfaction": l.satisfaction,
            }}),
            Payload::Assigned(a) => json!({ "assigned": {
                "previous_department": a.previous_department,
                "reassigned_because": a.reassigned_because,
                "urgency": a.classification.as_ref().map(|c| urgency_name(c.urgency, lang)).unwrap_or_default(),
            }}),
            Payload::Regraded(r) => json!({ "regraded": {
                "old_grade": r.old_grade,
                "new_grade": r.new_grade,
                "reason": r.reason,
                "actor": r.actor,
            }}),
            _ => json!({}),
        };
        if let (Value::Object(c), Value::Object(e)) = (&mut ctx, extra) {
            c.extend(e);
        }
        ctx
    }

    /// The message of one planned delivery.
    fn message(
        &self,
        loaded: &Loaded,
        notice: &Notice<'_>,
        subject: &Subject<'_>,
        p: &Planned,
        ack_link: &str,
    ) -> Message {
        let ctx = self.context(loaded, notice, subject, p, ack_link);
        let mut m = self
            .templates
            .render(p.language, p.audience, &notice.event_type, &ctx);
        let facts = subject.facts;
        m.event_type = notice.event_type.clone();
        m.event_id = notice.cause_id.to_string();
        m.complaint_id = notice.complaint_id.to_string();
        m.tracking_no = facts.tracking_no.clone();
        m.in_reply_to = p.in_reply_to.clone();
        if !p.in_reply_to.is_empty()
            && let Some(original) = facts
                .ack()
                .map(|a| a.subject.trim())
                .filter(|s| !s.is_empty())
        {
            m.subject = format!("Re: [{}] {original}", facts.tracking_no);
        }
        let mut data = json!({
            "event_type": notice.event_type,
            "event_id": m.event_id,
            // The version of the policy whose rule planned it: notify.delivered
            // and notify.failed carry it.
            "policy_version": loaded.policy.version,
            "complaint_id": m.complaint_id,
            "tracking_no": m.tracking_no,
            "grade": subject.grade.get(),
            "department": subject.department,
            "recipient": p.recipient,
            "role": p.role,
            "rule": p.rule,
            "step": p.step,
            "repeat": notice.repeat,
            "complainant": ctx.get("complainant"),
        });
        for key in [
            "sla",
            "escalation",
            "alert",
            "extension",
            "regraded",
            "assigned",
        ] {
            if let Some(v) = ctx.get(key) {
                data[key] = v.clone();
            }
        }
        if let Payload::Escalation(e) = notice.payload {
            data["escalation_step"] = json!(e.step);
        }
        if !ack_link.is_empty() {
            data["ack_link"] = json!(ack_link);
            data["ack_deadline"] = ctx["ack_deadline"].clone();
        }
        m.data = data;
        m
    }

    /// Plans `notice` inside the caller's transaction: rows inserted (or
    /// already there). The caller pokes [`Planner::announcer`] once it has
    /// committed. `only_rule`: a repeat of that rule.
    pub async fn plan(
        &self,
        conn: &mut PgConnection,
        notice: &Notice<'_>,
        facts: &Facts,
        only_rule: Option<&str>,
    ) -> Result<u64, HandleError> {
        let loaded = self.loaded();
        let grade = grade_of(facts.grade).unwrap_or(match notice.payload {
            Payload::AlertMajor(_) => Grade::MAJOR,
            _ => Grade::GENERAL,
        });
        let department = notice.department().or(facts.department.as_deref());
        let subject = Subject {
            facts,
            grade,
            department,
        };
        let now = OffsetDateTime::now_utc();
        let planned = targets(&loaded, notice, &subject, now, only_rule);
        if planned.is_empty() {
            return Ok(0);
        }
        let ack_base = self.ack_base();
        let mut rows = Vec::with_capacity(planned.len());
        for p in &planned {
            let token = (p.needs_ack && p.status == "pending").then(new_token);
            let ack_link = token
                .as_ref()
                .map(|t| format!("{ack_base}/v1/acks/{t}"))
                .unwrap_or_default();
            let message = self.message(&loaded, notice, &subject, p, &ack_link);
            rows.push(Row {
                cause_event_id: notice.cause_id,
                complaint_id: notice.complaint_id,
                event_type: notice.event_type.clone(),
                recipient: p.recipient.clone(),
                channel: p.channel.clone(),
                status: p.status.to_owned(),
                detail: p.detail.clone(),
                endpoint: if p.address.is_empty() {
                    String::new()
                } else {
                    self.channels.endpoint(&p.channel, &p.address)
                },
                address: p.address.clone(),
                message,
                rule: p.rule.clone(),
                event_at: notice.occurred_at,
                next_attempt_at: p.due,
                step: p.step,
                ack_token: token,
                digest_of: None,
                due_by: p.due_by,
                fallbacks: p.fallbacks.clone(),
            });
        }
        // Throttling: in a stable order (recipient) so concurrent planners
        // lock digest windows in the same order.
        // A notice due sooner than a digest window would hold it is not folded.
        let hold_until = now + self.digest_window;
        let mut order: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                planned[i].digestible && planned[i].due_by.is_none_or(|by| by >= hold_until)
            })
            .collect();
        order.sort_by(|&a, &b| rows[a].recipient.cmp(&rows[b].recipient));
        for i in order {
            if let Some(digest_id) =
                digest::fold(self, &loaded, department.unwrap_or_default(), &rows[i]).await?
            {
                rows[i].status = "digested".into();
                rows[i].digest_of = Some(digest_id);
                rows[i].detail = format!("folded into digest {digest_id}");
            }
        }
        let inserted = insert(conn, &rows).await?;
        for (status, p) in rows.iter().map(|r| r.status.as_str()).zip(&planned) {
            metrics::counter!("tousu_notify_planned_total", "status" => status.to_owned(), "channel" => p.channel.clone())
                .increment(1);
        }
        Ok(inserted)
    }

    /// Remembers the next repeat of every applying rule with `repeat`.
    async fn arm_repeats(
        &self,
        conn: &mut PgConnection,
        notice: &Notice<'_>,
        event: &pb::Event,
        subject_grade: Grade,
        department: Option<&str>,
    ) -> sqlx::Result<()> {
        let loaded = self.loaded();
        let now = OffsetDateTime::now_utc();
        for rule in &loaded.policy.notify {
            let Some(every) = rule.repeat else { continue };
            if !notice
                .types()
                .any(|t| rule.applies(t, subject_grade, department))
            {
                continue;
            }
            sqlx::query(
                "INSERT INTO repeats (cause_event_id, complaint_id, rule, event, next_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cause_event_id, rule) DO NOTHING",
            )
            .bind(notice.cause_id)
            .bind(notice.complaint_id)
            .bind(rule_key(rule))
            .bind(tousu_bus::encode_event(event))
            .bind(loaded.after(now, every))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// `24 小时` / `24 h`.
fn window_text(seconds: u64, language: &str) -> String {
    let (n, zh, en) = if seconds >= 86400 && seconds.is_multiple_of(86400) {
        (seconds / 86400, "天", "d")
    } else if seconds >= 3600 && seconds.is_multiple_of(3600) {
        (seconds / 3600, "小时", "h")
    } else if seconds >= 60 {
        (seconds / 60, "分钟", "min")
    } else {
        (seconds, "秒", "s")
    };
    if language == "en" {
        format!("{n} {en}")
    } else {
        format!("{n} {zh}")
    }
}

fn urgency_name(urgency: i32, language: &str) -> String {
    use pb::Urgency as U;
    let (zh, en) = match U::try_from(urgency).unwrap_or(U::Unspecified) {
        U::Urgent => ("紧急", "urgent"),
        U::Expedited => ("加急", "expedited"),
        U::Normal => ("一般", "normal"),
        U::Unspecified => return String::new(),
    };
    if language == "en" { en } else { zh }.to_owned()
}

/// The consumer: every event notify subscribes to.
pub struct Consumer(pub Arc<Planner>);

/// Events routing publishes right after `complaint.received`: planned only
/// once notify has the complainant's facts (a few retries), so a replica
/// racing ahead of the one still committing the receipt does not send a
/// message without them.
fn wants_receipt(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::Classified(_) | Payload::Assigned(_) | Payload::AlertMajor(_)
    )
}

impl Handler for Consumer {
    fn committed(&self) {
        self.0.announcer.poke();
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let event = &delivery.event;
        let cause_id = Uuid::parse_str(&event.id)
            .map_err(|e| HandleError::Reject(format!("event id {:?}: {e}", event.id)))?;
        let Some(notice) = Notice::of(event, delivery.complaint_id, cause_id) else {
            return Ok(());
        };
        if matches!(
            notice.payload,
            Payload::NotifyDelivered(_) | Payload::NotifyFailed(_) | Payload::NotifyAcked(_)
        ) {
            return Ok(());
        }
        let facts = facts::record(
            conn,
            delivery.complaint_id,
            notice.payload,
            notice.occurred_at,
        )
        .await?;
        if wants_receipt(notice.payload) && facts.received_at.is_none() && delivery.attempt < 3 {
            return Err(HandleError::Retry(
                "complaint.received not seen yet for this complaint".into(),
            ));
        }
        self.0.plan(conn, &notice, &facts, None).await?;
        let grade = grade_of(facts.grade).unwrap_or(match notice.payload {
            Payload::AlertMajor(_) => Grade::MAJOR,
            _ => Grade::GENERAL,
        });
        let department = notice.department().or(facts.department.as_deref());
        if !facts.closed {
            self.0
                .arm_repeats(conn, &notice, event, grade, department)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipients::fixture;
    use crate::recipients::{AckFacts, Complainant};
    use time::macros::datetime;

    fn loaded() -> Loaded {
        Loaded {
            policy: fixture::policy(),
            calendar: None,
        }
    }

    fn event(payload: Payload) -> pb::Event {
        pb::Event {
            id: Uuid::now_v7().to_string(),
            complaint_id: Uuid::now_v7().to_string(),
            sequence: 1,
            occurred_at: Some(tousu_bus::to_timestamp(datetime!(2026-01-07 02:00 UTC))),
            policy_version: String::new(),
            producer: "test".into(),
            payload: Some(payload),
        }
    }

    fn facts(department: Option<&str>, handler: Option<&str>) -> Facts {
        Facts {
            tracking_no: "TS20260107-0042".into(),
            summary: "电梯故障三天无人维修".into(),
            complainant: Some(Json(Complainant {
                name: "张三".into(),
                phone: "13812345678".into(),
                email: "zhang@example.com".into(),
                ..Default::default()
            })),
            ack: Some(Json(AckFacts {
                channel: "email".into(),
                address: "zhang@example.com".into(),
                reply_message_id: "<m1@example.com>".into(),
                subject: "电梯坏了".into(),
                language: "zh".into(),
                answered_inline: false,
            })),
            received_at: Some(datetime!(2026-01-07 01:00 UTC)),
            department: department.map(str::to_owned),
            handler: handler.map(str::to_owned),
            ..Facts::default()
        }
    }

    fn plan_at(payload: Payload, f: &Facts, grade: Grade, now: OffsetDateTime) -> Vec<Planned> {
        let l = loaded();
        let e = event(payload);
        let id = Uuid::parse_str(&e.id).unwrap_or_default();
        let n = Notice::of(&e, id, id).expect("payload");
        let subject = Subject {
            facts: f,
            grade,
            department: n.department().or(f.department.as_deref()),
        };
        targets(&l, &n, &subject, now, None)
    }

    fn who(p: &[Planned]) -> Vec<(String, String, i32, &'static str)> {
        p.iter()
            .map(|p| (p.recipient.clone(), p.channel.clone(), p.step, p.status))
            .collect()
    }

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn a_major_complaint_climbs_the_ladder_from_the_duty_leader() {
        // Wednesday 10:00 CST: wang is on duty.
        let now = datetime!(2026-01-07 02:00 UTC);
        let p = plan_at(
            Payload::AlertMajor(pb::AlertMajor {
                department: "quality".into(),
                ..Default::default()
            }),
            &facts(Some("quality"), None),
            Grade::MAJOR,
            now,
        );
        // wang (duty leader, step 0) now; leadership at step 1 is wang again
        // (told once, at step 0) and li, 30 minutes later.
        assert_eq!(
            who(&p),
            [
                (s("wang"), s("sms"), 0, "pending"),
                (s("li"), s("sms"), 1, "pending")
            ]
        );
        assert_eq!(p[0].due, now);
        assert_eq!(p[1].due, now + time::Duration::minutes(30));
        assert!(p.iter().all(|p| p.needs_ack && !p.digestible));
        assert_eq!(p[0].next_step_at, Some(now + time::Duration::minutes(30)));
        assert_eq!(p[1].next_step_at, None, "the last level has no next");
        assert_eq!(p[0].rule, "alert.major>duty_leader,leadership");
        // Wednesday 23:00 CST: li is on duty and is told at once; wang only
        // as leadership, at step 1.
        let night = datetime!(2026-01-07 15:00 UTC);
        let p = plan_at(
            Payload::AlertMajor(pb::AlertMajor::default()),
            &facts(Some("quality"), None),
            Grade::MAJOR,
            night,
        );
        assert_eq!(
            who(&p),
            [
                (s("li"), s("sms"), 0, "pending"),
                (s("wang"), s("sms"), 1, "pending")
            ]
        );
    }

    #[test]
    fn within_caps_quiet_hours_and_the_other_channels_are_fallbacks() {
        let mut l = loaded();
        let rule = l
            .policy
            .notify
            .iter_mut()
            .find(|r| r.event == "sla.*")
            .expect("sla rule");
        rule.within = Some(schema::Duration {
            amount: 2,
            unit: schema::Unit::Hours,
        });
        let warning = pb::SlaWarning {
            target: pb::SlaTarget::Resolution as i32,
            department: "quality".into(),
            percent: 80,
            ..Default::default()
        };
        // The event at 23:00 CST, planned at 23:30: sun's quiet hours run
        // to 07:00, the rule's 2 h to 01:00: he is told at 01:00.
        let mut e = event(Payload::SlaWarning(warning));
        e.occurred_at = Some(tousu_bus::to_timestamp(datetime!(2026-01-07 15:00 UTC)));
        let id = Uuid::parse_str(&e.id).unwrap_or_default();
        let n = Notice::of(&e, id, id).expect("payload");
        let f = facts(None, None);
        let subject = Subject {
            facts: &f,
            grade: Grade::GENERAL,
            department: n.department(),
        };
        let p = targets(&l, &n, &subject, datetime!(2026-01-07 15:30 UTC), None);
        let sun = p.iter().find(|p| p.recipient == "sun").expect("sun");
        assert_eq!(sun.due_by, Some(datetime!(2026-01-07 17:00 UTC)));
        assert_eq!(sun.due, datetime!(2026-01-07 17:00 UTC));
        assert!(
            sun.detail.contains("within the rule's time"),
            "{}",
            sun.detail
        );
        // Email is his channel (he has no WeCom); no other channel of the
        // rule's to fall back on.
        assert_eq!(sun.channel, "email");
        assert!(sun.fallbacks.is_empty());
        // Without `within`: deferred to 07:00 as before.
        let p = targets(
            &loaded(),
            &n,
            &subject,
            datetime!(2026-01-07 15:30 UTC),
            None,
        );
        let sun = p.iter().find(|p| p.recipient == "sun").expect("sun");
        assert_eq!(
            (sun.due, sun.due_by),
            (datetime!(2026-01-07 23:00 UTC), None)
        );
        // A rule listing sms after wecom: ma has WeCom only, sun email and
        // SMS in the rule's order.
        let mut l = loaded();
        for r in l.policy.notify.iter_mut().filter(|r| r.event == "sla.*") {
            r.channels = vec![s("wecom"), s("email"), s("sms")];
        }
        let p = targets(&l, &n, &subject, datetime!(2026-01-07 02:00 UTC), None);
        let sun = p.iter().find(|p| p.recipient == "sun").expect("sun");
        assert_eq!(sun.channel, "email");
        assert_eq!(
            sun.fallbacks,
            [Fallback {
                channel: s("sms"),
                address: s("+8613800000001")
            }]
        );
        let ma = p.iter().find(|p| p.recipient == "ma").expect("ma");
        assert!(ma.fallbacks.is_empty());
    }

    #[test]
    fn warnings_reach_handlers_and_the_head_with_quiet_hours() {
        let warning = || {
            Payload::SlaWarning(pb::SlaWarning {
                target: pb::SlaTarget::Resolution as i32,
                department: "quality".into(),
                percent: 80,
                ..Default::default()
            })
        };
        // 10:00 CST: ma on WeCom, he has no usable contact, sun (head) by
        // email: he has no WeCom.
        let day = datetime!(2026-01-07 02:00 UTC);
        let p = plan_at(warning(), &facts(None, None), Grade::GENERAL, day);
        assert_eq!(
            who(&p),
            [
                (s("ma"), s("wecom"), 0, "pending"),
                (s("he"), s("wecom"), 0, "suppressed"),
                (s("sun"), s("email"), 0, "pending"),
            ]
        );
        assert_eq!(p[1].detail, "no contact on wecom, email");
        assert!(p[0].digestible && p[2].digestible && !p[1].digestible);
        assert!(p.iter().all(|p| p.insider && !p.needs_ack));
        // 23:30 CST: sun's quiet hours (22:00-07:00) defer him to 07:00.
        let late = datetime!(2026-01-07 15:30 UTC);
        let p = plan_at(warning(), &facts(None, None), Grade::GENERAL, late);
        let sun = p.iter().find(|p| p.recipient == "sun").expect("sun");
        assert_eq!(sun.due, datetime!(2026-01-07 23:00 UTC));
        assert!(sun.detail.contains("quiet hours"), "{}", sun.detail);
        // Grade 1 reaches him at once, and is never digested.
        let p = plan_at(warning(), &facts(None, None), Grade::MAJOR, late);
        let sun = p.iter().find(|p| p.recipient == "sun").expect("sun");
        assert_eq!(sun.due, late);
        assert!(!sun.digestible);
        // The assigned handler only, once known.
        let p = plan_at(
            warning(),
            &facts(Some("quality"), Some("ma")),
            Grade::GENERAL,
            day,
        );
        assert_eq!(
            who(&p),
            [
                (s("ma"), s("wecom"), 0, "pending"),
                (s("sun"), s("email"), 0, "pending")
            ]
        );
    }

    #[test]
    fn wildcards_skip_clock_bookkeeping() {
        let day = datetime!(2026-01-07 02:00 UTC);
        let p = plan_at(
            Payload::SlaStarted(pb::SlaStarted {
                department: "quality".into(),
                ..Default::default()
            }),
            &facts(None, None),
            Grade::GENERAL,
            day,
        );
        assert!(p.is_empty(), "{p:?}");
        // An event no rule names: nobody.
        let p = plan_at(
            Payload::Lifecycle(pb::ComplaintLifecycle {
                action: "contacted".into(),
                department: "quality".into(),
                ..Default::default()
            }),
            &facts(None, None),
            Grade::GENERAL,
            day,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn an_escalation_reaches_its_role_on_the_levels_channels() {
        let day = datetime!(2026-01-07 02:00 UTC);
        let deadline = datetime!(2026-01-07 04:00 UTC);
        let p = plan_at(
            Payload::Escalation(pb::Escalation {
                level: "breach".into(),
                department: "quality".into(),
                needs_ack: true,
                step: 1,
                role: "department_head".into(),
                ack_deadline: Some(tousu_bus::to_timestamp(deadline)),
                ..Default::default()
            }),
            &facts(None, None),
            Grade::IMPORTANT,
            day,
        );
        assert_eq!(who(&p), [(s("sun"), s("sms"), 0, "pending")]);
        assert!(p[0].needs_ack);
        assert_eq!(p[0].rule, "escalation.breach");
        assert_eq!(p[0].next_step_at, Some(deadline));
        assert!(!p[0].digestible);
    }

    #[test]
    fn the_complainant_is_acknowledged_unless_intake_did() {
        let day = datetime!(2026-01-07 02:00 UTC);
        let received = || Payload::Received(pb::ComplaintReceived::default());
        let f = facts(None, None);
        let p = plan_at(received(), &f, Grade::GENERAL, day);
        assert_eq!(who(&p), [(s("complainant"), s("email"), 0, "pending")]);
        assert_eq!(p[0].in_reply_to, "<m1@example.com>");
        assert_eq!(p[0].audience, Audience::Complainant);
        let mut inline = facts(None, None);
        if let Some(a) = inline.ack.as_mut() {
            a.0.answered_inline = true;
        }
        let p = plan_at(received(), &inline, Grade::GENERAL, day);
        assert_eq!(who(&p), [(s("complainant"), s("sms"), 0, "suppressed")]);
    }

    #[tokio::test]
    async fn contacts_are_masked_beyond_the_handling_department() -> anyhow::Result<()> {
        let config = tousu_kit::Config::defaults("notify");
        let planner = Planner::new(
            loaded(),
            &config,
            Outbox::new("notify"),
            Arc::new(Channels::new(&config)?),
            &sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://127.0.0.1:1/none")?,
        )?;
        let l = planner.loaded();
        let e = event(Payload::Assigned(pb::ComplaintAssigned {
            assignment: Some(pb::Assignment {
                department: "quality".into(),
                handler: "ma".into(),
                ..Default::default()
            }),
            ..Default::default()
        }));
        let id = Uuid::parse_str(&e.id)?;
        let n = Notice::of(&e, id, id).expect("payload");
        let f = facts(Some("quality"), Some("ma"));
        let subject = Subject {
            facts: &f,
            grade: Grade::GENERAL,
            department: Some("quality"),
        };
        let p = targets(&l, &n, &subject, datetime!(2026-01-07 02:00 UTC), None);
        assert_eq!(
            who(&p),
            [
                (s("ma"), s("wecom"), 0, "pending"),
                (s("chen"), s("wecom"), 0, "pending")
            ]
        );
        let to_ma = planner.message(&l, &n, &subject, &p[0], "");
        let to_chen = planner.message(&l, &n, &subject, &p[1], "");
        assert!(to_ma.text.contains("13812345678"), "{}", to_ma.text);
        assert!(to_ma.text.contains("zhang@example.com"), "{}", to_ma.text);
        assert!(!to_chen.text.contains("13812345678"), "{}", to_chen.text);
        assert!(to_chen.text.contains("138****5678"), "{}", to_chen.text);
        assert!(
            to_chen.text.contains("z***@example.com"),
            "{}",
            to_chen.text
        );
        assert!(!to_chen.markdown.contains("13812345678"));
        assert!(!to_chen.html.contains("13812345678"));
        assert_eq!(to_chen.data["complainant"]["phone"], "138****5678");
        assert_eq!(to_ma.data["complainant"]["phone"], "13812345678");
        // Every message links to the complaint in the console.
        let link = format!("http://127.0.0.1:8084/complaints/{id}");
        assert_eq!(to_chen.link, link);
        assert!(to_chen.text.contains(&link));
        assert_eq!(to_chen.tracking_no, "TS20260107-0042");
        assert_eq!(to_chen.event_type, "complaint.assigned");
        assert!(to_chen.subject.contains("TS20260107-0042"));
        Ok(())
    }

    #[test]
    fn ack_base_keeps_the_host_and_takes_notify_port() {
        assert_eq!(
            ack_base("http://127.0.0.1:8084", 8083),
            "http://127.0.0.1:8083"
        );
        assert_eq!(
            ack_base("https://tousu.example.com/console/", 8083),
            "https://tousu.example.com:8083"
        );
        assert_eq!(ack_base("http://[::1]:8084/x", 9000), "http://[::1]:9000");
        assert_eq!(ack_base("tousu.local", 8083), "http://tousu.local:8083");
        assert_eq!(ack_base("", 8083), "http://127.0.0.1:8083");
    }

    #[test]
    fn tokens_are_long_random_hex() {
        let a = new_token();
        let b = new_token();
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert!(!is_token("abc"));
        assert!(!is_token(&"g".repeat(64)));
    }

    #[test]
    fn names() {
        assert_eq!(grade_name(Grade::MAJOR, "zh-CN"), "一级（重大）");
        assert_eq!(grade_name(Grade::GENERAL, "en"), "grade 4 (general)");
        assert_eq!(
            target_name(pb::SlaTarget::Resolution as i32, "zh-CN"),
            "办结"
        );
        assert_eq!(target_name(99, "en"), "handling");
        assert_eq!(window_text(86400, "zh-CN"), "1 天");
        assert_eq!(window_text(300, "en"), "5 min");
        assert_eq!(
            local_time(
                datetime!(2026-01-07 15:30 UTC),
                UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC)
            ),
            "2026-01-07 23:30"
        );
    }
}
