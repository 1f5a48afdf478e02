//! Feishu / Lark bot: `POST …/open-apis/bot/v2/hook/{id}` with an
//! interactive card (title + markdown), or a text message with
//! `<at user_id="…"></at>` to @mention a member by open_id. With a signing
//! secret the JSON body also carries `timestamp` (seconds, a string) and
//! `sign` = base64(HMAC-SHA256(key = "{timestamp}\n{secret}", message =
//! empty)), as Feishu documents. The answer's `code` (or the older
//! `StatusCode`): 0 sent, 11232 and 9499 "too many request" (rate limits)
//! transient, others (19021: bad signature …) permanent.

use serde_json::json;
use tousu_kit::Config;

use super::{
    Robot, SendError, Sent, base64, default_robot, execute, hmac_sha256, markdown_body, plain_body,
    robot_target, title, unix_seconds, url_endpoint,
};
use crate::model::Message;

/// Feishu's request limit is 20 KB; keep the content well under it.
const CONTENT_MAX: usize = 16000;

pub(super) struct Feishu {
    http: reqwest::Client,
    default: Option<Robot>,
}

impl Feishu {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<Feishu> {
        Ok(Feishu {
            http,
            default: default_robot(
                "notify_feishu_webhook",
                &config.notify_feishu_webhook,
                &config.notify_feishu_secret,
            )?,
        })
    }

    pub(super) fn endpoint(&self, address: &str) -> Option<String> {
        robot_target(&self.default, address)
            .robot()
            .map(|robot| endpoint(&robot))
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        let (robot, mention) = robot_target(&self.default, address).resolve(
            "feishu",
            "notify_feishu_webhook",
            "bot",
        )?;
        let mut body = body(message, mention);
        if !robot.secret.is_empty() {
            let ts = unix_seconds();
            body["timestamp"] = json!(ts.to_string());
            body["sign"] = json!(sign(ts, &robot.secret));
        }
        let answer = execute(self.http.post(robot.url).json(&body)).await?;
        answer.robot_result(code, rate_limited)
    }
}

/// The hook id in the path is the bot's key: `feishu:host/open-apis/bot/v2/hook#<sha256(id)[..8]>`.
fn endpoint(robot: &Robot) -> String {
    let path = robot.url.path();
    let (base, id) = match path.rfind("/hook/") {
        Some(i) => (&path[..i + "/hook".len()], &path[i + "/hook/".len()..]),
        None => (path, ""),
    };
    let key = format!("{id}{}", robot.url.query().unwrap_or(""));
    url_endpoint("feishu", &robot.url, base, &key)
}

/// Feishu's `sign`: base64(HMAC-SHA256(key = "{timestamp}\n{secret}",
/// message = empty)).
pub(super) fn sign(timestamp_s: i64, secret: &str) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    base64(&hmac_sha256(key.as_bytes(), b""))
}

fn body(message: &Message, mention: Option<&str>) -> serde_json::Value {
    match mention {
        Some(open_id) => {
            let who: String = open_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                .collect();
            let text = format!("<at user_id=\"{who}\"></at> {}", plain_body(message));
            json!({
                "msg_type": "text",
                "content": {"text": super::cut_bytes(&text, CONTENT_MAX)},
            })
        }
        None => json!({
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {"title": {"tag": "plain_text", "content": title(message)}},
                "elements": [{
                    "tag": "markdown",
                    "content": super::cut_bytes(&markdown_body(message), CONTENT_MAX),
                }],
            },
        }),
    }
}

fn code(answer: &serde_json::Value) -> Option<(i64, String)> {
    let code = answer
        .get("code")
        .or_else(|| answer.get("StatusCode"))?
        .as_i64()?;
    let msg = answer
        .get("msg")
        .or_else(|| answer.get("StatusMessage"))
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_owned();
    Some((code, msg))
}

/// 11232 is the bot's frequency limit; 9499 is both "too many request"
/// and a malformed request ("Bad Request"), told apart by its message.
fn rate_limited(code: i64, msg: &str) -> bool {
    match code {
        11232 => true,
        9499 => {
            let msg = msg.to_ascii_lowercase();
            msg.contains("too many") || msg.contains("limit") || msg.contains("frequen")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Answer;
    use super::*;

    #[test]
    fn sign_follows_the_documented_formula() {
        // Feishu's formula with independent pieces: HMAC-SHA256 (RFC 2104)
        // keyed by "{timestamp}\n{secret}" over an empty message, from
        // sha2's plain digest.
        let secret = "demo-secret";
        let ts = 1_599_360_473;
        let key = format!("{ts}\n{secret}");
        let expected = {
            use sha2::{Digest, Sha256};
            let mut k = [0u8; 64];
            k[..key.len()].copy_from_slice(key.as_bytes());
            let inner = Sha256::digest(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
            let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner).collect();
            base64(&Sha256::digest(&outer))
        };
        assert_eq!(sign(ts, secret), expected);
    }

    #[test]
    fn sign_matches_a_published_vector() {
        // github.com/lonelyman0108/cfst-ddns (Go, internal/notify tests)
        // publishes timestamp 1700000000, secret "SECtest" →
        // "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk=", computed with
        // `openssl dgst -sha256 -hmac "$(printf '1700000000\nSECtest')"` over
        // an empty input; Python's hmac gives the same.
        assert_eq!(
            sign(1_700_000_000, "SECtest"),
            "G7XpBpG8NgG02fJOAhX6FRAObIljmFoxVReo8I62pEk="
        );
    }

    #[test]
    fn card_or_mention() {
        let m = Message {
            language: "en".into(),
            subject: "Breach".into(),
            markdown: "**TS-1** overdue".into(),
            ..Message::default()
        };
        let b = body(&m, None);
        assert_eq!(b["msg_type"], "interactive");
        assert_eq!(b["card"]["header"]["title"]["content"], "Breach");
        assert_eq!(b["card"]["elements"][0]["content"], "**TS-1** overdue");
        let b = body(&m, Some("ou_7d8a6e6df7621556ce0d21922b676706ccs\"><x"));
        assert_eq!(b["msg_type"], "text");
        assert!(
            b["content"]["text"].as_str().unwrap().starts_with(
                "<at user_id=\"ou_7d8a6e6df7621556ce0d21922b676706ccsx\"></at> Breach"
            )
        );
    }

    #[test]
    fn codes() {
        let a = |body: &str| Answer {
            status: 200,
            body: body.into(),
            retry_after: None,
        };
        assert!(
            a(r#"{"code":0,"msg":"success","data":{}}"#)
                .robot_result(code, rate_limited)
                .is_ok()
        );
        assert!(
            a(r#"{"StatusCode":0,"StatusMessage":"success"}"#)
                .robot_result(code, rate_limited)
                .is_ok()
        );
        for transient in [
            r#"{"code":11232,"msg":"frequency limited"}"#,
            r#"{"code":9499,"msg":"too many request"}"#,
        ] {
            assert!(
                matches!(
                    a(transient).robot_result(code, rate_limited),
                    Err(SendError::Transient { .. })
                ),
                "{transient}"
            );
        }
        for perm in [
            r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
            r#"{"code":9499,"msg":"Bad Request"}"#,
            r#"{"StatusCode":19001,"StatusMessage":"param invalid"}"#,
        ] {
            assert!(
                matches!(
                    a(perm).robot_result(code, rate_limited),
                    Err(SendError::Permanent { .. })
                ),
                "{perm}"
            );
        }
    }

    #[test]
    fn endpoint_hides_the_hook_id() {
        let robot = Robot {
            url: reqwest::Url::parse(
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f3a5d0e-aaaa-bbbb-cccc-0123456789ab",
            )
            .unwrap(),
            secret: String::new(),
        };
        let e = endpoint(&robot);
        assert!(
            e.starts_with("feishu:open.feishu.cn/open-apis/bot/v2/hook#"),
            "{e}"
        );
        assert!(!e.contains("2f3a5d0e"));
    }
}
