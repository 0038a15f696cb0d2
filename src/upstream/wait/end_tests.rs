//! A waiter's end and the server's shutdown, both passed on by the
//! scheduler and the polls: a waiting call holds no timer and no shutdown
//! signal of its own.

use std::time::Duration;

use super::*;

/// "Not found" after `delay`, every time.
#[derive(Clone)]
struct Slow {
    delay: Duration,
}

impl Fetch for Slow {
    async fn fetch(&self, _: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        tokio::time::sleep(self.delay).await;
        Err(UpstreamError::Status {
            status: 404,
            error_code: Some(NOT_FOUND_CODE.to_owned()),
            retry_after: None,
        })
    }
}

fn polls(every: Duration) -> Polls {
    let metrics = crate::metrics::Metrics::new().unwrap();
    Polls {
        shared: Arc::new(Shared {
            first_interval: every,
            max_interval: every,
            max_in_flight: 2,
            learner: Learner::new(crate::config::FirstPoll::Auto, metrics.clone()),
            metrics,
            stopped: AtomicBool::new(false),
            state: Mutex::default(),
        }),
    }
}

fn id(text: &str) -> ReferenceId {
    ReferenceId::parse(text.to_owned()).unwrap()
}

/// Two waiters of one job with different ends: each leaves at its own,
/// the later one's poll going on after the first left.
#[tokio::test(start_paused = true)]
async fn each_waiter_leaves_at_its_own_end() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Slow {
        delay: Duration::from_millis(10),
    };
    let job = id("job");
    let start = Instant::now();
    let (early, late) = (
        start + Duration::from_millis(2500),
        start + Duration::from_millis(5500),
    );
    let first = async {
        let waited = polls.wait(&fetch, &job, early, None).await;
        (waited, Instant::now())
    };
    let second = async {
        let waited = polls.wait(&fetch, &job, late, None).await;
        (waited, Instant::now())
    };
    let ((a, a_at), (b, b_at)) = tokio::join!(first, second);
    assert!(matches!(a, Waited::NotYet(Some(_))), "{a:?}");
    assert_eq!(a_at, early, "the first waiter's end");
    assert!(matches!(b, Waited::NotYet(Some(_))), "{b:?}");
    // Its poll stops itself at the last ask before its end (5.01 s; the
    // next would come after it), or its end comes.
    assert!(b_at > early && b_at <= late, "{:?}", b_at - start);
}

/// A waiter's end comes on time even while every ask in flight is slow and
/// the asks are at their full pace (`wait.max_polls_in_flight`): the
/// scheduler times the ends whatever the pace.
#[tokio::test(start_paused = true)]
async fn ends_come_on_time_while_the_asks_are_at_full_pace() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Slow {
        delay: Duration::from_secs(60),
    };
    let start = Instant::now();
    let until = start + Duration::from_secs(2);
    let wait = |job: &'static str| {
        let (polls, fetch) = (&polls, &fetch);
        async move {
            let waited = polls.wait(fetch, &id(job), until, None).await;
            (waited, Instant::now())
        }
    };
    // Two asks at once at most: the third job's waits behind them.
    let (a, b, c) = tokio::join!(wait("job-a"), wait("job-b"), wait("job-c"));
    for (waited, at) in [a, b, c] {
        assert!(matches!(waited, Waited::NotYet(None)), "{waited:?}");
        assert_eq!(at, until);
    }
}

/// The server's shutdown hands back every waiting call at once, and any
/// that starts waiting after it, whatever its job's poll.
#[tokio::test(start_paused = true)]
async fn stopping_hands_back_the_waiting_calls_and_later_ones() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Slow {
        delay: Duration::from_millis(10),
    };
    let until = Instant::now() + Duration::from_secs(30);
    let (job, other) = (id("job"), id("other"));
    let stop_at = Instant::now() + Duration::from_millis(2500);
    let stop = async {
        tokio::time::sleep_until(stop_at).await;
        polls.stop_waiting();
    };
    let (a, b, c, ()) = tokio::join!(
        polls.wait(&fetch, &job, until, None),
        polls.wait(&fetch, &job, until, None),
        polls.wait(&fetch, &other, until, None),
        stop,
    );
    for waited in [a, b, c] {
        assert!(matches!(waited, Waited::HandedBack), "{waited:?}");
    }
    assert_eq!(Instant::now(), stop_at);
    let later = polls.wait(&fetch, &job, until, None).await;
    assert!(matches!(later, Waited::HandedBack), "{later:?}");
    assert_eq!(Instant::now(), stop_at, "a later wait waited");
}

/// Answers at once: a lost flight for `done-*` ids, "not found" for the
/// rest.
#[derive(Clone)]
struct Quick;

impl Fetch for Quick {
    async fn fetch(&self, id: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        tokio::task::yield_now().await;
        if id.as_str().starts_with("done") {
            return Err(UpstreamError::FlightLost);
        }
        Err(UpstreamError::Status {
            status: 404,
            error_code: Some(NOT_FOUND_CODE.to_owned()),
            retry_after: None,
        })
    }
}

/// Jobs answered long before their waiters' ends do not pile up in the
/// queue of ends (each entry keeps its job's allocation) while other jobs
/// keep the scheduler running.
#[tokio::test(start_paused = true)]
async fn ends_of_jobs_answered_early_do_not_pile_up() {
    let polls = polls(Duration::from_secs(1));
    let until = Instant::now() + Duration::from_secs(60);
    let keep = id("keep");
    let kept = polls.wait(&Quick, &keep, until, None);
    let answered = async {
        for n in 0..2_000 {
            let waited = polls
                .wait(&Quick, &id(&format!("done-{n}")), until, None)
                .await;
            assert!(matches!(waited, Waited::Answered(Err(_))), "{waited:?}");
        }
        let state = lock(&polls.shared.state);
        assert_eq!(state.jobs.len(), 1, "the kept job polls on");
        assert!(state.ends.len() <= 100, "{} ends queued", state.ends.len());
    };
    tokio::select! {
        () = answered => {}
        waited = kept => panic!("the kept wait ended: {waited:?}"),
    }
}

/// A waiting call's share of the wait, held for its whole life: its
/// handle on the job and its end, no timer and no shutdown signal (a
/// tokio `Sleep` and a `watch` receiver with its `changed()` future were
/// 200 bytes more in a debug build).
#[test]
fn a_waits_future_holds_no_timer() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Slow {
        delay: Duration::ZERO,
    };
    let job = id("job");
    let wait = polls.wait(&fetch, &job, Instant::now(), None);
    let size = std::mem::size_of_val(&wait);
    assert!(size <= 192, "a wait's future: {size} bytes");
}
