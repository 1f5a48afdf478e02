use std::fmt;
use std::str::FromStr;

use time::Date;
use uuid::Uuid;

use crate::InvalidValue;

/// A complaint's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComplaintId(Uuid);

impl ComplaintId {
    /// A fresh id for a complaint received now.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for ComplaintId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<Uuid> for ComplaintId {
    type Error = InvalidValue;

    fn try_from(id: Uuid) -> Result<Self, Self::Error> {
        if id.get_version_num() == 7 {
            Ok(Self(id))
        } else {
            Err(InvalidValue::new(
                "complaint id",
                format!("{id} is not a UUID v7"),
            ))
        }
    }
}

impl FromStr for ComplaintId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = Uuid::parse_str(s)
            .map_err(|e| InvalidValue::new("complaint id", format!("{s:?}: {e}")))?;
        Self::try_from(id)
    }
}

impl fmt::Display for ComplaintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The human tracking number shown to the complainant:
/// `TS` + the date of receipt (`yyyymmdd`, in the policy's time zone) +
/// `-` + a per-day sequence of at least six digits, e.g. `TS20261122-000123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackingNo(String);

impl TrackingNo {
    /// The tracking number for the `seq`-th complaint (from 1) received on `date`.
    pub fn new(date: Date, seq: u64) -> Result<Self, InvalidValue> {
        if seq == 0 {
            return Err(InvalidValue::new("tracking number", "sequence starts at 1"));
        }
        if !(1000..=9999).contains(&date.year()) {
            return Err(InvalidValue::new(
                "tracking number",
                format!("year {} out of range", date.year()),
            ));
        }
        Ok(Self(format!(
            "TS{:04}{:02}{:02}-{seq:06}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )))
    }

    /// The date part.
    pub fn date(&self) -> Date {
        parse_date(&self.0[2..10]).expect("validated on construction")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_date(digits: &str) -> Option<Date> {
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[0..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..8].parse().ok()?;
    Date::from_calendar_date(year, month.try_into().ok()?, day).ok()
}

impl FromStr for TrackingNo {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidValue::new("tracking number", format!("{s:?}: {why}"));
        let rest = s
            .strip_prefix("TS")
            .ok_or_else(|| bad("must start with TS"))?;
        let (date, seq) = rest
            .split_once('-')
            .ok_or_else(|| bad("expected TSyyyymmdd-nnnnnn"))?;
        let date = parse_date(date).ok_or_else(|| bad("not a valid date"))?;
        if seq.len() < 6 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("sequence must be at least six digits"));
        }
        let seq: u64 = seq.parse().map_err(|_| bad("sequence too large"))?;
        Self::new(date, seq)
            .ok()
            .filter(|t| t.0 == s)
            .ok_or_else(|| bad("not in canonical form"))
    }
}

impl fmt::Display for TrackingNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn complaint_ids_are_v7_and_time_ordered() {
        let a = ComplaintId::new();
        let b = ComplaintId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().parse::<ComplaintId>().unwrap(), a);
    }

    #[test]
    fn complaint_id_rejects_other_versions_and_garbage() {
        let v4 = "4b3e8e4e-7e3c-4a47-9d2b-8f3a1c2b9e10";
        assert!(v4.parse::<ComplaintId>().is_err());
        assert!("not-a-uuid".parse::<ComplaintId>().is_err());
        assert!("".parse::<ComplaintId>().is_err());
    }

    #[test]
    fn tracking_no_formats_date_and_sequence() {
        let t = TrackingNo::new(date!(2026 - 11 - 22), 123).unwrap();
        assert_eq!(t.as_str(), "TS20261122-000123");
        assert_eq!(t.date(), date!(2026 - 11 - 22));
        let big = TrackingNo::new(date!(2026 - 01 - 02), 1_234_567).unwrap();
        assert_eq!(big.as_str(), "TS20260102-1234567");
        assert!(TrackingNo::new(date!(2026 - 01 - 02), 0).is_err());
    }

    #[test]
    fn tracking_no_parses_only_canonical_forms() {
        let t: TrackingNo = "TS20261122-000123".parse().unwrap();
        assert_eq!(t.to_string(), "TS20261122-000123");
        assert!("TS20261122-1234567".parse::<TrackingNo>().is_ok());
        for bad in [
            "",
            "TS",
            "ts20261122-000123",
            "TS20261322-000123",
            "TS20260230-000123",
            "TS20261122-00012",
            "TS20261122-0000123",
            "TS20261122-000000",
            "TS20261122_000123",
            "TS2026112-000123",
            "TS20261122-00012a",
        ] {
            assert!(
                bad.parse::<TrackingNo>().is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
