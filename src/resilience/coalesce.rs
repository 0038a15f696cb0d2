//! Request coalescing ("single flight"): concurrent calls for the same key
//! share one upstream request. Each caller still waits under its own deadline
//! and gets its own copy of the answer; the shared request runs until it
//! finishes or until the last caller has gone, whichever comes first. This
//! protects the upstream and the per-call billing from retry-happy clients.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{sync::watch, task::AbortHandle, time::Instant};
use tracing::Instrument;

/// The latest deadline among the callers sharing a flight (`None`: one of
/// them has none), so the shared request may retry for as long as its most
/// patient caller waits.
#[derive(Debug)]
pub struct SharedDeadline(Mutex<Option<Instant>>);

impl SharedDeadline {
    fn new(deadline: Option<Instant>) -> Self {
        Self(Mutex::new(deadline))
    }

    fn extend(&self, other: Option<Instant>) {
        let mut d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *d = match (*d, other) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }

    /// The current deadline.
    pub fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Flights<K, V> = Mutex<HashMap<K, Weak<Flight<K, V>>>>;

/// One shared request. Dropping the last handle aborts it.
#[derive(Debug)]
pub struct Flight<K: Hash + Eq, V> {
    key: K,
    deadline: Arc<SharedDeadline>,
    answer: watch::Receiver<Option<V>>,
    task: AbortHandle,
    flights: Weak<Flights<K, V>>,
}

impl<K: Hash + Eq, V: Clone> Flight<K, V> {
    /// The shared answer; `None` only if the request task died without one.
    pub async fn wait(&self) -> Option<V> {
        let mut answer = self.answer.clone();
        let ready = answer.wait_for(Option::is_some).await.ok()?;
        ready.clone()
    }
}

impl<K: Hash + Eq, V> Drop for Flight<K, V> {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(flights) = self.flights.upgrade() {
            let mut map = flights.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&self.key);
            }
        }
    }
}

#[derive(Debug)]
pub struct Coalescer<K: Hash + Eq, V> {
    flights: Arc<Flights<K, V>>,
    joined: AtomicU64,
}

impl<K, V> Default for Coalescer<K, V>
where
    K: Hash + Eq,
{
    fn default() -> Self {
        Self {
            flights: Arc::default(),
            joined: AtomicU64::new(0),
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Joins the flight for `key`, or starts one with `start` (given the
    /// flight's shared deadline) if none is in the air. The flag says whether
    /// an existing flight was joined.
    pub fn join<F, Fut>(
        &self,
        key: K,
        deadline: Option<Instant>,
        start: F,
    ) -> (Arc<Flight<K, V>>, bool)
    where
        F: FnOnce(Arc<SharedDeadline>) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = map.get(&key).and_then(Weak::upgrade) {
            flight.deadline.extend(deadline);
            self.joined.fetch_add(1, Ordering::Relaxed);
            return (flight, true);
        }
        let shared = Arc::new(SharedDeadline::new(deadline));
        let (tx, rx) = watch::channel(None);
        let request = start(Arc::clone(&shared));
        let flights = Arc::downgrade(&self.flights);
        let task_key = key.clone();
        // The request runs in the span of the call that started it, so its
        // log lines carry that call's request id.
        let span = tracing::Span::current();
        let task = tokio::spawn(async move {
            let answer = request.instrument(span).await;
            // Later callers start a fresh request rather than reuse an answer.
            if let Some(flights) = flights.upgrade() {
                flights
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&task_key);
            }
            let _ = tx.send(Some(answer));
        });
        let flight = Arc::new(Flight {
            key: key.clone(),
            deadline: shared,
            answer: rx,
            task: task.abort_handle(),
            flights: Arc::downgrade(&self.flights),
        });
        map.insert(key, Arc::downgrade(&flight));
        (flight, false)
    }

    /// Calls that joined a flight already in the air, since start.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    /// Flights in the air.
    pub fn in_flight(&self) -> usize {
        let map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, time::Duration};

    use super::*;

    fn counting(
        started: &Arc<AtomicUsize>,
        pause: Duration,
        answer: u32,
    ) -> impl Future<Output = u32> + Send + 'static {
        started.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(pause).await;
            answer
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_request_and_each_get_the_answer() {
        let c: Coalescer<String, u32> = Coalescer::default();
        let started = Arc::new(AtomicUsize::new(0));
        let pause = Duration::from_millis(50);
        let (a, _) = c.join("k".into(), None, |_| counting(&started, pause, 7));
        let (b, _) = c.join("k".into(), None, |_| counting(&started, pause, 8));
        let (other, _) = c.join("other".into(), None, |_| counting(&started, pause, 9));
        assert_eq!(
            (a.wait().await, b.wait().await, other.wait().await),
            (Some(7), Some(7), Some(9))
        );
        assert_eq!(started.load(Ordering::SeqCst), 2);
        assert_eq!(c.joined(), 1);
        // Finished flights are not reused.
        let (again, _) = c.join("k".into(), None, |_| counting(&started, pause, 10));
        assert_eq!(again.wait().await, Some(10));
    }

    #[tokio::test]
    async fn the_request_is_aborted_when_the_last_caller_leaves() {
        let c: Coalescer<String, u32> = Coalescer::default();
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let (a, _) = c.join("k".into(), None, move |_| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.fetch_add(1, Ordering::SeqCst);
            1
        });
        let (b, _) = c.join("k".into(), None, |_| async { 2 });
        drop(a);
        assert_eq!(c.in_flight(), 1, "one caller still waits");
        drop(b);
        assert_eq!(c.in_flight(), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            finished.load(Ordering::SeqCst),
            0,
            "aborted, never finished"
        );
        assert!(
            c.flights.lock().unwrap().is_empty(),
            "no dead entries left behind"
        );
    }

    #[tokio::test]
    async fn the_shared_deadline_is_the_most_patient_callers() {
        let c: Coalescer<String, u32> = Coalescer::default();
        let now = Instant::now();
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let (a, _) = c.join(
            "k".into(),
            Some(now + Duration::from_millis(100)),
            move |d| {
                *s.lock().unwrap() = Some(d.clone());
                async { 1 }
            },
        );
        let deadline = seen.lock().unwrap().clone().unwrap();
        assert_eq!(deadline.get(), Some(now + Duration::from_millis(100)));
        let _b = c.join("k".into(), Some(now + Duration::from_secs(5)), |_| async {
            2
        });
        assert_eq!(deadline.get(), Some(now + Duration::from_secs(5)));
        let _c = c.join("k".into(), Some(now), |_| async { 3 });
        assert_eq!(deadline.get(), Some(now + Duration::from_secs(5)));
        let _d = c.join("k".into(), None, |_| async { 4 });
        assert_eq!(deadline.get(), None);
        drop(a);
    }
}
