//! The policy file model: loading, validation diagnostics at exact
//! positions, grading precedence, routing first-match and fallbacks, SLA
//! lookups, and `check` reports.

mod profile_support;

use tousu_domain::{Grade, Urgency};
use tousu_policy::cel::{Facts, Flag};
use tousu_policy::check;
use tousu_policy::schema::{
    Duration, FrequencyClass, Policy, Severity, Step, Strategy, Trigger, Unit,
};

const MINI: &str = r#"name = "mini"
triage_department = "service"
classify_threshold = 0.4

[departments.service]
name = "客服中心"
[departments.quality]
name = "质量部"
strategy = "least_open"
[departments.logistics]
name = "物流部"
[departments.legal]
name = "法务部"

[[taxonomy]]
code = "product_quality"
name = "产品质量"
department = "quality"
keywords = { "质量" = 2.0 }

[[taxonomy]]
code = "logistics"
name = "物流"
department = "logistics"
keywords = { "快递" = 2.0 }

[[taxonomy]]
code = "other"
name = "其他"
keywords = { "建议" = 1.0 }

[[grading]]
id = "safety"
keywords = ["爆炸", "起火", "injur"]
grade = 1
urgency = "urgent"
flags = ["safety"]

[[grading]]
id = "lawyer"
keywords = ["律师", "lawyer"]
grade = 2
flags = ["litigation"]

[[grading]]
id = "group-hot"
when = "group_size >= 3"
grade = 2
flags = ["group"]

[[grading]]
id = "deadline"
keywords = ["航班"]
urgency = "加急"

[[grading]]
id = "compensation"
keywords = ["赔偿"]
grade = 3

[[grading]]
id = "fragile"
when = "repeat_count > 0 && group_size / (repeat_count - 1) > 1"
grade = 3

[[routing]]
id = "legal"
when = "flags.litigation"
co_departments = ["legal"]

[[routing]]
id = "express"
keywords = ["快递", "courier"]
department = "logistics"
sla = "fast"

[[routing]]
id = "express-quality"
keywords = ["快递"]
categories = ["product_quality"]
department = "quality"

[sla.resolution]
default = { urgent = "24h", expedited = "3wd", normal = "5wd" }
1 = { normal = "15wd" }

[sla.variants.fast]
resolution = { default = { normal = "2wd" } }
"#;

fn mini() -> Policy {
    match Policy::from_toml(MINI, "mini.toml") {
        Ok((p, warnings)) => {
            assert!(warnings.is_empty(), "{warnings:?}");
            p
        }
        Err(d) => panic!("{d:#?}"),
    }
}

/// `line:col: severity: message` of every diagnostic (no file name).
fn diags(text: &str) -> Vec<String> {
    let list = match Policy::from_toml(text, "p.toml") {
        Ok((_, warnings)) => warnings,
        Err(all) => all,
    };
    list.iter()
        .map(|d| {
            assert_eq!(d.file, "p.toml");
            format!("{}:{}: {}: {}", d.line, d.column, d.severity, d.message)
        })
        .collect()
}

fn has(diags: &[String], prefix: &str, needle: &str) -> bool {
    diags
        .iter()
        .any(|d| d.starts_with(prefix) && d.contains(needle))
}

// ---------------------------------------------------------------------------
// Grading

#[test]
fn the_most_serious_grade_and_the_most_urgent_urgency_win() {
    let p = mini();
    let mut f = Facts::new(
        "投诉",
        "快递送来的充电宝爆炸了，我要找律师，要求赔偿。明天还要赶航班。",
    );
    f.category = "product_quality".into();
    f.confidence = 0.9;
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.urgency, Urgency::Urgent);
    assert!(g.flags.contains(Flag::Safety) && g.flags.contains(Flag::Litigation));
    assert!(!g.flags.contains(Flag::Group));
    let ids: Vec<&str> = g.hits.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(ids, ["safety", "lawyer", "deadline", "compensation"]);
    assert_eq!(
        g.hits[0].reason,
        "keyword \"爆炸\" → grade 1 (重大), urgency urgent, flags safety"
    );
    assert_eq!(g.hits[2].reason, "keyword \"航班\" → urgency expedited");
}

#[test]
fn nothing_matching_is_grade_4_normal_and_keeps_the_facts_flags() {
    let p = mini();
    let mut f = Facts::new("", "The parcel arrived two days late.");
    f.repeat_count = 2;
    f.flags.insert(Flag::RegulatorReferred);
    let g = p.grade(&f);
    assert_eq!((g.grade, g.urgency), (Grade::GENERAL, Urgency::Normal));
    assert!(g.flags.contains(Flag::RegulatorReferred));
    assert!(g.hits.is_empty(), "{:?}", g.hits);
}

#[test]
fn english_keywords_match_word_starts_case_insensitively() {
    let p = mini();
    let g = p.grade(&Facts::new(
        "",
        "My son was INJURED by the charger. Our LAWYER will write.",
    ));
    assert_eq!(g.grade, Grade::MAJOR);
    assert_eq!(g.hits.len(), 2);
    // "uninjured" does not start with "injur"; "lawyers" does start with "lawyer".
    let g = p.grade(&Facts::new(
        "",
        "Luckily he was uninjured; the lawyers agreed.",
    ));
    assert_eq!(g.grade, Grade::HOT);
    assert_eq!(g.hits[0].rule, "lawyer");
}

#[test]
fn group_thresholds_are_inclusive() {
    let p = mini();
    for (size, grade) in [
        (1, Grade::GENERAL),
        (2, Grade::GENERAL),
        (3, Grade::HOT),
        (4, Grade::HOT),
    ] {
        let mut f = Facts::new("", "小区门口的路灯坏了");
        f.group_size = size;
        assert_eq!(p.grade(&f).grade, grade, "group of {size}");
    }
}

#[test]
fn a_condition_that_fails_to_evaluate_is_skipped_and_explained() {
    let p = mini();
    let mut f = Facts::new("", "质量太差");
    f.repeat_count = 1; // group_size / 0
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::GENERAL);
    assert_eq!(g.hits.len(), 1);
    assert_eq!(g.hits[0].rule, "fragile");
    assert!(
        g.hits[0]
            .reason
            .starts_with("skipped: CEL evaluation failed"),
        "{}",
        g.hits[0].reason
    );
    f.repeat_count = 2;
    f.group_size = 2;
    let g = p.grade(&f);
    assert_eq!(g.grade, Grade::IMPORTANT);
    assert_eq!(
        g.hits[0].reason,
        "when `repeat_count > 0 && group_size / (repeat_count - 1) > 1` → grade 3 (重要)"
    );
}

// ---------------------------------------------------------------------------
// Routing

#[test]
fn the_first_deciding_rule_wins_and_additive_rules_add_co_departments() {
    let p = mini();
    let mut f = Facts::new("", "快递员把货摔坏了，质量也有问题，我已经联系律师。");
    f.category = "product_quality".into();
    f.confidence = 0.95;
    p.grade(&f).apply(&mut f);
    let r = p.route(&f);
    assert_eq!(r.department.as_str(), "logistics");
    assert_eq!(
        r.co_departments
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>(),
        ["legal"]
    );
    assert_eq!(r.sla.as_deref(), Some("fast"));
    assert_eq!(r.strategy, Strategy::RoundRobin);
    let ids: Vec<&str> = r.hits.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(ids, ["legal", "express"]);
    assert_eq!(
        r.hits[1].reason,
        "keyword \"快递\" → department logistics, sla fast"
    );
}

#[test]
fn without_a_rule_the_category_decides_or_triage_takes_it() {
    let p = mini();
    let mut f = Facts::new("", "买的保温杯用了一周就漏水，质量太差");
    f.category = "product_quality".into();
    f.confidence = 0.8;
    let r = p.route(&f);
    assert_eq!(r.department.as_str(), "quality");
    assert_eq!(r.strategy, Strategy::LeastOpen, "the department's strategy");
    assert_eq!(r.hits[0].rule, "taxonomy:product_quality");

    // Below the threshold (0.4): triage.
    f.confidence = 0.39;
    let r = p.route(&f);
    assert_eq!(r.department.as_str(), "service");
    assert!(
        r.hits[0].reason.contains("below 0.40"),
        "{}",
        r.hits[0].reason
    );

    // A category without a department, an unknown one, none at all: triage.
    for cat in ["other", "no_such_category", ""] {
        f.category = cat.into();
        f.confidence = 0.9;
        let r = p.route(&f);
        assert_eq!(r.department.as_str(), "service", "{cat:?}");
        assert_eq!(r.hits.last().map(|h| h.rule.as_str()), Some("triage"));
    }
}

#[test]
fn a_co_department_equal_to_the_department_is_dropped() {
    let text = MINI.replace(
        "co_departments = [\"legal\"]",
        "co_departments = [\"legal\", \"logistics\"]",
    );
    let (p, _) = Policy::from_toml(&text, "p.toml").unwrap();
    let mut f = Facts::new("", "快递丢了，我找了律师");
    p.grade(&f).apply(&mut f);
    let r = p.route(&f);
    assert_eq!(r.department.as_str(), "logistics");
    assert_eq!(
        r.co_departments
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>(),
        ["legal"]
    );
}

// ---------------------------------------------------------------------------
// SLA lookups

#[test]
fn sla_targets_fall_back_from_variant_to_rows_to_default() {
    let p = mini();
    let wd = |n| Duration {
        amount: n,
        unit: Unit::WorkingDays,
    };
    let t = |g, u, v| p.sla_target(Step::Resolution, g, u, v);
    assert_eq!(t(Grade::MAJOR, Urgency::Normal, None), Some(wd(15)));
    assert_eq!(t(Grade::HOT, Urgency::Normal, None), Some(wd(5)));
    assert_eq!(t(Grade::MAJOR, Urgency::Expedited, None), Some(wd(3)));
    assert_eq!(t(Grade::MAJOR, Urgency::Normal, Some("fast")), Some(wd(2)));
    // The variant sets only `normal`: urgent comes from the base table.
    assert_eq!(
        t(Grade::MAJOR, Urgency::Urgent, Some("fast")),
        Some(Duration {
            amount: 24,
            unit: Unit::Hours
        })
    );
    assert_eq!(t(Grade::HOT, Urgency::Normal, Some("unknown")), Some(wd(5)));
    // A step without a table has no clock.
    assert_eq!(
        p.sla_target(Step::Dispatch, Grade::MAJOR, Urgency::Urgent, None),
        None
    );
    assert_eq!(p.sla.warnings, [50, 80]);
}

#[test]
fn defaults_of_optional_sections() {
    let p = mini();
    assert_eq!(p.time_zone, "Asia/Shanghai");
    assert_eq!(p.frequency.class(1), FrequencyClass::Occasional);
    assert_eq!(p.frequency.class(3), FrequencyClass::Many);
    assert_eq!(p.frequency.class(10), FrequencyClass::High);
    assert_eq!(p.similarity.window_days, 30);
    assert_eq!(p.hot.per, ["category", "location"]);
    assert_eq!(p.departments["service"].return_window_hours, 24);
}

#[test]
fn the_version_is_the_sha256_of_the_bytes() {
    let (a, _) = Policy::from_toml(MINI, "a.toml").unwrap();
    let (b, _) = Policy::from_toml(&format!("{MINI}\n# a comment\n"), "b.toml").unwrap();
    // sha256 of the text, computed independently of the crate.
    assert!(a.version.starts_with("sha256:"));
    assert_eq!(a.version.len(), "sha256:".len() + 64);
    assert_ne!(a.version, b.version);
    assert_eq!(
        a.version,
        Policy::from_toml(MINI, "c.toml").unwrap().0.version
    );
}

// ---------------------------------------------------------------------------
// Diagnostics at exact positions

#[test]
fn toml_syntax_and_unknown_keys_are_located() {
    let d = diags(&MINI.replace("name = \"质量部\"", "name = \"质量部\"\ncolour = \"red\""));
    assert_eq!(
        d,
        [
            "9:1: error: unknown field `colour`, expected one of `name`, `description`, `head`, `handlers`, `strategy`, `skills`, `return_window_hours`"
        ]
    );
    let d = diags(&MINI.replace(
        "grade = 3\n\n[[grading]]\nid = \"fragile\"",
        "grade = \n\n[[grading]]\nid = \"fragile\"",
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(
        d,
        ["59:9: error: string values must be quoted, expected literal string"]
    );
    let d = diags(&MINI.replace("urgency = \"加急\"", "urgency = \"加急\"\nurgnecy = \"x\""));
    assert!(
        d[0].starts_with("55:1: error: unknown field `urgnecy`"),
        "{d:?}"
    );
    let d = diags(&MINI.replace("flags = [\"group\"]", "flags = [\"crowd\"]"));
    assert!(
        d[0].starts_with("49:10: error: unknown variant `crowd`"),
        "{d:?}"
    );
    let d = diags("name = \"x\"\n[sla.resolution]\n");
    assert_eq!(d, ["1:1: error: missing field `triage_department`"]);
}

const BROKEN: &str = r#"name = "broken"
triage_department = "service"

[departments.service]
name = "客服"

[[taxonomy]]
code = "a"
name = "A"
department = "nowhere"
keywords = { "快递" = 2.0 }

[[taxonomy]]
code = "b"
name = "B"
keywords = { "快递" = 2.0 }

[[grading]]
id = "g1"
when = "group_sise >= 3"
grade = 5

[[grading]]
id = "g1"
keywords = ["律师"]
urgency = "soon"

[[routing]]
id = "all"
department = "service"

[[routing]]
id = "late"
keywords = ["快递"]
department = "logistics"

[[routing]]
id = "cat"
when = "category == 'c' && flags.press"
department = "service"

[sla.resolution]
1 = { urgent = "24h", expedited = "3wd", normal = "15wd" }
default = { urgent = "24h", expedited = "3wd", normal = "5x" }
"#;

#[test]
fn every_problem_is_reported_at_its_line_and_column() {
    let d = diags(BROKEN);
    let expected = [
        "7:1: error: category a: unknown department \"nowhere\" (known: service)",
        "13:1: warning: categories a and b share keyword \"快递\" with the same weight 2: it cannot tell them apart",
        "20:9: error: rule g1: `when`: unknown field `group_sise` (known fields: text, title, description, channel, language, product, location, category_hint, demand, amount, customer_tier, category, confidence, terms, group_size, repeat_count, handled_before, similar_complainants, follow_ups, grade, urgency, flags, hour, weekday, days_open, delay_ours, referred_by, anonymous, vulnerable)",
        "21:9: error: rule g1: grade 5 is not between 1 (一级 重大) and 4 (四级 一般)",
        "24:6: error: duplicate rule id \"g1\" (first used at line 19)",
        "26:11: error: rule g1: invalid urgency: \"soon\" is not one of normal, expedited, urgent (一般, 加急, 紧急)",
        "32:1: warning: routing rule late is unreachable: rule all (line 28) before it matches every complaint and decides",
        "35:14: error: routing rule late: unknown department \"logistics\" (known: service)",
        "37:1: warning: routing rule cat is unreachable: rule all (line 28) before it matches every complaint and decides",
        "39:28: error: rule cat: `when`: unknown flag `flags.press` (known flags: safety, litigation, media_risk, regulator_referred, repeat, group)",
        "42:1: error: sla.resolution: no target for grade 2 × normal (一般): add `normal` to row 2 or to the `default` row",
        "42:1: error: sla.resolution: no target for grade 3 × normal (一般): add `normal` to row 3 or to the `default` row",
        "42:1: error: sla.resolution: no target for grade 4 × normal (一般): add `normal` to row 4 or to the `default` row",
        "44:57: error: sla.resolution.default.normal: invalid duration \"5x\": unknown unit \"x\": expected h (hours), m (minutes), s (seconds), wh (working hours), wd (working days) or d (calendar days)",
    ];
    assert_eq!(d, expected, "\n{}", d.join("\n"));
}

#[test]
fn cel_errors_point_into_the_expression() {
    // A syntax error in the middle of a condition.
    let text = MINI.replace("when = \"group_size >= 3\"", "when = \"group_size >= = 3\"");
    let d = diags(&text);
    assert!(
        d[0].starts_with("47:23: error: rule group-hot: `when`: CEL syntax error at 1:15"),
        "{d:?}"
    );
    // An unknown category compared in a condition.
    let text = MINI.replace(
        "when = \"flags.litigation\"",
        "when = \"flags.litigation || category == 'logistic'\"",
    );
    let d = diags(&text);
    assert_eq!(
        d,
        [
            "68:41: error: rule legal: `when` compares category with unknown category \"logistic\" (known: logistics, other, product_quality)"
        ]
    );
    // An unknown function.
    let text = MINI.replace(
        "when = \"flags.litigation\"",
        "when = \"lower(text) == 'x'\"",
    );
    let d = diags(&text);
    assert!(
        d[0].starts_with("68:9: error: rule legal: `when`: unknown function `lower`"),
        "{d:?}"
    );
    // A condition in a multi-line string with an escape: reported at the string.
    let text = MINI.replace(
        "when = \"flags.litigation\"",
        "when = \"\"\"\nflags.litigation &&\n  \\u0074ext == 1 && foo\"\"\"",
    );
    let d = diags(&text);
    assert!(
        d[0].starts_with("68:8: error: rule legal: `when`: unknown field `foo`"),
        "{d:?}"
    );
}

#[test]
fn unknown_references_in_every_section_are_errors() {
    let extra = r#"
[[escalation]]
level = "warn"
role = "boss"
after = "80%"
channels = ["pager"]

[[escalation]]
level = "late"
role = "leadership"
after = { normal = "100% + 5wd", expedited = "100% + 1d" }

[[notify]]
event = "alert..hot"
min_grade = 0
department = "sales"
roles = ["leadership"]
channels = ["email"]

[[pause_reasons]]
code = "wait"
name = "等待"
max = "five days"

[[rosters.members]]
id = "a"
name = "A"
contacts = { fax = "123" }

[[rosters.duty]]
role = "duty_leader"
members = ["a", "b"]
weekdays = ["mon", "someday"]
from = "8:00"
to = "17:30"

[frequency]
high = 3
many = 3
"#;
    let d = diags(&format!("{MINI}{extra}"));
    let base = MINI.lines().count();
    let at = |line: usize| format!("{}:", base + line);
    assert!(
        has(&d, &at(4), "escalation level warn: unknown role \"boss\""),
        "{d:#?}"
    );
    assert!(has(&d, &at(6), "unknown channel \"pager\""), "{d:#?}");
    assert!(
        has(
            &d,
            &at(11),
            "escalation level late: after gives no trigger for urgency urgent"
        ),
        "{d:#?}"
    );
    assert!(has(&d, &at(14), "event pattern must be"), "{d:#?}");
    assert!(
        has(&d, &at(15), "min_grade: grade 0 is not between"),
        "{d:#?}"
    );
    assert!(has(&d, &at(16), "unknown department \"sales\""), "{d:#?}");
    assert!(
        has(
            &d,
            &at(23),
            "max: invalid duration \"five days\": expected a number"
        ),
        "{d:#?}"
    );
    assert!(
        has(&d, &at(28), "unknown contact channel \"fax\""),
        "{d:#?}"
    );
    assert!(has(&d, &at(32), "\"b\" is not a roster member"), "{d:#?}");
    assert!(has(&d, &at(33), "\"someday\" is not a weekday"), "{d:#?}");
    assert!(has(&d, &at(34), "\"8:00\" is not a time HH:MM"), "{d:#?}");
    assert!(
        has(&d, &at(37), "frequency: many (3) must be below high (3)"),
        "{d:#?}"
    );
    assert!(d.iter().all(|x| x.contains(": error: ")), "{d:#?}");
}

#[test]
fn overlapping_and_catch_all_rules_are_warnings() {
    let extra = r#"
[[grading]]
id = "always"
grade = 4

[[grading]]
id = "lawyer-again"
keywords = ["lawyer", "律师"]
urgency = "urgent"

[[routing]]
id = "express-again"
keywords = ["courier", "快递"]
department = "quality"

[[routing]]
id = "true"
when = "true"
department = "service"

[[routing]]
id = "after-true"
keywords = ["建议"]
department = "service"
"#;
    // Appended after [sla…]: put the rules back before the SLA section.
    let (head, tail) = MINI.split_at(MINI.find("[sla.resolution]").unwrap());
    let text = format!("{head}{extra}\n{tail}");
    let (_, warnings) = Policy::from_toml(&text, "p.toml").expect("warnings only");
    let w: Vec<String> = warnings
        .iter()
        .map(|d| format!("{}: {}", d.line, d.message))
        .collect();
    assert_eq!(
        w,
        [
            "84: grading rule always matches every complaint (no keywords, categories or condition)",
            "88: grading rule lawyer-again overlaps rule lawyer (line 39): same keywords, categories and condition; merge them",
            "93: routing rule express-again overlaps rule express (line 71): same keywords, categories and condition; it can never decide",
            "103: routing rule after-true is unreachable: rule true (line 98) before it matches every complaint and decides",
        ],
        "{w:#?}"
    );
    assert!(warnings.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn a_category_listing_a_keyword_twice_is_a_warning() {
    let text = MINI.replace(
        "keywords = { \"快递\" = 2.0 }",
        "keywords = { \"快递\" = 2.0, \"Parcel\" = 1.0, \"parcel\" = 2.0 }",
    );
    let d = diags(&text);
    assert_eq!(
        d,
        [
            "21:1: warning: category logistics lists keyword \"parcel\" twice (keywords are compared lower-cased)"
        ]
    );
}

#[test]
fn resolution_targets_are_required() {
    let d = diags(&MINI.replace("[sla.resolution]", "[sla.dispatch]"));
    assert_eq!(
        d,
        [
            "83:2: error: [sla] has no `resolution` table: a resolution target is required for every grade × urgency"
        ]
    );
    let d = diags(&MINI.replace(
        "[sla.resolution]",
        "[sla.resolution]\n7 = { normal = \"1d\" }",
    ));
    assert_eq!(
        d,
        ["84:5: error: sla.resolution: row \"7\" must be a grade 1–4 or `default`"]
    );
    // Other steps only warn about gaps.
    let d = diags(&MINI.replace(
        "[sla.resolution]",
        "[sla.dispatch]\n1 = { urgent = \"1h\", expedited = \"2h\", normal = \"24h\" }\n\n[sla.resolution]",
    ));
    assert_eq!(d.len(), 1);
    assert!(
        d[0].starts_with("83:1: warning: sla.dispatch: no target for 2 × normal, 2 × expedited"),
        "{d:?}"
    );
}

#[test]
fn escalation_triggers_and_notify_rules_load() {
    let extra = r#"
[[escalation]]
level = "reminder"
role = "handler"
after = "50%"

[[escalation]]
level = "leadership"
role = "leadership"
after = { "一般" = "100% + 5wd", "加急" = "100% + 24h", "紧急" = "100% + 2h" }
needs_ack = true
ack_within = "30m"

[[notify]]
event = "alert.*"
min_grade = 2
roles = ["leadership"]
channels = ["sms"]
within = "30m"
"#;
    let (p, w) = Policy::from_toml(&format!("{MINI}{extra}"), "p.toml").unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(p.escalation[0].after(Urgency::Urgent), Trigger::Percent(50));
    assert_eq!(
        p.escalation[1].after(Urgency::Expedited),
        Trigger::PercentPlus(
            100,
            Duration {
                amount: 24,
                unit: Unit::Hours
            }
        )
    );
    let n = &p.notify[0];
    assert!(n.applies("alert.hot", Grade::HOT, None));
    assert!(n.applies("alert.major", Grade::MAJOR, Some("quality")));
    assert!(
        !n.applies("alert.hot", Grade::IMPORTANT, None),
        "grade 3 is below min_grade 2"
    );
    assert!(!n.applies("complaint.graded", Grade::MAJOR, None));
}

// ---------------------------------------------------------------------------
// Files and `check`

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tousu-schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_reports_file_line_and_column() {
    let path = temp_file("broken.toml", BROKEN);
    let report = check::check(&path);
    assert!(!report.is_ok());
    assert_eq!((report.errors(), report.warnings()), (11, 3));
    let text = report.to_string();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:7:1: error: category a: unknown department \"nowhere\" (known: service)",
            path.display()
        )
    );
    assert!(text.ends_with("11 error(s), 3 warning(s)"), "{text}");

    let path = temp_file("mini.toml", MINI);
    let report = check::check(&path);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.diagnostics.len(), 0);
    assert!(
        report
            .summary
            .as_deref()
            .unwrap()
            .contains("policy \"mini\" version sha256:")
    );
}

#[test]
fn unreadable_and_non_utf8_files_are_diagnosed() {
    let missing = std::env::temp_dir().join("tousu-no-such-policy.toml");
    let d = Policy::load(&missing).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(d[0].message.starts_with("cannot read the file"), "{}", d[0]);
    let path = temp_file("latin1.toml", "");
    std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
    let d = Policy::load(&path).unwrap_err();
    assert!(
        d[0].message.starts_with("the file is not UTF-8"),
        "{}",
        d[0]
    );
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "",
        "\u{0}",
        "[[[",
        "name = 1",
        "triage_department = [\"a\"]",
        "[sla]\nresolution = 3",
        "[departments]\n\"a.b\" = { name = \"x\" }",
        "[[grading]]\nid = \"x\"\nwhen = \"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1\"",
    ];
    for s in samples {
        let text = format!("{s}\n");
        let _ = Policy::from_toml(&text, "x.toml");
        let _ = Policy::from_toml(&format!("{MINI}\n{s}"), "x.toml");
    }
    // Conditions too long or too deep are refused, not overflowing a stack.
    for when in [
        format!("{}true{}", "(".repeat(5000), ")".repeat(5000)),
        format!("{}true{}", "(".repeat(2000), ")".repeat(2000)),
        vec!["1"; 1000].join(" + ") + " > 0",
        "[".repeat(1500) + &"]".repeat(1500) + " == []",
    ] {
        let text = MINI.replace("when = \"group_size >= 3\"", &format!("when = \"{when}\""));
        let d = diags(&text);
        assert!(
            d.iter().any(|x| x.starts_with("47:")
                && x.contains("error: rule group-hot: `when`:")
                && (x.contains("too complex") || x.contains("Recursion limit"))),
            "{}: {d:?}",
            &when[..40]
        );
    }
    // Long chains of `||` are balanced by the parser: accepted, and they
    // evaluate on an ordinary thread.
    let chain = vec!["group_size > 1"; 200].join(" || ");
    let c = tousu_policy::cel::Condition::compile(&chain).unwrap();
    assert_eq!(c.eval(&Facts::default()), Ok(false));
    // Deeply nested TOML.
    let text = format!("{MINI}\nx = {}{}\n", "[".repeat(3000), "]".repeat(3000));
    assert!(!diags(&text).is_empty());
}

// ---------------------------------------------------------------------------
// Profiles

#[test]
fn every_profile_loads_clean() {
    let dir = profile_support::policies_dir();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.starts_with("taxonomy-") {
            continue;
        }
        let stem = name.trim_end_matches(".toml");
        let (policy, warnings) = Policy::load(&path).unwrap_or_else(|d| {
            panic!(
                "{name}:\n{}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        if stem == "default" && !profile_support::has_taxonomy(&text) {
            // The default taxonomy is merged in later; until then only its
            // absence is reported.
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].message.starts_with("no [[taxonomy]]"));
        } else {
            assert!(warnings.is_empty(), "{name}: {warnings:#?}");
        }
        assert_eq!(policy.name, stem);
        // The profile, taxonomy included, also loads without errors.
        profile_support::profile(stem);
        seen.push(stem.to_owned());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["bank", "default", "hospital", "hotline-12345", "property"]
    );
}

#[test]
fn every_profile_has_complete_resolution_targets_and_a_ladder() {
    for name in ["default", "property", "bank", "hospital", "hotline-12345"] {
        let p = profile_support::profile(name);
        for g in 1..=4u8 {
            for u in Urgency::ALL {
                let grade = Grade::try_from(g).unwrap();
                assert!(
                    p.sla_target(Step::Resolution, grade, u, None).is_some(),
                    "{name} {g} {u}"
                );
                assert!(
                    p.sla_target(Step::Dispatch, grade, u, None).is_some(),
                    "{name} {g} {u}"
                );
            }
        }
        assert!(!p.taxonomy.is_empty(), "{name}");
        assert!(p.taxonomy.iter().any(|c| c.code == "other"), "{name}");
        assert!(p.escalation.len() >= 3, "{name}");
        assert!(p.notify.iter().any(|n| n.event == "alert.major"), "{name}");
        assert!(
            !p.rosters.on_duty("duty_leader", 3, 10 * 60).is_empty(),
            "{name}"
        );
        assert!(
            !p.rosters.on_duty("duty_leader", 7, 3 * 60).is_empty(),
            "{name}: nights"
        );
    }
}

/// The calendar the SLA deadlines are counted on is part of the version:
/// new holiday data published for a year makes a new version (which sla
/// takes as the signal to recompute its open clocks).
#[test]
fn the_version_covers_the_calendar_data() {
    let dir = std::env::temp_dir().join(format!(
        "tousu-policy-calendar-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let cal = dir.join("calendars/t");
    std::fs::create_dir_all(&cal).unwrap();
    std::fs::write(
        cal.join("calendar.toml"),
        "name = \"t\"\ntime_zone = \"Asia/Shanghai\"\n[hours]\nmon = [\"09:00-17:00\"]\n",
    )
    .unwrap();
    std::fs::write(cal.join("2026.toml"), "source = \"test\"\nholidays = []\n").unwrap();
    let text = format!("calendar = \"t\"\n{MINI}");
    let version = || match Policy::from_toml_in_dir(&text, "p.toml", &dir) {
        Ok((p, _)) => p.version,
        Err(d) => panic!("{d:#?}"),
    };
    let first = version();
    assert_eq!(first, version(), "same files, same version");
    std::fs::write(
        cal.join("2026.toml"),
        "source = \"test\"\nholidays = [{ date = \"2026-10-01\", name = \"国庆节\" }]\n",
    )
    .unwrap();
    let second = version();
    assert_ne!(first, second, "new holiday data is a new version");
    std::fs::write(cal.join("2027.toml"), "source = \"test\"\nholidays = []\n").unwrap();
    assert_ne!(second, version(), "a new year is a new version");
    std::fs::remove_dir_all(&dir).unwrap();
}
