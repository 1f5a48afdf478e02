//! Working-day calendars (with 调休 make-up working days) and the SLA
//! deadline calculator.
//!
//! Every SLA clock in tousu ends in a deadline computed here, so the rules
//! are kept in one place, are data-driven, and every deadline carries an
//! explanation a complainant or an auditor can read.
//!
//! # Calendar files
//!
//! A calendar lives in `policies/calendars/<name>/` and is data, not code,
//! because holiday schedules change every year (the State Council publishes
//! the next year's 调休 arrangement each November) and tenants abroad have
//! their own:
//!
//! - `calendar.toml`:
//!
//!   ```toml
//!   name = "cn"                      # must equal the directory name
//!   time_zone = "Asia/Shanghai"      # IANA name; DST is handled
//!   [hours]                          # working intervals per weekday, local time
//!   mon = ["09:00-12:00", "13:30-17:30"]
//!   tue = ["09:00-12:00", "13:30-17:30"]
//!   # … wed, thu, fri, sat, sun; a missing weekday has no working hours
//!   ```
//!
//!   Intervals are `HH:MM-HH:MM` (end may be `24:00`), within one day; they
//!   are sorted, must not overlap, and touching intervals are merged.
//!
//! - `<year>.toml`, one per year, e.g. `2026.toml`:
//!
//!   ```toml
//!   source = "国务院办公厅关于2026年部分节假日安排的通知"   # optional provenance
//!   holidays = [{ date = "2026-02-15", to = "2026-02-23", name = "春节" }]
//!   workdays = [{ date = "2026-02-14", name = "春节调休" }]
//!   ```
//!
//!   `to` is optional (a one-day holiday) and inclusive. Every date must lie
//!   in the file's year: a range that crosses the new year (元旦 2023 was
//!   2022-12-31..2023-01-02) is split between the two year files, so that
//!   "the data for year Y is loaded" has one meaning.
//!
//!   A `workdays` entry is a make-up working day (调休): a day without
//!   working hours (a weekend) that is worked. It uses **Monday's** hours,
//!   because make-up days replace a normal full working day and Monday is the
//!   canonical one; listing a day that already has hours is an error (it is
//!   almost certainly a typo in the date), as are overlapping holiday
//!   ranges, a day that is both a holiday and a make-up day, and make-up
//!   days in a calendar whose Monday has no hours.
//!
//! A date in a year with no file is an error ("calendar cn has no data for
//! 2027"), never a guess: a deadline silently computed without next year's
//! Spring Festival would be wrong by a week.
//!
//! # Counting rules (standards §6.5, 民法典 Art. 200–204)
//!
//! - `Nh`, `Nm`: 24×7 from the start instant; nights, weekends and holidays
//!   all count (emergency clocks never sleep).
//! - `Nwh`: only time inside working intervals counts; a start outside them
//!   starts at the next working instant. A deadline that falls exactly on
//!   the end of an interval stays there (it does not jump to the next
//!   morning).
//! - `Nwd`: the day of receipt (local date of the start instant) is not
//!   counted; N working days are counted from the next day, make-up days
//!   included; the deadline is the end of business (end of the last working
//!   interval) of the Nth working day.
//! - `Nd`: the day of receipt is not counted; the deadline is 24:00 local of
//!   the Nth day. If that day is a statutory holiday (listed in `holidays`),
//!   the deadline moves to 24:00 of the next working day. A plain weekend
//!   does not move it: only listed holidays do. This is deliberately the
//!   simple reading; courts read 民法典 Art. 203's 法定休假日 as including
//!   weekends, so a profile that needs that would add it as an option.
//!
//! Instants in and out are UTC [`time::OffsetDateTime`]; local civil time
//! and time zones are done with `jiff` inside.
//!
//! # Speed
//!
//! An SLA service arms a timer per step per complaint, so
//! [`Calendar::deadline_at`] allocates nothing: days are classified by an
//! O(1) table lookup and only the first and last instants go through the
//! time zone. [`Calendar::deadline`] additionally records skipped days and
//! writes the explanation.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use jiff::civil;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use time::OffsetDateTime;

/// Minutes in a day; an interval end of `24:00` is stored as this.
const DAY_MINUTES: u16 = 24 * 60;

/// Calendar files are small; anything larger is not a calendar and is
/// refused before it is parsed.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a calendar could not be loaded or a deadline computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A calendar file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// A calendar file is not valid TOML or does not fit the schema; the
    /// message names the key.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// A calendar file parses but says something impossible (overlapping
    /// holidays, a date outside its year, a bad interval…).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// A date falls in a year for which the calendar has no file.
    #[error("calendar {calendar} has no data for {year}")]
    NoData { calendar: String, year: i32 },
    /// A duration string is not one of `Nh`, `Nm`, `Nwh`, `Nwd`, `Nd`.
    #[error("invalid duration {input:?}: {reason}")]
    Duration { input: String, reason: String },
    /// An instant or date outside the supported range (years -9999..=9999).
    #[error("out of range: {0}")]
    OutOfRange(String),
}

fn out_of_range(what: impl fmt::Display) -> CalendarError {
    CalendarError::OutOfRange(what.to_string())
}

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

/// An SLA period as written in policies: `"24h"`, `"30m"`, `"4wh"`,
/// `"5wd"`, `"15d"`.
///
/// The unit decides the counting rule (see the module docs), so it is part
/// of the type rather than a separate flag that could be forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Duration {
    /// `Nh`: hours, 24×7.
    Hours(u32),
    /// `Nm`: minutes, 24×7.
    Minutes(u32),
    /// `Ns`: seconds, 24×7 (tests, drills and benchmarks).
    Seconds(u32),
    /// `Nwh`: working hours.
    WorkingHours(u32),
    /// `Nwd`: working days, day of receipt not counted, ends at end of business.
    WorkingDays(u32),
    /// `Nd`: calendar days, day of receipt not counted, ends at 24:00.
    CalendarDays(u32),
}

impl FromStr for Duration {
    type Err = CalendarError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| CalendarError::Duration {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(err(
                "expected a number followed by a unit: h, m, s, wh, wd or d (e.g. \"5wd\")",
            ));
        }
        let n: u32 = digits
            .parse()
            .map_err(|_| err("number too large (at most 4294967295)"))?;
        if n == 0 {
            return Err(err("a duration must be at least 1"));
        }
        match unit {
            "h" => Ok(Self::Hours(n)),
            "m" => Ok(Self::Minutes(n)),
            "s" => Ok(Self::Seconds(n)),
            "wh" => Ok(Self::WorkingHours(n)),
            "wd" => Ok(Self::WorkingDays(n)),
            "d" => Ok(Self::CalendarDays(n)),
            "" => Err(err("missing unit: expected h, m, s, wh, wd or d")),
            _ => Err(err(&format!(
                "unknown unit {unit:?}: expected h (hours), m (minutes), s (seconds), \
                 wh (working hours), wd (working days) or d (calendar days)"
            ))),
        }
    }
}

impl Duration {
    /// The number before the unit.
    pub fn amount(&self) -> u32 {
        match *self {
            Self::Hours(n)
            | Self::Minutes(n)
            | Self::Seconds(n)
            | Self::WorkingHours(n)
            | Self::WorkingDays(n)
            | Self::CalendarDays(n) => n,
        }
    }
}

impl TryFrom<String> for Duration {
    type Error = CalendarError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Hours(n) => write!(f, "{n}h"),
            Self::Minutes(n) => write!(f, "{n}m"),
            Self::Seconds(n) => write!(f, "{n}s"),
            Self::WorkingHours(n) => write!(f, "{n}wh"),
            Self::WorkingDays(n) => write!(f, "{n}wd"),
            Self::CalendarDays(n) => write!(f, "{n}d"),
        }
    }
}

// ---------------------------------------------------------------------------
// Deadline result
// ---------------------------------------------------------------------------

/// Why a day did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A weekday without working hours (Saturday and Sunday in `cn`).
    Weekend,
    /// A listed holiday, with its name (`春节`).
    Holiday(Arc<str>),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Weekend => f.write_str("weekend"),
            Self::Holiday(name) => write!(f, "holiday: {name}"),
        }
    }
}

/// A day the clock stepped over without counting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub date: time::Date,
    pub reason: SkipReason,
}

/// A make-up working day (调休) that counted towards the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakeupDay {
    pub date: time::Date,
    pub name: Arc<str>,
}

/// A computed deadline and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The deadline instant, in UTC.
    pub at: OffsetDateTime,
    /// Days stepped over (weekends, holidays), in date order.
    pub skipped: Vec<Skipped>,
    /// Make-up working days that counted, in date order.
    pub makeup_days: Vec<MakeupDay>,
    /// Human-readable account of the computation, for the complainant
    /// notice and the audit trail.
    pub explanation: String,
}

// ---------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------

/// A working interval in local minutes since midnight, `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    start: u16,
    end: u16,
}

/// What one date of a loaded year is, beyond its weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    Normal,
    /// Index into the year's names.
    Holiday(u16),
    /// Make-up working day; index into the year's names.
    Workday(u16),
}

#[derive(Clone)]
struct YearTable {
    year: i16,
    /// Provenance (the notice the dates come from), for audits.
    source: Option<String>,
    /// Indexed by day of year - 1; its length is the number of days in the year.
    days: Box<[DayKind]>,
    names: Vec<Arc<str>>,
}

/// Summarised: the day table would print 366 entries per year.
impl fmt::Debug for YearTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |p: fn(&DayKind) -> bool| self.days.iter().filter(|d| p(d)).count();
        f.debug_struct("YearTable")
            .field("year", &self.year)
            .field("holidays", &count(|d| matches!(d, DayKind::Holiday(_))))
            .field("workdays", &count(|d| matches!(d, DayKind::Workday(_))))
            .finish_non_exhaustive()
    }
}

/// A day as the counting rules see it.
enum Day<'a> {
    Working {
        hours: &'a [Interval],
        makeup: Option<&'a Arc<str>>,
    },
    Weekend,
    Holiday(&'a Arc<str>),
}

/// A working calendar: time zone, weekly working hours and per-year
/// holidays and make-up days. Cheap to share (`Arc` it); immutable once
/// loaded.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    time_zone: String,
    tz: TimeZone,
    /// Monday = 0 … Sunday = 6.
    hours: [Box<[Interval]>; 7],
    /// Sorted by year.
    years: Vec<YearTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    name: String,
    time_zone: String,
    hours: RawHours,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    #[serde(default)]
    mon: Vec<String>,
    #[serde(default)]
    tue: Vec<String>,
    #[serde(default)]
    wed: Vec<String>,
    #[serde(default)]
    thu: Vec<String>,
    #[serde(default)]
    fri: Vec<String>,
    #[serde(default)]
    sat: Vec<String>,
    #[serde(default)]
    sun: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    holidays: Vec<RawHoliday>,
    #[serde(default)]
    workdays: Vec<RawWorkday>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    date: RawDate,
    #[serde(default)]
    to: Option<RawDate>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkday {
    date: RawDate,
    name: String,
}

/// A date as written: `"2026-02-15"` (documented form) or a bare TOML
/// local date `2026-02-15`, which people naturally type in TOML; both mean
/// the same day, so both are accepted rather than failing on a type.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "expected a date \"YYYY-MM-DD\"")]
enum RawDate {
    Text(String),
    Toml(toml::value::Datetime),
}

impl RawDate {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Toml(dt) => dt.to_string(),
        }
    }
}

const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Calendar {
    /// Loads `dir/<name>/calendar.toml` and every `dir/<name>/<year>.toml`.
    ///
    /// Other `.toml` files in the directory are an error (a misnamed year
    /// file would otherwise be silently ignored); non-TOML files (README)
    /// are ignored.
    pub fn load(dir: &Path, name: &str) -> Result<Self, CalendarError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(CalendarError::Invalid {
                file: dir.display().to_string(),
                message: format!(
                    "calendar name {name:?} must be ASCII letters, digits, '-' or '_'"
                ),
            });
        }
        let cal_dir = dir.join(name);
        let cal_path = cal_dir.join("calendar.toml");
        let cal_text = read_small(&cal_path)?;
        let entries = std::fs::read_dir(&cal_dir).map_err(|e| CalendarError::Io {
            path: cal_dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut year_files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CalendarError::Io {
                path: cal_dir.display().to_string(),
                message: e.to_string(),
            })?;
            let path = entry.path();
            let Some(file_name) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(stem) = file_name.strip_suffix(".toml") else {
                continue;
            };
            if stem == "calendar" {
                continue;
            }
            let year = (stem.len() == 4 && stem.bytes().all(|b| b.is_ascii_digit()))
                .then(|| stem.parse::<i32>().ok())
                .flatten()
                .ok_or_else(|| CalendarError::Invalid {
                    file: path.display().to_string(),
                    message: "unexpected file: year files are named <year>.toml, e.g. 2026.toml"
                        .to_owned(),
                })?;
            year_files.push((year, read_small(&path)?, path.display().to_string()));
        }
        year_files.sort_by_key(|(year, _, _)| *year);
        let cal = Self::build(
            &cal_text,
            &cal_path.display().to_string(),
            year_files
                .iter()
                .map(|(y, text, label)| (*y, text.as_str(), label.as_str())),
        )?;
        if cal.name != name {
            return Err(CalendarError::Invalid {
                file: cal_path.display().to_string(),
                message: format!(
                    "name = {:?} does not match the directory name {name:?}",
                    cal.name
                ),
            });
        }
        Ok(cal)
    }

    /// Builds a calendar from file contents: `calendar.toml` and
    /// `(year, <year>.toml)` pairs. Errors name the files as
    /// `calendar.toml` and `<year>.toml`.
    pub fn from_parts(calendar_toml: &str, years: &[(i32, &str)]) -> Result<Self, CalendarError> {
        let labels: Vec<String> = years.iter().map(|(y, _)| format!("{y}.toml")).collect();
        Self::build(
            calendar_toml,
            "calendar.toml",
            years
                .iter()
                .zip(&labels)
                .map(|((y, text), label)| (*y, *text, label.as_str())),
        )
    }

    fn build<'a>(
        calendar_toml: &str,
        cal_label: &str,
        years: impl Iterator<Item = (i32, &'a str, &'a str)>,
    ) -> Result<Self, CalendarError> {
        let raw: RawCalendar = toml::from_str(calendar_toml).map_err(|e| CalendarError::Parse {
            file: cal_label.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| CalendarError::Invalid {
            file: cal_label.to_owned(),
            message,
        };
        if raw.name.is_empty() {
            return Err(invalid("name must not be empty".to_owned()));
        }
        let tz = TimeZone::get(&raw.time_zone).map_err(|e| {
            invalid(format!(
                "time_zone = {:?} is not a known IANA time zone: {e}",
                raw.time_zone
            ))
        })?;
        let RawHours {
            mon,
            tue,
            wed,
            thu,
            fri,
            sat,
            sun,
        } = raw.hours;
        let mut hours: [Box<[Interval]>; 7] = Default::default();
        for (i, list) in [mon, tue, wed, thu, fri, sat, sun].into_iter().enumerate() {
            let key = WEEKDAY_KEYS.get(i).copied().unwrap_or("?");
            let parsed =
                parse_day_hours(&list).map_err(|m| invalid(format!("hours.{key}: {m}")))?;
            if let Some(slot) = hours.get_mut(i) {
                *slot = parsed;
            }
        }
        if hours.iter().all(|h| h.is_empty()) {
            return Err(invalid(
                "[hours] has no working intervals on any weekday".to_owned(),
            ));
        }
        let mut cal = Self {
            name: raw.name,
            time_zone: raw.time_zone,
            tz,
            hours,
            years: Vec::new(),
        };
        for (year, text, label) in years {
            let table = cal.parse_year(year, text, label)?;
            match cal.years.binary_search_by_key(&table.year, |t| t.year) {
                Ok(_) => {
                    return Err(CalendarError::Invalid {
                        file: label.to_owned(),
                        message: format!("year {year} is given twice"),
                    });
                }
                Err(pos) => cal.years.insert(pos, table),
            }
        }
        Ok(cal)
    }

    fn parse_year(&self, year: i32, text: &str, label: &str) -> Result<YearTable, CalendarError> {
        let invalid = |message: String| CalendarError::Invalid {
            file: label.to_owned(),
            message,
        };
        let year16 = i16::try_from(year)
            .ok()
            .filter(|y| (1..=9998).contains(y))
            .ok_or_else(|| invalid(format!("year {year} is out of range (1..=9998)")))?;
        let first = civil::Date::new(year16, 1, 1)
            .map_err(|e| invalid(format!("year {year} is out of range: {e}")))?;
        let raw: RawYear = toml::from_str(text).map_err(|e| CalendarError::Parse {
            file: label.to_owned(),
            message: e.to_string(),
        })?;
        let len = usize::try_from(first.days_in_year()).unwrap_or(365);
        let mut days = vec![DayKind::Normal; len].into_boxed_slice();
        let mut names: Vec<Arc<str>> = Vec::new();
        let intern = |names: &mut Vec<Arc<str>>, name: &str, what: &str| {
            if name.trim().is_empty() {
                return Err(invalid(format!("{what}: name must not be empty")));
            }
            let i = match names.iter().position(|n| &**n == name) {
                Some(i) => i,
                None => {
                    names.push(Arc::from(name));
                    names.len() - 1
                }
            };
            u16::try_from(i).map_err(|_| invalid(format!("{what}: too many distinct names")))
        };
        let in_year = |raw: &RawDate, what: &str| -> Result<(civil::Date, usize), CalendarError> {
            let s = raw.text();
            let d = parse_date(&s).ok_or_else(|| {
                invalid(format!("{what}: {s:?} is not a date (expected YYYY-MM-DD)"))
            })?;
            if d.year() != year16 {
                return Err(invalid(format!(
                    "{what}: {d} is not in {year}; each year file holds only its own year's \
                     dates (split a range that crosses the new year between the two files)"
                )));
            }
            let idx = usize::try_from(d.day_of_year() - 1)
                .map_err(|_| invalid(format!("{what}: {d} is out of range")))?;
            Ok((d, idx))
        };
        for (i, h) in raw.holidays.iter().enumerate() {
            let what = format!("holidays[{i}] ({})", h.name);
            let name = intern(&mut names, &h.name, &what)?;
            let (from, from_idx) = in_year(&h.date, &format!("{what}.date"))?;
            let (to, to_idx) = match &h.to {
                Some(t) => in_year(t, &format!("{what}.to"))?,
                None => (from, from_idx),
            };
            if to_idx < from_idx {
                return Err(invalid(format!(
                    "{what}: to = {to} is before date = {from}"
                )));
            }
            for idx in from_idx..=to_idx {
                match days.get(idx).copied() {
                    Some(DayKind::Normal) => {
                        if let Some(slot) = days.get_mut(idx) {
                            *slot = DayKind::Holiday(name);
                        }
                    }
                    Some(DayKind::Holiday(other)) => {
                        let other = names.get(usize::from(other)).cloned();
                        return Err(invalid(format!(
                            "{what}: {from}..{to} overlaps another holiday ({}) on {}",
                            other.as_deref().unwrap_or("?"),
                            nth_day(first, idx)
                        )));
                    }
                    _ => return Err(invalid(format!("{what}: day {idx} out of range"))),
                }
            }
        }
        for (i, w) in raw.workdays.iter().enumerate() {
            let what = format!("workdays[{i}] ({})", w.name);
            let name = intern(&mut names, &w.name, &what)?;
            let (date, idx) = in_year(&w.date, &format!("{what}.date"))?;
            match days.get(idx).copied() {
                Some(DayKind::Normal) => {}
                Some(DayKind::Holiday(other)) => {
                    let other = names.get(usize::from(other)).cloned();
                    return Err(invalid(format!(
                        "{what}: {date} is also a holiday ({})",
                        other.as_deref().unwrap_or("?")
                    )));
                }
                Some(DayKind::Workday(_)) => {
                    return Err(invalid(format!("{what}: {date} is listed twice")));
                }
                None => return Err(invalid(format!("{what}: {date} out of range"))),
            }
            if !self.weekday_hours(date).is_empty() {
                return Err(invalid(format!(
                    "{what}: {date} is a {} and already a working day; make-up days are days \
                     without working hours (weekends)",
                    weekday_name(date)
                )));
            }
            if self.hours[0].is_empty() {
                return Err(invalid(format!(
                    "{what}: make-up working days use Monday's hours, but hours.mon is empty"
                )));
            }
            if let Some(slot) = days.get_mut(idx) {
                *slot = DayKind::Workday(name);
            }
        }
        Ok(YearTable {
            year: year16,
            source: raw.source,
            days,
            names,
        })
    }

    /// The calendar's name (`cn`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IANA time zone name (`Asia/Shanghai`).
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }

    /// The years for which holiday data is loaded, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().map(|t| i32::from(t.year))
    }

    /// The `source` of a year file (the notice its dates come from), if given.
    pub fn source(&self, year: i32) -> Option<&str> {
        let year = i16::try_from(year).ok()?;
        self.year_table(year).ok()?.source.as_deref()
    }

    /// The calendar's UTC offset at `t` (for showing instants in local time).
    pub fn utc_offset(&self, t: OffsetDateTime) -> Result<time::UtcOffset, CalendarError> {
        let secs = self.tz.to_offset(from_odt(t)?).seconds();
        time::UtcOffset::from_whole_seconds(secs).map_err(out_of_range)
    }

    /// Whether `date` (a local civil date) has working hours: a weekday
    /// with hours that is not a holiday, or a make-up working day.
    pub fn is_working_day(&self, date: time::Date) -> Result<bool, CalendarError> {
        Ok(matches!(self.day(to_civil(date)?)?, Day::Working { .. }))
    }

    /// The working intervals of `date` as UTC instants, in order; empty on
    /// a non-working day.
    pub fn working_intervals(
        &self,
        date: time::Date,
    ) -> Result<Vec<(OffsetDateTime, OffsetDateTime)>, CalendarError> {
        let date = to_civil(date)?;
        let Day::Working { hours, .. } = self.day(date)? else {
            return Ok(Vec::new());
        };
        hours
            .iter()
            .map(|iv| {
                Ok((
                    to_odt(self.local(date, iv.start)?)?,
                    to_odt(self.local(date, iv.end)?)?,
                ))
            })
            .collect()
    }

    /// The deadline instant only: no explanation, no allocation. This is the
    /// path for arming timers.
    pub fn deadline_at(
        &self,
        start: OffsetDateTime,
        duration: &Duration,
    ) -> Result<OffsetDateTime, CalendarError> {
        let out = self.compute(from_odt(start)?, *duration, &mut NoTrace)?;
        to_odt(out.at)
    }

    /// The deadline for `duration` starting at `start`, with the days
    /// skipped and an explanation.
    pub fn deadline(
        &self,
        start: OffsetDateTime,
        duration: &Duration,
    ) -> Result<Deadline, CalendarError> {
        let start_ts = from_odt(start)?;
        let mut rec = Record::default();
        let out = self.compute(start_ts, *duration, &mut rec)?;
        let mut skipped = Vec::with_capacity(rec.skipped.len());
        for (date, reason) in &rec.skipped {
            skipped.push(Skipped {
                date: to_time_date(*date)?,
                reason: reason.clone(),
            });
        }
        let mut makeup_days = Vec::with_capacity(rec.makeup.len());
        for (date, name) in &rec.makeup {
            makeup_days.push(MakeupDay {
                date: to_time_date(*date)?,
                name: name.clone(),
            });
        }
        let explanation = self.explain(start_ts, *duration, &out, &rec);
        Ok(Deadline {
            at: to_odt(out.at)?,
            skipped,
            makeup_days,
            explanation,
        })
    }

    /// Working time between two instants (zero if `to <= from`): the time
    /// inside working intervals, for pauses ("the clock stood still for 2.5
    /// working hours") and explanations.
    pub fn elapsed_working(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<time::Duration, CalendarError> {
        let (from, to) = (from_odt(from)?, from_odt(to)?);
        if to <= from {
            return Ok(time::Duration::ZERO);
        }
        let last = self.tz.to_datetime(to).date();
        let mut date = self.tz.to_datetime(from).date();
        let mut total = SignedDuration::ZERO;
        loop {
            if let Day::Working { hours, .. } = self.day(date)? {
                for iv in hours {
                    let s = self.local(date, iv.start)?.max(from);
                    let e = self.local(date, iv.end)?.min(to);
                    if e > s {
                        total = total
                            .checked_add(e.duration_since(s))
                            .ok_or_else(|| out_of_range("elapsed working time"))?;
                    }
                }
            }
            if date >= last {
                break;
            }
            date = next_day(date)?;
        }
        Ok(time::Duration::new(total.as_secs(), total.subsec_nanos()))
    }

    /// The earliest instant at which `amount` of working time has passed
    /// since `from` (the inverse of [`Calendar::elapsed_working`]): a
    /// deadline moved by a pause, or the instant a warning at 80 % of a
    /// working-time budget falls. Zero gives `from`; the result lies inside
    /// or at the end of a working interval, never in a gap after it.
    pub fn add_working(
        &self,
        from: OffsetDateTime,
        amount: time::Duration,
    ) -> Result<OffsetDateTime, CalendarError> {
        if amount <= time::Duration::ZERO {
            return Ok(from);
        }
        let from_ts = from_odt(from)?;
        let mut left = SignedDuration::new(amount.whole_seconds(), amount.subsec_nanoseconds());
        let mut date = self.tz.to_datetime(from_ts).date();
        // Bounded by the loaded years: `day` fails past the last one.
        loop {
            if let Day::Working { hours, .. } = self.day(date)? {
                for iv in hours {
                    let s = self.local(date, iv.start)?.max(from_ts);
                    let e = self.local(date, iv.end)?;
                    if e <= s {
                        continue;
                    }
                    let span = e.duration_since(s);
                    if span >= left {
                        let at = s
                            .checked_add(left)
                            .map_err(|e| out_of_range(format!("working time: {e}")))?;
                        return to_odt(at);
                    }
                    left = left
                        .checked_sub(span)
                        .ok_or_else(|| out_of_range("working time"))?;
                }
            }
            date = next_day(date)?;
        }
    }

    // -- internals ----------------------------------------------------------

    fn weekday_hours(&self, date: civil::Date) -> &[Interval] {
        let wd = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        self.hours.get(wd).map_or(&[][..], |h| &h[..])
    }

    fn year_table(&self, year: i16) -> Result<&YearTable, CalendarError> {
        self.years
            .binary_search_by_key(&year, |t| t.year)
            .ok()
            .and_then(|i| self.years.get(i))
            .ok_or_else(|| CalendarError::NoData {
                calendar: self.name.clone(),
                year: i32::from(year),
            })
    }

    /// Classifies a local date: O(1) after the (tiny) binary search over
    /// loaded years.
    fn day(&self, date: civil::Date) -> Result<Day<'_>, CalendarError> {
        let table = self.year_table(date.year())?;
        let idx = usize::try_from(date.day_of_year() - 1).unwrap_or(0);
        let name = |i: u16| table.names.get(usize::from(i));
        Ok(
            match table.days.get(idx).copied().unwrap_or(DayKind::Normal) {
                DayKind::Holiday(i) => match name(i) {
                    Some(n) => Day::Holiday(n),
                    None => Day::Weekend,
                },
                DayKind::Workday(i) => Day::Working {
                    hours: &self.hours[0],
                    makeup: name(i),
                },
                DayKind::Normal => {
                    let hours = self.weekday_hours(date);
                    if hours.is_empty() {
                        Day::Weekend
                    } else {
                        Day::Working {
                            hours,
                            makeup: None,
                        }
                    }
                }
            },
        )
    }

    /// The instant of local `date` + `minute` minutes (1440 = 24:00, the
    /// next midnight). Local times in a DST gap resolve "compatibly" (to the
    /// later wall-clock reading), as RFC 5545 does.
    fn local(&self, date: civil::Date, minute: u16) -> Result<Timestamp, CalendarError> {
        let (date, minute) = if minute >= DAY_MINUTES {
            (next_day(date)?, minute - DAY_MINUTES)
        } else {
            (date, minute)
        };
        let h = i8::try_from(minute / 60).map_err(out_of_range)?;
        let m = i8::try_from(minute % 60).map_err(out_of_range)?;
        let t = civil::Time::new(h, m, 0, 0).map_err(out_of_range)?;
        self.tz
            .to_timestamp(date.to_datetime(t))
            .map_err(out_of_range)
    }

    fn compute<T: Trace>(
        &self,
        start: Timestamp,
        duration: Duration,
        trace: &mut T,
    ) -> Result<Outcome, CalendarError> {
        // Parsing rejects 0, but the enum can be built directly; "0wd" has no
        // sensible meaning under the day-of-receipt rule, so refuse it here too.
        if duration.amount() == 0 {
            return Err(CalendarError::Duration {
                input: duration.to_string(),
                reason: "a duration must be at least 1".to_owned(),
            });
        }
        match duration {
            Duration::Hours(n) => self.clock(start, SignedDuration::from_hours(i64::from(n))),
            Duration::Minutes(n) => self.clock(start, SignedDuration::from_mins(i64::from(n))),
            Duration::Seconds(n) => self.clock(start, SignedDuration::from_secs(i64::from(n))),
            Duration::WorkingHours(n) => {
                self.working_time(start, SignedDuration::from_hours(i64::from(n)), trace)
            }
            Duration::WorkingDays(n) => self.working_days(start, n, trace),
            Duration::CalendarDays(n) => self.calendar_days(start, n, trace),
        }
    }

    fn clock(&self, start: Timestamp, d: SignedDuration) -> Result<Outcome, CalendarError> {
        let at = start
            .checked_add(d)
            .map_err(|e| out_of_range(format!("{start} + {d:?}: {e}")))?;
        Ok(Outcome {
            at,
            began: None,
            last_day: None,
            nominal_day: None,
        })
    }

    fn working_time<T: Trace>(
        &self,
        start: Timestamp,
        amount: SignedDuration,
        trace: &mut T,
    ) -> Result<Outcome, CalendarError> {
        let mut remaining = amount;
        let mut date = self.tz.to_datetime(start).date();
        let mut began = None;
        loop {
            match self.day(date)? {
                Day::Working { hours, makeup } => {
                    let mut counted = false;
                    for iv in hours {
                        let e = self.local(date, iv.end)?;
                        if e <= start {
                            continue;
                        }
                        let s = self.local(date, iv.start)?.max(start);
                        if began.is_none() {
                            began = Some(s);
                        }
                        counted = true;
                        let avail = e.duration_since(s);
                        if remaining <= avail {
                            if let Some(name) = makeup {
                                trace.makeup(date, name);
                            }
                            let at = s.checked_add(remaining).map_err(out_of_range)?;
                            return Ok(Outcome {
                                at,
                                began,
                                last_day: Some(date),
                                nominal_day: None,
                            });
                        }
                        remaining = remaining.saturating_sub(avail.max(SignedDuration::ZERO));
                    }
                    if counted && let Some(name) = makeup {
                        trace.makeup(date, name);
                    }
                }
                Day::Weekend => trace.skipped(date, None),
                Day::Holiday(name) => trace.skipped(date, Some(name)),
            }
            date = next_day(date)?;
        }
    }

    fn working_days<T: Trace>(
        &self,
        start: Timestamp,
        n: u32,
        trace: &mut T,
    ) -> Result<Outcome, CalendarError> {
        let mut date = self.tz.to_datetime(start).date();
        let mut left = n;
        loop {
            date = next_day(date)?;
            match self.day(date)? {
                Day::Working { hours, makeup } => {
                    if let Some(name) = makeup {
                        trace.makeup(date, name);
                    }
                    left -= 1;
                    if left == 0 {
                        let end = hours.last().map_or(DAY_MINUTES, |iv| iv.end);
                        return Ok(Outcome {
                            at: self.local(date, end)?,
                            began: None,
                            last_day: Some(date),
                            nominal_day: None,
                        });
                    }
                }
                Day::Weekend => trace.skipped(date, None),
                Day::Holiday(name) => trace.skipped(date, Some(name)),
            }
        }
    }

    fn calendar_days<T: Trace>(
        &self,
        start: Timestamp,
        n: u32,
        trace: &mut T,
    ) -> Result<Outcome, CalendarError> {
        let received = self.tz.to_datetime(start).date();
        let nominal = received
            .checked_add(SignedDuration::from_hours(i64::from(n) * 24))
            .map_err(|e| out_of_range(format!("{received} + {n} days: {e}")))?;
        let mut date = nominal;
        if let Day::Holiday(name) = self.day(nominal)? {
            trace.skipped(nominal, Some(name));
            loop {
                date = next_day(date)?;
                match self.day(date)? {
                    Day::Working { makeup, .. } => {
                        if let Some(name) = makeup {
                            trace.makeup(date, name);
                        }
                        break;
                    }
                    Day::Weekend => trace.skipped(date, None),
                    Day::Holiday(name) => trace.skipped(date, Some(name)),
                }
            }
        }
        Ok(Outcome {
            at: self.local(date, DAY_MINUTES)?,
            began: None,
            last_day: Some(date),
            nominal_day: Some(nominal),
        })
    }

    fn explain(&self, start: Timestamp, duration: Duration, out: &Outcome, rec: &Record) -> String {
        let tz = &self.time_zone;
        let local_start = self.tz.to_datetime(start);
        let received = local_start.date();
        let mut s = String::with_capacity(256);
        // Clauses after the heading: the first follows ": ", the rest "; ".
        let mut clauses = 0usize;
        let sep = |s: &mut String, clauses: &mut usize| {
            s.push_str(if *clauses == 0 { ": " } else { "; " });
            *clauses += 1;
        };
        // Writing to a String cannot fail; the results are ignored on purpose.
        match duration {
            Duration::Hours(_) | Duration::Minutes(_) | Duration::Seconds(_) => {
                let _ = write!(
                    s,
                    "{duration_words} from {} {tz}, counted 24×7 (nights, weekends and holidays \
                     included): ends {} {tz} ({})",
                    fmt_local(local_start),
                    fmt_local(self.tz.to_datetime(out.at)),
                    out.at,
                    duration_words = words(duration),
                );
                return s;
            }
            Duration::WorkingHours(_) => {
                let _ = write!(
                    s,
                    "{} from {} {tz} (only working intervals count)",
                    words(duration),
                    fmt_local(local_start)
                );
                if let Some(began) = out.began
                    && began > start
                {
                    sep(&mut s, &mut clauses);
                    let _ = write!(
                        s,
                        "outside working hours, so the clock starts at {}",
                        fmt_local(self.tz.to_datetime(began))
                    );
                }
            }
            Duration::WorkingDays(_) | Duration::CalendarDays(_) => {
                let _ = write!(
                    s,
                    "{} from {received} (day of receipt not counted)",
                    words(duration)
                );
            }
        }
        if let (Some(nominal), Some(last)) = (out.nominal_day, out.last_day)
            && nominal != last
        {
            let reason = match rec.skipped.first() {
                Some((_, SkipReason::Holiday(name))) => format!("holiday ({name})"),
                _ => "holiday".to_owned(),
            };
            sep(&mut s, &mut clauses);
            let _ = write!(
                s,
                "day {} is {nominal}, a {reason}, so the deadline moves to the next working \
                 day {last}",
                match duration {
                    Duration::CalendarDays(n) => n,
                    _ => 0,
                }
            );
        }
        if !rec.skipped.is_empty() {
            sep(&mut s, &mut clauses);
            s.push_str("skipped ");
            write_skipped_runs(&mut s, &rec.skipped);
        }
        for (date, name) in &rec.makeup {
            sep(&mut s, &mut clauses);
            let _ = write!(s, "{date} is a make-up working day ({name})");
        }
        let local_end = self.tz.to_datetime(out.at);
        sep(&mut s, &mut clauses);
        match duration {
            Duration::WorkingDays(_) => {
                let _ = write!(
                    s,
                    "ends at end of business {} {tz} ({})",
                    fmt_local(local_end),
                    out.at
                );
            }
            Duration::CalendarDays(_) => {
                let day = out.last_day.map(|d| d.to_string()).unwrap_or_default();
                let _ = write!(s, "ends at 24:00 on {day} {tz} ({})", out.at);
            }
            _ => {
                let _ = write!(s, "ends {} {tz} ({})", fmt_local(local_end), out.at);
            }
        }
        s
    }
}

/// What a computation found, beyond the recorded days, for the explanation.
struct Outcome {
    at: Timestamp,
    /// Working-hour clocks: the first instant that counted.
    began: Option<Timestamp>,
    /// The day the deadline falls on.
    last_day: Option<civil::Date>,
    /// Calendar days: the Nth day before any move off a holiday.
    nominal_day: Option<civil::Date>,
}

/// Observer of the day stepping; the no-op one makes the fast path free of
/// allocation after monomorphisation.
trait Trace {
    /// `holiday` is `None` for a weekend.
    fn skipped(&mut self, date: civil::Date, holiday: Option<&Arc<str>>);
    fn makeup(&mut self, date: civil::Date, name: &Arc<str>);
}

struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn skipped(&mut self, _: civil::Date, _: Option<&Arc<str>>) {}
    #[inline(always)]
    fn makeup(&mut self, _: civil::Date, _: &Arc<str>) {}
}

#[derive(Default)]
struct Record {
    skipped: Vec<(civil::Date, SkipReason)>,
    makeup: Vec<(civil::Date, Arc<str>)>,
}

impl Trace for Record {
    fn skipped(&mut self, date: civil::Date, holiday: Option<&Arc<str>>) {
        let reason = match holiday {
            Some(name) => SkipReason::Holiday(Arc::clone(name)),
            None => SkipReason::Weekend,
        };
        self.skipped.push((date, reason));
    }

    fn makeup(&mut self, date: civil::Date, name: &Arc<str>) {
        self.makeup.push((date, Arc::clone(name)));
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn read_small(path: &Path) -> Result<String, CalendarError> {
    let io = |message: String| CalendarError::Io {
        path: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(io(format!(
            "file is {} bytes, more than the {MAX_FILE_BYTES} a calendar file may have",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| io(e.to_string()))
}

/// Parses one weekday's `["09:00-12:00", …]`: sorted, overlap rejected,
/// touching intervals merged (so "end of business" is unambiguous).
fn parse_day_hours(list: &[String]) -> Result<Box<[Interval]>, String> {
    let mut out: Vec<Interval> = Vec::with_capacity(list.len());
    for s in list {
        out.push(parse_interval(s)?);
    }
    out.sort_by_key(|iv| iv.start);
    let mut merged: Vec<Interval> = Vec::with_capacity(out.len());
    for iv in out {
        match merged.last_mut() {
            Some(prev) if iv.start < prev.end => {
                return Err(format!(
                    "intervals {} and {} overlap",
                    fmt_interval(*prev),
                    fmt_interval(iv)
                ));
            }
            Some(prev) if iv.start == prev.end => prev.end = iv.end,
            _ => merged.push(iv),
        }
    }
    Ok(merged.into_boxed_slice())
}

fn parse_interval(s: &str) -> Result<Interval, String> {
    let bad = || format!("{s:?} is not an interval HH:MM-HH:MM (e.g. \"09:00-12:00\")");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = parse_hhmm(a.trim()).ok_or_else(bad)?;
    let end = parse_hhmm(b.trim()).ok_or_else(bad)?;
    if start >= DAY_MINUTES {
        return Err(format!("{s:?}: an interval cannot start at 24:00"));
    }
    if end <= start {
        return Err(format!("{s:?}: the end must be after the start"));
    }
    Ok(Interval { start, end })
}

/// `HH:MM` with 00:00..=24:00, as minutes since midnight.
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if !(1..=2).contains(&h.len())
        || m.len() != 2
        || !h.bytes().all(|b| b.is_ascii_digit())
        || !m.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (0..=23, 0..=59) | (24, 0) => Some(h * 60 + m),
        _ => None,
    }
}

fn fmt_interval(iv: Interval) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        iv.start / 60,
        iv.start % 60,
        iv.end / 60,
        iv.end % 60
    )
}

/// Strict `YYYY-MM-DD` (jiff's parser also accepts other ISO 8601 forms,
/// which have no place in a hand-edited holiday list).
fn parse_date(s: &str) -> Option<civil::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i16> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let y = num(0..4)?;
    let m = i8::try_from(num(5..7)?).ok()?;
    let d = i8::try_from(num(8..10)?).ok()?;
    civil::Date::new(y, m, d).ok()
}

/// The `idx`th day (0-based) of the year starting at `first`, for messages.
fn nth_day(first: civil::Date, idx: usize) -> String {
    i16::try_from(idx)
        .ok()
        .and_then(|i| first.with().day_of_year(i + 1).build().ok())
        .map_or_else(|| format!("day {}", idx + 1), |d| d.to_string())
}

fn next_day(date: civil::Date) -> Result<civil::Date, CalendarError> {
    date.tomorrow()
        .map_err(|e| out_of_range(format!("day after {date}: {e}")))
}

fn from_odt(t: OffsetDateTime) -> Result<Timestamp, CalendarError> {
    let nanos = i32::try_from(t.nanosecond()).map_err(out_of_range)?;
    Timestamp::new(t.unix_timestamp(), nanos).map_err(|e| out_of_range(format!("{t}: {e}")))
}

fn to_odt(t: Timestamp) -> Result<OffsetDateTime, CalendarError> {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .map_err(|e| out_of_range(format!("{t}: {e}")))
}

fn to_civil(d: time::Date) -> Result<civil::Date, CalendarError> {
    let y = i16::try_from(d.year()).map_err(|_| out_of_range(d))?;
    let m = i8::try_from(u8::from(d.month())).map_err(|_| out_of_range(d))?;
    let day = i8::try_from(d.day()).map_err(|_| out_of_range(d))?;
    civil::Date::new(y, m, day).map_err(|e| out_of_range(format!("{d}: {e}")))
}

fn to_time_date(d: civil::Date) -> Result<time::Date, CalendarError> {
    let month = u8::try_from(d.month())
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(|| out_of_range(d))?;
    let day = u8::try_from(d.day()).map_err(|_| out_of_range(d))?;
    time::Date::from_calendar_date(i32::from(d.year()), month, day)
        .map_err(|e| out_of_range(format!("{d}: {e}")))
}

fn weekday_name(date: civil::Date) -> &'static str {
    match date.weekday() {
        civil::Weekday::Monday => "Monday",
        civil::Weekday::Tuesday => "Tuesday",
        civil::Weekday::Wednesday => "Wednesday",
        civil::Weekday::Thursday => "Thursday",
        civil::Weekday::Friday => "Friday",
        civil::Weekday::Saturday => "Saturday",
        civil::Weekday::Sunday => "Sunday",
    }
}

/// `2026-02-27 17:30` (seconds only when present).
fn fmt_local(dt: civil::DateTime) -> String {
    if dt.second() == 0 && dt.subsec_nanosecond() == 0 {
        format!("{} {:02}:{:02}", dt.date(), dt.hour(), dt.minute())
    } else {
        format!(
            "{} {:02}:{:02}:{:02}",
            dt.date(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }
}

fn words(d: Duration) -> String {
    let (n, unit) = match d {
        Duration::Hours(n) => (n, "hour"),
        Duration::Minutes(n) => (n, "minute"),
        Duration::Seconds(n) => (n, "second"),
        Duration::WorkingHours(n) => (n, "working hour"),
        Duration::WorkingDays(n) => (n, "working day"),
        Duration::CalendarDays(n) => (n, "calendar day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Writes skipped days as runs of consecutive days with the same reason:
/// `2026-02-15..23 春节, 2026-02-28..03-01 weekend`.
fn write_skipped_runs(s: &mut String, days: &[(civil::Date, SkipReason)]) {
    let mut i = 0;
    let mut first = true;
    while let Some((start, reason)) = days.get(i) {
        let mut j = i;
        while let (Some((a, _)), Some((b, rb))) = (days.get(j), days.get(j + 1)) {
            if rb == reason && a.tomorrow().ok() == Some(*b) {
                j += 1;
            } else {
                break;
            }
        }
        let end = days.get(j).map_or(*start, |(d, _)| *d);
        if !first {
            s.push_str(", ");
        }
        first = false;
        let _ = write!(s, "{start}");
        if end != *start {
            if end.year() != start.year() {
                let _ = write!(s, "..{end}");
            } else if end.month() != start.month() {
                let _ = write!(s, "..{:02}-{:02}", end.month(), end.day());
            } else {
                let _ = write!(s, "..{:02}", end.day());
            }
        }
        match reason {
            SkipReason::Weekend => s.push_str(" weekend"),
            SkipReason::Holiday(name) => {
                let _ = write!(s, " {name}");
            }
        }
        i = j + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        for (s, d) in [
            ("24h", Duration::Hours(24)),
            ("30m", Duration::Minutes(30)),
            ("4wh", Duration::WorkingHours(4)),
            ("5wd", Duration::WorkingDays(5)),
            ("15d", Duration::CalendarDays(15)),
            (" 5wd ", Duration::WorkingDays(5)),
        ] {
            assert_eq!(s.parse::<Duration>(), Ok(d), "{s}");
            assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
        }
        for bad in [
            "",
            "5",
            "wd",
            "5x",
            "5 wd",
            "-5wd",
            "+5wd",
            "5.5h",
            "0wd",
            "5WD",
            "5w",
            "5hh",
            "99999999999h",
            "５wd",
        ] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn duration_deserializes_from_a_string() {
        #[derive(Deserialize)]
        struct T {
            d: Duration,
        }
        let t: T = toml::from_str("d = \"3wd\"").unwrap();
        assert_eq!(t.d, Duration::WorkingDays(3));
        assert!(toml::from_str::<T>("d = \"3q\"").is_err());
    }

    #[test]
    fn intervals_parse_sort_merge_and_reject_overlap() {
        let h = parse_day_hours(&["13:30-17:30".into(), "09:00-12:00".into()]).unwrap();
        assert_eq!(
            &*h,
            &[
                Interval {
                    start: 540,
                    end: 720
                },
                Interval {
                    start: 810,
                    end: 1050
                }
            ]
        );
        let h = parse_day_hours(&["09:00-12:00".into(), "12:00-13:00".into()]).unwrap();
        assert_eq!(
            &*h,
            &[Interval {
                start: 540,
                end: 780
            }]
        );
        assert!(parse_day_hours(&["09:00-12:00".into(), "11:00-13:00".into()]).is_err());
        assert_eq!(parse_interval("22:00-24:00").map(|i| i.end), Ok(1440));
        for bad in [
            "9-12",
            "09:00",
            "09:00-25:00",
            "12:00-09:00",
            "09:00-09:00",
            "24:00-24:00",
            "09:60-10:00",
            "0900-1000",
            "a:00-10:00",
            "24:01-24:00",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("2026-02-15"), civil::Date::new(2026, 2, 15).ok());
        for bad in [
            "2026-2-15",
            "20260215",
            "2026-02-30",
            "2026/02/15",
            "+026-02-15",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn skipped_runs_group_consecutive_days() {
        let d = |m, day| civil::Date::new(2026, m, day).unwrap();
        let sf: Arc<str> = Arc::from("春节");
        let days = vec![
            (d(1, 31), SkipReason::Weekend),
            (d(2, 1), SkipReason::Weekend),
            (d(2, 15), SkipReason::Holiday(sf.clone())),
            (d(2, 16), SkipReason::Holiday(sf.clone())),
            (d(2, 17), SkipReason::Holiday(sf)),
            (d(2, 21), SkipReason::Weekend),
        ];
        let mut s = String::new();
        write_skipped_runs(&mut s, &days);
        assert_eq!(
            s,
            "2026-01-31..02-01 weekend, 2026-02-15..17 春节, 2026-02-21 weekend"
        );
    }
}
