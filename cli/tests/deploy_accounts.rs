//! The NATS accounts shipped in `deploy/nats/accounts.conf` (architecture
//! §3): a department's credentials read its own assigned and SLA events and
//! nothing else, and cannot forge events. Runs a real nats-server
//! (`TOUSU_NATS_SERVER`, else `nats-server` on PATH; `scripts/test` sets it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt as _;

const ACCOUNTS: &str = include_str!("../../deploy/nats/accounts.conf");

/// A nats-server with the shipped accounts on a free port, stopped on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{ACCOUNTS}",
            dir.path().join("js")
        ),
    )
    .unwrap();
    let binary = std::env::var("TOUSU_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let child = Command::new(&binary)
        .arg("-c")
        .arg(&conf)
        .env("TOUSU_NATS_PASSWORD", "tousu-secret")
        .env("DEPT_LOGISTICS_PASSWORD", "logistics-secret")
        .env("DEPT_QUALITY_PASSWORD", "quality-secret")
        .env("NATS_SYS_PASSWORD", "sys-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary} (set TOUSU_NATS_SERVER): {e}"));
    Server {
        child,
        port,
        _dir: dir,
    }
}

async fn connect(server: &Server, user: &str, password: &str) -> async_nats::Client {
    let url = format!("nats://127.0.0.1:{}", server.port);
    for _ in 0..100 {
        let options =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into());
        if let Ok(client) = options.connect(&url).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{user} could not connect to {url}");
}

#[tokio::test]
async fn a_department_reads_only_its_own_events() {
    let server = start();
    let tousu = connect(&server, "tousu", "tousu-secret").await;
    let logistics = connect(&server, "logistics", "logistics-secret").await;
    let tousu_js = jetstream::new(tousu.clone());
    let dept_js = jetstream::new(logistics.clone());
    tousu_bus::streams::provision(&tousu_js, 1).await.unwrap();

    // The department keeps what it may see in a stream of its own account.
    let dept_stream = dept_js
        .create_stream(stream::Config {
            name: "DEPT_EVENTS".into(),
            subjects: vec![
                "tousu.evt.complaint.assigned.logistics".into(),
                "tousu.evt.sla.*.logistics".into(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut everything = logistics.subscribe(">").await.unwrap();
    logistics.flush().await.unwrap();

    let published = [
        "tousu.evt.complaint.received.webform",
        "tousu.evt.complaint.assigned.logistics",
        "tousu.evt.complaint.assigned.quality",
        "tousu.evt.sla.breached.logistics",
        "tousu.evt.sla.breached.quality",
        "tousu.evt.alert.major",
        "tousu.dlq.routing",
    ];
    for subject in published {
        tousu_js
            .publish(subject, subject.as_bytes().to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Forging an event is refused, so it never reaches the department's stream.
    logistics
        .publish("tousu.evt.complaint.assigned.logistics", "forged".into())
        .await
        .unwrap();
    logistics.flush().await.unwrap();

    let own = [
        "tousu.evt.complaint.assigned.logistics".to_owned(),
        "tousu.evt.sla.breached.logistics".to_owned(),
    ];
    let mut live = Vec::new();
    while let Ok(Some(m)) =
        tokio::time::timeout(Duration::from_millis(500), everything.next()).await
    {
        // The department's own stream acknowledges each captured event to
        // the publisher's reply inbox, which stays inside its account.
        if !m.subject.starts_with("_INBOX.") {
            live.push(m.subject.to_string());
        }
    }
    assert_eq!(
        live, own,
        "core subscription on > sees only the department's subjects"
    );

    let consumer = dept_stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("logistics-system".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut stored = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        assert_eq!(&m.payload[..], m.subject.as_bytes(), "no forged payload");
        stored.push(m.subject.to_string());
        m.ack().await.unwrap();
    }
    assert_eq!(
        stored, own,
        "the durable consumer gets exactly the department's events"
    );

    for name in ["TOUSU_EVENTS", "TOUSU_DLQ"] {
        assert!(
            dept_js.get_stream(name).await.is_err(),
            "{name} is out of the department's reach"
        );
    }
}
