//! Calls to a running service's HTTP API for the commands that read or
//! change its state (`tousu notify …`, `tousu quarantine …`).

use anyhow::Context as _;
use serde_json::Value;

/// `method` `base` + `path` with `query` (and a bearer token): the status
/// and the body as JSON (a body that is not JSON as a JSON string).
pub async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    bearer: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method.clone(), &url)
        .query(query);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.context("reading the response")?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// The error for an answer that is not the one expected: the problem's
/// `detail`, or the whole body.
pub fn fail(service: &str, status: u16, body: &Value) -> anyhow::Error {
    let detail = body["detail"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    anyhow::anyhow!("{service} answered {status}: {detail}")
}
