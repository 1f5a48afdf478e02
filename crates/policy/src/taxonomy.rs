//! The taxonomy: the categories a policy classifies complaints into.
//!
//! Shared by the policy file schema (which reads it) and the classifier
//! (which scores complaints against it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One category, as written in a policy file:
///
/// ```toml
/// [[taxonomy]]
/// code = "logistics"
/// name = "物流配送 Delivery"
/// department = "logistics"
/// keywords = { "快递" = 2.0, "物流" = 2.0, "没送到" = 3.0, "delivery" = 2.0, "parcel" = 1.5 }
/// hints = ["logistics", "物流", "配送"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Code used in decisions, rules and reports (`[a-z0-9_]+`).
    pub code: String,
    /// Display name (Chinese and English).
    pub name: String,
    /// The department that handles this category unless a routing rule
    /// says otherwise (a department code of the policy).
    #[serde(default)]
    pub department: Option<String>,
    /// Term → weight. A term with Chinese characters matches as a
    /// substring of the normalized text; other terms match English words
    /// exactly and in order (a trailing `*` makes the last word a prefix:
    /// `deliver*`). A match inside a longer matching term does not count
    /// (`crate::classify` documents the scoring).
    #[serde(default)]
    pub keywords: BTreeMap<String, f64>,
    /// Values of the channel's `category_hint` (a form drop-down, an IVR
    /// branch) that point at this category.
    #[serde(default)]
    pub hints: Vec<String>,
}

/// The codes of the default taxonomy (`policies/default.toml`), in order.
/// The labeled classification set covers each of them.
pub const DEFAULT_CATEGORIES: &[&str] = &[
    "product_quality",
    "logistics",
    "price_billing",
    "refund_aftersales",
    "service_attitude",
    "service_efficiency",
    "contract_dispute",
    "privacy_security",
    "facilities_environment",
    "other",
];
