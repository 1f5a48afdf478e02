//! Hot topics: a sliding-window surge detector per topic and place.
//!
//! A surge of similar complaints (same topic, same place) is reported to
//! leadership as `alert.hot` (domain §3: frequency). The detector counts
//! complaints per key in a sliding time window and emits an [`Alert`] the
//! moment the count reaches the threshold, then stays quiet for that key
//! until a full window has passed, so a surge of 200 complaints is one
//! alert, not 198.
//!
//! # Semantics
//!
//! - **Windows are inclusive**: events `window` apart are in the same window
//!   (as in [`crate::similar`]).
//! - **Threshold inclusive** ("以上"): the alert fires when the count
//!   *reaches* the threshold.
//! - **Once per window**: after an alert whose last counted event is at `A`,
//!   the key alerts again only for an event later than `A + window`, and
//!   only events after `A` are counted again; a surge that goes on gets one
//!   alert per window.
//! - **Out of order**: an event may arrive late. It counts in every window
//!   containing it (the detector looks for the fullest window containing the
//!   new event, not only the one ending at it), so a late complaint can
//!   complete a surge. An event more than one window older than the latest
//!   event seen is ignored (its windows are over).
//! - **Time comes from the events**: no wall clock inside; the same events in
//!   the same order give the same alerts.
//! - **Idempotent per complaint**: observing the same complaint id again
//!   under the same key changes nothing (re-routing re-observes).
//!
//! # Baseline
//!
//! With [`SurgeDetector::with_baseline`], a count must also be at least
//! `ratio` × the average count of the `periods` windows just before the
//! alert window: a place with 20 complaints a week as a matter of course
//! does not alert at 20, while a quiet one does. Only windows since the key
//! was first seen are averaged (fewer than `periods` early on); with no
//! whole window of history yet, the threshold alone decides and the alert's
//! `baseline` is `None`.
//!
//! # Memory
//!
//! Each key keeps only the events its windows can still reach (two windows
//! plus the baseline periods behind the latest event time); keys with
//! nothing left (and no alert cool-down pending) are dropped by a sweep that
//! runs whenever the clock has advanced a window since the last one. At most
//! [`MAX_EVENTS_PER_KEY`] events are kept per key (the oldest go first).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

/// Events kept per key at most; beyond it the oldest are forgotten. Larger
/// thresholds are clamped to it (so they can still be reached).
pub const MAX_EVENTS_PER_KEY: usize = 65_536;

/// Most baseline periods honoured (a year of weeks).
pub const MAX_BASELINE_PERIODS: usize = 52;

/// Sample complaint ids in an alert.
pub const SAMPLE_IDS: usize = 5;

/// What a surge is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Per topic and place: the elevator of building 3, the battery of the
    /// X20 at the Tianhe store.
    TopicAndPlace,
    /// Per topic, all places together (a company-wide product recall). The
    /// alert's place is empty.
    Topic,
}

/// A hot topic: `count` complaints about `topic` at `place` within
/// `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Category code or keyword cluster.
    pub topic: String,
    /// Place ("" when counting per topic).
    pub place: String,
    /// Complaints in the window (≥ the threshold).
    pub count: usize,
    /// The window length.
    pub window: Duration,
    /// Up to [`SAMPLE_IDS`] complaint ids of the window, earliest first.
    pub sample_ids: Vec<String>,
    /// Receipt time of the earliest complaint counted.
    pub first_at: OffsetDateTime,
    /// Receipt time of the latest complaint counted.
    pub last_at: OffsetDateTime,
    /// Average count of the previous windows, when a baseline is configured
    /// and there was history to average.
    pub baseline: Option<f64>,
}

/// Sliding-window surge detector. See the module docs.
#[derive(Debug)]
pub struct SurgeDetector {
    window: Duration,
    window_ns: i128,
    threshold: usize,
    per: Per,
    baseline: Option<(f64, usize)>,
    keys: HashMap<(Box<str>, Box<str>), KeyState>,
    /// Latest event time seen (nanoseconds since the epoch).
    clock: Option<i128>,
    last_sweep: Option<i128>,
}

#[derive(Debug)]
struct KeyState {
    /// Earliest event time ever observed for the key: windows before it are
    /// unknown, not empty, for the baseline.
    since: i128,
    /// Sorted by time, then arrival.
    events: VecDeque<Event>,
    ids: HashSet<Arc<str>>,
    /// Last counted event time of the last alert.
    last_alert: Option<i128>,
}

#[derive(Debug)]
struct Event {
    t: i128,
    at: OffsetDateTime,
    id: Arc<str>,
}

impl SurgeDetector {
    /// A detector alerting when `threshold` complaints (inclusive; 0 acts
    /// as 1) of one key fall within `window` (inclusive; a negative window
    /// acts as zero: only simultaneous complaints).
    pub fn new(window: Duration, threshold: usize, per: Per) -> Self {
        let window = if window.is_negative() {
            Duration::ZERO
        } else {
            window
        };
        SurgeDetector {
            window,
            window_ns: window.whole_nanoseconds(),
            threshold: threshold.clamp(1, MAX_EVENTS_PER_KEY),
            per,
            baseline: None,
            keys: HashMap::new(),
            clock: None,
            last_sweep: None,
        }
    }

    /// Also require the count to be at least `ratio` × the average count of
    /// the `periods` windows before the alert window. A ratio that is not a
    /// positive finite number, or 0 periods, leaves the baseline off;
    /// periods are capped at [`MAX_BASELINE_PERIODS`].
    pub fn with_baseline(mut self, ratio: f64, periods: usize) -> Self {
        self.baseline = if ratio.is_finite() && ratio > 0.0 && periods > 0 {
            Some((ratio, periods.min(MAX_BASELINE_PERIODS)))
        } else {
            None
        };
        self
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The threshold in use.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Number of keys with state (for memory monitoring and tests).
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// Number of events held over all keys.
    pub fn tracked_events(&self) -> usize {
        self.keys.values().map(|k| k.events.len()).sum()
    }

    /// How far behind the latest event times events are kept: a late event
    /// (up to one window late) needs the window before it, and the baseline
    /// the periods before that.
    fn keep_ns(&self) -> i128 {
        let periods = self.baseline.map_or(0, |(_, p)| p) as i128;
        self.window_ns.saturating_mul(periods + 2)
    }

    /// Records a complaint and returns an alert if it makes its key's
    /// window reach the threshold (see the module docs for the rules).
    pub fn observe(
        &mut self,
        topic: &str,
        place: &str,
        complaint_id: &str,
        at: OffsetDateTime,
    ) -> Option<Alert> {
        let t = at.unix_timestamp_nanos();
        let clock = self.clock.map_or(t, |c| c.max(t));
        self.clock = Some(clock);
        // Accept events up to one window late; keep what their windows and
        // baselines can reach.
        if t < clock.saturating_sub(self.window_ns) {
            return None;
        }
        let horizon = clock.saturating_sub(self.keep_ns());
        self.maybe_sweep(clock, horizon);

        let place = match self.per {
            Per::TopicAndPlace => place,
            Per::Topic => "",
        };
        let key = (Box::<str>::from(topic), Box::<str>::from(place));
        let window_ns = self.window_ns;
        let threshold = self.threshold;
        let baseline = self.baseline;
        let state = self.keys.entry(key).or_insert_with(|| KeyState {
            since: t,
            events: VecDeque::new(),
            ids: HashSet::new(),
            last_alert: None,
        });
        if state.ids.contains(complaint_id) {
            return None;
        }
        state.since = state.since.min(t);

        // Forget what fell out of reach, then insert in time order.
        while state.events.front().is_some_and(|e| e.t < horizon) {
            if let Some(e) = state.events.pop_front() {
                state.ids.remove(&e.id);
            }
        }
        if state.events.len() >= MAX_EVENTS_PER_KEY
            && let Some(e) = state.events.pop_front()
        {
            state.ids.remove(&e.id);
        }
        let id: Arc<str> = Arc::from(complaint_id);
        let pos = state.events.partition_point(|e| e.t <= t);
        state.events.insert(
            pos,
            Event {
                t,
                at,
                id: id.clone(),
            },
        );
        state.ids.insert(id);

        // Cool-down: one alert per window.
        if let Some(last) = state.last_alert
            && t <= last.saturating_add(window_ns)
        {
            return None;
        }
        let floor = state.last_alert;
        let newest = pos + 1 == state.events.len();
        let best = fullest_window(&state.events, t, window_ns, floor, newest)?;
        if best.count < threshold {
            return None;
        }
        let mut avg = None;
        if let Some((ratio, periods)) = baseline {
            // Only whole windows since the key was first seen count: before
            // that the history is unknown, not quiet.
            let start = state.events.get(best.first).map_or(t, |e| e.t);
            let known = match start.saturating_sub(state.since).checked_div(window_ns) {
                Some(k) => usize::try_from(k).unwrap_or(usize::MAX).min(periods),
                None => periods, // zero window: every earlier instant is a period
            };
            if known > 0 {
                let from = start.saturating_sub(window_ns.saturating_mul(known as i128));
                let before = state
                    .events
                    .partition_point(|e| e.t < start)
                    .saturating_sub(state.events.partition_point(|e| e.t < from));
                let mean = before as f64 / known as f64;
                if (best.count as f64) < ratio * mean {
                    return None;
                }
                avg = Some(mean);
            }
        }
        let counted = state.events.iter().skip(best.first).take(best.count);
        let mut sample_ids = Vec::with_capacity(SAMPLE_IDS);
        let (mut first_at, mut last_at, mut last_t) = (at, at, t);
        for (i, e) in counted.enumerate() {
            if i == 0 {
                first_at = e.at;
            }
            if i < SAMPLE_IDS {
                sample_ids.push(e.id.to_string());
            }
            last_at = e.at;
            last_t = e.t;
        }
        state.last_alert = Some(last_t);
        Some(Alert {
            topic: topic.to_string(),
            place: place.to_string(),
            count: best.count,
            window: self.window,
            sample_ids,
            first_at,
            last_at,
            baseline: avg,
        })
    }

    /// Drops old events and idle keys once per window of clock advance.
    fn maybe_sweep(&mut self, clock: i128, horizon: i128) {
        let due = self
            .last_sweep
            .is_none_or(|s| clock.saturating_sub(s) >= self.window_ns.max(1));
        if !due {
            return;
        }
        self.last_sweep = Some(clock);
        let window_ns = self.window_ns;
        self.keys.retain(|_, state| {
            while state.events.front().is_some_and(|e| e.t < horizon) {
                if let Some(e) = state.events.pop_front() {
                    state.ids.remove(&e.id);
                }
            }
            // Keep a key whose cool-down could still suppress an accepted
            // event (at most one window late).
            let accepted = clock.saturating_sub(window_ns);
            let cooling = state
                .last_alert
                .is_some_and(|a| a.saturating_add(window_ns) >= accepted);
            !state.events.is_empty() || cooling
        });
    }
}

struct Best {
    /// Index of the first counted event.
    first: usize,
    count: usize,
}

/// The window (of length `window`, inclusive) containing time `t` with the
/// most events after `floor`; windows are anchored at events, which covers
/// every window up to shifting. `None` if no event qualifies. When `t` is
/// the newest event (the usual, in-order case) that is simply everything
/// from `t - window` on: a binary search, not a sweep.
fn fullest_window(
    events: &VecDeque<Event>,
    t: i128,
    window: i128,
    floor: Option<i128>,
    newest: bool,
) -> Option<Best> {
    let lo_t = t.saturating_sub(window);
    let start = events.partition_point(|e| e.t < lo_t || floor.is_some_and(|f| e.t <= f));
    if newest {
        return (start < events.len()).then(|| Best {
            first: start,
            count: events.len() - start,
        });
    }
    let mut best: Option<Best> = None;
    let mut end = start;
    let mut i = start;
    while let Some(first) = events.get(i) {
        if first.t > t {
            break;
        }
        let limit = first.t.saturating_add(window);
        if end < i {
            end = i;
        }
        while events.get(end).is_some_and(|e| e.t <= limit) {
            end += 1;
        }
        let count = end - i;
        if best.as_ref().is_none_or(|b| count > b.count) {
            best = Some(Best { first: i, count });
        }
        i += 1;
    }
    best
}
