//! Proves: at the most verbose log level (`trace`, every crate), through
//! every fault of the matrix and the normal calls between them, nothing the
//! gateway prints on stdout or stderr contains the App-ID, the API key, or
//! any KTP value the fake upstream sent (in successes, in job errors, in
//! malformed bodies and in error pages alike).

use crate::{
    scenarios::{person, run_matrix},
    subject::{API_KEY, APP_ID},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_or_personal_value_in_trace_logs() {
    let mut run = run_matrix("trace").await;
    eprintln!("fault matrix: {}", run.summary());
    let status = tokio::task::block_in_place(|| run.subject.gateway.stop());
    assert!(status.success(), "exit status {status}");
    let lines = run.subject.output_lines();
    // The scan is only worth something if trace output was really on.
    let trace_lines = lines
        .iter()
        .filter(|l| l.contains(r#""level":"TRACE""#))
        .count();
    assert!(
        trace_lines > 100,
        "only {trace_lines} TRACE lines in {} lines",
        lines.len()
    );
    let needles = [("App-ID", APP_ID), ("API key", API_KEY)]
        .into_iter()
        .chain(person::ALL.iter().map(|v| ("personal value", *v)));
    for (what, needle) in needles {
        if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
            panic!(
                "{what} {needle:?} leaked into the output ({} lines scanned, scenarios {:?}): {line}",
                lines.len(),
                run.ran
            );
        }
    }
}
