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
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::{
    sync::{oneshot, watch},
    task::AbortHandle,
    time::Instant,
};
use tracing::Instrument;

use super::{KtpResult, UpstreamError, stack::Upstream};
use crate::{config::WaitSettings, reference_id::ReferenceId, trace::TraceContext};

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
}

/// One shared poll. Dropping the last handle stops it.
#[derive(Debug)]
struct Poll {
    key: String,
    /// The latest answer; `None` until the first poll has answered.
    latest: watch::Receiver<Option<Answer>>,
    /// The latest end among the waiters; only changed under the map's lock.
    until: Mutex<Instant>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain values, valid even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Polls {
    pub(super) fn new(settings: &WaitSettings) -> Self {
        Self {
            first_interval: *settings.poll_interval,
            max_interval: *settings.max_poll_interval,
            polls: Arc::default(),
        }
    }

    pub(super) async fn wait(
        &self,
        upstream: &Upstream,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Waited {
        let poll = self.join(upstream, reference_id, until, trace);
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
                    // The poll ended without a newer answer (it was the last
                    // one before the poll's end, which is not before ours).
                    if changed.is_err() {
                        return Waited::NotYet(last_not_found);
                    }
                }
                () = tokio::time::sleep_until(until) => return Waited::NotYet(last_not_found),
            }
        }
    }

    /// The poll for `reference_id`, joined (and its end extended) or started.
    fn join(
        &self,
        upstream: &Upstream,
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
        let run = self.run(
            upstream.clone(),
            reference_id.clone(),
            trace.cloned(),
            tx,
            started,
        );
        // The poll's requests log within the span of the call that started it.
        let task = tokio::spawn(run.instrument(tracing::Span::current()));
        let poll = Arc::new(Poll {
            key: reference_id.as_str().to_owned(),
            latest: rx,
            until: Mutex::new(until),
            task: task.abort_handle(),
            polls: Arc::downgrade(&self.polls),
        });
        let _ = start.send(Arc::downgrade(&poll));
        map.insert(reference_id.as_str().to_owned(), Arc::downgrade(&poll));
        poll
    }

    /// The poll itself: ask, publish, pause, until an answer that is not
    /// "not found", or until the next ask would come after every waiter's end.
    fn run(
        &self,
        upstream: Upstream,
        reference_id: ReferenceId,
        trace: Option<TraceContext>,
        tx: watch::Sender<Option<Answer>>,
        started: oneshot::Receiver<Weak<Poll>>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (first, max) = (self.first_interval, self.max_interval);
        let polls = Arc::clone(&self.polls);
        async move {
            let Ok(me) = started.await else { return };
            let mut interval = first;
            loop {
                let until = match me.upgrade() {
                    Some(poll) => *lock(&poll.until),
                    None => return,
                };
                let answer = upstream
                    .fetch(&reference_id, Some(until), trace.as_ref())
                    .await;
                let again = not_found_yet(&answer);
                tx.send_replace(Some(answer));
                if !again {
                    break;
                }
                let next = Instant::now() + interval;
                // Decided under the map's lock, where waiters join: none can
                // extend the end of a poll that is stopping.
                let stop = {
                    let mut map = lock(&polls);
                    let Some(poll) = me.upgrade() else { return };
                    let stop = next >= *lock(&poll.until);
                    if stop
                        && map
                            .get(reference_id.as_str())
                            .is_some_and(|w| w.ptr_eq(&me))
                    {
                        map.remove(reference_id.as_str());
                    }
                    stop
                };
                if stop {
                    return;
                }
                tokio::time::sleep_until(next).await;
                interval = interval.mul_f64(1.5).min(max);
            }
            let mut map = lock(&polls);
            if map
                .get(reference_id.as_str())
                .is_some_and(|w| w.ptr_eq(&me))
            {
                map.remove(reference_id.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_404_means_not_finished_yet() {
        let status = |status, code: Option<&str>| -> Answer {
            Err(UpstreamError::Status {
                status,
                error_code: code.map(str::to_owned),
                retry_after: None,
            })
        };
        assert!(not_found_yet(&status(404, Some(NOT_FOUND_CODE))));
        assert!(!not_found_yet(&status(404, None)));
        assert!(!not_found_yet(&status(400, Some(NOT_FOUND_CODE))));
        assert!(!not_found_yet(&status(503, None)));
        assert!(!not_found_yet(&Ok(KtpResult::default())));
    }
}
