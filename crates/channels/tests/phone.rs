//! Phone channel: call-centre call records and FreeSWITCH `mod_json_cdr`
//! bodies (fixtures/phone), happy and unhappy paths.

use serde_json::{Value, json};
use tousu_channels::Invalid;
use tousu_channels::phone::{NOTES_HEADING, parse};

const RECORD_ZH: &[u8] = include_bytes!("fixtures/phone/call_record_zh.json");
const RECORD_EN: &[u8] = include_bytes!("fixtures/phone/call_record_en.json");
const WITHHELD_IVR: &[u8] = include_bytes!("fixtures/phone/call_record_withheld_ivr.json");
const FOLLOWUP: &[u8] = include_bytes!("fixtures/phone/call_record_followup.json");
const NO_TEXT: &[u8] = include_bytes!("fixtures/phone/call_record_no_text.json");
const WRONG_TYPES: &[u8] = include_bytes!("fixtures/phone/call_record_wrong_types.json");
const CDR_ZH: &[u8] = include_bytes!("fixtures/phone/freeswitch_cdr_zh.json");
const CDR_NO_TEXT: &[u8] = include_bytes!("fixtures/phone/freeswitch_cdr_no_text.json");

fn with(body: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn fields(errors: &[Invalid]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

// --- call records ---------------------------------------------------------------

#[test]
fn chinese_call_with_transcript_and_notes() {
    let c = parse(RECORD_ZH).unwrap();
    let f = &c.fields;
    assert_eq!(f.channel_message_id.as_deref(), Some("CC20261122-0000173"));
    assert_eq!(f.phone.as_deref(), Some("+8613812345678"));
    assert!(!f.anonymous);
    assert_eq!(f.occurred_at.as_deref(), Some("2026-11-22T10:15:03+08:00"));
    assert_eq!(f.category_hint.as_deref(), Some("安装服务"));
    let d = f.description.as_deref().unwrap();
    let (transcript, notes) = d.split_once(&format!("\n\n{NOTES_HEADING}\n")).unwrap();
    assert!(
        transcript.starts_with("客户：你好，我上周买的洗衣机")
            && transcript.ends_with("24小时内联系您。")
    );
    assert_eq!(transcript.lines().count(), 4);
    assert_eq!(
        notes,
        "客户反映安装人员划伤地板，要求赔偿维修费用约800元。已安抚，承诺24小时内回电。"
    );
    assert_eq!(c.extra("callee"), Some("4008123123"));
    assert_eq!(c.extra("agent_id"), Some("A1042"));
    assert_eq!(c.extra("ended_at"), Some("2026-11-22T10:23:41+08:00"));
    assert_eq!(c.extra("duration_seconds"), Some("518"));
    assert_eq!(
        c.extra("ivr_path"),
        Some("欢迎致电 > 售后服务 > 投诉与建议 > 转人工")
    );
    assert_eq!(
        c.extra("recording_url"),
        Some("https://recordings.example.cn/2026/11/22/CC20261122-0000173.wav")
    );
    assert_eq!(c.extra("customer_ref"), Some("VIP-00381277"));
    assert_eq!(c.extra("caller"), None);
    assert_eq!(c.extra("caller_withheld"), None);
    assert!(c.tracking_refs.is_empty() && c.thread_keys.is_empty() && c.reply_to.is_empty());
}

#[test]
fn english_call_with_notes_only_and_numeric_ids() {
    let c = parse(RECORD_EN).unwrap();
    let f = &c.fields;
    assert_eq!(f.channel_message_id.as_deref(), Some("8812004417"));
    assert_eq!(f.phone.as_deref(), Some("+442079460958"));
    assert_eq!(f.occurred_at.as_deref(), Some("2026-03-05T09:02:11Z"));
    assert_eq!(f.category_hint.as_deref(), Some("billing"));
    let d = f.description.as_deref().unwrap();
    assert!(d.starts_with("Caller reports duplicate charge of GBP 89.00"));
    assert!(!d.contains(NOTES_HEADING), "notes alone need no heading");
    assert_eq!(c.extra("agent_id"), Some("3107"));
    assert_eq!(c.extra("duration_seconds"), Some("449"));
    assert_eq!(c.extra("recording_url"), None, "empty values are not kept");
    assert_eq!(c.extra("ivr_path"), None);
    assert_eq!(c.extra("customer_ref"), Some("CUST-55120"));
}

#[test]
fn withheld_number_is_still_a_complaint_marked_anonymous() {
    let c = parse(WITHHELD_IVR).unwrap();
    let f = &c.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("a3f0c9d2-5b7e-4c11-9d0e-7f2b8c6a1e44")
    );
    assert!(f.anonymous);
    assert_eq!(f.phone, None);
    assert_eq!(c.extra("caller"), Some("anonymous"));
    assert_eq!(c.extra("caller_withheld"), Some("true"));
    assert_eq!(c.extra("ivr_path"), Some("主菜单 > 3 > 匿名举报"));
    assert_eq!(c.extra("callee"), Some("12345"));
    assert!(
        f.description
            .as_deref()
            .unwrap()
            .starts_with("我要举报你们城南门店的店员")
    );
}

#[test]
fn internal_or_missing_caller_is_anonymous_too() {
    for (caller, raw) in [
        (json!("8001"), Some("8001")),
        (json!("Unknown"), Some("Unknown")),
        (json!(""), None),
        (Value::Null, None),
    ] {
        let body = with(RECORD_ZH, |v| v["caller"] = caller.clone());
        let c = parse(&body).unwrap();
        assert!(c.fields.anonymous, "{caller}");
        assert_eq!(c.fields.phone, None);
        assert_eq!(c.extra("caller"), raw);
        assert_eq!(c.extra("caller_withheld"), Some("true"));
    }
    // A CTI that sends the number as a JSON number.
    let body = with(RECORD_ZH, |v| v["caller"] = json!(13812345678u64));
    assert_eq!(
        parse(&body).unwrap().fields.phone.as_deref(),
        Some("+8613812345678")
    );
}

#[test]
fn tracking_number_in_agent_notes_makes_a_follow_up() {
    let c = parse(FOLLOWUP).unwrap();
    assert_eq!(c.tracking_refs, ["TS20261122-000173"]);
    assert_eq!(c.fields.phone.as_deref(), Some("+8613812345678"));
    // The transcript is not searched for references.
    let body = with(RECORD_ZH, |v| {
        v["transcript"] = json!("客户：我的投诉单号是 TS20261122-000999。");
    });
    assert!(parse(&body).unwrap().tracking_refs.is_empty());
}

#[test]
fn a_call_without_transcript_or_notes_is_invalid() {
    let errors = parse(NO_TEXT).unwrap_err();
    assert_eq!(fields(&errors), ["transcript"]);
    let body = with(NO_TEXT, |v| {
        v.as_object_mut().unwrap().remove("transcript");
        v.as_object_mut().unwrap().remove("notes");
    });
    assert_eq!(fields(&parse(&body).unwrap_err()), ["transcript"]);
}

#[test]
fn every_wrong_type_is_reported_at_once() {
    let errors = parse(WRONG_TYPES).unwrap_err();
    assert_eq!(
        fields(&errors),
        [
            "call_id",
            "caller",
            "agent_id",
            "started_at",
            "ended_at",
            "ivr_path[1]",
            "transcript",
            "notes",
            "recording_url",
            "category_hint",
            "customer_ref",
        ],
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.message.is_empty()));
}

#[test]
fn missing_call_id_is_reported_with_the_other_problems() {
    let body = with(NO_TEXT, |v| {
        v.as_object_mut().unwrap().remove("call_id");
        v["started_at"] = json!("22/11/2026 11:00");
    });
    assert_eq!(
        fields(&parse(&body).unwrap_err()),
        ["call_id", "started_at", "transcript"]
    );
    let body = with(RECORD_ZH, |v| v["call_id"] = json!("   "));
    let errors = parse(&body).unwrap_err();
    assert_eq!(
        (errors[0].field.as_str(), errors[0].message.as_str()),
        ("call_id", "missing")
    );
}

#[test]
fn timestamps_must_be_rfc3339_and_in_order() {
    let body = with(RECORD_ZH, |v| {
        v["started_at"] = json!("2026-11-22 10:15:03")
    });
    assert_eq!(fields(&parse(&body).unwrap_err()), ["started_at"]);
    let body = with(RECORD_ZH, |v| {
        v["ended_at"] = json!("2026-11-22T10:00:00+08:00")
    });
    let errors = parse(&body).unwrap_err();
    assert_eq!(fields(&errors), ["ended_at"]);
    assert!(errors[0].message.contains("before the start"));
    // Fractional seconds are dropped; the offset is kept.
    let body = with(RECORD_ZH, |v| {
        v["started_at"] = json!("2026-11-22T02:15:03.750Z");
        v["ended_at"] = Value::Null;
    });
    let c = parse(&body).unwrap();
    assert_eq!(
        c.fields.occurred_at.as_deref(),
        Some("2026-11-22T02:15:03Z")
    );
    assert_eq!(c.extra("duration_seconds"), None);
}

#[test]
fn ivr_path_must_be_an_array() {
    let body = with(RECORD_ZH, |v| v["ivr_path"] = json!("欢迎致电 > 售后服务"));
    assert_eq!(fields(&parse(&body).unwrap_err()), ["ivr_path"]);
    let body = with(RECORD_ZH, |v| v["ivr_path"] = json!([]));
    assert_eq!(parse(&body).unwrap().extra("ivr_path"), None);
}

#[test]
fn malformed_bodies_name_the_body() {
    let deep = format!(
        "{{\"call_id\":\"x\",\"notes\":\"n\",\"a\":{}",
        "[".repeat(100_000)
    );
    for body in [
        b"".as_slice(),
        b"\xff\xfe{}".as_slice(),
        b"{\"call_id\": \"CC1\", ".as_slice(),
        b"[\"CC1\"]".as_slice(),
        deep.as_bytes(),
    ] {
        let errors = parse(body).unwrap_err();
        assert_eq!(fields(&errors), ["body"], "{errors:?}");
    }
}

// --- FreeSWITCH mod_json_cdr ----------------------------------------------------

#[test]
fn freeswitch_cdr_with_url_encoded_chinese_transcript() {
    let raw: Value = serde_json::from_slice(CDR_ZH).unwrap();
    let encoded = raw["variables"]["tousu_transcript"].as_str().unwrap();
    assert!(
        encoded.starts_with("%E6%82%A8%E5%A5%BD"),
        "the fixture is URL-encoded"
    );

    let c = parse(CDR_ZH).unwrap();
    let f = &c.fields;
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some("0f6b2c1e-8c1d-4b0a-9d63-5e2f0a7c3b91")
    );
    assert_eq!(f.phone.as_deref(), Some("+8613912345678"));
    assert!(!f.anonymous);
    assert_eq!(f.occurred_at.as_deref(), Some("2026-11-22T10:15:03+08:00"));
    assert_eq!(f.category_hint.as_deref(), Some("宽带资费"));
    assert_eq!(
        f.description.as_deref(),
        Some(
            "您好，我要投诉。我在你们网上营业厅办的宽带提速，钱扣了199元，网速还是100M没变。客服说“系统延迟”，已经一个星期了！\n\n坐席备注 / Agent notes:\n客户要求退还199元或立即提速；已提交工单，承诺48小时内处理。"
        )
    );
    assert_eq!(c.extra("callee"), Some("4008123123"));
    assert_eq!(c.extra("agent_id"), Some("1042@default"));
    assert_eq!(c.extra("ended_at"), Some("2026-11-22T10:21:40+08:00"));
    assert_eq!(c.extra("duration_seconds"), Some("397"));
    assert_eq!(c.extra("ivr_path"), Some("主菜单 > 宽带业务 > 投诉"));
    assert_eq!(c.extra("customer_ref"), Some("BB-3301-7765"));
    assert_eq!(
        c.extra("recording_url"),
        Some("https://rec.example.cn/fs/2026/11/22/0f6b2c1e-8c1d-4b0a-9d63-5e2f0a7c3b91.wav")
    );
    assert_eq!(c.extra("hangup_cause"), Some("NORMAL_CLEARING"));
}

#[test]
fn freeswitch_local_stamps_are_read_as_china_time_when_epochs_are_missing() {
    let body = with(CDR_ZH, |v| {
        let vars = v["variables"].as_object_mut().unwrap();
        vars.remove("start_epoch");
        vars.insert("end_epoch".into(), json!("0"));
        vars.insert("end_stamp".into(), json!("2026-11-22%2010%3A25%3A00"));
    });
    let c = parse(&body).unwrap();
    assert_eq!(
        c.fields.occurred_at.as_deref(),
        Some("2026-11-22T10:15:03+08:00")
    );
    assert_eq!(c.extra("ended_at"), Some("2026-11-22T10:25:00+08:00"));
    assert_eq!(c.extra("duration_seconds"), Some("597"));

    let body = with(CDR_ZH, |v| {
        let vars = v["variables"].as_object_mut().unwrap();
        vars.remove("start_epoch");
        vars.insert("start_stamp".into(), json!("22%2F11%2F2026"));
        vars.insert("end_epoch".into(), json!("soon"));
    });
    assert_eq!(
        fields(&parse(&body).unwrap_err()),
        ["variables.start_stamp", "variables.end_epoch"]
    );
}

#[test]
fn freeswitch_caller_falls_back_through_profile_and_sip_user() {
    // No caller_id_number variable: the caller profile in callflow comes
    // before sip_from_user (which a proxy may have rewritten).
    let body = with(CDR_ZH, |v| {
        v["variables"]["sip_from_user"] = json!("13700001111")
    });
    assert_eq!(
        parse(&body).unwrap().fields.phone.as_deref(),
        Some("+8613912345678")
    );
    // No profile either: sip_from_user.
    let body = with(CDR_ZH, |v| {
        v.as_object_mut().unwrap().remove("callflow");
        v["variables"]["sip_from_user"] = json!("13700001111");
    });
    assert_eq!(
        parse(&body).unwrap().fields.phone.as_deref(),
        Some("+8613700001111")
    );
    // An explicit caller_id_number variable wins.
    let body = with(CDR_ZH, |v| {
        v["variables"]["caller_id_number"] = json!("%2B8613600002222")
    });
    assert_eq!(
        parse(&body).unwrap().fields.phone.as_deref(),
        Some("+8613600002222")
    );
}

#[test]
fn freeswitch_cdr_without_text_is_invalid_and_with_notes_is_anonymous() {
    let errors = parse(CDR_NO_TEXT).unwrap_err();
    assert_eq!(fields(&errors), ["variables.tousu_transcript"]);

    let body = with(CDR_NO_TEXT, |v| {
        v["variables"]["notes"] = json!(
            "%E5%8C%BF%E5%90%8D%E6%9D%A5%E7%94%B5%E6%8A%95%E8%AF%89%E5%99%AA%E9%9F%B3%E6%89%B0%E6%B0%91"
        );
    });
    let c = parse(&body).unwrap();
    assert_eq!(
        c.fields.description.as_deref(),
        Some("匿名来电投诉噪音扰民")
    );
    assert!(c.fields.anonymous);
    assert_eq!(c.fields.phone, None);
    assert_eq!(c.extra("caller"), Some("anonymous"));
    assert_eq!(c.extra("caller_withheld"), Some("true"));
    assert_eq!(
        c.fields.channel_message_id.as_deref(),
        Some("5c8e1d2a-0b9f-4e7d-a6c3-2f1e0d9c8b7a")
    );
}

#[test]
fn freeswitch_plain_variable_names_and_asr_result_are_accepted() {
    let body = with(CDR_ZH, |v| {
        let vars = v["variables"].as_object_mut().unwrap();
        vars.remove("tousu_transcript");
        vars.remove("tousu_notes");
        vars.insert(
            "asr_result".into(),
            json!("%E7%BD%91%E9%80%9F%E5%A4%AA%E6%85%A2"),
        );
    });
    assert_eq!(
        parse(&body).unwrap().fields.description.as_deref(),
        Some("网速太慢")
    );
}

#[test]
fn freeswitch_problems_name_the_variable() {
    let body = with(CDR_ZH, |v| {
        let vars = v["variables"].as_object_mut().unwrap();
        vars.remove("uuid");
        vars.insert("tousu_transcript".into(), json!("%FF%FE%E6"));
        vars.insert("tousu_notes".into(), json!(17));
    });
    assert_eq!(
        fields(&parse(&body).unwrap_err()),
        [
            "variables.uuid",
            "variables.tousu_transcript",
            "variables.tousu_notes"
        ]
    );
    // call_uuid stands in for uuid.
    let body = with(CDR_ZH, |v| {
        let vars = v["variables"].as_object_mut().unwrap();
        vars.remove("uuid");
        vars.insert("call_uuid".into(), json!("b1c2d3"));
    });
    assert_eq!(
        parse(&body).unwrap().fields.channel_message_id.as_deref(),
        Some("b1c2d3")
    );
}

#[test]
fn a_variables_field_that_is_not_an_object_means_a_call_record() {
    let body = with(RECORD_ZH, |v| v["variables"] = json!("x=1"));
    assert_eq!(
        parse(&body).unwrap().fields.channel_message_id.as_deref(),
        Some("CC20261122-0000173")
    );
}

/// The phone parser has no fuzz target of its own: mutate every fixture
/// deterministically (byte flips, cuts, inserted escapes and brackets) and
/// check that parsing never panics and that a failure always says why.
#[test]
fn mutated_bodies_never_panic_and_failures_name_a_field() {
    let fixtures = [
        RECORD_ZH,
        RECORD_EN,
        WITHHELD_IVR,
        FOLLOWUP,
        NO_TEXT,
        WRONG_TYPES,
        CDR_ZH,
        CDR_NO_TEXT,
    ];
    let inserts: [&[u8]; 8] = [b"%", b"%E6", b"{", b"[", b"\"", b"\\", b"\xff", b"%FF"];
    let mut seed: u64 = 0x2026_1122_1015_0303;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n.max(1)
    };
    let (mut ok, mut failed) = (0, 0);
    for round in 0..6000 {
        let mut body = fixtures[round % fixtures.len()].to_vec();
        for _ in 0..=next(3) {
            let at = next(body.len() + 1);
            match next(4) {
                0 if at < body.len() => body[at] ^= 1 << next(8),
                1 => body.truncate(at),
                2 => body
                    .splice(at..at, inserts[next(inserts.len())].iter().copied())
                    .for_each(drop),
                _ if at < body.len() => {
                    body.remove(at);
                }
                _ => {}
            }
        }
        match parse(&body) {
            Ok(c) => {
                ok += 1;
                assert!(c.fields.channel_message_id.is_some_and(|id| !id.is_empty()));
                assert!(c.fields.description.is_some_and(|d| !d.is_empty()));
                assert_eq!(c.fields.anonymous, c.fields.phone.is_none());
            }
            Err(errors) => {
                failed += 1;
                assert!(!errors.is_empty() && errors.iter().all(|e| !e.field.is_empty()));
            }
        }
    }
    assert!(
        ok > 100 && failed > 100,
        "mutations reach both outcomes: {ok} ok, {failed} failed"
    );
}
