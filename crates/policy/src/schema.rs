//! The policy file model (`policies/*.toml`, documented in `docs/policy.md`)
//! and the grading and routing decisions made with it.
//!
//! A file is read in two stages. Serde reads it into the raw model below
//! (`deny_unknown_fields` everywhere, values wrapped in [`Spanned`] so that
//! every later problem can be reported at its line and column); then
//! [`Policy::from_toml`] validates every reference (departments,
//! categories, SLA variants, roles, roster members), parses durations,
//! compiles conditions, and returns the [`Policy`] with the warnings, or
//! every problem found. `tousu policy check` prints those diagnostics.
//!
//! The policy version is `sha256:` + the hex digest of the file's bytes:
//! decisions record it, so each can be explained against the exact rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;
use tousu_domain::calendar;
use tousu_domain::{DeptCode, Grade, Urgency};

use crate::Hit;
use crate::cel::{CelError, Condition, Facts, Flag, Flags, KeywordIndex, Matched};
use crate::taxonomy::Category;

/// The time zone of a policy that names none.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";
/// Classifier confidence below which a complaint goes to triage, when the
/// policy sets none.
pub const DEFAULT_CLASSIFY_THRESHOLD: f64 = 0.35;
/// Roles every policy knows; roster members can declare more.
pub const BUILTIN_ROLES: &[&str] = &[
    "complainant",
    "handler",
    "department_head",
    "co_departments",
    "complaint_centre",
    "leadership",
    "duty_leader",
];
/// Notification channels (and roster contact kinds).
pub const CHANNELS: &[&str] = &[
    "email", "sms", "wecom", "dingtalk", "feishu", "webhook", "wechat", "phone", "app",
];
/// What `[hot] per` may group by.
pub const HOT_KEYS: &[&str] = &["category", "location", "product", "channel"];

// ---------------------------------------------------------------------------
// Diagnostics

/// How bad a [`Diagnostic`] is: an error makes the policy unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem in a policy file, at a line and column (1-based, columns in
/// characters). Displays as `file:line:col: error: message`, the format
/// editors and CI annotate from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.severity, self.message
        )
    }
}

/// A place in the policy file (1-based line and column).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Collects diagnostics while a file is validated.
pub(crate) struct Diags<'t> {
    file: String,
    text: &'t str,
    line_starts: Vec<usize>,
    pub(crate) list: Vec<Diagnostic>,
}

impl<'t> Diags<'t> {
    pub(crate) fn new(file: &str, text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Diags {
            file: file.to_owned(),
            text,
            line_starts,
            list: Vec::new(),
        }
    }

    /// Line and column of a byte offset.
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|s| *s <= offset).max(1);
        let start = self.line_starts[line - 1];
        Pos {
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }

    pub(crate) fn at(&mut self, pos: Pos, severity: Severity, message: impl Into<String>) {
        self.list.push(Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            severity,
            message: message.into(),
        });
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let pos = self.pos(span.start);
        self.at(pos, Severity::Error, message);
    }

    fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let pos = self.pos(span.start);
        self.at(pos, Severity::Warning, message);
    }

    fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// Where a byte offset inside a string value lands in the file, when
    /// the value is written without escapes (else the value's start).
    fn pos_in_string(&self, span: &Range<usize>, value: &str, offset: usize) -> Pos {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let (open, body_start) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            let mut start = 3;
            if raw[3..].starts_with("\r\n") {
                start += 2;
            } else if raw[3..].starts_with('\n') {
                start += 1;
            }
            (3, start)
        } else {
            (1, 1)
        };
        let body = raw
            .get(body_start..raw.len().saturating_sub(open))
            .unwrap_or("");
        if body == value {
            self.pos(span.start + body_start + offset.min(value.len()))
        } else {
            self.pos(span.start)
        }
    }
}

// ---------------------------------------------------------------------------
// Durations and triggers

/// The unit of a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// `s`: seconds, 24×7 (tests and drills).
    Seconds,
    /// `m`: minutes, 24×7.
    Minutes,
    /// `h`: hours, 24×7.
    Hours,
    /// `wh`: working hours of the policy's calendar.
    WorkingHours,
    /// `wd`: working days of the calendar (调休 make-up days count).
    WorkingDays,
    /// `d`: calendar days (the day of receipt not counted).
    Days,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::WorkingHours => "wh",
            Unit::WorkingDays => "wd",
            Unit::Days => "d",
        }
    }
}

/// A policy duration: `30m`, `24h`, `4wh` (working hours), `5wd` (working
/// days), `15d` (calendar days). Working units need the calendar, so this
/// stays symbolic; the SLA service turns it into a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: Unit,
}

impl Duration {
    /// The largest amount accepted (a typo guard: 100000m is 69 days).
    pub const MAX_AMOUNT: u32 = 100_000;

    /// The length in minutes for units that do not need a calendar (`m`,
    /// `h`, `d`); `None` for working hours and days.
    pub fn fixed_minutes(self) -> Option<u64> {
        let n = u64::from(self.amount);
        match self.unit {
            Unit::Seconds => Some(n.div_ceil(60)),
            Unit::Minutes => Some(n),
            Unit::Hours => Some(n * 60),
            Unit::Days => Some(n * 24 * 60),
            Unit::WorkingHours | Unit::WorkingDays => None,
        }
    }

    /// Whether it counts working time (needs the calendar).
    pub fn is_working_time(self) -> bool {
        matches!(self.unit, Unit::WorkingHours | Unit::WorkingDays)
    }

    /// A rough length in minutes for comparing durations of different
    /// units in warnings (a working day as 8 hours spread over a 24 h day,
    /// 5 working days as a week).
    pub fn approx_minutes(self) -> u64 {
        let n = u64::from(self.amount);
        match self.unit {
            Unit::Seconds => n.div_ceil(60),
            Unit::Minutes => n,
            Unit::Hours => n * 60,
            Unit::WorkingHours => n * 60 * 3,
            Unit::WorkingDays => n * 24 * 60 * 7 / 5,
            Unit::Days => n * 24 * 60,
        }
    }
}

impl FromStr for Duration {
    type Err = String;

    /// The syntax is the calendar's ([`tousu_domain::calendar::Duration`]):
    /// one parser for policy files and the SLA clocks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed: calendar::Duration = s
            .parse()
            .map_err(|e: calendar::CalendarError| e.to_string())?;
        let d = Duration::from(parsed);
        if d.amount > Duration::MAX_AMOUNT {
            return Err(format!("{s:?}: the number is too large"));
        }
        Ok(d)
    }
}

impl From<calendar::Duration> for Duration {
    fn from(d: calendar::Duration) -> Self {
        let (amount, unit) = match d {
            calendar::Duration::Minutes(n) => (n, Unit::Minutes),
            calendar::Duration::Seconds(n) => (n, Unit::Seconds),
            calendar::Duration::Hours(n) => (n, Unit::Hours),
            calendar::Duration::WorkingHours(n) => (n, Unit::WorkingHours),
            calendar::Duration::WorkingDays(n) => (n, Unit::WorkingDays),
            calendar::Duration::CalendarDays(n) => (n, Unit::Days),
        };
        Duration { amount, unit }
    }
}

impl Duration {
    /// The same duration for the calendar, which turns it into a deadline.
    pub fn to_calendar(self) -> calendar::Duration {
        match self.unit {
            Unit::Seconds => calendar::Duration::Seconds(self.amount),
            Unit::Minutes => calendar::Duration::Minutes(self.amount),
            Unit::Hours => calendar::Duration::Hours(self.amount),
            Unit::WorkingHours => calendar::Duration::WorkingHours(self.amount),
            Unit::WorkingDays => calendar::Duration::WorkingDays(self.amount),
            Unit::Days => calendar::Duration::CalendarDays(self.amount),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// When an escalation level fires, measured on the resolution clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `"80%"`: a share of the resolution target.
    Percent(u32),
    /// `"30m"`: a time after receipt.
    After(Duration),
    /// `"100% + 5wd"`: a time after a share of the target (after the
    /// breach, for 100 %).
    PercentPlus(u32, Duration),
}

impl FromStr for Trigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let percent = |p: &str| -> Result<u32, String> {
            p.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("{s:?}: a percentage must be a whole number from 1 to 1000"))
        };
        match s.split_once('%') {
            None => s.parse().map(Trigger::After),
            Some((p, rest)) => {
                let p = percent(p)?;
                let rest = rest.trim();
                if rest.is_empty() {
                    Ok(Trigger::Percent(p))
                } else if let Some(d) = rest.strip_prefix('+') {
                    Ok(Trigger::PercentPlus(p, d.parse()?))
                } else {
                    Err(format!(
                        "{s:?} is not a trigger: write \"80%\", \"100% + 5wd\" or a duration"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Percent(p) => write!(f, "{p}%"),
            Trigger::After(d) => write!(f, "{d}"),
            Trigger::PercentPlus(p, d) => write!(f, "{p}% + {d}"),
        }
    }
}

/// Parses a grade written as 1–4.
fn parse_grade(n: i64) -> Result<Grade, String> {
    u8::try_from(n)
        .ok()
        .and_then(|n| Grade::try_from(n).ok())
        .ok_or_else(|| format!("grade {n} is not between 1 (一级 重大) and 4 (四级 一般)"))
}

/// Parses an urgency: normal / expedited / urgent, or 一般 / 加急 / 紧急.
pub fn parse_urgency(s: &str) -> Result<Urgency, String> {
    s.trim().parse::<Urgency>().map_err(|e| e.to_string())
}

fn urgency_index(u: Urgency) -> usize {
    match u {
        Urgency::Normal => 0,
        Urgency::Expedited => 1,
        Urgency::Urgent => 2,
    }
}

// ---------------------------------------------------------------------------
// The raw model, as serde reads it

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    #[serde(default)]
    calendar: Option<Spanned<String>>,
    triage_department: Spanned<String>,
    #[serde(default)]
    classify_threshold: Option<Spanned<f64>>,
    #[serde(default)]
    classifier_training: Option<Spanned<String>>,
    #[serde(default)]
    departments: Option<Spanned<BTreeMap<String, Spanned<RawDepartment>>>>,
    #[serde(default)]
    taxonomy: Vec<Spanned<Category>>,
    #[serde(default)]
    grading: Vec<Spanned<RawGrading>>,
    #[serde(default)]
    routing: Vec<Spanned<RawRouting>>,
    sla: Spanned<RawSla>,
    #[serde(default)]
    pause_reasons: Vec<Spanned<RawPause>>,
    #[serde(default)]
    escalation: Vec<Spanned<RawEscalation>>,
    #[serde(default)]
    notify: Vec<Spanned<RawNotify>>,
    #[serde(default)]
    rosters: Option<RawRosters>,
    #[serde(default)]
    frequency: Option<Spanned<RawFrequency>>,
    #[serde(default)]
    hot: Option<Spanned<RawHot>>,
    #[serde(default)]
    similarity: Option<Spanned<RawSimilarity>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    head: Option<Spanned<String>>,
    #[serde(default)]
    handlers: Vec<Spanned<String>>,
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    skills: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    return_window_hours: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrading {
    id: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    keywords: Vec<Spanned<String>>,
    #[serde(default)]
    categories: Vec<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default)]
    grade: Option<Spanned<i64>>,
    #[serde(default)]
    urgency: Option<Spanned<String>>,
    #[serde(default)]
    flags: Vec<Flag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    id: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    keywords: Vec<Spanned<String>>,
    #[serde(default)]
    categories: Vec<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default)]
    department: Option<Spanned<String>>,
    #[serde(default)]
    co_departments: Vec<Spanned<String>>,
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    skills: Vec<Spanned<String>>,
    #[serde(default)]
    sla: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    #[serde(default, alias = "一般")]
    normal: Option<Spanned<String>>,
    #[serde(default, alias = "加急")]
    expedited: Option<Spanned<String>>,
    #[serde(default, alias = "紧急")]
    urgent: Option<Spanned<String>>,
}

type RawStep = BTreeMap<String, Spanned<RawRow>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    #[serde(default)]
    warnings: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    overlay: Option<Spanned<RawOverlay>>,
    #[serde(default)]
    acknowledge: Option<Spanned<RawStep>>,
    #[serde(default)]
    dispatch: Option<Spanned<RawStep>>,
    #[serde(default)]
    sign_off: Option<Spanned<RawStep>>,
    #[serde(default)]
    first_contact: Option<Spanned<RawStep>>,
    #[serde(default)]
    resolution: Option<Spanned<RawStep>>,
    #[serde(default)]
    return_visit: Option<Spanned<RawStep>>,
    #[serde(default)]
    variants: BTreeMap<String, Spanned<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    acknowledge: Option<Spanned<RawStep>>,
    #[serde(default)]
    dispatch: Option<Spanned<RawStep>>,
    #[serde(default)]
    sign_off: Option<Spanned<RawStep>>,
    #[serde(default)]
    first_contact: Option<Spanned<RawStep>>,
    #[serde(default)]
    resolution: Option<Spanned<RawStep>>,
    #[serde(default)]
    return_visit: Option<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    duration: Spanned<String>,
    #[serde(default)]
    extensions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPause {
    code: Spanned<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    max: Option<Spanned<String>>,
    #[serde(default)]
    max_times: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    level: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    role: Spanned<String>,
    /// A trigger string, or a table of them by urgency.
    after: Spanned<toml::Value>,
    #[serde(default)]
    needs_ack: bool,
    #[serde(default)]
    ack_within: Option<Spanned<String>>,
    #[serde(default)]
    channels: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    event: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    min_grade: Option<Spanned<i64>>,
    #[serde(default)]
    department: Option<Spanned<String>>,
    roles: Spanned<Vec<Spanned<String>>>,
    channels: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    within: Option<Spanned<String>>,
    #[serde(default)]
    repeat: Option<Spanned<String>>,
    #[serde(default)]
    ack_within: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRosters {
    #[serde(default)]
    members: Vec<Spanned<RawMember>>,
    #[serde(default)]
    duty: Vec<Spanned<RawDuty>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    department: Option<Spanned<String>>,
    #[serde(default)]
    contacts: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    quiet_hours: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuty {
    role: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    members: Vec<Spanned<String>>,
    weekdays: Vec<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrequency {
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default)]
    high: Option<Spanned<i64>>,
    #[serde(default)]
    many: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHot {
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default)]
    threshold: Option<Spanned<i64>>,
    #[serde(default)]
    per: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimilarity {
    #[serde(default)]
    window_days: Option<Spanned<i64>>,
    #[serde(default)]
    max_distance: Option<Spanned<i64>>,
    #[serde(default)]
    same_place: Option<bool>,
    #[serde(default)]
    group_min: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------------
// The validated model

/// How a department picks the handler of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each handler in turn.
    #[default]
    RoundRobin,
    /// The handler with the fewest open cases.
    LeastOpen,
    /// A handler with the skills the routing asks for (then least open).
    Skills,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastOpen => "least_open",
            Strategy::Skills => "skills",
        })
    }
}

/// A department of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub code: DeptCode,
    pub name: String,
    pub description: String,
    /// Roster member id of the head (gets warnings and breaches).
    pub head: Option<String>,
    /// Roster member ids of the handlers.
    pub handlers: Vec<String>,
    pub strategy: Strategy,
    /// Handler id → skills (for [`Strategy::Skills`]).
    pub skills: BTreeMap<String, Vec<String>>,
    /// Hours after assignment during which the department may return (退单)
    /// an assignment; 0 = it may not.
    pub return_window_hours: u32,
}

/// What a rule looks at: keywords (any of), categories (any of) and a
/// condition, all of which must hold; a rule with none of them matches
/// every complaint.
#[derive(Debug, Clone)]
pub struct Match {
    /// Lower-cased keywords.
    pub keywords: Vec<String>,
    keyword_ids: Vec<u32>,
    pub categories: Vec<String>,
    pub when: Option<Condition>,
    /// The `when` given did not compile (the policy is then refused; the
    /// lints must not take the rule for a catch-all).
    broken: bool,
}

impl Match {
    /// Whether the rule matches every complaint (no keyword, no category,
    /// and no condition or the literal `true`).
    pub fn is_always(&self) -> bool {
        !self.broken
            && self.keywords.is_empty()
            && self.categories.is_empty()
            && self.when.as_ref().is_none_or(Condition::is_literal_true)
    }

    /// `Ok(Some(why))` when the rule matches.
    fn check(
        &self,
        facts: &Facts,
        matched: &Matched,
        index: &KeywordIndex,
    ) -> Result<Option<String>, CelError> {
        let mut why = Vec::new();
        if !self.keyword_ids.is_empty() {
            match self.keyword_ids.iter().find(|id| matched.contains(**id)) {
                Some(id) => why.push(format!("keyword {:?}", index.keyword(*id))),
                None => return Ok(None),
            }
        }
        if !self.categories.is_empty() {
            if self.categories.contains(&facts.category) {
                why.push(format!("category {}", facts.category));
            } else {
                return Ok(None);
            }
        }
        if let Some(when) = &self.when {
            if when.eval(facts)? {
                why.push(format!("when `{}`", when.source()));
            } else {
                return Ok(None);
            }
        }
        if why.is_empty() {
            why.push("always".into());
        }
        Ok(Some(why.join(" and ")))
    }
}

/// A grading rule: when it matches, it proposes a grade, an urgency and
/// flags.
#[derive(Debug, Clone)]
pub struct GradingRule {
    pub id: String,
    pub description: String,
    pub matches: Match,
    pub grade: Option<Grade>,
    pub urgency: Option<Urgency>,
    pub flags: Flags,
    pub(crate) pos: Pos,
}

/// A routing rule. One that names a department ends the search when it
/// matches (first match wins); one without only adds co-departments,
/// skills and an SLA variant, and the search goes on.
#[derive(Debug, Clone)]
pub struct RoutingRule {
    pub id: String,
    pub description: String,
    pub matches: Match,
    pub department: Option<DeptCode>,
    pub co_departments: Vec<DeptCode>,
    pub strategy: Option<Strategy>,
    pub skills: Vec<String>,
    /// Key of an `[sla.variants.<key>]` table.
    pub sla: Option<String>,
    pub(crate) pos: Pos,
}

/// A step of handling that has an SLA clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Acknowledge,
    Dispatch,
    SignOff,
    FirstContact,
    Resolution,
    ReturnVisit,
}

impl Step {
    /// Every step, in handling order.
    pub const ALL: [Step; 6] = [
        Step::Acknowledge,
        Step::Dispatch,
        Step::SignOff,
        Step::FirstContact,
        Step::Resolution,
        Step::ReturnVisit,
    ];

    /// The key under `[sla]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Acknowledge => "acknowledge",
            Step::Dispatch => "dispatch",
            Step::SignOff => "sign_off",
            Step::FirstContact => "first_contact",
            Step::Resolution => "resolution",
            Step::ReturnVisit => "return_visit",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The targets of one step: rows `default`, 1, 2, 3, 4 × normal,
/// expedited, urgent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTable {
    rows: [[Option<Duration>; 3]; 5],
}

impl StepTable {
    /// The target of a grade and urgency: the grade's row, else the
    /// `default` row.
    pub fn get(&self, grade: Grade, urgency: Urgency) -> Option<Duration> {
        let u = urgency_index(urgency);
        self.rows[usize::from(grade.get())][u].or(self.rows[0][u])
    }

    fn is_empty(&self) -> bool {
        self.rows.iter().flatten().all(Option::is_none)
    }
}

/// A named set of SLA targets that routing rules select (`sla = "key"`),
/// overriding the base targets entry by entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaVariant {
    pub description: String,
    steps: [StepTable; 6],
}

/// The regulatory clock a profile adds: it never pauses, and the stricter
/// deadline of it and the resolution clock wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlay {
    pub name: String,
    pub description: String,
    pub duration: Duration,
    /// Longer limits reachable with approval, in order (bank: 30d, 60d).
    pub extensions: Vec<Duration>,
}

/// SLA targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sla {
    /// Percentages of a target at which warnings go out (default 50, 80).
    pub warnings: Vec<u32>,
    pub overlay: Option<Overlay>,
    steps: [StepTable; 6],
    variants: BTreeMap<String, SlaVariant>,
}

impl Sla {
    /// The target of a step for a grade and urgency, in `variant` if one
    /// is given (its entry, else its `default` row, else the base table's
    /// entry, else the base `default` row). `None` when the step has no
    /// clock there; resolution always has one.
    pub fn target(
        &self,
        step: Step,
        grade: Grade,
        urgency: Urgency,
        variant: Option<&str>,
    ) -> Option<Duration> {
        let i = step as usize;
        variant
            .and_then(|v| self.variants.get(v))
            .and_then(|v| v.steps[i].get(grade, urgency))
            .or_else(|| self.steps[i].get(grade, urgency))
    }

    /// The variant keys.
    pub fn variants(&self) -> impl Iterator<Item = (&str, &SlaVariant)> {
        self.variants.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A reason the clock may stop for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PauseReason {
    pub code: String,
    pub name: String,
    pub description: String,
    /// Longest pause per request; `None` = until the reason ends.
    pub max: Option<Duration>,
    /// How many times per case; `None` = no limit.
    pub max_times: Option<u32>,
}

/// A level of the escalation ladder on the resolution clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationLevel {
    pub level: String,
    pub description: String,
    /// Who is told (a role).
    pub role: String,
    /// When, per urgency (normal, expedited, urgent).
    after: [Trigger; 3],
    /// Whether someone must acknowledge; else it goes up the ladder.
    pub needs_ack: bool,
    pub ack_within: Option<Duration>,
    pub channels: Vec<String>,
    pub(crate) pos: Pos,
}

impl EscalationLevel {
    /// When the level fires for a complaint of this urgency.
    pub fn after(&self, urgency: Urgency) -> Trigger {
        self.after[urgency_index(urgency)]
    }
}

/// Who is told of which event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRule {
    /// Event type pattern: dot-separated tokens, `*` for one token, `>`
    /// (last) for the rest: `complaint.*`, `alert.>`.
    pub event: String,
    pub description: String,
    /// The least serious grade told (4 = every grade, 1 = major only).
    pub min_grade: Grade,
    /// Only complaints of this department.
    pub department: Option<DeptCode>,
    pub roles: Vec<String>,
    pub channels: Vec<String>,
    /// The notice must go out within this time of the event.
    pub within: Option<Duration>,
    /// Sent again at this interval until the case closes.
    pub repeat: Option<Duration>,
    /// Makes `roles` a ladder: the first role is told at once; each next
    /// role only when nobody told so far acknowledged within this time.
    pub ack_within: Option<Duration>,
}

impl NotifyRule {
    /// Whether this rule applies to an event of `event_type` about a
    /// complaint of `grade` in `department`.
    pub fn applies(&self, event_type: &str, grade: Grade, department: Option<&str>) -> bool {
        grade <= self.min_grade
            && self
                .department
                .as_ref()
                .is_none_or(|d| department == Some(d.as_str()))
            && event_matches(&self.event, event_type)
    }
}

/// Whether an event type matches a pattern (`*` one token, `>` the rest).
pub fn event_matches(pattern: &str, event_type: &str) -> bool {
    let mut p = pattern.split('.');
    let mut e = event_type.split('.');
    loop {
        match (p.next(), e.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A person who can be notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub department: Option<DeptCode>,
    /// Channel → address (`email`, `sms`, `wecom`…).
    pub contacts: BTreeMap<String, String>,
    /// Minutes of the day (from, to) when only grade 1 reaches them.
    pub quiet_hours: Option<(u16, u16)>,
}

/// Who holds a role at which times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duty {
    pub role: String,
    pub description: String,
    pub members: Vec<String>,
    /// 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// Minutes of the day; `to` ≤ `from` means the shift runs past
    /// midnight (and belongs to the weekday it starts on).
    pub from: u16,
    pub to: u16,
}

impl Duty {
    /// Whether the shift covers this moment (weekday 1–7, minute 0–1439).
    pub fn covers(&self, weekday: u8, minute: u16) -> bool {
        if self.from < self.to {
            self.weekdays.contains(&weekday) && (self.from..self.to).contains(&minute)
        } else {
            let yesterday = if weekday == 1 { 7 } else { weekday - 1 };
            (self.weekdays.contains(&weekday) && minute >= self.from)
                || (self.weekdays.contains(&yesterday) && minute < self.to)
        }
    }
}

/// Members and duty schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rosters {
    pub members: Vec<Member>,
    pub duty: Vec<Duty>,
}

impl Rosters {
    /// The members on duty for `role` at a moment (weekday 1–7, minute of
    /// the day).
    pub fn on_duty(&self, role: &str, weekday: u8, minute: u16) -> Vec<&Member> {
        let ids: BTreeSet<&str> = self
            .duty
            .iter()
            .filter(|d| d.role == role && d.covers(weekday, minute))
            .flat_map(|d| d.members.iter().map(String::as_str))
            .collect();
        self.members
            .iter()
            .filter(|m| ids.contains(m.id.as_str()))
            .collect()
    }
}

/// 高发 / 多发 / 偶发.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrequencyClass {
    /// 偶发
    Occasional,
    /// 多发
    Many,
    /// 高发
    High,
}

impl FrequencyClass {
    pub fn name_zh(self) -> &'static str {
        match self {
            FrequencyClass::Occasional => "偶发",
            FrequencyClass::Many => "多发",
            FrequencyClass::High => "高发",
        }
    }
}

/// Frequency thresholds: similar complaints in the window, this one
/// included; `≥ high` is 高发, `≥ many` 多发, else 偶发.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Frequency {
    pub window: Duration,
    pub high: u32,
    pub many: u32,
}

impl Frequency {
    /// The class of a count of similar complaints.
    pub fn class(&self, count: u32) -> FrequencyClass {
        if count >= self.high {
            FrequencyClass::High
        } else if count >= self.many {
            FrequencyClass::Many
        } else {
            FrequencyClass::Occasional
        }
    }
}

/// Hot topics: `threshold` complaints of the same topic (grouped by `per`)
/// within `window` raise `alert.hot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hot {
    pub window: Duration,
    pub threshold: u32,
    pub per: Vec<String>,
}

/// Near-duplicate detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Similarity {
    /// How far back near-duplicates and repeats are looked for.
    pub window_days: u32,
    /// Largest SimHash Hamming distance (of 64 bits) between near-duplicates.
    pub max_distance: u32,
    /// Near-duplicates must also share product or place when both are known.
    pub same_place: bool,
    /// Distinct complainants from which a cluster of near-duplicates is a
    /// group issue (linked on each case).
    pub group_min: u32,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// `sha256:` + hex digest of the file's bytes (and of the
    /// classifier's training file's, when it has one).
    pub version: String,
    /// IANA time zone of the organisation (hours and weekdays of receipt).
    pub time_zone: String,
    /// Calendar name under `policies/calendars/`.
    pub calendar: Option<String>,
    pub triage_department: DeptCode,
    pub classify_threshold: f64,
    /// `classifier_training` as written (relative to the policy file).
    pub classifier_training_file: Option<String>,
    /// The labeled complaints the classifier learns from (see
    /// `Classifier::with_training`); empty without `classifier_training`,
    /// and when the policy was read with [`Policy::from_toml`], which has
    /// no directory to find the file in.
    pub classifier_training: Vec<crate::classify::Sample>,
    /// By department code.
    pub departments: BTreeMap<String, Department>,
    pub taxonomy: Vec<Category>,
    pub grading: Vec<GradingRule>,
    pub routing: Vec<RoutingRule>,
    pub sla: Sla,
    pub pause_reasons: Vec<PauseReason>,
    pub escalation: Vec<EscalationLevel>,
    pub notify: Vec<NotifyRule>,
    pub rosters: Rosters,
    pub frequency: Frequency,
    pub hot: Hot,
    pub similarity: Similarity,
    keywords: KeywordIndex,
    pub(crate) taxonomy_pos: Vec<Pos>,
}

/// The grading of one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grading {
    pub grade: Grade,
    pub urgency: Urgency,
    /// The facts' own flags and those the matching rules raised.
    pub flags: Flags,
    /// Every rule that matched (or failed), in policy order.
    pub hits: Vec<Hit>,
}

impl Grading {
    /// Sets grade, urgency and flags on the facts, as routing rules expect.
    pub fn apply(&self, facts: &mut Facts) {
        facts.grade = self.grade;
        facts.urgency = self.urgency;
        facts.flags = self.flags;
    }
}

/// The routing of one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routing {
    #[serde(serialize_with = "ser_dept")]
    pub department: DeptCode,
    #[serde(serialize_with = "ser_depts")]
    pub co_departments: Vec<DeptCode>,
    pub strategy: Strategy,
    /// Skills asked of the handler.
    pub skills: Vec<String>,
    /// SLA variant key.
    pub sla: Option<String>,
    pub hits: Vec<Hit>,
}

fn ser_dept<S: serde::Serializer>(d: &DeptCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

fn ser_depts<S: serde::Serializer>(d: &[DeptCode], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(d.iter().map(DeptCode::as_str))
}

impl Policy {
    /// Reads and validates a policy file. A calendar named by the policy is
    /// looked for under `calendars/` next to the file (a warning when that
    /// folder exists and has no file of that name); the classifier's
    /// training file is read relative to the policy file, and its problems
    /// are reported at their line in it.
    pub fn load(path: &Path) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        let file = path.display().to_string();
        let fail = |message: String| {
            vec![Diagnostic {
                file: file.clone(),
                line: 1,
                column: 1,
                severity: Severity::Error,
                message,
            }]
        };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
        let text =
            String::from_utf8(bytes).map_err(|e| fail(format!("the file is not UTF-8: {e}")))?;
        let dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        from_toml_in(&text, &file, dir)
    }

    /// Validates a policy from its text; `file_name` is used in the
    /// diagnostics. On success the diagnostics are warnings; on failure
    /// they include every error found (and the warnings), in file order.
    /// Files the policy names relative to itself are not read (there is
    /// no directory to resolve them against): `classifier_training` is
    /// left empty, with a warning.
    pub fn from_toml(
        text: &str,
        file_name: &str,
    ) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        from_toml_in(text, file_name, None)
    }

    /// Like [`from_toml`](Policy::from_toml), resolving what the policy
    /// names by path (calendar, training data) in `dir`, as if the text
    /// were a file there: how a policy published to the KV bucket is read.
    pub fn from_toml_in_dir(
        text: &str,
        file_name: &str,
        dir: &Path,
    ) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        from_toml_in(text, file_name, Some(dir))
    }

    /// A department by code.
    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.get(code)
    }

    /// A category of the taxonomy by code.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.taxonomy.iter().find(|c| c.code == code)
    }

    /// Grades a complaint: every grading rule is tried; the most serious
    /// grade and the most urgent urgency of the matching rules win, flags
    /// add up, and every match is kept as a hit. Grade 4 / normal when none
    /// matches. A rule whose condition fails to evaluate is skipped, with a
    /// hit saying why.
    pub fn grade(&self, facts: &Facts) -> Grading {
        let matched = self.keywords.scan(facts.lower_text());
        self.grade_matched(facts, &matched)
    }

    /// Grades, applies the grading to the facts, and routes: what routing
    /// does for each complaint, with one keyword scan for both.
    pub fn decide(&self, facts: &mut Facts) -> (Grading, Routing) {
        let matched = self.keywords.scan(facts.lower_text());
        let grading = self.grade_matched(facts, &matched);
        grading.apply(facts);
        let routing = self.route_matched(facts, &matched);
        (grading, routing)
    }

    fn grade_matched(&self, facts: &Facts, matched: &Matched) -> Grading {
        let mut grading = Grading {
            grade: Grade::GENERAL,
            urgency: Urgency::Normal,
            flags: facts.flags,
            hits: Vec::new(),
        };
        for rule in &self.grading {
            match rule.matches.check(facts, matched, &self.keywords) {
                Ok(None) => {}
                Ok(Some(why)) => {
                    let mut effects = Vec::new();
                    if let Some(g) = rule.grade {
                        grading.grade = grading.grade.min(g);
                        effects.push(format!("grade {g} ({})", g.name_zh()));
                    }
                    if let Some(u) = rule.urgency {
                        grading.urgency = grading.urgency.max(u);
                        effects.push(format!("urgency {u}"));
                    }
                    if !rule.flags.is_empty() {
                        grading.flags = grading.flags.union(rule.flags);
                        effects.push(format!("flags {}", rule.flags));
                    }
                    grading.hits.push(Hit {
                        rule: rule.id.clone(),
                        reason: format!("{why} → {}", effects.join(", ")),
                    });
                }
                Err(e) => grading.hits.push(Hit {
                    rule: rule.id.clone(),
                    reason: format!("skipped: {e}"),
                }),
            }
        }
        grading
    }

    /// Routes a complaint (grade, urgency and flags already set on the
    /// facts, see [`Grading::apply`]): the first matching rule that names a
    /// department decides; rules without a department that match on the way
    /// add co-departments, skills and the SLA variant. Without a deciding
    /// rule: triage when the classifier's confidence is below
    /// `classify_threshold`, else the category's department, else triage.
    pub fn route(&self, facts: &Facts) -> Routing {
        let matched = self.keywords.scan(facts.lower_text());
        self.route_matched(facts, &matched)
    }

    fn route_matched(&self, facts: &Facts, matched: &Matched) -> Routing {
        let mut hits = Vec::new();
        let mut co: Vec<DeptCode> = Vec::new();
        let mut skills: Vec<String> = Vec::new();
        let mut sla: Option<String> = None;
        let mut decided: Option<(DeptCode, Option<Strategy>)> = None;
        for rule in &self.routing {
            match rule.matches.check(facts, matched, &self.keywords) {
                Ok(None) => {}
                Ok(Some(why)) => {
                    for d in &rule.co_departments {
                        if !co.contains(d) {
                            co.push(d.clone());
                        }
                    }
                    for s in &rule.skills {
                        if !skills.contains(s) {
                            skills.push(s.clone());
                        }
                    }
                    if sla.is_none() {
                        sla.clone_from(&rule.sla);
                    }
                    let mut effects = Vec::new();
                    if let Some(d) = &rule.department {
                        effects.push(format!("department {d}"));
                    }
                    if !rule.co_departments.is_empty() {
                        let names: Vec<&str> =
                            rule.co_departments.iter().map(DeptCode::as_str).collect();
                        effects.push(format!("co-departments {}", names.join(", ")));
                    }
                    if let Some(s) = &rule.sla {
                        effects.push(format!("sla {s}"));
                    }
                    if !rule.skills.is_empty() {
                        effects.push(format!("skills {}", rule.skills.join(", ")));
                    }
                    hits.push(Hit {
                        rule: rule.id.clone(),
                        reason: format!("{why} → {}", effects.join(", ")),
                    });
                    if let Some(d) = &rule.department {
                        decided = Some((d.clone(), rule.strategy));
                        break;
                    }
                }
                Err(e) => hits.push(Hit {
                    rule: rule.id.clone(),
                    reason: format!("skipped: {e}"),
                }),
            }
        }
        let (department, strategy) = match decided {
            Some(d) => d,
            None => (self.fallback_department(facts, &mut hits), None),
        };
        co.retain(|d| *d != department);
        let strategy = strategy
            .or_else(|| {
                self.departments
                    .get(department.as_str())
                    .map(|d| d.strategy)
            })
            .unwrap_or_default();
        Routing {
            department,
            co_departments: co,
            strategy,
            skills,
            sla,
            hits,
        }
    }

    fn fallback_department(&self, facts: &Facts, hits: &mut Vec<Hit>) -> DeptCode {
        let triage = self.triage_department.clone();
        if facts.category.is_empty() || facts.confidence < self.classify_threshold {
            hits.push(Hit {
                rule: "triage".into(),
                reason: if facts.category.is_empty() {
                    format!("no category → triage department {triage}")
                } else {
                    format!(
                        "confidence {:.2} for {} is below {:.2} → triage department {triage}",
                        facts.confidence, facts.category, self.classify_threshold
                    )
                },
            });
            return triage;
        }
        let dept = self
            .category(&facts.category)
            .and_then(|c| c.department.as_deref())
            .and_then(|d| self.departments.get(d))
            .map(|d| d.code.clone());
        match dept {
            Some(d) => {
                hits.push(Hit {
                    rule: format!("taxonomy:{}", facts.category),
                    reason: format!("category {} → department {d}", facts.category),
                });
                d
            }
            None => {
                hits.push(Hit {
                    rule: "triage".into(),
                    reason: format!(
                        "category {} has no department → triage department {triage}",
                        facts.category
                    ),
                });
                triage
            }
        }
    }

    /// The SLA target of a step (see [`Sla::target`]).
    pub fn sla_target(
        &self,
        step: Step,
        grade: Grade,
        urgency: Urgency,
        variant: Option<&str>,
    ) -> Option<Duration> {
        self.sla.target(step, grade, urgency, variant)
    }

    /// Roles the policy knows: the built-in ones and those roster members
    /// declare.
    pub fn roles(&self) -> BTreeSet<&str> {
        let mut roles: BTreeSet<&str> = BUILTIN_ROLES.iter().copied().collect();
        for m in &self.rosters.members {
            roles.extend(m.roles.iter().map(String::as_str));
        }
        roles
    }
}

// ---------------------------------------------------------------------------
// Validation

/// `dir`: the policy file's directory, for the files it names.
fn from_toml_in(
    text: &str,
    file_name: &str,
    dir: Option<&Path>,
) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut d = Diags::new(file_name, text);
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().replace('\n', " ");
            d.error(&span, message);
            return Err(d.list);
        }
    };
    let training_key = raw.classifier_training.clone();
    let training = training_key
        .as_ref()
        .and_then(|key| read_training(&mut d, key, dir));
    // The training file decides classifications as much as the policy's
    // keywords do, so it is part of the version. TOML text cannot contain
    // NUL, which makes the concatenation unambiguous.
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    if let Some((_, bytes, _)) = &training {
        hasher.update([0u8]);
        hasher.update(bytes.as_bytes());
    }
    // So is the calendar the SLA deadlines are counted on: new holiday data
    // (a year published each November) is a new version, and publishing it
    // recomputes the open clocks.
    if let (Some(dir), Some(name)) = (dir, &raw.calendar) {
        for (file, bytes) in calendar_files(&dir.join("calendars"), name.get_ref()) {
            hasher.update([0u8]);
            hasher.update(file.as_bytes());
            hasher.update([0u8]);
            hasher.update(&bytes);
        }
    }
    let version = format!("sha256:{}", hex::encode(hasher.finalize()));
    let calendars = dir.map(|p| p.join("calendars"));
    let mut policy = build(raw, version, &mut d, calendars.as_deref());
    if let Some(p) = &policy {
        d.list.extend(crate::check::lint(p, file_name));
    }
    if let (Some(p), Some(key), Some((path, _, samples))) = (&mut policy, &training_key, training) {
        p.classifier_training_file = Some(key.get_ref().clone());
        p.classifier_training = check_training(&mut d, key, &path, samples, &p.taxonomy);
    }
    // In file order; problems inside the training file come after the
    // policy's own.
    d.list
        .sort_by_key(|a| (a.file != file_name, a.line, a.column));
    match policy {
        Some(p) if !d.has_errors() => Ok((p, d.list)),
        _ => Err(d.list),
    }
}

/// The `*.toml` files of calendar `name` under `calendars`, by file name
/// (nothing when it cannot be read: the calendar check reports that).
fn calendar_files(calendars: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    if name.is_empty() || name.contains(['/', '\\', '.']) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(calendars.join(name)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let bytes = file
                .ends_with(".toml")
                .then(|| std::fs::read(e.path()).ok())
                .flatten()?;
            Some((file, bytes))
        })
        .collect();
    files.sort();
    files
}

/// At most this many training samples with unknown labels are reported
/// one by one (a training file written for another taxonomy would
/// otherwise bury the policy's own diagnostics).
const MAX_LABEL_DIAGNOSTICS: usize = 20;

/// A training file larger than this is refused rather than read (a few
/// thousand labeled complaints take a few MB).
const MAX_TRAINING_BYTES: u64 = 64 << 20;

/// Reads `classifier_training` relative to the policy's directory: the
/// resolved path (as shown in diagnostics), the file's text, and its
/// samples with their lines. Problems reading it are errors at the key,
/// a malformed record an error at its line in the training file.
#[allow(clippy::type_complexity)]
fn read_training(
    d: &mut Diags,
    key: &Spanned<String>,
    dir: Option<&Path>,
) -> Option<(
    String,
    String,
    Option<Vec<(usize, crate::classify::Sample)>>,
)> {
    let relative = key.get_ref().trim();
    if relative.is_empty() {
        d.error(
            &key.span(),
            "classifier_training must name a JSONL file (relative to the policy file)",
        );
        return None;
    }
    let Some(dir) = dir else {
        d.warn(
            &key.span(),
            format!(
                "classifier_training {relative:?} is not read for a policy given as text (no directory to find it in): the classifier uses keywords only"
            ),
        );
        return None;
    };
    let path = dir.join(relative);
    let shown = path.display().to_string();
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.len() > MAX_TRAINING_BYTES
    {
        d.error(
            &key.span(),
            format!(
                "classifier_training: {shown} has {} bytes, more than the {} MiB a training file may have",
                meta.len(),
                MAX_TRAINING_BYTES >> 20
            ),
        );
        return None;
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            d.error(
                &key.span(),
                format!("classifier_training: cannot read {shown}: {e}"),
            );
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            d.error(
                &key.span(),
                format!("classifier_training: {shown} is not UTF-8: {e}"),
            );
            return None;
        }
    };
    let samples = match crate::classify::load_jsonl_lines(&text) {
        Ok(samples) => Some(samples),
        Err(e) => {
            d.list.push(Diagnostic {
                file: shown.clone(),
                line: e.line,
                column: e.column.max(1),
                severity: Severity::Error,
                message: format!("training sample: {}", e.message),
            });
            None
        }
    };
    Some((shown, text, samples))
}

/// Checks the training samples against the taxonomy (every label must be
/// a category: the model must not vote for a category routing does not
/// know) and returns them.
fn check_training(
    d: &mut Diags,
    key: &Spanned<String>,
    path: &str,
    samples: Option<Vec<(usize, crate::classify::Sample)>>,
    taxonomy: &[Category],
) -> Vec<crate::classify::Sample> {
    let Some(samples) = samples else {
        return Vec::new();
    };
    if samples.is_empty() {
        d.error(
            &key.span(),
            format!("classifier_training: {path} has no samples"),
        );
        return Vec::new();
    }
    let mut unknown = 0usize;
    for (line, sample) in &samples {
        let label = sample.category.trim();
        if taxonomy.iter().any(|c| c.code == label) {
            continue;
        }
        unknown += 1;
        if unknown <= MAX_LABEL_DIAGNOSTICS {
            let known: Vec<&str> = taxonomy.iter().map(|c| c.code.as_str()).collect();
            d.list.push(Diagnostic {
                file: path.to_owned(),
                line: *line,
                column: 1,
                severity: Severity::Error,
                message: format!(
                    "training sample {:?}: category `{label}` is not in the taxonomy (known: {})",
                    sample.id,
                    known.join(", ")
                ),
            });
        }
    }
    if unknown > MAX_LABEL_DIAGNOSTICS {
        d.error(
            &key.span(),
            format!(
                "classifier_training: {unknown} samples of {path} have categories not in the taxonomy ({MAX_LABEL_DIAGNOSTICS} listed)"
            ),
        );
    }
    if unknown > 0 {
        return Vec::new();
    }
    samples.into_iter().map(|(_, s)| s).collect()
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn duration(d: &mut Diags, s: &Spanned<String>, what: &str) -> Option<Duration> {
    match s.get_ref().parse() {
        Ok(v) => Some(v),
        Err(e) => {
            d.error(&s.span(), format!("{what}: {e}"));
            None
        }
    }
}

fn positive(d: &mut Diags, n: &Spanned<i64>, what: &str, min: i64, max: i64) -> Option<u32> {
    let v = *n.get_ref();
    if (min..=max).contains(&v) {
        u32::try_from(v).ok()
    } else {
        d.error(
            &n.span(),
            format!("{what} must be from {min} to {max}, not {v}"),
        );
        None
    }
}

/// `HH:MM` → minutes of the day (24:00 allowed as the end of a day).
fn clock(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn weekday(s: &str) -> Option<u8> {
    let s = s.trim().to_lowercase();
    let days: [(&[&str], u8); 7] = [
        (&["mon", "monday", "周一", "星期一", "1"], 1),
        (&["tue", "tuesday", "周二", "星期二", "2"], 2),
        (&["wed", "wednesday", "周三", "星期三", "3"], 3),
        (&["thu", "thursday", "周四", "星期四", "4"], 4),
        (&["fri", "friday", "周五", "星期五", "5"], 5),
        (&["sat", "saturday", "周六", "星期六", "6"], 6),
        (
            &["sun", "sunday", "周日", "周天", "星期日", "星期天", "7"],
            7,
        ),
    ];
    days.iter()
        .find(|(names, _)| names.contains(&s.as_str()))
        .map(|(_, n)| *n)
}

fn valid_time_zone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.len() <= 64
        && tz.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        })
        && tz.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
}

fn valid_event_pattern(p: &str) -> bool {
    let tokens: Vec<&str> = p.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        (*t == ">" && i + 1 == tokens.len())
            || *t == "*"
            || (!t.is_empty()
                && t.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                }))
    })
}

struct Ids<'a> {
    seen: BTreeMap<String, Pos>,
    what: &'a str,
}

impl Ids<'_> {
    fn check(&mut self, d: &mut Diags, id: &Spanned<String>) -> bool {
        let pos = d.pos(id.span().start);
        let name = id.get_ref();
        if let Some(first) = self.seen.get(name) {
            d.error(
                &id.span(),
                format!(
                    "duplicate {} id {name:?} (first used at line {})",
                    self.what, first.line
                ),
            );
            return false;
        }
        self.seen.insert(name.clone(), pos);
        true
    }
}

fn build(
    raw: RawPolicy,
    version: String,
    d: &mut Diags,
    calendars: Option<&Path>,
) -> Option<Policy> {
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() {
        d.error(&raw.name.span(), "name must not be empty");
    }
    let time_zone = match &raw.time_zone {
        Some(tz) if !valid_time_zone(tz.get_ref()) => {
            d.error(
                &tz.span(),
                format!(
                    "time_zone {:?} is not an IANA time zone name like \"Asia/Shanghai\"",
                    tz.get_ref()
                ),
            );
            DEFAULT_TIME_ZONE.to_owned()
        }
        Some(tz) => tz.get_ref().clone(),
        None => DEFAULT_TIME_ZONE.to_owned(),
    };
    let calendar = raw.calendar.as_ref().map(|c| {
        let name = c.get_ref();
        if !is_code(name) {
            d.error(
                &c.span(),
                format!("calendar {name:?} must be a file name stem: a-z, 0-9, _ and -"),
            );
        } else if let Some(dir) = calendars
            && dir.is_dir()
        {
            let found = dir.join(name).is_dir()
                || std::fs::read_dir(dir).ok().is_some_and(|entries| {
                    entries.flatten().any(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|f| f.starts_with(name.as_str()) && f.ends_with(".toml"))
                    })
                });
            if !found {
                d.warn(
                    &c.span(),
                    format!("no calendar {name}/ or {name}*.toml in {}", dir.display()),
                );
            }
        }
        name.clone()
    });
    let classify_threshold = match &raw.classify_threshold {
        Some(t) if !(0.0..=1.0).contains(t.get_ref()) => {
            d.error(
                &t.span(),
                format!(
                    "classify_threshold must be from 0 to 1, not {}",
                    t.get_ref()
                ),
            );
            DEFAULT_CLASSIFY_THRESHOLD
        }
        Some(t) => *t.get_ref(),
        None => DEFAULT_CLASSIFY_THRESHOLD,
    };

    // Rosters first: departments and rules refer to members and roles.
    let rosters_raw = raw.rosters.unwrap_or_default();
    let member_ids: BTreeSet<String> = rosters_raw
        .members
        .iter()
        .map(|m| m.get_ref().id.get_ref().clone())
        .collect();
    let mut roles: BTreeSet<String> = BUILTIN_ROLES.iter().map(|r| (*r).to_owned()).collect();
    for m in &rosters_raw.members {
        roles.extend(m.get_ref().roles.iter().cloned());
    }

    // Departments.
    let no_departments = BTreeMap::new();
    let (raw_departments, departments_span) = match &raw.departments {
        Some(deps) => (deps.get_ref(), deps.span()),
        None => (&no_departments, 0..0),
    };
    let dept_codes: BTreeSet<String> = raw_departments.keys().cloned().collect();
    if dept_codes.is_empty() {
        d.error(
            &departments_span,
            "no [departments]: a policy needs at least the triage department",
        );
    }
    let mut departments = BTreeMap::new();
    for (code, dept) in raw_departments {
        let span = dept.span();
        let dept = dept.get_ref();
        let Ok(dcode) = code.parse::<DeptCode>() else {
            d.error(
                &span,
                format!(
                    "department code {code:?} must use ASCII letters, digits, _ and - (at most 64)"
                ),
            );
            continue;
        };
        if dept.name.trim().is_empty() {
            d.error(&span, format!("department {code} has an empty name"));
        }
        if let Some(head) = &dept.head
            && !member_ids.is_empty()
            && !member_ids.contains(head.get_ref())
        {
            d.warn(
                &head.span(),
                format!(
                    "head {:?} of department {code} is not a roster member",
                    head.get_ref()
                ),
            );
        }
        let mut handlers = Vec::new();
        for h in &dept.handlers {
            if handlers.contains(h.get_ref()) {
                d.error(
                    &h.span(),
                    format!("handler {:?} listed twice in {code}", h.get_ref()),
                );
                continue;
            }
            if !member_ids.is_empty() && !member_ids.contains(h.get_ref()) {
                d.warn(
                    &h.span(),
                    format!(
                        "handler {:?} of department {code} is not a roster member",
                        h.get_ref()
                    ),
                );
            }
            handlers.push(h.get_ref().clone());
        }
        for handler in dept.skills.keys() {
            if !handlers.contains(handler) {
                d.error(
                    &span,
                    format!("department {code}: skills given for {handler:?}, who is not one of its handlers"),
                );
            }
        }
        let strategy = dept.strategy.unwrap_or_default();
        if strategy == Strategy::Skills && dept.skills.is_empty() {
            d.warn(
                &span,
                format!("department {code} picks handlers by skills but lists no skills"),
            );
        }
        let return_window_hours = match &dept.return_window_hours {
            Some(h) => positive(d, h, "return_window_hours", 0, 24 * 30).unwrap_or(24),
            None => 24,
        };
        departments.insert(
            code.clone(),
            Department {
                code: dcode,
                name: dept.name.trim().to_owned(),
                description: dept.description.clone().unwrap_or_default(),
                head: dept.head.as_ref().map(|h| h.get_ref().clone()),
                handlers,
                strategy,
                skills: dept.skills.clone(),
                return_window_hours,
            },
        );
    }
    let dept_ref = |d: &mut Diags, s: &Spanned<String>, what: &str| -> Option<DeptCode> {
        match departments.get(s.get_ref()) {
            Some(dep) => Some(dep.code.clone()),
            None => {
                d.error(
                    &s.span(),
                    format!(
                        "{what}: unknown department {:?} (known: {})",
                        s.get_ref(),
                        dept_codes.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                None
            }
        }
    };
    let triage_department = dept_ref(d, &raw.triage_department, "triage_department");

    // Taxonomy.
    let mut taxonomy = Vec::new();
    let mut taxonomy_pos = Vec::new();
    let mut codes = Ids {
        seen: BTreeMap::new(),
        what: "category",
    };
    for cat in &raw.taxonomy {
        let span = cat.span();
        let c = cat.get_ref();
        let code_spanned = Spanned::new(span.clone(), c.code.clone());
        if !is_code(&c.code) || c.code.contains('-') {
            d.error(
                &span,
                format!("category code {:?} must be [a-z0-9_]+", c.code),
            );
        }
        codes.check(d, &code_spanned);
        if c.name.trim().is_empty() {
            d.error(&span, format!("category {} has an empty name", c.code));
        }
        if let Some(dep) = &c.department
            && !departments.contains_key(dep)
        {
            d.error(
                &span,
                format!(
                    "category {}: unknown department {dep:?} (known: {})",
                    c.code,
                    dept_codes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for (term, weight) in &c.keywords {
            if term.trim().is_empty() {
                d.error(&span, format!("category {}: an empty keyword", c.code));
            }
            if !weight.is_finite() || *weight <= 0.0 {
                d.error(
                    &span,
                    format!(
                        "category {}: keyword {term:?} needs a weight above 0, not {weight}",
                        c.code
                    ),
                );
            }
        }
        taxonomy.push(c.clone());
        taxonomy_pos.push(d.pos(span.start));
    }
    if taxonomy.is_empty() {
        d.warn(
            &(0..0),
            "no [[taxonomy]]: nothing can be classified, every complaint goes to triage",
        );
    }
    let category_codes: BTreeSet<&str> = taxonomy.iter().map(|c| c.code.as_str()).collect();
    let category_ref = |d: &mut Diags, span: &Range<usize>, code: &str, what: &str| {
        if !category_codes.contains(code) {
            d.error(
                span,
                format!(
                    "{what}: unknown category {code:?} (known: {})",
                    category_codes
                        .iter()
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    };

    // SLA (before routing: rules name variants).
    let sla = build_sla(&raw.sla, d);

    // Rules.
    let mut keywords = KeywordIndex::new();
    let mut rule_ids = Ids {
        seen: BTreeMap::new(),
        what: "rule",
    };
    let mut compile_match = |d: &mut Diags,
                             keywords_raw: &[Spanned<String>],
                             categories_raw: &[Spanned<String>],
                             when: &Option<Spanned<String>>,
                             rule: &str|
     -> Match {
        let mut kws = Vec::new();
        let mut ids = Vec::new();
        for k in keywords_raw {
            match keywords.add(k.get_ref()) {
                Some(id) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                        kws.push(keywords.keyword(id).to_owned());
                    }
                }
                None => d.error(&k.span(), format!("rule {rule}: empty keyword")),
            }
        }
        let mut categories = Vec::new();
        for c in categories_raw {
            category_ref(d, &c.span(), c.get_ref(), &format!("rule {rule}"));
            categories.push(c.get_ref().clone());
        }
        let mut broken = false;
        let when = when.as_ref().and_then(|w| match Condition::compile(w.get_ref()) {
            Ok(cond) => {
                for (code, offset) in cond.categories() {
                    if !category_codes.contains(code.as_str()) {
                        let pos = d.pos_in_string(&w.span(), w.get_ref(), *offset);
                        d.at(
                            pos,
                            Severity::Error,
                            format!(
                                "rule {rule}: `when` compares category with unknown category {code:?} (known: {})",
                                category_codes.iter().copied().collect::<Vec<_>>().join(", ")
                            ),
                        );
                    }
                }
                Some(cond)
            }
            Err(e) => {
                let pos = match e.position_in(w.get_ref()) {
                    Some((line, col)) => {
                        let offset = offset_of(w.get_ref(), line, col);
                        d.pos_in_string(&w.span(), w.get_ref(), offset)
                    }
                    None => d.pos(w.span().start),
                };
                d.at(pos, Severity::Error, format!("rule {rule}: `when`: {e}"));
                broken = true;
                None
            }
        });
        Match {
            keywords: kws,
            keyword_ids: ids,
            categories,
            when,
            broken,
        }
    };

    let mut grading = Vec::new();
    for r in &raw.grading {
        let span = r.span();
        let r = r.get_ref();
        rule_ids.check(d, &r.id);
        let id = r.id.get_ref().clone();
        if id.trim().is_empty() {
            d.error(&r.id.span(), "rule id must not be empty");
        }
        let matches = compile_match(d, &r.keywords, &r.categories, &r.when, &id);
        let grade = r.grade.as_ref().and_then(|g| {
            parse_grade(*g.get_ref())
                .map_err(|e| d.error(&g.span(), format!("rule {id}: {e}")))
                .ok()
        });
        let urgency = r.urgency.as_ref().and_then(|u| {
            parse_urgency(u.get_ref())
                .map_err(|e| d.error(&u.span(), format!("rule {id}: {e}")))
                .ok()
        });
        let flags: Flags = r.flags.iter().copied().collect();
        if r.grade.is_none() && r.urgency.is_none() && flags.is_empty() {
            d.error(
                &span,
                format!("grading rule {id} sets neither grade, urgency nor flags"),
            );
        }
        grading.push(GradingRule {
            id,
            description: r.description.clone().unwrap_or_default(),
            matches,
            grade,
            urgency,
            flags,
            pos: d.pos(span.start),
        });
    }

    let mut routing = Vec::new();
    for r in &raw.routing {
        let span = r.span();
        let r = r.get_ref();
        rule_ids.check(d, &r.id);
        let id = r.id.get_ref().clone();
        if id.trim().is_empty() {
            d.error(&r.id.span(), "rule id must not be empty");
        }
        let matches = compile_match(d, &r.keywords, &r.categories, &r.when, &id);
        let what = format!("routing rule {id}");
        let department = r
            .department
            .as_ref()
            .and_then(|dep| dept_ref(d, dep, &what));
        let mut co_departments = Vec::new();
        for c in &r.co_departments {
            if let Some(code) = dept_ref(d, c, &what) {
                if department.as_ref() == Some(&code) {
                    d.warn(
                        &c.span(),
                        format!("{what}: co-department {code} is the department itself"),
                    );
                } else if co_departments.contains(&code) {
                    d.warn(
                        &c.span(),
                        format!("{what}: co-department {code} listed twice"),
                    );
                } else {
                    co_departments.push(code);
                }
            }
        }
        let skills: Vec<String> = r.skills.iter().map(|s| s.get_ref().clone()).collect();
        if let Some(dep) = department
            .as_ref()
            .and_then(|c| departments.get(c.as_str()))
        {
            for s in &r.skills {
                if !dep.skills.values().flatten().any(|k| k == s.get_ref()) {
                    d.warn(
                        &s.span(),
                        format!(
                            "{what}: no handler of {} has skill {:?}",
                            dep.code,
                            s.get_ref()
                        ),
                    );
                }
            }
        }
        let sla_key = r.sla.as_ref().map(|s| {
            if sla
                .as_ref()
                .is_some_and(|sla| !sla.variants.contains_key(s.get_ref()))
            {
                let known: Vec<&str> = sla
                    .as_ref()
                    .map(|sla| sla.variants.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                d.error(
                    &s.span(),
                    format!(
                        "{what}: unknown SLA variant {:?} (defined: {})",
                        s.get_ref(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            s.get_ref().clone()
        });
        if department.is_none()
            && r.department.is_none()
            && co_departments.is_empty()
            && r.co_departments.is_empty()
            && sla_key.is_none()
            && skills.is_empty()
        {
            d.error(
                &span,
                format!("{what} sets no department, co_departments, sla or skills"),
            );
        }
        routing.push(RoutingRule {
            id,
            description: r.description.clone().unwrap_or_default(),
            matches,
            department,
            co_departments,
            strategy: r.strategy,
            skills,
            sla: sla_key,
            pos: d.pos(span.start),
        });
    }

    // Pause reasons.
    let mut pause_reasons = Vec::new();
    let mut pause_ids = Ids {
        seen: BTreeMap::new(),
        what: "pause reason",
    };
    for p in &raw.pause_reasons {
        let p = p.get_ref();
        if !is_code(p.code.get_ref()) {
            d.error(
                &p.code.span(),
                format!(
                    "pause reason code {:?} must be [a-z0-9_-]+",
                    p.code.get_ref()
                ),
            );
        }
        pause_ids.check(d, &p.code);
        pause_reasons.push(PauseReason {
            code: p.code.get_ref().clone(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            max: p.max.as_ref().and_then(|m| duration(d, m, "max")),
            max_times: p
                .max_times
                .as_ref()
                .and_then(|n| positive(d, n, "max_times", 1, 100)),
        });
    }

    // Escalation ladder.
    let mut escalation = Vec::new();
    let mut levels = Ids {
        seen: BTreeMap::new(),
        what: "escalation level",
    };
    let role_ref = |d: &mut Diags, r: &Spanned<String>, what: &str| {
        if !roles.contains(r.get_ref()) {
            d.error(
                &r.span(),
                format!(
                    "{what}: unknown role {:?} (known: {}; roster members can declare more)",
                    r.get_ref(),
                    roles.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    };
    let channel_ref = |d: &mut Diags, c: &Spanned<String>, what: &str| {
        if !CHANNELS.contains(&c.get_ref().as_str()) {
            d.error(
                &c.span(),
                format!(
                    "{what}: unknown channel {:?} (known: {})",
                    c.get_ref(),
                    CHANNELS.join(", ")
                ),
            );
        }
    };
    for e in &raw.escalation {
        let epos = d.pos(e.span().start);
        let e = e.get_ref();
        levels.check(d, &e.level);
        let what = format!("escalation level {}", e.level.get_ref());
        role_ref(d, &e.role, &what);
        for c in &e.channels {
            channel_ref(d, c, &what);
        }
        let span = e.after.span();
        let parse = |d: &mut Diags, s: &str| -> Trigger {
            s.parse().unwrap_or_else(|err| {
                d.error(&span, format!("{what}: after: {err}"));
                Trigger::Percent(100)
            })
        };
        let after = match e.after.get_ref() {
            toml::Value::String(s) => {
                let t = parse(d, s);
                [t; 3]
            }
            toml::Value::Table(map) => {
                let mut after = [None; 3];
                for (k, v) in map {
                    match (parse_urgency(k), v.as_str()) {
                        (Ok(u), Some(v)) => after[urgency_index(u)] = Some(parse(d, v)),
                        (Err(err), _) => d.error(&span, format!("{what}: after: {err}")),
                        (Ok(_), None) => d.error(
                            &span,
                            format!("{what}: after.{k} must be a string like \"100% + 2h\""),
                        ),
                    }
                }
                let mut out = [Trigger::Percent(100); 3];
                for u in Urgency::ALL {
                    match after[urgency_index(u)] {
                        Some(t) => out[urgency_index(u)] = t,
                        None => d.error(
                            &span,
                            format!("{what}: after gives no trigger for urgency {u}"),
                        ),
                    }
                }
                out
            }
            _ => {
                d.error(
                    &span,
                    format!(
                        "{what}: after must be a string (\"80%\", \"100% + 5wd\", \"30m\") or a table by urgency"
                    ),
                );
                [Trigger::Percent(100); 3]
            }
        };
        if e.ack_within.is_some() && !e.needs_ack {
            d.warn(
                &e.level.span(),
                format!("{what}: ack_within is set but needs_ack is false"),
            );
        }
        escalation.push(EscalationLevel {
            level: e.level.get_ref().clone(),
            description: e.description.clone().unwrap_or_default(),
            role: e.role.get_ref().clone(),
            after,
            needs_ack: e.needs_ack,
            ack_within: e
                .ack_within
                .as_ref()
                .and_then(|a| duration(d, a, "ack_within")),
            channels: e.channels.iter().map(|c| c.get_ref().clone()).collect(),
            pos: epos,
        });
    }

    // Notification rules.
    let mut notify = Vec::new();
    for n in &raw.notify {
        let n = n.get_ref();
        let what = format!("notify rule for {:?}", n.event.get_ref());
        if !valid_event_pattern(n.event.get_ref()) {
            d.error(
                &n.event.span(),
                format!(
                    "{what}: event pattern must be dot-separated tokens of a-z 0-9 _ -, `*` for one token, `>` (last) for the rest"
                ),
            );
        }
        let min_grade = n
            .min_grade
            .as_ref()
            .and_then(|g| {
                parse_grade(*g.get_ref())
                    .map_err(|e| d.error(&g.span(), format!("{what}: min_grade: {e}")))
                    .ok()
            })
            .unwrap_or(Grade::GENERAL);
        let department = n
            .department
            .as_ref()
            .and_then(|dep| dept_ref(d, dep, &what));
        if n.roles.get_ref().is_empty() {
            d.error(&n.roles.span(), format!("{what}: roles must not be empty"));
        }
        for r in n.roles.get_ref() {
            role_ref(d, r, &what);
        }
        if n.channels.get_ref().is_empty() {
            d.error(
                &n.channels.span(),
                format!("{what}: channels must not be empty"),
            );
        }
        for c in n.channels.get_ref() {
            channel_ref(d, c, &what);
        }
        notify.push(NotifyRule {
            event: n.event.get_ref().clone(),
            description: n.description.clone().unwrap_or_default(),
            min_grade,
            department,
            roles: n
                .roles
                .get_ref()
                .iter()
                .map(|r| r.get_ref().clone())
                .collect(),
            channels: n
                .channels
                .get_ref()
                .iter()
                .map(|c| c.get_ref().clone())
                .collect(),
            within: n.within.as_ref().and_then(|w| duration(d, w, "within")),
            repeat: n.repeat.as_ref().and_then(|w| duration(d, w, "repeat")),
            ack_within: n
                .ack_within
                .as_ref()
                .and_then(|w| duration(d, w, "ack_within")),
        });
    }

    // Rosters.
    let mut rosters = Rosters::default();
    let mut members = Ids {
        seen: BTreeMap::new(),
        what: "roster member",
    };
    for m in &rosters_raw.members {
        let m = m.get_ref();
        members.check(d, &m.id);
        let what = format!("roster member {}", m.id.get_ref());
        let contacts = m
            .contacts
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_default();
        let contacts_span = m
            .contacts
            .as_ref()
            .map_or_else(|| m.id.span(), Spanned::span);
        for (kind, address) in &contacts {
            if !CHANNELS.contains(&kind.as_str()) {
                d.error(
                    &contacts_span,
                    format!(
                        "{what}: unknown contact channel {kind:?} (known: {})",
                        CHANNELS.join(", ")
                    ),
                );
            }
            if address.trim().is_empty() {
                d.error(&contacts_span, format!("{what}: empty {kind} address"));
            }
        }
        let quiet_hours = m.quiet_hours.as_ref().and_then(|q| {
            let parsed = q
                .get_ref()
                .split_once('-')
                .and_then(|(a, b)| Some((clock(a)?, clock(b)?)));
            if parsed.is_none() {
                d.error(
                    &q.span(),
                    format!("{what}: quiet_hours must be \"HH:MM-HH:MM\", e.g. \"22:00-07:00\""),
                );
            }
            parsed
        });
        rosters.members.push(Member {
            id: m.id.get_ref().clone(),
            name: m.name.clone(),
            roles: m.roles.clone(),
            department: m
                .department
                .as_ref()
                .and_then(|dep| dept_ref(d, dep, &what)),
            contacts,
            quiet_hours,
        });
    }
    for duty in &rosters_raw.duty {
        let span = duty.span();
        let duty = duty.get_ref();
        let what = format!("duty of {}", duty.role.get_ref());
        role_ref(d, &duty.role, &what);
        if duty.members.is_empty() {
            d.error(&span, format!("{what}: members must not be empty"));
        }
        for m in &duty.members {
            if !member_ids.contains(m.get_ref()) {
                d.error(
                    &m.span(),
                    format!("{what}: {:?} is not a roster member", m.get_ref()),
                );
            }
        }
        let mut weekdays = Vec::new();
        for w in &duty.weekdays {
            match weekday(w.get_ref()) {
                Some(n) if !weekdays.contains(&n) => weekdays.push(n),
                Some(_) => d.warn(
                    &w.span(),
                    format!("{what}: weekday {:?} listed twice", w.get_ref()),
                ),
                None => d.error(
                    &w.span(),
                    format!(
                        "{what}: {:?} is not a weekday (mon … sun, 周一 … 周日)",
                        w.get_ref()
                    ),
                ),
            }
        }
        if duty.weekdays.is_empty() {
            d.error(&span, format!("{what}: weekdays must not be empty"));
        }
        let mut time = |s: &Spanned<String>| {
            clock(s.get_ref()).unwrap_or_else(|| {
                d.error(
                    &s.span(),
                    format!("{what}: {:?} is not a time HH:MM", s.get_ref()),
                );
                0
            })
        };
        let from = time(&duty.from);
        let to = time(&duty.to);
        rosters.duty.push(Duty {
            role: duty.role.get_ref().clone(),
            description: duty.description.clone().unwrap_or_default(),
            members: duty.members.iter().map(|m| m.get_ref().clone()).collect(),
            weekdays,
            from,
            to,
        });
    }

    // Frequency, hot topics, similarity.
    let frequency = {
        let mut f = Frequency {
            window: Duration {
                amount: 30,
                unit: Unit::Days,
            },
            high: 10,
            many: 3,
        };
        if let Some(raw) = &raw.frequency {
            let span = raw.span();
            let raw = raw.get_ref();
            if let Some(w) = &raw.window
                && let Some(w) = duration(d, w, "frequency.window")
            {
                f.window = w;
            }
            if let Some(n) = &raw.high {
                f.high = positive(d, n, "frequency.high", 1, 1_000_000).unwrap_or(f.high);
            }
            if let Some(n) = &raw.many {
                f.many = positive(d, n, "frequency.many", 1, 1_000_000).unwrap_or(f.many);
            }
            if f.many >= f.high {
                d.error(
                    &span,
                    format!(
                        "frequency: many ({}) must be below high ({}): 多发 is fewer than 高发",
                        f.many, f.high
                    ),
                );
            }
        }
        f
    };
    let hot = {
        let mut h = Hot {
            window: Duration {
                amount: 24,
                unit: Unit::Hours,
            },
            threshold: 5,
            per: vec!["category".into(), "location".into()],
        };
        if let Some(raw) = &raw.hot {
            let raw = raw.get_ref();
            if let Some(w) = &raw.window
                && let Some(w) = duration(d, w, "hot.window")
            {
                h.window = w;
            }
            if let Some(n) = &raw.threshold {
                h.threshold = positive(d, n, "hot.threshold", 2, 1_000_000).unwrap_or(h.threshold);
            }
            if !raw.per.is_empty() {
                h.per.clear();
                for p in &raw.per {
                    if !HOT_KEYS.contains(&p.get_ref().as_str()) {
                        d.error(
                            &p.span(),
                            format!(
                                "hot.per: unknown key {:?} (known: {})",
                                p.get_ref(),
                                HOT_KEYS.join(", ")
                            ),
                        );
                    } else if h.per.contains(p.get_ref()) {
                        d.warn(
                            &p.span(),
                            format!("hot.per: {:?} listed twice", p.get_ref()),
                        );
                    } else {
                        h.per.push(p.get_ref().clone());
                    }
                }
            }
        }
        h
    };
    let similarity = {
        let mut s = Similarity {
            window_days: 30,
            max_distance: 3,
            same_place: false,
            group_min: 3,
        };
        if let Some(raw) = &raw.similarity {
            let raw = raw.get_ref();
            if let Some(n) = &raw.window_days {
                s.window_days =
                    positive(d, n, "similarity.window_days", 1, 3660).unwrap_or(s.window_days);
            }
            if let Some(n) = &raw.max_distance {
                s.max_distance =
                    positive(d, n, "similarity.max_distance", 0, 64).unwrap_or(s.max_distance);
            }
            if let Some(b) = raw.same_place {
                s.same_place = b;
            }
            if let Some(n) = &raw.group_min {
                s.group_min =
                    positive(d, n, "similarity.group_min", 2, 10_000).unwrap_or(s.group_min);
            }
        }
        s
    };

    Some(Policy {
        name,
        description: raw.description.unwrap_or_default(),
        version,
        time_zone,
        calendar,
        triage_department: triage_department?,
        classify_threshold,
        classifier_training_file: None,
        classifier_training: Vec::new(),
        departments,
        taxonomy,
        grading,
        routing,
        sla: sla?,
        pause_reasons,
        escalation,
        notify,
        rosters,
        frequency,
        hot,
        similarity,
        keywords,
        taxonomy_pos,
    })
}

/// Byte offset of a 1-based (line, column in characters) position.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(l.len(), |(o, _)| o);
        }
        offset += l.len();
    }
    text.len()
}

fn step_fields<'a>(
    acknowledge: &'a Option<Spanned<RawStep>>,
    dispatch: &'a Option<Spanned<RawStep>>,
    sign_off: &'a Option<Spanned<RawStep>>,
    first_contact: &'a Option<Spanned<RawStep>>,
    resolution: &'a Option<Spanned<RawStep>>,
    return_visit: &'a Option<Spanned<RawStep>>,
) -> [Option<&'a Spanned<RawStep>>; 6] {
    [
        acknowledge.as_ref(),
        dispatch.as_ref(),
        sign_off.as_ref(),
        first_contact.as_ref(),
        resolution.as_ref(),
        return_visit.as_ref(),
    ]
}

fn build_step(d: &mut Diags, raw: &Spanned<RawStep>, what: &str) -> StepTable {
    let mut table = StepTable::default();
    for (key, row) in raw.get_ref() {
        let span = row.span();
        let index = match key.as_str() {
            "default" => 0,
            "1" => 1,
            "2" => 2,
            "3" => 3,
            "4" => 4,
            other => {
                d.error(
                    &span,
                    format!("{what}: row {other:?} must be a grade 1–4 or `default`"),
                );
                continue;
            }
        };
        let row = row.get_ref();
        for (u, value) in [
            (Urgency::Normal, &row.normal),
            (Urgency::Expedited, &row.expedited),
            (Urgency::Urgent, &row.urgent),
        ] {
            if let Some(v) = value {
                table.rows[index][urgency_index(u)] = duration(d, v, &format!("{what}.{key}.{u}"));
            }
        }
    }
    table
}

fn build_sla(raw: &Spanned<RawSla>, d: &mut Diags) -> Option<Sla> {
    let span = raw.span();
    let raw = raw.get_ref();
    let mut steps = [StepTable::default(); 6];
    let fields = step_fields(
        &raw.acknowledge,
        &raw.dispatch,
        &raw.sign_off,
        &raw.first_contact,
        &raw.resolution,
        &raw.return_visit,
    );
    for (step, field) in Step::ALL.into_iter().zip(fields) {
        if let Some(field) = field {
            steps[step as usize] = build_step(d, field, &format!("sla.{step}"));
        }
    }
    // Resolution must be complete.
    match &raw.resolution {
        None => d.error(
            &span,
            "[sla] has no `resolution` table: a resolution target is required for every grade × urgency",
        ),
        Some(res) => {
            let table = steps[Step::Resolution as usize];
            for g in 1..=4u8 {
                let Ok(grade) = Grade::try_from(g) else { continue };
                for u in Urgency::ALL {
                    if table.get(grade, u).is_none() {
                        let at = res
                            .get_ref()
                            .get(&g.to_string())
                            .map_or_else(|| res.span(), Spanned::span);
                        d.error(
                            &at,
                            format!(
                                "sla.resolution: no target for grade {g} × {u} ({}): add `{u}` to row {g} or to the `default` row",
                                u.name_zh()
                            ),
                        );
                    }
                }
            }
        }
    }
    for (step, field) in Step::ALL.into_iter().zip(fields) {
        if step == Step::Resolution {
            continue;
        }
        if let Some(field) = field {
            let table = steps[step as usize];
            let missing: Vec<String> = (1..=4u8)
                .filter_map(|g| Grade::try_from(g).ok())
                .flat_map(|g| Urgency::ALL.into_iter().map(move |u| (g, u)))
                .filter(|(g, u)| table.get(*g, *u).is_none())
                .map(|(g, u)| format!("{g} × {u}"))
                .collect();
            if !missing.is_empty() {
                d.warn(
                    &field.span(),
                    format!(
                        "sla.{step}: no target for {} (no clock runs there; a `default` row fills the gaps)",
                        missing.join(", ")
                    ),
                );
            }
        }
    }
    let warnings = match &raw.warnings {
        None => vec![50, 80],
        Some(w) => {
            let mut out = Vec::new();
            for p in w.get_ref() {
                match u32::try_from(*p) {
                    Ok(p) if (1..100).contains(&p) && out.last().is_none_or(|l| *l < p) => {
                        out.push(p)
                    }
                    _ => d.error(
                        &w.span(),
                        format!(
                            "sla.warnings: {p}: percentages must rise and lie between 1 and 99"
                        ),
                    ),
                }
            }
            out
        }
    };
    let overlay = raw.overlay.as_ref().and_then(|o| {
        let o = o.get_ref();
        let duration_v = duration(d, &o.duration, "sla.overlay.duration")?;
        let mut extensions: Vec<Duration> = Vec::new();
        for e in &o.extensions {
            if let Some(x) = duration(d, e, "sla.overlay.extensions") {
                let previous = extensions.last().copied().unwrap_or(duration_v);
                if x.approx_minutes() <= previous.approx_minutes() {
                    d.warn(
                        &e.span(),
                        format!("sla.overlay: extension {x} is not longer than {previous}"),
                    );
                }
                extensions.push(x);
            }
        }
        if !is_code(o.name.get_ref()) {
            d.error(
                &o.name.span(),
                format!(
                    "sla.overlay.name {:?} must be [a-z0-9_-]+",
                    o.name.get_ref()
                ),
            );
        }
        Some(Overlay {
            name: o.name.get_ref().clone(),
            description: o.description.clone().unwrap_or_default(),
            duration: duration_v,
            extensions,
        })
    });
    let mut variants = BTreeMap::new();
    for (key, v) in &raw.variants {
        let vspan = v.span();
        let v = v.get_ref();
        if !is_code(key) {
            d.error(&vspan, format!("sla variant {key:?} must be [a-z0-9_-]+"));
        }
        let mut vsteps = [StepTable::default(); 6];
        let fields = step_fields(
            &v.acknowledge,
            &v.dispatch,
            &v.sign_off,
            &v.first_contact,
            &v.resolution,
            &v.return_visit,
        );
        for (step, field) in Step::ALL.into_iter().zip(fields) {
            if let Some(field) = field {
                vsteps[step as usize] = build_step(d, field, &format!("sla.variants.{key}.{step}"));
            }
        }
        if vsteps.iter().all(StepTable::is_empty) {
            d.warn(&vspan, format!("sla variant {key} overrides no target"));
        }
        variants.insert(
            key.clone(),
            SlaVariant {
                description: v.description.clone().unwrap_or_default(),
                steps: vsteps,
            },
        );
    }
    Some(Sla {
        warnings,
        overlay,
        steps,
        variants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_every_unit_and_refuse_the_rest() {
        let ok = [
            ("30m", 30, Unit::Minutes),
            ("24h", 24, Unit::Hours),
            ("4wh", 4, Unit::WorkingHours),
            ("5wd", 5, Unit::WorkingDays),
            ("15d", 15, Unit::Days),
            (" 2h ", 2, Unit::Hours),
        ];
        for (s, amount, unit) in ok {
            let d: Duration = s.parse().unwrap();
            assert_eq!((d.amount, d.unit), (amount, unit), "{s}");
        }
        assert_eq!("5wd".parse::<Duration>().unwrap().to_string(), "5wd");
        assert_eq!("2h".parse::<Duration>().unwrap().fixed_minutes(), Some(120));
        assert_eq!("3wd".parse::<Duration>().unwrap().fixed_minutes(), None);
        for (bad, why) in [
            ("", "expected a number"),
            ("h", "expected a number"),
            ("24", "missing unit"),
            ("5w", "unknown unit"),
            ("0h", "at least 1"),
            ("-3d", "expected a number"),
            ("99999999999d", "too large"),
            ("1.5h", "unknown unit"),
        ] {
            let e = bad.parse::<Duration>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn triggers_parse() {
        assert_eq!("80%".parse(), Ok(Trigger::Percent(80)));
        assert_eq!(
            "100% + 5wd".parse(),
            Ok(Trigger::PercentPlus(
                100,
                Duration {
                    amount: 5,
                    unit: Unit::WorkingDays
                }
            ))
        );
        assert_eq!(
            "30m".parse(),
            Ok(Trigger::After(Duration {
                amount: 30,
                unit: Unit::Minutes
            }))
        );
        assert!("0%".parse::<Trigger>().is_err());
        assert!("100% 5wd".parse::<Trigger>().is_err());
        assert!("abc%".parse::<Trigger>().is_err());
    }

    #[test]
    fn urgency_names_in_english_and_chinese() {
        assert_eq!(parse_urgency("urgent"), Ok(Urgency::Urgent));
        assert_eq!(parse_urgency("紧急"), Ok(Urgency::Urgent));
        assert_eq!(parse_urgency("加急"), Ok(Urgency::Expedited));
        assert_eq!(parse_urgency(" 一般 "), Ok(Urgency::Normal));
        assert!(parse_urgency("重要").is_err());
        assert!(parse_urgency("asap").is_err());
    }

    #[test]
    fn event_patterns() {
        assert!(event_matches("alert.*", "alert.hot"));
        assert!(!event_matches("alert.*", "alert.hot.x"));
        assert!(event_matches("complaint.>", "complaint.sla.breached"));
        assert!(!event_matches("complaint.>", "complaint"));
        assert!(event_matches("sla.breached", "sla.breached"));
        assert!(!event_matches("sla.breached", "sla.warning"));
        assert!(valid_event_pattern("complaint.*.x"));
        assert!(!valid_event_pattern("complaint.>.x"));
        assert!(!valid_event_pattern("Complaint"));
        assert!(!valid_event_pattern("a..b"));
    }

    #[test]
    fn duty_shifts_cover_their_hours_across_midnight() {
        let night = Duty {
            role: "duty_leader".into(),
            description: String::new(),
            members: vec!["a".into()],
            weekdays: vec![5],
            from: 22 * 60,
            to: 8 * 60,
        };
        assert!(night.covers(5, 23 * 60));
        assert!(night.covers(6, 7 * 60));
        assert!(!night.covers(6, 9 * 60));
        assert!(!night.covers(5, 7 * 60));
        assert_eq!(clock("24:00"), Some(1440));
        assert_eq!(clock("7:00"), None);
        assert_eq!(weekday("周日"), Some(7));
        assert_eq!(weekday("Mon"), Some(1));
    }
}
