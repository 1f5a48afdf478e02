//! Scenarios of the default profile (domain.md §3–5; seeds_A §4.5, §11).

mod profile_support;

use profile_support::{decide, facts, profile, rules};
use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::Flag;
use tousu_policy::schema::{Duration, Step, Strategy};

fn d(s: &str) -> Duration {
    s.parse().unwrap()
}

#[test]
fn battery_explosion_is_grade_1_urgent_routed_to_quality_with_the_safety_flag() {
    // seeds_A §4.5: 一级, battery explosion → emergency response, quality, recall.
    let p = profile("default");
    let mut f = facts(
        "我上周在你们旗舰店买的充电宝，昨晚充电时突然爆炸起火，我的手被烫伤了，床单也烧了一个洞。",
        "product_quality",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety));
    assert_eq!(rules(&g.hits), ["safety-harm"]);
    assert_eq!(r.department.as_str(), "quality");
    assert_eq!(rules(&r.hits), ["product-safety"]);
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, r.sla.as_deref()),
        Some(d("24h"))
    );
    assert_eq!(
        p.sla_target(Step::Dispatch, g.grade, g.urgency, None),
        Some(d("1h"))
    );
    // Grade 1 tells the duty leader within 30 minutes, daily until closed.
    let major = p
        .notify
        .iter()
        .find(|n| n.applies("alert.major", g.grade, Some("quality")))
        .unwrap();
    assert_eq!(major.within, Some(d("30m")));
    assert_eq!(major.repeat, Some(d("1d")));
}

#[test]
fn quality_problem_with_property_loss_is_handled_within_24_hours() {
    // seeds_A §4.5: serious quality problem causing property loss → 质量管理部,
    // investigate within 24 h, compensation.
    let p = profile("default");
    let mut f = facts(
        "新买的电暖器用了两天就短路冒烟，把木地板烤焦了一块，要求赔偿地板损失。",
        "product_quality",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert_eq!(rules(&g.hits), ["safety-hazard", "compensation-claim"]);
    assert_eq!(r.department.as_str(), "quality");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("24h"))
    );
}

#[test]
fn a_group_of_ten_is_major_and_the_category_routes_it() {
    let p = profile("default");
    let mut f = facts(
        "我们12位会员联名投诉：健身房突然关门，预付的会员卡余额不退，合同上写的服务一项都没兑现。",
        "contract_dispute",
    );
    f.group_size = 12;
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert!(g.flags.contains(Flag::Group));
    assert_eq!(r.department.as_str(), "legal");
    assert_eq!(r.hits[0].rule, "taxonomy:contract_dispute");
    for (size, grade) in [
        (10, Grade::MAJOR),
        (9, Grade::HOT),
        (3, Grade::HOT),
        (2, Grade::GENERAL),
    ] {
        let mut f = facts("会员卡余额不退", "contract_dispute");
        f.group_size = size;
        assert_eq!(p.grade(&f).grade, grade, "group of {size}");
    }
}

#[test]
fn an_english_lawyer_threat_is_hot_with_legal_as_co_department() {
    let p = profile("default");
    let mut f = facts(
        "The laptop screen died three days after delivery and your after-sales team refuses a refund. \
         If this is not fixed by Friday my lawyer will take legal action.",
        "refund_aftersales",
    );
    f.language = "en".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::HOT);
    assert!(g.flags.contains(Flag::Litigation));
    assert_eq!(r.department.as_str(), "service");
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["legal"]
    );
    assert_eq!(r.skills, ["english"]);
    assert_eq!(r.strategy, Strategy::Skills);
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("10wd"))
    );
}

#[test]
fn a_plain_complaint_is_grade_4_with_five_working_days() {
    let p = profile("default");
    let mut f = facts(
        "门店收银员态度很差，问她问题爱答不理的。",
        "service_attitude",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!((g.grade, g.urgency), (Grade::GENERAL, Urgency::Normal));
    assert!(g.hits.is_empty(), "{:?}", g.hits);
    assert_eq!(r.department.as_str(), "service");
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("5wd"))
    );
    assert_eq!(
        p.sla_target(Step::SignOff, g.grade, g.urgency, None),
        Some(d("4wh"))
    );
    // Unsure classifier: triage (the complaint centre).
    f.confidence = 0.1;
    assert_eq!(p.route(&f).department.as_str(), "service");
    assert_eq!(p.route(&f).hits[0].rule, "triage");
}

#[test]
fn referrals_similar_complaints_and_lateness_raise_the_grade() {
    let p = profile("default");
    let mut f = facts("快递显示已签收但我没收到包裹。", "logistics");
    f.referred_by = "12315".into();
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert!(g.flags.contains(Flag::RegulatorReferred));

    let mut f = facts("快递显示已签收但我没收到包裹。", "logistics");
    for (n, grade) in [(1, Grade::GENERAL), (2, Grade::GENERAL), (3, Grade::HOT)] {
        f.similar_complainants = n;
        assert_eq!(p.grade(&f).grade, grade, "{n} complainants");
    }
    f.similar_complainants = 1;
    f.days_open = 7;
    assert_eq!(
        p.grade(&f).grade,
        Grade::GENERAL,
        "late, but not through our fault"
    );
    f.delay_ours = true;
    assert_eq!(p.grade(&f).grade, Grade::HOT);
    f.days_open = 6;
    assert_eq!(p.grade(&f).grade, Grade::GENERAL);
    // A repeat after handling is 重要.
    f.repeat_count = 1;
    f.handled_before = true;
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert!(g.flags.contains(Flag::Repeat));
}
