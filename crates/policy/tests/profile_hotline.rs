//! Scenarios of the 12345 government-hotline profile (standards.md §2.1
//! rows 2–7, §6.1–6.3: 53号 / 66号, DB11/T 2021-2022, Weifang / Jinan).

mod profile_support;

use profile_support::{decide, facts, profile, rules};
use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::Flag;
use tousu_policy::schema::{Duration, Step};

fn d(s: &str) -> Duration {
    s.parse().unwrap()
}

fn hotline() -> tousu_policy::schema::Policy {
    profile("hotline-12345")
}

#[test]
fn a_gas_leak_is_dispatched_within_an_hour_to_emergency_services() {
    let p = hotline();
    let mut f = facts(
        "幸福里小区7号楼楼道里燃气泄漏，味道很大，请马上派人！",
        "public_utilities",
    );
    f.channel = "phone".into();
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety));
    assert_eq!(r.department.as_str(), "public_security");
    assert_eq!(rules(&r.hits), ["emergency-transfer"]);
    assert_eq!(
        p.sla_target(Step::Dispatch, g.grade, g.urgency, None),
        Some(d("1h"))
    );
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("24h"))
    );
}

#[test]
fn no_heating_in_winter_is_dispatched_within_two_hours() {
    let p = hotline();
    let mut f = facts(
        "已经供暖一周了，我家暖气不热，室温只有14度，家里有老人。",
        "public_utilities",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.urgency, Urgency::Expedited);
    assert_eq!(g.grade, Grade::GENERAL);
    assert_eq!(r.department.as_str(), "utilities");
    assert_eq!(
        p.sla_target(Step::Dispatch, g.grade, g.urgency, None),
        Some(d("2h"))
    );
}

#[test]
fn night_construction_noise_is_general_five_working_days() {
    let p = hotline();
    let mut f = facts(
        "小区旁边的工地每天夜间施工到凌晨两点，噪音扰民严重。",
        "environmental_protection",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!((g.grade, g.urgency), (Grade::GENERAL, Urgency::Normal));
    assert_eq!(r.department.as_str(), "ecology_environment");
    assert_eq!(
        p.sla_target(Step::Dispatch, g.grade, g.urgency, None),
        Some(d("24h"))
    );
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, None),
        Some(d("5wd"))
    );
    assert_eq!(
        p.sla_target(Step::ReturnVisit, g.grade, g.urgency, None),
        Some(d("1wd"))
    );
}

#[test]
fn twelve_workers_owed_wages_are_major_and_urgent() {
    let p = hotline();
    let mut f = facts(
        "我们12个农民工在某工地干了半年，老板拖欠工资十几万不给，快过年了。",
        "social_security",
    );
    f.group_size = 12;
    let (g, r) = decide(&p, &mut f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Group));
    assert_eq!(r.department.as_str(), "human_resources");
}

#[test]
fn buck_passing_matters_are_complex_with_the_district() {
    let p = hotline();
    let mut f = facts(
        "小区门口的井盖丢了半个月，多次反映，城管说归水务，水务说归街道，互相推诿没人管。",
        "urban_management",
    );
    let (g, r) = decide(&p, &mut f);
    assert_eq!(r.department.as_str(), "urban_management");
    assert_eq!(r.sla.as_deref(), Some("complex"));
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["district"]
    );
    assert_eq!(
        p.sla_target(Step::Resolution, g.grade, g.urgency, r.sla.as_deref()),
        Some(d("15d"))
    );
}

#[test]
fn a_fled_gym_goes_to_market_regulation_with_the_district() {
    let p = hotline();
    let mut f = facts(
        "小区楼下的健身房办了预付卡，上周突然关门跑路了，卡里还有三千多。",
        "market_supervision",
    );
    let (_, r) = decide(&p, &mut f);
    assert_eq!(r.department.as_str(), "market_regulation");
    assert_eq!(rules(&r.hits), ["prepaid-card-fled"]);
    assert_eq!(
        r.co_departments
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["district"]
    );
}

#[test]
fn repeat_calls_move_up() {
    let p = hotline();
    let mut f = facts("路灯不亮的问题我之前反映过。", "urban_management");
    for (repeats, grade) in [(0, Grade::GENERAL), (1, Grade::IMPORTANT), (2, Grade::HOT)] {
        f.repeat_count = repeats;
        let g = p.grade(&f);
        assert_eq!(g.grade, grade, "{repeats} earlier calls");
        assert_eq!(g.flags.contains(Flag::Repeat), repeats > 0);
    }
}
