//! When to make a wait's first poll: the gateway learns how long the vendor
//! takes to finish the jobs this process submitted, and polls a job it
//! submitted when the job is likely done rather than at once.
//!
//! Each finished job's time lies between the last poll that found it
//! unfinished (or its submit) and the first that found it finished, both
//! counted from the submit's answer; the middle of that interval is its
//! estimate (the histogram `ktp_gateway_job_processing_seconds`). The first
//! poll's delay starts at the first estimate, then follows the jobs: down a
//! little when a first poll finds its job finished, up four times as much
//! when it does not. It settles where about four first polls in five find
//! their job done: one GET for most jobs, a second one `wait.poll_interval`
//! later for the rest, and an answer soon after the job is ready.

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
/// How much earlier the next first poll comes after one that found its job
/// finished.
const STEP_DOWN: Duration = Duration::from_millis(50);
/// How much later it comes after one that did not: four steps down, so the
/// delay settles where four first polls in five find their job finished.
const STEP_UP: Duration = Duration::from_millis(200);
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
}

/// One job's polls, as its poll sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tracked {
    submitted: Instant,
    /// The last poll that found it unfinished, from the submit.
    unfinished: Duration,
    /// Whether the next poll is the first.
    first: bool,
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
        let tracked = Tracked {
            submitted,
            unfinished: Duration::ZERO,
            first: true,
        };
        let delay = match self.mode {
            FirstPoll::After(delay) => Some(delay),
            FirstPoll::Auto => state.delay,
        };
        (Some(tracked), delay.map(|d| submitted + d))
    }

    /// A poll of a tracked job found it `finished` (or not) now.
    pub(crate) fn polled(&self, job: &mut Tracked, finished: bool) {
        let elapsed = job.submitted.elapsed();
        let first = std::mem::replace(&mut job.first, false);
        if !finished {
            job.unfinished = elapsed;
            if first {
                self.adjust(|d| d.saturating_add(STEP_UP).min(MAX_DELAY));
            }
            return;
        }
        let estimate = (job.unfinished + elapsed) / 2;
        self.metrics.record_job_processing(estimate);
        let mut state = self.lock();
        match state.delay {
            None => state.delay = Some(estimate.min(MAX_DELAY)),
            Some(delay) if first => state.delay = Some(delay.saturating_sub(STEP_DOWN)),
            Some(_) => {}
        }
    }

    fn adjust(&self, step: impl FnOnce(Duration) -> Duration) {
        let mut state = self.lock();
        if let Some(delay) = state.delay {
            state.delay = Some(step(delay));
        }
    }
}

impl State {
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
