//! Who is told: a rule's roles → roster members (or the complainant) → one
//! channel and address each, with duty schedules and quiet hours.
//!
//! - `handler`: the assigned handler when known and on the roster, else
//!   the department's handlers (its `handlers` list and members of the
//!   department declaring the role `handler`).
//! - `department_head`: the department's `head` (and members of the
//!   department declaring `department_head`).
//! - `co_departments`: the heads of the co-handling departments.
//! - any other role (`complaint_centre`, `leadership`, `duty_leader`, a
//!   role of the policy's own): when the policy has `[[rosters.duty]]`
//!   shifts for the role, the members on duty at that moment in the
//!   policy's time zone; with nobody on duty (or no shifts), every member
//!   holding the role or named in one of its shifts.
//! - `complainant`: their own channel (see [`complainant_channel`]).
//!
//! Channel: the rule's `channels` in order, the first the member has a
//! contact for (one channel per member, not all of them); the member's
//! other channels among the rule's are its fallbacks, tried only when that
//! one fails (dead, or retrying past the rule's `within`).

use std::collections::BTreeMap;

use time::{OffsetDateTime, UtcOffset};
use tousu_domain::Grade;
use tousu_policy::schema::{Member, Policy};

use crate::model::CHANNELS;

/// The recipient id of the complainant in `deliveries.recipient`.
pub const COMPLAINANT: &str = "complainant";

/// Where a notice is about: what the roles are resolved against.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The handling department.
    pub department: Option<&'a str>,
    /// The assigned handler (roster member id), when known.
    pub handler: Option<&'a str>,
    pub co_departments: &'a [String],
}

/// Weekday (1 = Monday … 7 = Sunday) and minute of the day of `at` in the
/// policy's time zone.
pub fn local(at: OffsetDateTime, offset: UtcOffset) -> (u8, u16) {
    let l = at.to_offset(offset);
    (
        l.weekday().number_from_monday(),
        u16::from(l.hour()) * 60 + u16::from(l.minute()),
    )
}

fn member<'p>(policy: &'p Policy, id: &str) -> Option<&'p Member> {
    policy.rosters.members.iter().find(|m| m.id == id)
}

fn in_department(m: &Member, department: &str) -> bool {
    m.department
        .as_ref()
        .is_some_and(|d| d.as_str() == department)
}

fn push_unique<'p>(out: &mut Vec<&'p Member>, m: &'p Member) {
    if !out.iter().any(|o| o.id == m.id) {
        out.push(m);
    }
}

/// The roster members holding `role` for a notice in `scope` at `at`.
/// `complainant` resolves to nobody here (see [`complainant_channel`]).
pub fn members<'p>(
    policy: &'p Policy,
    role: &str,
    scope: &Scope<'_>,
    at: OffsetDateTime,
    offset: UtcOffset,
) -> Vec<&'p Member> {
    let mut out = Vec::new();
    match role {
        COMPLAINANT => {}
        "handler" => {
            if let Some(m) = scope.handler.and_then(|h| member(policy, h)) {
                out.push(m);
                return out;
            }
            let Some(dept) = scope.department else {
                return out;
            };
            if let Some(d) = policy.departments.get(dept) {
                for id in &d.handlers {
                    if let Some(m) = member(policy, id) {
                        push_unique(&mut out, m);
                    }
                }
            }
            for m in &policy.rosters.members {
                if in_department(m, dept) && m.roles.iter().any(|r| r == "handler") {
                    push_unique(&mut out, m);
                }
            }
        }
        "department_head" => {
            let Some(dept) = scope.department else {
                return out;
            };
            if let Some(m) = policy
                .departments
                .get(dept)
                .and_then(|d| d.head.as_deref())
                .and_then(|h| member(policy, h))
            {
                out.push(m);
            }
            for m in &policy.rosters.members {
                if in_department(m, dept) && m.roles.iter().any(|r| r == "department_head") {
                    push_unique(&mut out, m);
                }
            }
        }
        "co_departments" => {
            for dept in scope.co_departments {
                if let Some(m) = policy
                    .departments
                    .get(dept.as_str())
                    .and_then(|d| d.head.as_deref())
                    .and_then(|h| member(policy, h))
                {
                    push_unique(&mut out, m);
                }
            }
        }
        _ => {
            let shifts: Vec<_> = policy
                .rosters
                .duty
                .iter()
                .filter(|d| d.role == role)
                .collect();
            if !shifts.is_empty() {
                let (weekday, minute) = local(at, offset);
                out = policy.rosters.on_duty(role, weekday, minute);
                if !out.is_empty() {
                    return out;
                }
                tracing::warn!(
                    role,
                    weekday,
                    minute,
                    "nobody on duty; telling everyone holding the role"
                );
            }
            for m in &policy.rosters.members {
                let named = shifts.iter().any(|s| s.members.contains(&m.id));
                if named || m.roles.iter().any(|r| r == role) {
                    push_unique(&mut out, m);
                }
            }
        }
    }
    out
}

/// Whether a member is one of the handling department's own people (who
/// see the complainant's contacts unmasked): a member of the department,
/// its head or one of its handlers, or the assigned handler.
pub fn is_insider(
    policy: &Policy,
    m: &Member,
    department: Option<&str>,
    handler: Option<&str>,
) -> bool {
    if handler == Some(m.id.as_str()) {
        return true;
    }
    let Some(dept) = department else {
        return false;
    };
    in_department(m, dept)
        || policy
            .departments
            .get(dept)
            .is_some_and(|d| d.head.as_deref() == Some(m.id.as_str()) || d.handlers.contains(&m.id))
}

/// Every one of `channels` (in order) this member has a contact for, with
/// the address; only channels notify speaks ([`CHANNELS`]). The first is
/// the member's channel, the others its fallbacks.
pub fn reachable<'a>(
    channels: &'a [String],
    contacts: &'a BTreeMap<String, String>,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for c in channels {
        let Some(address) = contacts.get(c).map(|a| a.trim()) else {
            continue;
        };
        if CHANNELS.contains(&c.as_str())
            && !address.is_empty()
            && !out.iter().any(|(seen, _)| *seen == c.as_str())
        {
            out.push((c.as_str(), address));
        }
    }
    out
}

/// Whether `at` falls in the quiet hours `(from, to)` (minutes of the day
/// in the policy's time zone; `to ≤ from` runs past midnight): the end of
/// them, when it does.
pub fn quiet_until(
    quiet: Option<(u16, u16)>,
    at: OffsetDateTime,
    offset: UtcOffset,
) -> Option<OffsetDateTime> {
    let (from, to) = quiet?;
    if from == to {
        return None;
    }
    let (_, minute) = local(at, offset);
    let quiet = if from < to {
        (from..to).contains(&minute)
    } else {
        minute >= from || minute < to
    };
    if !quiet {
        return None;
    }
    let l = at.to_offset(offset);
    let end_time =
        time::Time::from_hms(u8::try_from(to / 60).ok()?, u8::try_from(to % 60).ok()?, 0).ok()?;
    let mut end = l.replace_time(end_time);
    if end <= l {
        end += time::Duration::days(1);
    }
    Some(end.to_offset(UtcOffset::UTC))
}

/// When a notice to a member is sent: `due`, or the end of their quiet
/// hours for every grade but 1 (major complaints reach them at once).
pub fn deferred(
    member: &Member,
    grade: Grade,
    due: OffsetDateTime,
    offset: UtcOffset,
) -> Option<OffsetDateTime> {
    if grade == Grade::MAJOR {
        return None;
    }
    quiet_until(member.quiet_hours, due, offset)
}

/// The complainant's contacts, from `complaint.received`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Complainant {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub wechat_openid: String,
    pub anonymous: bool,
}

/// How to answer the complainant on their own channel (the
/// `Acknowledgement` of `complaint.received`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AckFacts {
    /// The channel the complaint came in on (`email`, `wechat`, `phone`,
    /// `webform`, `forum`, `manual`).
    pub channel: String,
    pub address: String,
    /// Email: the Message-ID to answer and the subject.
    pub reply_message_id: String,
    pub subject: String,
    /// `zh` or `en`.
    pub language: String,
    /// Intake already gave the tracking number in its answer.
    pub answered_inline: bool,
}

/// A complainant's address on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplainantAddress {
    pub channel: String,
    pub address: String,
    /// Email replies: the original Message-ID (threading).
    pub in_reply_to: String,
}

/// The complainant's channel for a rule listing `channels`: their own
/// channel (the one the complaint came in on: an email reply threaded to
/// their message, WeChat to their openid, SMS to the phone of a phone or
/// web-form complaint) when the rule lists it, else the first of the
/// rule's channels they left a contact for. `None` for anonymous
/// complainants and when nothing fits.
pub fn complainant_channel(
    channels: &[String],
    who: &Complainant,
    ack: Option<&AckFacts>,
) -> Option<ComplainantAddress> {
    if who.anonymous {
        return None;
    }
    let listed = |c: &str| channels.iter().any(|x| x == c);
    if let Some(ack) = ack.filter(|a| !a.address.trim().is_empty()) {
        let own = match ack.channel.as_str() {
            "email" => Some("email"),
            "wechat" => Some("wechat"),
            "forum" => None,
            _ if ack.address.contains('@') => Some("email"),
            _ => Some("sms"),
        };
        if let Some(own) = own.filter(|c| listed(c)) {
            return Some(ComplainantAddress {
                channel: own.into(),
                address: ack.address.trim().into(),
                in_reply_to: if own == "email" {
                    ack.reply_message_id.clone()
                } else {
                    String::new()
                },
            });
        }
    }
    channels.iter().find_map(|c| {
        let address = match c.as_str() {
            "sms" => &who.phone,
            "email" => &who.email,
            "wechat" => &who.wechat_openid,
            _ => return None,
        };
        (!address.trim().is_empty()).then(|| ComplainantAddress {
            channel: c.clone(),
            address: address.trim().into(),
            in_reply_to: String::new(),
        })
    })
}

/// The complainant's contacts on the rule's other channels (not `chosen`),
/// in the rule's order: where to try when `chosen` fails.
pub fn complainant_fallbacks(
    channels: &[String],
    who: &Complainant,
    chosen: &str,
) -> Vec<(String, String)> {
    if who.anonymous {
        return Vec::new();
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for c in channels.iter().filter(|c| c.as_str() != chosen) {
        let address = match c.as_str() {
            "sms" => who.phone.trim(),
            "email" => who.email.trim(),
            "wechat" => who.wechat_openid.trim(),
            _ => continue,
        };
        if !address.is_empty() && !out.iter().any(|(seen, _)| seen == c) {
            out.push((c.clone(), address.to_owned()));
        }
    }
    out
}

/// `zh-CN` or `en` from an Acknowledgement's `zh` / `en` (and the like).
pub fn language(tag: &str) -> &'static str {
    if tag.trim().to_ascii_lowercase().starts_with("en") {
        "en"
    } else {
        "zh-CN"
    }
}

/// A small policy for the planner's unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use time::UtcOffset;
    use tousu_policy::schema::Policy;

    pub const POLICY: &str = r#"
name = "t"
time_zone = "Asia/Shanghai"
triage_department = "service"

[departments.service]
name = "Centre"
head = "chen"
handlers = ["liu"]

[departments.quality]
name = "Quality"
head = "sun"
handlers = ["ma", "he"]

[[taxonomy]]
code = "other"
name = "Other"
keywords = { "x" = 1.0 }

[[grading]]
id = "g"
grade = 4

[[routing]]
id = "r"
department = "service"

[sla.resolution]
default = { urgent = "24h", expedited = "3d", normal = "5d" }

[[escalation]]
level = "breach"
role = "department_head"
after = "100%"
needs_ack = true
ack_within = "2h"
channels = ["sms", "email"]

[[notify]]
event = "complaint.received"
roles = ["complainant"]
channels = ["sms", "email", "wechat"]

[[notify]]
event = "alert.major"
min_grade = 1
roles = ["duty_leader", "leadership"]
channels = ["sms", "wecom"]
repeat = "1d"
ack_within = "30m"

[[notify]]
event = "sla.*"
roles = ["handler", "department_head"]
channels = ["wecom", "email"]

[[notify]]
event = "complaint.assigned"
roles = ["handler", "complaint_centre"]
channels = ["wecom", "email"]

[[rosters.members]]
id = "chen"
name = "陈静"
roles = ["complaint_centre"]
department = "service"
contacts = { email = "chen@example.com", wecom = "chenjing" }

[[rosters.members]]
id = "liu"
name = "刘洋"
department = "service"
contacts = { email = "liu@example.com" }

[[rosters.members]]
id = "sun"
name = "孙浩"
department = "quality"
contacts = { sms = "+8613800000001", email = "sun@example.com" }
quiet_hours = "22:00-07:00"

[[rosters.members]]
id = "ma"
name = "马丽"
department = "quality"
contacts = { wecom = "mali" }

[[rosters.members]]
id = "he"
name = "何军"
department = "quality"
contacts = { phone = "+8613800000009" }

[[rosters.members]]
id = "wang"
name = "王刚"
roles = ["leadership", "duty_leader"]
contacts = { sms = "+8613800000002" }

[[rosters.members]]
id = "li"
name = "李娜"
roles = ["leadership", "duty_leader"]
contacts = { sms = "+8613800000003" }

[[rosters.duty]]
role = "duty_leader"
members = ["wang"]
weekdays = ["mon", "tue", "wed", "thu", "fri"]
from = "08:30"
to = "17:30"

[[rosters.duty]]
role = "duty_leader"
members = ["li"]
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
from = "17:30"
to = "08:30"
"#;

    pub fn policy() -> Policy {
        match Policy::from_toml(POLICY, "t.toml") {
            Ok((p, _)) => p,
            Err(d) => panic!("{d:?}"),
        }
    }

    pub const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
        Ok(o) => o,
        Err(_) => UtcOffset::UTC,
    };
}

#[cfg(test)]
mod tests {
    use super::fixture::{CST, policy};
    use super::*;
    use time::macros::datetime;

    fn ids(ms: &[&Member]) -> Vec<String> {
        ms.iter().map(|m| m.id.clone()).collect()
    }

    fn scope<'a>(dept: Option<&'a str>, handler: Option<&'a str>) -> Scope<'a> {
        Scope {
            department: dept,
            handler,
            co_departments: &[],
        }
    }

    #[test]
    fn the_duty_leader_follows_the_schedule_across_midnight() {
        let p = policy();
        let s = scope(None, None);
        // Wednesday 10:00 CST: the day shift.
        let wed_day = datetime!(2026-01-07 02:00 UTC);
        assert_eq!(ids(&members(&p, "duty_leader", &s, wed_day, CST)), ["wang"]);
        // Wednesday 23:00 CST: the night shift that started Wednesday.
        let wed_night = datetime!(2026-01-07 15:00 UTC);
        assert_eq!(ids(&members(&p, "duty_leader", &s, wed_night, CST)), ["li"]);
        // Saturday 03:00 CST belongs to Friday's night shift.
        let sat_early = datetime!(2026-01-09 19:00 UTC);
        assert_eq!(ids(&members(&p, "duty_leader", &s, sat_early, CST)), ["li"]);
        // Saturday 10:00 CST: no shift covers it; everyone holding the role.
        let sat_day = datetime!(2026-01-10 02:00 UTC);
        assert_eq!(
            ids(&members(&p, "duty_leader", &s, sat_day, CST)),
            ["wang", "li"]
        );
        // Leadership has no shifts: every member with the role.
        assert_eq!(
            ids(&members(&p, "leadership", &s, wed_day, CST)),
            ["wang", "li"]
        );
    }

    #[test]
    fn handler_head_and_centre() {
        let p = policy();
        let at = datetime!(2026-01-07 02:00 UTC);
        // The assigned handler when known…
        let s = scope(Some("quality"), Some("he"));
        assert_eq!(ids(&members(&p, "handler", &s, at, CST)), ["he"]);
        // …else the department's handlers; an unknown handler id too.
        let s = scope(Some("quality"), Some("nobody"));
        assert_eq!(ids(&members(&p, "handler", &s, at, CST)), ["ma", "he"]);
        assert_eq!(ids(&members(&p, "department_head", &s, at, CST)), ["sun"]);
        assert_eq!(ids(&members(&p, "complaint_centre", &s, at, CST)), ["chen"]);
        // No department: no handler, no head.
        let s = scope(None, None);
        assert!(members(&p, "handler", &s, at, CST).is_empty());
        assert!(members(&p, "department_head", &s, at, CST).is_empty());
        // Co-departments: their heads.
        let co = vec!["service".to_owned(), "quality".to_owned()];
        let s = Scope {
            department: Some("quality"),
            handler: None,
            co_departments: &co,
        };
        assert_eq!(
            ids(&members(&p, "co_departments", &s, at, CST)),
            ["chen", "sun"]
        );
    }

    #[test]
    fn insiders_are_the_handling_departments_people() {
        let p = policy();
        let by = |id: &str| p.rosters.members.iter().find(|m| m.id == id).expect(id);
        // Members of the department, by roster department.
        assert!(is_insider(&p, by("sun"), Some("quality"), None));
        assert!(is_insider(&p, by("ma"), Some("quality"), None));
        // The centre and leadership are not, unless the centre handles it.
        assert!(!is_insider(&p, by("chen"), Some("quality"), None));
        assert!(is_insider(&p, by("chen"), Some("service"), None));
        assert!(!is_insider(&p, by("wang"), Some("quality"), None));
        // The assigned handler always is; nobody is without a department.
        assert!(is_insider(&p, by("wang"), Some("quality"), Some("wang")));
        assert!(!is_insider(&p, by("sun"), None, None));
    }

    #[test]
    fn the_listed_channels_with_a_contact_in_the_rules_order() {
        let p = policy();
        let sun = &p.rosters.members[2];
        let chans = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let wecom_sms = chans(&["wecom", "sms"]);
        assert_eq!(
            reachable(&wecom_sms, &sun.contacts),
            [("sms", "+8613800000001")]
        );
        // The first is the member's channel, the rest its fallbacks; a
        // channel listed twice counts once.
        let email_sms = chans(&["email", "sms", "email"]);
        assert_eq!(
            reachable(&email_sms, &sun.contacts),
            [("email", "sun@example.com"), ("sms", "+8613800000001")]
        );
        // `phone` is a contact kind notify cannot send on.
        let he = &p.rosters.members[4];
        let phone = chans(&["phone", "wecom"]);
        assert!(reachable(&phone, &he.contacts).is_empty());
    }

    #[test]
    fn the_complainants_fallbacks_are_the_rules_other_channels() {
        let chans = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let who = Complainant {
            phone: "13812345678".into(),
            email: " zhang@example.com ".into(),
            ..Complainant::default()
        };
        let rule = chans(&["sms", "email", "wechat"]);
        assert_eq!(
            complainant_fallbacks(&rule, &who, "sms"),
            [("email".to_owned(), "zhang@example.com".to_owned())]
        );
        assert_eq!(
            complainant_fallbacks(&rule, &who, "email"),
            [("sms".to_owned(), "13812345678".to_owned())]
        );
        let anonymous = Complainant {
            anonymous: true,
            ..who
        };
        assert!(complainant_fallbacks(&rule, &anonymous, "sms").is_empty());
    }

    #[test]
    fn quiet_hours_defer_every_grade_but_one() {
        let p = policy();
        let sun = &p.rosters.members[2];
        // 23:30 CST is in 22:00-07:00: deferred to 07:00 CST next day.
        let late = datetime!(2026-01-07 15:30 UTC);
        let until = deferred(sun, Grade::GENERAL, late, CST);
        assert_eq!(until, Some(datetime!(2026-01-07 23:00 UTC)));
        assert_eq!(deferred(sun, Grade::HOT, late, CST), until);
        // Grade 1 is never held back.
        assert_eq!(deferred(sun, Grade::MAJOR, late, CST), None);
        // 06:59 CST: still quiet, until 07:00 the same day.
        let early = datetime!(2026-01-07 22:59 UTC);
        assert_eq!(
            deferred(sun, Grade::GENERAL, early, CST),
            Some(datetime!(2026-01-07 23:00 UTC))
        );
        // 07:00 and 21:59 CST: not quiet.
        assert_eq!(
            deferred(sun, Grade::GENERAL, datetime!(2026-01-07 23:00 UTC), CST),
            None
        );
        assert_eq!(
            deferred(sun, Grade::GENERAL, datetime!(2026-01-07 13:59 UTC), CST),
            None
        );
        // A member without quiet hours.
        let chen = &p.rosters.members[0];
        assert_eq!(deferred(chen, Grade::GENERAL, late, CST), None);
        // Daytime quiet hours (from < to).
        assert_eq!(
            quiet_until(Some((720, 780)), datetime!(2026-01-07 04:30 UTC), CST),
            Some(datetime!(2026-01-07 05:00 UTC))
        );
    }

    #[test]
    fn the_complainant_is_answered_on_their_own_channel() {
        let chans = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rule = chans(&["sms", "email", "wechat"]);
        let who = Complainant {
            name: "张三".into(),
            phone: "13812345678".into(),
            email: "zhang@example.com".into(),
            ..Default::default()
        };
        // An email complaint: an email reply threaded to the message, even
        // though the rule lists SMS first.
        let email = AckFacts {
            channel: "email".into(),
            address: "zhang@example.com".into(),
            reply_message_id: "<m1@example.com>".into(),
            language: "zh".into(),
            ..Default::default()
        };
        assert_eq!(
            complainant_channel(&rule, &who, Some(&email)),
            Some(ComplainantAddress {
                channel: "email".into(),
                address: "zhang@example.com".into(),
                in_reply_to: "<m1@example.com>".into(),
            })
        );
        // WeChat: the openid.
        let wechat = AckFacts {
            channel: "wechat".into(),
            address: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
            ..Default::default()
        };
        let got = complainant_channel(&rule, &who, Some(&wechat));
        assert_eq!(got.map(|a| a.channel), Some("wechat".into()));
        // A phone complaint: SMS.
        let phone = AckFacts {
            channel: "phone".into(),
            address: "13812345678".into(),
            ..Default::default()
        };
        let got = complainant_channel(&rule, &who, Some(&phone));
        assert_eq!(
            got.map(|a| (a.channel, a.address)),
            Some(("sms".into(), "13812345678".into()))
        );
        // The rule does not list their channel: the first listed they have.
        let only_email = chans(&["email"]);
        let got = complainant_channel(&only_email, &who, Some(&phone));
        assert_eq!(
            got,
            Some(ComplainantAddress {
                channel: "email".into(),
                address: "zhang@example.com".into(),
                in_reply_to: String::new(),
            })
        );
        // A forum complaint with no other contact, and anonymous ones: nobody.
        let forum = AckFacts {
            channel: "forum".into(),
            address: "zhangsan".into(),
            ..Default::default()
        };
        assert_eq!(
            complainant_channel(&rule, &Complainant::default(), Some(&forum)),
            None
        );
        let anon = Complainant {
            anonymous: true,
            ..who.clone()
        };
        assert_eq!(complainant_channel(&rule, &anon, Some(&email)), None);
    }

    #[test]
    fn languages() {
        assert_eq!(language("en"), "en");
        assert_eq!(language("en-GB"), "en");
        assert_eq!(language("zh"), "zh-CN");
        assert_eq!(language(""), "zh-CN");
    }
}
