//! `tousu submit`: a sample web-form complaint (`POST /v1/complaints`).

use anyhow::Context as _;
use serde_json::{Value, json};

const SAMPLE: &str = "我上周在网上下单的快递到现在还没送到，物流信息三天没有更新，\
    打客服电话也一直没人接。请尽快查明快递延误的原因并送达。";

/// The sample complaint, as a web form would post it.
fn sample(description: Option<String>) -> Value {
    json!({
        "title": "快递延误",
        "description": description.unwrap_or_else(|| SAMPLE.to_owned()),
        "name": "张先生",
        "phone": "13812345678",
        "product": "快递服务",
        "demand": "尽快送达，说明延误原因",
    })
}

pub async fn run(url: &str, description: Option<String>) -> anyhow::Result<()> {
    let endpoint = format!("{}/v1/complaints", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .json(&sample(description))
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    let body = response.text().await.context("reading the response")?;
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let shown = parsed
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| body.clone());
    if !status.is_success() {
        anyhow::bail!("POST {endpoint}: {status}\n{shown}");
    }
    if let Some(v) = &parsed {
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        println!("id:          {}", field("id"));
        println!("tracking_no: {}", field("tracking_no"));
    }
    println!("{status}\n{shown}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_a_valid_web_form() {
        let v = sample(None);
        assert!(v["description"].as_str().unwrap().contains("快递"));
        assert_eq!(v["phone"], "13812345678");
        assert_eq!(sample(Some("x".into()))["description"], "x");
    }
}
