//! DingTalk (钉钉) robot: `POST …/robot/send?access_token=…` with a
//! markdown message and `at.atMobiles` / `at.atUserIds` to @mention a
//! member. With a signing secret (加签) the URL also carries `timestamp`
//! (ms) and `sign` = urlencode(base64(HMAC-SHA256(key = secret,
//! message = "{timestamp}\n{secret}"))), as DingTalk documents.
//! The answer's `errcode`: 0 sent, 130101 / 410100 (sent too fast) and
//! -1 (busy) transient, others (310000: bad signature, keyword or IP;
//! 300001: bad token …) permanent.

use serde_json::json;
use tousu_kit::Config;

use super::{
    Robot, SendError, Sent, base64, default_robot, execute, hmac_sha256, is_mobile, markdown_body,
    robot_target, title, unix_millis, url_endpoint,
};
use crate::model::Message;

/// DingTalk's markdown text limit is 20000 bytes; stay well under it.
const TEXT_MAX: usize = 18000;

pub(super) struct DingTalk {
    http: reqwest::Client,
    default: Option<Robot>,
}

impl DingTalk {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<DingTalk> {
        Ok(DingTalk {
            http,
            default: default_robot(
                "notify_dingtalk_webhook",
                &config.notify_dingtalk_webhook,
                &config.notify_dingtalk_secret,
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
            "dingtalk",
            "notify_dingtalk_webhook",
            "robot",
        )?;
        let url = signed_url(&robot, unix_millis());
        let answer = execute(self.http.post(url).json(&body(message, mention))).await?;
        answer.robot_result(super::wecom::errcode, |code, _| {
            matches!(code, 130101 | 410100 | -1)
        })
    }
}

/// The robot's token stays out: `dingtalk:host/path#<sha256(token)[..8]>`.
fn endpoint(robot: &Robot) -> String {
    let token = robot
        .url
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| robot.url.query().unwrap_or("").to_owned());
    url_endpoint("dingtalk", &robot.url, robot.url.path(), &token)
}

/// DingTalk's `sign` before URL encoding: base64(HMAC-SHA256(key = secret,
/// message = "{timestamp}\n{secret}")).
pub(super) fn sign(timestamp_ms: i128, secret: &str) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{secret}");
    base64(&hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// The robot URL with `timestamp` and `sign` (form-urlencoded, so `+`,
/// `/`, `=` become `%2B`, `%2F`, `%3D`) when the robot has a secret;
/// any `timestamp`/`sign` already in the URL are replaced.
fn signed_url(robot: &Robot, timestamp_ms: i128) -> reqwest::Url {
    let mut url = robot.url.clone();
    if robot.secret.is_empty() {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "timestamp" && k != "sign")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(timestamp_ms, &robot.secret));
    url
}

fn body(message: &Message, mention: Option<&str>) -> serde_json::Value {
    let mut text = markdown_body(message);
    let (mobiles, users) = match mention {
        // DingTalk highlights a mention only when the text names it too.
        Some(who) if is_mobile(who) => {
            text.push_str(&format!("\n\n@{who}"));
            (vec![who], vec![])
        }
        Some(who) => {
            text.push_str(&format!("\n\n@{who}"));
            (vec![], vec![who])
        }
        None => (vec![], vec![]),
    };
    json!({
        "msgtype": "markdown",
        "markdown": {
            "title": title(message),
            "text": super::cut_bytes(&text, TEXT_MAX),
        },
        "at": {"atMobiles": mobiles, "atUserIds": users, "isAtAll": false},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_follows_the_documented_formula() {
        // Recomputed from DingTalk's formula with independent pieces:
        // HMAC-SHA256 from RFC 2104 over sha2's plain digest.
        let secret = "SEC0123456789abcdef";
        let ts: i128 = 1_700_000_000_000;
        let message = format!("{ts}\n{secret}");
        let expected = {
            use sha2::{Digest, Sha256};
            let mut key = [0u8; 64];
            key[..secret.len()].copy_from_slice(secret.as_bytes());
            let inner: Vec<u8> = key
                .iter()
                .map(|b| b ^ 0x36)
                .chain(message.bytes())
                .collect();
            let inner = Sha256::digest(&inner);
            let outer: Vec<u8> = key.iter().map(|b| b ^ 0x5c).chain(inner).collect();
            base64(&Sha256::digest(&outer))
        };
        assert_eq!(sign(ts, secret), expected);
    }

    #[test]
    fn sign_matches_a_published_vector() {
        // The `dingding` crate 0.1.1 (docs.rs, src/signature.rs) tests
        // timestamp 1700000000000, secret "secret" →
        // "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D" (URL-encoded);
        // Python's hmac + base64 + quote_plus give the same.
        let robot = Robot {
            url: reqwest::Url::parse("https://oapi.dingtalk.com/robot/send?access_token=tok")
                .unwrap(),
            secret: "secret".into(),
        };
        let url = signed_url(&robot, 1_700_000_000_000);
        assert_eq!(
            url.query(),
            Some(
                "access_token=tok&timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
            )
        );
        assert_eq!(
            sign(1_700_000_000_000, "secret"),
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
        );
    }

    #[test]
    fn unsigned_robots_keep_their_url_and_old_signatures_go() {
        let plain = Robot {
            url: reqwest::Url::parse("https://oapi.dingtalk.com/robot/send?access_token=tok")
                .unwrap(),
            secret: String::new(),
        };
        assert_eq!(signed_url(&plain, 1).query(), Some("access_token=tok"));
        let stale = Robot {
            url: reqwest::Url::parse(
                "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1&sign=x",
            )
            .unwrap(),
            secret: "s".into(),
        };
        let q = signed_url(&stale, 2).query().unwrap().to_owned();
        assert!(q.starts_with("access_token=tok&timestamp=2&sign="), "{q}");
        assert_eq!(q.matches("sign=").count(), 1);
    }

    #[test]
    fn mentions() {
        let m = Message {
            subject: "超时".into(),
            text: "TS-1".into(),
            ..Message::default()
        };
        let b = body(&m, Some("13800001111"));
        assert_eq!(b["at"]["atMobiles"], json!(["13800001111"]));
        assert_eq!(b["at"]["atUserIds"], json!([]));
        assert!(
            b["markdown"]["text"]
                .as_str()
                .unwrap()
                .ends_with("@13800001111")
        );
        assert_eq!(b["markdown"]["title"], "超时");
        let b = body(&m, Some("manager4220"));
        assert_eq!(b["at"]["atUserIds"], json!(["manager4220"]));
        let b = body(&m, None);
        assert_eq!(b["markdown"]["text"], "**超时**\n\nTS-1");
    }

    #[test]
    fn endpoint_hides_the_token() {
        let robot = Robot {
            url: reqwest::Url::parse("https://oapi.dingtalk.com/robot/send?access_token=abc")
                .unwrap(),
            secret: "s".into(),
        };
        // SHA-256("abc") starts ba7816bf.
        assert_eq!(
            endpoint(&robot),
            "dingtalk:oapi.dingtalk.com/robot/send#ba7816bf"
        );
    }
}
