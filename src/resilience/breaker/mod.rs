//! A circuit breaker: after `failure_threshold` consecutive transient
//! failures the upstream is presumed down, and calls fail fast for `cooldown`
//! instead of each waiting out a timeout. Then one probe is let through
//! (half-open): its success closes the circuit, its failure re-opens it.
//!
//! The breaker guards the upstream only; it never touches health, so liveness
//! and readiness stay SERVING while it is open (every replica shares the same
//! upstream, and restarting pods would not fix it).
//!
//! [`BreakerLayer`] puts it around every attempt, retries included: it judges
//! attempts, not calls, and a retry needs its admission like a first try.

use std::{sync::Mutex, time::Duration};

// tokio's clock, so that tests can pause it.
use tokio::time::Instant;

use crate::config::BreakerSettings;

mod layer;
#[cfg(test)]
mod tests;

pub use layer::{Breaker, BreakerFuture, BreakerLayer};

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
    /// Attempts go out; consecutive failures are counted.
    Closed,
    /// Attempts are refused until the cool-down ends.
    Open,
    /// One probe is out; every other attempt is refused until it ends.
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

/// One per upstream, shared by every call to it.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    cooldown: Duration,
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
    /// The one place the breaker reads its settings.
    pub fn new(settings: &BreakerSettings) -> Self {
        Self {
            failure_threshold: *settings.failure_threshold,
            cooldown: *settings.cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// A breaker that never opens, for the embedded sandbox: its magic ids
    /// simulate failures one id at a time, and a simulated outage of one id
    /// must not make every other id fail fast.
    pub fn never_opening() -> Self {
        Self {
            failure_threshold: u32::MAX,
            cooldown: Duration::ZERO,
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

    /// The phase now, for metrics.
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
            } if now < sent + self.cooldown => Err(HALF_OPEN_RETRY),
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
            until: now + self.cooldown,
        };
        *state = match (*state, outcome) {
            (_, Outcome::Success) => State::Closed { failures: 0 },
            (State::Closed { failures }, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.failure_threshold {
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
