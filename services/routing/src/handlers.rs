//! Handler selection: which person of the department gets an assignment.
//!
//! The department's `handlers` and `strategy` (a deciding routing rule may
//! override the strategy and ask for skills) decide:
//!
//! - **round robin**: each handler in turn, by a per-department cursor in
//!   `handler_cursors`, advanced in the transaction that records the
//!   assignment;
//! - **least open**: the handler with the fewest open assignments (ties go
//!   to the one listed first);
//! - **skills**: the handlers whose skills cover the skills the routing
//!   asks for — or, when it asks for none, the complaint's category — then
//!   the least open among them. When nobody has them, every handler of the
//!   department is a candidate (the reason says so).
//!
//! Open assignments are the rows of `assignments` with `open`: an
//! assignment opens when routing assigns a complaint, moves with a
//! reassignment, follows the handler a department names when it signs for
//! it, and closes on `resolved`, `closed`, `withdrawn`, `rejected` and
//! `merged` (`reopened` opens it again).
//!
//! [`plan`] and [`choose`] are pure; [`pick`] reads and advances the state
//! in Postgres. Every pick first locks the department's cursor row, so two
//! routing replicas picking for the same department take turns and never
//! both give "the next" handler, or "the least loaded", to two complaints.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use tousu_policy::schema::{Department, Strategy};
use uuid::Uuid;

/// Whom a strategy chooses among, before the state decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub strategy: Strategy,
    /// The handlers the strategy chooses among, in policy order.
    pub candidates: Vec<String>,
    /// The skills asked of the handler (skills strategy only).
    pub required: Vec<String>,
    /// How the handler is chosen, in words.
    pub note: String,
}

/// The handler picked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub handler: String,
    pub reason: String,
}

/// Whom `strategy` chooses among in `dept`, for a routing that asks for
/// `skills`, of a complaint of `category`. `None` when the department has
/// no handlers.
pub fn plan(
    dept: &Department,
    strategy: Strategy,
    skills: &[String],
    category: &str,
) -> Option<Plan> {
    if dept.handlers.is_empty() {
        return None;
    }
    let all = dept.handlers.clone();
    let listed = all.join(", ");
    Some(match strategy {
        Strategy::RoundRobin => Plan {
            strategy,
            note: format!("round_robin: the next in turn of {listed}"),
            candidates: all,
            required: Vec::new(),
        },
        Strategy::LeastOpen => Plan {
            strategy,
            note: format!("least_open: whoever of {listed} has the fewest open cases"),
            candidates: all,
            required: Vec::new(),
        },
        Strategy::Skills => {
            let has =
                |h: &str, s: &str| dept.skills.get(h).is_some_and(|k| k.iter().any(|x| x == s));
            let required: Vec<String> = if !skills.is_empty() {
                skills.to_vec()
            } else if !category.is_empty() && all.iter().any(|h| has(h, category)) {
                vec![category.to_owned()]
            } else {
                Vec::new()
            };
            let covering: Vec<String> = all
                .iter()
                .filter(|h| required.iter().all(|s| has(h, s)))
                .cloned()
                .collect();
            let wanted = required.join(", ");
            let (candidates, note) = if required.is_empty() {
                (
                    all,
                    format!(
                        "skills: no skill asked; whoever of {listed} has the fewest open cases"
                    ),
                )
            } else if covering.is_empty() {
                (
                    all,
                    format!(
                        "skills: nobody has {wanted}; whoever of {listed} has the fewest open cases"
                    ),
                )
            } else {
                let names = covering.join(", ");
                (
                    covering,
                    format!("skills {wanted}: whoever of {names} has the fewest open cases"),
                )
            };
            Plan {
                strategy,
                candidates,
                required,
                note,
            }
        }
    })
}

/// Picks from `plan`: round robin takes the candidate at `cursor` (the
/// department's turn counter); the others the candidate with the fewest
/// `open` assignments, the first listed on a tie. `None` without
/// candidates.
pub fn choose(plan: &Plan, cursor: u64, open: &BTreeMap<String, i64>) -> Option<Choice> {
    let n = plan.candidates.len();
    if n == 0 {
        return None;
    }
    let count = |h: &str| open.get(h).copied().unwrap_or(0);
    match plan.strategy {
        Strategy::RoundRobin => {
            let i = (cursor % n as u64) as usize;
            let handler = plan.candidates[i].clone();
            Some(Choice {
                reason: format!(
                    "round_robin: turn {} of {} → {handler}",
                    cursor + 1,
                    plan.candidates.join(", ")
                ),
                handler,
            })
        }
        Strategy::LeastOpen | Strategy::Skills => {
            let handler = plan
                .candidates
                .iter()
                .enumerate()
                .min_by_key(|(i, h)| (count(h), *i))
                .map(|(_, h)| h.clone())?;
            let counts: Vec<String> = plan
                .candidates
                .iter()
                .map(|h| format!("{h} {}", count(h)))
                .collect();
            let lead = if plan.strategy == Strategy::Skills && !plan.required.is_empty() {
                format!("skills {}", plan.required.join(", "))
            } else {
                plan.strategy.to_string()
            };
            Some(Choice {
                reason: format!(
                    "{lead}: fewest open cases ({}) → {handler}",
                    counts.join(", ")
                ),
                handler,
            })
        }
    }
}

/// Picks the handler of an assignment of `complaint` to `dept` and
/// advances the department's state, in the caller's transaction: the
/// cursor row is locked until it commits. `complaint`'s own assignment is
/// not counted (it is the one being made). `None` when the department has
/// no handlers.
pub async fn pick(
    conn: &mut PgConnection,
    dept: &Department,
    strategy: Strategy,
    skills: &[String],
    category: &str,
    complaint: Uuid,
) -> Result<Option<Choice>, sqlx::Error> {
    let Some(plan) = plan(dept, strategy, skills, category) else {
        return Ok(None);
    };
    let step = i64::from(strategy == Strategy::RoundRobin);
    // Locks the department's row whatever the strategy; round robin also
    // takes a turn.
    let (cursor,): (i64,) = sqlx::query_as(
        "INSERT INTO handler_cursors (department, next) VALUES ($1, $2)
         ON CONFLICT (department) DO UPDATE SET next = handler_cursors.next + $2
         RETURNING next - $2",
    )
    .bind(dept.code.as_str())
    .bind(step)
    .fetch_one(&mut *conn)
    .await?;
    let open = if strategy == Strategy::RoundRobin {
        BTreeMap::new()
    } else {
        open_counts(conn, dept.code.as_str(), complaint).await?
    };
    Ok(choose(&plan, cursor.max(0) as u64, &open))
}

/// Open assignments per handler of `department`, but `except`'s.
pub async fn open_counts(
    conn: &mut PgConnection,
    department: &str,
    except: Uuid,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT handler, count(*) FROM assignments
          WHERE open AND department = $1 AND handler IS NOT NULL AND complaint_id <> $2
          GROUP BY handler",
    )
    .bind(department)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept(handlers: &[&str], strategy: Strategy, skills: &[(&str, &[&str])]) -> Department {
        Department {
            code: "service".parse().unwrap(),
            name: "客户服务中心".into(),
            description: String::new(),
            head: Some("chen.jing".into()),
            handlers: handlers.iter().map(|h| (*h).to_owned()).collect(),
            strategy,
            skills: skills
                .iter()
                .map(|(h, s)| ((*h).to_owned(), s.iter().map(|x| (*x).to_owned()).collect()))
                .collect(),
            return_window_hours: 24,
        }
    }

    fn counts(c: &[(&str, i64)]) -> BTreeMap<String, i64> {
        c.iter().map(|(h, n)| ((*h).to_owned(), *n)).collect()
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn round_robin_takes_each_handler_in_turn_and_wraps() {
        let d = dept(
            &["xu.fang", "lin.tao", "guo.qiang"],
            Strategy::RoundRobin,
            &[],
        );
        let p = plan(&d, Strategy::RoundRobin, &[], "logistics").unwrap();
        let picked: Vec<String> = (0..7)
            .map(|cursor| choose(&p, cursor, &BTreeMap::new()).unwrap().handler)
            .collect();
        assert_eq!(
            picked,
            strings(&[
                "xu.fang",
                "lin.tao",
                "guo.qiang",
                "xu.fang",
                "lin.tao",
                "guo.qiang",
                "xu.fang"
            ])
        );
        // Open cases don't matter to round robin.
        let c = choose(&p, 1, &counts(&[("lin.tao", 40)])).unwrap();
        assert_eq!(c.handler, "lin.tao");
        assert_eq!(
            c.reason,
            "round_robin: turn 2 of xu.fang, lin.tao, guo.qiang → lin.tao"
        );
    }

    #[test]
    fn least_open_picks_the_fewest_open_cases_and_the_first_listed_on_a_tie() {
        let d = dept(&["ma.li", "he.jun"], Strategy::LeastOpen, &[]);
        let p = plan(&d, Strategy::LeastOpen, &[], "product_quality").unwrap();
        // Nobody has anything: the first listed.
        assert_eq!(choose(&p, 0, &BTreeMap::new()).unwrap().handler, "ma.li");
        // ma.li has more open cases: he.jun.
        let c = choose(&p, 0, &counts(&[("ma.li", 3), ("he.jun", 1)])).unwrap();
        assert_eq!(c.handler, "he.jun");
        assert_eq!(
            c.reason,
            "least_open: fewest open cases (ma.li 3, he.jun 1) → he.jun"
        );
        // A tie goes to the first listed, whatever the cursor.
        let c = choose(&p, 5, &counts(&[("ma.li", 2), ("he.jun", 2)])).unwrap();
        assert_eq!(c.handler, "ma.li");
        // Someone who is no longer a handler (a policy change) is ignored.
        let c = choose(&p, 0, &counts(&[("ma.li", 1), ("old.hand", 0)])).unwrap();
        assert_eq!(c.handler, "he.jun");
    }

    #[test]
    fn skills_keeps_the_handlers_who_have_every_skill_asked_then_least_open() {
        let d = dept(
            &["liu.yang", "zhou.min", "wu.lei"],
            Strategy::Skills,
            &[
                ("liu.yang", &["english", "vip"]),
                ("zhou.min", &["refund"]),
                ("wu.lei", &["refund", "english"]),
            ],
        );
        // English asked: liu.yang and wu.lei.
        let p = plan(&d, Strategy::Skills, &strings(&["english"]), "other").unwrap();
        assert_eq!(p.candidates, strings(&["liu.yang", "wu.lei"]));
        assert_eq!(p.required, strings(&["english"]));
        assert_eq!(choose(&p, 0, &BTreeMap::new()).unwrap().handler, "liu.yang");
        let c = choose(
            &p,
            0,
            &counts(&[("liu.yang", 2), ("wu.lei", 1), ("zhou.min", 0)]),
        )
        .unwrap();
        // zhou.min has the fewest but does not speak English.
        assert_eq!(c.handler, "wu.lei");
        assert_eq!(
            c.reason,
            "skills english: fewest open cases (liu.yang 2, wu.lei 1) → wu.lei"
        );
        // Two skills: only wu.lei has both.
        let p = plan(
            &d,
            Strategy::Skills,
            &strings(&["english", "refund"]),
            "other",
        )
        .unwrap();
        assert_eq!(p.candidates, strings(&["wu.lei"]));
        assert_eq!(
            choose(&p, 0, &counts(&[("wu.lei", 9)])).unwrap().handler,
            "wu.lei"
        );
    }

    #[test]
    fn skills_without_a_rule_skill_uses_the_category_and_falls_back_to_everyone() {
        let d = dept(
            &["liu.yang", "zhou.min", "wu.lei"],
            Strategy::Skills,
            &[
                ("liu.yang", &["english"]),
                ("zhou.min", &["refund"]),
                ("wu.lei", &["refund", "english"]),
            ],
        );
        // The category is a skill of some: they are the candidates.
        let p = plan(&d, Strategy::Skills, &[], "refund").unwrap();
        assert_eq!(p.candidates, strings(&["zhou.min", "wu.lei"]));
        assert_eq!(
            choose(&p, 0, &counts(&[("zhou.min", 1)])).unwrap().handler,
            "wu.lei"
        );
        // A category nobody lists: every handler, least open.
        let p = plan(&d, Strategy::Skills, &[], "logistics").unwrap();
        assert_eq!(p.candidates.len(), 3);
        assert!(p.required.is_empty());
        assert!(p.note.contains("no skill asked"), "{}", p.note);
        // A skill nobody has: every handler, and the note says so.
        let p = plan(&d, Strategy::Skills, &strings(&["cantonese"]), "other").unwrap();
        assert_eq!(p.candidates.len(), 3);
        assert!(p.note.contains("nobody has cantonese"), "{}", p.note);
        assert_eq!(
            choose(&p, 0, &counts(&[("liu.yang", 1), ("zhou.min", 1)]))
                .unwrap()
                .handler,
            "wu.lei"
        );
    }

    #[test]
    fn a_department_without_handlers_gets_no_handler() {
        let d = dept(&[], Strategy::RoundRobin, &[]);
        assert_eq!(plan(&d, Strategy::RoundRobin, &[], "x"), None);
        let empty = Plan {
            strategy: Strategy::LeastOpen,
            candidates: Vec::new(),
            required: Vec::new(),
            note: String::new(),
        };
        assert_eq!(choose(&empty, 0, &BTreeMap::new()), None);
    }

    #[test]
    fn the_default_policy_plans_by_its_departments() {
        let (policy, _) = tousu_policy::schema::Policy::load(&std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/default.toml"
        )))
        .unwrap();
        let logistics = policy.department("logistics").unwrap();
        let p = plan(logistics, logistics.strategy, &[], "logistics").unwrap();
        assert_eq!(p.strategy, Strategy::RoundRobin);
        assert_eq!(p.candidates, strings(&["xu.fang", "lin.tao"]));
        let quality = policy.department("quality").unwrap();
        assert_eq!(quality.strategy, Strategy::LeastOpen);
        let service = policy.department("service").unwrap();
        let p = plan(service, service.strategy, &strings(&["english"]), "other").unwrap();
        assert_eq!(p.candidates, strings(&["liu.yang", "wu.lei"]));
    }
}
