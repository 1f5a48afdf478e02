use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// Complaint grade: 1 (一级 / 重大, major) is the most serious, 4 (四级 / 一般,
/// general) the least. Ordered so that `Grade::MAJOR < Grade::GENERAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Grade(u8);

impl Grade {
    pub const MAJOR: Grade = Grade(1);
    pub const HOT: Grade = Grade(2);
    pub const IMPORTANT: Grade = Grade(3);
    pub const GENERAL: Grade = Grade(4);

    pub fn get(&self) -> u8 {
        self.0
    }

    /// The Chinese name used by the seed documents.
    pub fn name_zh(&self) -> &'static str {
        ["重大", "热点", "重要", "一般"][usize::from(self.0 - 1)]
    }
}

impl TryFrom<u8> for Grade {
    type Error = InvalidValue;

    fn try_from(n: u8) -> Result<Self, Self::Error> {
        if (1..=4).contains(&n) {
            Ok(Grade(n))
        } else {
            Err(InvalidValue::new(
                "grade",
                format!("{n} is not between 1 and 4"),
            ))
        }
    }
}

impl TryFrom<u32> for Grade {
    type Error = InvalidValue;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        u8::try_from(n)
            .map_err(|_| InvalidValue::new("grade", format!("{n} is not between 1 and 4")))
            .and_then(Grade::try_from)
    }
}

impl From<Grade> for u8 {
    fn from(g: Grade) -> u8 {
        g.0
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Urgency, independent of grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 一般
    Normal,
    /// 加急: a hard external deadline, a vulnerable person.
    Expedited,
    /// 紧急: ongoing harm, safety, livelihood.
    Urgent,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Urgency::Normal, Urgency::Expedited, Urgency::Urgent];

    pub fn as_str(&self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Expedited => "expedited",
            Urgency::Urgent => "urgent",
        }
    }

    pub fn name_zh(&self) -> &'static str {
        match self {
            Urgency::Normal => "一般",
            Urgency::Expedited => "加急",
            Urgency::Urgent => "紧急",
        }
    }
}

impl FromStr for Urgency {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Urgency::ALL
            .into_iter()
            .find(|u| u.as_str() == s || u.name_zh() == s)
            .ok_or_else(|| {
                InvalidValue::new(
                    "urgency",
                    format!("{s:?} is not one of normal, expedited, urgent (一般, 加急, 紧急)"),
                )
            })
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_holds_only_one_to_four() {
        for n in 1u8..=4 {
            assert_eq!(Grade::try_from(n).unwrap().get(), n);
        }
        for n in [0u8, 5, 255] {
            assert!(Grade::try_from(n).is_err());
        }
        assert!(Grade::try_from(256u32).is_err());
        assert!(Grade::MAJOR < Grade::GENERAL);
        assert_eq!(Grade::HOT.name_zh(), "热点");
    }

    #[test]
    fn urgency_parses_english_and_chinese() {
        assert_eq!("urgent".parse::<Urgency>().unwrap(), Urgency::Urgent);
        assert_eq!("加急".parse::<Urgency>().unwrap(), Urgency::Expedited);
        assert_eq!("一般".parse::<Urgency>().unwrap(), Urgency::Normal);
        assert!("asap".parse::<Urgency>().is_err());
        assert!(Urgency::Urgent > Urgency::Normal);
    }
}
