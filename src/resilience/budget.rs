//! A retry budget: retries may add at most `ratio` of the request rate, plus
//! `min_per_sec` so that a quiet gateway can still retry. Without it, a failing
//! upstream meets (max_attempts × traffic) — a retry storm that keeps it down.
//!
//! A token bucket: every first attempt deposits `ratio` tokens, time deposits
//! `min_per_sec` tokens per second, a retry withdraws one token; the balance
//! is capped so that a long quiet period cannot bank an unbounded burst.

use std::{sync::Mutex, time::Instant};

/// Budget parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    /// Retries allowed per request, on average (0.2 = 20 %).
    pub ratio: f64,
    /// Retries per second allowed regardless of traffic.
    pub min_per_sec: f64,
}

/// Seconds of `min_per_sec` (and of deposits at the same rate) the bucket holds.
const CAPACITY_SECONDS: f64 = 10.0;

#[derive(Debug)]
pub struct RetryBudget {
    settings: BudgetSettings,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    balance: f64,
    refilled_at: Instant,
}

impl RetryBudget {
    pub fn new(settings: BudgetSettings) -> Self {
        let capacity = (settings.min_per_sec * CAPACITY_SECONDS).max(1.0) + settings.ratio * 100.0;
        Self {
            settings,
            capacity,
            state: Mutex::new(State {
                balance: settings.min_per_sec * CAPACITY_SECONDS,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Records a first attempt.
    pub fn deposit(&self) {
        self.with_state(Instant::now(), |s, cap, settings| {
            s.balance = (s.balance + settings.ratio).min(cap);
        });
    }

    /// Takes one retry from the budget, if there is one.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }

    fn try_withdraw_at(&self, now: Instant) -> bool {
        self.with_state(now, |s, _, _| {
            if s.balance >= 1.0 {
                s.balance -= 1.0;
                true
            } else {
                false
            }
        })
    }

    fn with_state<T>(
        &self,
        now: Instant,
        f: impl FnOnce(&mut State, f64, BudgetSettings) -> T,
    ) -> T {
        // A poisoned lock only means another thread panicked mid-update of two
        // floats; the numbers are still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.refilled_at).as_secs_f64();
        s.balance = (s.balance + elapsed * self.settings.min_per_sec).min(self.capacity);
        s.refilled_at = now;
        f(&mut s, self.capacity, self.settings)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn retries_are_limited_to_the_ratio_of_requests_under_sustained_failure() {
        let budget = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_sec: 0.0,
        });
        let now = Instant::now();
        let mut retries = 0;
        for _ in 0..1000 {
            budget.deposit();
            if budget.try_withdraw_at(now) {
                retries += 1;
            }
        }
        assert!(
            (195..=205).contains(&retries),
            "{retries} retries for 1000 requests"
        );
    }

    #[test]
    fn the_floor_allows_retries_without_traffic_and_refills_over_time() {
        let budget = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_sec: 2.0,
        });
        let start = Instant::now();
        let mut burst = 0;
        while budget.try_withdraw_at(start) {
            burst += 1;
        }
        assert_eq!(burst, 20, "starts with 10 s of the floor");
        assert!(!budget.try_withdraw_at(start));
        assert!(budget.try_withdraw_at(start + Duration::from_millis(600)));
        assert!(!budget.try_withdraw_at(start + Duration::from_millis(600)));
    }

    #[test]
    fn a_long_quiet_period_cannot_bank_an_unbounded_burst() {
        let budget = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_sec: 1.0,
        });
        let later = Instant::now() + Duration::from_secs(3600);
        let mut burst = 0;
        while budget.try_withdraw_at(later) {
            burst += 1;
        }
        assert!(burst <= 30, "{burst}");
    }
}
