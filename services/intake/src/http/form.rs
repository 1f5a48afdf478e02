//! `GET|POST /form`: the public complaint form for people. Plain HTML that
//! works without JavaScript, in Chinese and English (`?lang=en`, else the
//! browser's `Accept-Language`), with file uploads. After submitting, the
//! page shows the tracking number. Submissions are rate-limited per client
//! address (`form_rate_per_minute`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tousu_channels::Inbound;
use tousu_domain::Channel;
use tousu_kit::Problem;
use tousu_kit::html::escape as esc;

use super::{App, AppState, Raw, read_body, text_response};
use crate::accept::{self, Rejection};

const PATH: &str = "/form";

/// A token bucket per client address: `per_minute` submissions, refilled
/// continuously.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `addr`; `false` when the address is over its rate.
    pub fn allow(&self, addr: IpAddr) -> bool {
        let now = Instant::now();
        let capacity = f64::from(self.per_minute.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget addresses that have refilled completely.
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
        }
        let (tokens, at) = buckets.entry(addr).or_insert((capacity, now));
        let refill = now.duration_since(*at).as_secs_f64() * capacity / 60.0;
        *tokens = (*tokens + refill).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

fn lang(raw: &Raw) -> Lang {
    match raw.query_param("lang").as_deref() {
        Some("en") => Lang::En,
        Some("zh") => Lang::Zh,
        _ => {
            let accept = raw
                .header("accept-language")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if accept.starts_with("en") {
                Lang::En
            } else {
                Lang::Zh
            }
        }
    }
}

pub(super) async fn page(
    State(_app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = Raw {
        headers,
        query: query.unwrap_or_default(),
        ..Raw::default()
    };
    html(StatusCode::OK, &form_page(lang(&raw), &[], &[]))
}

pub(super) async fn handle(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let limit = super::webform::body_limit(&app, &headers);
    let raw = match read_body(&headers, query.clone(), body, limit).await {
        Ok(raw) => raw,
        Err(p) => {
            let raw = Raw {
                headers,
                query: query.unwrap_or_default(),
                ..Raw::default()
            };
            return failed(&app, &raw, p).await;
        }
    };
    submit(&app, raw, Some(peer.ip())).await
}

/// `peer`: the client address to rate-limit (none for a replay).
pub(super) async fn submit(app: &App, raw: Raw, peer: Option<IpAddr>) -> Response {
    let l = lang(&raw);
    if let Some(ip) = peer
        && !app.form_limiter.allow(ip)
    {
        metrics::counter!("tousu_intake_rate_limited_total", "path" => PATH).increment(1);
        let message = match l {
            Lang::Zh => "提交过于频繁，请稍后再试。",
            Lang::En => "Too many submissions from your address; please try again in a minute.",
        };
        let mut r = html(StatusCode::TOO_MANY_REQUESTS, &notice_page(l, message));
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("60"));
        return r;
    }
    let inbound = match super::webform::parse(&raw).await {
        Ok(i) => i,
        Err(p) => return failed(app, &raw, p).await,
    };
    let form_values = values_of(&inbound);
    match accept::accept(&app.intake, Channel::WebForm, inbound, None, true).await {
        Ok(r) => html(StatusCode::ACCEPTED, &done_page(l, &r.tracking_no)),
        Err(Rejection::Unavailable(e)) => {
            tracing::error!(error = %e, "form complaint not committed");
            let message = match l {
                Lang::Zh => "系统暂时无法受理，请稍后再试。您的投诉尚未提交。",
                Lang::En => {
                    "We cannot take complaints right now; nothing was submitted. Please try again shortly."
                }
            };
            html(StatusCode::SERVICE_UNAVAILABLE, &notice_page(l, message))
        }
        Err(rejection) => {
            let problem = rejection.problem();
            if !raw.replay {
                super::reject(app, Some(Channel::WebForm), PATH, &raw, problem.clone()).await;
            }
            let errors: Vec<(String, String)> = problem
                .errors
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect();
            html(
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST),
                &form_page(l, &errors, &form_values),
            )
        }
    }
}

/// A body that could not be read or parsed: quarantined, answered as a page.
async fn failed(app: &App, raw: &Raw, problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let detail = problem.detail.clone();
    super::reject(app, Some(Channel::WebForm), PATH, raw, problem).await;
    html(status, &notice_page(lang(raw), &detail))
}

fn values_of(i: &Inbound) -> Vec<(String, String)> {
    let f = &i.fields;
    [
        ("title", &f.title),
        ("description", &f.description),
        ("name", &f.name),
        ("phone", &f.phone),
        ("email", &f.email),
        ("product", &f.product),
        ("location", &f.location),
        ("demand", &f.demand),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
    .collect()
}

fn html(status: StatusCode, body: &str) -> Response {
    text_response(status, "text/html; charset=utf-8", body.to_owned())
}

fn shell(l: Lang, title: &str, content: &str) -> String {
    let html_lang = if l == Lang::En { "en" } else { "zh-CN" };
    format!(
        r#"<!doctype html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
label {{ display: block; margin-top: 1rem; font-weight: 600; }}
input[type=text], input[type=tel], input[type=email], textarea {{ width: 100%; padding: .5rem; box-sizing: border-box; }}
textarea {{ min-height: 10rem; }}
.error {{ color: #b00020; }}
.tracking {{ font-size: 1.6rem; font-weight: 700; letter-spacing: .05em; }}
button {{ margin-top: 1.5rem; padding: .6rem 1.6rem; }}
</style>
</head>
<body>
{content}
</body>
</html>
"#,
        title = esc(title),
    )
}

fn form_page(l: Lang, errors: &[(String, String)], values: &[(String, String)]) -> String {
    let t = |zh: &'static str, en: &'static str| if l == Lang::En { en } else { zh };
    let value = |name: &str| {
        values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| esc(v))
            .unwrap_or_default()
    };
    let error = |name: &str| {
        errors
            .iter()
            .filter(|(f, _)| f == name || (name == "attachments" && f.starts_with("attachments")))
            .map(|(_, m)| format!(r#"<div class="error">{}</div>"#, esc(m)))
            .collect::<String>()
    };
    let summary = if errors.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="error" role="alert">{}</p>"#,
            t(
                "提交未成功，请修改标出的内容。",
                "Not submitted: please correct the marked fields."
            )
        )
    };
    let switch = if l == Lang::En {
        r#"<a href="/form?lang=zh">中文</a>"#
    } else {
        r#"<a href="/form?lang=en">English</a>"#
    };
    let action = if l == Lang::En {
        "/form?lang=en"
    } else {
        "/form?lang=zh"
    };
    let text_input = |name: &str, kind: &str, label: &str| {
        format!(
            r#"<label for="{name}">{label}</label><input type="{kind}" id="{name}" name="{name}" value="{v}">{e}"#,
            v = value(name),
            e = error(name),
        )
    };
    let content = format!(
        r#"<p style="text-align:right">{switch}</p>
<h1>{h1}</h1>
<p>{intro}</p>
{summary}
<form method="post" action="{action}" enctype="multipart/form-data">
{title}
<label for="description">{desc_label} *</label>
<textarea id="description" name="description" required>{desc}</textarea>{desc_err}
{name}
{phone}
{email}
{product}
{location}
{demand}
<label for="attachments">{att_label}</label>
<input type="file" id="attachments" name="attachments" multiple>{att_err}
<label><input type="checkbox" name="anonymous" value="true"> {anon}</label>
<button type="submit">{submit}</button>
</form>"#,
        h1 = t("投诉受理", "Submit a complaint"),
        intro = t(
            "请描述您遇到的问题。提交后您将获得受理编号，可凭编号查询处理进度。请留下电话或邮箱，以便我们联系您（匿名投诉除外）。",
            "Tell us what went wrong. You will get a tracking number when you submit. Leave a phone number or email so that we can reach you (unless you stay anonymous).",
        ),
        title = text_input("title", "text", t("标题", "Title")),
        desc_label = t("投诉内容", "What happened"),
        desc = value("description"),
        desc_err = error("description"),
        name = text_input("name", "text", t("姓名", "Name")),
        phone = text_input("phone", "tel", t("手机号码", "Phone")),
        email = text_input("email", "email", t("电子邮箱", "Email")),
        product = text_input("product", "text", t("涉及产品或服务", "Product or service")),
        location = text_input("location", "text", t("发生地点", "Where")),
        demand = text_input(
            "demand",
            "text",
            t("您的诉求", "What you would like us to do")
        ),
        att_label = t(
            "证据材料（照片、票据等，可多选）",
            "Evidence (photos, receipts; several files allowed)"
        ),
        att_err = error("attachments"),
        anon = t(
            "匿名投诉（不留联系方式）",
            "Stay anonymous (no contact details)"
        ),
        submit = t("提交投诉", "Submit"),
    );
    shell(l, t("投诉受理", "Submit a complaint"), &content)
}

fn done_page(l: Lang, tracking_no: &str) -> String {
    let content = if l == Lang::En {
        format!(
            r#"<h1>Complaint received</h1>
<p>Your tracking number is</p>
<p class="tracking">{}</p>
<p>Please keep it: quote it whenever you contact us about this complaint.</p>
<p><a href="/form?lang=en">Submit another complaint</a></p>"#,
            esc(tracking_no)
        )
    } else {
        format!(
            r#"<h1>投诉已受理</h1>
<p>您的受理编号是</p>
<p class="tracking">{}</p>
<p>请妥善保存，查询或补充投诉时请提供此编号。</p>
<p><a href="/form?lang=zh">再提交一件投诉</a></p>"#,
            esc(tracking_no)
        )
    };
    shell(
        l,
        if l == Lang::En {
            "Complaint received"
        } else {
            "投诉已受理"
        },
        &content,
    )
}

fn notice_page(l: Lang, message: &str) -> String {
    let back = if l == Lang::En {
        r#"<a href="/form?lang=en">Back to the form</a>"#
    } else {
        r#"<a href="/form?lang=zh">返回投诉表单</a>"#
    };
    shell(
        l,
        if l == Lang::En {
            "Complaint form"
        } else {
            "投诉受理"
        },
        &format!(
            r#"<p class="error" role="alert">{}</p><p>{back}</p>"#,
            esc(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_the_rate_then_refuses() {
        let l = RateLimiter::per_minute(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.allow(a) && l.allow(a) && l.allow(a));
        assert!(!l.allow(a));
        assert!(l.allow(b), "another address has its own bucket");
    }

    #[test]
    fn pages_escape_what_people_typed() {
        let page = form_page(
            Lang::En,
            &[("description".into(), "is required".into())],
            &[("title".into(), "<script>alert(1)</script>".into())],
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("is required"));
        assert!(form_page(Lang::Zh, &[], &[]).contains("提交投诉"));
        assert!(done_page(Lang::Zh, "TS20261122-000001").contains("TS20261122-000001"));
    }
}
