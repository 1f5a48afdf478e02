//! A circuit breaker per endpoint (`deliveries.endpoint`: one SMTP server,
//! robot webhook, gateway …), in memory per replica.
//!
//! - **closed**: sends go through; `threshold` consecutive failures open it.
//! - **open** until `now + cool_down`: no sends to the endpoint (the sender
//!   defers its deliveries without counting an attempt).
//! - **half-open** once the cool-down has passed: one trial send; success
//!   closes it, failure opens it again for another cool-down.
//!
//! Only failures that say something about the endpoint count: transient
//! ones (5xx, 429, timeouts, connection errors). A permanent refusal with a
//! status (a 4xx for one bad address) shows the endpoint is up and counts
//! as a success; a permanent error without one (a channel not configured)
//! is neutral.
//!
//! Each replica keeps its own breakers: a replica that has not seen the
//! failures keeps sending until it sees them too (at most `threshold`
//! failed sends per replica per cool-down).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where an endpoint's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    /// Refusing sends until the instant.
    Open(Instant),
    /// Cool-down over: one trial allowed (`true` while it is in flight).
    HalfOpen(bool),
}

#[derive(Debug, Clone)]
struct Circuit {
    failures: u32,
    state: State,
}

/// The breakers of every endpoint this replica sends to.
#[derive(Debug, Clone)]
pub struct Breakers {
    threshold: u32,
    cool_down: Duration,
    circuits: HashMap<String, Circuit>,
}

/// What a finished send says about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
    /// Says nothing about the endpoint (e.g. a channel not configured).
    Neutral,
}

impl Breakers {
    /// `threshold` consecutive failures (at least 1) open a circuit for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breakers {
            threshold: threshold.max(1),
            cool_down,
            circuits: HashMap::new(),
        }
    }

    /// The state of `endpoint` at `now` (an open circuit whose cool-down
    /// has passed reads as half-open).
    pub fn state(&self, endpoint: &str, now: Instant) -> State {
        match self.circuits.get(endpoint).map(|c| c.state) {
            None | Some(State::Closed) => State::Closed,
            Some(State::Open(until)) if now >= until => State::HalfOpen(false),
            Some(s) => s,
        }
    }

    /// Until when `endpoint` refuses sends, when it does (open, cool-down
    /// not over). A half-open circuit with its trial in flight refuses
    /// too, but has no instant: its trial decides.
    pub fn open_until(&self, endpoint: &str, now: Instant) -> Option<Instant> {
        match self.state(endpoint, now) {
            State::Open(until) => Some(until),
            _ => None,
        }
    }

    /// Whether a send to `endpoint` may start now. In half-open state the
    /// first caller gets the trial and the others are refused until it ends.
    pub fn admit(&mut self, endpoint: &str, now: Instant) -> bool {
        match self.state(endpoint, now) {
            State::Closed => true,
            State::Open(_) | State::HalfOpen(true) => false,
            State::HalfOpen(false) => {
                if let Some(c) = self.circuits.get_mut(endpoint) {
                    c.state = State::HalfOpen(true);
                }
                true
            }
        }
    }

    /// Records how an admitted send ended. Returns the new state when the
    /// circuit changed between closed and open (for the gauge and logs).
    pub fn record(&mut self, endpoint: &str, verdict: Verdict, now: Instant) -> Option<State> {
        let before = self.state(endpoint, now);
        match verdict {
            Verdict::Success => {
                // A closed circuit with no failures needs no entry.
                self.circuits.remove(endpoint);
            }
            Verdict::Neutral => {
                if let Some(c) = self.circuits.get_mut(endpoint)
                    && c.state == State::HalfOpen(true)
                {
                    // The trial told nothing: let another one try.
                    c.state = State::HalfOpen(false);
                }
            }
            Verdict::Failure => {
                let c = self.circuits.entry(endpoint.to_owned()).or_insert(Circuit {
                    failures: 0,
                    state: State::Closed,
                });
                c.failures = c.failures.saturating_add(1);
                match c.state {
                    // A failed trial, or a send that was admitted before the
                    // circuit opened: (re)open for a full cool-down.
                    State::HalfOpen(_) => c.state = State::Open(now + self.cool_down),
                    State::Open(until) if now >= until => {
                        c.state = State::Open(now + self.cool_down)
                    }
                    State::Open(_) => {}
                    State::Closed if c.failures >= self.threshold => {
                        c.state = State::Open(now + self.cool_down)
                    }
                    State::Closed => {}
                }
            }
        }
        let after = self.state(endpoint, now);
        let open = |s: State| !matches!(s, State::Closed);
        (open(before) != open(after)).then_some(after)
    }

    /// Endpoints whose circuit is not closed at `now`, with the instant
    /// they stay open until (`None`: half-open).
    pub fn not_closed(&self, now: Instant) -> Vec<(String, Option<Instant>)> {
        self.circuits
            .keys()
            .filter_map(|e| match self.state(e, now) {
                State::Closed => None,
                State::Open(until) => Some((e.clone(), Some(until))),
                State::HalfOpen(_) => Some((e.clone(), None)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let mut b = Breakers::new(3, COOL);
        let t = Instant::now();
        let e = "webhook https://hooks.example.com/a";
        assert!(b.admit(e, t));
        assert_eq!(b.record(e, Verdict::Failure, t), None);
        assert_eq!(b.record(e, Verdict::Failure, t), None);
        // A success in between starts the count again.
        assert_eq!(b.record(e, Verdict::Success, t), None);
        assert_eq!(b.record(e, Verdict::Failure, t), None);
        assert_eq!(b.record(e, Verdict::Failure, t), None);
        assert_eq!(b.state(e, t), State::Closed);
        assert_eq!(
            b.record(e, Verdict::Failure, t),
            Some(State::Open(t + COOL))
        );
        assert!(!b.admit(e, t + Duration::from_secs(29)));
        assert_eq!(b.open_until(e, t), Some(t + COOL));
        // Other endpoints are not affected.
        assert!(b.admit("webhook https://hooks.example.com/b", t));
    }

    #[test]
    fn half_open_allows_one_trial_and_its_outcome_decides() {
        let mut b = Breakers::new(1, COOL);
        let t = Instant::now();
        let e = "sms https://gw.example.com";
        b.record(e, Verdict::Failure, t);
        let later = t + COOL;
        assert_eq!(b.state(e, later), State::HalfOpen(false));
        assert!(b.admit(e, later), "the trial");
        assert!(!b.admit(e, later), "only one trial at a time");
        assert_eq!(b.state(e, later), State::HalfOpen(true));
        // The trial fails: open again for a full cool-down from now.
        let failed_at = later + Duration::from_secs(2);
        assert_eq!(b.record(e, Verdict::Failure, failed_at), None);
        assert_eq!(b.open_until(e, failed_at), Some(failed_at + COOL));
        assert!(!b.admit(e, failed_at + COOL - Duration::from_millis(1)));
        // The next trial succeeds: closed, and everyone may send.
        let t3 = failed_at + COOL;
        assert!(b.admit(e, t3));
        assert_eq!(b.record(e, Verdict::Success, t3), Some(State::Closed));
        assert!(b.admit(e, t3) && b.admit(e, t3));
    }

    #[test]
    fn neutral_trial_lets_another_try_and_permanent_does_not_count() {
        let mut b = Breakers::new(2, COOL);
        let t = Instant::now();
        let e = "email smtp://mail.example.com:25";
        b.record(e, Verdict::Failure, t);
        b.record(e, Verdict::Neutral, t);
        assert_eq!(b.state(e, t), State::Closed);
        b.record(e, Verdict::Failure, t);
        assert!(matches!(b.state(e, t), State::Open(_)));
        let later = t + COOL;
        assert!(b.admit(e, later));
        b.record(e, Verdict::Neutral, later);
        assert_eq!(b.state(e, later), State::HalfOpen(false));
        assert!(b.admit(e, later));
        assert_eq!(
            b.not_closed(later),
            vec![(e.to_owned(), None)],
            "half-open is listed without an instant"
        );
    }

    #[test]
    fn late_failures_of_sends_admitted_before_opening_do_not_extend() {
        let mut b = Breakers::new(1, COOL);
        let t = Instant::now();
        let e = "wecom https://qyapi.example.com";
        b.record(e, Verdict::Failure, t);
        // Another send admitted before the circuit opened fails a bit later.
        b.record(e, Verdict::Failure, t + Duration::from_secs(1));
        assert_eq!(b.open_until(e, t), Some(t + COOL));
        // A zero threshold means one failure.
        let mut z = Breakers::new(0, COOL);
        assert!(z.record(e, Verdict::Failure, t).is_some());
    }
}
