//! Scenarios of the bank / credit-cooperative profile (seeds_B §9.3,
//! TC-17 … TC-28; 银保监会令2020年第3号).

mod profile_support;

use profile_support::{decide, facts, profile, rules};
use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::Flag;
use tousu_policy::schema::{Duration, Step};

fn d(s: &str) -> Duration {
    s.parse().unwrap()
}

#[test]
fn a_rude_teller_is_a_general_complaint_answered_in_three_working_days() {
    // TC-17.
    let p = profile("bank");
    let mut f = facts(
        "今天上午在城东分社办业务，柜员态度恶劣，嫌我动作慢还当众呵斥我。",
        "staff_conduct",
    );
    f.channel = "walk_in".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!((g.grade, g.urgency), (Grade::GENERAL, Urgency::Normal));
    assert_eq!(r.department.as_str(), "branch");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("3wd"))
    );
    // The regulator's clock: 15 days, extendable to 30 and 60.
    let overlay = p.sla.overlay.as_ref().unwrap();
    assert_eq!(overlay.duration, d("15d"));
    assert_eq!(overlay.extensions, [d("30d"), d("60d")]);
}

#[test]
fn product_channel_and_irregular_operations_are_complex() {
    // TC-18: 復雜投訴 → 7–10 working days, the product or channel department leads.
    let p = profile("bank");
    let mut f = facts(
        "客户经理说这是保本的理财产品，结果到期亏损了8%，风险评估也是他代我填的，属于误导销售。",
        "wealth_sales",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(r.department.as_str(), "product");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("10wd"))
    );

    let mut f = facts(
        "手机银行转账显示成功，三天了对方还没到账。",
        "payment_channel",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(r.department.as_str(), "channels");
}

#[test]
fn financial_crime_goes_to_audit_not_the_outlet() {
    // TC-21.
    let p = profile("bank");
    let mut f = facts(
        "我发现网点的客户经理挪用了我存的20万元，还冒名在我账户上办了贷款。",
        "violation_crime",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(r.department.as_str(), "audit");
    assert_eq!(rules(&r.hits), ["crime-to-audit"]);
    // 重大: the regulator liaison is told.
    assert!(
        p.notify
            .iter()
            .any(|n| n.applies("alert.major", g.grade, Some("audit"))
                && n.roles.iter().any(|r| r == "regulator_liaison"))
    );
}

#[test]
fn a_tv_station_calling_is_major_and_audit_answers_the_media() {
    // TC-22.
    let p = profile("bank");
    let mut f = facts(
        "省电视台记者来电，称有储户反映我社网点长期不给兑换零钱，要求采访核实。",
        "counter_service",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert!(g.flags.contains(Flag::MediaRisk));
    assert_eq!(r.department.as_str(), "audit");
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["consumer_protection"]
    );
    // A mere threat is 热点, and still the media rule routes it.
    let mut f = facts("再不解决我就去找媒体曝光你们。", "counter_service");
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert_eq!(r.department.as_str(), "audit");
}

#[test]
fn economic_disputes_bring_in_legal_and_re_complaints_are_important() {
    // TC-23, TC-24.
    let p = profile("bank");
    let mut f = facts(
        "贷款合同里的违约金条款不合理，协商不成我准备向法院起诉。",
        "loan",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert!(g.flags.contains(Flag::Litigation));
    assert_eq!(r.department.as_str(), "product");
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["legal"]
    );

    let mut f = facts(
        "上次反映的存折挂失问题，你们的答复我不满意，再次投诉。",
        "deposit_account",
    );
    f.repeat_count = 1;
    f.handled_before = true;
    let (g, _) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert!(g.flags.contains(Flag::Repeat));
}

#[test]
fn government_forwarded_complaints_and_card_fraud() {
    // TC-20: forwarded by a government department → 联社稽核监察部.
    let p = profile("bank");
    let mut f = facts(
        "市12345转来：市民反映某信用社网点收取小额账户管理费。",
        "fees_pricing",
    );
    f.referred_by = "12345".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert!(g.flags.contains(Flag::RegulatorReferred));
    assert_eq!(r.department.as_str(), "audit");

    // Card fraud in progress: urgent, 24 h.
    let mut f = facts(
        "我的信用卡正在被盗刷，一直在扣钱，客服电话打不通！",
        "bank_card",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert_eq!(r.department.as_str(), "product");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("24h"))
    );
}
