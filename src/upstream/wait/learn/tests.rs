//! The first poll's schedule, on paused time.

use super::*;

fn learner(mode: FirstPoll) -> Learner {
    Learner::new(mode, Metrics::new().unwrap())
}

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Before anything is learnt, and for a job this process did not submit,
/// the first poll is at once (today's behaviour).
#[tokio::test(start_paused = true)]
async fn at_once_until_a_job_was_seen_and_for_jobs_not_submitted_here() {
    let l = learner(FirstPoll::Auto);
    assert!(matches!(l.first_poll("OTHER"), (None, None)));
    l.submitted("MINE");
    let (tracked, at) = l.first_poll("MINE");
    assert!(tracked.is_some() && at.is_none());
}

/// A job found unfinished at 1 s and finished at 2.5 s took about 1.75 s;
/// the next job's first poll comes that long after its submit, then moves
/// down a little for each first poll that finds its job done, up four
/// times as much for each that does not.
#[tokio::test(start_paused = true)]
async fn the_first_poll_follows_what_was_learnt() {
    let l = learner(FirstPoll::Auto);
    l.submitted("JOB-1");
    let (tracked, _) = l.first_poll("JOB-1");
    let mut job = tracked.unwrap();
    tokio::time::advance(MS(1000)).await;
    l.polled(&mut job, false);
    tokio::time::advance(MS(1500)).await;
    l.polled(&mut job, true);

    l.submitted("JOB-2");
    let submitted = Instant::now();
    let (tracked, at) = l.first_poll("JOB-2");
    assert_eq!(at, Some(submitted + MS(1750)));
    let mut job = tracked.unwrap();
    tokio::time::advance(MS(1750)).await;
    l.polled(&mut job, true);
    l.submitted("JOB-3");
    let (tracked, at) = l.first_poll("JOB-3");
    assert_eq!(at, Some(Instant::now() + MS(1700)), "50 ms earlier");
    let mut job = tracked.unwrap();
    tokio::time::advance(MS(1700)).await;
    l.polled(&mut job, false);
    l.submitted("JOB-4");
    let (_, at) = l.first_poll("JOB-4");
    assert_eq!(at, Some(Instant::now() + MS(1900)), "200 ms later");
}

/// Jobs of a steady 3 s settle at first polls just around 3 s: few
/// second polls, little added latency (the bench target: at most
/// 1.5 GETs per job and 0.3 s median added latency after 20 jobs).
#[tokio::test(start_paused = true)]
async fn steady_jobs_settle_near_their_time() {
    let l = learner(FirstPoll::Auto);
    let job_time = MS(3000);
    let (mut gets, mut late) = (0u32, Vec::new());
    for n in 0..60 {
        let id = format!("JOB-{n}");
        l.submitted(&id);
        let submitted = Instant::now();
        let (tracked, at) = l.first_poll(&id);
        let mut job = tracked.unwrap();
        let mut next = at.unwrap_or(submitted);
        let mut interval = MS(1000);
        loop {
            tokio::time::advance(next - Instant::now()).await;
            if n >= 20 {
                gets += 1;
            }
            let done = Instant::now() - submitted >= job_time;
            l.polled(&mut job, done);
            if done {
                break;
            }
            next = Instant::now() + interval;
            interval = interval.mul_f64(1.5).min(MS(4000));
        }
        if n >= 20 {
            late.push(Instant::now() - submitted - job_time);
        }
    }
    late.sort();
    let per_job = f64::from(gets) / 40.0;
    assert!(per_job <= 1.5, "{per_job} GETs per job");
    let median = late[late.len() / 2];
    assert!(median <= MS(300), "median added {median:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_first_poll_counts_from_the_submit() {
    let l = learner(FirstPoll::After(MS(2500)));
    l.submitted("JOB");
    let at = Instant::now() + MS(2500);
    tokio::time::advance(MS(100)).await;
    assert_eq!(l.first_poll("JOB").1, Some(at));
}

/// Submits are remembered for ten minutes, ten thousand at most.
#[tokio::test(start_paused = true)]
async fn submits_are_forgotten_after_ten_minutes_or_past_ten_thousand() {
    let l = learner(FirstPoll::Auto);
    l.submitted("OLD");
    tokio::time::advance(REMEMBERED_FOR).await;
    assert!(l.first_poll("OLD").0.is_none());
    for n in 0..=MAX_REMEMBERED {
        l.submitted(&format!("JOB-{n}"));
    }
    assert!(l.first_poll("JOB-0").0.is_none(), "the oldest went first");
    assert!(l.first_poll("JOB-1").0.is_some());
    assert!(l.first_poll(&format!("JOB-{MAX_REMEMBERED}")).0.is_some());
}
