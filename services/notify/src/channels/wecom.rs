//! WeCom (企业微信) group robot: `POST …/cgi-bin/webhook/send?key=…` with
//! `{"msgtype":"markdown","markdown":{"content":…}}`, or
//! `{"msgtype":"text","text":{"content":…,"mentioned_list":[…]}}` to
//! @mention a member (`mentioned_mobile_list` for a mobile number).
//! The answer's `errcode`: 0 sent, 45009 (rate limit) and -1 (busy)
//! transient, others permanent.

use serde_json::json;
use tousu_kit::Config;

use super::{
    Robot, SendError, Sent, cut_bytes, default_robot, execute, is_mobile, markdown_body,
    plain_body, robot_target, url_endpoint,
};
use crate::model::Message;

/// WeCom's limits: markdown content 4096 bytes, text 2048.
const MARKDOWN_MAX: usize = 4096;
const TEXT_MAX: usize = 2048;

pub(super) struct WeCom {
    http: reqwest::Client,
    default: Option<Robot>,
}

impl WeCom {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<WeCom> {
        Ok(WeCom {
            http,
            default: default_robot("notify_wecom_webhook", &config.notify_wecom_webhook, "")?,
        })
    }

    pub(super) fn endpoint(&self, address: &str) -> Option<String> {
        robot_target(&self.default, address)
            .robot()
            .map(|robot| endpoint(&robot))
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        let (robot, mention) = robot_target(&self.default, address).resolve(
            "wecom",
            "notify_wecom_webhook",
            "robot",
        )?;
        let answer = execute(self.http.post(robot.url).json(&body(message, mention))).await?;
        answer.robot_result(errcode, |code, _| matches!(code, 45009 | -1))
    }
}

/// The robot's key stays out: `wecom:host/path#<sha256(key)[..8]>`.
fn endpoint(robot: &Robot) -> String {
    let key = robot
        .url
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| robot.url.query().unwrap_or("").to_owned());
    url_endpoint("wecom", &robot.url, robot.url.path(), &key)
}

fn body(message: &Message, mention: Option<&str>) -> serde_json::Value {
    match mention {
        None => json!({
            "msgtype": "markdown",
            "markdown": {"content": cut_bytes(&markdown_body(message), MARKDOWN_MAX)},
        }),
        Some(who) => {
            let mut text = json!({"content": cut_bytes(&plain_body(message), TEXT_MAX)});
            if is_mobile(who) {
                text["mentioned_mobile_list"] = json!([who]);
            } else {
                text["mentioned_list"] = json!([who]);
            }
            json!({"msgtype": "text", "text": text})
        }
    }
}

pub(super) fn errcode(answer: &serde_json::Value) -> Option<(i64, String)> {
    let code = answer.get("errcode")?.as_i64()?;
    let msg = answer
        .get("errmsg")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_owned();
    Some((code, msg))
}

#[cfg(test)]
mod tests {
    use super::super::Answer;
    use super::*;

    fn message() -> Message {
        Message {
            language: "zh-CN".into(),
            subject: "一级投诉".into(),
            text: "TS-1 需要立即处理".into(),
            markdown: "**一级投诉**\nTS-1 需要立即处理".into(),
            link: "http://console/c/1".into(),
            ..Message::default()
        }
    }

    #[test]
    fn markdown_without_mention_text_with_mention() {
        let b = body(&message(), None);
        assert_eq!(b["msgtype"], "markdown");
        assert_eq!(
            b["markdown"]["content"],
            "**一级投诉**\nTS-1 需要立即处理\n\n[查看投诉](http://console/c/1)"
        );
        let b = body(&message(), Some("zhangsan"));
        assert_eq!(b["msgtype"], "text");
        assert_eq!(b["text"]["mentioned_list"], json!(["zhangsan"]));
        assert_eq!(
            b["text"]["content"],
            "一级投诉\nTS-1 需要立即处理\n\n查看投诉: http://console/c/1"
        );
        let b = body(&message(), Some("13800001111"));
        assert_eq!(b["text"]["mentioned_mobile_list"], json!(["13800001111"]));
        assert!(b["text"].get("mentioned_list").is_none());
    }

    #[test]
    fn long_markdown_is_cut_to_the_limit() {
        let m = Message {
            markdown: "投".repeat(3000),
            ..Message::default()
        };
        let b = body(&m, None);
        let content = b["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= MARKDOWN_MAX);
        assert_eq!(content.chars().count(), MARKDOWN_MAX / 3);
    }

    #[test]
    fn errcodes() {
        let a = |body: &str| Answer {
            status: 200,
            body: body.into(),
            retry_after: None,
        };
        let rl = |c: i64, _: &str| matches!(c, 45009 | -1);
        assert!(
            a(r#"{"errcode":0,"errmsg":"ok"}"#)
                .robot_result(errcode, rl)
                .is_ok()
        );
        assert!(matches!(
            a(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#).robot_result(errcode, rl),
            Err(SendError::Transient { .. })
        ));
        assert!(matches!(
            a(r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#).robot_result(errcode, rl),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            a("<html>ok</html>").robot_result(errcode, rl),
            Err(SendError::Permanent { .. })
        ));
    }

    #[test]
    fn endpoint_hides_the_key() {
        let robot = Robot {
            url: reqwest::Url::parse(
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx",
            )
            .unwrap(),
            secret: String::new(),
        };
        let e = endpoint(&robot);
        assert!(
            e.starts_with("wecom:qyapi.weixin.qq.com/cgi-bin/webhook/send#"),
            "{e}"
        );
        assert!(!e.contains("693a91f6-7xxx"));
        assert_eq!(
            e.len(),
            "wecom:qyapi.weixin.qq.com/cgi-bin/webhook/send#".len() + 8
        );
    }
}
