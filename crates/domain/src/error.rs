use std::fmt;

/// A value that failed to parse into one of the domain newtypes.
///
/// `what` names the kind of value (`phone`, `tracking number`, …) so an edge
/// can map it onto the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub what: &'static str,
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for InvalidValue {}
