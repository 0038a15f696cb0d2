//! Which answers mean "not yet", and the shared poll's life: waiters
//! joining and leaving on a multi-threaded runtime, a poll that dies, a
//! poll that stops.

use std::{sync::atomic::Ordering, time::Duration};

use super::*;

/// A poll's result call: "not found" after `delay`, or a panic.
#[derive(Clone)]
struct Scripted {
    delay: Duration,
    panics: bool,
}

impl Fetch for Scripted {
    async fn fetch(&self, _: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        if self.delay.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.delay).await;
        }
        assert!(!self.panics, "a bug in the poll");
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
            stopped: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::default(),
        }),
    }
}

fn id(text: &str) -> ReferenceId {
    ReferenceId::parse(text.to_owned()).unwrap()
}

/// Waiters of a few ids join and leave at random moments while their
/// polls run, on a multi-threaded runtime (any pod with more than one
/// CPU). A poll whose last handle dropped while the polls map was
/// locked would lock it again and hang its worker, then every wait; a
/// watchdog turns that hang into a failure.
#[test]
fn waiters_joining_and_leaving_never_hang_a_worker() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Polls and leaving waiters wake on the same timer ticks
            // (tokio's are 1 ms), so they run at the same moments on
            // different workers, round after round.
            let polls = polls(Duration::from_millis(1));
            let fetch = Scripted {
                delay: Duration::ZERO,
                panics: false,
            };
            let mut waiters = tokio::task::JoinSet::new();
            for n in 0..200_000u64 {
                let (polls, fetch) = (polls.clone(), fetch.clone());
                waiters.spawn(async move {
                    let id = id(&format!("job-{}", n % 32));
                    let stay = Duration::from_millis(n % 4);
                    let until = Instant::now() + Duration::from_millis(n % 3 + 1);
                    let wait = polls.wait(&fetch, &id, until, None);
                    // Leave early (the caller went away) or wait it out.
                    let _ = tokio::time::timeout(stay, wait).await;
                });
                if n % 64 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            while waiters.join_next().await.is_some() {}
        });
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the waits hung (a worker blocked on the polls map's lock)"
    );
}

/// A poll that dies is the gateway's bug: its waiters say so
/// (INTERNAL_ERROR), never "not found yet".
#[tokio::test(start_paused = true)]
async fn a_poll_that_panics_fails_its_waiters_as_lost() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Scripted {
        delay: Duration::from_millis(10),
        panics: true,
    };
    let until = Instant::now() + Duration::from_secs(30);
    let job = id("job");
    let (a, b) = tokio::join!(
        polls.wait(&fetch, &job, until, None),
        polls.wait(&fetch, &job, until, None),
    );
    for waited in [a, b] {
        assert!(
            matches!(waited, Waited::Answered(Err(UpstreamError::FlightLost))),
            "{waited:?}"
        );
    }
}

/// A poll that stops by itself (no waiter's end left to poll for) is
/// no loss: its waiters get the last "not found".
#[tokio::test(start_paused = true)]
async fn a_poll_that_stops_leaves_its_waiters_not_found() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Scripted {
        delay: Duration::from_millis(10),
        panics: false,
    };
    let until = Instant::now() + Duration::from_millis(1500);
    let waited = polls.wait(&fetch, &id("job"), until, None).await;
    assert!(matches!(waited, Waited::NotYet(Some(_))), "{waited:?}");
}

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

/// Busy for its first `busy` calls (no upstream connection slot), then the
/// job's result.
#[derive(Clone)]
struct Saturated {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    busy: usize,
}

impl Fetch for Saturated {
    async fn fetch(&self, _: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.busy {
            Err(UpstreamError::NoSlot { limit: 4 })
        } else {
            Ok(KtpResult::default())
        }
    }
}

/// A poll that finds no upstream connection slot pauses and asks again: it
/// never ends its waiters' calls with OVERLOADED.
#[tokio::test(start_paused = true)]
async fn a_poll_without_a_connection_slot_pauses_and_asks_again() {
    let polls = polls(Duration::from_millis(100));
    let fetch = Saturated {
        calls: Arc::default(),
        busy: 3,
    };
    let until = Instant::now() + Duration::from_secs(5);
    let waited = polls.wait(&fetch, &id("job"), until, None).await;
    assert!(matches!(waited, Waited::Answered(Ok(_))), "{waited:?}");
    assert_eq!(fetch.calls.load(Ordering::SeqCst), 4);

    // Busy until the end: no answer came, so none is reported.
    let fetch = Saturated {
        calls: Arc::default(),
        busy: usize::MAX,
    };
    let until = Instant::now() + Duration::from_millis(550);
    let waited = polls.wait(&fetch, &id("job-2"), until, None).await;
    assert!(matches!(waited, Waited::NotYet(None)), "{waited:?}");
}

/// Counts the calls in progress at once; each takes `delay`.
#[derive(Clone)]
struct Counted {
    now: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
    delay: Duration,
}

impl Fetch for Counted {
    async fn fetch(&self, _: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(KtpResult::default())
    }
}

/// The waits' polls are paced: however many jobs are waited for at once,
/// at most `wait.max_polls_in_flight` (here 2) ask the upstream at a time,
/// and every wait still gets its answer.
#[tokio::test(start_paused = true)]
async fn polls_of_many_jobs_at_once_take_turns() {
    let polls = polls(Duration::from_secs(1));
    let fetch = Counted {
        now: Arc::default(),
        most: Arc::default(),
        delay: Duration::from_millis(100),
    };
    let until = Instant::now() + Duration::from_secs(30);
    let mut waits = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (polls, fetch) = (polls.clone(), fetch.clone());
        waits.spawn(async move {
            polls
                .wait(&fetch, &id(&format!("job-{n}")), until, None)
                .await
        });
    }
    while let Some(waited) = waits.join_next().await {
        let waited = waited.unwrap();
        assert!(matches!(waited, Waited::Answered(Ok(_))), "{waited:?}");
    }
    assert_eq!(fetch.most.load(Ordering::SeqCst), 2);
}

/// Answers "not found" for `bad` by panicking, a result for any other id.
#[derive(Clone)]
struct PanicsFor {
    bad: &'static str,
}

impl Fetch for PanicsFor {
    async fn fetch(&self, id: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(id.as_str() != self.bad, "a bug in one poll");
        Ok(KtpResult::default())
    }
}

/// One scheduler makes every poll, each ask its own task: a panic in one
/// job's poll fails that job's waiters, and the other jobs still get their
/// answers.
#[tokio::test(start_paused = true)]
async fn a_panic_in_one_poll_leaves_the_other_polls_running() {
    let polls = polls(Duration::from_secs(1));
    let fetch = PanicsFor { bad: "bad" };
    let until = Instant::now() + Duration::from_secs(30);
    let (bad_id, good_id) = (id("bad"), id("good"));
    let (bad, good) = tokio::join!(
        polls.wait(&fetch, &bad_id, until, None),
        polls.wait(&fetch, &good_id, until, None),
    );
    assert!(
        matches!(bad, Waited::Answered(Err(UpstreamError::FlightLost))),
        "{bad:?}"
    );
    assert!(matches!(good, Waited::Answered(Ok(_))), "{good:?}");
    // And the next wait is polled as usual.
    let later = polls.wait(&fetch, &id("later"), until, None).await;
    assert!(matches!(later, Waited::Answered(Ok(_))), "{later:?}");
}

/// "Not found" for every call, counting them.
#[derive(Clone)]
struct NeverReady {
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fetch for NeverReady {
    async fn fetch(&self, _: &ReferenceId, _: Instant, _: Option<&TraceContext>) -> Answer {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(UpstreamError::Status {
            status: 404,
            error_code: Some(NOT_FOUND_CODE.to_owned()),
            retry_after: None,
        })
    }
}

/// The last waiter leaving stops its job's poll at once: no ask after it,
/// and with no job left the scheduler stops too (a later wait starts one).
#[tokio::test(start_paused = true)]
async fn the_last_waiter_leaving_stops_the_poll_and_the_scheduler() {
    let polls = polls(Duration::from_secs(1));
    let fetch = NeverReady {
        calls: Arc::default(),
    };
    let until = Instant::now() + Duration::from_secs(30);
    let job = id("job");
    let left = tokio::time::timeout(Duration::from_millis(2500), async {
        tokio::join!(
            polls.wait(&fetch, &job, until, None),
            polls.wait(&fetch, &job, until, None),
        )
    })
    .await;
    assert!(left.is_err(), "the waits were to be left early");
    // Asked at 0, 1 and 2 s: one ask per interval for both waiters.
    assert_eq!(fetch.calls.load(Ordering::SeqCst), 3);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        fetch.calls.load(Ordering::SeqCst),
        3,
        "asked after all left"
    );
    {
        let state = lock(&polls.shared.state);
        assert!(state.jobs.is_empty() && state.queue.is_empty());
        assert!(state.scheduler.is_none(), "the scheduler still runs");
    }
    let until = Instant::now() + Duration::from_millis(1500);
    let waited = polls.wait(&fetch, &job, until, None).await;
    assert!(matches!(waited, Waited::NotYet(Some(_))), "{waited:?}");
    // At once, then 1 s later; the next would come after its end.
    assert_eq!(fetch.calls.load(Ordering::SeqCst), 5);
}

/// What a polled job keeps between two asks, whatever its waiters: a few
/// hundred bytes (a task, a channel and the last answer, 3.3 KiB, before).
#[test]
fn a_polled_jobs_state_stays_small() {
    let size = std::mem::size_of::<job::Job>();
    assert!(size <= 320, "a job: {size} bytes");
}
