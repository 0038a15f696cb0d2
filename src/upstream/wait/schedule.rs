//! The one task that makes every wait's polls: a queue of the jobs' next
//! asks (earliest first), at most `wait.max_polls_in_flight` asks at once,
//! each its own task (so a panic in one is that job's loss, not the
//! scheduler's), and the answers applied to their jobs.
//!
//! A job costs its [`Job`] and a queue entry between two polls, not a task,
//! a channel and a request future of its own (`bench/README.md`, "waiting
//! calls"). The scheduler runs while any job is polled: the first job's
//! join starts it, and it stops once the map is empty (whoever empties it
//! says so under the map's lock, so a later join starts a new one).

use std::{
    collections::{BinaryHeap, HashMap, HashSet},
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use tokio::{
    sync::Notify,
    task::{self, JoinSet},
    time::Instant,
};
use tracing::Instrument;

use super::{
    Answer, Fetch, PollOutcome,
    job::{Due, End, Entry, Job, NotFound, Phase},
    learn::Learner,
};
use crate::{metrics::Metrics, upstream::UpstreamError};

/// What every wait of a process shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) first_interval: Duration,
    pub(super) max_interval: Duration,
    /// `wait.max_polls_in_flight`.
    pub(super) max_in_flight: usize,
    /// When jobs this process submitted are likely done.
    pub(super) learner: Learner,
    pub(super) metrics: Metrics,
    /// The server's shutdown handed the waiting calls back.
    pub(super) stopped: AtomicBool,
    pub(super) state: Mutex<State>,
}

/// The jobs polled and their queue, under one lock (taken before any job's).
#[derive(Debug, Default)]
pub(super) struct State {
    /// The jobs being polled, by reference id.
    pub(super) jobs: HashSet<Entry>,
    /// Each polled job's next ask; entries of jobs no longer polled are
    /// skipped when they come up.
    pub(super) queue: BinaryHeap<Due>,
    /// Each waiter's end: its waiters are woken then (a timer each would
    /// cost every waiting call its size).
    pub(super) ends: BinaryHeap<End>,
    /// `ends`' length when its entries of jobs gone were last dropped.
    pub(super) ends_kept: usize,
    /// The running scheduler's wake-up: `None` when none runs.
    pub(super) scheduler: Option<Arc<Notify>>,
}

impl State {
    /// Adds `job`, due `at`, its first waiter's end `until`, and wakes (or
    /// starts) the scheduler; `start` spawns one with its wake-up.
    pub(super) fn add(
        &mut self,
        job: &Arc<Job>,
        at: Instant,
        until: Instant,
        start: impl FnOnce(Arc<Notify>),
    ) {
        self.jobs.insert(Entry(Arc::clone(job)));
        self.queue.push(Due {
            at,
            job: Arc::clone(job),
        });
        self.push_end(End::new(job, until));
        match &self.scheduler {
            Some(wake) => wake.notify_one(),
            None => {
                let wake = Arc::new(Notify::new());
                self.scheduler = Some(Arc::clone(&wake));
                start(wake);
            }
        }
    }

    /// Times one more waiter's end, waking the scheduler if it comes first.
    pub(super) fn time_end(&mut self, end: End) {
        let at = end.at;
        self.push_end(end);
        if self.ends.peek().is_some_and(|first| first.at == at)
            && let Some(wake) = &self.scheduler
        {
            wake.notify_one();
        }
    }

    /// Adds `end`; first drops the entries of jobs gone (answered before
    /// their waiters' ends: each keeps the job's allocation) once the queue
    /// has grown by a quarter since that was last done, so at most about a
    /// fifth of it is theirs, at a cost shared by the pushes in between.
    fn push_end(&mut self, end: End) {
        if self.ends.len() >= self.ends_kept + self.ends_kept / 4 + 64 {
            self.ends.retain(|e| e.job.strong_count() > 0);
            self.ends_kept = self.ends.len();
        }
        self.ends.push(end);
    }

    /// Wakes the waiters of every job whose end (one of its waiters') has
    /// come; the next end, if any.
    fn wake_ended(&mut self, now: Instant) -> Option<Instant> {
        while let Some(end) = self.ends.peek() {
            if end.at > now {
                return Some(end.at);
            }
            self.ends_kept = self.ends_kept.saturating_sub(1);
            if let Some(End { job, .. }) = self.ends.pop()
                && let Some(job) = job.upgrade()
            {
                job.ended.notify_waiters();
            }
        }
        None
    }

    /// Removes `job` from the map, if it is its entry (a newer job for the
    /// id may have replaced it). The last job out stops the scheduler.
    pub(super) fn remove(&mut self, job: &Arc<Job>) {
        if self
            .jobs
            .get(job.id.as_str())
            .is_some_and(|e| Arc::ptr_eq(&e.0, job))
        {
            self.jobs.remove(job.id.as_str());
        }
        if self.jobs.is_empty() {
            // Every entry left is of a job no longer polled (whose waiters
            // were woken when it ended).
            self.queue.clear();
            self.ends.clear();
            self.ends_kept = 0;
            if let Some(wake) = self.scheduler.take() {
                wake.notify_one();
            }
        }
    }

    fn runs(&self, me: &Arc<Notify>) -> bool {
        self.scheduler.as_ref().is_some_and(|s| Arc::ptr_eq(s, me))
    }
}

/// The scheduler: starts the asks that are due, applies their answers,
/// until it is told to stop (no job left).
pub(super) async fn run<F: Fetch>(shared: Arc<Shared>, fetch: F, me: Arc<Notify>) {
    let _dies = Dies {
        shared: &shared,
        me: &me,
    };
    let mut asking = JoinSet::new();
    let mut jobs: HashMap<task::Id, Arc<Job>> = HashMap::new();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let next = {
            let mut state = super::lock(&shared.state);
            if !state.runs(&me) {
                return;
            }
            let now = Instant::now();
            while asking.len() < shared.max_in_flight
                && state.queue.peek().is_some_and(|due| due.at <= now)
            {
                let Some(Due { job, .. }) = state.queue.pop() else {
                    break;
                };
                let mut job_state = job.state();
                if !job_state.polling() {
                    continue;
                }
                let (fetch, until) = (fetch.clone(), job_state.until);
                let span = job.span.clone();
                let asked = Arc::clone(&job);
                let handle = asking.spawn(
                    async move { fetch.fetch(&asked.id, until, asked.trace.as_ref()).await }
                        .instrument(span),
                );
                let id = handle.id();
                job_state.asking = Some(handle);
                drop(job_state);
                jobs.insert(id, job);
            }
            let end = state.wake_ended(now);
            // A full pace waits for an answer, not for the queue's time;
            // the waiters' ends come whatever the pace.
            let ask = (asking.len() < shared.max_in_flight)
                .then(|| state.queue.peek().map(|due| due.at))
                .flatten();
            ask.into_iter().chain(end).min()
        };
        if let Some(at) = next {
            sleep.as_mut().reset(at);
        }
        tokio::select! {
            Some(done) = asking.join_next_with_id(), if !asking.is_empty() => {
                let (id, answer) = match done {
                    Ok((id, answer)) => (id, Ok(answer)),
                    Err(error) => (error.id(), Err(())),
                };
                if let Some(job) = jobs.remove(&id) {
                    shared.answered(&job, answer);
                }
            }
            () = &mut sleep, if next.is_some() => {}
            () = me.notified() => {}
        }
    }
}

impl Shared {
    /// Applies one ask's answer (`Err` when the ask died) to `job`.
    fn answered(&self, job: &Arc<Job>, answer: Result<Answer, ()>) {
        let mut state = super::lock(&self.state);
        let mut job_state = job.state();
        job_state.asking = None;
        if !job_state.polling() {
            // Its waiters left, or the scheduler is not the one running.
            return;
        }
        let Ok(answer) = answer else {
            // It panicked (or was aborted by something else than its
            // waiters leaving): its waiters say so.
            job_state.end(Phase::Lost);
            drop(job_state);
            state.remove(job);
            job.ended.notify_waiters();
            return;
        };
        // No upstream connection slot: the gateway's own saturation, not an
        // answer about the job. The poll pauses and asks again; its waiters
        // never see it.
        let no_slot = matches!(answer, Err(UpstreamError::NoSlot { .. }));
        if !no_slot {
            let outcome = PollOutcome::of(&answer);
            self.metrics.record_wait_poll(outcome.as_str());
            if let Some(tracked) = job_state.tracked.as_mut()
                && outcome != PollOutcome::Error
            {
                self.learner
                    .polled(tracked, outcome == PollOutcome::Finished);
            }
            match NotFound::of(&answer) {
                Some(not_found) => job_state.not_found = Some(not_found),
                None => {
                    job_state.end(Phase::Answered(Box::new(answer)));
                    drop(job_state);
                    state.remove(job);
                    job.ended.notify_waiters();
                    return;
                }
            }
        }
        // Decided under the map's lock, where waiters join: none can extend
        // the end of a poll that is stopping.
        let next = Instant::now() + job_state.interval;
        if next >= job_state.until {
            job_state.end(Phase::Stopped);
            drop(job_state);
            state.remove(job);
            job.ended.notify_waiters();
            return;
        }
        if !no_slot {
            job_state.interval = job_state.interval.mul_f64(1.5).min(self.max_interval);
        }
        drop(job_state);
        state.queue.push(Due {
            at: next,
            job: Arc::clone(job),
        });
    }
}

/// Marks every job lost if the scheduler ends other than by being told to
/// (a panic, an abort: the runtime shutting down), so that no waiter waits
/// for answers that will not come.
struct Dies<'a> {
    shared: &'a Shared,
    me: &'a Arc<Notify>,
}

impl Drop for Dies<'_> {
    fn drop(&mut self) {
        let mut state = super::lock(&self.shared.state);
        if !state.runs(self.me) {
            return;
        }
        state.scheduler = None;
        state.queue.clear();
        state.ends.clear();
        state.ends_kept = 0;
        let jobs: Vec<Entry> = state.jobs.drain().collect();
        drop(state);
        for Entry(job) in jobs {
            job.state().end(Phase::Lost);
            job.ended.notify_waiters();
        }
    }
}
