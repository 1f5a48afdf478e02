//! Scenarios of the property profile: the Vanke scheme (seeds_B §9.2,
//! TC-08 … TC-14) and the property cases of §9.6 (TC-48 … TC-57).

mod profile_support;

use profile_support::{decide, facts, profile, rules};
use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::Flag;
use tousu_policy::schema::{Duration, Step};

fn d(s: &str) -> Duration {
    s.parse().unwrap()
}

const FEE_INCREASE: &str = "物业费从每平米2.5元涨到3.8元，没有开业主大会，也没有公示，我们不同意。";

#[test]
fn group_complaints_inclusive_thresholds() {
    // TC-08: 3 owners → 热点; TC-09: 10 → 重大; TC-10: 9 → 热点, 2 → no group grade.
    let p = profile("property");
    for (size, grade) in [
        (10, Grade::MAJOR),
        (11, Grade::MAJOR),
        (9, Grade::HOT),
        (3, Grade::HOT),
        (2, Grade::GENERAL),
        (1, Grade::GENERAL),
    ] {
        let mut f = facts(FEE_INCREASE, "fees");
        f.group_size = size;
        let (g, r) = decide(&p, &mut f);
        assert_eq!(g.grade, grade, "group of {size}");
        assert_eq!(g.flags.contains(Flag::Group), size >= 3, "group of {size}");
        assert_eq!(r.department.as_str(), "finance");
    }
    // 热点 reaches the company and the group coordination centre within 1 WD.
    let hot = p
        .notify
        .iter()
        .find(|n| n.applies("complaint.graded", Grade::HOT, None))
        .unwrap();
    assert_eq!(hot.within, Some(d("1wd")));
}

#[test]
fn the_third_different_complainant_within_a_month_is_hot_but_the_same_one_is_a_repeat() {
    // TC-11.
    let p = profile("property");
    let text = "3号楼2单元的电梯这个月已经坏了好几次，每次修完没两天又停。";
    let mut f = facts(text, "equipment");
    f.similar_complainants = 2;
    assert_eq!(p.grade(&f).grade, Grade::GENERAL, "the second complainant");
    f.similar_complainants = 3;
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::HOT, "the third complainant");
    assert_eq!(rules(&g.hits), ["hot-same-issue"]);
    assert_eq!(p.similarity.window_days, 30);

    // The same owner three times, after handling: 重要, not 热点.
    let mut f = facts(text, "equipment");
    f.similar_complainants = 1;
    f.repeat_count = 2;
    f.handled_before = true;
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert!(g.flags.contains(Flag::Repeat));
}

#[test]
fn an_unresolved_case_grows_hot_at_a_week_and_major_at_a_month_through_our_fault() {
    // TC-12.
    let p = profile("property");
    let mut f = facts("厨房下水管堵塞报修五天了还没人来修。", "repair_service");
    for (days, ours, grade) in [
        (6, true, Grade::GENERAL),
        (7, true, Grade::HOT),
        (29, true, Grade::HOT),
        (30, true, Grade::MAJOR),
        (30, false, Grade::GENERAL),
    ] {
        f.days_open = days;
        f.delay_ours = ours;
        assert_eq!(p.grade(&f).grade, grade, "day {days}, our fault {ours}");
    }
}

#[test]
fn litigation_and_media_filed_are_major_threatened_are_hot() {
    // TC-13.
    let p = profile("property");
    let mut f = facts(
        "因为小区车库漏水泡坏了我的车，我已经向法院起诉了物业公司，法院已立案。",
        "equipment",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert!(g.flags.contains(Flag::Litigation));
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["legal"]
    );

    let mut f = facts(
        "车库漏水泡坏了我的车，再不赔偿我就找律师告你们，还要找电视台曝光。",
        "equipment",
    );
    let (g, _) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert!(g.flags.contains(Flag::Litigation) && g.flags.contains(Flag::MediaRisk));
    assert_eq!(
        rules(&g.hits),
        ["hot-litigation-threat", "hot-media-threat"]
    );

    let mut f = facts(
        "我们小区垃圾站臭气熏天的事情已经被晚报报道了，媒体报道后还是没人管。",
        "environment",
    );
    assert_eq!(p.grade(&f).grade, Grade::MAJOR);
    f.set_text("", "垃圾站很臭，已经一个星期没清运了。");
    assert_eq!(p.grade(&f).grade, Grade::GENERAL);
}

#[test]
fn outside_support_is_important() {
    // TC-14.
    let p = profile("property");
    let mut f = facts(
        "外墙瓷砖空鼓脱落，物业说要请第三方检测机构鉴定后才能处理。",
        "developer_quality",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(r.department.as_str(), "developer");
}

#[test]
fn categories_route_by_root_cause() {
    let p = profile("property");
    // TC-48: broken elevator by phone → 设备管理类, engineering, reply the same day.
    let mut f = facts("下午四点，5栋电梯突然停运，老人上不了楼。", "equipment");
    f.channel = "phone".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(r.department.as_str(), "engineering");
    assert_eq!(r.sla, None);
    assert_eq!(
        p.sla_target(Step::FirstContact, g.grade, g.urgency, None),
        Some(d("1wd"))
    );
    // TC-49: email about a leaking roof under warranty → developer, 2 WD reply.
    let mut f = facts(
        "新交房的房子屋顶漏水，还在保修期内，请开发商尽快维修。",
        "developer_quality",
    );
    f.channel = "email".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(r.department.as_str(), "developer");
    assert_eq!(r.sla.as_deref(), Some("written"));
    assert_eq!(
        p.sla_target(Step::FirstContact, g.grade, g.urgency, r.sla.as_deref()),
        Some(d("2wd"))
    );
    // TC-50: municipal water outage → 三类, liaison, urgent.
    let mut f = facts(
        "整个小区从早上开始停水，说是自来水公司管道抢修。",
        "municipal",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert_eq!(r.department.as_str(), "liaison");
    // TC-54: guards' walkie-talkies at night → 安全管理类, even when the
    // classifier said environment.
    let mut f = facts(
        "保安晚上巡逻时对讲机声音很大，吵得人睡不着，噪音扰民。",
        "environment",
    );
    let (_, r) = decide(&p, &mut f);
    assert_eq!(r.department.as_str(), "security");
    assert_eq!(rules(&r.hits), ["guard-noise"]);
}

#[test]
fn elevator_entrapment_with_injury_is_major() {
    // TC-57.
    let p = profile("property");
    let mut f = facts(
        "我和孩子被困在电梯里四十分钟，孩子惊吓过度，我手臂摔伤了。",
        "equipment",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety));
    assert_eq!(r.department.as_str(), "engineering");
    assert_eq!(r.skills, ["elevator"]);
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["security"]
    );
    // Major: report to the quality manager and the GM within 1 working day.
    let report = p
        .notify
        .iter()
        .filter(|n| n.applies("alert.major", g.grade, Some("engineering")))
        .find(|n| n.roles.iter().any(|r| r == "quality_manager"))
        .unwrap();
    assert_eq!(report.within, Some(d("1wd")));
}
