//! Throttling: more than `notify_digest_threshold` `sla.warning` /
//! `sla.breached` notices for one department and recipient within
//! `notify_digest_window_secs` become one digest.
//!
//! A window opens with the first such notice for a department and
//! recipient (when none is open) and lasts the window length. The first
//! *threshold* notices in it go out as usual. The next one creates the
//! window's digest delivery (status `collecting`, due when the window
//! closes) and, like every later one, is stored `digested` with `digest_of`
//! pointing at it. When the window closes (plus a [`GRACE`] of 2 s) the
//! digest is rendered listing the notices folded into it and becomes
//! `pending`: the sender sends it
//! like any other delivery. So N notices in one window send
//! `min(N, threshold) + (N > threshold ? 1 : 0)` messages to that
//! recipient. Grade-1 complaints and notices that need an acknowledgement
//! are never folded.

use serde_json::json;
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use tousu_bus::HandleError;
use uuid::Uuid;

use crate::model::Message;
use crate::plan::{Loaded, Planner, Row, local_time};
use crate::templates::Audience;

/// The event type and rule of digest deliveries.
pub const DIGEST: &str = "digest";
/// How long after its window a digest is closed: notices counted at the
/// very end of the window are committed by then.
pub const GRACE: time::Duration = time::Duration::seconds(2);
/// Folded notices listed in a digest; the rest are counted.
pub const LISTED: i64 = 50;

/// What happens to the n-th notice of a window (1-based) with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent as usual.
    Send,
    /// The first one over the threshold: opens the digest, folded into it.
    OpenDigest,
    /// Folded into the window's digest.
    Fold,
}

/// The fate of the `n`-th notice of a window.
pub fn fate(n: i64, threshold: u32) -> Fate {
    let t = i64::from(threshold);
    if n <= t {
        Fate::Send
    } else if n == t + 1 {
        Fate::OpenDigest
    } else {
        Fate::Fold
    }
}

/// Messages that go out for `n` notices in one window.
pub fn messages_sent(n: u64, threshold: u32) -> u64 {
    let t = u64::from(threshold);
    n.min(t) + u64::from(n > t)
}

/// Counts `row` in its department and recipient's window; the digest it
/// must be folded into, if any (creating it when this is the first notice
/// over the threshold).
///
/// The counter and the digest row are written on the planner's counter
/// pool ([`Planner::counters`]): single statements committed at once,
/// without waiting for the disk (`synchronous_commit = off`). Counting in
/// the planner's own transaction would serialize every planner on the
/// window's row until each one's commit during exactly the bursts digests
/// are for. The price: an event whose planning fails after counting (and
/// is retried) counts twice, and a crash of Postgres may forget the last
/// increments — a few more notices then go out on their own; a digest
/// nothing ended up folded into is dropped when its window closes.
pub async fn fold(
    planner: &Planner,
    loaded: &Loaded,
    department: &str,
    row: &Row,
) -> Result<Option<i64>, HandleError> {
    let window = planner.digest_window.as_seconds_f64();
    let (count, opened_at, closes_at, cause): (i32, OffsetDateTime, OffsetDateTime, Uuid) =
        sqlx::query_as(
            "INSERT INTO digest_windows AS w (department, recipient, opened_at, closes_at, count,
                 digest_cause)
             VALUES ($1, $2, now(), now() + $3::float8 * interval '1 second', 1, gen_random_uuid())
             ON CONFLICT (department, recipient) DO UPDATE SET
                 count = CASE WHEN w.closes_at <= now() THEN 1 ELSE w.count + 1 END,
                 digest_cause = CASE WHEN w.closes_at <= now()
                     THEN gen_random_uuid() ELSE w.digest_cause END,
                 opened_at = CASE WHEN w.closes_at <= now() THEN now() ELSE w.opened_at END,
                 closes_at = CASE WHEN w.closes_at <= now()
                     THEN now() + $3::float8 * interval '1 second' ELSE w.closes_at END
             RETURNING count, opened_at, closes_at, digest_cause",
        )
        .bind(department)
        .bind(&row.recipient)
        .bind(window)
        .fetch_one(&planner.counters)
        .await?;
    if fate(i64::from(count), planner.digest_threshold) == Fate::Send {
        return Ok(None);
    }
    // The window's digest: created by the first notice over the threshold,
    // found by the others (one row per digest cause, recipient and channel).
    let offset = loaded.offset(closes_at);
    let placeholder = Message {
        language: "zh-CN".into(),
        event_type: DIGEST.into(),
        data: json!({
            "department": department,
            "opened_at": local_time(opened_at, offset),
            "closes_at": local_time(closes_at, offset),
        }),
        ..Message::default()
    };
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (cause_event_id, complaint_id, event_type, recipient,
             channel, status, attempts, detail, address, endpoint, message, rule,
             event_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, 'collecting', 0, $6, $7, $8, $9, $3, now(), $10)
         ON CONFLICT (cause_event_id, recipient, channel)
             DO UPDATE SET updated_at = deliveries.updated_at
         RETURNING id",
    )
    .bind(cause)
    .bind(Uuid::nil())
    .bind(DIGEST)
    .bind(&row.recipient)
    .bind(&row.channel)
    .bind(format!(
        "collecting notices for {department} until {}",
        local_time(closes_at, offset)
    ))
    .bind(&row.address)
    .bind(&row.endpoint)
    .bind(Json(&placeholder))
    .bind(closes_at)
    .fetch_one(&planner.counters)
    .await?;
    Ok(Some(id))
}

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    recipient: String,
    message: Option<Json<Message>>,
}

#[derive(sqlx::FromRow)]
struct Item {
    subject: Option<String>,
    link: Option<String>,
    tracking_no: Option<String>,
    event_type: String,
    complaint_id: Uuid,
    event_at: Option<OffsetDateTime>,
}

/// Renders and releases the digests whose window has closed; how many.
pub async fn close_due(pool: &PgPool, planner: &Planner) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, recipient, message FROM deliveries
         WHERE status = 'collecting' AND next_attempt_at <= now() - $1::float8 * interval '1 second'
         ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .bind(GRACE.as_seconds_f64())
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let loaded = planner.loaded();
    let now = OffsetDateTime::now_utc();
    let offset = loaded.offset(now);
    let mut released = 0;
    for d in &due {
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM deliveries WHERE digest_of = $1")
                .bind(d.id)
                .fetch_one(&mut *tx)
                .await?;
        if count == 0 {
            sqlx::query(
                "UPDATE deliveries SET status = 'cancelled', detail = 'nothing was folded into it',
                     updated_at = now() WHERE id = $1",
            )
            .bind(d.id)
            .execute(&mut *tx)
            .await?;
            continue;
        }
        let items: Vec<Item> = sqlx::query_as(
            "SELECT message->>'subject' AS subject, message->>'link' AS link,
                 message->>'tracking_no' AS tracking_no, event_type, complaint_id, event_at
             FROM deliveries WHERE digest_of = $1 ORDER BY id LIMIT $2",
        )
        .bind(d.id)
        .bind(LISTED)
        .fetch_all(&mut *tx)
        .await?;
        let placeholder = d.message.as_ref().map(|m| m.0.clone()).unwrap_or_default();
        let department = placeholder.data["department"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let department_name = loaded
            .policy
            .departments
            .get(department.as_str())
            .map_or_else(|| department.clone(), |x| x.name.clone());
        let name = loaded
            .policy
            .rosters
            .members
            .iter()
            .find(|m| m.id == d.recipient)
            .map_or_else(|| d.recipient.clone(), |m| m.name.clone());
        let window_secs = planner.digest_window.whole_seconds().max(0) as u64;
        let ctx = json!({
            "event_type": DIGEST,
            "recipient": { "id": d.recipient, "name": name },
            "link": "",
            "digest": {
                "count": count,
                "more": (count - items.len() as i64).max(0),
                "department": department,
                "department_name": department_name,
                "window": window_text(window_secs),
                "from": placeholder.data["opened_at"],
                "to": placeholder.data["closes_at"],
                "items": items.iter().map(|i| json!({
                    "subject": i.subject.clone().unwrap_or_else(|| i.event_type.clone()),
                    "link": i.link.clone().unwrap_or_default(),
                    "tracking_no": i.tracking_no.clone().unwrap_or_default(),
                    "event_type": i.event_type,
                    "time": i.event_at.map(|t| local_time(t, offset)).unwrap_or_default(),
                })).collect::<Vec<_>>(),
            },
        });
        let mut message = planner
            .templates
            .render("zh-CN", Audience::Staff, DIGEST, &ctx);
        message.data = json!({
            "event_type": DIGEST,
            "department": department,
            "recipient": d.recipient,
            "count": count,
            "complaint_ids": items.iter().map(|i| i.complaint_id.to_string()).collect::<Vec<_>>(),
        });
        sqlx::query(
            "UPDATE deliveries SET status = 'pending', message = $2, next_attempt_at = now(),
                 detail = $3, updated_at = now()
             WHERE id = $1",
        )
        .bind(d.id)
        .bind(Json(&message))
        .bind(format!("digest of {count} notices for {department}"))
        .execute(&mut *tx)
        .await?;
        released += 1;
    }
    if released > 0 {
        crate::send::announce(&mut tx).await?;
    }
    tx.commit().await?;
    metrics::counter!("tousu_notify_digests_total").increment(released as u64);
    Ok(released)
}

fn window_text(seconds: u64) -> String {
    if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{} 小时", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} 分钟", seconds / 60)
    } else {
        format!("{seconds} 秒")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_n_go_out_then_one_digest() {
        assert_eq!(fate(1, 10), Fate::Send);
        assert_eq!(fate(10, 10), Fate::Send);
        assert_eq!(fate(11, 10), Fate::OpenDigest);
        assert_eq!(fate(12, 10), Fate::Fold);
        assert_eq!(fate(100, 10), Fate::Fold);
        // Threshold 0: the first notice already opens the digest.
        assert_eq!(fate(1, 0), Fate::OpenDigest);
        // 100 warnings, threshold 10: 10 messages and one digest of 90.
        assert_eq!(messages_sent(100, 10), 11);
        assert_eq!(messages_sent(10, 10), 10);
        assert_eq!(messages_sent(11, 10), 11);
        assert_eq!(messages_sent(100, 3), 4);
        assert_eq!(messages_sent(100, 0), 1);
        assert_eq!(messages_sent(0, 3), 0);
        // Every notice is either sent or folded: sent + folded = n.
        for n in 0..50u64 {
            for t in 0..12u32 {
                let folded = (1..=n as i64).filter(|&i| fate(i, t) != Fate::Send).count() as u64;
                let sent_alone = n - folded;
                assert_eq!(sent_alone + u64::from(folded > 0), messages_sent(n, t));
            }
        }
    }

    #[test]
    fn window_texts() {
        assert_eq!(window_text(300), "5 分钟");
        assert_eq!(window_text(7200), "2 小时");
        assert_eq!(window_text(45), "45 秒");
    }
}
