//! Layered configuration: built-in defaults, then the TOML file named by
//! `TOUSU_CONFIG` (if set), then `TOUSU_*` environment variables, then
//! `TOUSU_<SERVICE>_*` variables (so several services can share one
//! environment). `DATABASE_URL` is honoured when `TOUSU_DATABASE_URL` is
//! not set. Every name is listed in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Exit status for invalid configuration (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// NATS server URL(s), comma separated.
    pub nats_url: String,
    /// PostgreSQL URL; each service works in its own schema of this database.
    pub database_url: String,
    /// HTTP listen address (REST, webhooks, `/metrics`, `/healthz`, `/readyz`).
    pub http_addr: SocketAddr,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Policy file (routing, sla and notify read it).
    pub policy: PathBuf,
    /// Seconds to finish in-flight work after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Replicas of the JetStream streams (1 in dev, 3 in a cluster).
    pub stream_replicas: usize,
    /// Postgres connection pool size.
    pub db_max_connections: u32,
    /// Seconds to keep retrying NATS and Postgres at start before giving up.
    pub connect_timeout_secs: u64,
    /// Largest request body accepted, in bytes (intake).
    pub max_body_bytes: usize,
    /// Base URL of the console, used in links (desk, notify).
    pub public_url: String,
    /// Environment name (`dev`, `staging`, `prod`…); names per-environment
    /// resources such as the evidence bucket `tousu-evidence-<environment>`.
    pub environment: String,
    /// Largest raw email accepted on `/v1/channels/email`, in bytes (intake).
    pub max_email_bytes: usize,
    /// Largest single evidence attachment, in bytes (intake).
    pub max_attachment_bytes: usize,
    /// API keys (comma separated) for connectors: when set, the web-form API,
    /// the email and phone channels and the quarantine API require
    /// `Authorization: Bearer <key>` (intake). Empty: no key required.
    pub api_keys: String,
    /// WeChat official account: the server token (URL and message signatures).
    pub wechat_token: String,
    /// WeChat official account: AppID (checked in safe-mode messages).
    pub wechat_app_id: String,
    /// WeChat official account: the 43-character EncodingAESKey (safe mode).
    pub wechat_aes_key: String,
    /// Seconds during which further messages from one openid join the
    /// complaint the first one opened (0: every message is a complaint).
    pub wechat_merge_secs: u64,
    /// Discourse webhook secret (`X-Discourse-Event-Signature`).
    pub discourse_secret: String,
    /// Secret of the generic forum JSON (`X-Tousu-Signature`).
    pub forum_secret: String,
    /// Submissions of the public HTML form allowed per client address per minute.
    pub form_rate_per_minute: u32,
    /// sla: number of timer partitions replicas share by lease (fixed for a
    /// deployment: changing it needs all sla replicas stopped).
    pub sla_partitions: u32,
    /// sla: how long a partition lease lasts without renewal; a killed
    /// replica's partitions are taken over within this time.
    pub sla_lease_secs: u64,
    /// sla: how far ahead each replica holds its timers in memory.
    pub sla_horizon_secs: u64,
    /// notify: SMTP server URL (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://…`, `smtp://host:25` for plain); empty: no email channel.
    pub notify_smtp_url: String,
    /// notify: sender address of every email.
    pub notify_smtp_from: String,
    /// notify: default WeCom group robot webhook URL.
    pub notify_wecom_webhook: String,
    /// notify: default DingTalk robot webhook URL and its signing secret.
    pub notify_dingtalk_webhook: String,
    pub notify_dingtalk_secret: String,
    /// notify: default Feishu/Lark bot webhook URL and its signing secret.
    pub notify_feishu_webhook: String,
    pub notify_feishu_secret: String,
    /// notify: default generic webhook URL and its HMAC secret.
    pub notify_webhook_url: String,
    pub notify_webhook_secret: String,
    /// notify: SMS gateway URL, request body template and Authorization header.
    pub notify_sms_url: String,
    pub notify_sms_template: String,
    pub notify_sms_auth: String,
    /// notify: WeChat API base URL (customer-service messages to complainants).
    pub notify_wechat_api: String,
    /// notify: the official account's AppSecret (access tokens).
    pub notify_wechat_secret: String,
    /// notify: attempts before a delivery is dead-lettered.
    pub notify_max_attempts: u32,
    /// notify: per-request timeout of every channel.
    pub notify_timeout_secs: u64,
    /// notify: more warnings than this for one department within the
    /// window become one digest.
    pub notify_digest_threshold: u32,
    pub notify_digest_window_secs: u64,
    /// notify: concurrent sends per replica.
    pub notify_workers: u32,
    /// notify: events planned side by side per replica, each on a Postgres
    /// connection of its own (besides `db_max_connections`).
    pub notify_planners: u32,
    /// notify: when the daily digest of open major complaints goes out
    /// (`HH:MM` in the policy's time zone); empty: never.
    pub notify_major_digest_at: String,
    /// notify: base URL of notify's HTTP API as recipients reach it, for
    /// acknowledgement links; empty: `public_url`'s scheme and host with
    /// notify's own port.
    pub notify_public_url: String,
}

/// The names of the settings (lower-case; `TOUSU_` + upper-case in the environment).
pub const SETTINGS: [&str; 47] = [
    "nats_url",
    "database_url",
    "http_addr",
    "grpc_addr",
    "policy",
    "shutdown_grace_secs",
    "stream_replicas",
    "db_max_connections",
    "connect_timeout_secs",
    "max_body_bytes",
    "public_url",
    "environment",
    "max_email_bytes",
    "max_attachment_bytes",
    "api_keys",
    "wechat_token",
    "wechat_app_id",
    "wechat_aes_key",
    "wechat_merge_secs",
    "discourse_secret",
    "forum_secret",
    "form_rate_per_minute",
    "sla_partitions",
    "sla_lease_secs",
    "sla_horizon_secs",
    "notify_smtp_url",
    "notify_smtp_from",
    "notify_wecom_webhook",
    "notify_dingtalk_webhook",
    "notify_dingtalk_secret",
    "notify_feishu_webhook",
    "notify_feishu_secret",
    "notify_webhook_url",
    "notify_webhook_secret",
    "notify_sms_url",
    "notify_sms_template",
    "notify_sms_auth",
    "notify_wechat_api",
    "notify_wechat_secret",
    "notify_max_attempts",
    "notify_timeout_secs",
    "notify_digest_threshold",
    "notify_digest_window_secs",
    "notify_workers",
    "notify_planners",
    "notify_major_digest_at",
    "notify_public_url",
];

/// Default ports per service (architecture §1).
pub fn default_ports(service: &str) -> (u16, u16) {
    match service {
        "intake" => (8080, 50051),
        "routing" => (8081, 50052),
        "sla" => (8082, 50053),
        "notify" => (8083, 50054),
        "desk" => (8084, 50055),
        _ => (0, 0),
    }
}

impl Config {
    /// The defaults for `service`.
    pub fn defaults(service: &str) -> Self {
        let (http, grpc) = default_ports(service);
        Config {
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: String::new(),
            http_addr: SocketAddr::from(([0, 0, 0, 0], http)),
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], grpc)),
            policy: PathBuf::from("policies/default.toml"),
            shutdown_grace_secs: 10,
            stream_replicas: 1,
            db_max_connections: 10,
            connect_timeout_secs: 60,
            max_body_bytes: 1 << 20,
            public_url: "http://127.0.0.1:8084".into(),
            environment: "dev".into(),
            max_email_bytes: 25 << 20,
            max_attachment_bytes: 10 << 20,
            api_keys: String::new(),
            wechat_token: String::new(),
            wechat_app_id: String::new(),
            wechat_aes_key: String::new(),
            wechat_merge_secs: 120,
            discourse_secret: String::new(),
            forum_secret: String::new(),
            form_rate_per_minute: 10,
            sla_partitions: 64,
            sla_lease_secs: 10,
            sla_horizon_secs: 120,
            notify_smtp_url: String::new(),
            notify_smtp_from: "tousu <noreply@localhost>".into(),
            notify_wecom_webhook: String::new(),
            notify_dingtalk_webhook: String::new(),
            notify_dingtalk_secret: String::new(),
            notify_feishu_webhook: String::new(),
            notify_feishu_secret: String::new(),
            notify_webhook_url: String::new(),
            notify_webhook_secret: String::new(),
            notify_sms_url: String::new(),
            notify_sms_template: String::new(),
            notify_sms_auth: String::new(),
            notify_wechat_api: "https://api.weixin.qq.com".into(),
            notify_wechat_secret: String::new(),
            notify_max_attempts: 8,
            notify_timeout_secs: 10,
            notify_digest_threshold: 10,
            notify_digest_window_secs: 300,
            notify_workers: 16,
            notify_planners: 8,
            notify_major_digest_at: "08:30".into(),
            notify_public_url: String::new(),
        }
    }

    /// Reads the configuration of `service` from file and environment.
    pub fn load(service: &str) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::defaults(service)));
        if let Ok(path) = std::env::var("TOUSU_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(ConfigError(format!("TOUSU_CONFIG: no file at {path}")));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        if std::env::var_os("TOUSU_DATABASE_URL").is_none() {
            fig = fig.merge(Env::raw().only(&["DATABASE_URL"]));
        }
        // Only the settings' own names: other TOUSU_* variables (TOUSU_CONFIG,
        // TOUSU_NATS_SERVER, other services' TOUSU_<SERVICE>_*) are not ours.
        let service_prefix = format!("TOUSU_{}_", service.to_ascii_uppercase());
        fig = fig
            .merge(Env::prefixed("TOUSU_").only(&SETTINGS))
            .merge(Env::prefixed(&service_prefix).only(&SETTINGS));
        let config: Config = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Like [`load`](Config::load), but prints the problem and exits with
    /// status 64 — before any port is bound.
    pub fn load_or_exit(service: &str) -> Self {
        match Self::load(service) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tousu-{service}: invalid configuration: {e}");
                std::process::exit(EXIT_CONFIG);
            }
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.is_empty() {
            return Err(ConfigError(
                "database_url: not set (TOUSU_DATABASE_URL or DATABASE_URL)".into(),
            ));
        }
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "database_url: must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        if self.nats_url.trim().is_empty() {
            return Err(ConfigError("nats_url: empty".into()));
        }
        if self.stream_replicas == 0 || self.stream_replicas > 5 {
            return Err(ConfigError("stream_replicas: must be 1 to 5".into()));
        }
        if self.db_max_connections == 0 {
            return Err(ConfigError("db_max_connections: must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError("max_body_bytes: must be at least 1024".into()));
        }
        if self.environment.is_empty()
            || !self
                .environment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError(
                "environment: must be letters, digits, '-' or '_'".into(),
            ));
        }
        if !(1..=4096).contains(&self.sla_partitions) {
            return Err(ConfigError("sla_partitions: must be 1 to 4096".into()));
        }
        if !(2..=3600).contains(&self.sla_lease_secs) {
            return Err(ConfigError("sla_lease_secs: must be 2 to 3600".into()));
        }
        if !(10..=86_400).contains(&self.sla_horizon_secs) {
            return Err(ConfigError("sla_horizon_secs: must be 10 to 86400".into()));
        }
        if !(1..=100).contains(&self.notify_max_attempts) {
            return Err(ConfigError("notify_max_attempts: must be 1 to 100".into()));
        }
        if !(1..=300).contains(&self.notify_timeout_secs) {
            return Err(ConfigError("notify_timeout_secs: must be 1 to 300".into()));
        }
        if !(1..=1024).contains(&self.notify_workers) {
            return Err(ConfigError("notify_workers: must be 1 to 1024".into()));
        }
        if !(1..=256).contains(&self.notify_planners) {
            return Err(ConfigError("notify_planners: must be 1 to 256".into()));
        }
        if !self.notify_major_digest_at.trim().is_empty()
            && hh_mm(&self.notify_major_digest_at).is_none()
        {
            return Err(ConfigError(
                "notify_major_digest_at: must be HH:MM (00:00 to 23:59) or empty".into(),
            ));
        }
        if self.notify_digest_window_secs == 0 {
            return Err(ConfigError(
                "notify_digest_window_secs: must be at least 1".into(),
            ));
        }
        if self.max_email_bytes < 1024 {
            return Err(ConfigError("max_email_bytes: must be at least 1024".into()));
        }
        if self.max_attachment_bytes == 0 {
            return Err(ConfigError(
                "max_attachment_bytes: must be at least 1".into(),
            ));
        }
        if !self.wechat_aes_key.is_empty() && self.wechat_aes_key.len() != 43 {
            return Err(ConfigError(
                "wechat_aes_key: the EncodingAESKey has 43 characters".into(),
            ));
        }
        if !self.wechat_aes_key.is_empty()
            && (self.wechat_token.is_empty() || self.wechat_app_id.is_empty())
        {
            return Err(ConfigError(
                "wechat_aes_key: safe mode also needs wechat_token and wechat_app_id".into(),
            ));
        }
        Ok(())
    }

    /// The configured API keys.
    pub fn api_key_list(&self) -> Vec<String> {
        self.api_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Configuration that cannot be used, with the setting at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `HH:MM` (24-hour clock) as hour and minute.
pub fn hh_mm(text: &str) -> Option<(u8, u8)> {
    let text = text.trim();
    let (h, m) = text.split_once(':')?;
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.len() == 5).then_some((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config {
            database_url: "postgres://localhost/tousu".into(),
            ..Config::defaults("intake")
        }
    }

    #[test]
    fn defaults_follow_the_port_table() {
        assert_eq!(Config::defaults("desk").http_addr.port(), 8084);
        assert_eq!(Config::defaults("desk").grpc_addr.port(), 50055);
        assert_eq!(Config::defaults("intake").http_addr.port(), 8080);
        assert!(valid().validate().is_ok());
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        let cases = [
            (
                Config {
                    database_url: String::new(),
                    ..valid()
                },
                "database_url",
            ),
            (
                Config {
                    database_url: "mysql://x".into(),
                    ..valid()
                },
                "database_url",
            ),
            (
                Config {
                    nats_url: " ".into(),
                    ..valid()
                },
                "nats_url",
            ),
            (
                Config {
                    stream_replicas: 0,
                    ..valid()
                },
                "stream_replicas",
            ),
            (
                Config {
                    db_max_connections: 0,
                    ..valid()
                },
                "db_max_connections",
            ),
            (
                Config {
                    notify_planners: 0,
                    ..valid()
                },
                "notify_planners",
            ),
            (
                Config {
                    notify_major_digest_at: "8:30pm".into(),
                    ..valid()
                },
                "notify_major_digest_at",
            ),
            (
                Config {
                    notify_workers: 1025,
                    ..valid()
                },
                "notify_workers",
            ),
            (
                Config {
                    max_body_bytes: 10,
                    ..valid()
                },
                "max_body_bytes",
            ),
            (
                Config {
                    environment: "prod eu".into(),
                    ..valid()
                },
                "environment",
            ),
            (
                Config {
                    wechat_aes_key: "short".into(),
                    ..valid()
                },
                "wechat_aes_key",
            ),
        ];
        for (c, name) in cases {
            assert!(c.validate().unwrap_err().0.starts_with(name), "{name}");
        }
    }
}
