//! The histograms' buckets, in seconds.

/// Latency buckets in seconds: 1 ms to 10 s, for both the gRPC calls and the
/// upstream attempts (a healthy upstream answers in tens of milliseconds,
/// `upstream.timeout` is 10 s).
pub(super) const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of calls that wait for a job: 100 ms to `wait.max_wait`'s cap.
pub(super) const WAIT_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets of a job's processing time at the vendor: 0.25 s to 60 s.
pub(super) const JOB_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
];
