//! Shared by the profile scenario tests: load a profile from `policies/`,
//! build facts, grade and route as the routing service will.

#![allow(dead_code)]

use std::path::PathBuf;

use tousu_policy::cel::Facts;
use tousu_policy::schema::{Grading, Policy, Routing};

/// `policies/` of the repository.
pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// The text of a profile.
pub fn profile_text(name: &str) -> String {
    let dir = policies_dir();
    std::fs::read_to_string(dir.join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("reading policies/{name}.toml: {e}"))
}

/// Whether a policy text has `[[taxonomy]]` tables (not just mentions).
pub fn has_taxonomy(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("[[taxonomy]]"))
}

/// A profile, loaded without errors (its warnings are checked elsewhere).
pub fn profile(name: &str) -> Policy {
    match Policy::from_toml(&profile_text(name), &format!("{name}.toml")) {
        Ok((policy, _)) => policy,
        Err(diagnostics) => {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            panic!("{name} does not load:\n{}", lines.join("\n"))
        }
    }
}

/// Facts of a complaint already classified into `category` with good
/// confidence.
pub fn facts(description: &str, category: &str) -> Facts {
    let mut f = Facts::new("", description);
    f.category = category.to_owned();
    f.confidence = 0.9;
    f.language = "zh".into();
    f
}

/// Grades, applies the grading to the facts, routes — and checks that the
/// one-scan `Policy::decide` agrees with the two steps.
pub fn decide(policy: &Policy, facts: &mut Facts) -> (Grading, Routing) {
    let mut copy = facts.clone();
    let grading = policy.grade(facts);
    grading.apply(facts);
    let routing = policy.route(facts);
    let (g2, r2) = policy.decide(&mut copy);
    assert_eq!((&grading, &routing), (&g2, &r2));
    assert_eq!(&copy, facts);
    (grading, routing)
}

/// The rule ids of hits.
pub fn rules(hits: &[tousu_policy::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.rule.as_str()).collect()
}
