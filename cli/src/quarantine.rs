//! `tousu quarantine list|show|replay`: the rejected input intake keeps,
//! through its quarantine API (`/v1/quarantine`).

use serde_json::Value;

#[derive(clap::Args)]
pub struct Conn {
    /// Base URL of the intake service.
    #[arg(
        long,
        env = "TOUSU_INTAKE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// API key, when intake requires one (`api_keys`).
    #[arg(long, env = "TOUSU_API_KEY")]
    api_key: Option<String>,
}

impl Conn {
    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<(u16, Value)> {
        crate::api::call(&self.url, method, path, &[], self.api_key.as_deref()).await
    }
}

fn fail(status: u16, body: &Value) -> anyhow::Error {
    crate::api::fail("intake", status, body)
}

pub async fn list(conn: &Conn, channel: Option<String>, limit: u32) -> anyhow::Result<()> {
    let mut path = format!("/v1/quarantine?limit={limit}");
    if let Some(c) = channel {
        path.push_str(&format!("&channel={c}"));
    }
    let (status, body) = conn.call(reqwest::Method::GET, &path).await?;
    if status != 200 {
        return Err(fail(status, &body));
    }
    let entries = body["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        println!("quarantine is empty");
    }
    for e in entries {
        let replayed = match e["replay_result"].as_str() {
            Some(r) => format!("  replayed: {}", r.chars().take(60).collect::<String>()),
            None => String::new(),
        };
        println!(
            "{:>6}  {}  {:<8} {}  {} B  {}{replayed}",
            e["id"],
            e["received_at"].as_str().unwrap_or_default(),
            e["channel"].as_str().unwrap_or_default(),
            e["status"],
            e["size"],
            e["reason"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}

pub async fn show(conn: &Conn, id: i64) -> anyhow::Result<()> {
    let (status, body) = conn
        .call(reqwest::Method::GET, &format!("/v1/quarantine/{id}"))
        .await?;
    if status != 200 {
        return Err(fail(status, &body));
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

pub async fn replay(conn: &Conn, id: i64) -> anyhow::Result<()> {
    let (status, body) = conn
        .call(
            reqwest::Method::POST,
            &format!("/v1/quarantine/{id}/replay"),
        )
        .await?;
    println!("{status} {}", serde_json::to_string_pretty(&body)?);
    if !(200..300).contains(&status) {
        anyhow::bail!("replay of entry {id} was rejected again ({status})");
    }
    Ok(())
}
