//! The policy model: business rules as data (`policies/*.toml`).
//!
//! This is the first, minimal form of the policy: departments, keyword
//! rules for category and department, keyword rules for grade and urgency,
//! and the resolution target per grade × urgency (24×7 hours). Decisions
//! record the rules that fired and the policy version (a content hash), so
//! every decision can be explained.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{DeptCode, Grade, Urgency};

/// A problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    default_department: String,
    default_category: String,
    #[serde(default)]
    departments: BTreeMap<String, RawDepartment>,
    #[serde(default)]
    routing: Vec<RawRoutingRule>,
    #[serde(default)]
    grading: Vec<RawGradingRule>,
    sla: RawSla,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutingRule {
    id: String,
    keywords: Vec<String>,
    category: String,
    department: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGradingRule {
    id: String,
    keywords: Vec<String>,
    #[serde(default)]
    grade: Option<u8>,
    #[serde(default)]
    urgency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    /// `resolution_hours."<grade>"."<urgency>" = hours`
    resolution_hours: BTreeMap<String, BTreeMap<String, u32>>,
}

/// A department of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub code: DeptCode,
    pub name: String,
}

/// A keyword rule that picks category and department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    pub id: String,
    pub keywords: Vec<String>,
    pub category: String,
    pub department: DeptCode,
}

/// A keyword rule that raises grade and/or urgency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradingRule {
    pub id: String,
    pub keywords: Vec<String>,
    pub grade: Option<Grade>,
    pub urgency: Option<Urgency>,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// `sha256:` + hex of the file's bytes.
    pub version: String,
    pub departments: Vec<Department>,
    pub default_department: DeptCode,
    pub default_category: String,
    pub routing: Vec<RoutingRule>,
    pub grading: Vec<GradingRule>,
    resolution_hours: BTreeMap<(Grade, Urgency), u32>,
}

/// One rule that fired, for explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: String,
    pub reason: String,
}

/// What the policy decided for one complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub category: String,
    pub department: DeptCode,
    pub grade: Grade,
    pub urgency: Urgency,
    pub matched_terms: Vec<String>,
    pub hits: Vec<Hit>,
}

impl Policy {
    /// Parses and validates a policy from its TOML text.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        let version = format!("sha256:{:x}", Sha256::digest(text.as_bytes()));

        let dept = |code: &str, ctx: &str| -> Result<DeptCode, PolicyError> {
            let code: DeptCode = code
                .parse()
                .map_err(|e| PolicyError(format!("{ctx}: {e}")))?;
            if raw.departments.contains_key(code.as_str()) {
                Ok(code)
            } else {
                Err(PolicyError(format!(
                    "{ctx}: unknown department {:?} (not in [departments])",
                    code.as_str()
                )))
            }
        };

        let departments = raw
            .departments
            .iter()
            .map(|(code, d)| {
                Ok(Department {
                    code: code
                        .parse()
                        .map_err(|e| PolicyError(format!("[departments.{code}]: {e}")))?,
                    name: d.name.clone(),
                })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let default_department = dept(&raw.default_department, "default_department")?;

        let mut seen = std::collections::BTreeSet::new();
        let mut check_id = |id: &str| -> Result<(), PolicyError> {
            if seen.insert(id.to_owned()) {
                Ok(())
            } else {
                Err(PolicyError(format!("rule id {id:?} is used twice")))
            }
        };
        let no_empty = |kw: &[String], ctx: &str| -> Result<Vec<String>, PolicyError> {
            if kw.is_empty() || kw.iter().any(|k| k.trim().is_empty()) {
                return Err(PolicyError(format!("{ctx}: keywords must be non-empty")));
            }
            Ok(kw.iter().map(|k| k.trim().to_lowercase()).collect())
        };

        let mut routing = Vec::new();
        for r in &raw.routing {
            check_id(&r.id)?;
            let ctx = format!("routing rule {:?}", r.id);
            routing.push(RoutingRule {
                id: r.id.clone(),
                keywords: no_empty(&r.keywords, &ctx)?,
                category: r.category.clone(),
                department: dept(&r.department, &ctx)?,
            });
        }
        let mut grading = Vec::new();
        for r in &raw.grading {
            check_id(&r.id)?;
            let ctx = format!("grading rule {:?}", r.id);
            let grade = r
                .grade
                .map(Grade::try_from)
                .transpose()
                .map_err(|e| PolicyError(format!("{ctx}: {e}")))?;
            let urgency = r
                .urgency
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| PolicyError(format!("{ctx}: {e}")))?;
            if grade.is_none() && urgency.is_none() {
                return Err(PolicyError(format!(
                    "{ctx}: sets neither grade nor urgency"
                )));
            }
            grading.push(GradingRule {
                id: r.id.clone(),
                keywords: no_empty(&r.keywords, &ctx)?,
                grade,
                urgency,
            });
        }

        let mut resolution_hours = BTreeMap::new();
        for (grade, row) in &raw.sla.resolution_hours {
            let ctx = format!("sla.resolution_hours.{grade}");
            let g: Grade = grade
                .parse::<u8>()
                .map_err(|_| PolicyError(format!("{ctx}: grade must be 1–4")))
                .and_then(|n| Grade::try_from(n).map_err(|e| PolicyError(format!("{ctx}: {e}"))))?;
            for (urgency, hours) in row {
                let u: Urgency = urgency
                    .parse()
                    .map_err(|e| PolicyError(format!("{ctx}.{urgency}: {e}")))?;
                if *hours == 0 {
                    return Err(PolicyError(format!("{ctx}.{urgency}: must be > 0 hours")));
                }
                resolution_hours.insert((g, u), *hours);
            }
        }
        for g in 1..=4u8 {
            for u in Urgency::ALL {
                let g = Grade::try_from(g).expect("1..=4");
                if !resolution_hours.contains_key(&(g, u)) {
                    return Err(PolicyError(format!(
                        "sla.resolution_hours: no target for grade {g} × {u}"
                    )));
                }
            }
        }

        Ok(Policy {
            name: raw.name,
            version,
            departments,
            default_department,
            default_category: raw.default_category,
            routing,
            grading,
            resolution_hours,
        })
    }

    /// Resolution target in hours (24×7) for a grade and urgency.
    pub fn resolution_hours(&self, grade: Grade, urgency: Urgency) -> u32 {
        self.resolution_hours[&(grade, urgency)]
    }

    /// Classifies, grades and routes a complaint from its text. The first
    /// matching routing rule picks category and department (the default
    /// department otherwise); every matching grading rule may raise the
    /// grade (toward 1) and the urgency.
    pub fn decide(&self, text: &str) -> Decision {
        let text = text.to_lowercase();
        let mut hits = Vec::new();
        let mut matched_terms = Vec::new();

        let routed = self.routing.iter().find_map(|r| {
            r.keywords
                .iter()
                .find(|k| text.contains(k.as_str()))
                .map(|k| (r, k))
        });
        let (category, department) = match routed {
            Some((rule, kw)) => {
                matched_terms.push(kw.clone());
                hits.push(Hit {
                    rule: rule.id.clone(),
                    reason: format!(
                        "keyword {kw:?} → category {}, department {}",
                        rule.category, rule.department
                    ),
                });
                (rule.category.clone(), rule.department.clone())
            }
            None => {
                hits.push(Hit {
                    rule: "default".into(),
                    reason: format!(
                        "no routing rule matched → category {}, department {}",
                        self.default_category, self.default_department
                    ),
                });
                (
                    self.default_category.clone(),
                    self.default_department.clone(),
                )
            }
        };

        let mut grade = Grade::GENERAL;
        let mut urgency = Urgency::Normal;
        for rule in &self.grading {
            if let Some(kw) = rule.keywords.iter().find(|k| text.contains(k.as_str())) {
                matched_terms.push(kw.clone());
                let mut effects = Vec::new();
                if let Some(g) = rule.grade {
                    grade = grade.min(g);
                    effects.push(format!("grade {g}"));
                }
                if let Some(u) = rule.urgency {
                    urgency = urgency.max(u);
                    effects.push(format!("urgency {u}"));
                }
                hits.push(Hit {
                    rule: rule.id.clone(),
                    reason: format!("keyword {kw:?} → {}", effects.join(", ")),
                });
            }
        }

        Decision {
            category,
            department,
            grade,
            urgency,
            matched_terms,
            hits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
name = "test"
default_department = "service"
default_category = "other"

[departments.service]
name = "客服中心"
[departments.quality]
name = "质量部"
[departments.logistics]
name = "物流部"

[[routing]]
id = "quality"
keywords = ["质量", "defect", "爆炸"]
category = "product_quality"
department = "quality"

[[routing]]
id = "delivery"
keywords = ["快递", "delivery"]
category = "logistics"
department = "logistics"

[[grading]]
id = "safety"
keywords = ["爆炸", "fire", "受伤"]
grade = 1
urgency = "urgent"

[[grading]]
id = "lawyer"
keywords = ["律师", "lawyer"]
grade = 2

[sla.resolution_hours]
1 = { urgent = 24, expedited = 72, normal = 360 }
2 = { urgent = 24, expedited = 72, normal = 240 }
3 = { urgent = 24, expedited = 72, normal = 120 }
4 = { urgent = 24, expedited = 72, normal = 120 }
"#;

    fn policy() -> Policy {
        Policy::from_toml(POLICY).unwrap()
    }

    #[test]
    fn keyword_routes_and_default_catches_the_rest() {
        let p = policy();
        let d = p.decide("快递三天还没到");
        assert_eq!(d.department.as_str(), "logistics");
        assert_eq!(d.category, "logistics");
        assert_eq!(d.grade, Grade::GENERAL);
        assert_eq!(d.urgency, Urgency::Normal);
        assert_eq!(d.hits[0].rule, "delivery");

        let d = p.decide("The staff was rude");
        assert_eq!(d.department.as_str(), "service");
        assert_eq!(d.category, "other");
        assert_eq!(d.hits[0].rule, "default");
    }

    #[test]
    fn grading_takes_the_most_serious_match() {
        let p = policy();
        let d = p.decide("电池爆炸，我已经找了律师");
        assert_eq!(d.department.as_str(), "quality");
        assert_eq!(d.grade, Grade::MAJOR);
        assert_eq!(d.urgency, Urgency::Urgent);
        let rules: Vec<_> = d.hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(rules, ["quality", "safety", "lawyer"]);
        assert_eq!(p.resolution_hours(d.grade, d.urgency), 24);

        let d = p.decide("I will call my LAWYER about the delivery");
        assert_eq!(d.grade, Grade::HOT);
        assert_eq!(d.urgency, Urgency::Normal);
        assert_eq!(p.resolution_hours(Grade::GENERAL, Urgency::Normal), 120);
    }

    #[test]
    fn version_is_a_content_hash() {
        let a = policy();
        let b = Policy::from_toml(&format!("{POLICY}\n# comment\n")).unwrap();
        assert!(a.version.starts_with("sha256:"));
        assert_eq!(a.version, policy().version);
        assert_ne!(a.version, b.version);
    }

    #[test]
    fn invalid_policies_are_refused_with_the_reason() {
        let cases = [
            (
                POLICY.replace("department = \"quality\"", "department = \"nope\""),
                "unknown department",
            ),
            (
                POLICY.replace(
                    "default_department = \"service\"",
                    "default_department = \"a.b\"",
                ),
                "department code",
            ),
            (POLICY.replace("grade = 2", "grade = 5"), "between 1 and 4"),
            (
                POLICY.replace("id = \"lawyer\"", "id = \"safety\""),
                "used twice",
            ),
            (
                POLICY.replace("4 = { urgent = 24, expedited = 72, normal = 120 }", ""),
                "grade 4",
            ),
            (
                POLICY.replace("name = \"test\"", "name = \"test\"\ncolour = 1"),
                "unknown field",
            ),
            (POLICY.replace("[\"律师\", \"lawyer\"]", "[]"), "keywords"),
            (
                POLICY.replace("urgency = \"urgent\"", "urgency = \"now\""),
                "urgency",
            ),
        ];
        for (text, expect) in cases {
            let err = Policy::from_toml(&text).unwrap_err();
            assert!(err.0.contains(expect), "{err} should mention {expect}");
        }
    }
}
