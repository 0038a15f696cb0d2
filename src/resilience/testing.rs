//! Test doubles for the layers' unit tests: a scripted inner service that
//! answers from a queue and records what it was asked, and a small error type
//! with one variant per way an upstream attempt can fail.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Instant;
use tower::Service;

use super::{
    breaker::Outcome,
    call::{Call, Failure},
    coalesce::Keyed,
};
use crate::config::{Settings, Sources, UpstreamSettings};

/// Upstream settings as the gateway loads them (sandbox, so no
/// credentials), with `KTP_GATEWAY__UPSTREAM__{key}` = `value` for each pair.
pub(crate) fn upstream_settings(pairs: &[(&str, &str)]) -> UpstreamSettings {
    let env = pairs
        .iter()
        .map(|(k, v)| (format!("KTP_GATEWAY__UPSTREAM__{k}"), (*v).to_owned()))
        .collect();
    let settings = Settings::load(Sources {
        env: Some(env),
        sandbox: true,
        ..Sources::default()
    });
    settings.expect("valid test settings").upstream
}

/// An attempt's error, one variant per kind the layers tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Transient and counts against the breaker (a 503, a reset).
    Down,
    /// `Down`, with a `Retry-After`.
    DownAfter(Duration),
    /// Transient, says nothing about health (a 429).
    Busy,
    /// Final: an answer, just not a good one (a 404).
    Refused,
    /// No answer in time: not retried, counts against the breaker.
    Slow,
    /// The breaker's refusal.
    Open(Duration),
    /// A shared request ended without an answer.
    Lost,
    /// No slot for a request in flight came free in time.
    NoSlot(usize),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Failure for Fault {
    fn breaker_outcome(&self) -> Outcome {
        match self {
            Self::Down | Self::DownAfter(_) | Self::Slow => Outcome::Failure,
            Self::Busy | Self::Open(_) | Self::Lost | Self::NoSlot(_) => Outcome::Neutral,
            Self::Refused => Outcome::Success,
        }
    }
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Down | Self::DownAfter(_) | Self::Busy)
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::DownAfter(d) => Some(*d),
            _ => None,
        }
    }
    fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Slow)
    }
    fn circuit_open(retry_in: Duration) -> Self {
        Self::Open(retry_in)
    }
    fn is_circuit_open(&self) -> bool {
        matches!(self, Self::Open(_))
    }
    fn flight_lost() -> Self {
        Self::Lost
    }
    fn no_slot(limit: usize) -> Self {
        Self::NoSlot(limit)
    }
}

/// The operation of test calls: a key to coalesce on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(pub &'static str);

impl Keyed for Key {
    type Key = str;
    fn key(&self) -> &str {
        self.0
    }
}

/// A call for `key` with a deadline `after` from now.
pub(crate) fn call<E>(key: &'static str, after: Option<Duration>) -> Call<Key, E> {
    Call::new(Key(key), after.map(|d| Instant::now() + d))
}

/// One scripted answer: after `delay`, `answer` (`None`: never).
#[derive(Debug, Clone)]
pub(crate) struct Step<T, E> {
    pub delay: Duration,
    pub answer: Option<Result<T, E>>,
}

impl<T, E> Step<T, E> {
    pub(crate) fn now(answer: Result<T, E>) -> Self {
        Self::after(Duration::ZERO, answer)
    }
    pub(crate) fn after(delay: Duration, answer: Result<T, E>) -> Self {
        Self {
            delay,
            answer: Some(answer),
        }
    }
    pub(crate) fn hang() -> Self {
        Self {
            delay: Duration::ZERO,
            answer: None,
        }
    }
}

/// What the script saw of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen<E> {
    pub at: Instant,
    pub key: String,
    pub attempt: u32,
    pub previous: Option<E>,
}

/// A scripted inner service. Answers come from the queue in order; the last
/// one repeats when the queue runs dry. Clones share the script.
#[derive(Debug)]
pub(crate) struct Script<T, E> {
    state: Arc<Mutex<State<T, E>>>,
}

#[derive(Debug)]
struct State<T, E> {
    steps: VecDeque<Step<T, E>>,
    seen: Vec<Seen<E>>,
    finished: usize,
    dropped: usize,
}

impl<T, E> Clone for Script<T, E> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<T: Clone, E: Clone> Script<T, E> {
    pub(crate) fn new(steps: impl IntoIterator<Item = Step<T, E>>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                steps: steps.into_iter().collect(),
                seen: Vec::new(),
                finished: 0,
                dropped: 0,
            })),
        }
    }

    /// Every attempt answers `answer` at once.
    pub(crate) fn always(answer: Result<T, E>) -> Self {
        Self::new([Step::now(answer)])
    }

    /// Every attempt the script received, in order.
    pub(crate) fn seen(&self) -> Vec<Seen<E>> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Attempts received.
    pub(crate) fn calls(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    /// Attempts that ran to their answer, and attempts dropped before it.
    pub(crate) fn finished_and_dropped(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.finished, s.dropped)
    }

    fn next(&self) -> Step<T, E> {
        let mut s = self.state.lock().unwrap();
        if s.steps.len() > 1 {
            s.steps.pop_front().unwrap()
        } else {
            s.steps.front().cloned().expect("an empty script")
        }
    }
}

impl<Op, T, E> Service<Call<Op, E>> for Script<T, E>
where
    Op: Keyed,
    Op::Key: ToString,
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Response = T;
    type Error = E;
    type Future = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call<Op, E>) -> Self::Future {
        let step = self.next();
        self.state.lock().unwrap().seen.push(Seen {
            at: Instant::now(),
            key: call.op().key().to_string(),
            attempt: call.attempt(),
            previous: call.previous_error().cloned(),
        });
        let guard = Unfinished(Some(Arc::clone(&self.state)));
        Box::pin(async move {
            let mut guard = guard;
            tokio::time::sleep(step.delay).await;
            let Some(answer) = step.answer else {
                return std::future::pending().await;
            };
            if let Some(state) = guard.0.take() {
                state.lock().unwrap().finished += 1;
            }
            answer
        })
    }
}

/// Counts an attempt dropped before its answer.
struct Unfinished<T, E>(Option<Arc<Mutex<State<T, E>>>>);

impl<T, E> Drop for Unfinished<T, E> {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.lock().unwrap_or_else(|p| p.into_inner()).dropped += 1;
        }
    }
}
