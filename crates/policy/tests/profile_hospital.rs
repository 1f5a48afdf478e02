//! Scenarios of the hospital profile (seeds_B §9.5, TC-42 … TC-47;
//! 医疗机构投诉管理办法).

mod profile_support;

use profile_support::{decide, facts, profile, rules};
use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::Flag;
use tousu_policy::schema::{Duration, Step};

fn d(s: &str) -> Duration {
    s.parse().unwrap()
}

#[test]
fn a_rude_nurse_goes_to_the_conduct_office() {
    // TC-42.
    let p = profile("hospital");
    let mut f = facts(
        "我母亲住院期间，护士态度恶劣，按呼叫铃半小时没人来，来了还训斥我们。",
        "service_attitude",
    );
    f.channel = "walk_in".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!((g.grade, g.urgency), (Grade::GENERAL, Urgency::Normal));
    assert_eq!(r.department.as_str(), "conduct_office");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("5wd"))
    );
    assert_eq!(
        p.sla_target(Step::Acknowledge, Grade::GENERAL, Urgency::Urgent, None),
        Some(d("15m"))
    );
}

#[test]
fn a_red_envelope_request_is_important_and_goes_to_the_conduct_office() {
    // TC-43: written complaint, answer within 2 WD, written reply.
    let p = profile("hospital");
    let mut f = facts(
        "主刀医生在手术前暗示要红包，不给就往后排，请医院严肃处理。",
        "medical_ethics",
    );
    f.channel = "letter".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(r.department.as_str(), "conduct_office");
    assert_eq!(rules(&r.hits), ["ethics-to-conduct"]);
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["medical_affairs"]
    );
    assert_eq!(
        p.sla_target(Step::FirstContact, g.grade, g.urgency, None),
        Some(d("2wd"))
    );
}

#[test]
fn two_departments_get_ten_working_days() {
    // TC-44: radiology and surgery.
    let p = profile("hospital");
    let mut f = facts(
        "放射科的CT报告写错了左右侧，外科医生据此安排了手术，术前才发现，耽误了一周。",
        "medical_technique",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(r.department.as_str(), "medical_affairs");
    assert_eq!(r.sla.as_deref(), Some("multi_department"));
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, r.sla.as_deref()),
        Some(d("10wd"))
    );
    // One department only: 5 WD.
    let mut f = facts("外科医生手术后没有解释并发症的风险。", "medical_technique");
    let (g, r) = decide(&p, &mut f);
    assert_eq!(r.sla, None);
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, r.sla.as_deref()),
        Some(d("5wd"))
    );
    let overlay = p.sla.overlay.as_ref().unwrap();
    assert_eq!(
        (overlay.duration, overlay.extensions.as_slice()),
        (d("5wd"), &[d("10wd")][..])
    );
}

#[test]
fn a_death_after_surgery_with_a_lawyer_is_major() {
    let p = profile("hospital");
    let mut f = facts(
        "我父亲术后第二天抢救无效去世，我们怀疑是医疗事故，已经请了律师。",
        "medical_technique",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety) && g.flags.contains(Flag::Litigation));
    assert_eq!(r.department.as_str(), "medical_affairs");
    assert!(
        p.notify
            .iter()
            .any(|n| n.applies("alert.major", g.grade, None)
                && n.roles.iter().any(|r| r == "health_authority_liaison"))
    );
}

#[test]
fn wrong_medicine_is_an_urgent_safety_risk() {
    let p = profile("hospital");
    let mut f = facts(
        "药房发错药了，给我孩子的是成人剂量，吃了以后出现过敏反应。",
        "drugs",
    );
    f.vulnerable = true;
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety));
    assert_eq!(r.department.as_str(), "pharmacy");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("24h"))
    );
}
