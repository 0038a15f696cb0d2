//! A process-wide cap on calls in flight. Past it the gateway refuses at once
//! (RESOURCE_EXHAUSTED, `OVERLOADED`) rather than queueing without bound:
//! a queue only turns overload into latency, then into timeouts for everyone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Held for the duration of one admitted call.
#[derive(Debug)]
pub struct InFlight(#[allow(dead_code)] OwnedSemaphorePermit);

/// The cap itself; clones share the count, so one instance serves the whole
/// process.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl InFlightLimit {
    /// `limit` calls may be in flight at once (`server.max_in_flight`).
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Admits a call, or `None` when `limit` calls are already in flight.
    pub fn try_admit(&self) -> Option<InFlight> {
        self.permits.clone().try_acquire_owned().ok().map(InFlight)
    }

    /// Calls currently in flight.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// The cap, for the `max_in_flight` metadata of a refusal.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_past_the_limit_and_recovers_when_calls_finish() {
        let limit = InFlightLimit::new(2);
        let a = limit.try_admit().expect("first");
        let _b = limit.try_admit().expect("second");
        assert!(limit.try_admit().is_none());
        assert_eq!(limit.in_flight(), 2);
        drop(a);
        assert!(limit.try_admit().is_some());
    }
}
