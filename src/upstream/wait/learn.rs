//! When to make a wait's first poll: the gateway learns how long the vendor
//! takes to finish the jobs this process submitted, and polls a job it
//! submitted when the job is likely done rather than at once.
//!
//! Each finished job's time lies between the last poll that found it
//! unfinished (or its submit) and the first that found it finished, both
//! counted from the submit's answer; the middle of that interval is its
//! estimate (the histogram `ktp_gateway_job_processing_seconds`). The first
//! poll's delay starts at the first estimate, then follows the jobs in
//! rounds: a round is the first polls of [`ROUND`] jobs scheduled with the
//! current delay. A good round (at most [`MISSES_ALLOWED`] found their job
//! unfinished) moves the delay down, halfway to the last delay of a bad
//! round when one is known, else by a tenth; a bad round moves it up,
//! halfway to the last good delay when one is known, else by [`STEP_UP`].
//! Once the two are within [`PRECISION`], the lower one is forgotten and the
//! delay probes down again by a tenth, so it follows jobs that get faster
//! (or slower). Only jobs scheduled with the current delay count, so a burst
//! of jobs already scheduled (their answers arrive a whole job time later)
//! cannot push the delay again and again: it moves once per round, however
//! many jobs arrive per second. One GET for most jobs, a second one
//! `wait.poll_interval` later for the rest, and an answer soon after the
//! job is ready (`tests::many_jobs_at_once_settle_near_their_time`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use crate::{config::FirstPoll, metrics::Metrics};

/// How long a submit is remembered: a wait on an older job polls at once.
pub(super) const REMEMBERED_FOR: Duration = Duration::from_secs(600);
/// How many submits are remembered at most (the oldest is forgotten first).
pub(super) const MAX_REMEMBERED: usize = 10_000;
/// How many first polls scheduled with one delay decide its next value.
const ROUND: u32 = 5;
/// A round where at most this many of [`ROUND`] first polls found their job
/// unfinished moves the delay earlier; more moves it later.
const MISSES_ALLOWED: u32 = 1;
/// How much later after a bad round, when no good delay above is known.
const STEP_UP: Duration = Duration::from_millis(200);
/// How close a good and a bad delay get before the bad one is forgotten.
const PRECISION: Duration = Duration::from_millis(50);
/// The first poll never waits longer than this after the submit.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// What is learnt, shared by every poll of the process.
#[derive(Debug, Clone)]
pub(crate) struct Learner {
    mode: FirstPoll,
    state: Arc<Mutex<State>>,
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct State {
    /// Submit answers, by reference id, with their order for forgetting.
    submitted: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
    /// The first poll's delay after the submit, once a job was seen finished.
    delay: Option<Duration>,
    /// Which value of `delay` this is: a job's first poll counts toward the
    /// round of the delay it was scheduled with, and no other.
    generation: u64,
    /// First polls of this round that found their job finished, and not.
    hits: u32,
    misses: u32,
    /// The last delay of a bad round, and of a good one.
    bad: Option<Duration>,
    good: Option<Duration>,
}

/// One job's polls, as its poll sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tracked {
    submitted: Instant,
    /// The last poll that found it unfinished, from the submit.
    unfinished: Duration,
    /// Whether the next poll is the first.
    first: bool,
    /// The delay's generation its first poll was scheduled with, if the
    /// learnt delay scheduled it.
    scheduled_with: Option<u64>,
}

impl Learner {
    pub(crate) fn new(mode: FirstPoll, metrics: Metrics) -> Self {
        Self {
            mode,
            state: Arc::default(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This process's submit of `reference_id` was answered now.
    pub(crate) fn submitted(&self, reference_id: &str) {
        let now = Instant::now();
        let mut state = self.lock();
        state.forget(now);
        while state.submitted.len() >= MAX_REMEMBERED {
            let Some((at, oldest)) = state.order.pop_front() else {
                break;
            };
            if state.submitted.get(&oldest) == Some(&at) {
                state.submitted.remove(&oldest);
            }
        }
        state.submitted.insert(reference_id.to_owned(), now);
        state.order.push_back((now, reference_id.to_owned()));
    }

    /// The job of a poll starting now, if this process submitted it in the
    /// last [`REMEMBERED_FOR`], and when to make its first poll: at once for
    /// a job it did not submit (it may be old), or before anything is learnt.
    pub(crate) fn first_poll(&self, reference_id: &str) -> (Option<Tracked>, Option<Instant>) {
        let mut state = self.lock();
        state.forget(Instant::now());
        let Some(&submitted) = state.submitted.get(reference_id) else {
            return (None, None);
        };
        let (delay, scheduled_with) = match self.mode {
            FirstPoll::After(delay) => (Some(delay), None),
            FirstPoll::Auto => (state.delay, state.delay.map(|_| state.generation)),
        };
        let tracked = Tracked {
            submitted,
            unfinished: Duration::ZERO,
            first: true,
            scheduled_with,
        };
        (Some(tracked), delay.map(|d| submitted + d))
    }

    /// A poll of a tracked job found it `finished` (or not) now.
    pub(crate) fn polled(&self, job: &mut Tracked, finished: bool) {
        let elapsed = job.submitted.elapsed();
        let first = std::mem::replace(&mut job.first, false);
        if first && let Some(generation) = job.scheduled_with {
            self.count(generation, finished);
        }
        if !finished {
            job.unfinished = elapsed;
            return;
        }
        let estimate = (job.unfinished + elapsed) / 2;
        self.metrics.record_job_processing(estimate);
        let mut state = self.lock();
        if state.delay.is_none() {
            state.delay = Some(estimate.min(MAX_DELAY));
        }
    }

    /// Counts a first poll toward the round of the delay it was scheduled
    /// with; a full round moves the delay and starts the next.
    fn count(&self, generation: u64, hit: bool) {
        let mut state = self.lock();
        if generation != state.generation {
            return;
        }
        if hit {
            state.hits += 1;
        } else {
            state.misses += 1;
        }
        if state.hits + state.misses < ROUND {
            return;
        }
        let good = state.misses <= MISSES_ALLOWED;
        if let Some(delay) = state.delay {
            state.delay = Some(state.next(delay, good));
        }
        state.generation += 1;
        (state.hits, state.misses) = (0, 0);
    }
}

impl State {
    /// The delay after a round with `delay` that was `good` (or not).
    fn next(&mut self, delay: Duration, good: bool) -> Duration {
        let halfway = |a: Duration, b: Duration| (a + b) / 2;
        if good {
            self.good = Some(delay);
            match self.bad {
                Some(bad) if bad < delay && delay - bad > PRECISION => halfway(bad, delay),
                _ => {
                    self.bad = None;
                    delay - delay / 10
                }
            }
        } else {
            self.bad = Some(delay);
            match self.good {
                Some(good) if good > delay && good - delay > PRECISION => halfway(delay, good),
                _ => {
                    self.good = None;
                    delay.saturating_add(STEP_UP).min(MAX_DELAY)
                }
            }
        }
    }

    /// Forgets the submits older than [`REMEMBERED_FOR`].
    fn forget(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < REMEMBERED_FOR {
                break;
            }
            if let Some((at, id)) = self.order.pop_front()
                && self.submitted.get(&id) == Some(&at)
            {
                self.submitted.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
