//! The policy in force and its calendar: what each clock's target is, its
//! deadline and why, and when its warnings, breach and escalations fall.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use tousu_domain::calendar::Calendar;
use tousu_domain::clock::{Basis, Clock, Target};
use tousu_domain::{Grade, Urgency};
use tousu_policy::schema::{self, Policy, Step, Trigger};

/// The policy in force and its calendar; replaced whole on a reload.
pub struct Rules {
    pub policy: Policy,
    pub calendar: Option<Calendar>,
    /// Where calendars are (`<policies>/calendars`), for the calculator.
    pub calendars_dir: PathBuf,
}

/// A clock ready to store: the model, its deadline and why.
pub struct Armed {
    pub clock: Clock,
    pub deadline: OffsetDateTime,
    pub duration: String,
    pub explanation: String,
    pub calendar: String,
}

/// A fire to schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    pub at: OffsetDateTime,
    pub kind: Kind,
    pub arg: i32,
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sla.warning` at `arg` percent.
    Warning,
    /// `sla.breached`.
    Breach,
    /// `escalation.<level>` for ladder step `arg` (1-based).
    Escalation,
    /// Nobody acknowledged step `arg` in time: go up the ladder.
    AckTimeout,
    /// The pause reached its reason's cap: resume.
    PauseCap,
    /// Re-run the time-based grading rules at `arg` days open.
    Regrade,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Warning => "warning",
            Kind::Breach => "breach",
            Kind::Escalation => "escalation",
            Kind::AckTimeout => "ack_timeout",
            Kind::PauseCap => "pause_cap",
            Kind::Regrade => "regrade",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Warning,
            Kind::Breach,
            Kind::Escalation,
            Kind::AckTimeout,
            Kind::PauseCap,
            Kind::Regrade,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The key recorded in a clock's `fired` list once it went out, so a
    /// reschedule (resume, extension, recompute) never sends it twice.
    pub fn key(self, arg: i32) -> String {
        match self {
            Kind::Warning | Kind::Escalation | Kind::Regrade => format!("{}:{arg}", self.as_str()),
            _ => self.as_str().to_owned(),
        }
    }
}

/// The policy's step for a clock target (the overlay has none).
pub fn step(target: Target) -> Option<Step> {
    Some(match target {
        Target::Acknowledge => Step::Acknowledge,
        Target::Dispatch => Step::Dispatch,
        Target::SignOff => Step::SignOff,
        Target::FirstContact => Step::FirstContact,
        Target::Resolution => Step::Resolution,
        Target::ReturnVisit => Step::ReturnVisit,
        Target::Overlay => return None,
    })
}

/// Loads the calendar a policy names from `<dir>/calendars/<name>`.
fn load_calendar(dir: &Path, policy: &Policy) -> anyhow::Result<Option<Calendar>> {
    let Some(name) = &policy.calendar else {
        return Ok(None);
    };
    Calendar::load(&dir.join("calendars"), name)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("calendar {name} of policy {}: {e}", policy.name))
}

/// Wall-clock length of a duration without a calendar (`Nd` as N × 24 h,
/// working units as their rough equivalent).
fn wall(d: schema::Duration) -> time::Duration {
    let n = i64::from(d.amount);
    match d.unit {
        schema::Unit::Seconds => time::Duration::seconds(n),
        _ => time::Duration::minutes(d.approx_minutes().min(i64::MAX as u64 / 60) as i64),
    }
}

impl Rules {
    /// `dir`: the policies directory (calendars are in `dir/calendars`).
    pub fn new(policy: Policy, dir: &Path) -> anyhow::Result<Rules> {
        let calendar = load_calendar(dir, &policy)?;
        Ok(Rules {
            policy,
            calendar,
            calendars_dir: dir.join("calendars"),
        })
    }

    pub fn version(&self) -> &str {
        &self.policy.version
    }

    pub fn basis(&self, clock: &Clock) -> Basis<'_> {
        clock.basis(self.calendar.as_ref())
    }

    /// The duration of `target` for a complaint, `None` when the policy
    /// sets no clock for it.
    pub fn target(
        &self,
        target: Target,
        grade: Grade,
        urgency: Urgency,
        variant: Option<&str>,
    ) -> Option<schema::Duration> {
        match step(target) {
            Some(step) => self.policy.sla_target(step, grade, urgency, variant),
            None => self.policy.sla.overlay.as_ref().map(|o| o.duration),
        }
    }

    /// A clock for `target` from `started`, `None` when the policy has no
    /// target for it.
    pub fn arm(
        &self,
        target: Target,
        started: OffsetDateTime,
        grade: Grade,
        urgency: Urgency,
        variant: Option<&str>,
    ) -> Option<Armed> {
        let duration = self.target(target, grade, urgency, variant)?;
        let head = match step(target) {
            Some(_) => format!(
                "{target}: grade {grade} ({}) × {} ({}){} → {duration}, policy {}",
                grade.name_zh(),
                urgency,
                urgency.name_zh(),
                variant
                    .map(|v| format!(", variant {v}"))
                    .unwrap_or_default(),
                self.policy.name
            ),
            None => format!(
                "{target}: regulatory clock {} → {duration} (never paused), policy {}",
                self.policy
                    .sla
                    .overlay
                    .as_ref()
                    .map_or("", |o| o.name.as_str()),
                self.policy.name
            ),
        };
        Some(self.arm_for(target, started, duration, &head))
    }

    /// A clock of `duration` from `started`, explained after `head`.
    pub fn arm_for(
        &self,
        target: Target,
        started: OffsetDateTime,
        duration: schema::Duration,
        head: &str,
    ) -> Armed {
        let pausable = target != Target::Overlay;
        let fallback = |why: String| {
            let at = started + wall(duration);
            Armed {
                clock: Clock::wall(target, started, at, pausable),
                deadline: at,
                duration: duration.to_string(),
                explanation: format!("{head}; {why}: counted as calendar time"),
                calendar: String::new(),
            }
        };
        match &self.calendar {
            Some(cal) => match cal.deadline(started, &duration.to_calendar()) {
                Ok(d) => {
                    let basis = if duration.is_working_time() {
                        Basis::Working(cal)
                    } else {
                        Basis::Wall
                    };
                    match Clock::new(target, basis, started, d.at, pausable) {
                        Ok(clock) => Armed {
                            clock,
                            deadline: d.at,
                            duration: duration.to_string(),
                            explanation: format!("{head}; {}", d.explanation),
                            calendar: cal.name().to_owned(),
                        },
                        Err(e) => fallback(e.to_string()),
                    }
                }
                Err(e) => fallback(e.to_string()),
            },
            None if !duration.is_working_time() => {
                let at = started + wall(duration);
                Armed {
                    clock: Clock::wall(target, started, at, pausable),
                    deadline: at,
                    duration: duration.to_string(),
                    explanation: format!("{head} (24×7, ends {at})"),
                    calendar: String::new(),
                }
            }
            None => fallback("the policy names no calendar".into()),
        }
    }

    /// `from` + `duration` on the calendar (the deadline arithmetic of
    /// extensions and escalation delays), wall time without one.
    pub fn add(&self, from: OffsetDateTime, duration: schema::Duration) -> OffsetDateTime {
        self.calendar
            .as_ref()
            .and_then(|c| c.deadline_at(from, &duration.to_calendar()).ok())
            .unwrap_or_else(|| from + wall(duration))
    }

    /// The instant a ladder trigger falls on `clock`.
    fn trigger_at(&self, clock: &Clock, trigger: Trigger) -> Option<OffsetDateTime> {
        let basis = self.basis(clock);
        match trigger {
            Trigger::Percent(p) => clock.at_percent(basis, p).ok().flatten(),
            Trigger::After(d) => Some(self.add(clock.started, d)),
            Trigger::PercentPlus(p, d) => clock
                .at_percent(basis, p)
                .ok()
                .flatten()
                .map(|at| self.add(at, d)),
        }
    }

    /// The fires a running clock still has ahead: warnings at the policy's
    /// percentages, the breach, and (resolution only) the escalation
    /// ladder; a paused clock has only its pause cap. Fires already sent
    /// (`fired`) are left out.
    pub fn schedule(&self, clock: &Clock, urgency: Urgency, fired: &[String]) -> Vec<Fire> {
        let mut out = Vec::new();
        let sent = |kind: Kind, arg: i32| fired.iter().any(|f| *f == kind.key(arg));
        if let Some(p) = clock.open_pause() {
            if let Some(at) = p.cap_at {
                out.push(Fire {
                    at,
                    kind: Kind::PauseCap,
                    arg: 0,
                });
            }
            return out;
        }
        let basis = self.basis(clock);
        for &w in &self.policy.sla.warnings {
            let arg = i32::try_from(w).unwrap_or(i32::MAX);
            if w >= 100 || sent(Kind::Warning, arg) {
                continue;
            }
            if let Ok(Some(at)) = clock.at_percent(basis, w) {
                out.push(Fire {
                    at,
                    kind: Kind::Warning,
                    arg,
                });
            }
        }
        if !sent(Kind::Breach, 0)
            && let Ok(Some(at)) = clock.deadline(basis)
        {
            out.push(Fire {
                at,
                kind: Kind::Breach,
                arg: 0,
            });
        }
        if clock.target == Target::Resolution {
            for (i, level) in self.policy.escalation.iter().enumerate() {
                let arg = i32::try_from(i + 1).unwrap_or(i32::MAX);
                if sent(Kind::Escalation, arg) {
                    continue;
                }
                if let Some(at) = self.trigger_at(clock, level.after(urgency)) {
                    out.push(Fire {
                        at,
                        kind: Kind::Escalation,
                        arg,
                    });
                }
            }
        }
        out
    }

    /// Days-open thresholds of the policy's time-based grading rules
    /// (`days_open >= 7`), at which sla re-runs them.
    pub fn regrade_days(&self) -> Vec<i32> {
        let mut days: Vec<i32> = self
            .policy
            .grading
            .iter()
            .filter_map(|r| r.matches.when.as_ref())
            .flat_map(|c| days_thresholds(c.source()))
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }
}

/// The N of every `days_open >= N` / `days_open > N` in a CEL condition.
fn days_thresholds(source: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find("days_open") {
        rest = &rest[i + "days_open".len()..];
        let t = rest.trim_start();
        let (strict, t) = if let Some(t) = t.strip_prefix(">=") {
            (false, t)
        } else if let Some(t) = t.strip_prefix('>') {
            (true, t)
        } else {
            continue;
        };
        let digits: String = t
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse::<i32>() {
            out.push(if strict { n + 1 } else { n });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_from_conditions() {
        assert_eq!(days_thresholds("days_open >= 30 && delay_ours"), vec![30]);
        assert_eq!(
            days_thresholds("days_open > 6 || days_open>=30"),
            vec![7, 30]
        );
        assert_eq!(days_thresholds("days_open == 3"), Vec::<i32>::new());
        assert_eq!(days_thresholds("grade == 1"), Vec::<i32>::new());
    }

    #[test]
    fn fire_keys_name_the_percent_or_step() {
        assert_eq!(Kind::Warning.key(80), "warning:80");
        assert_eq!(Kind::Breach.key(0), "breach");
        assert_eq!(Kind::Escalation.key(2), "escalation:2");
        assert_eq!(Kind::parse("ack_timeout"), Some(Kind::AckTimeout));
        assert_eq!(Kind::parse("nope"), None);
    }
}
