//! One call as it travels through the resilience layers: the operation to
//! send, the caller's deadline and which attempt this is. The layers are
//! generic over the operation, so every upstream call (the result GET today,
//! a submit POST next) gets the same retries, breaker and metrics.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use super::breaker::Outcome;
use crate::trace::TraceContext;

/// How the resilience layers read an error of the service they guard. The
/// upstream's error implements it in one place, so which errors retry, trip
/// the breaker or were never sent is decided there alone.
///
/// `Display` is for the debug line of each retry.
pub trait Failure: Clone + fmt::Display + Send + Sync + 'static {
    /// What this attempt's error says about the upstream's health.
    fn breaker_outcome(&self) -> Outcome;
    /// Transient: the same request may succeed if sent again.
    fn is_retryable(&self) -> bool;
    /// The wait the upstream asked for (`Retry-After`).
    fn retry_after(&self) -> Option<Duration>;
    /// The request may have reached the upstream, but its answer was lost
    /// (a timeout, a connection dropped after sending). A retry of a request
    /// that is not idempotent must allow for a first one that took effect.
    fn outcome_unknown(&self) -> bool;
    /// The error of an attempt the open circuit refused; nothing was sent.
    fn circuit_open(retry_in: Duration) -> Self;
    /// Whether this is such a refusal.
    fn is_circuit_open(&self) -> bool;
    /// The error of an attempt that got none of the `limit` slots for
    /// requests in flight in time; nothing was sent. The gateway's own
    /// saturation: the breaker must read it as neutral, and it is not retried.
    fn no_slot(limit: usize) -> Self;
    /// The error for the callers of a shared request that ended without an
    /// answer (its task panicked or was cancelled by the runtime).
    fn flight_lost() -> Self;
}

/// One call: cheap to clone (the operation is shared), because tower's
/// `Retry` keeps a copy of the request for every attempt.
#[derive(Debug)]
pub struct Call<Op, E> {
    op: Arc<Op>,
    deadline: Deadline,
    attempt: u32,
    previous: Option<E>,
    /// Some earlier attempt may have taken effect upstream without its
    /// answer arriving.
    unknown_before: bool,
    /// The trace context this attempt's request carries, set as the
    /// attempt starts (its span's, with export on).
    outgoing: Option<TraceContext>,
}

// Derived `Clone` would demand `Op: Clone`; the operation is shared instead.
impl<Op, E: Clone> Clone for Call<Op, E> {
    fn clone(&self) -> Self {
        Self {
            op: Arc::clone(&self.op),
            deadline: self.deadline.clone(),
            attempt: self.attempt,
            previous: self.previous.clone(),
            unknown_before: self.unknown_before,
            outgoing: self.outgoing.clone(),
        }
    }
}

impl<Op, E> Call<Op, E> {
    /// A first attempt at `op`, for a caller who waits until `deadline`.
    pub fn new(op: Op, deadline: Option<Instant>) -> Self {
        Self {
            op: Arc::new(op),
            deadline: Deadline::Fixed(deadline),
            attempt: 0,
            previous: None,
            unknown_before: false,
            outgoing: None,
        }
    }

    /// What to send.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// When the (most patient) caller stops waiting; `None`: never.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.deadline {
            Deadline::Fixed(at) => *at,
            Deadline::Shared(shared) => shared.get(),
        }
    }

    /// The operation, for a coalesced request to share.
    pub(super) fn shared_op(&self) -> &Arc<Op> {
        &self.op
    }

    /// The trace context this attempt's request carries.
    pub fn outgoing_trace(&self) -> Option<&TraceContext> {
        self.outgoing.as_ref()
    }

    /// Sets the trace context this attempt's request carries.
    pub fn set_outgoing_trace(&mut self, trace: Option<TraceContext>) {
        self.outgoing = trace;
    }

    /// 0 for the first attempt, 1 for the first retry, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// On a retry, the error of the attempt before.
    pub fn previous_error(&self) -> Option<&E> {
        self.previous.as_ref()
    }

    /// The call becomes the next attempt, after `previous` failed.
    pub(crate) fn retry_after_error(&mut self, previous: E) {
        self.attempt += 1;
        self.previous = Some(previous);
    }

    /// Takes the error of the attempt before, if this is a retry.
    pub(super) fn take_previous_error(&mut self) -> Option<E> {
        self.previous.take()
    }

    /// From now on the call follows the deadline of a shared request.
    pub(super) fn share_deadline(&mut self, shared: Arc<SharedDeadline>) {
        self.deadline = Deadline::Shared(shared);
    }
}

impl<Op, E: Failure> Call<Op, E> {
    /// On a retry: some attempt before may have taken effect upstream (a
    /// timeout, a connection lost after sending), even if a later one was
    /// answered.
    pub fn earlier_outcome_unknown(&self) -> bool {
        self.unknown_before
    }

    /// The call becomes the next attempt, after `previous` failed,
    /// remembering whether that failure left its outcome unknown.
    pub(crate) fn retry_after_failure(&mut self, previous: E) {
        self.unknown_before |= previous.outcome_unknown();
        self.retry_after_error(previous);
    }
}

#[derive(Debug, Clone)]
enum Deadline {
    Fixed(Option<Instant>),
    Shared(Arc<SharedDeadline>),
}

/// The latest deadline among the callers sharing a request (`None`: one of
/// them has none), so the shared request may retry for as long as its most
/// patient caller waits.
#[derive(Debug)]
pub(super) struct SharedDeadline(Mutex<Option<Instant>>);

impl SharedDeadline {
    pub(super) fn new(deadline: Option<Instant>) -> Self {
        Self(Mutex::new(deadline))
    }

    /// Another caller joined.
    pub(super) fn extend(&self, other: Option<Instant>) {
        let mut d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *d = match (*d, other) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }

    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_deadline_is_the_most_patient_callers() {
        let now = Instant::now();
        let shared = Arc::new(SharedDeadline::new(Some(now + Duration::from_millis(100))));
        let mut call: Call<(), ()> = Call::new((), Some(now));
        call.share_deadline(Arc::clone(&shared));
        assert_eq!(call.deadline(), Some(now + Duration::from_millis(100)));
        shared.extend(Some(now + Duration::from_secs(5)));
        assert_eq!(call.deadline(), Some(now + Duration::from_secs(5)));
        shared.extend(Some(now));
        assert_eq!(call.deadline(), Some(now + Duration::from_secs(5)));
        shared.extend(None);
        assert_eq!(call.deadline(), None);
        shared.extend(Some(now));
        assert_eq!(call.deadline(), None, "no deadline stays no deadline");
    }

    #[test]
    fn a_retry_knows_whether_the_attempt_before_may_have_taken_effect() {
        use crate::resilience::testing::Fault;
        let mut call: Call<(), Fault> = Call::new((), None);
        assert!(!call.earlier_outcome_unknown(), "a first attempt");
        call.retry_after_failure(Fault::Down);
        assert!(!call.earlier_outcome_unknown(), "an answer came back");
        call.retry_after_failure(Fault::Slow);
        assert!(call.earlier_outcome_unknown(), "no answer in time");
        call.retry_after_failure(Fault::Down);
        assert!(
            call.earlier_outcome_unknown(),
            "a later answer does not undo an earlier unknown outcome"
        );
    }

    #[test]
    fn a_retry_carries_the_error_before_it() {
        let mut call: Call<&str, &str> = Call::new("op", None);
        let copy = call.clone();
        call.retry_after_error("reset");
        assert_eq!((call.attempt(), call.previous_error()), (1, Some(&"reset")));
        assert_eq!((copy.attempt(), copy.previous_error()), (0, None));
        assert_eq!(call.op(), copy.op());
    }
}
