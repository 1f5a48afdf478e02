//! The five channels end to end through intake's HTTP endpoints, gRPC and
//! NATS request/reply: realistic messages in, complaints (or follow-ups)
//! committed, events published, rejections quarantined.

use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};
use tousu_channels::{forum, wechat};
use tousu_proto::v1 as pb;
use tousu_tests::{HttpResponse, Stack, http};

const WECHAT_TOKEN: &str = "tousu-test-token";
// Tencent's sample EncodingAESKey.
const WECHAT_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const WECHAT_APP: &str = "wx5823bf96d3bd56c7";
const DISCOURSE_SECRET: &str = "discourse-shared-secret";
const FORUM_SECRET: &str = "generic-forum-secret";

fn fixture(path: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/channels/tests/fixtures")
        .join(path);
    std::fs::read(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

async fn intake_stack(configure: impl Fn(&mut tousu_kit::Config) + Send + Sync + 'static) -> Stack {
    Stack::start_only(&["intake"], move |_, c| {
        c.wechat_token = WECHAT_TOKEN.into();
        c.wechat_app_id = WECHAT_APP.into();
        c.wechat_aes_key = WECHAT_KEY.into();
        c.discourse_secret = DISCOURSE_SECRET.into();
        c.forum_secret = FORUM_SECRET.into();
        configure(c);
    })
    .await
    .expect("stack")
}

async fn post(stack: &Stack, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    http(
        stack.http("intake"),
        "POST",
        path,
        &[("Content-Type", content_type)],
        body,
    )
    .await
    .unwrap()
}

async fn quarantined(stack: &Stack, channel: &str) -> Vec<(i16, String)> {
    let mut db = stack.db("intake").await.unwrap();
    sqlx::query_as("SELECT status, reason FROM quarantine WHERE channel = $1 ORDER BY id")
        .bind(channel)
        .fetch_all(&mut db)
        .await
        .unwrap()
}

async fn complaint(stack: &Stack, id: &str) -> pb::Complaint {
    let mut db = stack.db("intake").await.unwrap();
    let record: Vec<u8> = sqlx::query_scalar("SELECT record FROM complaints WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&mut db)
        .await
        .unwrap();
    pb::Complaint::decode(record.as_slice()).unwrap()
}

async fn count(stack: &Stack, sql: &'static str) -> i64 {
    let mut db = stack.db("intake").await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------- WeChat

fn wechat_text(openid: &str, msg_id: &str, content: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_3e8f2b1a9c77]]></ToUserName>\
         <FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>",
        now()
    )
}

async fn wechat_post(stack: &Stack, xml: &str, timestamp: i64) -> HttpResponse {
    let ts = timestamp.to_string();
    let sig = wechat::signature(&[WECHAT_TOKEN, &ts, "77123"]);
    let path =
        format!("/v1/channels/wechat?signature={sig}&timestamp={ts}&nonce=77123&openid=oUser");
    http(
        stack.http("intake"),
        "POST",
        &path,
        &[("Content-Type", "text/xml")],
        xml.as_bytes(),
    )
    .await
    .unwrap()
}

fn reply_content(body: &[u8]) -> String {
    let xml = String::from_utf8_lossy(body);
    wechat::parse_message(&xml).expect("reply XML").content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_plaintext_messages_become_complaints_merged_per_openid() {
    let stack = intake_stack(|_| {}).await;
    let intake = stack.http("intake");

    // URL verification.
    let ts = now().to_string();
    let sig = wechat::signature(&[WECHAT_TOKEN, &ts, "nonce1"]);
    let ok = http(
        intake,
        "GET",
        &format!(
            "/v1/channels/wechat?signature={sig}&timestamp={ts}&nonce=nonce1&echostr=echo-8812"
        ),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(
        (ok.status, ok.body.as_slice()),
        (200, b"echo-8812".as_slice())
    );
    let bad = http(
        intake,
        "GET",
        &format!("/v1/channels/wechat?signature=0000&timestamp={ts}&nonce=nonce1&echostr=x"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 401);

    // A text message: a complaint, answered with its tracking number.
    let first = wechat_text(
        "oW_openid_001",
        "24602238001",
        "小区电梯已经坏了一周，物业一直不修，老人上下楼很困难。",
    );
    let r = wechat_post(&stack, &first, now()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let reply = reply_content(&r.body);
    let tracking = reply
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("TS"))
        .expect("tracking number in reply")
        .to_owned();
    assert!(reply.contains("受理"), "{reply}");

    // Tencent's retry of the same MsgId: the same answer, no second complaint.
    let again = wechat_post(&stack, &first, now()).await;
    assert!(reply_content(&again.body).contains(&tracking));
    // A second message from the same openid within the window joins it.
    let more = wechat_text("oW_openid_001", "24602238002", "今天又有人被困在电梯里了。");
    let joined = wechat_post(&stack, &more, now()).await;
    let joined_reply = reply_content(&joined.body);
    assert!(
        joined_reply.contains(&tracking) && joined_reply.contains("补充"),
        "{joined_reply}"
    );
    // Tencent's retry of the merged message gets the same answer.
    let retried = reply_content(&wechat_post(&stack, &more, now()).await.body);
    assert_eq!(retried, joined_reply);
    // Another person: another complaint.
    let other = wechat_text(
        "oW_openid_002",
        "24602238003",
        "楼下餐馆油烟太大，窗户都不敢开。",
    );
    let other_reply = reply_content(&wechat_post(&stack, &other, now()).await.body);
    assert!(!other_reply.contains(&tracking));

    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 2);
    assert_eq!(count(&stack, "SELECT count(*) FROM follow_ups").await, 1);

    // Events are answered `success` and make no complaint.
    let subscribe = format!(
        "<xml><ToUserName><![CDATA[gh_3e8f2b1a9c77]]></ToUserName><FromUserName><![CDATA[oW_new]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>",
        now()
    );
    let ev = wechat_post(&stack, &subscribe, now()).await;
    assert_eq!(
        (ev.status, ev.body.as_slice()),
        (200, b"success".as_slice())
    );
    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 2);

    // Stale timestamp, bad signature, hostile XML: refused and quarantined.
    let stale = wechat_post(&stack, &wechat_text("oW_x", "1", "旧消息"), now() - 301).await;
    assert_eq!(stale.status, 401);
    assert!(stale.json()["detail"].as_str().unwrap().contains("stale"));
    let forged = http(
        intake,
        "POST",
        &format!(
            "/v1/channels/wechat?signature=deadbeef&timestamp={}&nonce=1",
            now()
        ),
        &[("Content-Type", "text/xml")],
        first.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(forged.status, 401);
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol3;</Content></xml>"#;
    let lol = wechat_post(&stack, laughs, now()).await;
    assert_eq!(lol.status, 400);
    assert_eq!(lol.header("content-type"), Some("application/problem+json"));
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content></xml>"#;
    let x = wechat_post(&stack, xxe, now()).await;
    assert_eq!(x.status, 400);
    assert!(!String::from_utf8_lossy(&x.body).contains("root:"));
    let q = quarantined(&stack, "wechat").await;
    let statuses: Vec<i16> = q.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [401, 401, 401, 400, 400], "{q:?}");

    // The service is still up.
    assert_eq!(
        http(intake, "GET", "/healthz", &[], b"")
            .await
            .unwrap()
            .status,
        200
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_safe_mode_decrypts_and_answers_encrypted() {
    let stack = intake_stack(|_| {}).await;
    let cipher = wechat::Cipher::new(WECHAT_KEY, WECHAT_APP).unwrap();
    let inner = wechat_text(
        "oW_safe_001",
        "24602239001",
        "充电宝充电时冒烟，差点起火，要求退货并赔偿。",
    );
    let encrypt = cipher.encrypt(&inner, *b"0123456789abcdef");
    let envelope = format!(
        "<xml><ToUserName><![CDATA[gh_3e8f2b1a9c77]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    let ts = now().to_string();
    let msg_signature = wechat::signature(&[WECHAT_TOKEN, &ts, "5511", &encrypt]);
    let signature = wechat::signature(&[WECHAT_TOKEN, &ts, "5511"]);
    let path = format!(
        "/v1/channels/wechat?signature={signature}&timestamp={ts}&nonce=5511&openid=oW_safe_001&encrypt_type=aes&msg_signature={msg_signature}"
    );
    let r = http(
        stack.http("intake"),
        "POST",
        &path,
        &[("Content-Type", "text/xml")],
        envelope.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The reply is a safe-mode envelope whose signature holds and whose
    // content carries the tracking number.
    let body = String::from_utf8(r.body).unwrap();
    let reply_encrypt = wechat::encrypted_envelope(&body).unwrap();
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open).unwrap() + open.len();
        let end = body[start..].find(&format!("</{name}>")).unwrap() + start;
        body[start..end]
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_owned()
    };
    assert!(wechat::verify_msg_signature(
        WECHAT_TOKEN,
        &field("TimeStamp"),
        &field("Nonce"),
        &reply_encrypt,
        &field("MsgSignature"),
    ));
    let reply = wechat::parse_message(&cipher.decrypt(&reply_encrypt).unwrap()).unwrap();
    assert_eq!(reply.to_user, "oW_safe_001");
    assert!(reply.content.contains("TS"), "{}", reply.content);

    // A tampered envelope: 401.
    let tampered = envelope.replace(&encrypt[..8], "AAAAAAAA");
    let bad = http(
        stack.http("intake"),
        "POST",
        &path,
        &[("Content-Type", "text/xml")],
        tampered.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 401);
    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 1);
    stack.stop().await.unwrap();
}

// ----------------------------------------------------------------- Email

async fn email_post(stack: &Stack, raw: &[u8]) -> HttpResponse {
    post(stack, "/v1/channels/email", "message/rfc822", raw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_complaints_replies_auto_replies_and_bad_mime() {
    let stack = intake_stack(|_| {}).await;
    // A complaint with a JPEG and a PDF: stored as evidence.
    let r = email_post(&stack, &fixture("email/08_mixed_jpeg_pdf_rfc2231.eml")).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let c = complaint(&stack, &id).await;
    let content = c.content.unwrap();
    assert_eq!(content.attachments.len(), 2);
    for a in &content.attachments {
        assert_eq!(a.sha256.len(), 64);
        assert_eq!(a.name, format!("sha256/{}", a.sha256));
        assert!(a.size > 0);
    }
    assert!(!c.complainant.unwrap().email.is_empty());

    // The same message again: the same complaint (200).
    let again = email_post(&stack, &fixture("email/08_mixed_jpeg_pdf_rfc2231.eml")).await;
    assert_eq!(
        (again.status, again.json()["id"].as_str().unwrap()),
        (200, id.as_str())
    );

    // A complaint and the customer's reply to it: one complaint, one follow-up.
    let original = email_post(&stack, &fixture("email/01_plain_utf8_zh.eml")).await;
    assert_eq!(original.status, 202);
    let original_id = original.json()["id"].as_str().unwrap().to_owned();
    let tracking = original.json()["tracking_no"].as_str().unwrap().to_owned();
    let message_id = {
        let raw = String::from_utf8_lossy(&fixture("email/01_plain_utf8_zh.eml")).to_string();
        let line = raw
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .unwrap()
            .to_owned();
        line.split_once(':').unwrap().1.trim().to_owned()
    };
    let reply = format!(
        "From: =?UTF-8?B?5byg5LiJ?= <zhangsan@example.com>\r\nTo: complaints@tousu.example\r\n\
         Subject: Re: complaint\r\nMessage-ID: <reply-1@example.com>\r\nIn-Reply-To: {message_id}\r\n\
         References: {message_id}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         补充一下：今天又联系了客服，还是没有结果。\r\n"
    );
    let r = email_post(&stack, reply.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["follow_up"], true);
    assert_eq!(r.json()["id"].as_str().unwrap(), original_id);
    // A reply naming only the tracking number in its subject.
    let by_number = format!(
        "From: zhangsan@example.com\r\nTo: complaints@tousu.example\r\nSubject: Re: [{tracking}] 还没处理\r\n\
         Message-ID: <reply-2@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         请问处理进度如何？\r\n"
    );
    let r = email_post(&stack, by_number.as_bytes()).await;
    assert_eq!(
        (
            r.json()["follow_up"].as_bool(),
            r.json()["tracking_no"].as_str()
        ),
        (Some(true), Some(tracking.as_str()))
    );

    // Auto-replies and bounces: 200 ignored, nothing made.
    let before = count(&stack, "SELECT count(*) FROM complaints").await;
    for f in [
        "email/14_out_of_office_auto_submitted.eml",
        "email/17_dsn_exchange_report.eml",
        "email/18_mailer_daemon_bounce.eml",
    ] {
        let r = email_post(&stack, &fixture(f)).await;
        assert_eq!(
            (r.status, r.json()["status"].as_str()),
            (200, Some("ignored")),
            "{f}"
        );
    }
    assert_eq!(
        count(&stack, "SELECT count(*) FROM complaints").await,
        before
    );

    // A broken boundary: 400 naming the problem, quarantined.
    let broken = email_post(&stack, &fixture("email/20_broken_boundary.eml")).await;
    assert_eq!(broken.status, 400);
    assert_eq!(
        broken.header("content-type"),
        Some("application/problem+json")
    );
    // Wrong media type: 415.
    let wrong = http(
        stack.http("intake"),
        "POST",
        "/v1/channels/email",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 415);
    let q = quarantined(&stack, "email").await;
    assert_eq!(q.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [400, 415]);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_over_the_limit_is_refused_with_413() {
    let stack = intake_stack(|_| {}).await;
    // 10.5 MB of evidence, base64 in the message: over the 10 MiB default.
    let data: Vec<u8> = (0..10_500_000u32).map(|i| (i % 251) as u8).collect();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&data)
    };
    let mut body = String::with_capacity(b64.len() + 1000);
    body.push_str(
        "From: li@example.com\r\nTo: complaints@tousu.example\r\nSubject: 监控录像\r\nMessage-ID: <big@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n附件是当天的监控录像。\r\n--b1\r\n\
         Content-Type: video/mp4; name=\"cctv.mp4\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"cctv.mp4\"\r\n\r\n",
    );
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(chunk).unwrap());
        body.push_str("\r\n");
    }
    body.push_str("--b1--\r\n");
    let r = email_post(&stack, body.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_fields(), ["attachments[0]"]);
    assert!(r.json()["detail"].as_str().unwrap().contains("cctv.mp4"));
    assert_eq!(quarantined(&stack, "email").await.len(), 1);
    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 0);
    stack.stop().await.unwrap();
}

// ----------------------------------------------------------------- Forum

async fn discourse_post(stack: &Stack, event: &str, body: &[u8], secret: &str) -> HttpResponse {
    let sig = format!("sha256={}", forum::hmac_sha256_hex(secret.as_bytes(), body));
    http(
        stack.http("intake"),
        "POST",
        "/v1/channels/forum",
        &[
            ("Content-Type", "application/json"),
            ("X-Discourse-Event", event),
            ("X-Discourse-Event-Id", "17"),
            ("X-Discourse-Instance", "https://forum.example.com"),
            ("X-Discourse-Event-Signature", &sig),
        ],
        body,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discourse_topics_become_complaints_and_replies_follow_ups() {
    let stack = intake_stack(|_| {}).await;
    let topic = fixture("forum/discourse_post_created_topic_zh.json");
    let r = discourse_post(&stack, "post_created", &topic, DISCOURSE_SECRET).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let reply = fixture("forum/discourse_post_created_reply_zh.json");
    let r = discourse_post(&stack, "post_created", &reply, DISCOURSE_SECRET).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        (
            r.json()["id"].as_str().unwrap(),
            r.json()["follow_up"].as_bool()
        ),
        (id.as_str(), Some(true))
    );
    assert_eq!(
        count(&stack, "SELECT max(follow_ups)::bigint FROM complaints").await,
        1
    );

    let ping = discourse_post(&stack, "ping", br#"{"ping":"OK"}"#, DISCOURSE_SECRET).await;
    assert_eq!(ping.json()["status"], "ignored");

    // Wrong secret, missing signature: 401.
    let forged = discourse_post(&stack, "post_created", &topic, "not-the-secret").await;
    assert_eq!(forged.status, 401);
    let unsigned = http(
        stack.http("intake"),
        "POST",
        "/v1/channels/forum",
        &[
            ("Content-Type", "application/json"),
            ("X-Discourse-Event", "post_created"),
            ("X-Discourse-Instance", "https://forum.example.com"),
        ],
        &topic,
    )
    .await
    .unwrap();
    assert_eq!(unsigned.status, 401);

    // The generic forum JSON, signed with its own secret.
    let generic = serde_json::to_vec(&json!({
        "forum": "bbs.example.cn", "post_id": 90211, "thread_id": "t-5531", "author": "wangwu",
        "title": "物业乱收停车费", "body": "<p>物业今年突然把停车费从150涨到300，<b>没有任何公示</b>。</p>",
        "created_at": "2026-11-23T09:12:00+08:00", "url": "https://bbs.example.cn/t/5531"
    }))
    .unwrap();
    let sig = format!(
        "sha256={}",
        forum::hmac_sha256_hex(FORUM_SECRET.as_bytes(), &generic)
    );
    let r = http(
        stack.http("intake"),
        "POST",
        "/v1/channels/forum",
        &[
            ("Content-Type", "application/json"),
            ("X-Tousu-Signature", &sig),
        ],
        &generic,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let c = complaint(&stack, r.json()["id"].as_str().unwrap()).await;
    let content = c.content.unwrap();
    assert!(
        !content.description.contains("<p>"),
        "{}",
        content.description
    );
    assert!(content.description.contains("没有任何公示"));
    assert!(
        c.complainant
            .unwrap()
            .identity_keys
            .iter()
            .any(|k| k.starts_with("forum:"))
    );

    // Deep nesting: 400, not a crash.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let sig = format!(
        "sha256={}",
        forum::hmac_sha256_hex(FORUM_SECRET.as_bytes(), deep.as_bytes())
    );
    let r = http(
        stack.http("intake"),
        "POST",
        "/v1/channels/forum",
        &[
            ("Content-Type", "application/json"),
            ("X-Tousu-Signature", &sig),
        ],
        deep.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        quarantined(&stack, "forum")
            .await
            .iter()
            .map(|q| q.0)
            .collect::<Vec<_>>(),
        [401, 401, 400]
    );
    stack.stop().await.unwrap();
}

// ----------------------------------------------------------------- Phone

async fn phone_post(stack: &Stack, body: &[u8]) -> HttpResponse {
    post(stack, "/v1/channels/phone", "application/json", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_call_records_and_freeswitch_cdrs() {
    let stack = intake_stack(|_| {}).await;
    let record = serde_json::to_vec(&json!({
        "call_id": "CC-20261124-00042", "caller": "13912345678", "callee": "4008001234",
        "agent_id": "A1027", "started_at": "2026-11-24T09:30:05+08:00", "ended_at": "2026-11-24T09:36:40+08:00",
        "ivr_path": ["投诉", "物流"], "transcript": "客户反映快递显示已签收但本人并未收到，要求查明并赔偿。",
        "notes": "客户情绪激动，已安抚。", "recording_url": "https://cc.example.com/rec/00042.wav",
        "category_hint": "logistics", "customer_ref": "C-778812"
    }))
    .unwrap();
    let r = phone_post(&stack, &record).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let c = complaint(&stack, &id).await;
    assert_eq!(c.complainant.unwrap().phone, "+8613912345678");
    assert_eq!(c.channel_message_id, "CC-20261124-00042");
    let again = phone_post(&stack, &record).await;
    assert_eq!(
        (again.status, again.json()["id"].as_str().unwrap()),
        (200, id.as_str())
    );

    let r = phone_post(&stack, &fixture(&freeswitch_fixture())).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));

    // No transcript and no notes: 400 naming them.
    let bare = serde_json::to_vec(&json!({"call_id": "CC-1", "caller": "13912345678"})).unwrap();
    let r = phone_post(&stack, &bare).await;
    assert_eq!(r.status, 400);
    assert!(
        r.problem_fields().iter().any(|f| f == "transcript"),
        "{:?}",
        r.problem_fields()
    );
    assert_eq!(quarantined(&stack, "phone").await.len(), 1);
    stack.stop().await.unwrap();
}

/// The first FreeSWITCH CDR among the phone fixtures.
fn freeswitch_fixture() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/channels/tests/fixtures/phone");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("freeswitch") && !n.contains("no_text") && !n.contains("missing"))
        .collect();
    names.sort();
    format!("phone/{}", names.first().expect("a FreeSWITCH fixture"))
}

// ------------------------------------------------- Web form: files, page

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_web_form_and_the_public_form_page() {
    let stack = intake_stack(|c| c.form_rate_per_minute = 2).await;
    let intake = stack.http("intake");
    let jpeg: Vec<u8> = [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        &[7u8; 3000][..],
        &[0xFF, 0xD9][..],
    ]
    .concat();
    let mut body = Vec::new();
    let b = "----tousu7MA4YWxkTrZu0gW";
    for (name, value) in [
        ("description", "买的电饭煲用了两次内胆就掉漆了，要求退货。"),
        ("phone", "13712345678"),
        ("product", "电饭煲"),
    ] {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"内胆.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    body.extend(&jpeg);
    body.extend(format!("\r\n--{b}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={b}");
    let r = http(
        intake,
        "POST",
        "/v1/complaints",
        &[("Content-Type", &ct)],
        &body,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let c = complaint(&stack, r.json()["id"].as_str().unwrap()).await;
    let a = &c.content.unwrap().attachments[0];
    assert_eq!(
        (a.filename.as_str(), a.media_type.as_str(), a.size),
        ("内胆.jpg", "image/jpeg", jpeg.len() as u64)
    );
    // The bytes are in the evidence bucket under their SHA-256.
    let client = async_nats::connect(&stack.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let store = js.get_object_store("tousu-evidence-dev").await.unwrap();
    let mut object = store.get(&a.name).await.unwrap();
    let mut stored = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut stored)
        .await
        .unwrap();
    assert_eq!(stored, jpeg);

    // The page, in both languages.
    let zh = http(intake, "GET", "/form", &[], b"").await.unwrap();
    assert_eq!(zh.status, 200);
    assert!(String::from_utf8_lossy(&zh.body).contains("投诉"));
    let en = http(intake, "GET", "/form?lang=en", &[], b"")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&en.body).contains("Submit a complaint"));
    // Submitting shows the tracking number; a bad one re-shows the form with the error.
    let form =
        "description=%E5%BA%97%E5%91%98%E6%80%81%E5%BA%A6%E6%81%B6%E5%8A%A3&phone=13612345678";
    let done = http(
        intake,
        "POST",
        "/form",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, 202);
    assert!(String::from_utf8_lossy(&done.body).contains("TS"));
    let bad = http(
        intake,
        "POST",
        "/form?lang=en",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"description=+&phone=1",
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("<form"));
    // The third from this address within the minute: 429.
    let limited = http(
        intake,
        "POST",
        "/form",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(limited.status, 429);
    stack.stop().await.unwrap();
}

// ------------------------------------------ NATS request/reply, quarantine

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_request_reply_answers_like_grpc() {
    let stack = intake_stack(|_| {}).await;
    let client = async_nats::connect(&stack.nats.url).await.unwrap();
    let submission = tousu_proto::intake::Submission {
        channel: pb::Channel::Phone as i32,
        channel_message_id: "ivr-771".into(),
        description: "热水器安装后漏水，师傅一直不上门。".into(),
        phone: "13512345678".into(),
        ..Default::default()
    };
    let ask = |s: &tousu_proto::intake::Submission, subject: &'static str| {
        let (client, body) = (client.clone(), s.encode_to_vec());
        async move { client.request(subject, body.into()).await.unwrap() }
    };
    let first = ask(&submission, "tousu.intake.phone").await;
    let reply = tousu_proto::intake::SubmitReply::decode(first.payload.as_ref()).unwrap();
    assert!(reply.tracking_no.starts_with("TS") && !reply.duplicate);
    let second = tousu_proto::intake::SubmitReply::decode(
        ask(&submission, "tousu.intake.phone")
            .await
            .payload
            .as_ref(),
    )
    .unwrap();
    assert_eq!((second.id, second.duplicate), (reply.id, true));

    let empty = tousu_proto::intake::Submission {
        description: " ".into(),
        ..submission.clone()
    };
    let bad = ask(&empty, "tousu.intake.phone").await;
    let headers = bad.headers.expect("error headers");
    assert_eq!(
        headers.get("Nats-Service-Error-Code").map(|v| v.as_str()),
        Some("400")
    );
    let problem: Value = serde_json::from_slice(&bad.payload).unwrap();
    assert_eq!(problem["errors"][0]["field"], "description");
    let mismatch = ask(&submission, "tousu.intake.email").await;
    assert_eq!(
        mismatch
            .headers
            .unwrap()
            .get("Nats-Service-Error-Code")
            .map(|v| v.as_str()),
        Some("400")
    );
    assert_eq!(quarantined(&stack, "phone").await.len(), 1);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_input_is_listed_shown_and_replayed() {
    let stack = intake_stack(|_| {}).await;
    let intake = stack.http("intake");
    // A WeChat message that arrived while our clock was off: refused as stale.
    let xml = wechat_text("oW_late", "88001", "停水三天了，没有任何通知。");
    let r = wechat_post(&stack, &xml, now() - 900).await;
    assert_eq!(r.status, 401);
    let list = http(intake, "GET", "/v1/quarantine?channel=wechat", &[], b"")
        .await
        .unwrap();
    let entries = list.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    let id = entries[0]["id"].as_i64().unwrap();
    assert_eq!(entries[0]["status"], 401);
    let shown = http(intake, "GET", &format!("/v1/quarantine/{id}"), &[], b"")
        .await
        .unwrap();
    assert!(shown.json()["body"].as_str().unwrap().contains("停水三天"));
    assert_eq!(shown.json()["meta"]["path"], "/v1/channels/wechat");

    // The operator replays it: accepted now, and the entry says so.
    let replayed = http(
        intake,
        "POST",
        &format!("/v1/quarantine/{id}/replay"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(
        replayed.status,
        200,
        "{}",
        String::from_utf8_lossy(&replayed.body)
    );
    assert!(reply_content(&replayed.body).contains("TS"));
    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 1);
    let after = http(intake, "GET", &format!("/v1/quarantine/{id}"), &[], b"")
        .await
        .unwrap();
    assert!(
        after.json()["replay_result"]
            .as_str()
            .unwrap()
            .starts_with("200")
    );
    let missing = http(intake, "GET", "/v1/quarantine/999999", &[], b"")
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_of_one_channel_message_make_one_complaint() {
    let stack = intake_stack(|_| {}).await;
    let raw = fixture("email/23_english.eml");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (addr, raw) = (stack.http("intake"), raw.clone());
        tasks.push(tokio::spawn(async move {
            http(
                addr,
                "POST",
                "/v1/channels/email",
                &[("Content-Type", "message/rfc822")],
                &raw,
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.status == 202 || r.status == 200, "{}", r.status);
        created += usize::from(r.status == 202);
        ids.insert(r.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(count(&stack, "SELECT count(*) FROM complaints").await, 1);
    // And exactly one complaint.received event on the stream.
    let client = async_nats::connect(&stack.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let messages = || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("TOUSU_EVENTS").await.unwrap();
            stream.info().await.unwrap().state.messages
        }
    };
    tousu_tests::wait_until(Duration::from_secs(10), || async { messages().await >= 1 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(messages().await, 1);
    stack.stop().await.unwrap();
}
