//! Forum channel: Discourse webhooks and the generic JSON, from realistic
//! bodies (fixtures/forum), signatures checked against an independent
//! HMAC computation and the RFC 4231 vectors.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tousu_channels::forum::{
    Discourse, hmac_sha256_hex, instance_host, parse_discourse, parse_generic, verify_signature,
};
use tousu_channels::{Inbound, Invalid};

const INSTANCE: &str = "https://forum.example.com";
const STARTER_ZH: &[u8] = include_bytes!("fixtures/forum/discourse_post_created_topic_zh.json");
const REPLY_ZH: &[u8] = include_bytes!("fixtures/forum/discourse_post_created_reply_zh.json");
const EDITED_ZH: &[u8] = include_bytes!("fixtures/forum/discourse_post_edited_zh.json");
const TOPIC_CREATED: &[u8] = include_bytes!("fixtures/forum/discourse_topic_created.json");
const PING: &[u8] = include_bytes!("fixtures/forum/discourse_ping.json");
const DELETED: &[u8] = include_bytes!("fixtures/forum/discourse_post_deleted.json");
const POST_EN: &[u8] = include_bytes!("fixtures/forum/discourse_post_created_en.json");
const GENERIC_ZH: &[u8] = include_bytes!("fixtures/forum/generic_post_zh.json");
const GENERIC_HTML_EN: &[u8] = include_bytes!("fixtures/forum/generic_reply_html_en.json");

fn post(event: &str, instance: &str, body: &[u8]) -> Inbound {
    match parse_discourse(event, instance, body) {
        Ok(Discourse::Post(inbound)) => inbound,
        other => panic!("expected a post, got {other:?}"),
    }
}

fn invalid(event: &str, body: &[u8]) -> Invalid {
    match parse_discourse(event, INSTANCE, body) {
        Err(e) => e,
        Ok(other) => panic!("expected Invalid, got {other:?}"),
    }
}

/// The fixture as JSON, changed by `edit`, serialized again.
fn with(body: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

// --- signatures -------------------------------------------------------------

/// HMAC-SHA256 by the definition (RFC 2104), on sha2 alone: an independent
/// path to check the crate's function against.
fn reference_hmac(key: &[u8], msg: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

#[test]
fn hmac_matches_rfc4231_test_case_2() {
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn hmac_matches_rfc4231_test_case_6_key_longer_than_a_block() {
    assert_eq!(
        hmac_sha256_hex(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn hmac_of_fixtures_matches_the_reference_computation() {
    let secret = b"d1sc0urse-webhook-secret-\xe6\xb5\x8b\xe8\xaf\x95";
    for body in [
        STARTER_ZH,
        REPLY_ZH,
        POST_EN,
        GENERIC_ZH,
        PING,
        b"".as_slice(),
    ] {
        let ours = hmac_sha256_hex(secret, body);
        assert_eq!(ours, reference_hmac(secret, body));
        assert_eq!(ours.len(), 64);
        assert!(
            ours.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}

#[test]
fn verify_accepts_the_discourse_header_and_bare_hex_in_either_case() {
    let secret = b"s3cret-shared-with-discourse";
    let sig = reference_hmac(secret, STARTER_ZH);
    for header in [
        format!("sha256={sig}"),
        format!("SHA256={sig}"),
        format!("sha256={}", sig.to_uppercase()),
        sig.clone(),
        sig.to_uppercase(),
        format!("  sha256={sig} \r\n"),
    ] {
        assert!(verify_signature(secret, STARTER_ZH, &header), "{header:?}");
    }
}

#[test]
fn verify_rejects_wrong_secret_tampered_body_and_malformed_headers() {
    let secret = b"s3cret-shared-with-discourse";
    let sig = reference_hmac(secret, STARTER_ZH);
    let good = format!("sha256={sig}");
    assert!(!verify_signature(b"another-secret", STARTER_ZH, &good));
    assert!(!verify_signature(
        b"",
        STARTER_ZH,
        &format!("sha256={}", reference_hmac(b"", STARTER_ZH))
    ));

    let mut tampered = STARTER_ZH.to_vec();
    let at = tampered.iter().position(|&b| b == b'5').unwrap();
    tampered[at] = b'6';
    assert!(!verify_signature(secret, &tampered, &good));
    let mut appended = STARTER_ZH.to_vec();
    appended.push(b' ');
    assert!(!verify_signature(secret, &appended, &good));

    let mut flipped = sig.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    for header in [
        String::new(),
        "sha256=".to_owned(),
        format!("sha256={}", &sig[..62]),
        format!("sha256={sig}00"),
        format!("sha1={sig}"),
        format!("sha256=={sig}"),
        format!("sha256={}", String::from_utf8(flipped).unwrap()),
        format!("sha256={}", sig.replace('a', "g")),
        "sha256=✓✓✓".to_owned(),
    ] {
        assert!(!verify_signature(secret, STARTER_ZH, &header), "{header:?}");
    }
}

// --- Discourse posts ----------------------------------------------------------

#[test]
fn topic_starter_in_chinese_opens_a_complaint_keyed_by_instance_and_post() {
    let p = post("post_created", INSTANCE, STARTER_ZH);
    let f = &p.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("forum.example.com:18342")
    );
    assert_eq!(
        f.title.as_deref(),
        Some("快递五天未送达，客服电话一直打不通")
    );
    assert_eq!(f.name.as_deref(), Some("王小明"));
    assert_eq!(
        f.forum_username.as_deref(),
        Some("forum.example.com/wangxiaoming")
    );
    assert_eq!(f.occurred_at.as_deref(), Some("2026-11-22T08:30:00Z"));
    let d = f.description.as_deref().unwrap();
    assert!(
        d.starts_with("我在11月18日通过你们的App下单了一台空气净化器"),
        "{d}"
    );
    assert!(d.contains("**三天内送达**"), "raw markdown is kept: {d}");
    assert!(
        d.contains("\n\n- 物流信息停在“杭州转运中心”不动\n- 客服热线"),
        "{d}"
    );
    assert!(
        !d.contains('\r') && !d.ends_with(' ') && d.ends_with("否则全额退款。"),
        "{d:?}"
    );
    // the CRLF raw is kept as the original since cleaning changed it
    assert!(p.original.contains("\r\n") && p.original.starts_with("我在11月18日"));
    assert_eq!(p.thread_keys, ["forum:forum.example.com:topic:5121"]);
    assert_eq!(p.reply_to, ["forum:forum.example.com:topic:5121"]);
    assert!(p.tracking_refs.is_empty() && p.attachments.is_empty());
    assert_eq!(
        p.extra("url"),
        Some("https://forum.example.com/t/topic/5121/1")
    );
    assert_eq!(p.extra("topic_id"), Some("5121"));
    assert_eq!(p.extra("post_number"), Some("1"));
    assert_eq!(p.extra("category_id"), Some("7"));
    assert_eq!(p.extra("category_slug"), Some("complaints"));
    assert_eq!(p.extra("reply_to_post_number"), None);
    assert_eq!(p.extra("author_staff"), None);
    assert!(!f.anonymous && f.phone.is_none() && f.email.is_none());
}

#[test]
fn reply_post_joins_the_topic_thread() {
    let starter = post("post_created", INSTANCE, STARTER_ZH);
    let p = post("post_created", INSTANCE, REPLY_ZH);
    assert_eq!(
        p.fields.channel_message_id.as_deref(),
        Some("forum.example.com:18377")
    );
    assert_eq!(
        p.reply_to, starter.thread_keys,
        "a reply answers the topic's key"
    );
    assert_eq!(p.thread_keys, starter.thread_keys);
    assert_eq!(
        p.fields.forum_username.as_deref(),
        Some("forum.example.com/lina_hz")
    );
    assert_eq!(p.fields.name.as_deref(), Some("李娜"));
    assert_eq!(p.fields.title, starter.fields.title);
    assert_eq!(
        p.fields.occurred_at.as_deref(),
        Some("2026-11-22T09:12:45Z")
    );
    let d = p.fields.description.as_deref().unwrap();
    assert!(
        d.starts_with("同样的问题！")
            && d.contains("> 客服热线 400")
            && d.ends_with("可我根本没收到。")
    );
    assert_eq!(p.original, "", "raw needed no cleaning");
    assert_eq!(
        p.extra("url"),
        Some("https://forum.example.com/t/topic/5121/3")
    );
    assert_eq!(p.extra("post_number"), Some("3"));
    assert_eq!(p.extra("reply_to_post_number"), Some("1"));
}

#[test]
fn edits_get_one_key_per_distinct_text() {
    let created = post("post_created", INSTANCE, STARTER_ZH);
    let edited = post("post_edited", INSTANCE, EDITED_ZH);
    let raw = serde_json::from_slice::<Value>(EDITED_ZH).unwrap()["post"]["raw"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = format!(
        "forum.example.com:18342:edit:{}",
        &hex::encode(Sha256::digest(raw.as_bytes()))[..16]
    );
    assert_eq!(
        edited.fields.channel_message_id.as_deref(),
        Some(expected.as_str())
    );
    assert_ne!(
        edited.fields.channel_message_id,
        created.fields.channel_message_id
    );
    assert_eq!(edited.reply_to, created.thread_keys);
    assert_eq!(edited.extra("event"), Some("post_edited"));
    assert!(
        edited
            .fields
            .description
            .as_deref()
            .unwrap()
            .contains("派送员电话是空号")
    );

    // Discourse's retry of the same edit repeats the key.
    let again = post("post_edited", INSTANCE, EDITED_ZH);
    assert_eq!(
        again.fields.channel_message_id,
        edited.fields.channel_message_id
    );
    // Another edit of the same post gets another key.
    let second = with(EDITED_ZH, |v| {
        v["post"]["raw"] = json!(format!("{raw}\n\n更新：今天下午终于送到了，但外包装破损。"));
        v["post"]["version"] = json!(3);
    });
    let second = post("post_edited", INSTANCE, &second);
    assert_ne!(
        second.fields.channel_message_id,
        edited.fields.channel_message_id
    );
    assert!(
        second
            .fields
            .channel_message_id
            .as_deref()
            .unwrap()
            .starts_with("forum.example.com:18342:edit:")
    );
}

#[test]
fn english_post_keeps_slug_url_and_category() {
    let p = post("post_created", "https://community.example.org", POST_EN);
    let f = &p.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("community.example.org:90211")
    );
    assert_eq!(
        f.title.as_deref(),
        Some("Charged twice for March invoice, support ticket closed")
    );
    assert_eq!(f.name.as_deref(), Some("Emily Carter"));
    assert_eq!(
        f.forum_username.as_deref(),
        Some("community.example.org/emily.carter")
    );
    assert_eq!(f.occurred_at.as_deref(), Some("2026-03-05T14:02:19Z"));
    assert!(
        f.description
            .as_deref()
            .unwrap()
            .ends_with("Thanks,\nEmily")
    );
    assert_eq!(
        p.extra("url"),
        Some(
            "https://community.example.org/t/charged-twice-for-march-invoice-support-ticket-closed/30117/1"
        )
    );
    assert_eq!(p.extra("category_slug"), Some("billing"));
    assert_eq!(p.thread_keys, ["forum:community.example.org:topic:30117"]);
}

#[test]
fn instance_header_is_reduced_to_the_lower_case_host() {
    for (instance, host) in [
        ("https://forum.example.com", "forum.example.com"),
        ("https://Forum.Example.COM/", "forum.example.com"),
        (
            "  https://forum.example.com/latest?x=1 ",
            "forum.example.com",
        ),
        ("forum.example.com", "forum.example.com"),
        ("http://bbs.example.cn:8080", "bbs.example.cn:8080"),
        ("https://论坛.例子.中国", "论坛.例子.中国"),
    ] {
        assert_eq!(instance_host(instance).as_deref(), Some(host), "{instance}");
        let p = post("post_created", instance, STARTER_ZH);
        assert_eq!(p.fields.channel_message_id, Some(format!("{host}:18342")));
        assert_eq!(p.thread_keys, [format!("forum:{host}:topic:5121")]);
    }
    let p = post("post_created", "http://bbs.example.cn:8080", STARTER_ZH);
    assert_eq!(
        p.extra("url"),
        Some("http://bbs.example.cn:8080/t/topic/5121/1")
    );
    for bad in [
        "",
        "   ",
        "https://",
        "https:///path",
        "https://exa mple.com",
        "https://a\u{0}b",
    ] {
        assert_eq!(instance_host(bad), None, "{bad:?}");
        let e = invalid_with_instance(bad);
        assert_eq!(e.field, "X-Discourse-Instance");
    }
}

fn invalid_with_instance(instance: &str) -> Invalid {
    parse_discourse("post_created", instance, STARTER_ZH).unwrap_err()
}

#[test]
fn events_without_a_post_are_ignored() {
    assert_eq!(
        parse_discourse("topic_created", INSTANCE, TOPIC_CREATED),
        Ok(Discourse::Ignored("topic without post text"))
    );
    assert_eq!(
        parse_discourse("ping", INSTANCE, PING),
        Ok(Discourse::Ignored("ping"))
    );
    for event in ["post_destroyed", "user_created", "topic_edited", ""] {
        assert!(
            matches!(
                parse_discourse(event, INSTANCE, STARTER_ZH),
                Ok(Discourse::Ignored(_))
            ),
            "{event}"
        );
    }
    // The event header is matched case-insensitively and trimmed.
    assert!(matches!(
        parse_discourse(" Post_Created ", INSTANCE, STARTER_ZH),
        Ok(Discourse::Post(_))
    ));
}

#[test]
fn deleted_hidden_system_and_whisper_posts_are_ignored() {
    assert_eq!(
        parse_discourse("post_created", INSTANCE, DELETED),
        Ok(Discourse::Ignored("deleted post"))
    );
    let cases: [(&str, Value, &str); 5] = [
        (
            "deleted_at",
            json!("2026-11-22T09:00:00.000Z"),
            "deleted post",
        ),
        ("user_deleted", json!(true), "deleted post"),
        ("hidden", json!(true), "hidden post"),
        (
            "post_type",
            json!(3),
            "forum action notice, not a user post",
        ),
        ("post_type", json!(4), "staff whisper"),
    ];
    for (key, value, reason) in cases {
        let body = with(STARTER_ZH, |v| v["post"][key] = value);
        for event in ["post_created", "post_edited"] {
            assert_eq!(
                parse_discourse(event, INSTANCE, &body),
                Ok(Discourse::Ignored(reason)),
                "{key} {event}"
            );
        }
    }
}

#[test]
fn cooked_html_is_used_when_raw_is_missing() {
    for raw in [Value::Null, json!(""), json!("  \n ")] {
        let body = with(STARTER_ZH, |v| {
            v["post"]["raw"] = raw;
        });
        let p = post("post_created", INSTANCE, &body);
        let d = p.fields.description.as_deref().unwrap();
        assert!(
            d.contains("承诺三天内送达，到今天已经第五天了还没收到。"),
            "{d}"
        );
        assert!(d.contains("- 物流信息停在“杭州转运中心”不动"), "{d}");
        assert!(!d.contains('<') && !d.contains("strong"), "{d}");
        assert!(p.original.starts_with("<p>我在11月18日"));
    }
    let no_text = with(STARTER_ZH, |v| {
        v["post"].as_object_mut().unwrap().remove("raw");
        v["post"]["cooked"] = json!("");
    });
    assert_eq!(invalid("post_created", &no_text).field, "post.raw");
}

#[test]
fn staff_authors_are_flagged() {
    let body = with(REPLY_ZH, |v| {
        v["post"]["staff"] = json!(true);
        v["post"]["moderator"] = json!(true);
    });
    let p = post("post_created", INSTANCE, &body);
    assert_eq!(p.extra("author_staff"), Some("true"));
}

#[test]
fn tracking_number_in_the_topic_title_is_a_reference() {
    let body = with(REPLY_ZH, |v| {
        v["post"]["topic_title"] = json!("投诉进度 [TS20261122-000123] 还没人处理")
    });
    let p = post("post_created", INSTANCE, &body);
    assert_eq!(p.tracking_refs, ["TS20261122-000123"]);
}

#[test]
fn missing_slug_or_post_number_still_gives_a_topic_url() {
    let body = with(STARTER_ZH, |v| {
        v["post"]["topic_slug"] = Value::Null;
    });
    let p = post("post_created", INSTANCE, &body);
    assert_eq!(p.extra("url"), Some("https://forum.example.com/t/5121/1"));
    let body = with(STARTER_ZH, |v| {
        v["post"]["topic_slug"] = json!("../../admin?x=1");
        v["post"]["post_number"] = Value::Null;
    });
    let p = post("post_created", INSTANCE, &body);
    assert_eq!(p.extra("url"), Some("https://forum.example.com/t/5121"));
    assert_eq!(p.extra("post_number"), None);
}

#[test]
fn wrong_types_and_missing_fields_name_the_field() {
    let cases: [(&str, Value, &str); 12] = [
        ("id", json!("18342"), "post.id"),
        ("id", json!(-1), "post.id"),
        ("id", json!(1.5), "post.id"),
        ("topic_id", json!(true), "post.topic_id"),
        ("raw", json!(42), "post.raw"),
        ("cooked", json!(["<p>x</p>"]), "post.cooked"),
        ("username", json!(7), "post.username"),
        ("username", json!("  "), "post.username"),
        ("topic_title", json!({"zh": "标题"}), "post.topic_title"),
        (
            "created_at",
            json!("2026-11-22 08:30:00"),
            "post.created_at",
        ),
        ("post_number", json!("3"), "post.post_number"),
        ("hidden", json!("false"), "post.hidden"),
    ];
    for (key, value, field) in cases {
        let body = with(STARTER_ZH, |v| v["post"][key] = value.clone());
        let e = invalid("post_created", &body);
        assert_eq!(e.field, field, "{key} = {value}: {e}");
    }
    for key in ["id", "topic_id", "username"] {
        let body = with(STARTER_ZH, |v| {
            v["post"].as_object_mut().unwrap().remove(key);
        });
        let e = invalid("post_created", &body);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (format!("post.{key}").as_str(), "missing")
        );
    }
    assert_eq!(invalid("post_created", TOPIC_CREATED).field, "post");
    assert_eq!(
        invalid("post_created", br#"{"post": "hello"}"#).field,
        "post"
    );
    assert_eq!(invalid("post_created", PING).field, "post");
}

#[test]
fn malformed_bodies_are_invalid_body() {
    let mut not_utf8 = STARTER_ZH.to_vec();
    let at = not_utf8.iter().position(|&b| b >= 0x80).unwrap();
    not_utf8[at] = 0xff;
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let very_deep = format!("{{\"post\":{}", "[".repeat(200_000));
    let deep_in_post = format!(
        "{{\"post\":{{\"id\":1,\"topic_id\":2,\"username\":\"a\",\"raw\":\"x\",\"x\":{}{}}}}}",
        "{\"a\":".repeat(70),
        "0".to_owned() + &"}".repeat(70)
    );
    for (body, what) in [
        (not_utf8.as_slice(), "not UTF-8"),
        (b"".as_slice(), "empty"),
        (b"   \n".as_slice(), "empty"),
        (b"{\"post\": {\"id\": 1,".as_slice(), "invalid JSON"),
        (b"[1, 2]".as_slice(), "must be a JSON object"),
        (b"null".as_slice(), "must be a JSON object"),
        (deep.as_bytes(), "nested deeper than 64"),
        (very_deep.as_bytes(), "nested deeper than 64"),
        (deep_in_post.as_bytes(), "nested deeper than 64"),
    ] {
        let e = invalid("post_created", body);
        assert_eq!(e.field, "body");
        assert!(e.message.contains(what), "{what}: {e}");
    }
    // Brackets inside strings do not count as nesting; 64 levels are fine.
    let brackets = with(STARTER_ZH, |v| {
        v["post"]["raw"] = json!("[[[[{{{{".repeat(20))
    });
    assert!(matches!(
        parse_discourse("post_created", INSTANCE, &brackets),
        Ok(Discourse::Post(_))
    ));
    let sixty_four = format!(
        "{{\"post\":{{\"id\":1,\"topic_id\":2,\"username\":\"a\",\"raw\":\"投诉内容\",\"x\":{}0{}}}}}",
        "[".repeat(62),
        "]".repeat(62)
    );
    assert!(matches!(
        parse_discourse("post_created", INSTANCE, sixty_four.as_bytes()),
        Ok(Discourse::Post(_))
    ));
    // A UTF-8 byte order mark is tolerated.
    let bom = [b"\xef\xbb\xbf".as_slice(), STARTER_ZH].concat();
    assert!(matches!(
        parse_discourse("post_created", INSTANCE, &bom),
        Ok(Discourse::Post(_))
    ));
}

// --- generic format -----------------------------------------------------------

#[test]
fn generic_chinese_post() {
    let p = parse_generic(GENERIC_ZH).unwrap();
    let f = &p.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("bbs.example.cn:p-778812")
    );
    assert_eq!(
        f.forum_username.as_deref(),
        Some("bbs.example.cn/老张在北京")
    );
    assert_eq!(f.title.as_deref(), Some("【投诉】宽带安装师傅爽约三次"));
    assert_eq!(f.occurred_at.as_deref(), Some("2026-11-22T11:20:00+08:00"));
    let d = f.description.as_deref().unwrap();
    assert!(
        d.starts_with("预约了11月20日上午装宽带") && d.contains("\n客服每次都说“已催促”。"),
        "{d}"
    );
    assert_eq!(p.thread_keys, ["forum:bbs.example.cn:thread:t-40021"]);
    assert_eq!(p.reply_to, p.thread_keys);
    assert_eq!(
        p.extra("url"),
        Some("https://bbs.example.cn/thread-40021-1-1.html")
    );
    assert_eq!(p.extra("thread_id"), Some("t-40021"));
    assert_eq!(p.original, "");
}

#[test]
fn generic_html_reply_with_numeric_ids_and_a_url_as_forum() {
    let p = parse_generic(GENERIC_HTML_EN).unwrap();
    let f = &p.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("community.example.net:55012")
    );
    assert_eq!(
        f.forum_username.as_deref(),
        Some("community.example.net/davek")
    );
    assert_eq!(p.reply_to, ["forum:community.example.net:thread:901"]);
    assert_eq!(f.occurred_at.as_deref(), Some("2026-11-21T19:45:10Z"));
    let d = f.description.as_deref().unwrap();
    assert!(d.contains("Same here — the TP-4000 router drops Wi"), "{d}");
    assert!(d.contains("Replacement unit did not help."), "{d}");
    assert!(!d.contains('<') && !d.contains("&mdash;"), "{d}");
    assert!(p.original.starts_with("<div class=\"post\">"));
}

#[test]
fn generic_text_with_angle_brackets_is_not_html() {
    let body = with(GENERIC_ZH, |v| {
        v["body"] = json!("充值 <50 元没到账，客服说 >24 小时才处理")
    });
    let p = parse_generic(&body).unwrap();
    assert_eq!(
        p.fields.description.as_deref(),
        Some("充值 <50 元没到账，客服说 >24 小时才处理")
    );
}

#[test]
fn generic_required_fields_and_types() {
    for key in ["forum", "post_id", "thread_id", "author", "body"] {
        let body = with(GENERIC_ZH, |v| {
            v.as_object_mut().unwrap().remove(key);
        });
        let e = parse_generic(&body).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), (key, "missing"));
    }
    let cases: [(&str, Value, &str); 12] = [
        ("post_id", json!(1.5), "post_id"),
        ("thread_id", json!({"id": 1}), "thread_id"),
        ("post_id", json!("p\u{7}1"), "post_id"),
        ("post_id", json!("x".repeat(201)), "post_id"),
        ("forum", json!(12), "forum"),
        ("forum", json!("bbs example"), "forum"),
        ("author", json!(""), "author"),
        ("author", json!("长".repeat(70)), "author"),
        ("body", json!("   "), "body"),
        ("title", json!(["标题"]), "title"),
        ("created_at", json!("昨天下午"), "created_at"),
        ("url", json!("javascript:alert(1)"), "url"),
    ];
    for (key, value, field) in cases {
        let body = with(GENERIC_ZH, |v| v[key] = value.clone());
        let e = parse_generic(&body).unwrap_err();
        assert_eq!(e.field, field, "{key} = {value}: {e}");
    }
    assert_eq!(parse_generic(b"\xff\xfe").unwrap_err().field, "body");
    assert_eq!(parse_generic(STARTER_ZH).unwrap_err().field, "forum");
}

#[test]
fn generic_optional_fields_may_be_absent() {
    let body = r#"{"forum":"bbs.example.cn","post_id":1,"thread_id":1,"author":"u1","body":"电费多扣了两次"}"#;
    let p = parse_generic(body.as_bytes()).unwrap();
    assert_eq!(p.fields.title, None);
    assert_eq!(p.fields.occurred_at, None);
    assert_eq!(p.extra, [("thread_id".to_owned(), "1".to_owned())]);
    assert_eq!(p.fields.description.as_deref(), Some("电费多扣了两次"));
}
