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
/// the next job's first poll comes that long after its submit. After a
/// round of first polls scheduled with that delay, it moves: earlier when
/// at most one in five missed, later when more did, halfway between the
/// last good and bad delays once both are known.
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

    let round = |hits: usize, misses: usize| {
        let mut jobs = Vec::new();
        for n in 0..hits + misses {
            let id = format!("R-{n}");
            l.submitted(&id);
            jobs.push(l.first_poll(&id));
        }
        let at = jobs[0].1.expect("scheduled from what was learnt");
        for (n, (tracked, _)) in jobs.into_iter().enumerate() {
            l.polled(&mut tracked.unwrap(), n < hits);
        }
        at - Instant::now()
    };
    assert_eq!(round(5, 0), MS(1750));
    assert_eq!(round(4, 1), MS(1575), "a tenth earlier");
    assert_eq!(
        round(3, 2),
        MS(1418) - Duration::from_micros(500),
        "a tenth earlier again"
    );
    assert_eq!(
        round(5, 0),
        MS(1496) + Duration::from_micros(250),
        "halfway back up"
    );
    assert_eq!(
        round(5, 0),
        Duration::from_micros(1_456_875),
        "halfway down again"
    );
}

/// Jobs already scheduled when the delay moved count for no round: a burst
/// of their misses cannot push it again and again.
#[tokio::test(start_paused = true)]
async fn only_jobs_scheduled_with_the_current_delay_move_it() {
    let l = learner(FirstPoll::Auto);
    l.submitted("SEED");
    let mut seed = l.first_poll("SEED").0.unwrap();
    tokio::time::advance(MS(1000)).await;
    l.polled(&mut seed, true);
    let scheduled: Vec<_> = (0..100)
        .map(|n| {
            let id = format!("OLD-{n}");
            l.submitted(&id);
            l.first_poll(&id).0.unwrap()
        })
        .collect();
    for mut job in scheduled {
        l.polled(&mut job, false);
    }
    l.submitted("NEXT");
    let at = l.first_poll("NEXT").1.unwrap();
    // Learnt 0.5 s (finished at its first poll, 1 s), one bad round: 0.7 s.
    assert_eq!(at - Instant::now(), MS(700), "one step up, not twenty");
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

/// Jobs of 3 s arriving at 50 a second (150 scheduled before any answer
/// comes back) settle too: the bench target, at most 1.5 GETs per
/// job and 0.3 s median added latency once 20 jobs were seen.
#[tokio::test(start_paused = true)]
async fn many_jobs_at_once_settle_near_their_time() {
    use std::{cmp::Reverse, collections::BinaryHeap};
    let l = learner(FirstPoll::Auto);
    let (job_time, every, count) = (MS(3000), MS(20), 1500usize);
    let start = Instant::now();
    let mut jobs: Vec<(Tracked, Instant, Duration)> = Vec::new();
    // (when, job or a new submit)
    let mut events = BinaryHeap::new();
    for n in 0..count {
        events.push(Reverse((start + every * n as u32, n, true)));
    }
    let (mut gets, mut late, mut answered) = (0usize, Vec::new(), 0usize);
    while let Some(Reverse((at, n, submit))) = events.pop() {
        tokio::time::advance(at - Instant::now()).await;
        if submit {
            let id = format!("JOB-{n}");
            l.submitted(&id);
            let (tracked, first) = l.first_poll(&id);
            jobs.push((tracked.unwrap(), Instant::now(), MS(1000)));
            events.push(Reverse((first.unwrap_or(at).max(at), n, false)));
            continue;
        }
        let (job, submitted, interval) = &mut jobs[n];
        let done = Instant::now() - *submitted >= job_time;
        if answered >= 20 {
            gets += 1;
        }
        l.polled(job, done);
        if done {
            if answered >= 20 {
                late.push(Instant::now() - *submitted - job_time);
            }
            answered += 1;
        } else {
            events.push(Reverse((Instant::now() + *interval, n, false)));
            *interval = interval.mul_f64(1.5).min(MS(4000));
        }
    }
    late.sort();
    let per_job = gets as f64 / late.len() as f64;
    let median = late[late.len() / 2];
    assert!(per_job <= 1.5, "{per_job} GETs per job");
    assert!(median <= MS(300), "median added {median:?}");
}
