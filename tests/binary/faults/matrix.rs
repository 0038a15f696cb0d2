//! Proves: for every fault of the matrix the gateway binary answers the
//! exact README row (code, reason, domain, metadata, `RetryInfo`), retries
//! exactly the transient faults, cancels the upstream request it gives up
//! on, stays alive without a panic, returns to its baseline memory and
//! upstream connections, answers a normal call right after, and exits 0 on
//! SIGTERM at the end.

use super::scenarios::run_matrix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_maps_to_its_row_without_panic_or_leak() {
    let mut run = run_matrix("info").await;
    eprintln!("fault matrix: {}", run.summary());
    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
    let status = tokio::task::block_in_place(|| run.subject.gateway.stop());
    assert!(
        status.success(),
        "exit status {status} after {} scenarios\n{}",
        run.ran.len(),
        run.subject.gateway.process.output()
    );
    // Every log line is JSON, and the only ERROR lines are the 401 row's
    // (refused credentials, the one row logged at ERROR): no panic, no other
    // failure of the gateway itself.
    let errors: Vec<_> = run
        .subject
        .gateway
        .process
        .json_logs()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["reason"], "UPSTREAM_AUTH_FAILED", "{errors:?}");
    assert!(run.upstream.requests().len() > run.ran.len());
}
