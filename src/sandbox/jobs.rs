//! The sandbox's submitted jobs: each is "processing" until its time is up,
//! then answers what it was submitted to answer. Kept in memory and bounded:
//! past [`MAX_JOBS`] the oldest job is forgotten.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::time::Instant;

use super::magic::Canned;

/// Jobs remembered at once.
pub(crate) const MAX_JOBS: usize = 10_000;

/// What a job answers once it has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    ready_at: Instant,
    answers: Canned,
}

/// A job's state when its result is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No job under this id: the result call answers from the magic table.
    Unknown,
    /// Submitted, not finished: the result call answers 404.
    Processing,
    /// Finished: answer this.
    Done(Canned),
}

/// The job store.
#[derive(Debug)]
pub(crate) struct Jobs {
    processing_time: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<String, Job>,
    /// Ids in submission order, oldest first, for the bound.
    order: VecDeque<String>,
}

impl Jobs {
    /// A store whose jobs take `processing_time` to finish.
    pub(crate) fn new(processing_time: Duration) -> Self {
        Self {
            processing_time,
            state: Mutex::default(),
        }
    }

    /// Starts a job under `id`; `false` when the id is already taken.
    pub(crate) fn submit(&self, id: &str, answers: Canned) -> bool {
        let mut state = self.lock();
        if state.jobs.contains_key(id) {
            return false;
        }
        if state.order.len() >= MAX_JOBS
            && let Some(oldest) = state.order.pop_front()
        {
            state.jobs.remove(&oldest);
        }
        let job = Job {
            ready_at: Instant::now() + self.processing_time,
            answers,
        };
        state.jobs.insert(id.to_owned(), job);
        state.order.push_back(id.to_owned());
        true
    }

    /// The state of the job under `id`.
    pub(crate) fn lookup(&self, id: &str) -> Lookup {
        match self.lock().jobs.get(id) {
            None => Lookup::Unknown,
            Some(job) if Instant::now() < job.ready_at => Lookup::Processing,
            Some(job) => Lookup::Done(job.answers),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain maps, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
