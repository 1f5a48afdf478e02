//! Validation of a submission into the parts of one complaint record.
//!
//! Every transport (HTTP JSON or form, gRPC, NATS) produces [`Fields`];
//! [`validate`] checks them all at once and names every invalid field, so
//! a connector can fix its request in one go.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tousu_domain::{Channel, Email, PhoneNumber};
use tousu_kit::problem::FieldError;
use tousu_proto::v1 as pb;

const MAX_DESCRIPTION: usize = 100_000;
const MAX_TITLE: usize = 200;
const MAX_FIELD: usize = 1_000;

pub use tousu_channels::Fields;

/// A validated submission.
#[derive(Debug, Clone)]
pub struct Valid {
    pub channel: Channel,
    pub channel_message_id: String,
    pub complainant: pb::Complainant,
    pub content: pb::Content,
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads the web-form JSON object, checking each field's type.
pub fn fields_from_json(obj: &Map<String, Value>) -> Result<Fields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text = |name: &str| -> Option<String> {
        match obj.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(err(name, "must be a string"));
                None
            }
        }
    };
    let mut f = Fields {
        channel_message_id: text("external_id"),
        title: text("title"),
        description: text("description"),
        name: text("name"),
        phone: text("phone"),
        email: text("email"),
        product: text("product"),
        location: text("location"),
        occurred_at: text("occurred_at"),
        demand: text("demand"),
        category_hint: text("category_hint"),
        customer_tier: text("customer_tier"),
        ..Fields::default()
    };
    match obj.get("anonymous") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => f.anonymous = *b,
        Some(_) => errors.push(err("anonymous", "must be true or false")),
    }
    match obj.get("amount") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => f.amount = Some(s.clone()),
        Some(Value::Number(n)) => f.amount = Some(n.to_string()),
        Some(_) => errors.push(err("amount", "must be a number or a decimal string")),
    }
    match obj.get("group_size") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => f.group_size = Some(s.clone()),
        Some(Value::Number(n)) => f.group_size = Some(n.to_string()),
        Some(_) => errors.push(err("group_size", "must be a whole number")),
    }
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(errors)
    }
}

/// Reads an urlencoded form (every value a string; `anonymous` is on when
/// `true`, `on`, `1` or `yes`).
pub fn fields_from_form(pairs: &[(String, String)]) -> Fields {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    Fields {
        channel_message_id: get("external_id"),
        title: get("title"),
        description: get("description"),
        name: get("name"),
        phone: get("phone"),
        email: get("email"),
        anonymous: get("anonymous").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "1" | "yes")
        }),
        product: get("product"),
        location: get("location"),
        occurred_at: get("occurred_at"),
        amount: get("amount"),
        demand: get("demand"),
        category_hint: get("category_hint"),
        customer_tier: get("customer_tier"),
        group_size: get("group_size"),
        ..Fields::default()
    }
}

/// The description as stored, and the original when cleaning changed more
/// than whitespace: HTML becomes text, whitespace is normalized.
pub fn normalize_text(raw: &str) -> (String, String) {
    use tousu_channels::text;
    let cleaned = if looks_like_html(raw) {
        text::html_to_text(raw)
    } else {
        text::clean(raw)
    };
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let original = if squash(&cleaned) == squash(raw) {
        String::new()
    } else {
        raw.to_owned()
    };
    (cleaned, original)
}

/// True when `s` has markup: a tag such as `<p>`, `<br/>`, `</div>`.
fn looks_like_html(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
        && s.contains('>')
}

/// `zh` when the text has CJK characters, `en` otherwise.
pub fn detect_language(text: &str) -> &'static str {
    let cjk = text
        .chars()
        .any(|c| matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}'));
    if cjk { "zh" } else { "en" }
}

fn normalize_amount(s: &str) -> Option<String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 15 || !digits(int) || frac.len() > 2 || !digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    Some(format!(
        "{}.{:0<2}",
        if int.is_empty() { "0" } else { int },
        frac
    ))
}

/// Checks every field; on failure lists every problem.
pub fn validate(channel: Channel, f: Fields) -> Result<Valid, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text = |name: &str, value: Option<String>, max: usize| -> String {
        let v = value.unwrap_or_default().replace("\r\n", "\n");
        let v = v.trim();
        if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            errors.push(err(name, "contains control characters"));
        }
        if v.chars().count() > max {
            errors.push(err(name, format!("longer than {max} characters")));
        }
        v.to_owned()
    };
    let (cleaned, original) = normalize_text(f.description.as_deref().unwrap_or_default());
    let description = text("description", Some(cleaned), MAX_DESCRIPTION);
    let title = text("title", f.title, MAX_TITLE);
    let name = text("name", f.name, MAX_FIELD);
    let product = text("product", f.product, MAX_FIELD);
    let location = text("location", f.location, MAX_FIELD);
    let demand = text("demand", f.demand, MAX_FIELD);
    let category_hint = text("category_hint", f.category_hint, MAX_FIELD);
    let customer_tier = text("customer_tier", f.customer_tier, MAX_FIELD);
    let channel_message_id = text("external_id", f.channel_message_id, 500);
    let openid = text("wechat_openid", f.wechat_openid, 200);
    let forum_username = text("forum_username", f.forum_username, 200);

    if description.is_empty() {
        errors.push(err("description", "is required and must not be empty"));
    }
    let phone = match f.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(p) => match p.parse::<PhoneNumber>() {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(err("phone", e.reason));
                None
            }
        },
    };
    let email = match f.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(e) => match e.parse::<Email>() {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(err("email", e.reason));
                None
            }
        },
    };
    let occurred_at = match f
        .occurred_at
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(t) => match OffsetDateTime::parse(t, &Rfc3339) {
            Ok(t) => Some(tousu_bus::to_timestamp(t)),
            Err(_) => {
                errors.push(err(
                    "occurred_at",
                    "must be an RFC 3339 time, e.g. 2026-11-22T08:30:00+08:00",
                ));
                None
            }
        },
    };
    let amount = match f.amount.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => String::new(),
        Some(a) => normalize_amount(a).unwrap_or_else(|| {
            errors.push(err(
                "amount",
                "must be a non-negative amount with at most two decimals",
            ));
            String::new()
        }),
    };
    let group_size = match f
        .group_size
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(g) => match g.parse::<u32>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => {
                errors.push(err(
                    "group_size",
                    "must be a whole number of complainants from 1 to 100000",
                ));
                None
            }
        },
    };
    let reachable =
        phone.is_some() || email.is_some() || !openid.is_empty() || !forum_username.is_empty();
    if !f.anonymous
        && !reachable
        && !errors
            .iter()
            .any(|e| e.field == "phone" || e.field == "email")
    {
        errors.push(err(
            "phone",
            "give a phone number or an email address (or set anonymous to true)",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let language = detect_language(&format!("{title} {description}")).to_owned();
    let mut identity_keys = Vec::new();
    if let Some(p) = &phone {
        identity_keys.push(format!("phone:{p}"));
    }
    if let Some(e) = &email {
        identity_keys.push(format!("email:{e}"));
    }
    if !openid.is_empty() {
        identity_keys.push(format!("wechat:{openid}"));
    }
    if !forum_username.is_empty() {
        identity_keys.push(format!("forum:{forum_username}"));
    }
    Ok(Valid {
        channel,
        channel_message_id,
        complainant: pb::Complainant {
            name,
            phone: phone.map(|p| p.to_string()).unwrap_or_default(),
            email: email.map(|e| e.to_string()).unwrap_or_default(),
            wechat_openid: openid,
            forum_username,
            customer_tier,
            anonymous: f.anonymous,
            identity_keys,
            ..Default::default()
        },
        content: pb::Content {
            title,
            description,
            language,
            product,
            location,
            occurred_at,
            amount,
            demand,
            category_hint,
            original,
            // Facts without a field of their own travel as channel details.
            channel_details: group_size
                .map(|n| [("group_size".to_owned(), n.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_fields(v: Value) -> Result<Fields, Vec<FieldError>> {
        fields_from_json(v.as_object().unwrap())
    }

    fn fields_named(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_full_web_form_validates_and_normalizes() {
        let f = json_fields(json!({
            "title": " 快递延误 ",
            "description": "快递三天还没到\r\n请处理",
            "name": "张三",
            "phone": "138 1234 5678",
            "email": "Zhang@Example.com",
            "occurred_at": "2026-11-20T10:00:00+08:00",
            "amount": 199.5,
            "external_id": "form-42",
            "unknown_field": "ignored"
        }))
        .unwrap();
        let v = validate(Channel::WebForm, f).unwrap();
        assert_eq!(v.complainant.phone, "+8613812345678");
        assert_eq!(v.complainant.email, "zhang@example.com");
        assert_eq!(v.content.title, "快递延误");
        assert_eq!(v.content.description, "快递三天还没到\n请处理");
        assert_eq!(v.content.amount, "199.50");
        assert_eq!(v.content.language, "zh");
        assert_eq!(
            v.complainant.identity_keys,
            ["phone:+8613812345678", "email:zhang@example.com"]
        );
        assert_eq!(v.channel_message_id, "form-42");
        assert!(v.content.occurred_at.is_some());
    }

    #[test]
    fn every_invalid_field_is_named() {
        let errors = json_fields(
            json!({"description": 5, "phone": ["x"], "anonymous": "yes", "amount": {}}),
        )
        .unwrap_err();
        assert_eq!(
            fields_named(&errors),
            ["description", "phone", "anonymous", "amount"]
        );

        let f = json_fields(json!({
            "description": "   ",
            "phone": "12345",
            "email": "not-an-email",
            "occurred_at": "yesterday",
            "amount": "-3"
        }))
        .unwrap();
        let errors = validate(Channel::WebForm, f).unwrap_err();
        assert_eq!(
            fields_named(&errors),
            ["description", "phone", "email", "occurred_at", "amount"]
        );
    }

    #[test]
    fn a_group_size_travels_as_a_channel_detail() {
        let f = json_fields(
            json!({"description": "电梯停运", "phone": "13812345678", "group_size": 12}),
        )
        .unwrap();
        let v = validate(Channel::WebForm, f).unwrap();
        assert_eq!(v.content.channel_details["group_size"], "12");
        let pairs = vec![
            ("description".to_string(), "电梯停运".to_string()),
            ("anonymous".to_string(), "on".to_string()),
            ("group_size".to_string(), "3".to_string()),
        ];
        let v = validate(Channel::WebForm, fields_from_form(&pairs)).unwrap();
        assert_eq!(v.content.channel_details["group_size"], "3");
        for bad in [json!(0), json!("many"), json!(-2), json!(2.5)] {
            let f = json_fields(json!({"description": "x", "anonymous": true, "group_size": bad}))
                .unwrap();
            assert_eq!(
                fields_named(&validate(Channel::WebForm, f).unwrap_err()),
                ["group_size"]
            );
        }
        let errors = json_fields(json!({"description": "x", "group_size": [3]})).unwrap_err();
        assert_eq!(fields_named(&errors), ["group_size"]);
    }

    #[test]
    fn contact_is_required_unless_anonymous() {
        let f = json_fields(json!({"description": "bad service"})).unwrap();
        assert_eq!(
            fields_named(&validate(Channel::WebForm, f).unwrap_err()),
            ["phone"]
        );
        let f = json_fields(json!({"description": "bad service", "anonymous": true})).unwrap();
        let v = validate(Channel::WebForm, f).unwrap();
        assert!(v.complainant.anonymous);
        assert_eq!(v.content.language, "en");
    }

    #[test]
    fn form_fields_read_like_json() {
        let pairs = vec![
            ("description".to_string(), "噪音扰民".to_string()),
            ("anonymous".to_string(), "on".to_string()),
            ("phone".to_string(), String::new()),
        ];
        let v = validate(Channel::WebForm, fields_from_form(&pairs)).unwrap();
        assert!(v.complainant.anonymous);
        assert_eq!(v.complainant.phone, "");
    }

    #[test]
    fn amounts_normalize_to_two_decimals() {
        assert_eq!(normalize_amount("0").unwrap(), "0.00");
        assert_eq!(normalize_amount("007.5").unwrap(), "7.50");
        assert_eq!(normalize_amount("1999.99").unwrap(), "1999.99");
        for bad in ["", "-1", "1.234", "1e3", "abc", ".5"] {
            assert!(normalize_amount(bad).is_none(), "{bad}");
        }
    }
}
