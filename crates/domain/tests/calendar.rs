//! Working-day calendars and deadlines against the real data in
//! `policies/calendars/` (cn 2025–2026 with 调休, uk 2025–2026 with DST).
//!
//! Every expected deadline is computed by hand in the comment above it;
//! China Standard Time is UTC+8 all year, London is GMT (UTC+0) until the
//! last Sunday of March and BST (UTC+1) until the last Sunday of October.

use std::path::{Path, PathBuf};

use time::macros::{date, datetime};
use time::{OffsetDateTime, UtcOffset};
use tousu_domain::calendar::{Calendar, CalendarError, Duration, SkipReason, Skipped};

fn calendars_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/calendars")
}

fn cn() -> Calendar {
    Calendar::load(&calendars_dir(), "cn").expect("cn calendar loads")
}

fn uk() -> Calendar {
    Calendar::load(&calendars_dir(), "uk").expect("uk calendar loads")
}

fn d(s: &str) -> Duration {
    s.parse().expect("valid duration")
}

/// Deadline via both paths; they must agree, and the result is UTC.
fn deadline(cal: &Calendar, start: OffsetDateTime, dur: &str) -> tousu_domain::calendar::Deadline {
    let dl = cal.deadline(start, &d(dur)).expect("deadline");
    assert_eq!(
        cal.deadline_at(start, &d(dur)).expect("deadline_at"),
        dl.at,
        "fast path and explained path disagree"
    );
    assert_eq!(dl.at.offset(), UtcOffset::UTC, "deadlines are UTC instants");
    dl
}

fn skipped_dates(dl: &tousu_domain::calendar::Deadline) -> Vec<time::Date> {
    dl.skipped.iter().map(|s| s.date).collect()
}

fn holiday(name: &str) -> SkipReason {
    SkipReason::Holiday(name.into())
}

// ---------------------------------------------------------------------------
// Data sanity
// ---------------------------------------------------------------------------

#[test]
fn real_calendars_load_with_their_years_and_sources() {
    let cn = cn();
    assert_eq!(cn.name(), "cn");
    assert_eq!(cn.time_zone(), "Asia/Shanghai");
    assert_eq!(cn.years().collect::<Vec<_>>(), vec![2025, 2026]);
    assert!(cn.source(2026).unwrap().contains("2026年部分节假日安排"));
    assert!(cn.source(2025).unwrap().contains("国办发明电〔2024〕12号"));
    let uk = uk();
    assert_eq!(uk.time_zone(), "Europe/London");
    assert_eq!(uk.years().collect::<Vec<_>>(), vec![2025, 2026]);
}

fn working_days_in(cal: &Calendar, year: i32) -> usize {
    let mut day = time::Date::from_calendar_date(year, time::Month::January, 1).unwrap();
    let mut n = 0;
    while day.year() == year {
        if cal.is_working_day(day).unwrap() {
            n += 1;
        }
        day = day.next_day().unwrap();
    }
    n
}

#[test]
fn cn_working_day_totals_match_the_notices() {
    // 2025: 261 weekdays; holidays on weekdays: 元旦 1, 春节 6 (1/28–31, 2/3–4),
    // 清明 1 (4/4), 劳动 3 (5/1, 5/2, 5/5), 端午 1 (6/2), 国庆中秋 6
    // (10/1–3, 10/6–8) = 18; make-up days 5 → 261 − 18 + 5 = 248.
    assert_eq!(working_days_in(&cn(), 2025), 248);
    // 2026: 261 weekdays; 元旦 2 (1/1–2), 春节 6 (2/16–20, 2/23), 清明 1
    // (4/6), 劳动 3 (5/1, 5/4, 5/5), 端午 1 (6/19), 中秋 1 (9/25), 国庆 5
    // (10/1–2, 10/5–7) = 19; make-up days 6 → 261 − 19 + 6 = 248.
    assert_eq!(working_days_in(&cn(), 2026), 248);
}

#[test]
fn uk_working_day_totals() {
    // 261 weekdays, all 8 bank holidays fall on weekdays in both years.
    assert_eq!(working_days_in(&uk(), 2025), 253);
    assert_eq!(working_days_in(&uk(), 2026), 253);
}

#[test]
fn cn_is_working_day_with_make_up_days() {
    let cn = cn();
    for (day, working) in [
        (date!(2026 - 02 - 13), true),  // Friday before 春节
        (date!(2026 - 02 - 14), true),  // Saturday, 春节调休
        (date!(2026 - 02 - 15), false), // Sunday, 春节
        (date!(2026 - 02 - 16), false), // Monday, 春节
        (date!(2026 - 02 - 23), false), // Monday, last day of 春节
        (date!(2026 - 02 - 24), true),  // Tuesday, back to work
        (date!(2026 - 02 - 28), true),  // Saturday, 春节调休
        (date!(2026 - 03 - 01), false), // Sunday
        (date!(2026 - 01 - 04), true),  // Sunday, 元旦调休
        (date!(2025 - 09 - 28), true),  // Sunday, 国庆节调休
        (date!(2025 - 10 - 08), false), // Wednesday, 国庆节、中秋节
        (date!(2025 - 10 - 11), true),  // Saturday, 国庆节调休
        (date!(2026 - 09 - 20), true),  // Sunday, 国庆节调休
        (date!(2026 - 10 - 10), true),  // Saturday, 国庆节调休
        (date!(2026 - 03 - 07), false), // plain Saturday
    ] {
        assert_eq!(cn.is_working_day(day), Ok(working), "{day}");
    }
}

#[test]
fn working_intervals_are_utc_and_make_up_days_use_mondays_hours() {
    let cn = cn();
    // 2026-02-14 (Saturday, 春节调休) works Monday's hours 09:00–12:00 and
    // 13:30–17:30 CST = 01:00–04:00Z and 05:30–09:30Z.
    assert_eq!(
        cn.working_intervals(date!(2026 - 02 - 14)).unwrap(),
        vec![
            (
                datetime!(2026-02-14 01:00 UTC),
                datetime!(2026-02-14 04:00 UTC)
            ),
            (
                datetime!(2026-02-14 05:30 UTC),
                datetime!(2026-02-14 09:30 UTC)
            ),
        ]
    );
    assert_eq!(cn.working_intervals(date!(2026 - 02 - 16)).unwrap(), vec![]);
    // London: 09:00–17:00 GMT on 2026-03-27 (UTC+0), BST on 2026-03-30 (UTC+1).
    let uk = uk();
    assert_eq!(
        uk.working_intervals(date!(2026 - 03 - 27)).unwrap(),
        vec![(
            datetime!(2026-03-27 09:00 UTC),
            datetime!(2026-03-27 17:00 UTC)
        )]
    );
    assert_eq!(
        uk.working_intervals(date!(2026 - 03 - 30)).unwrap(),
        vec![(
            datetime!(2026-03-30 08:00 UTC),
            datetime!(2026-03-30 16:00 UTC)
        )]
    );
}

// ---------------------------------------------------------------------------
// Working days: Spring Festival 2026
// ---------------------------------------------------------------------------

#[test]
fn five_working_days_across_spring_festival_2026() {
    // Received Friday 2026-02-13 10:00 CST; receipt day not counted.
    // 2/14 Sat 调休 = WD1; 2/15–2/23 春节 skipped (9 days); 2/24 WD2,
    // 2/25 WD3, 2/26 WD4, 2/27 Fri WD5 → 17:30 CST = 09:30Z.
    let dl = deadline(&cn(), datetime!(2026-02-13 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-02-27 09:30 UTC));
    let expected: Vec<Skipped> = (15..=23)
        .map(|day| Skipped {
            date: time::Date::from_calendar_date(2026, time::Month::February, day).unwrap(),
            reason: holiday("春节"),
        })
        .collect();
    assert_eq!(dl.skipped, expected);
    assert_eq!(dl.makeup_days.len(), 1);
    assert_eq!(dl.makeup_days[0].date, date!(2026 - 02 - 14));
    assert_eq!(&*dl.makeup_days[0].name, "春节调休");
    assert_eq!(
        dl.explanation,
        "5 working days from 2026-02-13 (day of receipt not counted): skipped 2026-02-15..23 春节; \
         2026-02-14 is a make-up working day (春节调休); ends at end of business 2026-02-27 17:30 \
         Asia/Shanghai (2026-02-27T09:30:00Z)"
    );
}

#[test]
fn received_on_a_make_up_saturday() {
    // Received Saturday 2026-02-14 11:00 (a 调休 working day, not counted
    // as the day of receipt). 2/15–23 春节; 2/24 WD1, 2/25 WD2, 2/26 WD3,
    // 2/27 WD4, 2/28 Sat 调休 WD5 → 17:30 CST = 09:30Z.
    let dl = deadline(&cn(), datetime!(2026-02-14 11:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-02-28 09:30 UTC));
    assert_eq!(dl.skipped.len(), 9);
    assert_eq!(
        dl.makeup_days.iter().map(|m| m.date).collect::<Vec<_>>(),
        vec![date!(2026 - 02 - 28)]
    );
}

#[test]
fn received_on_the_last_spring_festival_day() {
    // Received Monday 2026-02-23 15:00 (last day of 春节).
    // 2/24 WD1, 2/25 WD2, 2/26 WD3, 2/27 WD4, 2/28 Sat 调休 WD5 → 09:30Z.
    let dl = deadline(&cn(), datetime!(2026-02-23 15:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-02-28 09:30 UTC));
    assert!(dl.skipped.is_empty());
    // 10 WD: … 2/28 WD5, 3/1 Sun skipped, 3/2 WD6 … 3/6 Fri WD10 → 09:30Z.
    let dl = deadline(&cn(), datetime!(2026-02-23 15:00 +8), "10wd");
    assert_eq!(dl.at, datetime!(2026-03-06 09:30 UTC));
    assert_eq!(skipped_dates(&dl), vec![date!(2026 - 03 - 01)]);
    assert_eq!(dl.skipped[0].reason, SkipReason::Weekend);
}

#[test]
fn received_during_spring_festival() {
    // Received 2026-02-18 (Wednesday, 春节) 09:00; 2/19–2/23 skipped;
    // 2/24 WD1 … 2/27 WD4, 2/28 调休 WD5.
    let dl = deadline(&cn(), datetime!(2026-02-18 09:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-02-28 09:30 UTC));
    assert_eq!(dl.skipped.len(), 5);
}

#[test]
fn one_working_day_from_friday_before_spring_festival() {
    // Received Friday 2026-02-13 18:00: WD1 is the 调休 Saturday 2/14.
    let dl = deadline(&cn(), datetime!(2026-02-13 18:00 +8), "1wd");
    assert_eq!(dl.at, datetime!(2026-02-14 09:30 UTC));
}

// ---------------------------------------------------------------------------
// Working days: National Day 2025 and 2026
// ---------------------------------------------------------------------------

#[test]
fn five_working_days_across_national_day_2025() {
    // Received Friday 2025-09-26 16:00. 9/27 Sat skipped (weekend);
    // 9/28 Sun 调休 WD1; 9/29 WD2; 9/30 WD3; 10/1–10/8 国庆节、中秋节 skipped;
    // 10/9 Thu WD4; 10/10 Fri WD5 → 17:30 CST = 09:30Z.
    let dl = deadline(&cn(), datetime!(2025-09-26 16:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2025-10-10 09:30 UTC));
    let mut expected = vec![Skipped {
        date: date!(2025 - 09 - 27),
        reason: SkipReason::Weekend,
    }];
    for day in 1..=8 {
        expected.push(Skipped {
            date: time::Date::from_calendar_date(2025, time::Month::October, day).unwrap(),
            reason: holiday("国庆节、中秋节"),
        });
    }
    assert_eq!(dl.skipped, expected);
    assert_eq!(
        dl.makeup_days.iter().map(|m| m.date).collect::<Vec<_>>(),
        vec![date!(2025 - 09 - 28)]
    );
    assert!(
        dl.explanation.contains(
            "skipped 2025-09-27 weekend, 2025-10-01..08 国庆节、中秋节; 2025-09-28 is a make-up \
             working day (国庆节调休)"
        ),
        "{}",
        dl.explanation
    );
}

#[test]
fn national_day_2025_make_up_saturday_after_the_holiday() {
    // Received Tuesday 2025-09-30 10:00. 10/1–8 skipped; 10/9 WD1; 10/10
    // WD2; 10/11 Sat 调休 WD3; 10/12 Sun skipped; 10/13 WD4; 10/14 WD5.
    let dl = deadline(&cn(), datetime!(2025-09-30 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2025-10-14 09:30 UTC));
    assert_eq!(dl.skipped.len(), 9);
    assert_eq!(dl.skipped[8].date, date!(2025 - 10 - 12));
    // Received on the last holiday day 10/8: 10/9 WD1, 10/10 WD2, 10/11 Sat WD3.
    let dl = deadline(&cn(), datetime!(2025-10-08 20:00 +8), "3wd");
    assert_eq!(dl.at, datetime!(2025-10-11 09:30 UTC));
    assert!(dl.skipped.is_empty());
    // Received on the 调休 Sunday 9/28: 9/29 WD1, 9/30 WD2, then 10/9 WD3.
    assert_eq!(
        deadline(&cn(), datetime!(2025-09-28 15:00 +8), "2wd").at,
        datetime!(2025-09-30 09:30 UTC)
    );
    assert_eq!(
        deadline(&cn(), datetime!(2025-09-28 15:00 +8), "3wd").at,
        datetime!(2025-10-09 09:30 UTC)
    );
}

#[test]
fn five_working_days_across_mid_autumn_and_national_day_2026() {
    // Received Friday 2026-09-18 10:00. 9/19 Sat skipped; 9/20 Sun 调休
    // WD1; 9/21 WD2; 9/22 WD3; 9/23 WD4; 9/24 Thu WD5 → 09:30Z.
    let dl = deadline(&cn(), datetime!(2026-09-18 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-09-24 09:30 UTC));
    assert_eq!(skipped_dates(&dl), vec![date!(2026 - 09 - 19)]);
    // Received Thursday 2026-09-24. 9/25–27 中秋节 skipped; 9/28 WD1; 9/29
    // WD2; 9/30 WD3; 10/1–7 国庆节 skipped; 10/8 WD4; 10/9 Fri WD5.
    let dl = deadline(&cn(), datetime!(2026-09-24 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-10-09 09:30 UTC));
    assert_eq!(dl.skipped.len(), 3 + 7);
    assert_eq!(dl.skipped[0].reason, holiday("中秋节"));
    assert_eq!(dl.skipped[3].reason, holiday("国庆节"));
    assert!(dl.makeup_days.is_empty());
    // Received Wednesday 2026-09-30. 10/1–7 skipped; 10/8 WD1; 10/9 WD2;
    // 10/10 Sat 调休 WD3; 10/11 Sun skipped; 10/12 WD4; 10/13 WD5.
    let dl = deadline(&cn(), datetime!(2026-09-30 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-10-13 09:30 UTC));
    assert_eq!(
        dl.makeup_days.iter().map(|m| m.date).collect::<Vec<_>>(),
        vec![date!(2026 - 10 - 10)]
    );
    // Received on the last holiday day 10/7: 10/8, 10/9, 10/10 (Sat 调休).
    assert_eq!(
        deadline(&cn(), datetime!(2026-10-07 12:00 +8), "3wd").at,
        datetime!(2026-10-10 09:30 UTC)
    );
}

#[test]
fn labour_day_2026_make_up_saturday() {
    // Received Thursday 2026-04-30. 5/1–5 劳动节 skipped; 5/6 WD1, 5/7 WD2,
    // 5/8 WD3, 5/9 Sat 调休 WD4, 5/10 Sun skipped, 5/11 WD5.
    let dl = deadline(&cn(), datetime!(2026-04-30 09:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-05-11 09:30 UTC));
}

// ---------------------------------------------------------------------------
// Year boundary
// ---------------------------------------------------------------------------

#[test]
fn working_days_across_new_year_2026() {
    // Received Tuesday 2025-12-30 10:00. 12/31 WD1; 1/1–1/3 元旦 skipped;
    // 1/4 Sun 调休 WD2; 1/5 WD3; 1/6 WD4; 1/7 Wed WD5 → 09:30Z.
    let dl = deadline(&cn(), datetime!(2025-12-30 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2026-01-07 09:30 UTC));
    assert_eq!(
        skipped_dates(&dl),
        vec![
            date!(2026 - 01 - 01),
            date!(2026 - 01 - 02),
            date!(2026 - 01 - 03)
        ]
    );
    assert_eq!(dl.makeup_days[0].date, date!(2026 - 01 - 04));
    assert!(
        dl.explanation.contains("2026-01-01..03 元旦"),
        "{}",
        dl.explanation
    );
}

#[test]
fn day_of_receipt_is_the_local_date_not_the_utc_date() {
    // 2025-12-30T17:00Z is 2025-12-31 01:00 CST: the day of receipt is
    // 12/31 (in UTC it would still be 12/30). 1/1–3 skipped; 1/4 WD1, 1/5
    // WD2, 1/6 WD3, 1/7 WD4, 1/8 WD5 → 2026-01-08 09:30Z.
    assert_eq!(
        deadline(&cn(), datetime!(2025-12-30 17:00 UTC), "5wd").at,
        datetime!(2026-01-08 09:30 UTC)
    );
    // One minute before CST midnight it is still 12/30 locally → 1/7.
    assert_eq!(
        deadline(&cn(), datetime!(2025-12-30 15:59 UTC), "5wd").at,
        datetime!(2026-01-07 09:30 UTC)
    );
}

#[test]
fn spring_festival_2025() {
    // Received Friday 2025-01-24. 1/25 Sat skipped; 1/26 Sun 调休 WD1; 1/27
    // WD2; 1/28–2/4 春节 skipped; 2/5 WD3; 2/6 WD4; 2/7 Fri WD5.
    let dl = deadline(&cn(), datetime!(2025-01-24 10:00 +8), "5wd");
    assert_eq!(dl.at, datetime!(2025-02-07 09:30 UTC));
    // 6 WD: 2/8 Sat 调休.
    assert_eq!(
        deadline(&cn(), datetime!(2025-01-24 10:00 +8), "6wd").at,
        datetime!(2025-02-08 09:30 UTC)
    );
}

// ---------------------------------------------------------------------------
// Working hours
// ---------------------------------------------------------------------------

#[test]
fn working_hours_across_lunch() {
    // Monday 2026-03-02 10:00: 10:00–12:00 = 2 h, 13:30–15:30 = 2 h → 15:30 CST.
    let dl = deadline(&cn(), datetime!(2026-03-02 10:00 +8), "4wh");
    assert_eq!(dl.at, datetime!(2026-03-02 15:30 +8));
    assert!(dl.skipped.is_empty());
    // Starting in the lunch break (12:30) the clock starts at 13:30 → 15:30.
    let dl = deadline(&cn(), datetime!(2026-03-02 12:30 +8), "2wh");
    assert_eq!(dl.at, datetime!(2026-03-02 15:30 +8));
    assert!(
        dl.explanation.contains("clock starts at 2026-03-02 13:30"),
        "{}",
        dl.explanation
    );
}

#[test]
fn working_hours_across_the_night() {
    // Monday 2026-03-02 16:00: 16:00–17:30 = 1.5 h; Tuesday 09:00–11:30 = 2.5 h.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-02 16:00 +8), "4wh").at,
        datetime!(2026-03-03 11:30 +8)
    );
    // Received 20:00: next day 09:00 + 4 h = 09:00–12:00 (3 h) + 13:30–14:30.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-02 20:00 +8), "4wh").at,
        datetime!(2026-03-03 14:30 +8)
    );
}

#[test]
fn working_hours_from_friday_five_pm() {
    // Friday 2026-03-06 17:00: 17:00–17:30 = 0.5 h; Sat 3/7 and Sun 3/8
    // skipped; Monday 09:00–12:00 = 3 h (3.5 h), 13:30–14:00 → 14:00 CST.
    let dl = deadline(&cn(), datetime!(2026-03-06 17:00 +8), "4wh");
    assert_eq!(dl.at, datetime!(2026-03-09 14:00 +8));
    assert_eq!(
        skipped_dates(&dl),
        vec![date!(2026 - 03 - 07), date!(2026 - 03 - 08)]
    );
    assert!(
        dl.explanation
            .contains("skipped 2026-03-07..08 weekend; ends 2026-03-09 14:00 Asia/Shanghai"),
        "{}",
        dl.explanation
    );
    // Exactly at close (17:30) counts nothing on Friday: Monday 09:00 + 4 h.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-06 17:30 +8), "4wh").at,
        datetime!(2026-03-09 14:30 +8)
    );
}

#[test]
fn working_hours_ending_exactly_at_close_stay_there() {
    // Monday 13:30 + 4 wh = 17:30 the same day, not Tuesday 09:00.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-02 13:30 +8), "4wh").at,
        datetime!(2026-03-02 17:30 +8)
    );
    // 7 wh from 09:00 is exactly one full day.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-02 09:00 +8), "7wh").at,
        datetime!(2026-03-02 17:30 +8)
    );
}

#[test]
fn working_hours_received_during_a_holiday() {
    // Wednesday 2026-02-18 10:00 (春节): 2/18–2/23 skipped (6 days);
    // Tuesday 2/24 09:00–12:00 = 3 h, 13:30–14:30 → 14:30 CST.
    let dl = deadline(&cn(), datetime!(2026-02-18 10:00 +8), "4wh");
    assert_eq!(dl.at, datetime!(2026-02-24 14:30 +8));
    assert_eq!(dl.skipped.len(), 6);
    assert!(dl.skipped.iter().all(|s| s.reason == holiday("春节")));
    assert!(
        dl.explanation.contains("clock starts at 2026-02-24 09:00"),
        "{}",
        dl.explanation
    );
}

#[test]
fn working_hours_run_into_a_make_up_saturday() {
    // Friday 2026-02-13 16:00: 1.5 h Friday; Saturday 2/14 (调休) 09:00–11:30.
    let dl = deadline(&cn(), datetime!(2026-02-13 16:00 +8), "4wh");
    assert_eq!(dl.at, datetime!(2026-02-14 11:30 +8));
    assert_eq!(dl.makeup_days.len(), 1);
    // 16 wh from Friday 16:00: Fri 1.5 + Sat 7 (8.5); then 2/15–23 skipped;
    // Tue 2/24 09:00–12:00 (11.5), 13:30–17:30 (15.5); Wed 09:00–09:30.
    let dl = deadline(&cn(), datetime!(2026-02-13 16:00 +8), "16wh");
    assert_eq!(dl.at, datetime!(2026-02-25 09:30 +8));
    assert_eq!(dl.skipped.len(), 9);
}

// ---------------------------------------------------------------------------
// Calendar days
// ---------------------------------------------------------------------------

#[test]
fn calendar_days_ending_on_national_day_move_to_the_next_working_day() {
    // Received 2026-09-16; day 15 is 10/1 (国庆节) → 10/2–10/7 also holiday
    // → 10/8 (Thursday) is the next working day → 24:00 CST 10/8 = 16:00Z.
    let dl = deadline(&cn(), datetime!(2026-09-16 11:00 +8), "15d");
    assert_eq!(dl.at, datetime!(2026-10-08 16:00 UTC));
    assert_eq!(dl.skipped.len(), 7);
    assert_eq!(dl.skipped[0].date, date!(2026 - 10 - 01));
    assert_eq!(
        dl.explanation,
        "15 calendar days from 2026-09-16 (day of receipt not counted): day 15 is 2026-10-01, a \
         holiday (国庆节), so the deadline moves to the next working day 2026-10-08; skipped \
         2026-10-01..07 国庆节; ends at 24:00 on 2026-10-08 Asia/Shanghai (2026-10-08T16:00:00Z)"
    );
}

#[test]
fn calendar_days_ending_in_spring_festival() {
    // Received Sunday 2026-02-08; day 7 is 2/15 (春节) → 2/24 → 16:00Z.
    assert_eq!(
        deadline(&cn(), datetime!(2026-02-08 10:00 +8), "7d").at,
        datetime!(2026-02-24 16:00 UTC)
    );
    // Received Saturday 2026-02-07; day 7 is 2/14, the 调休 Saturday: a
    // working day, so no move → 24:00 2/14.
    let dl = deadline(&cn(), datetime!(2026-02-07 10:00 +8), "7d");
    assert_eq!(dl.at, datetime!(2026-02-14 16:00 UTC));
    assert!(dl.skipped.is_empty());
}

#[test]
fn calendar_days_ending_on_a_holiday_then_a_weekend() {
    // 中秋节 2026 is Fri 9/25–Sun 9/27. Received 2026-09-18; day 7 is 9/25
    // → 9/26, 9/27 holiday → Monday 9/28 → 16:00Z.
    assert_eq!(
        deadline(&cn(), datetime!(2026-09-18 10:00 +8), "7d").at,
        datetime!(2026-09-28 16:00 UTC)
    );
    // UK: received 2026-03-27; day 7 is Good Friday 4/3 → Sat 4/4, Sun
    // 4/5 (weekend), Easter Monday 4/6 → Tuesday 4/7, 24:00 BST = 23:00Z.
    let dl = deadline(&uk(), datetime!(2026-03-27 12:00 UTC), "7d");
    assert_eq!(dl.at, datetime!(2026-04-07 23:00 UTC));
    assert_eq!(
        dl.skipped
            .iter()
            .map(|s| s.reason.to_string())
            .collect::<Vec<_>>(),
        vec![
            "holiday: Good Friday",
            "weekend",
            "weekend",
            "holiday: Easter Monday"
        ]
    );
}

#[test]
fn calendar_days_ending_on_a_plain_weekend_do_not_move() {
    // Received Friday 2026-03-06; day 15 is Saturday 3/21: only statutory
    // holidays move the deadline → 24:00 3/21 CST = 16:00Z.
    let dl = deadline(&cn(), datetime!(2026-03-06 10:00 +8), "15d");
    assert_eq!(dl.at, datetime!(2026-03-21 16:00 UTC));
    assert!(dl.skipped.is_empty());
    // Day of receipt not counted: 1d from 2026-03-02 23:59 ends 24:00 3/3.
    assert_eq!(
        deadline(&cn(), datetime!(2026-03-02 23:59 +8), "1d").at,
        datetime!(2026-03-03 16:00 UTC)
    );
}

// ---------------------------------------------------------------------------
// 24×7 clocks
// ---------------------------------------------------------------------------

#[test]
fn hour_and_minute_clocks_ignore_holidays() {
    // 24 h from the 调休 Saturday 10:00 runs into 春节: 2/15 10:00 CST.
    let dl = deadline(&cn(), datetime!(2026-02-14 10:00 +8), "24h");
    assert_eq!(dl.at, datetime!(2026-02-15 02:00 UTC));
    assert!(dl.skipped.is_empty());
    assert_eq!(
        dl.explanation,
        "24 hours from 2026-02-14 10:00 Asia/Shanghai, counted 24×7 (nights, weekends and \
         holidays included): ends 2026-02-15 10:00 Asia/Shanghai (2026-02-15T02:00:00Z)"
    );
    // 30 minutes on National Day.
    assert_eq!(
        deadline(&cn(), datetime!(2026-10-01 03:00 UTC), "30m").at,
        datetime!(2026-10-01 03:30 UTC)
    );
    // Sub-second precision is kept.
    assert_eq!(
        deadline(&cn(), datetime!(2026-10-01 03:00:00.123456789 UTC), "2h").at,
        datetime!(2026-10-01 05:00:00.123456789 UTC)
    );
    // 24×7 clocks need no holiday data at all.
    assert_eq!(
        deadline(&cn(), datetime!(2030-01-01 00:00 UTC), "24h").at,
        datetime!(2030-01-02 00:00 UTC)
    );
}

#[test]
fn hour_clocks_are_real_hours_across_dst() {
    // London springs forward 2026-03-29 01:00Z: 24 h from Saturday 12:00
    // GMT (12:00Z) is 2026-03-29 12:00Z, which is 13:00 BST.
    let dl = deadline(&uk(), datetime!(2026-03-28 12:00 UTC), "24h");
    assert_eq!(dl.at, datetime!(2026-03-29 12:00 UTC));
    assert!(
        dl.explanation
            .contains("ends 2026-03-29 13:00 Europe/London")
    );
}

// ---------------------------------------------------------------------------
// UK: DST and bank holidays
// ---------------------------------------------------------------------------

#[test]
fn uk_working_days_across_the_march_dst_change() {
    // Received Friday 2026-03-27 10:00 GMT. Sat 3/28, Sun 3/29 (clocks go
    // forward) skipped; Monday 3/30 WD1 ends 17:00 BST = 16:00Z.
    let dl = deadline(&uk(), datetime!(2026-03-27 10:00 UTC), "1wd");
    assert_eq!(dl.at, datetime!(2026-03-30 16:00 UTC));
    assert_eq!(dl.skipped.len(), 2);
    assert!(
        dl.explanation
            .contains("ends at end of business 2026-03-30 17:00 Europe/London"),
        "{}",
        dl.explanation
    );
    // 2025: clocks go forward 2025-03-30. Friday 3/28 → Monday 3/31 16:00Z.
    assert_eq!(
        deadline(&uk(), datetime!(2025-03-28 10:00 UTC), "1wd").at,
        datetime!(2025-03-31 16:00 UTC)
    );
}

#[test]
fn uk_working_hours_across_dst_changes() {
    // Friday 2026-03-27 15:00 GMT: 2 h to 17:00 GMT; Monday 3/30 09:00 BST
    // (08:00Z) + 2 h = 11:00 BST = 10:00Z.
    assert_eq!(
        deadline(&uk(), datetime!(2026-03-27 15:00 UTC), "4wh").at,
        datetime!(2026-03-30 10:00 UTC)
    );
    // London falls back 2026-10-25 01:00Z. Friday 10/23 15:00 BST (14:00Z):
    // 2 h to 17:00 BST; Monday 10/26 09:00 GMT + 2 h = 11:00 GMT = 11:00Z.
    assert_eq!(
        deadline(&uk(), datetime!(2026-10-23 14:00 UTC), "4wh").at,
        datetime!(2026-10-26 11:00 UTC)
    );
    // Same in 2025 (falls back 2025-10-26): Fri 10/24 14:00Z → Mon 10/27 11:00Z.
    assert_eq!(
        deadline(&uk(), datetime!(2025-10-24 14:00 UTC), "4wh").at,
        datetime!(2025-10-27 11:00 UTC)
    );
}

#[test]
fn uk_bank_holidays_at_easter_2026() {
    // Received Thursday 2026-04-02 10:00 BST (09:00Z). 4/3 Good Friday, 4/4–5
    // weekend, 4/6 Easter Monday skipped; 4/7 WD1, 4/8 WD2, 4/9 WD3, 4/10
    // WD4; 4/11–12 weekend; 4/13 WD5 → 17:00 BST = 16:00Z.
    let dl = deadline(&uk(), datetime!(2026-04-02 09:00 UTC), "5wd");
    assert_eq!(dl.at, datetime!(2026-04-13 16:00 UTC));
    assert_eq!(
        skipped_dates(&dl),
        vec![
            date!(2026 - 04 - 03),
            date!(2026 - 04 - 04),
            date!(2026 - 04 - 05),
            date!(2026 - 04 - 06),
            date!(2026 - 04 - 11),
            date!(2026 - 04 - 12),
        ]
    );
    assert_eq!(dl.skipped[0].reason.to_string(), "holiday: Good Friday");
    assert_eq!(dl.skipped[1].reason.to_string(), "weekend");
}

#[test]
fn uk_christmas_across_the_year_boundary() {
    // Received Tuesday 2025-12-23. 12/24 WD1; 12/25–26 bank holidays;
    // 12/27–28 weekend; 12/29 WD2; 12/30 WD3 → 17:00 GMT = 17:00Z.
    assert_eq!(
        deadline(&uk(), datetime!(2025-12-23 10:00 UTC), "3wd").at,
        datetime!(2025-12-30 17:00 UTC)
    );
    // 5 WD: 12/31 WD4; 1/1 New Year's Day; 1/2 Fri WD5.
    assert_eq!(
        deadline(&uk(), datetime!(2025-12-23 10:00 UTC), "5wd").at,
        datetime!(2026-01-02 17:00 UTC)
    );
    // 2026: Boxing Day falls on Saturday, substitute Monday 12/28.
    // Received Thursday 12/24: 12/25 holiday, 12/26–27 weekend, 12/28
    // holiday, 12/29 WD1.
    assert_eq!(
        deadline(&uk(), datetime!(2026-12-24 10:00 UTC), "1wd").at,
        datetime!(2026-12-29 17:00 UTC)
    );
}

// ---------------------------------------------------------------------------
// elapsed_working
// ---------------------------------------------------------------------------

#[test]
fn elapsed_working_across_a_weekend_and_lunch() {
    let cn = cn();
    // Friday 2026-03-06 16:00 → Monday 3/9 10:00: 1.5 h + 1 h = 2.5 h.
    assert_eq!(
        cn.elapsed_working(
            datetime!(2026-03-06 16:00 +8),
            datetime!(2026-03-09 10:00 +8)
        ),
        Ok(time::Duration::minutes(150))
    );
    // 11:00 → 14:00 the same day: 1 h + 0.5 h (lunch not counted).
    assert_eq!(
        cn.elapsed_working(
            datetime!(2026-03-02 11:00 +8),
            datetime!(2026-03-02 14:00 +8)
        ),
        Ok(time::Duration::minutes(90))
    );
    // Entirely in the lunch break, or backwards: zero.
    assert_eq!(
        cn.elapsed_working(
            datetime!(2026-03-02 12:10 +8),
            datetime!(2026-03-02 13:20 +8)
        ),
        Ok(time::Duration::ZERO)
    );
    assert_eq!(
        cn.elapsed_working(
            datetime!(2026-03-02 14:00 +8),
            datetime!(2026-03-02 11:00 +8)
        ),
        Ok(time::Duration::ZERO)
    );
    // Across 春节: Friday 2/13 17:00 → Tuesday 2/24 10:00: 0.5 h + Sat 2/14
    // (调休) 7 h + 1 h = 8.5 h.
    assert_eq!(
        cn.elapsed_working(
            datetime!(2026-02-13 17:00 +8),
            datetime!(2026-02-24 10:00 +8)
        ),
        Ok(time::Duration::minutes(510))
    );
    // UK across the spring-forward weekend: Fri 15:00 GMT → Mon 11:00 BST
    // (10:00Z) = 2 h + 2 h.
    assert_eq!(
        uk().elapsed_working(
            datetime!(2026-03-27 15:00 UTC),
            datetime!(2026-03-30 10:00 UTC)
        ),
        Ok(time::Duration::hours(4))
    );
}

// ---------------------------------------------------------------------------
// Invariants over every start in the loaded years
// ---------------------------------------------------------------------------

#[test]
fn working_hour_deadlines_consume_exactly_the_working_time() {
    // For starts every 97 minutes through 2025–2026, elapsed_working(start,
    // deadline(Nwh)) == N hours, and the deadline lies inside (or at the
    // end of) a working interval.
    for cal in [cn(), uk()] {
        let mut start = datetime!(2025-01-01 00:00 UTC);
        let end = datetime!(2026-12-01 00:00 UTC);
        while start < end {
            for n in [1u32, 4, 16] {
                let dur = Duration::WorkingHours(n);
                let at = cal.deadline_at(start, &dur).unwrap();
                assert_eq!(
                    cal.elapsed_working(start, at).unwrap(),
                    time::Duration::hours(i64::from(n)),
                    "{} {start} {dur}",
                    cal.name()
                );
                // Working hours in both calendars lie within one UTC date
                // (cn 01:00–09:30Z, uk 08:00–17:00Z), so the UTC date is the
                // local date.
                let day_intervals = cal.working_intervals(at.date()).unwrap();
                assert!(
                    day_intervals.iter().any(|(s, e)| *s < at && at <= *e),
                    "{} {start} {dur}: {at} is not in working time",
                    cal.name()
                );
            }
            start += time::Duration::minutes(97);
        }
    }
}

#[test]
fn working_day_deadlines_count_exactly_n_working_days() {
    // For every local receipt date through 2025–2026 (until the data runs
    // out, which must be the NoData error), the deadline is the end of the
    // last interval of a working day, and exactly N working days lie in
    // (receipt, deadline day].
    let cn = cn();
    let mut receipt = date!(2025 - 01 - 01);
    while receipt.year() <= 2026 {
        let start = receipt
            .with_hms(10, 0, 0)
            .unwrap()
            .assume_offset(time::macros::offset!(+8));
        for n in [1u32, 3, 5, 10, 15] {
            match cn.deadline(start, &Duration::WorkingDays(n)) {
                Ok(dl) => {
                    let last_day = dl.at.to_offset(time::macros::offset!(+8)).date();
                    let intervals = cn.working_intervals(last_day).unwrap();
                    assert_eq!(Some(dl.at), intervals.last().map(|(_, e)| *e));
                    let mut count = 0;
                    let mut day = receipt.next_day().unwrap();
                    while day <= last_day {
                        if cn.is_working_day(day).unwrap() {
                            count += 1;
                        } else {
                            assert!(dl.skipped.iter().any(|s| s.date == day), "{day} not listed");
                        }
                        day = day.next_day().unwrap();
                    }
                    assert_eq!(count, n, "{receipt} {n}wd");
                }
                Err(e) => {
                    assert_eq!(
                        e,
                        CalendarError::NoData {
                            calendar: "cn".into(),
                            year: 2027
                        }
                    );
                    assert!(receipt >= date!(2026 - 12 - 01), "{receipt} {n}wd: {e}");
                }
            }
        }
        receipt = receipt.next_day().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[test]
fn a_date_without_data_is_an_error_never_a_guess() {
    let cn = cn();
    let err = cn
        .deadline(datetime!(2026-12-28 10:00 +8), &d("5wd"))
        .unwrap_err();
    assert_eq!(err.to_string(), "calendar cn has no data for 2027");
    assert_eq!(
        cn.is_working_day(date!(2027 - 01 - 04))
            .unwrap_err()
            .to_string(),
        "calendar cn has no data for 2027"
    );
    assert_eq!(
        cn.deadline_at(datetime!(2024-06-03 10:00 +8), &d("4wh"))
            .unwrap_err()
            .to_string(),
        "calendar cn has no data for 2024"
    );
    // Calendar days need the data of the day the period ends on.
    assert_eq!(
        cn.deadline(datetime!(2026-12-20 10:00 +8), &d("15d"))
            .unwrap_err()
            .to_string(),
        "calendar cn has no data for 2027"
    );
    assert!(
        cn.elapsed_working(
            datetime!(2026-12-31 10:00 +8),
            datetime!(2027-01-04 10:00 +8)
        )
        .is_err()
    );
}

#[test]
fn unknown_duration_units_are_rejected() {
    let err = "5w".parse::<Duration>().unwrap_err();
    assert!(err.to_string().contains("unknown unit \"w\""), "{err}");
    let err = "5".parse::<Duration>().unwrap_err();
    assert!(err.to_string().contains("missing unit"), "{err}");
    assert!("wd".parse::<Duration>().is_err());
    // Zero built directly (bypassing the parser) is refused, not looped on.
    for zero in [
        Duration::Hours(0),
        Duration::Minutes(0),
        Duration::WorkingHours(0),
        Duration::WorkingDays(0),
        Duration::CalendarDays(0),
    ] {
        let err = cn()
            .deadline(datetime!(2026-03-02 10:00 +8), &zero)
            .unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
    assert!("1.5wd".parse::<Duration>().is_err());
}

const MINI: &str = r#"
name = "t"
time_zone = "Asia/Shanghai"
[hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
"#;

fn mini(year_toml: &str) -> Result<Calendar, CalendarError> {
    Calendar::from_parts(MINI, &[(2026, year_toml)])
}

#[test]
fn from_parts_builds_a_working_calendar() {
    let cal = mini(
        r#"
        holidays = [{ date = "2026-02-16", to = "2026-02-18", name = "X" }]
        workdays = [{ date = "2026-02-14", name = "X调休" }]
        "#,
    )
    .unwrap();
    // Received Friday 2/13: 2/14 Sat make-up (Monday's hours, 09:00-17:00)
    // WD1; 2/15 Sun, 2/16–18 skipped; 2/19 WD2 → 17:00 CST = 09:00Z.
    assert_eq!(
        cal.deadline_at(datetime!(2026-02-13 10:00 +8), &d("2wd")),
        Ok(datetime!(2026-02-19 09:00 UTC))
    );
}

#[test]
fn malformed_calendar_toml_names_the_key() {
    let err = Calendar::from_parts("name = \"t\"\ntime_zone = 5\n[hours]\n", &[]).unwrap_err();
    assert!(matches!(err, CalendarError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("time_zone"), "{err}");

    let err =
        Calendar::from_parts("name = \"t\"\n[hours]\nmon = [\"09:00-17:00\"]\n", &[]).unwrap_err();
    assert!(err.to_string().contains("time_zone"), "{err}");

    let err = Calendar::from_parts(
        "name = \"t\"\ntime_zone = \"UTC\"\n[hours]\nmnd = [\"09:00-17:00\"]\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("mnd"), "{err}");

    let err = Calendar::from_parts(
        "name = \"t\"\ntime_zone = \"UTC\"\n[hours]\nmon = [\"09:00-25:00\"]\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("hours.mon"), "{err}");
    assert!(err.to_string().contains("09:00-25:00"), "{err}");

    let err = Calendar::from_parts(
        "name = \"t\"\ntime_zone = \"Mars/Olympus_Mons\"\n[hours]\nmon = [\"09:00-17:00\"]\n",
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("time_zone = \"Mars/Olympus_Mons\""),
        "{err}"
    );

    let err =
        Calendar::from_parts("name = \"t\"\ntime_zone = \"UTC\"\n[hours]\n", &[]).unwrap_err();
    assert!(err.to_string().contains("no working intervals"), "{err}");

    let err = Calendar::from_parts("name = \"t\"\ntime_zone = \"UTC\"\n[hours\n", &[]).unwrap_err();
    assert!(matches!(err, CalendarError::Parse { .. }), "{err:?}");

    // Year files: a misspelt key and a wrong type, each named.
    let err = mini("holiday = []").unwrap_err();
    assert!(err.to_string().contains("2026.toml"), "{err}");
    assert!(err.to_string().contains("holiday"), "{err}");
    let err = mini("holidays = [{ date = \"2026-01-01\", nme = \"x\" }]").unwrap_err();
    assert!(err.to_string().contains("nme"), "{err}");
    let err = mini("holidays = [{ date = 20260101, name = \"x\" }]").unwrap_err();
    assert!(err.to_string().contains("date = 20260101"), "{err}");
    assert!(
        err.to_string().contains("expected a date \"YYYY-MM-DD\""),
        "{err}"
    );
    // A bare TOML date is accepted (and checked like a string)…
    assert!(mini("holidays = [{ date = 2026-01-01, name = \"x\" }]").is_ok());
    // …but not a date-time.
    let err = mini("holidays = [{ date = 2026-01-01T10:00:00, name = \"x\" }]").unwrap_err();
    assert!(err.to_string().contains("is not a date"), "{err}");
}

#[test]
fn overlapping_holiday_ranges_are_an_error() {
    let err = mini(
        r#"holidays = [
            { date = "2026-10-01", to = "2026-10-07", name = "国庆节" },
            { date = "2026-10-06", name = "中秋节" },
        ]"#,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("overlaps another holiday (国庆节) on 2026-10-06"),
        "{msg}"
    );
    assert!(msg.starts_with("2026.toml: holidays[1] (中秋节)"), "{msg}");
}

#[test]
fn a_workday_that_is_also_a_holiday_is_an_error() {
    let err = mini(
        r#"
        holidays = [{ date = "2026-02-15", to = "2026-02-23", name = "春节" }]
        workdays = [{ date = "2026-02-15", name = "春节调休" }]
        "#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("2026-02-15 is also a holiday (春节)"),
        "{err}"
    );
}

#[test]
fn other_invalid_year_files() {
    // A make-up day on a day that already works (typo'd date).
    let err = mini(r#"workdays = [{ date = "2026-02-16", name = "x" }]"#).unwrap_err();
    assert!(err.to_string().contains("already a working day"), "{err}");
    // Listed twice.
    let err = mini(
        r#"workdays = [{ date = "2026-02-14", name = "x" }, { date = "2026-02-14", name = "y" }]"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    // A date outside the file's year.
    let err = mini(r#"holidays = [{ date = "2025-12-31", to = "2026-01-02", name = "元旦" }]"#)
        .unwrap_err();
    assert!(err.to_string().contains("is not in 2026"), "{err}");
    // A reversed range.
    let err =
        mini(r#"holidays = [{ date = "2026-05-05", to = "2026-05-01", name = "x" }]"#).unwrap_err();
    assert!(err.to_string().contains("before"), "{err}");
    // Not a date.
    let err = mini(r#"holidays = [{ date = "2026-02-30", name = "x" }]"#).unwrap_err();
    assert!(err.to_string().contains("not a date"), "{err}");
    // Empty name.
    let err = mini(r#"holidays = [{ date = "2026-02-03", name = " " }]"#).unwrap_err();
    assert!(err.to_string().contains("name must not be empty"), "{err}");
    // The same year twice.
    let err = Calendar::from_parts(MINI, &[(2026, ""), (2026, "")]).unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
    // Absurd years.
    assert!(Calendar::from_parts(MINI, &[(i32::MAX, "")]).is_err());
    assert!(Calendar::from_parts(MINI, &[(-5, "")]).is_err());
    // Make-up days need Monday's hours.
    let no_monday = MINI.replace("mon = [\"09:00-17:00\"]\n", "");
    let err = Calendar::from_parts(
        &no_monday,
        &[(2026, r#"workdays = [{ date = "2026-02-14", name = "x" }]"#)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("Monday's hours"), "{err}");
}

#[test]
fn load_rejects_bad_names_and_stray_files() {
    assert!(matches!(
        Calendar::load(&calendars_dir(), "../cn"),
        Err(CalendarError::Invalid { .. })
    ));
    assert!(matches!(
        Calendar::load(&calendars_dir(), "nope"),
        Err(CalendarError::Io { .. })
    ));
    let tmp = std::env::temp_dir().join(format!("tousu-cal-test-{}", std::process::id()));
    let dir = tmp.join("t");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("calendar.toml"), MINI).unwrap();
    std::fs::write(dir.join("2026.toml"), "").unwrap();
    std::fs::write(dir.join("README.md"), "ignored").unwrap();
    assert_eq!(
        Calendar::load(&tmp, "t")
            .unwrap()
            .years()
            .collect::<Vec<_>>(),
        vec![2026]
    );
    std::fs::write(dir.join("holidays-2027.toml"), "").unwrap();
    let err = Calendar::load(&tmp, "t").unwrap_err();
    assert!(err.to_string().contains("holidays-2027.toml"), "{err}");
    std::fs::remove_file(dir.join("holidays-2027.toml")).unwrap();
    // name in calendar.toml must match the directory.
    std::fs::write(
        dir.join("calendar.toml"),
        MINI.replace("name = \"t\"", "name = \"u\""),
    )
    .unwrap();
    let err = Calendar::load(&tmp, "t").unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn garbage_input_never_panics() {
    // Arbitrary byte soup in either file yields errors, not panics.
    let samples = [
        "",
        "=",
        "[[[",
        "name = \"x\"",
        "\u{0}",
        "holidays = 5",
        "holidays = [1, 2]",
        "workdays = [{}]",
        "hours = 3",
        "[hours]\nmon = 5",
        "[hours]\nmon = [\"-\"]",
        "[hours]\nmon = [\"99:99-99:99\"]",
        "holidays = [{ date = \"9999-12-31\", name = \"x\" }]",
    ];
    for a in samples {
        let _ = Calendar::from_parts(a, &[]);
        let _ = Calendar::from_parts(MINI, &[(2026, a)]);
        let _ = a.parse::<Duration>();
    }
    // Extreme instants and durations.
    let cal = cn();
    for dur in [
        "4294967295h",
        "4294967295m",
        "4294967295wh",
        "4294967295wd",
        "4294967295d",
    ] {
        let _ = cal.deadline(datetime!(2026-01-05 10:00 UTC), &d(dur));
        let _ = cal.deadline(datetime!(-9999-01-01 00:00 UTC), &d(dur));
        let _ = cal.deadline(datetime!(+9999-12-31 23:59:59 UTC), &d(dur));
    }
    assert!(
        cal.deadline_at(datetime!(+9999-12-31 23:00 UTC), &d("2h"))
            .is_err()
    );
}
