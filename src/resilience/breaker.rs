//! A circuit breaker: after `failure_threshold` consecutive transient
//! failures the upstream is presumed down, and calls fail fast for `cooldown`
//! instead of each waiting out a timeout. Then one probe is let through
//! (half-open): its success closes the circuit, its failure re-opens it.
//!
//! The breaker guards the upstream only; it never touches health, so liveness
//! and readiness stay SERVING while it is open (every replica shares the same
//! upstream, and restarting pods would not fix it).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::config::BreakerSettings;

/// How one upstream attempt ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered sensibly (any answer but the transient ones).
    Success,
    /// Connection error, timeout or 5xx.
    Failure,
    /// Says nothing about the upstream's health (e.g. 429: it is up, and busy).
    Neutral,
}

/// The breaker's phase, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl From<Phase> for crate::metrics::CircuitState {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Closed => Self::Closed,
            Phase::Open => Self::Open,
            Phase::HalfOpen => Self::HalfOpen,
        }
    }
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe went out at this time; others wait until it answers (or, if it
    /// never does, until another cooldown has passed).
    HalfOpen {
        probe_sent: Option<Instant>,
    },
}

/// Wait suggested to callers turned away while a half-open probe is out.
pub const HALF_OPEN_RETRY: Duration = Duration::from_secs(1);

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// May an attempt go upstream now? `Err` holds how long until it might.
    pub fn admit(&self) -> Result<(), Duration> {
        self.admit_at(Instant::now())
    }

    /// Records the outcome of an admitted attempt.
    pub fn record(&self, outcome: Outcome) {
        self.record_at(outcome, Instant::now());
    }

    pub fn phase(&self) -> Phase {
        match *self.lock() {
            State::Closed { .. } => Phase::Closed,
            State::Open { .. } => Phase::Open,
            State::HalfOpen { .. } => Phase::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is one small Copy value, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit_at(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                *state = State::HalfOpen {
                    probe_sent: Some(now),
                };
                Ok(())
            }
            State::HalfOpen {
                probe_sent: Some(sent),
            } if now < sent + *self.settings.cooldown => Err(HALF_OPEN_RETRY),
            State::HalfOpen { .. } => {
                *state = State::HalfOpen {
                    probe_sent: Some(now),
                };
                Ok(())
            }
        }
    }

    fn record_at(&self, outcome: Outcome, now: Instant) {
        let mut state = self.lock();
        let open = State::Open {
            until: now + *self.settings.cooldown,
        };
        *state = match (*state, outcome) {
            (_, Outcome::Success) => State::Closed { failures: 0 },
            (State::Closed { failures }, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= *self.settings.failure_threshold {
                    open
                } else {
                    State::Closed { failures }
                }
            }
            (State::HalfOpen { .. }, Outcome::Failure) => open,
            // Attempts admitted before the circuit opened may still report.
            (State::Open { until }, Outcome::Failure) => State::Open { until },
            (State::HalfOpen { .. }, Outcome::Neutral) => State::HalfOpen { probe_sent: None },
            (s, Outcome::Neutral) => s,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Count32, PositiveDuration};

    const S: BreakerSettings = BreakerSettings {
        failure_threshold: Count32::new(3).unwrap(),
        cooldown: PositiveDuration::new(Duration::from_secs(10)).unwrap(),
    };

    /// A breaker that `S.failure_threshold` failures just opened, at `t`.
    fn tripped() -> (CircuitBreaker, Instant) {
        let b = CircuitBreaker::new(S);
        let t = Instant::now();
        for _ in 0..*S.failure_threshold {
            b.record_at(Outcome::Failure, t);
        }
        assert_eq!(b.phase(), Phase::Open);
        (b, t)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = CircuitBreaker::new(S);
        let t = Instant::now();
        b.record_at(Outcome::Failure, t);
        b.record_at(Outcome::Failure, t);
        b.record_at(Outcome::Success, t);
        b.record_at(Outcome::Failure, t);
        b.record_at(Outcome::Neutral, t);
        b.record_at(Outcome::Failure, t);
        assert_eq!(b.phase(), Phase::Closed);
        assert!(b.admit_at(t).is_ok());
        b.record_at(Outcome::Failure, t);
        assert_eq!(b.phase(), Phase::Open);
        assert_eq!(
            b.admit_at(t + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_answer_decides() {
        let (b, t) = tripped();
        let after = t + Duration::from_secs(10);
        assert!(b.admit_at(after).is_ok(), "the probe");
        assert_eq!(b.phase(), Phase::HalfOpen);
        assert_eq!(
            b.admit_at(after),
            Err(HALF_OPEN_RETRY),
            "others wait for the probe"
        );
        b.record_at(Outcome::Failure, after);
        assert_eq!(b.phase(), Phase::Open);
        assert_eq!(b.admit_at(after), Err(Duration::from_secs(10)));

        let later = after + Duration::from_secs(10);
        assert!(b.admit_at(later).is_ok());
        b.record_at(Outcome::Success, later);
        assert_eq!(b.phase(), Phase::Closed);
        assert!(b.admit_at(later).is_ok());
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let (b, t) = tripped();
        let probe = t + Duration::from_secs(10);
        assert!(b.admit_at(probe).is_ok());
        // The probe's caller went away and never recorded anything.
        assert!(b.admit_at(probe + Duration::from_secs(5)).is_err());
        assert!(
            b.admit_at(probe + Duration::from_secs(10)).is_ok(),
            "a new probe"
        );
    }

    #[test]
    fn a_neutral_probe_answer_lets_the_next_probe_through() {
        let (b, t) = tripped();
        let probe = t + Duration::from_secs(10);
        assert!(b.admit_at(probe).is_ok());
        b.record_at(Outcome::Neutral, probe);
        assert!(b.admit_at(probe).is_ok());
    }
}
