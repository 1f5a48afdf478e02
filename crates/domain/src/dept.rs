use std::fmt;
use std::str::FromStr;

use crate::InvalidValue;

/// A department code from the policy. It is a token of NATS subjects
/// (`complaint.assigned.<dept>`), so it may not contain `.`, `*`, `>` or
/// white space; we also keep it to ASCII letters, digits, `_` and `-` so it
/// is safe in URLs, file names and NATS permissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeptCode(String);

impl DeptCode {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeptCode {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| InvalidValue::new("department code", format!("{s:?}: {why}"));
        if s.is_empty() {
            return Err(bad("empty".into()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(bad(format!("longer than {} bytes", Self::MAX_LEN)));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(bad(format!(
                "{c:?} is not allowed (use ASCII letters, digits, _ and -)"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for DeptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_subject_safe_codes() {
        for ok in ["quality", "customer_service", "logistics-north", "D042"] {
            assert_eq!(ok.parse::<DeptCode>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_subject_breaking_codes() {
        let long = "x".repeat(65);
        for bad in [
            "",
            "a.b",
            "*",
            ">",
            "a b",
            "a\tb",
            "质量部",
            "a/b",
            long.as_str(),
        ] {
            assert!(
                bad.parse::<DeptCode>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
