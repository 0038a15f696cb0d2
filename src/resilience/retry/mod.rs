//! When to retry, as a `tower::retry::Policy`: only transient errors, at most
//! `max_attempts` attempts, after a full-jitter backoff of at least the
//! `Retry-After` asked for, never when that wait would end past the caller's
//! deadline, and only while the retry budget allows.
//!
//! The budget is tower's [`TpsBudget`] (Linkerd's retry budget): over a
//! sliding 10 s window, retries may total `budget_min_per_sec` per second
//! plus a `budget_ratio` share of the calls made. Without it, a failing
//! upstream would meet `max_attempts` times the traffic: a retry storm that
//! keeps it down.

use std::{sync::Arc, time::Duration};

use tokio::time::{Instant, Sleep};
use tower::retry::{
    Policy,
    budget::{Budget, TpsBudget},
};

use super::{
    backoff::Backoff,
    call::{Call, Failure},
};
use crate::config::RetrySettings;

#[cfg(test)]
mod tests;

/// How long a deposit into the budget counts (tower allows 1 to 60 s).
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The retry policy; clones share one budget.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    max_attempts: u32,
    backoff: Backoff,
    budget: TpsBudget,
}

impl RetryPolicy {
    /// The one place the policy reads its settings.
    pub fn new(settings: &RetrySettings) -> Self {
        // TpsBudget counts whole retries per second: a fraction rounds up,
        // so that a small floor never becomes none.
        let min_per_sec = settings
            .budget_min_per_sec
            .ceil()
            .clamp(0.0, i32::MAX as f64 - 1.0) as u32;
        // Validated as 0 to 1 when loaded; clamped to what TpsBudget accepts
        // rather than trusting that here (it panics outside 0 to 1000).
        let ratio = (*settings.budget_ratio as f32).clamp(0.0, 1000.0);
        Self {
            shared: Arc::new(Shared {
                max_attempts: *settings.max_attempts,
                backoff: Backoff {
                    base: *settings.base_backoff,
                    cap: *settings.max_backoff,
                },
                budget: TpsBudget::new(BUDGET_WINDOW, min_per_sec, ratio),
            }),
        }
    }

    /// How long to wait before retrying after `error` in attempt `attempt`,
    /// or `None` when it must not be retried: not transient, attempts used
    /// up, a `Retry-After` longer than the backoff cap (the caller gets it
    /// instead), or the wait would end past the caller's deadline (the
    /// caller gets the real error now, not a DEADLINE_EXCEEDED later).
    fn wait<E: Failure>(
        &self,
        error: &E,
        attempt: u32,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let s = &self.shared;
        if !error.is_retryable() || attempt + 1 >= s.max_attempts {
            return None;
        }
        let asked = error.retry_after().unwrap_or_default();
        if asked > s.backoff.cap {
            return None;
        }
        let wait = s.backoff.jittered(attempt).max(asked);
        match deadline {
            Some(d) if Instant::now() + wait >= d => None,
            _ => Some(wait),
        }
    }
}

impl<Op, T, E: Failure> Policy<Call<Op, E>, T, E> for RetryPolicy {
    type Future = Sleep;

    fn retry(&mut self, call: &mut Call<Op, E>, result: &mut Result<T, E>) -> Option<Sleep> {
        let refused = matches!(result, Err(e) if e.is_circuit_open());
        // Every call that reached the upstream earns its share of retries.
        if call.attempt() == 0 && !refused {
            self.shared.budget.deposit();
        }
        let Err(error) = result else {
            return None;
        };
        if refused {
            // Nothing was sent. A retry the breaker refuses ends the call
            // with the error that asked for the retry.
            if let Some(previous) = call.take_previous_error() {
                *error = previous;
            }
            return None;
        }
        let wait = self.wait(error, call.attempt(), call.deadline())?;
        if !self.shared.budget.withdraw() {
            return None;
        }
        tracing::debug!(
            retry = call.attempt() + 1,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "retrying upstream"
        );
        call.retry_after_failure(error.clone());
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, call: &Call<Op, E>) -> Option<Call<Op, E>> {
        Some(call.clone())
    }
}
