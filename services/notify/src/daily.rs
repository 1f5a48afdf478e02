//! The daily digest of open major complaints (domain.md §7: leadership
//! gets one): once a day at `notify_major_digest_at` (policy time zone),
//! each `[[notify]]` rule with event `digest.major` sends its roles' members
//! one message listing every grade-1 complaint that is still open (up to
//! 100, oldest first, with tracking number, summary, department, days open
//! and console link). No open major complaint: nothing is sent.
//!
//! Exactly one per day and recipient across replicas: the deliveries' cause
//! id is derived from the date, so a second replica's rows hit the unique
//! key and are dropped. A replica that was down at the time sends it when
//! it comes up, the same day.

use std::sync::Mutex;

use serde_json::json;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::plan::{Fallback, Loaded, Planner, Row, local_time, rule_key};
use crate::recipients::{self, Scope};
use crate::templates::Audience;

/// The event type of the digest and of the rules that ask for it.
pub const EVENT: &str = "digest.major";

/// Complaints listed in one digest.
const LISTED: i64 = 100;

/// When the digest goes out, and the last day it was looked at here.
pub struct Daily {
    at: Option<(u8, u8)>,
    done: Mutex<Option<Date>>,
}

#[derive(sqlx::FromRow)]
struct Open {
    complaint_id: Uuid,
    tracking_no: String,
    summary: String,
    department: Option<String>,
    received_at: Option<OffsetDateTime>,
    /// Open major complaints in all (the list stops at `LISTED`).
    total: i64,
}

impl Daily {
    pub fn new(config: &tousu_kit::Config) -> Self {
        Daily {
            at: tousu_kit::config::hh_mm(&config.notify_major_digest_at),
            done: Mutex::new(None),
        }
    }

    /// The cause id of the digest of `date` (the same on every replica).
    pub fn cause(date: Date) -> Uuid {
        let hash = Sha256::digest(format!("{EVENT}:{date}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// Sends today's digest when it is due and not yet looked at; how many
    /// deliveries were added.
    pub async fn fire_due(&self, pool: &PgPool, planner: &Planner) -> anyhow::Result<u64> {
        let Some((hour, minute)) = self.at else {
            return Ok(0);
        };
        let loaded = planner.loaded();
        let now = OffsetDateTime::now_utc();
        let local = now.to_offset(loaded.offset(now));
        let today = local.date();
        let due = time::Time::from_hms(hour, minute, 0)?;
        let done = *self.done.lock().unwrap_or_else(|e| e.into_inner());
        if local.time() < due || done == Some(today) {
            return Ok(0);
        }
        let added = send(pool, planner, &loaded, today, now).await?;
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(today);
        Ok(added)
    }
}

/// Plans `today`'s digest; how many deliveries were added.
async fn send(
    pool: &PgPool,
    planner: &Planner,
    loaded: &Loaded,
    today: Date,
    now: OffsetDateTime,
) -> anyhow::Result<u64> {
    let policy = &loaded.policy;
    let rules: Vec<_> = policy.notify.iter().filter(|r| r.event == EVENT).collect();
    if rules.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let open: Vec<Open> = sqlx::query_as(
        "SELECT complaint_id, tracking_no, summary, department, received_at,
                 count(*) OVER () AS total
             FROM complaint_facts WHERE grade = 1 AND NOT closed
             ORDER BY received_at NULLS LAST, complaint_id LIMIT $1",
    )
    .bind(LISTED)
    .fetch_all(&mut *tx)
    .await?;
    let Some(count) = open.first().map(|o| o.total) else {
        return Ok(0);
    };
    let offset = loaded.offset(now);
    let items: Vec<_> = open
        .iter()
        .map(|o| {
            let department = o.department.clone().unwrap_or_default();
            let department_name = policy
                .departments
                .get(department.as_str())
                .map_or_else(|| department.clone(), |d| d.name.clone());
            json!({
                "tracking_no": o.tracking_no,
                "summary": o.summary,
                "department": department,
                "department_name": department_name,
                "received": o.received_at.map(|t| local_time(t, offset)).unwrap_or_default(),
                "days": o.received_at.map_or(0, |t| (now - t).whole_days()),
                "link": planner.link(o.complaint_id),
            })
        })
        .collect();
    let cause = Daily::cause(today);
    let scope = Scope {
        department: None,
        handler: None,
        co_departments: &[],
    };
    let mut rows = Vec::new();
    for rule in rules {
        for role in &rule.roles {
            for m in recipients::members(policy, role, &scope, now, offset) {
                let mut reachable = recipients::reachable(&rule.channels, &m.contacts);
                if reachable.is_empty() {
                    continue;
                }
                let (channel, address) = reachable.remove(0);
                let ctx = json!({
                    "event_type": EVENT,
                    "recipient": { "id": m.id, "name": m.name },
                    "link": "",
                    "digest": {
                        "date": today.to_string(),
                        "time": local_time(now, offset),
                        "count": count,
                        "more": (count - items.len() as i64).max(0),
                        "items": items,
                    },
                });
                let mut message = planner
                    .templates
                    .render("zh-CN", Audience::Staff, EVENT, &ctx);
                message.event_type = EVENT.into();
                message.event_id = cause.to_string();
                message.data = json!({
                    "event_type": EVENT,
                    "date": today.to_string(),
                    "count": count,
                    "complaint_ids": open.iter().map(|o| o.complaint_id.to_string()).collect::<Vec<_>>(),
                });
                rows.push(Row {
                    cause_event_id: cause,
                    complaint_id: Uuid::nil(),
                    event_type: EVENT.into(),
                    recipient: m.id.clone(),
                    channel: channel.to_owned(),
                    status: "pending".into(),
                    detail: format!("daily digest of {count} open major complaints"),
                    address: address.to_owned(),
                    endpoint: planner.channels.endpoint(channel, address),
                    message,
                    rule: rule_key(rule),
                    event_at: now,
                    next_attempt_at: now,
                    step: 0,
                    ack_token: None,
                    digest_of: None,
                    due_by: None,
                    fallbacks: reachable
                        .into_iter()
                        .map(|(channel, address)| Fallback {
                            channel: channel.to_owned(),
                            address: address.to_owned(),
                        })
                        .collect(),
                });
            }
        }
    }
    let added = crate::plan::insert(&mut tx, &rows).await?;
    tx.commit().await?;
    if added > 0 {
        planner.announcer.poke();
        tracing::info!(%today, open = count, deliveries = added, "daily digest of open major complaints");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn one_cause_per_day() {
        let a = Daily::cause(date!(2026 - 11 - 26));
        assert_eq!(a, Daily::cause(date!(2026 - 11 - 26)));
        assert_ne!(a, Daily::cause(date!(2026 - 11 - 27)));
    }
}
