//! `tousu sla deadline`: the deadline calculator, with exactly the code the
//! clocks use (`tousu_domain::calendar`), on the calendars shipped under
//! `policies/calendars/` — or asked of a running sla with `--url`.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_domain::calendar::{Calendar, Duration, SkipReason};

/// Prints the deadline of `duration` from `from` on `calendar`.
pub async fn deadline(
    from: &str,
    duration: &str,
    calendar: &str,
    calendars: &Path,
    url: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(url) = url {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/v1/calendar/deadline",
                url.trim_end_matches('/')
            ))
            .query(&[
                ("from", from),
                ("duration", duration),
                ("calendar", calendar),
            ])
            .send()
            .await?;
        let ok = r.status().is_success();
        let body: serde_json::Value = r.json().await?;
        anyhow::ensure!(ok, "{}", body["detail"].as_str().unwrap_or("sla refused"));
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let from = OffsetDateTime::parse(from.trim(), &Rfc3339)
        .map_err(|e| anyhow::anyhow!("--from {from:?}: not an RFC 3339 time: {e}"))?;
    let duration: Duration = duration
        .parse()
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let cal = Calendar::load(calendars, calendar)
        .map_err(|e| anyhow::anyhow!("calendar {calendar}: {e}"))?;
    let d = cal.deadline(from, &duration)?;
    println!(
        "deadline: {} ({} in {})",
        d.at.format(&Rfc3339)?,
        d.at.to_offset(local_offset(&cal, d.at)).format(&Rfc3339)?,
        cal.time_zone()
    );
    for s in &d.skipped {
        let why = match &s.reason {
            SkipReason::Weekend => "weekend".to_owned(),
            SkipReason::Holiday(name) => format!("holiday: {name}"),
        };
        println!("  skipped {}  {why}", s.date);
    }
    for m in &d.makeup_days {
        println!(
            "  counted {}  make-up working day (调休): {}",
            m.date, m.name
        );
    }
    println!("{}", d.explanation);
    Ok(())
}

/// The calendar's UTC offset at `t` (its working intervals know it).
fn local_offset(cal: &Calendar, t: OffsetDateTime) -> time::UtcOffset {
    cal.utc_offset(t).unwrap_or(time::UtcOffset::UTC)
}
