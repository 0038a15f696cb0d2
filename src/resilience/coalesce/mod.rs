//! Request coalescing ("single flight") as a tower layer: concurrent calls
//! for the same key share one request to the service below. Each caller
//! still waits under its own deadline (its future is its own) and gets its
//! own copy of the answer; the shared request may retry for as long as its
//! most patient caller waits, and runs until it finishes or until the last
//! caller has gone, whichever comes first. This protects the upstream and
//! its per-call billing from retry-happy clients.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    hash::Hash,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    task::{Context, Poll},
};

use tokio::{sync::watch, task::AbortHandle};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use super::call::{Call, Failure, SharedDeadline};
use crate::metrics::Metrics;

#[cfg(test)]
mod tests;

/// An operation that calls for the same key may share.
pub trait Keyed {
    /// What makes two operations the same request.
    type Key: Hash + Eq + ?Sized;
    /// This operation's key.
    fn key(&self) -> &Self::Key;
    /// This operation's call got the answer of `flight`'s request, which it
    /// joined rather than made (its trace links to that request).
    fn shared(&self, _flight: &Self) {}
}

/// A flight's entry in the map: the shared operation, compared by its key,
/// so that finding a flight allocates nothing.
struct ByKey<Op>(Arc<Op>);

impl<Op: Keyed> Hash for ByKey<Op> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}

impl<Op: Keyed> PartialEq for ByKey<Op> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<Op: Keyed> Eq for ByKey<Op> {}

impl<Op> Clone for ByKey<Op> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

type Flights<Op, V> = Mutex<HashMap<ByKey<Op>, Weak<Flight<Op, V>>>>;

/// Shares requests among concurrent calls with the same key; one per kind
/// of call, cloned into every service it builds.
pub struct CoalesceLayer<Op: Keyed, V> {
    flights: Arc<Flights<Op, V>>,
    metrics: Arc<Metrics>,
}

impl<Op: Keyed, V> CoalesceLayer<Op, V> {
    /// `metrics` counts the calls that joined a request already in flight.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            flights: Arc::default(),
            metrics,
        }
    }
}

// Derived impls would demand `Op: Clone + Debug`, `V: Clone + Debug`.
impl<Op: Keyed, V> Clone for CoalesceLayer<Op, V> {
    fn clone(&self) -> Self {
        Self {
            flights: Arc::clone(&self.flights),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

impl<Op: Keyed, V> fmt::Debug for CoalesceLayer<Op, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceLayer").finish_non_exhaustive()
    }
}

impl<S, Op: Keyed, V> Layer<S> for CoalesceLayer<Op, V> {
    type Service = Coalesce<S, Op, V>;

    fn layer(&self, inner: S) -> Self::Service {
        Coalesce {
            inner,
            shared: self.clone(),
        }
    }
}

/// See [`CoalesceLayer`].
pub struct Coalesce<S, Op: Keyed, V> {
    inner: S,
    shared: CoalesceLayer<Op, V>,
}

impl<S: Clone, Op: Keyed, V> Clone for Coalesce<S, Op, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, Op: Keyed, V> fmt::Debug for Coalesce<S, Op, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalesce").finish_non_exhaustive()
    }
}

/// A caller's wait for a shared answer. Boxed: the wait borrows the flight
/// it holds, and the flight already costs a task and a map entry.
pub type CoalesceFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, Op, T, E> Service<Call<Op, E>> for Coalesce<S, Op, Result<T, E>>
where
    S: Service<Call<Op, E>, Response = T, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    Op: Keyed + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Failure,
{
    type Response = T;
    type Error = E;
    type Future = CoalesceFuture<T, E>;

    /// Always ready: the shared request waits for the service below in its
    /// own task.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call<Op, E>) -> Self::Future {
        let op = Arc::clone(call.shared_op());
        let flight = self.join(call);
        Box::pin(async move {
            let answer = flight.wait().await;
            if !Arc::ptr_eq(&op, &flight.key.0) {
                op.shared(&flight.key.0);
            }
            answer.unwrap_or_else(|| {
                // A bug (a panic) or a runtime shutting down: nobody can
                // tell the callers more, so say it loudly here.
                tracing::error!(
                    "the shared upstream request ended without an answer: it panicked or was aborted"
                );
                Err(E::flight_lost())
            })
        })
    }
}

impl<S, Op, T, E> Coalesce<S, Op, Result<T, E>>
where
    S: Service<Call<Op, E>, Response = T, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    Op: Keyed + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Failure,
{
    /// Joins the flight for the call's key, or starts one if none is in the air.
    fn join(&self, mut call: Call<Op, E>) -> Arc<Flight<Op, Result<T, E>>> {
        let key = ByKey(Arc::clone(call.shared_op()));
        let flights = &self.shared.flights;
        let mut map = flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = map.get(&key).and_then(Weak::upgrade) {
            flight.deadline.extend(call.deadline());
            self.shared.metrics.record_coalesced();
            return flight;
        }
        let deadline = Arc::new(SharedDeadline::new(call.deadline()));
        call.share_deadline(Arc::clone(&deadline));
        let (tx, rx) = watch::channel(None);
        let request = self.inner.clone().oneshot(call);
        let registry = Arc::downgrade(flights);
        let task_key = key.clone();
        // The request runs in the span of the call that started it, so its
        // log lines carry that call's request id.
        let span = tracing::Span::current();
        let flight = Arc::new_cyclic(|me: &Weak<Flight<Op, Result<T, E>>>| {
            let me = me.clone();
            let task = tokio::spawn(async move {
                let answer = request.instrument(span).await;
                // Later callers start a fresh request rather than reuse an
                // answer. Only this flight's own entry goes: if its last
                // caller left while it was finishing, a newer flight may
                // hold the key by now, and removing that one would let the
                // next caller start a duplicate (billed) request.
                if let Some(flights) = registry.upgrade() {
                    let mut map = flights.lock().unwrap_or_else(|p| p.into_inner());
                    if map.get(&task_key).is_some_and(|w| Weak::ptr_eq(w, &me)) {
                        map.remove(&task_key);
                    }
                }
                let _ = tx.send(Some(answer));
            });
            Flight {
                key: key.clone(),
                deadline,
                answer: rx,
                task: task.abort_handle(),
                flights: Arc::downgrade(flights),
            }
        });
        map.insert(key, Arc::downgrade(&flight));
        flight
    }
}

/// One shared request. Dropping the last handle aborts it.
struct Flight<Op: Keyed, V> {
    key: ByKey<Op>,
    deadline: Arc<SharedDeadline>,
    answer: watch::Receiver<Option<V>>,
    task: AbortHandle,
    flights: Weak<Flights<Op, V>>,
}

impl<Op: Keyed, V: Clone> Flight<Op, V> {
    /// The shared answer; `None` only if the request task died without one.
    async fn wait(&self) -> Option<V> {
        let mut answer = self.answer.clone();
        let ready = answer.wait_for(Option::is_some).await.ok()?;
        ready.clone()
    }
}

impl<Op: Keyed, V> Drop for Flight<Op, V> {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(flights) = self.flights.upgrade() {
            let mut map = flights.lock().unwrap_or_else(|p| p.into_inner());
            // Its own entry only, as for the task.
            if map
                .get(&self.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                map.remove(&self.key);
            }
        }
    }
}
