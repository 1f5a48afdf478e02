//! SLA clocks end to end: a deadline fires on time, pauses move it, the
//! clocks API explains it, the deadline calculator answers; timers survive
//! a SIGKILL and a dead replica's partitions are taken over.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use time::OffsetDateTime;
use tousu_bus::{Payload, decode_event};
use tousu_proto::v1 as pb;
use tousu_tests::{ChildProcess, Stack, http, policy_with, submit_json, wait_until};

/// Every `tousu.evt.<subject>` event as it is published.
async fn subscribe(stack: &Stack, subject: &str) -> anyhow::Result<async_nats::Subscriber> {
    let nats = async_nats::connect(&stack.nats.url).await?;
    let sub = nats.subscribe(format!("tousu.evt.{subject}")).await?;
    nats.flush().await?;
    // Keep the connection alive with the subscriber.
    std::mem::forget(nats);
    Ok(sub)
}

async fn next_event(
    sub: &mut async_nats::Subscriber,
    within: Duration,
    mut want: impl FnMut(&pb::Event) -> bool,
) -> anyhow::Result<(pb::Event, OffsetDateTime)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, sub.next())
            .await
            .map_err(|_| anyhow::anyhow!("no matching event within {within:?}"))?
            .ok_or_else(|| anyhow::anyhow!("subscription closed"))?;
        let arrived = OffsetDateTime::now_utc();
        let event = decode_event(&msg.payload).map_err(anyhow::Error::msg)?;
        if want(&event) {
            return Ok((event, arrived));
        }
    }
}

/// The next `sla.started` of the complaint's resolution clock: the event and its payload.
async fn resolution_started(
    sub: &mut async_nats::Subscriber,
    id: &str,
    within: Duration,
) -> anyhow::Result<(pb::Event, pb::SlaStarted)> {
    let (event, _) = next_event(sub, within, |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaStarted(s)) if s.target == pb::SlaTarget::Resolution as i32)
    })
    .await?;
    match &event.payload {
        Some(Payload::SlaStarted(s)) => {
            let s = s.clone();
            Ok((event, s))
        }
        _ => anyhow::bail!("not sla.started"),
    }
}

fn at(t: &Option<tousu_proto::Timestamp>) -> OffsetDateTime {
    t.as_ref()
        .and_then(tousu_bus::from_timestamp)
        .expect("timestamp set")
}

async fn submit(stack: &Stack, description: &str) -> anyhow::Result<String> {
    let r = submit_json(
        stack.http("intake"),
        &json!({"description": description, "phone": "13812345678"}),
        &[],
    )
    .await?;
    anyhow::ensure!(r.status == 202, "submit: {} {:?}", r.status, r.json());
    Ok(r.json()["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_clock_breaches_on_time_and_is_explained() -> anyhow::Result<()> {
    let _alone = tousu_tests::LOAD.write().await;
    let (_dir, policy) = policy_with(&[(
        "sla.resolution",
        r#"default = { urgent = "2s", expedited = "2s", normal = "2s" }"#,
    )])?;
    let stack = Stack::start_only(&["intake", "routing", "sla"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut sla_events = subscribe(&stack, "sla.>").await?;
    let id = submit(&stack, "快递三天没到，客服电话也打不通").await?;

    let (_, s) = resolution_started(&mut sla_events, &id, Duration::from_secs(10)).await?;
    let deadline = at(&s.deadline);
    assert_eq!(deadline - at(&s.started_at), time::Duration::seconds(2));
    assert!(s.explanation.contains("2s"), "{}", s.explanation);

    let (warning, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(&e.payload, Some(Payload::SlaWarning(w)) if w.target == pb::SlaTarget::Resolution as i32 && w.percent == 50)
    })
    .await?;
    assert!(at(&warning.occurred_at) >= at(&s.started_at) + time::Duration::seconds(1));

    let (breached, arrived) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaBreached(b)) if b.target == pb::SlaTarget::Resolution as i32)
    })
    .await?;
    let fired = at(&breached.occurred_at);
    let late = fired - deadline;
    eprintln!(
        "breach fired {} ms after the deadline, arrived {} ms after it",
        late.whole_milliseconds(),
        (arrived - deadline).whole_milliseconds()
    );
    assert!(late >= time::Duration::ZERO, "fired early: {late}");
    assert!(
        late <= time::Duration::milliseconds(100),
        "fired {late} after the deadline"
    );

    // The clocks API explains it: breached, 2 s budget, the ladder fired.
    let r = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{id}/clocks"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let body = r.json();
    let resolution = body["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == "resolution")
        .expect("resolution clock")
        .clone();
    assert_eq!(resolution["state"], "breached");
    assert_eq!(resolution["budget_seconds"], 2);
    assert_eq!(resolution["duration"], "2s");
    assert!(
        resolution["fired"]
            .as_array()
            .unwrap()
            .contains(&json!("breach"))
    );
    assert!(
        resolution["policy_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // The ladder's 100 % steps went out with the breach.
    wait_until(Duration::from_secs(5), || async {
        let r = http(
            stack.http("sla"),
            "GET",
            &format!("/v1/complaints/{id}/clocks"),
            &[],
            b"",
        )
        .await
        .unwrap();
        r.json()["escalations"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["level"] == "breach" && e["needs_ack"] == true)
        })
    })
    .await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_move_the_deadline_by_the_paused_time() -> anyhow::Result<()> {
    // 24×7 resolution clocks, so the paused time is plain wall time.
    let (_dir, policy) = policy_with(&[(
        "sla.resolution",
        r#"default = { urgent = "1h", expedited = "1h", normal = "1h" }"#,
    )])?;
    let stack = Stack::start_only(&["intake", "routing", "sla"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut sla_events = subscribe(&stack, "sla.>").await?;
    let id = submit(&stack, "物业乱收停车费，多次反映没人管").await?;
    let (_, s) = resolution_started(&mut sla_events, &id, Duration::from_secs(10)).await?;
    let original = at(&s.deadline);
    let department = s.department.clone();

    // Desk's lifecycle events, as desk publishes them.
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let publish = |action: &str, seq: u64, extra: pb::ComplaintLifecycle| {
        let event = pb::Event {
            id: uuid::Uuid::now_v7().to_string(),
            complaint_id: id.clone(),
            sequence: seq,
            occurred_at: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
            policy_version: String::new(),
            producer: "desk".into(),
            payload: Some(Payload::Lifecycle(pb::ComplaintLifecycle {
                action: action.into(),
                department: department.clone(),
                actor: "handler-7".into(),
                ..extra
            })),
        };
        let subject = format!("tousu.evt.complaint.{action}.{department}");
        let js = js.clone();
        async move {
            js.publish(subject, prost::Message::encode_to_vec(&event).into())
                .await?
                .await?;
            anyhow::Ok(at(&event.occurred_at))
        }
    };
    let paused_at = publish(
        "paused",
        1,
        pb::ComplaintLifecycle {
            pause_reason: "appraisal".into(),
            reason: "appraisal".into(),
            ..Default::default()
        },
    )
    .await?;
    let (paused, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::SlaPaused(_)))
    })
    .await?;
    let Some(Payload::SlaPaused(p)) = &paused.payload else {
        unreachable!()
    };
    assert_eq!(p.reason, "appraisal");
    assert_eq!(p.actor, "handler-7");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resumed_at = publish("resumed", 2, pb::ComplaintLifecycle::default()).await?;
    let (resumed, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::SlaResumed(_)))
    })
    .await?;
    let Some(Payload::SlaResumed(r)) = &resumed.payload else {
        unreachable!()
    };
    let moved = at(&r.deadline) - original;
    // Clocks keep instants to the microsecond (what Postgres stores).
    let micros = |t: OffsetDateTime| t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap();
    assert_eq!(
        moved,
        micros(resumed_at) - micros(paused_at),
        "the deadline moves by exactly the paused time"
    );
    assert!(moved >= time::Duration::milliseconds(1500));

    let r = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{id}/clocks"),
        &[],
        b"",
    )
    .await?;
    let body = r.json();
    let resolution = body["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == "resolution")
        .unwrap()
        .clone();
    assert_eq!(resolution["state"], "running");
    assert_eq!(resolution["pauses"][0]["reason"], "appraisal");
    assert!(resolution["pauses"][0]["until"].is_string());
    let changes: Vec<&str> = resolution["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["paused", "resumed"]);
    assert!(
        resolution["explanation"]
            .as_str()
            .unwrap()
            .contains("paused")
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_calculator_and_bad_requests() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["sla"], |_, _| {}).await?;
    let sla = stack.http("sla");
    // 2025-09-30 (Tuesday) + 5 working days: 国庆/中秋 1–8 Oct skipped,
    // Saturday 11 Oct is a make-up working day (调休).
    let r = http(
        sla,
        "GET",
        "/v1/calendar/deadline?from=2025-09-30T10:00:00%2B08:00&duration=5wd&calendar=cn",
        &[],
        b"",
    )
    .await?;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let body = r.json();
    assert_eq!(body["deadline"], "2025-10-14T09:30:00Z");
    assert_eq!(body["calendar"], "cn");
    let skipped = body["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["date"] == "2025-10-01" && s["reason"].as_str().unwrap().contains("holiday"))
    );
    assert!(
        body["makeup_days"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["date"] == "2025-10-11")
    );

    for (query, field) in [
        ("duration=5wd&calendar=cn", "from"),
        ("from=yesterday&duration=5wd", "from"),
        ("from=2026-01-05T09:00:00Z&duration=5weeks", "duration"),
        (
            "from=2026-01-05T09:00:00Z&duration=5wd&calendar=nowhere",
            "calendar",
        ),
        (
            "from=2026-01-05T09:00:00Z&duration=5wd&calendar=../etc",
            "calendar",
        ),
        ("from=2031-01-05T09:00:00Z&duration=5wd&calendar=cn", "from"),
    ] {
        let r = http(
            sla,
            "GET",
            &format!("/v1/calendar/deadline?{query}"),
            &[],
            b"",
        )
        .await?;
        assert_eq!(r.status, 400, "{query}: {:?}", r.json());
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{query}"
        );
        assert!(
            r.problem_fields().contains(&field.to_owned()),
            "{query}: {:?}",
            r.json()
        );
    }
    let r = http(sla, "GET", "/v1/complaints/not-a-uuid/clocks", &[], b"").await?;
    assert_eq!(r.status, 400);
    let r = http(
        sla,
        "GET",
        &format!("/v1/complaints/{}/clocks", uuid::Uuid::now_v7()),
        &[],
        b"",
    )
    .await?;
    assert_eq!(r.status, 404);
    let r = http(
        sla,
        "POST",
        &format!("/v1/complaints/{}/escalations/1/ack", uuid::Uuid::now_v7()),
        &[("Content-Type", "application/json")],
        br#"{"actor": "head-1"}"#,
    )
    .await?;
    assert_eq!(r.status, 404);
    let r = http(
        sla,
        "POST",
        &format!("/v1/complaints/{}/escalations/1/ack", uuid::Uuid::now_v7()),
        &[("Content-Type", "application/json")],
        br#"{"who": "head-1"}"#,
    )
    .await?;
    assert_eq!(r.status, 400);

    // gRPC answers the same, from the same code.
    let mut client = tousu_proto::sla::sla_service_client::SlaServiceClient::connect(format!(
        "http://{}",
        stack.service("sla").grpc_addr.expect("grpc")
    ))
    .await?;
    let reply = client
        .deadline(tousu_proto::sla::DeadlineRequest {
            from: Some(tousu_bus::to_timestamp(
                time::macros::datetime!(2025-09-30 10:00 +08:00),
            )),
            duration: "5wd".into(),
            calendar: "cn".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        at(&reply.deadline),
        time::macros::datetime!(2025-10-14 17:30 +08:00)
    );
    let err = client
        .deadline(tousu_proto::sla::DeadlineRequest {
            from: None,
            duration: "5wd".into(),
            calendar: "cn".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("from"), "{}", err.message());
    let err = client
        .get_clocks(tousu_proto::sla::GetClocksRequest {
            complaint_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    stack.stop().await
}

fn spawn_sla(stack: &Stack, lease_secs: u64) -> ChildProcess {
    ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_tousu-service"))
            .arg("sla")
            .envs(stack.child_env("sla"))
            .env("TOUSU_SLA_SLA_LEASE_SECS", lease_secs.to_string())
            .env("TOUSU_SLA_SLA_PARTITIONS", "16")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }),
    )
    .expect("spawn sla")
}

async fn scalar(stack: &Stack, sql: &'static str) -> i64 {
    let Ok(mut db) = stack.db("sla").await else {
        return -1;
    };
    sqlx::query_scalar(sql)
        .fetch_one(&mut db)
        .await
        .unwrap_or(-1)
}

/// Every `sla.breached` of the seeded (`bench`) clocks on the stream:
/// (messages, distinct complaints).
async fn breaches_on_stream(stack: &Stack) -> anyhow::Result<(usize, usize)> {
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    let stream = js.get_stream("TOUSU_EVENTS").await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "tousu.evt.sla.breached.bench".into(),
            ..Default::default()
        })
        .await?;
    let pending = consumer.clone().info().await?.num_pending as usize;
    let mut messages = consumer.messages().await?;
    let mut ids = std::collections::HashSet::new();
    let mut n = 0;
    while n < pending {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        let e = decode_event(&m.payload).map_err(anyhow::Error::msg)?;
        ids.insert(e.complaint_id);
        n += 1;
    }
    Ok((n, ids.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_ten_thousand_pending_timers_fires_each_exactly_once() -> anyhow::Result<()> {
    let _heavy = tousu_tests::LOAD.read().await;
    const TIMERS: usize = 10_000;
    let stack = Stack::start_only(&[], |_, _| {}).await?;
    let mut sla = spawn_sla(&stack, 3);
    wait_until(Duration::from_secs(30), || async {
        scalar(
            &stack,
            "SELECT count(*) FROM leases WHERE owner IS NOT NULL",
        )
        .await
            == 16
    })
    .await?;
    // 10,000 timers due over the next 20 seconds.
    let start = OffsetDateTime::now_utc() + time::Duration::seconds(2);
    {
        let mut db = stack.db("sla").await?;
        tousu_sla::seed::breaches(&mut db, 16, TIMERS, |i| {
            start + time::Duration::milliseconds((i as i64) * 2)
        })
        .await?;
    }
    // Kill it mid-way.
    wait_until(Duration::from_secs(60), || async {
        scalar(
            &stack,
            "SELECT count(*) FROM clocks WHERE state = 'breached'",
        )
        .await
            >= 3000
    })
    .await?;
    sla.kill()?;
    let at_kill = scalar(
        &stack,
        "SELECT count(*) FROM clocks WHERE state = 'breached'",
    )
    .await;
    assert!(
        (at_kill as usize) < TIMERS,
        "the kill must land with timers pending"
    );
    let _sla = spawn_sla(&stack, 3);
    wait_until(Duration::from_secs(90), || async {
        scalar(&stack, "SELECT count(*) FROM timers").await == 0
            && scalar(&stack, "SELECT count(*) FROM outbox").await == 0
    })
    .await?;
    assert_eq!(
        scalar(
            &stack,
            "SELECT count(*) FROM clocks WHERE state = 'breached'"
        )
        .await,
        TIMERS as i64
    );
    let (messages, distinct) = breaches_on_stream(&stack).await?;
    assert_eq!(distinct, TIMERS, "every timer fired");
    assert_eq!(messages, TIMERS, "none fired twice");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_partitions_are_taken_over_within_the_lease() -> anyhow::Result<()> {
    let _heavy = tousu_tests::LOAD.read().await;
    const LEASE: u64 = 3;
    let stack = Stack::start_only(&[], |_, _| {}).await?;
    let mut a = spawn_sla(&stack, LEASE);
    wait_until(Duration::from_secs(30), || async {
        scalar(
            &stack,
            "SELECT count(*) FROM leases WHERE owner IS NOT NULL",
        )
        .await
            == 16
    })
    .await?;
    let _b = spawn_sla(&stack, LEASE);
    // The second replica takes its fair share: 8 each.
    wait_until(Duration::from_secs(30), || async {
        scalar(&stack, "SELECT count(DISTINCT owner) FROM leases WHERE owner IS NOT NULL AND expires_at > now()").await == 2
            && scalar(&stack, "SELECT max(c) FROM (SELECT count(*) c FROM leases GROUP BY owner) x").await == 8
    })
    .await?;
    // Timers in every partition, due after the kill.
    let due = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    {
        let mut db = stack.db("sla").await?;
        tousu_sla::seed::breaches(&mut db, 16, 400, |i| {
            due + time::Duration::milliseconds(i as i64 * 5)
        })
        .await?;
    }
    a.kill()?;
    let killed = std::time::Instant::now();
    // Within the lease (plus one renewal round of the survivor), one owner holds all.
    wait_until(Duration::from_secs(LEASE + 10), || async {
        scalar(&stack, "SELECT count(*) FROM leases WHERE expires_at > now() AND owner = (SELECT owner FROM replicas ORDER BY seen_at DESC LIMIT 1)").await == 16
    })
    .await?;
    let took = killed.elapsed();
    eprintln!(
        "partitions taken over {} ms after the kill",
        took.as_millis()
    );
    assert!(
        took <= Duration::from_secs(LEASE)
            + Duration::from_secs(LEASE) / 3
            + Duration::from_secs(1),
        "takeover took {took:?} with a {LEASE} s lease"
    );
    wait_until(Duration::from_secs(30), || async {
        scalar(&stack, "SELECT count(*) FROM timers").await == 0
            && scalar(&stack, "SELECT count(*) FROM outbox").await == 0
    })
    .await?;
    let (messages, distinct) = breaches_on_stream(&stack).await?;
    assert_eq!((messages, distinct), (400, 400));
    stack.stop().await
}

const LADDER: &str = r#"level = "breach"
description = "督办 to the department head; must be acknowledged."
role = "department_head"
after = "100%"
needs_ack = true
ack_within = "1s"
channels = ["wecom"]

[[escalation]]
level = "centre"
description = "The complaint centre, when nobody acknowledges."
role = "complaint_centre"
after = "100% + 1h"
channels = ["wecom"]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_escalation_goes_up_the_ladder_and_an_acknowledged_one_does_not()
-> anyhow::Result<()> {
    let (_dir, policy) = policy_with(&[
        (
            "sla.resolution",
            r#"default = { urgent = "2s", expedited = "2s", normal = "2s" }"#,
        ),
        ("escalation", LADDER),
    ])?;
    let stack = Stack::start_only(&["intake", "routing", "sla"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut escalations = subscribe(&stack, "escalation.>").await?;
    let ignored = submit(&stack, "小区电梯又坏了，三天没人修").await?;
    let acked = submit(&stack, "小区门禁坏了，一周没人修").await?;
    let acked_in_notify = submit(&stack, "小区路灯坏了，一个月没人修").await?;

    // All breach: step 1 goes out, needing an acknowledgement within 1 s.
    let mut first = std::collections::HashMap::new();
    while first.len() < 3 {
        let (e, _) = next_event(
            &mut escalations,
            Duration::from_secs(15),
            |e| matches!(&e.payload, Some(Payload::Escalation(x)) if x.step == 1),
        )
        .await?;
        let Some(Payload::Escalation(x)) = &e.payload else {
            unreachable!()
        };
        assert_eq!(x.level, "breach");
        assert_eq!(x.role, "department_head");
        assert!(x.needs_ack);
        assert_eq!(x.target, pb::SlaTarget::Resolution as i32);
        assert!(x.ack_deadline.is_some());
        first.insert(e.complaint_id.clone(), x.clone());
    }
    let r = http(
        stack.http("sla"),
        "POST",
        &format!("/v1/complaints/{acked}/escalations/1/ack"),
        &[("Content-Type", "application/json")],
        br#"{"actor": "head-of-property"}"#,
    )
    .await?;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["acked_by"], "head-of-property");
    // The third is acknowledged through notify's ack link: notify publishes
    // `notify.acked` and sla takes it as the acknowledgement.
    let cause = &first[&acked_in_notify];
    let event = pb::Event {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: acked_in_notify.clone(),
        sequence: 1,
        occurred_at: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
        policy_version: String::new(),
        producer: "notify".into(),
        payload: Some(Payload::NotifyAcked(pb::NotifyAcked {
            cause_event_id: uuid::Uuid::now_v7().to_string(),
            cause_event_type: format!("escalation.{}", cause.level),
            recipient: "head-of-lighting".into(),
            actor: "head-of-lighting".into(),
            escalation_step: cause.step,
            acked_at: Some(tousu_bus::to_timestamp(OffsetDateTime::now_utc())),
        })),
    };
    async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?)
        .publish(
            "tousu.evt.notify.acked",
            prost::Message::encode_to_vec(&event).into(),
        )
        .await?
        .await?;

    // Nobody acknowledged the other: the centre hears of it at once, not at
    // its own trigger an hour later.
    let (up, _) = next_event(
        &mut escalations,
        Duration::from_secs(10),
        |e| matches!(&e.payload, Some(Payload::Escalation(x)) if x.step == 2),
    )
    .await?;
    assert_eq!(up.complaint_id, ignored);
    let Some(Payload::Escalation(x)) = &up.payload else {
        unreachable!()
    };
    assert_eq!(x.level, "centre");
    assert!(x.reason.contains("not acknowledged"), "{}", x.reason);
    // And never for the acknowledged ones.
    assert!(
        next_event(&mut escalations, Duration::from_secs(3), |e| {
            (e.complaint_id == acked || e.complaint_id == acked_in_notify)
                && matches!(&e.payload, Some(Payload::Escalation(x)) if x.step == 2)
        })
        .await
        .is_err()
    );
    let clocks = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{acked_in_notify}/clocks"),
        &[],
        b"",
    )
    .await?
    .json();
    assert_eq!(clocks["escalations"][0]["acked_by"], "head-of-lighting");
    // Acknowledging the one that went up is refused, saying why.
    let r = http(
        stack.http("sla"),
        "POST",
        &format!("/v1/complaints/{ignored}/escalations/1/ack"),
        &[("Content-Type", "application/json")],
        br#"{"actor": "late-head"}"#,
    )
    .await?;
    assert_eq!(r.status, 409, "{:?}", r.json());
    assert!(r.json()["detail"].as_str().unwrap().contains("step 2"));
    let clocks = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{ignored}/clocks"),
        &[],
        b"",
    )
    .await?
    .json();
    let steps: Vec<_> = clocks["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["step"].as_u64().unwrap(), e["escalated_to"].as_u64()))
        .collect();
    assert_eq!(steps, [(1, Some(2)), (2, None)]);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_policy_recomputes_open_clocks_with_an_audit() -> anyhow::Result<()> {
    let (_dir, policy) = policy_with(&[(
        "sla.resolution",
        r#"default = { urgent = "1h", expedited = "1h", normal = "1h" }"#,
    )])?;
    let text = std::fs::read_to_string(&policy)?;
    let stack = Stack::start_only(&["intake", "routing", "sla"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut sla_events = subscribe(&stack, "sla.started.>").await?;
    let id = submit(&stack, "外卖送错了还不给退款").await?;
    let (started, s) = resolution_started(&mut sla_events, &id, Duration::from_secs(10)).await?;
    let before = at(&s.deadline);

    let changed = text.replace(
        r#"default = { urgent = "1h", expedited = "1h", normal = "1h" }"#,
        r#"default = { urgent = "3h", expedited = "3h", normal = "3h" }"#,
    );
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats.url).await?);
    js.get_key_value(tousu_routing::reload::BUCKET)
        .await?
        .put(tousu_routing::reload::KEY, changed.into_bytes().into())
        .await?;
    let (again, s) = resolution_started(&mut sla_events, &id, Duration::from_secs(15)).await?;
    assert_eq!(at(&s.deadline) - before, time::Duration::hours(2));
    assert_ne!(again.policy_version, started.policy_version);

    let clocks = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{id}/clocks"),
        &[],
        b"",
    )
    .await?
    .json();
    let resolution = clocks["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == "resolution")
        .unwrap()
        .clone();
    assert_eq!(resolution["duration"], "3h");
    assert_eq!(resolution["policy_version"], again.policy_version.as_str());
    let change = &resolution["changes"][0];
    assert_eq!(change["change"], "recomputed");
    assert_eq!(
        change["old_deadline"].as_str().map(|s| s.to_owned()),
        before
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    );
    assert!(change["new_deadline"].is_string());
    stack.stop().await
}

/// Replaces a complaint's regrade check at `days` open by one due now.
async fn bring_regrade_forward(stack: &Stack, id: uuid::Uuid, days: i32) -> anyhow::Result<()> {
    let mut db = stack.db("sla").await?;
    sqlx::query("DELETE FROM timers WHERE complaint_id = $1 AND kind = 'regrade' AND arg = $2")
        .bind(id)
        .bind(days)
        .execute(&mut db)
        .await?;
    tousu_sla::store::add_timers(
        &mut db,
        tousu_kit::Config::defaults("sla").sla_partitions,
        &[tousu_sla::store::NewTimer {
            complaint_id: id,
            target: tousu_domain::clock::Target::Resolution,
            fire: tousu_sla::rules::Fire {
                at: OffsetDateTime::now_utc(),
                kind: tousu_sla::rules::Kind::Regrade,
                arg: days,
            },
        }],
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_complaints_open_a_week_through_our_fault_become_hot() -> anyhow::Result<()> {
    let (_dir, policy) = tousu_tests::profile_with("property", &[])?;
    let stack = Stack::start_only(&["intake", "routing", "sla"], move |_, c| {
        c.policy = policy.clone();
    })
    .await?;
    let mut events = subscribe(&stack, ">").await?;
    let id = submit(&stack, "楼道灯坏了好几天了，麻烦物业来修一下").await?;
    let (assigned, _) = next_event(&mut events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::Assigned(_)))
    })
    .await?;
    let Some(Payload::Assigned(a)) = &assigned.payload else {
        unreachable!()
    };
    let grade = a.classification.as_ref().unwrap().grade;
    assert!(
        grade > 2,
        "a broken light starts below 热点 (grade {grade})"
    );
    // The regrade check at 7 days open, brought forward to now.
    let uuid = uuid::Uuid::parse_str(&id)?;
    wait_until(Duration::from_secs(10), || async {
        let mut db = stack.db("sla").await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM timers WHERE complaint_id = $1 AND kind = 'regrade' AND arg = 7",
        )
        .bind(uuid)
        .fetch_one(&mut db)
        .await
        .unwrap_or(0)
            == 1
    })
    .await?;
    bring_regrade_forward(&stack, uuid, 7).await?;
    let (regraded, _) = next_event(&mut events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::Regraded(_)))
    })
    .await?;
    let Some(Payload::Regraded(r)) = &regraded.payload else {
        unreachable!()
    };
    assert_eq!((r.old_grade, r.new_grade), (grade, 2));
    assert_eq!(r.actor, "sla");
    assert!(r.reason.contains("7 days"), "{}", r.reason);
    // The resolution clock is re-armed for 热点.
    let (_, s) = resolution_started(&mut events, &id, Duration::from_secs(10)).await?;
    assert!(s.explanation.contains("grade 2"), "{}", s.explanation);

    // At 30 days open it becomes 重大, and routing alerts leadership.
    bring_regrade_forward(&stack, uuid, 30).await?;
    let (regraded, _) = next_event(&mut events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::Regraded(_)))
    })
    .await?;
    let Some(Payload::Regraded(r)) = &regraded.payload else {
        unreachable!()
    };
    assert_eq!((r.old_grade, r.new_grade), (2, 1));
    let (alert, _) = next_event(&mut events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::AlertMajor(_)))
    })
    .await?;
    assert_eq!(alert.producer, "routing");
    let Some(Payload::AlertMajor(a)) = &alert.payload else {
        unreachable!()
    };
    assert!(
        a.rules
            .iter()
            .any(|h| h.rule == "regraded" && h.reason.contains("2 → 1"))
    );
    assert!(!a.tracking_no.is_empty());
    stack.stop().await
}

async fn post(
    stack: &Stack,
    id: &str,
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let r = http(
        stack.http("desk"),
        "POST",
        &format!("/v1/complaints/{id}/{action}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await?;
    anyhow::ensure!(r.status == 200, "{action}: {} {:?}", r.status, r.json());
    Ok(())
}

async fn resolution(stack: &Stack, id: &str) -> anyhow::Result<serde_json::Value> {
    let body = http(
        stack.http("sla"),
        "GET",
        &format!("/v1/complaints/{id}/clocks"),
        &[],
        b"",
    )
    .await?
    .json();
    body["clocks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["target"] == "resolution").cloned())
        .ok_or_else(|| anyhow::anyhow!("no resolution clock: {body}"))
}

fn rfc(s: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        s.as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
}

/// Desk's actions drive the clocks: sign-for and contact meet their
/// targets, a pause moves the resolution deadline by exactly the working
/// time it lasted (on the `cn` calendar), a transfer keeps the deadline,
/// an extension by the department head moves it on the calendar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_actions_drive_the_clocks_and_a_transfer_keeps_them() -> anyhow::Result<()> {
    let stack = Stack::start_only(&["intake", "routing", "sla", "desk"], |_, _| {}).await?;
    let mut sla_events = subscribe(&stack, "sla.>").await?;
    let id = submit(&stack, "快递三天没到，客服电话也打不通").await?;
    let (_, s) = resolution_started(&mut sla_events, &id, Duration::from_secs(10)).await?;
    let department = s.department.clone();
    let d0 = at(&s.deadline);
    tousu_tests::wait_for_status(stack.http("desk"), &id, "assigned", Duration::from_secs(10))
        .await?;

    post(&stack, &id, "sign-for", json!({"actor": "xu.fang"})).await?;
    let (met, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaMet(m)) if m.target == pb::SlaTarget::SignOff as i32)
    })
    .await?;
    assert!(met.occurred_at.is_some());
    post(
        &stack,
        &id,
        "contact",
        json!({"actor": "xu.fang", "note": "已电话联系"}),
    )
    .await?;
    next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaMet(m)) if m.target == pb::SlaTarget::FirstContact as i32)
    })
    .await?;

    post(
        &stack,
        &id,
        "pause",
        json!({"actor": "xu.fang", "reason": "appraisal", "note": "送检"}),
    )
    .await?;
    next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::SlaPaused(_)))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    post(&stack, &id, "resume", json!({"actor": "xu.fang"})).await?;
    let (resumed, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id && matches!(e.payload, Some(Payload::SlaResumed(_)))
    })
    .await?;
    let Some(Payload::SlaResumed(r)) = &resumed.payload else {
        unreachable!()
    };
    let d1 = at(&r.deadline);
    let clock = resolution(&stack, &id).await?;
    let pause = &clock["pauses"][0];
    assert_eq!(pause["reason"], "appraisal");
    assert_eq!(pause["actor"], "xu.fang");
    let cn = tousu_domain::calendar::Calendar::load(
        &tousu_tests::default_policy()
            .parent()
            .unwrap()
            .join("calendars"),
        "cn",
    )?;
    let paused = cn.elapsed_working(rfc(&pause["from"]), rfc(&pause["until"]))?;
    assert_eq!(
        d1,
        cn.add_working(d0, paused)?.max(d0),
        "the deadline moves by the paused working time ({paused})"
    );

    let to = if department == "quality" {
        "logistics"
    } else {
        "quality"
    };
    post(
        &stack,
        &id,
        "transfer",
        json!({"actor": "xu.fang", "to_department": to, "reason": "属于质量问题"}),
    )
    .await?;
    wait_until(Duration::from_secs(10), || async {
        resolution(&stack, &id)
            .await
            .is_ok_and(|c| c["department"] == to)
    })
    .await?;
    let clock = resolution(&stack, &id).await?;
    assert_eq!(rfc(&clock["deadline"]), d1, "a transfer keeps the clock");
    assert_eq!(clock["state"], "running");
    assert!(
        clock["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "reassigned"
                && c["reason"].as_str().unwrap().contains("transferred"))
    );

    tousu_tests::wait_for_status(stack.http("desk"), &id, "assigned", Duration::from_secs(10))
        .await?;
    post(&stack, &id, "sign-for", json!({"actor": "ma.li"})).await?;
    post(
        &stack,
        &id,
        "extend",
        json!({"actor": "ma.li", "duration": "2wd", "approver_role": "department_head",
               "reason": "等待检测报告"}),
    )
    .await?;
    let (extended, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaExtended(x)) if x.target == pb::SlaTarget::Resolution as i32)
    })
    .await?;
    let Some(Payload::SlaExtended(x)) = &extended.payload else {
        unreachable!()
    };
    assert_eq!(at(&x.old_deadline), d1);
    assert_eq!(at(&x.new_deadline), cn.deadline_at(d1, &"2wd".parse()?)?);
    assert!(x.complainant_must_be_told);
    assert_eq!(x.approver, "ma.li");

    post(
        &stack,
        &id,
        "resolve",
        json!({"actor": "ma.li", "resolution": "已补发"}),
    )
    .await?;
    let (met, _) = next_event(&mut sla_events, Duration::from_secs(10), |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::SlaMet(m)) if m.target == pb::SlaTarget::Resolution as i32)
    })
    .await?;
    let Some(Payload::SlaMet(m)) = &met.payload else {
        unreachable!()
    };
    assert_eq!(m.department, to);
    stack.stop().await
}
