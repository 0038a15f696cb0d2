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

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{oneshot, watch},
    task::AbortHandle,
    time::Instant,
};
use tracing::Instrument;

use super::{KtpResult, UpstreamError};
use crate::{
    config::WaitSettings, metrics::Metrics, reference_id::ReferenceId, resilience::Failure,
    trace::TraceContext,
};

mod learn;

use learn::{Learner, Tracked};

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

/// The polls in progress, by reference id.
#[derive(Debug, Clone)]
pub(super) struct Polls {
    first_interval: Duration,
    max_interval: Duration,
    polls: Arc<Mutex<HashMap<String, Weak<Poll>>>>,
    /// When jobs this process submitted are likely done.
    learner: Learner,
    metrics: Metrics,
    /// `wait.max_polls_in_flight`: a poll asks only while it holds one.
    pace: Arc<tokio::sync::Semaphore>,
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

/// One shared poll. Dropping the last handle stops it.
#[derive(Debug)]
struct Poll {
    key: String,
    /// The latest answer; `None` until the first poll has answered.
    latest: watch::Receiver<Option<Answer>>,
    /// The latest end among the waiters; only changed under the map's lock.
    until: Mutex<Instant>,
    /// Set by the task when it stops by itself (an answer, or no waiter
    /// left to ask for): an end without it is a panic or an abort.
    ended: Arc<AtomicBool>,
    task: AbortHandle,
    polls: Weak<Mutex<HashMap<String, Weak<Poll>>>>,
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.task.abort();
        let Some(polls) = self.polls.upgrade() else {
            return;
        };
        let mut map = lock(&polls);
        // Only our own entry: a newer poll for the id may have replaced it.
        if map
            .get(&self.key)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            map.remove(&self.key);
        }
    }
}

/// Removes `me`'s entry for `id`, and only its own: a newer poll for the id
/// may have replaced it, and removing that one would let the next waiter
/// start a duplicate.
fn remove_own(map: &mut HashMap<String, Weak<Poll>>, id: &ReferenceId, me: &Weak<Poll>) {
    if map.get(id.as_str()).is_some_and(|w| w.ptr_eq(me)) {
        map.remove(id.as_str());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain values, valid even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Polls {
    pub(super) fn new(settings: &WaitSettings, metrics: Metrics) -> Self {
        Self {
            first_interval: *settings.poll_interval,
            max_interval: *settings.max_poll_interval,
            polls: Arc::default(),
            learner: Learner::new(settings.first_poll, metrics.clone()),
            metrics,
            pace: Arc::new(tokio::sync::Semaphore::new(*settings.max_polls_in_flight)),
        }
    }

    /// This process's submit of `reference_id` was answered now: a wait on
    /// it polls when the job is likely done.
    pub(super) fn submitted(&self, reference_id: &str) {
        self.learner.submitted(reference_id);
    }

    pub(super) async fn wait<F: Fetch>(
        &self,
        fetch: &F,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Waited {
        let poll = self.join(fetch, reference_id, until, trace);
        let mut latest = poll.latest.clone();
        let mut last_not_found = None;
        loop {
            if let Some(answer) = latest.borrow_and_update().as_ref() {
                if !not_found_yet(answer) {
                    return Waited::Answered(answer.clone());
                }
                last_not_found = answer.as_ref().err().cloned();
            }
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        // The poll stopped without a newer answer (it was
                        // the last one before the poll's end, which is not
                        // before ours)...
                        if poll.ended.load(Ordering::Acquire) {
                            return Waited::NotYet(last_not_found);
                        }
                        // ...or it died: a bug, not a job still running.
                        tracing::error!(
                            "the shared poll of a waiting call ended without an answer: it panicked or was aborted"
                        );
                        return Waited::Answered(Err(UpstreamError::flight_lost()));
                    }
                }
                () = tokio::time::sleep_until(until) => return Waited::NotYet(last_not_found),
            }
        }
    }

    /// The poll for `reference_id`, joined (and its end extended) or started.
    fn join<F: Fetch>(
        &self,
        fetch: &F,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Arc<Poll> {
        let mut map = lock(&self.polls);
        if let Some(poll) = map.get(reference_id.as_str()).and_then(Weak::upgrade) {
            let mut end = lock(&poll.until);
            *end = (*end).max(until);
            drop(end);
            return poll;
        }
        let (tx, rx) = watch::channel(None);
        // The task learns its poll once the poll exists.
        let (start, started) = oneshot::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let (tracked, first_at) = self.learner.first_poll(reference_id.as_str());
        let run = self.run(
            fetch.clone(),
            reference_id.clone(),
            trace.cloned(),
            (tx, Arc::clone(&ended)),
            (started, tracked, first_at),
        );
        // The poll's requests log within the span of the call that started it.
        let task = tokio::spawn(run.instrument(tracing::Span::current()));
        let poll = Arc::new(Poll {
            key: reference_id.as_str().to_owned(),
            latest: rx,
            until: Mutex::new(until),
            ended,
            task: task.abort_handle(),
            polls: Arc::downgrade(&self.polls),
        });
        let _ = start.send(Arc::downgrade(&poll));
        map.insert(reference_id.as_str().to_owned(), Arc::downgrade(&poll));
        poll
    }

    /// The poll itself: ask, publish, pause, until an answer that is not
    /// "not found", or until the next ask would come after every waiter's end.
    fn run<F: Fetch>(
        &self,
        fetch: F,
        reference_id: ReferenceId,
        trace: Option<TraceContext>,
        (tx, ended): (watch::Sender<Option<Answer>>, Arc<AtomicBool>),
        (started, mut tracked, first_at): (
            oneshot::Receiver<Weak<Poll>>,
            Option<Tracked>,
            Option<Instant>,
        ),
    ) -> impl Future<Output = ()> + Send + 'static {
        let (first, max) = (self.first_interval, self.max_interval);
        let polls = Arc::clone(&self.polls);
        let (learner, metrics) = (self.learner.clone(), self.metrics.clone());
        let pace = Arc::clone(&self.pace);
        async move {
            let Ok(me) = started.await else { return };
            let polled = async {
                // A job this process submitted is asked for when it is
                // likely done, never after the waiters' end.
                // The waiters' latest end; `None` once none is left.
                let until_now = || me.upgrade().map(|poll| *lock(&poll.until));
                if let Some(at) = first_at {
                    let Some(until) = until_now() else { return };
                    tokio::time::sleep_until(at.min(until)).await;
                }
                let mut interval = first;
                loop {
                    let Some(until) = until_now() else { return };
                    let answer = {
                        // Its turn among `wait.max_polls_in_flight` (the
                        // semaphore is never closed), held while it asks.
                        let Ok(_turn) = pace.acquire().await else {
                            return;
                        };
                        fetch.fetch(&reference_id, until, trace.as_ref()).await
                    };
                    // No upstream connection slot: the gateway's own
                    // saturation, not an answer about the job. The poll
                    // pauses and asks again; its waiters never see it.
                    let no_slot = matches!(answer, Err(UpstreamError::NoSlot { .. }));
                    if !no_slot {
                        let outcome = PollOutcome::of(&answer);
                        metrics.record_wait_poll(outcome.as_str());
                        if let Some(job) = tracked.as_mut()
                            && outcome != PollOutcome::Error
                        {
                            learner.polled(job, outcome == PollOutcome::Finished);
                        }
                        tx.send_replace(Some(answer));
                        if outcome != PollOutcome::NotReady {
                            break;
                        }
                    }
                    let next = Instant::now() + interval;
                    // Decided under the map's lock, where waiters join: none
                    // can extend the end of a poll that is stopping. The
                    // handle is taken first, so that it drops after the lock
                    // is released: if the waiters have all left, it is the
                    // last one, and its `Drop` takes the map's lock itself.
                    let stop = {
                        let Some(poll) = me.upgrade() else { return };
                        let mut map = lock(&polls);
                        let stop = next >= *lock(&poll.until);
                        if stop {
                            remove_own(&mut map, &reference_id, &me);
                        }
                        stop
                    };
                    if stop {
                        return;
                    }
                    tokio::time::sleep_until(next).await;
                    if !no_slot {
                        interval = interval.mul_f64(1.5).min(max);
                    }
                }
                remove_own(&mut lock(&polls), &reference_id, &me);
            };
            polled.await;
            // Stopped by itself. A panic or an abort never gets here, and
            // the waiters, seeing the answers end without this, say so.
            // Before `tx` drops: a waiter reads it once the channel closes.
            ended.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests;
