//! `tousu policy check`: every problem of a policy file, each as
//! `file:line:col: error|warning: message`.
//!
//! Errors come from [`Policy::load`] (TOML syntax, unknown keys, bad
//! values, unknown references, conditions that don't compile or name
//! unknown fields, incomplete resolution targets). The lints here add the
//! warnings a valid file can still deserve: routing rules that can never
//! decide (after a rule that matches everything, or identical to an
//! earlier one), grading rules that match everything or duplicate another,
//! categories that share a keyword with the same weight (the classifier
//! cannot tell them apart on it), escalation levels out of order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::schema::{Diagnostic, Match, Policy, Pos, Severity, Trigger};

/// The outcome of checking one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every diagnostic, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// A one-line summary of the policy when it loaded.
    pub summary: Option<String>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// Whether the file is usable (no error; warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        if let Some(s) = &self.summary {
            writeln!(f, "{s}")?;
        }
        write!(
            f,
            "{} error(s), {} warning(s)",
            self.errors(),
            self.warnings()
        )
    }
}

/// Checks a policy file.
pub fn check(path: &Path) -> Report {
    match Policy::load(path) {
        Ok((policy, diagnostics)) => Report {
            diagnostics,
            summary: Some(format!(
                "OK {}: policy {:?} version {} ({} departments, {} categories, {} grading rules, {} routing rules)",
                path.display(),
                policy.name,
                policy.version,
                policy.departments.len(),
                policy.taxonomy.len(),
                policy.grading.len(),
                policy.routing.len(),
            )),
        },
        Err(diagnostics) => Report {
            diagnostics,
            summary: None,
        },
    }
}

fn warning(file: &str, pos: Pos, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        severity: Severity::Warning,
        message,
    }
}

/// A comparable form of what a rule matches: sorted keywords, sorted
/// categories, the condition with white space squeezed.
type MatchKey = (Vec<String>, Vec<String>, String);

fn match_key(m: &Match) -> MatchKey {
    let mut k = m.keywords.clone();
    k.sort();
    let mut c = m.categories.clone();
    c.sort();
    let w = m
        .when
        .as_ref()
        .map(|w| w.source().split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    (k, c, w)
}

/// The warnings of a policy that loaded.
pub(crate) fn lint(policy: &Policy, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();

    // Routing: unreachable and overlapping rules.
    let mut catch_all: Option<(&str, Pos)> = None;
    let mut seen: BTreeMap<MatchKey, (&str, Pos, bool)> = BTreeMap::new();
    for rule in &policy.routing {
        if let Some((id, pos)) = catch_all {
            out.push(warning(
                file,
                rule.pos,
                format!(
                    "routing rule {} is unreachable: rule {id} (line {}) before it matches every complaint and decides",
                    rule.id, pos.line
                ),
            ));
            continue;
        }
        let key = match_key(&rule.matches);
        let decides = rule.department.is_some();
        if let Some((id, pos, earlier_decides)) = seen.get(&key) {
            let what = if *earlier_decides {
                "it can never decide"
            } else {
                "merge them"
            };
            out.push(warning(
                file,
                rule.pos,
                format!(
                    "routing rule {} overlaps rule {id} (line {}): same keywords, categories and condition; {what}",
                    rule.id, pos.line
                ),
            ));
        } else {
            seen.insert(key, (&rule.id, rule.pos, decides));
        }
        if decides && rule.matches.is_always() {
            catch_all = Some((&rule.id, rule.pos));
        }
    }

    // Grading: catch-alls and duplicates.
    let mut seen: BTreeMap<MatchKey, (&str, Pos)> = BTreeMap::new();
    for rule in &policy.grading {
        if rule.matches.is_always() {
            out.push(warning(
                file,
                rule.pos,
                format!(
                    "grading rule {} matches every complaint (no keywords, categories or condition)",
                    rule.id
                ),
            ));
        }
        let key = match_key(&rule.matches);
        if let Some((id, pos)) = seen.get(&key) {
            out.push(warning(
                file,
                rule.pos,
                format!(
                    "grading rule {} overlaps rule {id} (line {}): same keywords, categories and condition; merge them",
                    rule.id, pos.line
                ),
            ));
        } else {
            seen.insert(key, (&rule.id, rule.pos));
        }
    }

    // Taxonomy: a term two categories weigh the same.
    let mut terms: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, cat) in policy.taxonomy.iter().enumerate() {
        for (term, weight) in &cat.keywords {
            let term = term.trim().to_lowercase();
            let earlier = terms.entry(term.clone()).or_default();
            let pos = policy.taxonomy_pos.get(i).copied().unwrap_or_default();
            if earlier.iter().any(|(j, _)| *j == i) {
                out.push(warning(
                    file,
                    pos,
                    format!(
                        "category {} lists keyword {term:?} twice (keywords are compared lower-cased)",
                        cat.code
                    ),
                ));
                continue;
            }
            if let Some((j, _)) = earlier.iter().find(|(_, w)| (w - weight).abs() < 1e-9) {
                let other = &policy.taxonomy[*j];
                out.push(warning(
                    file,
                    pos,
                    format!(
                        "categories {} and {} share keyword {term:?} with the same weight {weight}: it cannot tell them apart",
                        other.code, cat.code
                    ),
                ));
            }
            earlier.push((i, *weight));
        }
    }

    // Escalation: percentages should rise along the ladder.
    let mut last: Option<(u32, &str)> = None;
    for level in &policy.escalation {
        let share = match level.after(tousu_domain::Urgency::Normal) {
            Trigger::Percent(p) => Some(p),
            Trigger::PercentPlus(p, _) => Some(p),
            Trigger::After(_) => None,
        };
        if let Some(p) = share {
            if let Some((q, name)) = last
                && p < q
            {
                out.push(warning(
                    file,
                    level.pos,
                    format!(
                        "escalation level {} fires at {p}%, before the earlier level {name} ({q}%)",
                        level.level
                    ),
                ));
            }
            last = Some((p, &level.level));
        }
    }
    out
}
