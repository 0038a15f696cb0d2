//! One reference id's shared poll, as its waiters and the scheduler see it:
//! a few hundred bytes however many wait on it, and nothing of a request
//! or an answer held between two polls (the "not found" kept is its one
//! varying field).

use std::{
    borrow::Borrow,
    cmp::Ordering,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::{sync::Notify, task::AbortHandle, time::Instant};

use super::{Answer, NOT_FOUND_CODE, Waited, learn::Tracked, not_found_yet};
use crate::{
    reference_id::ReferenceId, resilience::Failure, trace::TraceContext, upstream::UpstreamError,
};

/// A job's poll: what does not change, and its state behind a lock of its
/// own, so that a waiter reads it without the map's lock.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) id: ReferenceId,
    /// The span of the call that started the poll: its requests log within
    /// it. Disabled (no allocation) unless DEBUG is on, as the call's span is.
    pub(super) span: tracing::Span,
    /// The starting call's trace context, passed on with every poll.
    pub(super) trace: Option<TraceContext>,
    /// Wakes the waiters when the poll ends (an answer, a stop, a loss);
    /// a "not found" wakes nobody: a waiter reads the last one at its end.
    pub(super) ended: Notify,
    state: Mutex<JobState>,
}

/// A job's poll as it goes. Locked after the map's lock, never before.
#[derive(Debug)]
pub(super) struct JobState {
    /// The latest end among the waiters: no poll is asked for past it.
    pub(super) until: Instant,
    /// Waiters still waiting; the last to leave stops the poll.
    pub(super) waiters: u32,
    /// The pause after the next answer, 1.5 times longer each time.
    pub(super) interval: Duration,
    /// This process submitted the job: what its polls teach the learner.
    pub(super) tracked: Option<Tracked>,
    /// The request in flight, aborted when the last waiter leaves.
    pub(super) asking: Option<AbortHandle>,
    /// The last "not found", as its `Retry-After`: the rest of it is fixed.
    pub(super) not_found: Option<NotFound>,
    pub(super) phase: Phase,
}

/// Where a poll is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// Queued or asking.
    Polling,
    /// The job's answer (not "not found"): every waiter gets it.
    Answered(Box<Answer>),
    /// Stopped by itself: the next ask would come after every waiter's end.
    Stopped,
    /// Died without an answer (a panic, an abort): the gateway's bug.
    Lost,
    /// Its last waiter left.
    Left,
}

/// A "not found yet" answer, kept small: only `Retry-After` varies.
#[derive(Debug, Clone, Copy)]
pub(super) struct NotFound(Option<Duration>);

impl NotFound {
    /// `answer`'s "not found", if it is one (`super::not_found_yet`).
    pub(super) fn of(answer: &Answer) -> Option<Self> {
        match answer {
            Err(UpstreamError::Status { retry_after, .. }) if not_found_yet(answer) => {
                Some(Self(*retry_after))
            }
            _ => None,
        }
    }

    /// The answer it was made from.
    pub(super) fn error(self) -> UpstreamError {
        UpstreamError::Status {
            status: 404,
            error_code: Some(NOT_FOUND_CODE.to_owned()),
            retry_after: self.0,
        }
    }
}

impl Job {
    pub(super) fn new(
        id: ReferenceId,
        trace: Option<TraceContext>,
        until: Instant,
        interval: Duration,
        tracked: Option<Tracked>,
    ) -> Self {
        Self {
            id,
            span: tracing::Span::current(),
            trace,
            ended: Notify::new(),
            state: Mutex::new(JobState {
                until,
                waiters: 1,
                interval,
                tracked,
                asking: None,
                not_found: None,
                phase: Phase::Polling,
            }),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, JobState> {
        super::lock(&self.state)
    }

    /// How the wait ended for a waiter, if the poll has ended.
    pub(super) fn waited(&self) -> Option<Waited> {
        let state = self.state();
        match &state.phase {
            Phase::Polling | Phase::Left => None,
            Phase::Answered(answer) => Some(Waited::Answered((**answer).clone())),
            Phase::Stopped => Some(Waited::NotYet(state.not_found.map(NotFound::error))),
            Phase::Lost => {
                drop(state);
                // A bug, not a job still running.
                tracing::error!(
                    "the shared poll of a waiting call ended without an answer: it panicked or was aborted"
                );
                Some(Waited::Answered(Err(UpstreamError::flight_lost())))
            }
        }
    }

    /// How the wait ended for a waiter whose own end came first: as the
    /// poll ended if it did, else with the last "not found", if any.
    pub(super) fn waited_to_the_end(&self) -> Waited {
        self.waited()
            .unwrap_or_else(|| Waited::NotYet(self.state().not_found.map(NotFound::error)))
    }
}

impl JobState {
    /// Ends the poll: the waiters read `phase` once woken.
    pub(super) fn end(&mut self, phase: Phase) {
        self.phase = phase;
        if let Some(asking) = self.asking.take() {
            asking.abort();
        }
    }

    pub(super) fn polling(&self) -> bool {
        matches!(self.phase, Phase::Polling)
    }
}

/// A job in the map, found by its reference id (stored once, in the job).
#[derive(Debug, Clone)]
pub(super) struct Entry(pub(super) Arc<Job>);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.0.id.as_str()
    }
}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the `str` it borrows as, so that lookups by `&str` find it.
        self.0.id.as_str().hash(state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.id.as_str() == other.0.id.as_str()
    }
}

impl Eq for Entry {}

/// A job's next ask, in the scheduler's queue (earliest first).
#[derive(Debug)]
pub(super) struct Due {
    pub(super) at: Instant,
    pub(super) job: Arc<Job>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// Reversed: `BinaryHeap` is a max-heap, and the earliest comes first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// A waiter's end, in the scheduler's queue of ends (earliest first): the
/// scheduler wakes the job's waiters then, and each that has reached its
/// own end leaves. Weak: a job that ended before keeps its allocation
/// until then, not its answer.
#[derive(Debug)]
pub(super) struct End {
    pub(super) at: Instant,
    pub(super) job: Weak<Job>,
}

impl End {
    pub(super) fn new(job: &Arc<Job>, at: Instant) -> Self {
        Self {
            at,
            job: Arc::downgrade(job),
        }
    }
}

impl PartialEq for End {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for End {}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    /// Reversed, as [`Due`]'s: the earliest comes first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}
