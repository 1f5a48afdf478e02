//! notify's channels against real servers: an axum receiver started in the
//! test plays the WeCom / DingTalk / Feishu robots, the generic webhook,
//! the SMS gateway and the WeChat API, and checks bodies and signatures
//! with the algorithms as their vendors document them (recomputed here with
//! the hmac / sha2 crates, not through the service's code); an aiosmtpd
//! process (PyPI, installed by scripts/bootstrap) receives the mail.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tousu_kit::Config;
use tousu_notify::channels::{Channels, SendError};
use tousu_notify::model::Message;
use tousu_tests::{ChildProcess, wait_until};

// ---------------------------------------------------------------------------
// Signatures, recomputed from each vendor's documented formula.

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn notify_channels_test_crypto_matches_published_vectors() {
    // FIPS 180-2 appendix B.1 and RFC 4231 test cases 1 and 2: the crates,
    // and the key / message order of the helper above.
    assert_eq!(
        hex::encode(Sha256::digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(Sha256::digest(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk: base64(HMAC-SHA256(key = secret, "{timestamp}\n{secret}")).
fn dingtalk_sign(timestamp: &str, secret: &str) -> String {
    b64(&hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp}\n{secret}").as_bytes(),
    ))
}

/// Feishu: base64(HMAC-SHA256(key = "{timestamp}\n{secret}", empty)).
fn feishu_sign(timestamp: &str, secret: &str) -> String {
    b64(&hmac_sha256(
        format!("{timestamp}\n{secret}").as_bytes(),
        b"",
    ))
}

/// tousu's webhook: sha256=hex(HMAC-SHA256(secret, "{timestamp}.{body}")).
fn webhook_signature(timestamp: &str, body: &[u8], secret: &str) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------
// The receiver: an axum server on a free port that records every request
// and answers from the test's function.

#[derive(Clone, Debug)]
struct Request {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as application/x-www-form-urlencoded pairs (axum's `Form`).
    async fn form(&self) -> Vec<(String, String)> {
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(self.body.clone()))
            .expect("a request");
        let Form(pairs) = Form::from_request(request, &()).await.expect("a form body");
        pairs
    }
}

/// A scripted answer, with a JSON content type as the vendors send.
fn reply(status: u16, body: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).expect("a status code");
    let json = [(header::CONTENT_TYPE, "application/json")];
    (status, json, body.into()).into_response()
}

fn json_reply(v: Value) -> Response {
    reply(200, v.to_string())
}

/// On a reply (as an extension): the receiver holds it back this long.
#[derive(Clone, Copy)]
struct Delay(Duration);

type Script = dyn Fn(&Request) -> Response + Send + Sync;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Request>>>,
    script: Arc<Script>,
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        path: uri.path().to_owned(),
        query,
        headers,
        body,
    };
    let response = (shared.script)(&request);
    shared.seen.lock().expect("requests").push(request);
    if let Some(Delay(delay)) = response.extensions().get::<Delay>().copied() {
        tokio::time::sleep(delay).await;
    }
    response
}

struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Shared {
            seen: Arc::default(),
            script: Arc::new(script),
        };
        let seen = shared.seen.clone();
        let app = Router::new().fallback(record).with_state(shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
        Receiver { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self, path: &str) -> Vec<Request> {
        self.seen
            .lock()
            .expect("requests")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn message(language: &str) -> Message {
    Message {
        language: language.into(),
        subject: "一级投诉 TS-20250301-0001".into(),
        text: "燃气泄漏投诉需立即处理（\"紧急\" & 重要）".into(),
        html: "<p>燃气泄漏投诉需立即处理</p>".into(),
        markdown: "**一级投诉** TS-20250301-0001\n燃气泄漏投诉需立即处理".into(),
        link: "http://console.test/complaints/c-1".into(),
        ack_link: "http://notify.test/v1/acks/tok-1".into(),
        event_type: "escalation.raised".into(),
        event_id: "e-1".into(),
        complaint_id: "c-1".into(),
        tracking_no: "TS-20250301-0001".into(),
        data: json!({"grade": 1, "department": "gas", "contact": "138****5678"}),
        ..Message::default()
    }
}

fn config() -> Config {
    let mut c = Config::defaults("notify");
    c.notify_timeout_secs = 2;
    c
}

fn transient(
    r: &Result<tousu_notify::channels::Sent, SendError>,
) -> Option<(Option<u16>, Option<Duration>, String)> {
    match r {
        Err(SendError::Transient {
            status,
            retry_after,
            detail,
        }) => Some((*status, *retry_after, detail.clone())),
        _ => None,
    }
}

fn permanent(r: &Result<tousu_notify::channels::Sent, SendError>) -> Option<(Option<u16>, String)> {
    match r {
        Err(SendError::Permanent { status, detail }) => Some((*status, detail.clone())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Robots and the webhook: bodies and signatures.

const WECOM_KEY: &str = "wk-0d6f1b7e-default";
const WECOM_OWN_KEY: &str = "wk-93aa-own";
const DING_TOKEN: &str = "dt-default";
const DING_SECRET: &str = "SEC8a1f0c2d9e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1";
const DING_OWN_TOKEN: &str = "dt-own";
const DING_OWN_SECRET: &str = "SECown+/=secret";
const FEISHU_HOOK: &str = "2f3a5d0e-1111-2222-3333-0123456789ab";
const FEISHU_SECRET: &str = "fs-secret-Qm9vaw";
const WEBHOOK_SECRET: &str = "wh-s3cret";

/// A receiver that behaves like the robots: a wrong key, token or
/// signature gets the vendor's error code.
async fn robots() -> Receiver {
    Receiver::start(|r| match r.path.as_str() {
        "/cgi-bin/webhook/send" => {
            if r.query("key") == Some(WECOM_KEY) || r.query("key") == Some(WECOM_OWN_KEY) {
                json_reply(json!({"errcode": 0, "errmsg": "ok"}))
            } else {
                json_reply(json!({"errcode": 93000, "errmsg": "invalid webhook url"}))
            }
        }
        "/robot/send" => {
            let secret = match r.query("access_token") {
                Some(DING_TOKEN) => DING_SECRET,
                Some(DING_OWN_TOKEN) => DING_OWN_SECRET,
                _ => {
                    return json_reply(
                        json!({"errcode": 300001, "errmsg": "token is not exist"}),
                    );
                }
            };
            let ts = r.query("timestamp").unwrap_or("");
            let fresh = ts
                .parse::<i64>()
                .is_ok_and(|ms| (ms / 1000 - now_unix()).abs() < 3600);
            if fresh && r.query("sign") == Some(dingtalk_sign(ts, secret).as_str()) {
                json_reply(json!({"errcode": 0, "errmsg": "ok"}))
            } else {
                json_reply(json!({"errcode": 310000, "errmsg": "sign not match"}))
            }
        }
        p if p == format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}") => {
            let body = r.json();
            let ts = body["timestamp"].as_str().unwrap_or("");
            let fresh = ts
                .parse::<i64>()
                .is_ok_and(|s| (s - now_unix()).abs() < 3600);
            if fresh && body["sign"].as_str() == Some(feishu_sign(ts, FEISHU_SECRET).as_str()) {
                json_reply(json!({"code": 0, "msg": "success", "data": {}}))
            } else {
                json_reply(json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}))
            }
        }
        "/hooks/tousu" | "/hooks/other" => {
            let ts = r.header("X-Tousu-Timestamp").unwrap_or("");
            let fresh = ts.parse::<i64>().is_ok_and(|s| (s - now_unix()).abs() < 300);
            let good = r.header("X-Tousu-Signature")
                == Some(webhook_signature(ts, &r.body, WEBHOOK_SECRET).as_str());
            if fresh && good {
                reply(204, "")
            } else {
                reply(401, "bad signature")
            }
        }
        _ => reply(404, "no such robot"),
    })
    .await
}

fn robots_config(rx: &Receiver) -> Config {
    let mut c = config();
    c.notify_wecom_webhook = rx.url(&format!("/cgi-bin/webhook/send?key={WECOM_KEY}"));
    c.notify_dingtalk_webhook = rx.url(&format!("/robot/send?access_token={DING_TOKEN}"));
    c.notify_dingtalk_secret = DING_SECRET.into();
    c.notify_feishu_webhook = rx.url(&format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}"));
    c.notify_feishu_secret = FEISHU_SECRET.into();
    c.notify_webhook_url = rx.url("/hooks/tousu");
    c.notify_webhook_secret = WEBHOOK_SECRET.into();
    c
}

#[tokio::test]
async fn notify_channels_robots_and_webhook_bodies_and_signatures() -> anyhow::Result<()> {
    let rx = robots().await;
    let channels = Channels::new(&robots_config(&rx))?;
    let m = message("zh-CN");

    // WeCom: markdown to the group; text with @mentions for a member.
    for address in ["", "zhangsan", "13800001111"] {
        let sent = channels.send("wecom", address, &m).await;
        assert!(sent.is_ok(), "wecom {address:?}: {sent:?}");
    }
    let own = rx.url(&format!("/cgi-bin/webhook/send?key={WECOM_OWN_KEY}"));
    assert!(channels.send("wecom", &own, &m).await.is_ok());
    let wecom = rx.requests("/cgi-bin/webhook/send");
    assert_eq!(wecom.len(), 4);
    assert!(
        wecom
            .iter()
            .all(|r| r.method == Method::POST
                && r.header("content-type") == Some("application/json"))
    );
    let group = wecom[0].json();
    assert_eq!(group["msgtype"], "markdown");
    let content = group["markdown"]["content"].as_str().unwrap_or("");
    assert!(
        content.starts_with("**一级投诉** TS-20250301-0001\n燃气泄漏投诉需立即处理"),
        "{content}"
    );
    assert!(
        content.contains("(http://console.test/complaints/c-1)"),
        "{content}"
    );
    assert!(
        content.contains("(http://notify.test/v1/acks/tok-1)"),
        "{content}"
    );
    let user = wecom[1].json();
    assert_eq!(user["msgtype"], "text");
    assert_eq!(user["text"]["mentioned_list"], json!(["zhangsan"]));
    assert!(
        user["text"]["content"]
            .as_str()
            .unwrap_or("")
            .starts_with("一级投诉 TS-20250301-0001\n")
    );
    assert_eq!(
        wecom[2].json()["text"]["mentioned_mobile_list"],
        json!(["13800001111"])
    );
    assert_eq!(wecom[3].query("key"), Some(WECOM_OWN_KEY));
    assert_eq!(wecom[3].json()["msgtype"], "markdown");

    // DingTalk: signed URL (the receiver refuses a bad sign with 310000).
    for address in ["", "13900002222", "manager4220"] {
        let sent = channels.send("dingtalk", address, &m).await;
        assert!(sent.is_ok(), "dingtalk {address:?}: {sent:?}");
    }
    // A robot of its own, its secret after '#'.
    let own = format!(
        "{}#{DING_OWN_SECRET}",
        rx.url(&format!("/robot/send?access_token={DING_OWN_TOKEN}"))
    );
    let sent = channels.send("dingtalk", &own, &m).await;
    assert!(sent.is_ok(), "dingtalk own robot: {sent:?}");
    let ding = rx.requests("/robot/send");
    assert_eq!(ding.len(), 4);
    for (r, secret) in ding
        .iter()
        .zip([DING_SECRET, DING_SECRET, DING_SECRET, DING_OWN_SECRET])
    {
        // Recomputed from the query's timestamp with DingTalk's formula.
        let ts = r.query("timestamp").expect("timestamp");
        assert_eq!(ts.len(), 13, "milliseconds: {ts}");
        assert_eq!(r.query("sign"), Some(dingtalk_sign(ts, secret).as_str()));
    }
    let group = ding[0].json();
    assert_eq!(group["msgtype"], "markdown");
    assert_eq!(group["markdown"]["title"], "一级投诉 TS-20250301-0001");
    assert_eq!(group["at"]["isAtAll"], false);
    assert_eq!(ding[1].json()["at"]["atMobiles"], json!(["13900002222"]));
    assert!(
        ding[1].json()["markdown"]["text"]
            .as_str()
            .unwrap_or("")
            .ends_with("@13900002222")
    );
    assert_eq!(ding[2].json()["at"]["atUserIds"], json!(["manager4220"]));

    // Feishu: timestamp + sign in the body (19021 on a bad one).
    for address in ["", "ou_7d8a6e6df7621556ce0d21922b676706"] {
        let sent = channels.send("feishu", address, &m).await;
        assert!(sent.is_ok(), "feishu {address:?}: {sent:?}");
    }
    let feishu = rx.requests(&format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}"));
    assert_eq!(feishu.len(), 2);
    for r in &feishu {
        let body = r.json();
        let ts = body["timestamp"].as_str().expect("timestamp is a string");
        assert_eq!(ts.len(), 10, "seconds: {ts}");
        assert_eq!(
            body["sign"].as_str(),
            Some(feishu_sign(ts, FEISHU_SECRET).as_str())
        );
    }
    let card = feishu[0].json();
    assert_eq!(card["msg_type"], "interactive");
    assert_eq!(
        card["card"]["header"]["title"]["content"],
        "一级投诉 TS-20250301-0001"
    );
    assert!(
        card["card"]["elements"][0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("燃气泄漏")
    );
    let text = feishu[1].json();
    assert_eq!(text["msg_type"], "text");
    assert!(
        text["content"]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("<at user_id=\"ou_7d8a6e6df7621556ce0d21922b676706\"></at> 一级投诉")
    );

    // Webhook: the default URL, and a URL as the address.
    let sent = channels.send("webhook", "", &m).await;
    assert!(matches!(&sent, Ok(s) if s.status == 204), "{sent:?}");
    let sent = channels.send("webhook", &rx.url("/hooks/other"), &m).await;
    assert!(sent.is_ok(), "{sent:?}");
    for path in ["/hooks/tousu", "/hooks/other"] {
        let hooks = rx.requests(path);
        assert_eq!(hooks.len(), 1, "{path}");
        let r = &hooks[0];
        let ts = r.header("X-Tousu-Timestamp").expect("timestamp");
        assert_eq!(
            r.header("X-Tousu-Signature"),
            Some(webhook_signature(ts, &r.body, WEBHOOK_SECRET).as_str())
        );
        assert_eq!(r.header("X-Tousu-Event"), Some("escalation.raised"));
        let body = r.json();
        assert_eq!(body["subject"], m.subject);
        assert_eq!(body["text"], m.text);
        assert_eq!(body["link"], m.link);
        assert_eq!(body["ack_link"], m.ack_link);
        assert_eq!(body["tracking_no"], m.tracking_no);
        assert_eq!(body["data"], m.data);
    }

    // One breaker key per robot, and no key, token, hook id or secret in it.
    let endpoints = [
        channels.endpoint("wecom", ""),
        channels.endpoint("wecom", "zhangsan"),
        channels.endpoint(
            "wecom",
            &rx.url(&format!("/cgi-bin/webhook/send?key={WECOM_OWN_KEY}")),
        ),
        channels.endpoint("dingtalk", ""),
        channels.endpoint("dingtalk", &own),
        channels.endpoint("feishu", "ou_x"),
        channels.endpoint("webhook", ""),
        channels.endpoint("webhook", &rx.url("/hooks/other")),
    ];
    assert_eq!(
        endpoints[0], endpoints[1],
        "a mention goes through the default robot"
    );
    let distinct: HashSet<&String> = endpoints.iter().collect();
    assert_eq!(distinct.len(), endpoints.len() - 1, "{endpoints:?}");
    for e in &endpoints {
        for secret in [
            WECOM_KEY,
            WECOM_OWN_KEY,
            DING_TOKEN,
            DING_OWN_TOKEN,
            DING_SECRET,
            DING_OWN_SECRET,
            FEISHU_HOOK,
            FEISHU_SECRET,
            WEBHOOK_SECRET,
        ] {
            assert!(!e.contains(secret), "{e} shows {secret}");
        }
    }
    assert!(
        endpoints[0].starts_with(&format!(
            "wecom:127.0.0.1:{}/cgi-bin/webhook/send#",
            rx.addr.port()
        )),
        "{}",
        endpoints[0]
    );
    Ok(())
}

#[tokio::test]
async fn notify_channels_signatures_refused_with_a_wrong_secret() -> anyhow::Result<()> {
    // The same receiver refuses what a wrongly configured secret signs:
    // the vendors' refusal codes are permanent.
    let rx = robots().await;
    let mut c = robots_config(&rx);
    c.notify_dingtalk_secret = "SECwrong".into();
    c.notify_feishu_secret = "wrong".into();
    c.notify_webhook_secret = "wrong".into();
    let channels = Channels::new(&c)?;
    let m = message("en");
    let r = channels.send("dingtalk", "", &m).await;
    let (status, detail) = permanent(&r).expect("permanent");
    assert_eq!(status, Some(200));
    assert!(detail.contains("310000"), "{detail}");
    let r = channels.send("feishu", "", &m).await;
    assert!(
        permanent(&r).is_some_and(|(_, d)| d.contains("19021")),
        "{r:?}"
    );
    let r = channels.send("webhook", "", &m).await;
    assert_eq!(permanent(&r).map(|p| p.0), Some(Some(401)), "{r:?}");
    let r = channels
        .send("wecom", &rx.url("/cgi-bin/webhook/send?key=nope"), &m)
        .await;
    assert!(
        permanent(&r).is_some_and(|(_, d)| d.contains("93000")),
        "{r:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Error mapping: rate-limit codes, 5xx, 429 with Retry-After, timeouts.

#[tokio::test]
async fn notify_channels_errors_map_to_transient_or_permanent() -> anyhow::Result<()> {
    let retry_date = httpdate_in(120);
    let rx = Receiver::start(move |r| match r.path.as_str() {
        "/wecom/limited" => {
            json_reply(json!({"errcode": 45009, "errmsg": "api freq out of limit"}))
        }
        "/wecom/500" => reply(500, "oops"),
        "/ding/limited" => json_reply(
            json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        ),
        "/feishu/hook/limited" => json_reply(json!({"code": 11232, "msg": "frequency limited"})),
        "/feishu/hook/429" => ([(header::RETRY_AFTER, "30")], reply(429, "{}")).into_response(),
        "/hook/500" => reply(500, "internal error"),
        "/hook/429" => ([(header::RETRY_AFTER, "7")], reply(429, "slow down")).into_response(),
        "/hook/503" => (
            [(header::RETRY_AFTER, retry_date.as_str())],
            reply(503, "maintenance"),
        )
            .into_response(),
        "/hook/404" => reply(404, "gone"),
        "/hook/400" => reply(400, "bad"),
        "/hook/slow" => {
            (Extension(Delay(Duration::from_secs(5))), reply(200, "late")).into_response()
        }
        _ => reply(404, ""),
    })
    .await;
    let mut c = config();
    c.notify_timeout_secs = 1;
    let channels = Channels::new(&c)?;
    let m = message("en");

    let r = channels
        .send("wecom", &rx.url("/wecom/limited?key=k"), &m)
        .await;
    let (status, _, detail) = transient(&r).expect("45009 is transient");
    assert_eq!(status, Some(200));
    assert!(detail.contains("45009"), "{detail}");
    let r = channels
        .send("wecom", &rx.url("/wecom/500?key=k"), &m)
        .await;
    assert_eq!(transient(&r).map(|t| t.0), Some(Some(500)), "{r:?}");

    let r = channels
        .send("dingtalk", &rx.url("/ding/limited?access_token=t"), &m)
        .await;
    assert!(
        transient(&r).is_some_and(|t| t.2.contains("130101")),
        "{r:?}"
    );

    let r = channels
        .send("feishu", &rx.url("/feishu/hook/limited"), &m)
        .await;
    assert!(
        transient(&r).is_some_and(|t| t.2.contains("11232")),
        "{r:?}"
    );
    let r = channels
        .send("feishu", &rx.url("/feishu/hook/429"), &m)
        .await;
    assert_eq!(
        transient(&r).map(|t| (t.0, t.1)),
        Some((Some(429), Some(Duration::from_secs(30)))),
        "{r:?}"
    );

    let r = channels.send("webhook", &rx.url("/hook/500"), &m).await;
    assert_eq!(
        transient(&r).map(|t| (t.0, t.1)),
        Some((Some(500), None)),
        "{r:?}"
    );
    let r = channels.send("webhook", &rx.url("/hook/429"), &m).await;
    assert_eq!(
        transient(&r).map(|t| (t.0, t.1)),
        Some((Some(429), Some(Duration::from_secs(7)))),
        "{r:?}"
    );
    // Retry-After as an HTTP date two minutes ahead (whole seconds).
    let r = channels.send("webhook", &rx.url("/hook/503"), &m).await;
    let (status, after, _) = transient(&r).expect("503 is transient");
    assert_eq!(status, Some(503));
    let after = after.expect("Retry-After date parsed");
    assert!(
        after > Duration::from_secs(100) && after <= Duration::from_secs(120),
        "{after:?}"
    );
    for (path, code) in [("/hook/404", 404), ("/hook/400", 400)] {
        let r = channels.send("webhook", &rx.url(path), &m).await;
        assert_eq!(
            permanent(&r).map(|p| p.0),
            Some(Some(code)),
            "{path}: {r:?}"
        );
    }
    // Too slow: a timeout, transient.
    let r = channels.send("webhook", &rx.url("/hook/slow"), &m).await;
    let (status, _, detail) = transient(&r).expect("a timeout is transient");
    assert_eq!(status, None);
    assert!(detail.contains("timeout"), "{detail}");
    // Nobody listening: transient.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let r = channels
        .send(
            "webhook",
            &format!("http://{closed}/hook?token=top-secret"),
            &m,
        )
        .await;
    let (_, _, detail) = transient(&r).expect("connection refused is transient");
    assert!(detail.contains("connection"), "{detail}");
    assert!(!detail.contains("top-secret"), "{detail}");
    // Bad addresses: permanent.
    for (channel, address) in [
        ("webhook", "not a url"),
        ("wecom", "https://"),
        ("sms", "+86 138"),
        ("email", "nobody"),
    ] {
        let r = channels.send(channel, address, &m).await;
        assert!(permanent(&r).is_some(), "{channel} {address}: {r:?}");
    }
    Ok(())
}

/// An IMF-fixdate `secs` from now.
fn httpdate_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&format).expect("format a date")
}

// ---------------------------------------------------------------------------
// SMS gateway.

#[tokio::test]
async fn notify_channels_sms_gateway_renders_the_template() -> anyhow::Result<()> {
    let rx = Receiver::start(|r| match r.path.as_str() {
        "/sms/json" | "/sms/form" => json_reply(json!({"ok": true, "id": "m-1"})),
        _ => reply(503, "down"),
    })
    .await;
    let m = message("zh-CN");

    let mut c = config();
    c.notify_sms_url = rx.url("/sms/json");
    c.notify_sms_auth = "Bearer gw-token".into();
    c.notify_sms_template =
        r#"{"mobile": {{ to|tojson }}, "sign": "tousu", "content": {{ text|tojson }}, "no": {{ tracking_no|tojson }}}"#
            .into();
    let channels = Channels::new(&c)?;
    let sent = channels.send("sms", "+8613800001111", &m).await;
    assert!(matches!(&sent, Ok(s) if s.status == 200), "{sent:?}");
    let r = &rx.requests("/sms/json")[0];
    assert_eq!(r.header("authorization"), Some("Bearer gw-token"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["mobile"], "+8613800001111");
    assert_eq!(body["no"], "TS-20250301-0001");
    let content = body["content"]
        .as_str()
        .expect("content parsed back from JSON");
    assert!(
        content.starts_with("一级投诉 TS-20250301-0001\n燃气泄漏投诉需立即处理（\"紧急\" & 重要）"),
        "{content}"
    );
    assert!(
        content.contains("http://notify.test/v1/acks/tok-1"),
        "{content}"
    );
    assert_eq!(
        channels.endpoint("sms", "+8613800001111"),
        format!("sms:127.0.0.1:{}/sms/json", rx.addr.port())
    );

    // A form template, no Authorization.
    let mut c = config();
    c.notify_sms_url = rx.url("/sms/form");
    c.notify_sms_template = "to={{ to|urlencode }}&msg={{ subject|urlencode }}".into();
    let channels = Channels::new(&c)?;
    assert!(channels.send("sms", "13800001111", &m).await.is_ok());
    let r = &rx.requests("/sms/form")[0];
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.form().await,
        vec![
            ("to".to_owned(), "13800001111".to_owned()),
            ("msg".to_owned(), "一级投诉 TS-20250301-0001".to_owned())
        ]
    );

    // A gateway down: transient.
    let mut c = config();
    c.notify_sms_url = rx.url("/sms/down");
    let channels = Channels::new(&c)?;
    let r = channels.send("sms", "13800001111", &m).await;
    assert_eq!(transient(&r).map(|t| t.0), Some(Some(503)), "{r:?}");
    Ok(())
}

// ---------------------------------------------------------------------------
// WeChat customer-service messages: token cache, expiry, refresh.

#[derive(Default)]
struct WeChatApi {
    issued: u32,
    valid: HashSet<String>,
    expires_in: u64,
}

#[tokio::test]
async fn notify_channels_wechat_tokens_are_cached_and_refreshed() -> anyhow::Result<()> {
    let api = Arc::new(Mutex::new(WeChatApi {
        expires_in: 7200,
        ..WeChatApi::default()
    }));
    let rx = {
        let api = api.clone();
        Receiver::start(move |r| {
            let mut api = api.lock().expect("api");
            match r.path.as_str() {
                "/wx/cgi-bin/token" => {
                    if r.method != Method::GET
                        || r.query("grant_type") != Some("client_credential")
                        || r.query("appid") != Some("wx0123456789abcdef")
                    {
                        return json_reply(json!({"errcode": 40013, "errmsg": "invalid appid"}));
                    }
                    if r.query("secret") != Some("app-secret") {
                        return json_reply(json!({"errcode": 40125, "errmsg": "invalid appsecret"}));
                    }
                    api.issued += 1;
                    let token = format!("T{}", api.issued);
                    api.valid.insert(token.clone());
                    json_reply(json!({"access_token": token, "expires_in": api.expires_in}))
                }
                "/wx/cgi-bin/message/custom/send" => {
                    if !r.query("access_token").is_some_and(|t| api.valid.contains(t)) {
                        return json_reply(json!({"errcode": 42001, "errmsg": "access_token expired"}));
                    }
                    let body = r.json();
                    if body["touser"] == "o_outside_window" {
                        return json_reply(json!({"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}));
                    }
                    if body["msgtype"] != "text" || !body["text"]["content"].is_string() {
                        return json_reply(json!({"errcode": 40008, "errmsg": "invalid message type"}));
                    }
                    json_reply(json!({"errcode": 0, "errmsg": "ok"}))
                }
                _ => reply(404, ""),
            }
        })
        .await
    };
    let mut c = config();
    c.wechat_app_id = "wx0123456789abcdef".into();
    c.notify_wechat_secret = "app-secret".into();
    c.notify_wechat_api = rx.url("/wx");
    let channels = Channels::new(&c)?;
    let m = message("zh-CN");
    let sends = || rx.requests("/wx/cgi-bin/message/custom/send");
    let tokens = || rx.requests("/wx/cgi-bin/token").len();

    // One token for several sends.
    for openid in ["oABC_1", "oABC_2"] {
        let sent = channels.send("wechat", openid, &m).await;
        assert!(sent.is_ok(), "{openid}: {sent:?}");
    }
    assert_eq!(tokens(), 1);
    let s = sends();
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|r| r.query("access_token") == Some("T1")));
    let body = s[0].json();
    assert_eq!(body["touser"], "oABC_1");
    assert_eq!(body["msgtype"], "text");
    assert!(
        body["text"]["content"]
            .as_str()
            .unwrap_or("")
            .starts_with("一级投诉 TS-20250301-0001\n燃气泄漏")
    );

    // The server expires the token early: 42001, a new token, one retry.
    api.lock().expect("api").valid.remove("T1");
    let sent = channels.send("wechat", "oABC_3", &m).await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(tokens(), 2);
    let tried: Vec<String> = sends()[2..]
        .iter()
        .map(|r| r.query("access_token").unwrap_or("").to_owned())
        .collect();
    assert_eq!(tried, ["T1", "T2"]);

    // A token that expires at once is fetched again before the next send,
    // without a refused send first.
    api.lock().expect("api").expires_in = 1;
    api.lock().expect("api").valid.remove("T2");
    assert!(channels.send("wechat", "oABC_4", &m).await.is_ok());
    assert_eq!(tokens(), 3);
    assert!(channels.send("wechat", "oABC_5", &m).await.is_ok());
    assert_eq!(tokens(), 4);
    let tried: Vec<String> = sends()[4..]
        .iter()
        .map(|r| r.query("access_token").unwrap_or("").to_owned())
        .collect();
    assert_eq!(tried, ["T2", "T3", "T4"]);

    // Outside the 48-hour window: permanent.
    let r = channels.send("wechat", "o_outside_window", &m).await;
    let (_, detail) = permanent(&r).expect("45015 is permanent");
    assert!(
        detail.contains("45015") && detail.contains("48-hour"),
        "{detail}"
    );
    // Not an openid: permanent, nothing sent.
    let before = sends().len();
    assert!(permanent(&channels.send("wechat", "o x/../", &m).await).is_some());
    assert_eq!(sends().len(), before);
    assert_eq!(
        channels.endpoint("wechat", "oABC_1"),
        format!(
            "wechat:127.0.0.1:{}/wx/cgi-bin/message/custom/send",
            rx.addr.port()
        )
    );

    // A wrong AppSecret: the token call fails, permanently, without the secret in it.
    c.notify_wechat_secret = "wrong-secret".into();
    let channels = Channels::new(&c)?;
    let r = channels.send("wechat", "oABC_1", &m).await;
    let (_, detail) = permanent(&r).expect("40125 is permanent");
    assert!(detail.contains("40125"), "{detail}");
    assert!(!detail.contains("wrong-secret"), "{detail}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Email through a real SMTP server (aiosmtpd).

/// `python3 -m aiosmtpd` on a free port, saving mail into a directory
/// through tests/smtp/tousu_mailbox.py; killed on drop.
struct SmtpServer {
    _child: ChildProcess,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> anyhow::Result<SmtpServer> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let site = root.join(".tools/aiosmtpd");
        let handlers = root.join("tests/smtp");
        let python = std::env::var("TOUSU_PYTHON").unwrap_or_else(|_| "python3".into());
        let pythonpath = std::env::join_paths([&site, &handlers])?;
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .env("PYTHONPATH", &pythonpath)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        anyhow::ensure!(
            probe.is_ok_and(|s| s.success()),
            "aiosmtpd is not installed for {python}: run scripts/bootstrap (it installs aiosmtpd into .tools/aiosmtpd)"
        );
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = ChildProcess::spawn(
            Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "tousu_mailbox.Handler"])
                .arg(dir.path())
                .env("PYTHONPATH", &pythonpath)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
        )?;
        // Up when it greets.
        wait_until(Duration::from_secs(20), || async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return false;
            };
            let mut greeting = [0u8; 3];
            tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut greeting))
                .await
                .is_ok_and(|r| r.is_ok() && &greeting == b"220")
        })
        .await?;
        Ok(SmtpServer {
            _child: child,
            port,
            dir,
        })
    }

    /// The summaries of the messages received so far, in order.
    fn received(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    async fn wait_for(&self, count: usize) -> anyhow::Result<Vec<Value>> {
        wait_until(Duration::from_secs(10), || async {
            self.received().len() >= count
        })
        .await?;
        Ok(self.received())
    }
}

#[tokio::test]
async fn notify_channels_email_reaches_a_real_smtp_server() -> anyhow::Result<()> {
    let smtp = SmtpServer::start().await?;
    let mut c = config();
    c.notify_smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    c.notify_smtp_from = "投诉中心 <complaints@tousu.test>".into();
    let channels = Channels::new(&c)?;
    assert_eq!(
        channels.endpoint("email", "a@b.test"),
        format!("email:127.0.0.1:{}", smtp.port)
    );

    // A reply to a complainant: text + HTML, threaded under their mail.
    let mut m = message("zh-CN");
    m.subject = "您的投诉 TS-20250301-0001 已受理".into();
    m.in_reply_to = "<CAF=orig-4711@mail.example.com>".into();
    let sent = channels
        .send("email", "张三 <zhangsan@example.com>", &m)
        .await;
    let sent = sent.map_err(|e| anyhow::anyhow!("send: {e:?}"))?;
    assert_eq!(sent.status, 250);
    let mail = &smtp.wait_for(1).await?[0];
    assert_eq!(mail["mail_from"], "complaints@tousu.test");
    assert_eq!(mail["rcpt_tos"], json!(["zhangsan@example.com"]));
    assert_eq!(mail["from"], "投诉中心 <complaints@tousu.test>");
    assert_eq!(mail["subject"], "您的投诉 TS-20250301-0001 已受理");
    // On the wire the subject is RFC 2047 encoded words (ASCII only).
    let raw_subject = mail["raw_subject"].as_str().unwrap_or("");
    assert!(raw_subject.is_ascii(), "{raw_subject}");
    assert!(
        raw_subject.to_ascii_lowercase().contains("=?utf-8?"),
        "{raw_subject}"
    );
    assert_eq!(mail["in_reply_to"], "<CAF=orig-4711@mail.example.com>");
    assert_eq!(mail["references"], "<CAF=orig-4711@mail.example.com>");
    let message_id = mail["message_id"].as_str().unwrap_or("");
    assert!(message_id.ends_with("@tousu.test>"), "{message_id}");
    assert!(
        sent.detail.contains(message_id),
        "{} vs {message_id}",
        sent.detail
    );
    assert_eq!(mail["content_type"], "multipart/alternative");
    let parts = mail["parts"].as_array().cloned().unwrap_or_default();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    let text = parts[0]["content"].as_str().unwrap_or("");
    assert!(
        text.starts_with("燃气泄漏投诉需立即处理（\"紧急\" & 重要）"),
        "{text}"
    );
    assert!(
        text.contains("http://console.test/complaints/c-1"),
        "{text}"
    );
    assert_eq!(parts[1]["content_type"], "text/html");
    assert_eq!(
        parts[1]["content"].as_str().map(str::trim),
        Some("<p>燃气泄漏投诉需立即处理</p>")
    );

    // Without HTML: one text part; no In-Reply-To.
    let plain = Message {
        html: String::new(),
        in_reply_to: String::new(),
        ..message("en")
    };
    // lettre hands a connection back to its pool in a task of its own
    // after the send: give that task a moment before the next send.
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    settle().await;
    assert!(
        channels
            .send("email", "ops@example.com", &plain)
            .await
            .is_ok()
    );
    settle().await;
    assert!(
        channels
            .send("email", "ops2@example.com", &plain)
            .await
            .is_ok()
    );
    let mails = smtp.wait_for(3).await?;
    assert_eq!(mails[1]["content_type"], "text/plain");
    assert_eq!(mails[1]["in_reply_to"], Value::Null);
    // The pool keeps the connection: the sends came through one client port.
    assert_eq!(mails[1]["peer_port"], mails[0]["peer_port"]);
    assert_eq!(mails[2]["peer_port"], mails[0]["peer_port"]);

    // SMTP 5xx → permanent, 4xx → transient, with the reply code.
    let r = channels.send("email", "reject@example.com", &plain).await;
    let (status, detail) = permanent(&r).expect("550 is permanent");
    assert_eq!(status, Some(550), "{detail}");
    let r = channels.send("email", "busy@example.com", &plain).await;
    let (status, _, detail) = transient(&r).expect("451 is transient");
    assert_eq!(status, Some(451), "{detail}");
    // And the server still takes mail afterwards.
    assert!(
        channels
            .send("email", "ops3@example.com", &plain)
            .await
            .is_ok()
    );
    let mails = smtp.wait_for(4).await?;
    assert_eq!(mails[3]["rcpt_tos"], json!(["ops3@example.com"]));

    // The server gone: transient.
    drop(smtp);
    let r = channels.send("email", "ops@example.com", &plain).await;
    assert!(transient(&r).is_some(), "{r:?}");
    Ok(())
}
