//! The coalescing layer as a `Service` in front of a scripted one, on paused time.

use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt, retry::RetryLayer};

use super::*;
use crate::resilience::{
    retry::RetryPolicy,
    testing::{Fault, Key, Script, Step, call, upstream_settings},
};

type Answer = Result<u32, Fault>;
type Coalesced = Coalesce<Script<u32, Fault>, Key, Answer>;

fn coalescing(script: &Script<u32, Fault>) -> (Coalesced, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new().unwrap());
    let layer = CoalesceLayer::new(Arc::clone(&metrics));
    (layer.layer(script.clone()), metrics)
}

fn coalesced_count(metrics: &Metrics) -> String {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("ktp_gateway_coalesced_requests_total "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_request_and_each_get_the_answer() {
    let script = Script::new([
        Step::after(Duration::from_millis(50), Ok(7)),
        Step::after(Duration::from_millis(50), Ok(9)),
        Step::now(Ok(10)),
    ]);
    let (service, metrics) = coalescing(&script);
    let a = service.clone().oneshot(call("k", None));
    let b = service.clone().oneshot(call("k", None));
    let other = service.clone().oneshot(call("other", None));
    assert_eq!(
        tokio::join!(a, b, other),
        (Ok(7), Ok(7), Ok(9)),
        "one request per key"
    );
    assert_eq!(script.calls(), 2);
    assert_eq!(
        coalesced_count(&metrics),
        "ktp_gateway_coalesced_requests_total 1"
    );
    // A finished answer is not reused: the next call asks again.
    assert_eq!(service.oneshot(call("k", None)).await, Ok(10));
    assert_eq!(script.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_request_is_aborted_when_the_last_caller_leaves() {
    let script = Script::new([Step::after(Duration::from_secs(1), Ok(1)), Step::now(Ok(2))]);
    let (service, _) = coalescing(&script);
    let a = tokio::spawn(service.clone().oneshot(call("k", None)));
    let b = tokio::spawn(service.clone().oneshot(call("k", None)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        script.finished_and_dropped(),
        (0, 0),
        "one caller still waits"
    );
    b.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        script.finished_and_dropped(),
        (0, 1),
        "aborted, never finished"
    );
    assert!(
        service.shared.flights.lock().unwrap().is_empty(),
        "no dead entries left behind"
    );
    assert_eq!(
        service.oneshot(call("k", None)).await,
        Ok(2),
        "a new request"
    );
    assert_eq!(script.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_leaves_does_not_cancel_the_others() {
    let script = Script::new([Step::after(Duration::from_secs(1), Ok(1))]);
    let (service, _) = coalescing(&script);
    let impatient = service.clone().oneshot(call("k", None));
    let patient = tokio::spawn(service.clone().oneshot(call("k", None)));
    let gave_up = tokio::time::timeout(Duration::from_millis(100), impatient).await;
    assert!(gave_up.is_err(), "the impatient caller's own timeout");
    assert_eq!(patient.await.unwrap(), Ok(1));
    assert_eq!(script.finished_and_dropped(), (1, 0));
}

/// The shared request retries for as long as its most patient caller waits:
/// alone, the first caller's 100 ms leave no time for a retry; a second
/// caller with 5 s extends the request's deadline, and it retries.
#[tokio::test(start_paused = true)]
async fn the_shared_request_retries_for_its_most_patient_caller() {
    let retry = RetryPolicy::new(&upstream_settings(&[]).retry);
    let steps = || {
        [
            Step::after(Duration::from_millis(200), Err(Fault::Down)),
            Step::now(Ok(1)),
        ]
    };
    let stack = |script: &Script<u32, Fault>| {
        ServiceBuilder::new()
            .layer(CoalesceLayer::new(Arc::new(Metrics::new().unwrap())))
            .layer(RetryLayer::new(retry.clone()))
            .service(script.clone())
    };

    let alone = Script::new(steps());
    let answer = stack(&alone)
        .oneshot(call("k", Some(Duration::from_millis(100))))
        .await;
    assert_eq!((answer, alone.calls()), (Err(Fault::Down), 1));

    let joined = Script::new(steps());
    let service = stack(&joined);
    let first = service
        .clone()
        .oneshot(call("k", Some(Duration::from_millis(100))));
    let second = service.oneshot(call("k", Some(Duration::from_secs(5))));
    assert_eq!(tokio::join!(first, second), (Ok(1), Ok(1)));
    assert_eq!(joined.calls(), 2, "retried");
}

/// An inner service whose first request, once started, blocks its worker
/// thread until the test opens the gate (so that it is still running when
/// its last caller leaves), and whose later requests never answer.
#[derive(Clone)]
struct Gated {
    started: std::sync::mpsc::SyncSender<()>,
    gate: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Service<Call<Key, Fault>> for Gated {
    type Response = u32;
    type Error = Fault;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Call<Key, Fault>) -> Self::Future {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (started, gate) = (self.started.clone(), Arc::clone(&self.gate));
        Box::pin(async move {
            if n > 0 {
                return std::future::pending().await;
            }
            started.send(()).unwrap();
            // Blocks this worker: the task is mid-poll, so aborting it
            // cannot stop it finishing.
            gate.lock().unwrap().recv().unwrap();
            Ok(1)
        })
    }
}

/// A flight whose last caller left while its request was finishing on
/// another worker must not remove the entry of the newer flight for the
/// same key: a third caller would start a duplicate (billed) request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finishing_flight_never_removes_a_newer_flights_entry() {
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    let (open_tx, open_rx) = std::sync::mpsc::channel();
    let inner = Gated {
        started: started_tx,
        gate: Arc::new(Mutex::new(open_rx)),
        calls: Arc::default(),
    };
    let calls = Arc::clone(&inner.calls);
    let metrics = Arc::new(Metrics::new().unwrap());
    let layer = CoalesceLayer::new(Arc::clone(&metrics));
    let mut service = layer.layer(inner);

    let first = service.call(call("k", None));
    started_rx.recv().unwrap();
    // Its only caller leaves: the entry goes, the (running) task is aborted.
    drop(first);
    let second = service.call(call("k", None));
    // The first flight's request finishes; wait until its task is gone (it
    // held a weak reference to the map).
    open_tx.send(()).unwrap();
    let flights = Arc::clone(&layer.flights);
    let since = tokio::time::Instant::now();
    while Arc::weak_count(&flights) > 2 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the first task never ended"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let third = service.call(call("k", None));
    assert_eq!(
        coalesced_count(&metrics),
        "ktp_gateway_coalesced_requests_total 1",
        "the third caller joins the second flight"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "no third request"
    );
    drop((second, third));
}
