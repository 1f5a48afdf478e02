//! SLA clocks on the real calendars (`policies/calendars/cn` with 调休,
//! `uk` with DST): pauses across holidays and make-up days, warnings across
//! weekends, extensions, wall clocks, and `Calendar::add_working` as the
//! inverse of `elapsed_working`. Expected instants are worked out by hand
//! in the comments (China is UTC+8 all year).

use std::path::Path;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tousu_domain::calendar::Calendar;
use tousu_domain::clock::{Basis, Clock, ClockError, Extension, Target};

fn cal(name: &str) -> Calendar {
    Calendar::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/calendars"),
        name,
    )
    .expect("calendar loads")
}

fn five_wd(cn: &Calendar, start: OffsetDateTime) -> Clock {
    let deadline = cn.deadline_at(start, &"5wd".parse().unwrap()).unwrap();
    Clock::new(
        Target::Resolution,
        Basis::Working(cn),
        start,
        deadline,
        true,
    )
    .unwrap()
}

#[test]
fn add_working_is_the_inverse_of_elapsed_working() {
    let cn = cal("cn");
    // Friday 13 Feb 2026 16:00 + 3 working hours: 16:00–17:30 (1.5 h), then
    // Saturday 14 Feb is a make-up working day (调休): 09:00–10:30.
    let from = datetime!(2026-02-13 16:00 +08:00);
    let at = cn.add_working(from, Duration::hours(3)).unwrap();
    assert_eq!(at, datetime!(2026-02-14 10:30 +08:00));
    assert_eq!(cn.elapsed_working(from, at).unwrap(), Duration::hours(3));
    // From Saturday 14 Feb 17:00 + 1 h: 30 min that day, then 春节 (15–23
    // Feb) is skipped: Tuesday 24 Feb 09:30.
    let at = cn
        .add_working(datetime!(2026-02-14 17:00 +08:00), Duration::hours(1))
        .unwrap();
    assert_eq!(at, datetime!(2026-02-24 09:30 +08:00));
    // Exactly to the end of the morning stays at 12:00, not 13:30.
    let at = cn
        .add_working(datetime!(2026-03-02 09:00 +08:00), Duration::hours(3))
        .unwrap();
    assert_eq!(at, datetime!(2026-03-02 12:00 +08:00));
    // From lunch: the afternoon starts at 13:30.
    let at = cn
        .add_working(datetime!(2026-03-02 12:15 +08:00), Duration::minutes(30))
        .unwrap();
    assert_eq!(at, datetime!(2026-03-02 14:00 +08:00));
    // Zero is the start itself.
    assert_eq!(cn.add_working(from, Duration::ZERO).unwrap(), from);
    // Past the last year with data: an error, never a guess.
    assert!(
        cn.add_working(datetime!(2026-12-31 17:00 +08:00), Duration::hours(2))
            .is_err()
    );
}

#[test]
fn add_working_across_the_uk_clock_change() {
    let uk = cal("uk");
    // Friday 27 Mar 2026 16:00 GMT + 2 working hours: 16:00–17:30 GMT
    // (1.5 h), weekend (BST from Sunday 29 Mar), Monday 30 Mar 09:00 BST
    // + 0.5 h = 09:30 BST = 08:30 UTC.
    let uk_hours_end = uk
        .working_intervals(time::macros::date!(2026 - 03 - 27))
        .unwrap();
    assert!(!uk_hours_end.is_empty());
    let from = datetime!(2026-03-27 16:00 UTC);
    let end_of_friday = uk_hours_end.last().unwrap().1;
    let friday_left = end_of_friday - from;
    let at = uk
        .add_working(from, friday_left + Duration::minutes(30))
        .unwrap();
    let monday = uk
        .working_intervals(time::macros::date!(2026 - 03 - 30))
        .unwrap();
    assert_eq!(at, monday[0].0 + Duration::minutes(30));
    assert_eq!(monday[0].0.offset(), time::UtcOffset::UTC);
    assert_eq!(
        uk.elapsed_working(from, at).unwrap(),
        friday_left + Duration::minutes(30)
    );
}

#[test]
fn a_pause_across_national_day_moves_only_by_working_time() {
    let cn = cal("cn");
    // Received Monday 29 Sep 2025 10:00. 5wd, day of receipt not counted:
    // 30 Sep (1), 1–8 Oct holiday, 9 Oct (2), 10 Oct (3), Sat 11 Oct 调休
    // (4), Mon 13 Oct (5) → 13 Oct 17:30.
    let start = datetime!(2025-09-29 10:00 +08:00);
    let mut clock = five_wd(&cn, start);
    let b = Basis::Working(&cn);
    assert_eq!(
        clock.deadline(b).unwrap(),
        Some(datetime!(2025-10-13 17:30 +08:00))
    );
    // Paused Tuesday 30 Sep 16:00 → Thursday 9 Oct 10:00: working time
    // 30 Sep 16:00–17:30 (1.5 h) + 9 Oct 09:00–10:00 (1 h) = 2.5 h.
    clock
        .pause(
            datetime!(2025-09-30 16:00 +08:00),
            "appraisal",
            "xu.fang",
            None,
        )
        .unwrap();
    clock.resume(datetime!(2025-10-09 10:00 +08:00)).unwrap();
    assert_eq!(
        clock
            .paused_total(b, datetime!(2025-10-20 00:00 +08:00))
            .unwrap(),
        Duration::minutes(150)
    );
    // 13 Oct 17:30 + 2.5 wh → Tuesday 14 Oct: 09:00–11:30.
    assert_eq!(
        clock.deadline(b).unwrap(),
        Some(datetime!(2025-10-14 11:30 +08:00))
    );
    // Used by 9 Oct 12:00: 29 Sep 10:00–17:30 (6 h) + 30 Sep 09:00–16:00
    // (5.5 h) + 9 Oct 10:00–12:00 (2 h) = 13.5 h.
    assert_eq!(
        clock.used(b, datetime!(2025-10-09 12:00 +08:00)).unwrap(),
        Duration::minutes(810)
    );
}

#[test]
fn warnings_skip_the_weekend_and_follow_a_pause() {
    let cn = cal("cn");
    // Thursday 5 Mar 2026 09:00, 2 working days; the day of receipt is not
    // counted: 6 Mar (1), 9 Mar (2) → Monday 9 Mar 17:30.
    let start = datetime!(2026-03-05 09:00 +08:00);
    let deadline = cn.deadline_at(start, &"2wd".parse().unwrap()).unwrap();
    assert_eq!(deadline, datetime!(2026-03-09 17:30 +08:00));
    let b = Basis::Working(&cn);
    let mut clock = Clock::new(Target::Resolution, b, start, deadline, true).unwrap();
    // Budget: 5, 6, 9 Mar × 7 h = 21 h. 50 % = 10.5 h: Thursday (7 h) +
    // Friday 09:00–12:00 (3 h) + 13:30–14:00 → Friday 14:00.
    assert_eq!(clock.budget(), Duration::hours(21));
    assert_eq!(
        clock.at_percent(b, 50).unwrap(),
        Some(datetime!(2026-03-06 14:00 +08:00))
    );
    // 80 % = 16.8 h = 16 h 48 min: Thu + Fri (14 h), Monday 2 h 48 min →
    // 09:00–11:48.
    assert_eq!(
        clock.at_percent(b, 80).unwrap(),
        Some(datetime!(2026-03-09 11:48 +08:00))
    );
    // A pause Friday 13:30–17:30 (4 working hours). 10 h were used before
    // it; from Friday 17:30 the 50 % mark needs 0.5 h more → Monday 09:30,
    // the 80 % mark 6 h 48 min more → Monday 09:00–12:00, 13:30–17:18.
    clock
        .pause(
            datetime!(2026-03-06 13:30 +08:00),
            "waiting_complainant",
            "u",
            None,
        )
        .unwrap();
    assert_eq!(
        clock.at_percent(b, 50).unwrap(),
        None,
        "a paused clock has no instants ahead"
    );
    clock.resume(datetime!(2026-03-06 17:30 +08:00)).unwrap();
    assert_eq!(
        clock.at_percent(b, 50).unwrap(),
        Some(datetime!(2026-03-09 09:30 +08:00))
    );
    assert_eq!(
        clock.at_percent(b, 80).unwrap(),
        Some(datetime!(2026-03-09 17:18 +08:00))
    );
    // The deadline moves by the same 4 h: Monday 17:30 → Tuesday
    // 09:00–12:00 (3 h) + 13:30–14:30 (1 h).
    assert_eq!(
        clock.deadline(b).unwrap(),
        Some(datetime!(2026-03-10 14:30 +08:00))
    );
}

#[test]
fn extending_a_paused_clock_counts_from_its_projected_deadline() {
    let cn = cal("cn");
    let b = Basis::Working(&cn);
    let start = datetime!(2026-03-02 09:00 +08:00); // Monday
    let mut clock = five_wd(&cn, start); // → Monday 9 Mar 17:30
    clock
        .pause(datetime!(2026-03-03 09:00 +08:00), "appraisal", "u", None)
        .unwrap();
    // Budget 42 h (Monday's 7 h + 5 working days). Projected from
    // Wednesday 4 Mar 09:00: 7 h used, 35 h left → Wed, Thu, Fri, Mon, Tue
    // → Tuesday 10 Mar 17:30 (Tuesday's pause cost a day).
    let now = datetime!(2026-03-04 09:00 +08:00);
    let old = clock.projected_deadline(b, now).unwrap();
    assert_eq!(old, datetime!(2026-03-10 17:30 +08:00));
    let new = cn.deadline_at(old, &"2wd".parse().unwrap()).unwrap();
    assert_eq!(new, datetime!(2026-03-12 17:30 +08:00));
    clock
        .extend(
            b,
            old,
            new,
            Extension {
                duration: "2wd".into(),
                approver: "head".into(),
                approver_role: "department_head".into(),
                at: now,
                old_deadline: old,
                new_deadline: new,
            },
        )
        .unwrap();
    assert_eq!(clock.deadline(b).unwrap(), None, "still paused");
    assert_eq!(clock.projected_deadline(b, now).unwrap(), new);
    clock.resume(now).unwrap();
    assert_eq!(clock.deadline(b).unwrap(), Some(new));
}

#[test]
fn the_overlay_never_pauses_and_wall_clocks_ignore_the_calendar() {
    let cn = cal("cn");
    let start = datetime!(2026-09-30 10:00 +08:00);
    // 15 calendar days, not counting the day of receipt: 15 Oct 24:00 —
    // a Thursday, a working day, so it stays.
    let at = cn.deadline_at(start, &"15d".parse().unwrap()).unwrap();
    let mut overlay = Clock::new(Target::Overlay, Basis::Wall, start, at, false).unwrap();
    assert_eq!(
        overlay.pause(start + Duration::hours(1), "appraisal", "u", None),
        Err(ClockError::NotPausable(Target::Overlay))
    );
    assert_eq!(overlay.deadline(Basis::Wall).unwrap(), Some(at));
    // A 24×7 clock paused over National Day moves by the whole wall time.
    let mut wall = Clock::new(
        Target::Dispatch,
        Basis::Wall,
        start,
        start + Duration::hours(24),
        true,
    )
    .unwrap();
    wall.pause(datetime!(2026-09-30 12:00 +08:00), "appraisal", "u", None)
        .unwrap();
    wall.resume(datetime!(2026-10-08 12:00 +08:00)).unwrap();
    assert_eq!(
        wall.deadline(Basis::Wall).unwrap(),
        Some(start + Duration::hours(24) + Duration::days(8))
    );
}

#[test]
fn a_clock_survives_a_json_round_trip_with_pauses_and_extensions() {
    let cn = cal("cn");
    let b = Basis::Working(&cn);
    let mut clock = five_wd(&cn, datetime!(2026-03-02 09:00 +08:00));
    clock
        .pause(
            datetime!(2026-03-02 10:00 +08:00),
            "appraisal",
            "u",
            Some(datetime!(2026-03-09 10:00 +08:00)),
        )
        .unwrap();
    clock.resume(datetime!(2026-03-02 11:00 +08:00)).unwrap();
    let json = toml::to_string(&clock).unwrap();
    let back: Clock = toml::from_str(&json).unwrap();
    assert_eq!(back, clock);
    assert_eq!(back.deadline(b).unwrap(), clock.deadline(b).unwrap());
    assert_eq!(
        back.basis(Some(&cn))
            .measure(
                datetime!(2026-03-02 09:00 +08:00),
                datetime!(2026-03-02 12:00 +08:00)
            )
            .unwrap(),
        Duration::hours(3)
    );
    assert!(matches!(back.basis(None), Basis::Wall));
}
