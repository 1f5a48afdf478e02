//! Hot topics: the sliding-window surge detector.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tousu_policy::surge::{Alert, Per, SAMPLE_IDS, SurgeDetector};

const TOPIC: &str = "facilities_environment";
const PLACE: &str = "锦绣花园3号楼";

fn t0() -> OffsetDateTime {
    datetime!(2025-07-14 08:00 +08:00)
}

fn at(minutes: i64) -> OffsetDateTime {
    t0() + Duration::minutes(minutes)
}

fn hourly(threshold: usize) -> SurgeDetector {
    SurgeDetector::new(Duration::hours(1), threshold, Per::TopicAndPlace)
}

/// Observes complaints `c<minute>` at the given minutes; returns the alerts.
fn feed(d: &mut SurgeDetector, minutes: &[i64]) -> Vec<(i64, Alert)> {
    minutes
        .iter()
        .filter_map(|&m| {
            d.observe(TOPIC, PLACE, &format!("c{m}"), at(m))
                .map(|a| (m, a))
        })
        .collect()
}

#[test]
fn the_alert_fires_when_the_count_reaches_the_threshold() {
    let mut d = hourly(3);
    assert!(d.observe(TOPIC, PLACE, "c0", at(0)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c10", at(10)).is_none());
    let alert = d
        .observe(TOPIC, PLACE, "c20", at(20))
        .expect("third complaint within the hour");
    assert_eq!(alert.topic, TOPIC);
    assert_eq!(alert.place, PLACE);
    assert_eq!(alert.count, 3);
    assert_eq!(alert.window, Duration::hours(1));
    assert_eq!(alert.sample_ids, ["c0", "c10", "c20"]);
    assert_eq!(alert.first_at, at(0));
    assert_eq!(alert.last_at, at(20));
    assert_eq!(alert.baseline, None);
}

#[test]
fn one_alert_per_window_then_again_after_it() {
    let mut d = hourly(3);
    let alerts = feed(&mut d, &[0, 10, 20, 30, 40, 50, 60, 70, 80]);
    // 30..80 are within an hour of the alert's last complaint (20, inclusive).
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, 20);
    // 80 is exactly window after 20: still the same window.
    assert!(d.observe(TOPIC, PLACE, "c80b", at(80)).is_none());
    // Just past it, the surge goes on: a new alert, counting only what came
    // after the first alert.
    let next = d
        .observe(TOPIC, PLACE, "c81", at(81))
        .expect("a new window");
    assert_eq!(next.first_at, at(30));
    assert_eq!(next.last_at, at(81));
    assert_eq!(next.count, 8, "30, 40, 50, 60, 70, 80, 80b, 81");
    assert_eq!(next.sample_ids, ["c30", "c40", "c50", "c60", "c70"]);
}

#[test]
fn after_a_quiet_spell_a_new_surge_alerts_on_its_own_count() {
    let mut d = hourly(3);
    assert_eq!(feed(&mut d, &[0, 5, 10]).len(), 1);
    // Two complaints two hours later are not a surge...
    assert!(feed(&mut d, &[130, 140]).is_empty());
    // ...the third is.
    let alerts = feed(&mut d, &[150]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].1.count, 3);
    assert_eq!(alerts[0].1.sample_ids, ["c130", "c140", "c150"]);
}

#[test]
fn the_window_is_inclusive_at_its_edge() {
    let mut d = hourly(2);
    assert!(d.observe(TOPIC, PLACE, "a", t0()).is_none());
    let alert = d.observe(TOPIC, PLACE, "b", t0() + Duration::hours(1));
    assert_eq!(alert.map(|a| a.count), Some(2));

    let mut d = hourly(2);
    assert!(d.observe(TOPIC, PLACE, "a", t0()).is_none());
    let just_out = t0() + Duration::hours(1) + Duration::nanoseconds(1);
    assert!(d.observe(TOPIC, PLACE, "b", just_out).is_none());
}

#[test]
fn places_are_counted_apart_unless_asked_otherwise() {
    let mut d = hourly(3);
    let places = ["3号楼", "5号楼", "3号楼", "5号楼", "8号楼"];
    for (i, p) in places.iter().enumerate() {
        let alert = d.observe(TOPIC, p, &format!("c{i}"), at(i as i64));
        assert!(alert.is_none(), "no place has 3 yet: {p}");
    }
    let alert = d
        .observe(TOPIC, "5号楼", "c5", at(5))
        .expect("third at 5号楼");
    assert_eq!(alert.place, "5号楼");
    assert_eq!(alert.sample_ids, ["c1", "c3", "c5"]);
    // Another topic at the same place is another key.
    assert!(d.observe("price_billing", "5号楼", "p1", at(6)).is_none());

    let mut d = SurgeDetector::new(Duration::hours(1), 3, Per::Topic);
    assert!(d.observe(TOPIC, "3号楼", "c0", at(0)).is_none());
    assert!(d.observe(TOPIC, "5号楼", "c1", at(1)).is_none());
    let alert = d
        .observe(TOPIC, "8号楼", "c2", at(2))
        .expect("3 in the topic");
    assert_eq!(alert.place, "");
    assert_eq!(alert.count, 3);
}

#[test]
fn samples_are_the_earliest_five() {
    let mut d = hourly(8);
    let alerts = feed(&mut d, &[0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0].1;
    assert_eq!(alert.count, 8);
    assert_eq!(alert.sample_ids.len(), SAMPLE_IDS);
    assert_eq!(alert.sample_ids, ["c0", "c1", "c2", "c3", "c4"]);
}

#[test]
fn a_late_complaint_can_complete_a_surge() {
    let mut d = hourly(3);
    assert!(d.observe(TOPIC, PLACE, "c0", at(0)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c50", at(50)).is_none());
    // Arrives last, happened in between.
    let alert = d
        .observe(TOPIC, PLACE, "c20", at(20))
        .expect("0, 20, 50 within an hour");
    assert_eq!(alert.first_at, at(0));
    assert_eq!(alert.last_at, at(50));
    assert_eq!(alert.sample_ids, ["c0", "c20", "c50"]);
}

#[test]
fn a_late_complaint_counts_in_the_windows_after_it_too() {
    let mut d = hourly(3);
    assert!(d.observe(TOPIC, PLACE, "c100", at(100)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c170", at(170)).is_none());
    // Exactly one window late: accepted. [100, 160] and [110, 170] hold two
    // each: no surge yet.
    assert!(d.observe(TOPIC, PLACE, "c110", at(110)).is_none());
    // 165 completes [110, 170], which ends after it.
    let alert = d.observe(TOPIC, PLACE, "c165", at(165)).expect("surge");
    assert_eq!(alert.count, 3);
    assert_eq!(alert.first_at, at(110));
    assert_eq!(alert.last_at, at(170));
    assert_eq!(alert.sample_ids, ["c110", "c165", "c170"]);
}

#[test]
fn a_complaint_more_than_a_window_late_is_ignored() {
    let mut d = hourly(2);
    assert!(d.observe(TOPIC, PLACE, "now", at(300)).is_none());
    // Four hours late: its windows are over.
    assert!(d.observe(TOPIC, PLACE, "stale-1", at(60)).is_none());
    assert!(d.observe(TOPIC, PLACE, "stale-2", at(61)).is_none());
    assert_eq!(d.tracked_events(), 1);
}

#[test]
fn the_same_complaint_twice_counts_once() {
    let mut d = hourly(2);
    assert!(d.observe(TOPIC, PLACE, "c1", at(0)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c1", at(0)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c1", at(5)).is_none());
    assert_eq!(d.tracked_events(), 1);
    assert!(d.observe(TOPIC, PLACE, "c2", at(6)).is_some());
}

#[test]
fn old_events_and_idle_keys_are_dropped() {
    let mut d = hourly(100);
    for i in 0..500 {
        let place = format!("{}号楼", i % 50);
        assert!(
            d.observe(TOPIC, &place, &format!("c{i}"), at(i / 10))
                .is_none()
        );
    }
    assert_eq!(d.tracked_keys(), 50);
    assert_eq!(d.tracked_events(), 500);
    // A day later, one complaint elsewhere: everything else is gone.
    assert!(
        d.observe("logistics", "白云分拨中心", "late", at(24 * 60))
            .is_none()
    );
    assert_eq!(d.tracked_keys(), 1);
    assert_eq!(d.tracked_events(), 1);
}

#[test]
fn the_cool_down_holds_across_a_sweep() {
    let mut d = hourly(2);
    assert_eq!(feed(&mut d, &[0, 1]).len(), 1);
    // Another key moves the clock a window on, which runs the sweep.
    assert!(
        d.observe("logistics", "白云分拨中心", "l1", at(62))
            .is_none()
    );
    // 61 is exactly a window after the alert: still suppressed.
    assert!(d.observe(TOPIC, PLACE, "c61", at(61)).is_none());
    // 63 is past it, and 61 + 63 are two new complaints.
    let alert = d.observe(TOPIC, PLACE, "c63", at(63)).expect("new window");
    assert_eq!(alert.sample_ids, ["c61", "c63"]);
}

#[test]
fn a_baseline_keeps_a_usually_busy_place_quiet() {
    // Threshold 3, and at least twice the average of the previous 3 hours.
    let mut d = hourly(3).with_baseline(2.0, 3);
    // Cold start: no history yet, the threshold decides.
    let first = feed(&mut d, &[0, 20, 40]);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.baseline, None);
    // One every 20 minutes for five more hours (4 in an inclusive hour
    // against an average of 3): normal here.
    let steady: Vec<i64> = (3..=17).map(|i| i * 20).collect();
    let quiet = feed(&mut d, &steady);
    assert!(quiet.is_empty(), "{quiet:?}");
    // Then a burst: [300, 360] reaches 6 = 2 × 3 at the third extra one.
    let burst = feed(&mut d, &[341, 342, 343]);
    assert_eq!(burst.len(), 1, "{burst:?}");
    let (m, alert) = &burst[0];
    assert_eq!(*m, 343);
    assert_eq!(alert.count, 6);
    assert_eq!(alert.first_at, at(300));
    assert_eq!(alert.baseline, Some(3.0));

    // The same burst at a place with almost no history alerts at 3.
    let mut quiet_place = hourly(3).with_baseline(2.0, 3);
    for (id, m) in [("q0", 0), ("q100", 100)] {
        assert!(quiet_place.observe(TOPIC, "8号楼", id, at(m)).is_none());
    }
    let alerts: Vec<Alert> = [241, 242, 243]
        .iter()
        .filter_map(|&m| quiet_place.observe(TOPIC, "8号楼", &format!("q{m}"), at(m)))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 3);
    assert_eq!(alerts[0].baseline, Some(1.0 / 3.0));
}

#[test]
fn nonsense_settings_fall_back_to_something_sane() {
    // Threshold 0 acts as 1: the first complaint alerts.
    let mut d = hourly(0);
    assert_eq!(d.threshold(), 1);
    assert!(d.observe(TOPIC, PLACE, "c0", at(0)).is_some());
    // A negative window acts as zero: only simultaneous complaints count.
    let mut d = SurgeDetector::new(-Duration::hours(1), 2, Per::TopicAndPlace);
    assert_eq!(d.window(), Duration::ZERO);
    assert!(d.observe(TOPIC, PLACE, "a", at(0)).is_none());
    assert!(d.observe(TOPIC, PLACE, "b", at(1)).is_none());
    assert!(d.observe(TOPIC, PLACE, "c", at(1)).is_some());
    // A baseline ratio that is not a positive number, or no periods: off.
    for ratio in [f64::NAN, f64::INFINITY, -1.0, 0.0] {
        let mut d = hourly(2).with_baseline(ratio, 3);
        assert!(d.observe(TOPIC, PLACE, "x", at(0)).is_none());
        assert!(d.observe(TOPIC, PLACE, "y", at(200)).is_none());
        let alert = d
            .observe(TOPIC, PLACE, "z", at(201))
            .expect("threshold only");
        assert_eq!(alert.baseline, None, "ratio {ratio}");
    }
    let mut d = hourly(1).with_baseline(2.0, 0);
    assert!(d.observe(TOPIC, PLACE, "x", at(0)).is_some());
    assert_eq!(
        d.observe(TOPIC, PLACE, "y", at(200)).map(|a| a.baseline),
        Some(None)
    );
}

#[test]
fn extreme_times_and_windows_do_not_panic() {
    let far_past = datetime!(-9999-01-01 0:00 UTC);
    let far_future = datetime!(9999-12-31 23:59:59.999_999_999 -23:59:59);
    let mut d = SurgeDetector::new(Duration::MAX, 2, Per::TopicAndPlace).with_baseline(1.5, 1_000);
    assert!(d.observe(TOPIC, "", "a", far_past).is_none());
    let alert = d
        .observe(TOPIC, "", "b", far_future)
        .expect("one endless window");
    assert_eq!(alert.count, 2);
    assert_eq!(alert.first_at, far_past);
    assert_eq!(alert.last_at, far_future);
    let mut d = hourly(2);
    assert!(d.observe(TOPIC, PLACE, "a", far_future).is_none());
    assert!(d.observe(TOPIC, PLACE, "b", far_past).is_none());
    assert!(d.observe("", "", "", far_future).is_none());
    assert!(d.observe("", "", "\u{0}", far_future).is_some());
}

#[test]
fn the_same_events_give_the_same_alerts() {
    let minutes = [5, 0, 50, 20, 70, 65, 140, 141, 130, 200, 260, 262, 263, 199];
    let run = || {
        let mut d = hourly(3);
        feed(&mut d, &minutes)
            .into_iter()
            .map(|(m, a)| (m, a.count, a.sample_ids))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first, run());
}

#[test]
fn one_key_holds_at_most_max_events_and_can_still_alert() {
    use tousu_policy::surge::MAX_EVENTS_PER_KEY;
    // A threshold beyond the cap is clamped to it, so it stays reachable.
    let mut d = SurgeDetector::new(Duration::days(1), usize::MAX, Per::TopicAndPlace);
    assert_eq!(d.threshold(), MAX_EVENTS_PER_KEY);
    let mut alerts = Vec::new();
    for i in 0..MAX_EVENTS_PER_KEY + 10 {
        let when = t0() + Duration::milliseconds(i as i64);
        if let Some(a) = d.observe(TOPIC, PLACE, &format!("c{i}"), when) {
            alerts.push((i, a.count));
        }
    }
    assert_eq!(alerts, [(MAX_EVENTS_PER_KEY - 1, MAX_EVENTS_PER_KEY)]);
    assert_eq!(d.tracked_events(), MAX_EVENTS_PER_KEY);
}
