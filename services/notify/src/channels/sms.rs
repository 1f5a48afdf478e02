//! SMS through an HTTP gateway: `POST notify_sms_url` with the body
//! rendered from `notify_sms_template` (minijinja; variables `to`, `text`,
//! `subject`, `link`, `ack_link`, `tracking_no`, `language`; filters
//! `tojson` for a JSON string and `urlencode` for a form value) and
//! `Authorization: <notify_sms_auth>` when set. The content type is JSON
//! when the rendered body parses as JSON, else a form. Without a template:
//! `{"to": {{ to|tojson }}, "text": {{ text|tojson }}}`.

use minijinja::{Environment, UndefinedBehavior, Value};
use tousu_kit::Config;

use super::{SendError, Sent, execute, permanent, plain_body, setting_url, url_endpoint};
use crate::model::Message;

const DEFAULT_TEMPLATE: &str = r#"{"to": {{ to|tojson }}, "text": {{ text|tojson }}}"#;

pub(super) struct Sms {
    http: reqwest::Client,
    url: reqwest::Url,
    env: Environment<'static>,
    auth: String,
}

impl Sms {
    pub(super) fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<Option<Sms>> {
        let Some(url) = setting_url("notify_sms_url", &config.notify_sms_url)? else {
            return Ok(None);
        };
        let template = if config.notify_sms_template.trim().is_empty() {
            DEFAULT_TEMPLATE.to_owned()
        } else {
            config.notify_sms_template.clone()
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("tojson", tojson);
        env.add_filter("urlencode", urlencode);
        env.add_template_owned("sms", template)
            .map_err(|e| anyhow::anyhow!("notify_sms_template: {e}"))?;
        let sms = Sms {
            http,
            url,
            env,
            auth: config.notify_sms_auth.trim().to_owned(),
        };
        // A template naming an unknown variable fails now, not at 3 a.m.
        sms.render("+8613800000000", &Message::default())
            .map_err(|e| anyhow::anyhow!("notify_sms_template: {e}"))?;
        Ok(Some(sms))
    }

    pub(super) fn endpoint(&self) -> String {
        url_endpoint(
            "sms",
            &self.url,
            self.url.path(),
            self.url.query().unwrap_or(""),
        )
    }

    fn render(&self, to: &str, message: &Message) -> Result<String, minijinja::Error> {
        let ctx = minijinja::context! {
            to => to,
            text => plain_body(message),
            subject => &message.subject,
            link => &message.link,
            ack_link => &message.ack_link,
            tracking_no => &message.tracking_no,
            language => &message.language,
        };
        self.env.get_template("sms")?.render(ctx)
    }

    pub(super) async fn send(&self, address: &str, message: &Message) -> Result<Sent, SendError> {
        let to: String = address
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = to.strip_prefix('+').unwrap_or(&to);
        if !(5..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(permanent(None, "sms: the address is not a phone number"));
        }
        let body = self
            .render(&to, message)
            .map_err(|e| permanent(None, format!("sms: the template failed: {e}")))?;
        let content_type = if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if !self.auth.is_empty() {
            request = request.header(reqwest::header::AUTHORIZATION, &self.auth);
        }
        execute(request.body(body)).await?.into_result()
    }
}

/// `{{ v|tojson }}`: the value as JSON (a string gets its quotes and
/// escapes).
fn tojson(value: Value) -> Result<Value, minijinja::Error> {
    serde_json::to_string(&value)
        .map(Value::from_safe_string)
        .map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot serialize to JSON: {e}"),
            )
        })
}

/// `{{ v|urlencode }}`: form encoding (`application/x-www-form-urlencoded`).
fn urlencode(value: Value) -> String {
    let s = match value.as_str() {
        Some(s) => s.to_owned(),
        None => value.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(template: &str) -> anyhow::Result<Option<Sms>> {
        let mut config = Config::defaults("notify");
        config.notify_sms_url = "http://127.0.0.1:1/send".into();
        config.notify_sms_template = template.into();
        Sms::new(&config, reqwest::Client::new())
    }

    fn message() -> Message {
        Message {
            subject: "超时".into(),
            text: "He said \"退款\"\n& left".into(),
            ..Message::default()
        }
    }

    #[test]
    fn default_template_is_json_with_escapes() {
        let s = sms("").unwrap().unwrap();
        let body = s.render("+8613800001111", &message()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["to"], "+8613800001111");
        assert_eq!(v["text"], "超时\nHe said \"退款\"\n& left");
    }

    #[test]
    fn form_templates_urlencode() {
        let s = sms("mobile={{ to|urlencode }}&content={{ text|urlencode }}")
            .unwrap()
            .unwrap();
        let body = s.render("+8613800001111", &message()).unwrap();
        assert_eq!(
            body,
            "mobile=%2B8613800001111&content=%E8%B6%85%E6%97%B6%0AHe+said+%22%E9%80%80%E6%AC%BE%22%0A%26+left"
        );
    }

    #[test]
    fn bad_templates_fail_at_start() {
        let err = sms("{{ to ").err().unwrap().to_string();
        assert!(err.starts_with("notify_sms_template:"), "{err}");
        let err = sms("{{ phone }}").err().unwrap().to_string();
        assert!(err.starts_with("notify_sms_template:"), "{err}");
    }
}
