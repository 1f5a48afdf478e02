//! Messages from templates: minijinja templates per event type and language
//! (`templates/<lang>/<event type>.txt`, embedded in the binary), each
//! defining a `subject` and a `body` block; the layouts
//! (`templates/<lang>/layout.{txt,md,html}`) wrap the body with the
//! console link and the ack link into the plain text, Markdown and HTML
//! parts of a [`Message`].
//!
//! Lookup: `<lang>/<event type>.txt`, then the event type without its
//! last token (`escalation.breach` → `escalation`), then `generic.txt`;
//! messages to the complainant look in `<lang>/complainant/` first in the
//! same way. A template that fails to render falls back to the generic
//! one, and that to a fixed text: a message always goes out.
//!
//! Contact data of the complainant is masked ([`mask_phone`] …) in every
//! message but those to the handling department's own people.

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::model::Message;

/// Every template, embedded.
const TEMPLATES: &[(&str, &str)] = &[
    ("ack.html", include_str!("../templates/ack.html")),
    (
        "zh-CN/layout.txt",
        include_str!("../templates/zh-CN/layout.txt"),
    ),
    (
        "zh-CN/layout.md",
        include_str!("../templates/zh-CN/layout.md"),
    ),
    (
        "zh-CN/layout.html",
        include_str!("../templates/zh-CN/layout.html"),
    ),
    (
        "zh-CN/generic.txt",
        include_str!("../templates/zh-CN/generic.txt"),
    ),
    (
        "zh-CN/digest.txt",
        include_str!("../templates/zh-CN/digest.txt"),
    ),
    (
        "zh-CN/digest.major.txt",
        include_str!("../templates/zh-CN/digest.major.txt"),
    ),
    (
        "zh-CN/alert.major.txt",
        include_str!("../templates/zh-CN/alert.major.txt"),
    ),
    (
        "zh-CN/alert.hot.txt",
        include_str!("../templates/zh-CN/alert.hot.txt"),
    ),
    (
        "zh-CN/complaint.assigned.txt",
        include_str!("../templates/zh-CN/complaint.assigned.txt"),
    ),
    (
        "zh-CN/complaint.graded.txt",
        include_str!("../templates/zh-CN/complaint.graded.txt"),
    ),
    (
        "zh-CN/complaint.returned.txt",
        include_str!("../templates/zh-CN/complaint.returned.txt"),
    ),
    (
        "zh-CN/sla.warning.txt",
        include_str!("../templates/zh-CN/sla.warning.txt"),
    ),
    (
        "zh-CN/sla.breached.txt",
        include_str!("../templates/zh-CN/sla.breached.txt"),
    ),
    (
        "zh-CN/escalation.txt",
        include_str!("../templates/zh-CN/escalation.txt"),
    ),
    (
        "zh-CN/complainant/generic.txt",
        include_str!("../templates/zh-CN/complainant/generic.txt"),
    ),
    (
        "zh-CN/complainant/complaint.received.txt",
        include_str!("../templates/zh-CN/complainant/complaint.received.txt"),
    ),
    (
        "zh-CN/complainant/complaint.resolved.txt",
        include_str!("../templates/zh-CN/complainant/complaint.resolved.txt"),
    ),
    (
        "zh-CN/complainant/sla.extended.txt",
        include_str!("../templates/zh-CN/complainant/sla.extended.txt"),
    ),
    ("en/layout.txt", include_str!("../templates/en/layout.txt")),
    ("en/layout.md", include_str!("../templates/en/layout.md")),
    (
        "en/layout.html",
        include_str!("../templates/en/layout.html"),
    ),
    (
        "en/generic.txt",
        include_str!("../templates/en/generic.txt"),
    ),
    ("en/digest.txt", include_str!("../templates/en/digest.txt")),
    (
        "en/digest.major.txt",
        include_str!("../templates/en/digest.major.txt"),
    ),
    (
        "en/alert.major.txt",
        include_str!("../templates/en/alert.major.txt"),
    ),
    (
        "en/alert.hot.txt",
        include_str!("../templates/en/alert.hot.txt"),
    ),
    (
        "en/complaint.assigned.txt",
        include_str!("../templates/en/complaint.assigned.txt"),
    ),
    (
        "en/complaint.graded.txt",
        include_str!("../templates/en/complaint.graded.txt"),
    ),
    (
        "en/complaint.returned.txt",
        include_str!("../templates/en/complaint.returned.txt"),
    ),
    (
        "en/sla.warning.txt",
        include_str!("../templates/en/sla.warning.txt"),
    ),
    (
        "en/sla.breached.txt",
        include_str!("../templates/en/sla.breached.txt"),
    ),
    (
        "en/escalation.txt",
        include_str!("../templates/en/escalation.txt"),
    ),
    (
        "en/complainant/generic.txt",
        include_str!("../templates/en/complainant/generic.txt"),
    ),
    (
        "en/complainant/complaint.received.txt",
        include_str!("../templates/en/complainant/complaint.received.txt"),
    ),
    (
        "en/complainant/complaint.resolved.txt",
        include_str!("../templates/en/complainant/complaint.resolved.txt"),
    ),
    (
        "en/complainant/sla.extended.txt",
        include_str!("../templates/en/complainant/sla.extended.txt"),
    ),
];

/// The languages templates exist in.
pub const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

/// Who a message is for, which picks the template directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Complainant,
}

/// The embedded templates, parsed once.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every embedded template; fails only on a template syntax
    /// error (a unit test keeps that from shipping).
    pub fn new() -> Result<Templates, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // HTML-escape without minijinja's `/` → `&#x2f;`, so links stay
        // readable in the HTML source.
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Html)
                && !value.is_safe()
                && !value.is_undefined()
                && !value.is_none()
            {
                return out
                    .write_str(&tousu_kit::html::escape(&value.to_string()))
                    .map_err(|_| {
                        minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed")
                    });
            }
            minijinja::escape_formatter(out, state, value)
        });
        // Missing facts (an event without a deadline, a complaint not seen
        // yet) render as empty, never as an error.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()?,
        );
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Templates { env })
    }

    /// The template names tried for an event type, most specific first.
    fn candidates(language: &str, audience: Audience, event_type: &str) -> Vec<String> {
        let mut dirs = Vec::new();
        if audience == Audience::Complainant {
            dirs.push(format!("{language}/complainant/"));
        } else {
            dirs.push(format!("{language}/"));
        }
        let mut names = Vec::new();
        for dir in &dirs {
            let mut t = event_type;
            loop {
                names.push(format!("{dir}{t}.txt"));
                match t.rsplit_once('.') {
                    Some((head, _)) => t = head,
                    None => break,
                }
            }
            names.push(format!("{dir}generic.txt"));
        }
        names
    }

    /// Renders the message for `event_type` in `language` from `ctx` (the
    /// template variables, see docs/notify.md). `ctx` must carry `link`
    /// and may carry `ack_link`.
    pub fn render(
        &self,
        language: &str,
        audience: Audience,
        event_type: &str,
        ctx: &serde_json::Value,
    ) -> Message {
        let language = if LANGUAGES.contains(&language) {
            language
        } else {
            "zh-CN"
        };
        let value = Value::from(minijinja::value::Serde(ctx));
        let mut parts = None;
        for name in Self::candidates(language, audience, event_type) {
            let Ok(template) = self.env.get_template(&name) else {
                continue;
            };
            let rendered = template.render_captured(value.clone()).and_then(|mut c| {
                c.with_state_mut(|state| {
                    Ok((state.render_block("subject")?, state.render_block("body")?))
                })
            });
            match rendered {
                Ok(p) => {
                    parts = Some(p);
                    break;
                }
                Err(e) => {
                    tracing::error!(template = %name, error = %format!("{e:#}"), "template failed; trying the next");
                }
            }
        }
        let (subject, body) = parts.unwrap_or_else(|| {
            (
                format!("tousu: {event_type}"),
                format!("{event_type} {}", str_of(ctx, "tracking_no")),
            )
        });
        let subject = one_line(&subject);
        let body = body.trim().to_owned();
        let link = str_of(ctx, "link");
        let ack_link = str_of(ctx, "ack_link");
        let layout_ctx = minijinja::context! {
            subject => &subject,
            body => &body,
            link => &link,
            ack_link => &ack_link,
            ack_deadline => str_of(ctx, "ack_deadline"),
        };
        let layout = |kind: &str| -> String {
            let name = format!("{language}/layout.{kind}");
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&layout_ctx))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|e| {
                    tracing::error!(template = %name, error = %e, "layout failed");
                    format!("{subject}\n\n{body}\n\n{link}")
                })
        };
        Message {
            language: language.into(),
            subject: subject.clone(),
            text: layout("txt"),
            html: layout("html"),
            markdown: layout("md"),
            link,
            ack_link,
            event_type: event_type.into(),
            ..Message::default()
        }
    }

    /// The ack page (`GET /v1/acks/{token}`).
    pub fn ack_page(&self, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template("ack.html")?.render(ctx)
    }
}

fn str_of(ctx: &serde_json::Value, key: &str) -> String {
    ctx.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The first line, trimmed (subjects go into mail headers and titles).
fn one_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or_default().trim();
    line.chars().take(200).collect()
}

/// `13812345678` → `138****5678` (a Chinese mobile in E.164,
/// `+8613812345678`, is shown the domestic way too; other numbers keep
/// their prefix: `+14155550123` → `+141****0123`): the last four digits
/// stay, four before them are hidden; short numbers keep only their last
/// two characters.
pub fn mask_phone(phone: &str) -> String {
    let phone = phone.trim();
    let phone = match phone.strip_prefix("+86") {
        Some(national) if national.len() == 11 && national.bytes().all(|b| b.is_ascii_digit()) => {
            national
        }
        _ => phone,
    };
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    if n >= 8 {
        let head: String = chars[..n - 8].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let keep = n.min(2);
        let tail: String = chars[n - keep..].iter().collect();
        format!("****{tail}")
    }
}

/// `zhang@example.com` → `z***@example.com`.
pub fn mask_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ if email.is_empty() => String::new(),
        _ => "***".into(),
    }
}

/// A WeChat openid shortened to its first and last four characters.
pub fn mask_openid(openid: &str) -> String {
    let chars: Vec<char> = openid.trim().chars().collect();
    let n = chars.len();
    if n == 0 {
        String::new()
    } else if n > 10 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        "****".into()
    }
}

/// `张三丰` → `张**`: the first character only.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().clamp(1, 3);
            format!("{first}{}", "*".repeat(rest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_file_is_embedded_and_parses() {
        let t = Templates::new().expect("templates parse");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("templates dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&dir).expect("under dir");
                    files.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        for f in &files {
            assert!(
                TEMPLATES.iter().any(|(n, _)| n == f),
                "templates/{f} is not embedded"
            );
        }
        assert_eq!(files.len(), TEMPLATES.len());
        // Each language has the same set.
        for (name, _) in TEMPLATES {
            if let Some(rest) = name.strip_prefix("zh-CN/") {
                assert!(
                    t.env.get_template(&format!("en/{rest}")).is_ok(),
                    "en/{rest} missing"
                );
            }
        }
    }

    fn ctx(masked: bool) -> serde_json::Value {
        let phone = if masked {
            mask_phone("13812345678")
        } else {
            "13812345678".into()
        };
        json!({
            "event_type": "sla.warning",
            "tracking_no": "TS20260107-0042",
            "summary": "电梯故障三天无人维修",
            "grade": 3,
            "grade_name": "三级（重要）",
            "department": "quality",
            "department_name": "质量管理部 Quality",
            "recipient": {"id": "sun", "name": "孙浩", "role": "department_head"},
            "complainant": {"name": "张*", "phone": phone, "email": "", "wechat": ""},
            "sla": {"target": "resolution", "target_name": "办结", "percent": 80, "deadline": "2026-01-09 17:30"},
            "link": "http://console.example/complaints/0190",
            "ack_link": "",
            "time": "2026-01-07 10:00",
        })
    }

    #[test]
    fn a_warning_in_both_languages() {
        let t = Templates::new().expect("templates");
        let zh = t.render("zh-CN", Audience::Staff, "sla.warning", &ctx(false));
        assert_eq!(zh.language, "zh-CN");
        assert!(zh.subject.contains("TS20260107-0042"), "{}", zh.subject);
        assert!(zh.subject.contains("预警"), "{}", zh.subject);
        assert!(zh.text.contains("80%"), "{}", zh.text);
        assert!(zh.text.contains("13812345678"), "{}", zh.text);
        assert!(zh.text.contains("http://console.example/complaints/0190"));
        assert!(
            zh.markdown
                .contains("(http://console.example/complaints/0190)"),
            "{}",
            zh.markdown
        );
        assert!(
            zh.html
                .contains("href=\"http://console.example/complaints/0190\""),
            "{}",
            zh.html
        );
        assert!(
            !zh.text.contains("确认"),
            "no ack link, no ack line: {}",
            zh.text
        );

        let en = t.render("en", Audience::Staff, "sla.warning", &ctx(true));
        assert_eq!(en.language, "en");
        assert!(en.subject.contains("Warning"), "{}", en.subject);
        assert!(en.text.contains("80%"), "{}", en.text);
        assert!(en.text.contains("138****5678"), "{}", en.text);
        assert!(!en.text.contains("13812345678"));
        assert!(!en.html.contains("13812345678"));
    }

    #[test]
    fn html_is_escaped_and_the_ack_link_is_shown() {
        let t = Templates::new().expect("templates");
        let mut c = ctx(false);
        c["summary"] = json!("<script>alert(1)</script> & 漏水");
        c["ack_link"] = json!("http://notify.example/v1/acks/abc");
        let m = t.render("zh-CN", Audience::Staff, "sla.breached", &c);
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(m.html.contains("&lt;script&gt;"), "{}", m.html);
        assert!(m.text.contains("<script>"), "plain text is not escaped");
        assert!(
            m.text.contains("http://notify.example/v1/acks/abc"),
            "{}",
            m.text
        );
        assert!(
            m.html
                .contains("href=\"http://notify.example/v1/acks/abc\""),
            "{}",
            m.html
        );
        assert_eq!(m.ack_link, "http://notify.example/v1/acks/abc");
    }

    #[test]
    fn unknown_event_types_fall_back_to_the_generic_template() {
        let t = Templates::new().expect("templates");
        let mut c = ctx(false);
        c["event_type"] = json!("complaint.frobnicated");
        let m = t.render("en", Audience::Staff, "complaint.frobnicated", &c);
        assert!(m.subject.contains("TS20260107-0042"), "{}", m.subject);
        assert!(m.text.contains("complaint.frobnicated"), "{}", m.text);
        // An escalation level without a template of its own.
        let mut c = ctx(false);
        c["escalation"] = json!({"level": "breach", "reason": "resolution 100 %", "step": 1, "role": "department_head", "needs_ack": true, "ack_deadline": "2026-01-07 12:00"});
        let m = t.render("zh-CN", Audience::Staff, "escalation.breach", &c);
        assert!(m.subject.contains("督办"), "{}", m.subject);
        // A language without templates: zh-CN.
        let m = t.render("fr", Audience::Staff, "sla.warning", &ctx(false));
        assert_eq!(m.language, "zh-CN");
    }

    #[test]
    fn a_broken_context_still_gives_a_message() {
        let t = Templates::new().expect("templates");
        let m = t.render(
            "en",
            Audience::Staff,
            "sla.warning",
            &json!({"link": "http://x/c/1"}),
        );
        assert!(!m.subject.is_empty());
        assert!(m.text.contains("http://x/c/1"), "{}", m.text);
    }

    #[test]
    fn the_complainant_gets_their_own_templates() {
        let t = Templates::new().expect("templates");
        let c = json!({
            "tracking_no": "TS20260107-0042",
            "summary": "快递丢件",
            "link": "",
            "complainant": {"name": "Zhang San"},
        });
        let zh = t.render("zh-CN", Audience::Complainant, "complaint.received", &c);
        assert!(zh.text.contains("TS20260107-0042"), "{}", zh.text);
        assert!(zh.text.contains("受理"), "{}", zh.text);
        let en = t.render("en", Audience::Complainant, "complaint.received", &c);
        assert!(en.text.contains("tracking number"), "{}", en.text);
        // No template for the event: the complainant's generic one, never a
        // staff template.
        let g = t.render("en", Audience::Complainant, "sla.warning", &c);
        assert!(!g.subject.contains("Warning"), "{}", g.subject);
        assert!(g.text.contains("TS20260107-0042"), "{}", g.text);
    }

    #[test]
    fn masking() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+8613812345678"), "138****5678");
        assert_eq!(mask_phone("+14155550123"), "+141****0123");
        assert_eq!(mask_phone("010-12345678"), "010-****5678");
        assert_eq!(mask_phone("12345"), "****45");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_email("zhang@example.com"), "z***@example.com");
        assert_eq!(mask_email("张@例子.cn"), "张***@例子.cn");
        assert_eq!(mask_email("not-an-email"), "***");
        assert_eq!(mask_email(""), "");
        assert_eq!(mask_openid("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "oUpF…eS6o");
        assert_eq!(mask_openid("short"), "****");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("Zhang San"), "Z***");
        assert_eq!(mask_name(""), "");
    }
}
