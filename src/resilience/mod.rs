//! Keeping the gateway fast, bounded and honest through a misbehaving
//! upstream and through overload, the way a service proxy would. Each piece is
//! its own small policy object; [`crate::upstream::Upstream`] stacks them.
//!
//! - [`backoff`]: exponential backoff with full jitter.
//! - [`budget`]: a retry budget, so retries stay a fraction of traffic.
//! - [`breaker`]: a consecutive-failure circuit breaker with half-open probes.
//! - [`coalesce`]: concurrent calls for one key share one upstream request.
//! - [`overload`]: a process-wide cap on calls in flight that sheds at once.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod coalesce;
pub mod overload;
