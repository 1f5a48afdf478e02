//! `tousu notify log|retry`: the delivery log of a running notify, through
//! its API (`/v1/deliveries`).

use serde_json::Value;

#[derive(clap::Args)]
pub struct Conn {
    /// Base URL of the notify service.
    #[arg(
        long,
        env = "TOUSU_NOTIFY_URL",
        default_value = "http://127.0.0.1:8083"
    )]
    url: String,
}

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this complaint's deliveries (its id).
    #[arg(long)]
    complaint: Option<String>,
    /// Only deliveries in this status: pending, delivered, dead, digested, collecting (a digest filling up), suppressed, cancelled.
    #[arg(long)]
    status: Option<String>,
    /// Only this recipient (roster member id, or `complainant`).
    #[arg(long)]
    recipient: Option<String>,
    /// Only this channel (email, sms, wecom, dingtalk, feishu, webhook, wechat).
    #[arg(long)]
    channel: Option<String>,
    /// Newest first, at most this many (1–1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Also print every attempt of each delivery.
    #[arg(long)]
    attempts: bool,
}

impl Conn {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<(u16, Value)> {
        crate::api::call(&self.url, method, path, query, None).await
    }
}

fn fail(status: u16, body: &Value) -> anyhow::Error {
    crate::api::fail("notify", status, body)
}

/// At most `n` characters of `text` on one line.
fn cut(text: &str, n: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= n {
        return one_line;
    }
    let mut s: String = one_line.chars().take(n.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn opt_num(v: &Value) -> String {
    v.as_i64().map_or_else(|| "-".into(), |n| n.to_string())
}

/// `2026-11-25T22:08:01.123456Z` → `2026-11-25 22:08:01`.
fn when(v: &Value) -> String {
    v.as_str().map_or_else(
        || "-".into(),
        |s| s.replace('T', " ").chars().take(19).collect(),
    )
}

fn row(d: &Value) -> String {
    let last = d["attempt_log"].as_array().and_then(|a| a.last());
    let latency = last
        .and_then(|a| a["latency_ms"].as_i64())
        .map_or_else(|| "-".into(), |ms| format!("{ms} ms"));
    let mut note: Vec<String> = Vec::new();
    if d["late"].as_bool() == Some(true) {
        note.push("late".into());
    }
    if let Some(of) = d["fallback_of"].as_i64() {
        note.push(format!("fallback of {of}"));
    }
    if let Some(e) = d["last_error"].as_str().filter(|e| !e.is_empty()) {
        note.push(e.to_owned());
    }
    let error = note.join("; ");
    format!(
        "{:<7} {:<10} {:<9} {:<20} {:<18} {:>5} {:>4} {:>8}  {:<19}  {}",
        opt_num(&d["id"]),
        cut(d["status"].as_str().unwrap_or("?"), 10),
        cut(d["channel"].as_str().unwrap_or("?"), 9),
        cut(d["recipient"].as_str().unwrap_or("?"), 20),
        cut(d["event_type"].as_str().unwrap_or("?"), 18),
        opt_num(&d["attempts"]),
        opt_num(&d["last_status"]),
        latency,
        when(&d["created_at"]),
        cut(&error, 80),
    )
}

fn attempt_line(a: &Value) -> String {
    format!(
        "        #{:<3} {}  {:<10} {:>4} {:>6} ms  {}",
        opt_num(&a["attempt"]),
        when(&a["at"]),
        a["outcome"].as_str().unwrap_or("?"),
        opt_num(&a["status_code"]),
        opt_num(&a["latency_ms"]),
        cut(a["error"].as_str().unwrap_or(""), 100),
    )
}

/// The table `tousu notify log` prints for a list of deliveries.
pub fn table(deliveries: &[Value], with_attempts: bool) -> String {
    let mut out = format!(
        "{:<7} {:<10} {:<9} {:<20} {:<18} {:>5} {:>4} {:>8}  {:<19}  {}\n",
        "ID",
        "STATUS",
        "CHANNEL",
        "RECIPIENT",
        "EVENT",
        "TRIES",
        "CODE",
        "LATENCY",
        "CREATED",
        "ERROR"
    );
    for d in deliveries {
        out.push_str(&row(d));
        out.push('\n');
        if with_attempts {
            for a in d["attempt_log"].as_array().into_iter().flatten() {
                out.push_str(&attempt_line(a));
                out.push('\n');
            }
        }
    }
    out
}

pub async fn log(args: &LogArgs) -> anyhow::Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    for (key, value) in [
        ("complaint", &args.complaint),
        ("status", &args.status),
        ("recipient", &args.recipient),
        ("channel", &args.channel),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    let (status, body) = args
        .conn
        .call(reqwest::Method::GET, "/v1/deliveries", &query)
        .await?;
    if status != 200 {
        return Err(fail(status, &body));
    }
    let deliveries = body["deliveries"].as_array().cloned().unwrap_or_default();
    if deliveries.is_empty() {
        println!("no deliveries");
        return Ok(());
    }
    print!("{}", table(&deliveries, args.attempts));
    Ok(())
}

pub async fn retry(conn: &Conn, id: i64) -> anyhow::Result<()> {
    let (status, body) = conn
        .call(
            reqwest::Method::POST,
            &format!("/v1/deliveries/{id}/retry"),
            &[],
        )
        .await?;
    if status != 200 {
        return Err(fail(status, &body));
    }
    println!(
        "delivery {id} is {} again (after {} attempts), due now",
        body["status"].as_str().unwrap_or("?"),
        opt_num(&body["attempts"])
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_shows_attempts_code_latency_and_error() {
        let d = json!({
            "id": 17, "status": "dead", "channel": "webhook", "recipient": "ops-hook",
            "event_type": "sla.breached", "attempts": 3, "last_status": 500,
            "last_error": "HTTP 500: upstream\nbroken", "created_at": "2026-11-25T22:08:01.5Z",
            "attempt_log": [
                {"attempt": 1, "at": "2026-11-25T22:08:01.6Z", "outcome": "transient", "status_code": 500, "latency_ms": 4, "error": "HTTP 500"},
                {"attempt": 3, "at": "2026-11-25T22:08:04Z", "outcome": "transient", "status_code": 500, "latency_ms": 12, "error": "HTTP 500"}
            ]
        });
        let t = table(&[d], true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("ID") && lines[0].contains("LATENCY"));
        for part in [
            "17",
            "dead",
            "webhook",
            "sla.breached",
            "3",
            "500",
            "12 ms",
            "2026-11-25 22:08:01",
            "HTTP 500: upstream broken",
        ] {
            assert!(lines[1].contains(part), "{part} missing in {}", lines[1]);
        }
        assert!(lines[2].contains("#1") && lines[2].contains("transient"));
        let fallback = json!({"id": 18, "status": "delivered", "late": true, "fallback_of": 17});
        let t = table(&[fallback], false);
        assert!(t.contains("late; fallback of 17"), "{t}");
        let pending = json!({"id": 2, "status": "pending", "attempts": 0, "attempt_log": []});
        let t = table(&[pending], false);
        assert!(t.lines().nth(1).unwrap().contains(" - "), "{t}");
    }

    #[test]
    fn cut_keeps_one_line_and_whole_characters() {
        assert_eq!(cut("短信网关超时", 4), "短信网…");
        assert_eq!(cut("a\nb", 10), "a b");
    }
}
