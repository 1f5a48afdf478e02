//! The tousu policy engine: business rules as data.
//!
//! A policy file (`policies/*.toml`, see `docs/policy.md`) holds the
//! taxonomy, grading and routing rules (conditions in CEL), SLA targets,
//! pause reasons, escalation ladders and notification rules. This crate
//! loads and checks it ([`schema`], [`check`], [`cel`]) and makes the
//! decisions routing needs, each with its explanation:
//!
//! - [`text`]: Chinese segmentation (jieba) and English tokenization;
//! - [`classify`]: category with confidence and matched terms, from the
//!   [`taxonomy`] of the policy;
//! - [`similar`]: near-duplicate complaints (SimHash over segmented text)
//!   and complaints of the same person across channels;
//! - [`surge`]: hot topics, a sliding-window surge detector per topic and place;
//! - [`engine`]: all of the above for one complaint, as routing runs it.

pub mod bayes;
pub mod cel;
pub mod check;
pub mod classify;
pub mod engine;
pub mod schema;
pub mod similar;
pub mod surge;
pub mod taxonomy;
pub mod text;

/// One rule that fired in a decision, for explanation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    /// The rule's id in the policy file (or `classifier`, `taxonomy:<code>`…).
    pub rule: String,
    /// Human-readable reason, e.g. `keyword "爆炸" → grade 1`.
    pub reason: String,
}
