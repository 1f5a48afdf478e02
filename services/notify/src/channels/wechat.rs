//! The complainant's WeChat: a customer-service message (客服消息) to their
//! openid through the official account's API (`notify_wechat_api`):
//! `GET {api}/cgi-bin/token?grant_type=client_credential&appid=…&secret=…`
//! gives an access token, cached until shortly before it expires; `POST
//! {api}/cgi-bin/message/custom/send?access_token=…` with
//! `{"touser":openid,"msgtype":"text","text":{"content":…}}` sends. An
//! invalid or expired token (40001, 40014, 42001) is dropped and the send
//! retried once with a fresh one. 45015 (the complainant has not written
//! within 48 hours) and 45047 (too many messages since) are permanent;
//! -1 (busy) and 45009 (rate limit) transient.

use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tousu_kit::Config;

use super::{
    SendError, Sent, cut_bytes, execute, permanent, plain_body, setting_url, short, transient,
};
use crate::model::Message;

/// WeChat's text content limit.
const CONTENT_MAX: usize = 2048;

pub(super) struct WeChat {
    http: reqwest::Client,
    api: reqwest::Url,
    app_id: String,
    secret: String,
    token: Mutex<Option<Token>>,
}

struct Token {
    value: String,
    refresh_at: Instant,
}

/// What a send with one token came to.
enum Outcome {
    Done(Result<Sent, SendError>),
    /// The token was refused: drop it and try once more.
    StaleToken(String),
}

impl WeChat {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<Option<WeChat>> {
        if config.wechat_app_id.trim().is_empty() || config.notify_wechat_secret.trim().is_empty() {
            return Ok(None);
        }
        let api = setting_url("notify_wechat_api", &config.notify_wechat_api)?
            .ok_or_else(|| anyhow::anyhow!("notify_wechat_api: empty"))?;
        Ok(Some(WeChat {
            http,
            api,
            app_id: config.wechat_app_id.trim().to_owned(),
            secret: config.notify_wechat_secret.trim().to_owned(),
            token: Mutex::new(None),
        }))
    }

    /// One endpoint for every openid: the account's API.
    pub(super) fn endpoint(&self) -> String {
        super::url_endpoint(
            "wechat",
            &self.api,
            &self.path("cgi-bin/message/custom/send"),
            "",
        )
    }

    fn path(&self, tail: &str) -> String {
        format!("{}/{tail}", self.api.path().trim_end_matches('/'))
    }

    fn url(&self, tail: &str) -> reqwest::Url {
        let mut url = self.api.clone();
        url.set_path(&self.path(tail));
        url.set_query(None);
        url
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        if address.is_empty()
            || address.len() > 128
            || !address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(permanent(None, "wechat: the address is not an openid"));
        }
        let body = json!({
            "touser": address,
            "msgtype": "text",
            "text": {"content": cut_bytes(&plain_body(message), CONTENT_MAX)},
        });
        let token = self.token().await?;
        match self.send_with(&token, &body).await? {
            Outcome::Done(result) => result,
            Outcome::StaleToken(_) => {
                self.drop_token(&token).await;
                let token = self.token().await?;
                match self.send_with(&token, &body).await? {
                    Outcome::Done(result) => result,
                    Outcome::StaleToken(detail) => {
                        self.drop_token(&token).await;
                        Err(transient(
                            Some(200),
                            format!("wechat: a fresh access token was refused too ({detail})"),
                        ))
                    }
                }
            }
        }
    }

    async fn send_with(&self, token: &str, body: &serde_json::Value) -> Result<Outcome, SendError> {
        let mut url = self.url("cgi-bin/message/custom/send");
        url.query_pairs_mut().append_pair("access_token", token);
        let answer = execute(self.http.post(url).json(body)).await?;
        if answer.retryable() {
            return Ok(Outcome::Done(answer.into_result()));
        }
        let Some((code, msg)) = answer.json().as_ref().and_then(super::wecom::errcode) else {
            // WeChat always answers an errcode: not retried, it may have
            // been delivered.
            return Ok(Outcome::Done(Err(permanent(
                Some(answer.status),
                format!(
                    "wechat: HTTP {}: answer without an errcode: {}",
                    answer.status,
                    short(&answer.body)
                ),
            ))));
        };
        let detail = short(&format!("errcode {code}: {msg}"));
        Ok(Outcome::Done(match code {
            0 if answer.ok() => Ok(Sent {
                status: answer.status,
                detail,
            }),
            40001 | 40014 | 42001 => return Ok(Outcome::StaleToken(detail)),
            -1 | 45009 => Err(answer.transient(format!("wechat: {detail}"))),
            45015 => Err(permanent(
                Some(answer.status),
                format!("wechat: outside the 48-hour customer-service window ({detail})"),
            )),
            _ => Err(permanent(Some(answer.status), format!("wechat: {detail}"))),
        }))
    }

    /// The cached token, or a new one (one fetch at a time).
    async fn token(&self) -> Result<String, SendError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let mut url = self.url("cgi-bin/token");
        url.query_pairs_mut()
            .append_pair("grant_type", "client_credential")
            .append_pair("appid", &self.app_id)
            .append_pair("secret", &self.secret);
        let answer = execute(self.http.get(url)).await?;
        if answer.retryable() {
            return Err(answer.transient(format!(
                "wechat token: HTTP {}: {}",
                answer.status,
                short(&answer.body)
            )));
        }
        let json = answer.json().unwrap_or_default();
        if let Some(value) = json.get("access_token").and_then(|v| v.as_str())
            && !value.is_empty()
        {
            let expires_in = json
                .get("expires_in")
                .and_then(|v| v.as_u64())
                .unwrap_or(7200);
            let token = Token {
                value: value.to_owned(),
                refresh_at: Instant::now() + refresh_after(expires_in),
            };
            let value = token.value.clone();
            *slot = Some(token);
            return Ok(value);
        }
        let Some((code, msg)) = super::wecom::errcode(&json) else {
            return Err(permanent(
                Some(answer.status),
                format!(
                    "wechat token: HTTP {}: no access_token in the answer: {}",
                    answer.status,
                    short(&answer.body)
                ),
            ));
        };
        let detail = format!(
            "wechat token: HTTP {}, errcode {code}: {}",
            answer.status,
            short(&msg)
        );
        // -1: busy; 45009: rate limit. Others (40013 bad appid, 40125 bad
        // secret, 40164 IP not whitelisted …) need an operator.
        if matches!(code, -1 | 45009) {
            Err(answer.transient(detail))
        } else {
            Err(permanent(Some(answer.status), detail))
        }
    }

    /// Forgets `token` unless another send already replaced it.
    async fn drop_token(&self, token: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == token) {
            *slot = None;
        }
    }
}

/// A token is used until 5 minutes before it expires (half its life when
/// that is shorter).
fn refresh_after(expires_in: u64) -> Duration {
    let early = if expires_in > 600 {
        expires_in - 300
    } else {
        expires_in / 2
    };
    Duration::from_millis(early.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_refresh_early() {
        assert_eq!(refresh_after(7200), Duration::from_secs(6900));
        assert_eq!(refresh_after(600), Duration::from_secs(300));
        assert_eq!(refresh_after(1), Duration::ZERO);
    }

    #[test]
    fn urls_keep_a_base_path() {
        let mut config = Config::defaults("notify");
        config.wechat_app_id = "wx123".into();
        config.notify_wechat_secret = "s".into();
        config.notify_wechat_api = "http://127.0.0.1:9000/wx/".into();
        let w = WeChat::new(&config, reqwest::Client::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            w.url("cgi-bin/token").as_str(),
            "http://127.0.0.1:9000/wx/cgi-bin/token"
        );
        assert_eq!(
            w.endpoint(),
            "wechat:127.0.0.1:9000/wx/cgi-bin/message/custom/send"
        );
        config.notify_wechat_api = "https://api.weixin.qq.com".into();
        let w = WeChat::new(&config, reqwest::Client::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            w.url("cgi-bin/message/custom/send").as_str(),
            "https://api.weixin.qq.com/cgi-bin/message/custom/send"
        );
    }
}
