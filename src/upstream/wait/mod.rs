//! Waiting for a job that has not finished yet: its result call answers 404
//! `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND` until it has, so the gateway asks
//! again, after `wait.poll_interval`, each pause 1.5 times longer up to
//! `wait.max_poll_interval`.
//!
//! Concurrent waiters for one reference id share one poll: one upstream
//! request per interval, not one per waiter. A poll runs while any of its
//! waiters still waits (until the latest of their ends), and stops at once
//! when the last of them goes away. Each waiter ends on its own: at a
//! result, a job error or any other error, or at its own end with the last
//! "not found".
//!
//! One task makes every poll of the process (`schedule`): a job waited for
//! is a small `job` entry and a place in its queue, not a task, a channel
//! and a request future of its own, since a waiting call may be one of
//! 10,000 at rest (`bench/README.md`, "waiting calls"). Each ask runs as
//! its own task within the span of the call that started the poll, so a
//! panic in one fails that job's waiters (logged at ERROR) and nothing else.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use tokio::time::Instant;

use super::{KtpResult, UpstreamError};
use crate::{
    config::WaitSettings, metrics::Metrics, reference_id::ReferenceId, trace::TraceContext,
};

mod job;
mod learn;
mod schedule;

use job::{End, Entry, Job, Phase};
use learn::Learner;
use schedule::Shared;

/// The upstream's answer for a job that does not exist (yet).
pub const NOT_FOUND_CODE: &str = "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND";

type Answer = Result<KtpResult, UpstreamError>;

/// How a wait ended.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per wait and moved straight to the handler"
)]
pub enum Waited {
    /// The job's answer: its result, its job error, or another error.
    Answered(Answer),
    /// The waiter's end came while the job was still not found: the last
    /// such answer, if any poll had answered by then.
    NotYet(Option<UpstreamError>),
    /// The server's shutdown handed the waiting calls back first
    /// ([`Upstream::stop_waiting`](crate::upstream::Upstream::stop_waiting)).
    HandedBack,
}

/// One result call, as a poll makes it: the upstream stack in production,
/// a scripted answer in the tests of this module.
pub(super) trait Fetch: Clone + Send + Sync + 'static {
    /// The job's answer now, asked within `until`.
    fn fetch(
        &self,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> impl Future<Output = Answer> + Send;
}

/// Whether `answer` says the job does not exist yet.
pub fn not_found_yet(answer: &Answer) -> bool {
    matches!(
        answer,
        Err(UpstreamError::Status { status: 404, error_code: Some(code), .. }) if code == NOT_FOUND_CODE
    )
}

/// The polls in progress, one per reference id, all made by one scheduler
/// task (`schedule`). Cheap to clone: every clone shares them.
#[derive(Debug, Clone)]
pub(super) struct Polls {
    shared: Arc<Shared>,
}

/// What a poll's answer says about its job, as the metric's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Not found yet: still being processed.
    NotReady,
    /// Its result or its job error.
    Finished,
    /// Any other error.
    Error,
}

impl PollOutcome {
    fn of(answer: &Answer) -> Self {
        match answer {
            _ if not_found_yet(answer) => Self::NotReady,
            Ok(_) | Err(UpstreamError::JobFailed { .. }) => Self::Finished,
            Err(_) => Self::Error,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotReady => "not_ready",
            Self::Finished => "finished",
            Self::Error => "error",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain values, valid even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Polls {
    pub(super) fn new(settings: &WaitSettings, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                first_interval: *settings.poll_interval,
                max_interval: *settings.max_poll_interval,
                max_in_flight: *settings.max_polls_in_flight,
                learner: Learner::new(settings.first_poll, metrics.clone()),
                metrics,
                stopped: AtomicBool::new(false),
                state: Mutex::default(),
            }),
        }
    }

    /// This process's submit of `reference_id` was answered now: a wait on
    /// it polls when the job is likely done.
    pub(super) fn submitted(&self, reference_id: &str) {
        self.shared.learner.submitted(reference_id);
    }

    /// Waits for `reference_id`'s answer until `until`, sharing its poll
    /// with every other waiter for it. The scheduler asks with the `fetch`
    /// of the wait that started it, so every wait on one `Polls` passes the
    /// same upstream (or a clone of it).
    ///
    /// The waiter holds no timer and no shutdown signal of its own (a
    /// waiting call may be one of 10,000 at rest): the scheduler wakes it
    /// at its end, and [`Polls::stop_waiting`] at the server's shutdown.
    pub(super) async fn wait<F: Fetch>(
        &self,
        fetch: &F,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Waited {
        // Stopped already: a wait that starts after the drain delay.
        if self.stopped() {
            return Waited::HandedBack;
        }
        let waiter = self.join(fetch, reference_id, until, trace);
        let job = &waiter.job;
        loop {
            // Woken when the poll ends, at any waiter's end, at the
            // shutdown; created before anything is read, so a wake-up in
            // between still wakes it.
            let woken = job.ended.notified();
            if let Some(waited) = job.waited() {
                return waited;
            }
            if self.stopped() {
                return Waited::HandedBack;
            }
            if Instant::now() >= until {
                return job.waited_to_the_end();
            }
            woken.await;
        }
    }

    /// Hands every waiting call back, and any that starts waiting from now
    /// on: the server's shutdown (its drain delay over), so that no waiting
    /// call holds the pod for its job. The polls go on while their waiters
    /// leave.
    pub(super) fn stop_waiting(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Under the map's lock, where waiters join: a waiter that joined
        // before is woken, one that joins after reads the flag.
        let state = lock(&self.shared.state);
        for Entry(job) in &state.jobs {
            job.ended.notify_waiters();
        }
    }

    fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    /// The poll for `reference_id`, joined (and its end extended) or started.
    fn join<F: Fetch>(
        &self,
        fetch: &F,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Waiter<'_> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        if let Some(Entry(job)) = state.jobs.get(reference_id.as_str()) {
            let job = Arc::clone(job);
            let mut job_state = job.state();
            job_state.until = job_state.until.max(until);
            job_state.waiters += 1;
            drop(job_state);
            state.time_end(End::new(&job, until));
            return Waiter { shared, job };
        }
        // A job this process submitted is asked for when it is likely
        // done, never after the waiters' end.
        let (tracked, first_at) = shared.learner.first_poll(reference_id.as_str());
        let job = Arc::new(Job::new(
            reference_id.clone(),
            trace.cloned(),
            until,
            shared.first_interval,
            tracked,
        ));
        let at = first_at.map_or_else(Instant::now, |at| at.min(until));
        state.add(&job, at, until, |wake| {
            tokio::spawn(schedule::run(Arc::clone(shared), fetch.clone(), wake));
        });
        Waiter { shared, job }
    }
}

/// One waiter's hold on its job's poll: the last to drop stops the poll.
struct Waiter<'a> {
    shared: &'a Shared,
    job: Arc<Job>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        // The map's lock first, as everywhere: a join cannot find the job
        // between its last waiter leaving and its removal. Nothing dropped
        // here locks the map again (the job has no `Drop` of its own).
        let mut state = lock(&self.shared.state);
        let mut job_state = self.job.state();
        job_state.waiters = job_state.waiters.saturating_sub(1);
        if job_state.waiters == 0 && job_state.polling() {
            job_state.end(Phase::Left);
            drop(job_state);
            state.remove(&self.job);
        }
    }
}

#[cfg(test)]
mod end_tests;
#[cfg(test)]
mod tests;
