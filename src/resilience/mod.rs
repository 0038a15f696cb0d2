//! Keeping the gateway fast, bounded and honest through a misbehaving
//! upstream and through overload, the way a service proxy would. Each piece
//! is a tower layer (or policy) of its own, generic over the operation it
//! guards; `crate::upstream::stack` stacks them around one attempt.
//!
//! - [`call`]: [`Call`], a request as the layers see it (operation, caller
//!   deadline, attempt), and [`Failure`], how they read its errors.
//! - [`coalesce`]: concurrent calls for one key share one request.
//! - [`retry`]: the `tower::retry::Policy`: transient errors only, backoff,
//!   `Retry-After`, the caller's deadline, tower's `TpsBudget`.
//! - [`backoff`]: exponential backoff with full jitter.
//! - [`breaker`]: a consecutive-failure circuit breaker with half-open
//!   probes, and its layer around each attempt.
//! - [`overload`]: a process-wide cap on calls in flight that sheds at once.
//! - [`capacity`]: that cap's default, derived from the memory the process
//!   may use (cgroup limit or physical memory).
//! - [`slots`]: the cap on requests in flight to the upstream, as a layer;
//!   a request that gets no slot in time is the gateway's saturation, not
//!   the upstream's failure.

pub mod backoff;
pub mod breaker;
pub mod call;
pub mod capacity;
pub mod coalesce;
pub mod overload;
pub mod retry;
pub mod slots;
#[cfg(test)]
pub(crate) mod testing;

pub use call::{Call, Failure};
