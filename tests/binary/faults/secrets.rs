//! Proves: at the most verbose log level (`trace`, every crate), through
//! every fault of the matrix and the normal calls between them, nothing the
//! gateway prints on stdout or stderr contains the App-ID, the API key, any
//! KTP value the fake upstream sent (in successes, in job errors, in
//! malformed bodies and in error pages alike), or the submitted image (its
//! marker, or any part of its base64 form).

use ktp_testkit::{
    card_holders::person,
    fake_upstream::{FakeUpstream, Reply},
};

use base64::Engine as _;

use super::{
    scenarios::{IMAGE_MARKER, matrix_image, run_matrix},
    subject::{API_KEY, APP_ID, Subject},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_or_personal_value_in_trace_logs() {
    let mut run = run_matrix("trace").await;
    eprintln!("fault matrix: {}", run.summary());
    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
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
    let b64 = base64::engine::general_purpose::STANDARD.encode(matrix_image());
    let image_parts: Vec<&str> = [0, 1, 2, b64.len() / 2]
        .into_iter()
        .map(|at| &b64[at..at + 40])
        .collect();
    let needles = [
        ("App-ID", APP_ID),
        ("API key", API_KEY),
        ("image", IMAGE_MARKER),
    ]
    .into_iter()
    .chain(person::ALL.iter().map(|v| ("personal value", *v)))
    .chain(image_parts.into_iter().map(|p| ("image (base64)", p)));
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

/// Bearer tokens are secrets too: a caller's valid token, a wrong one and
/// a missing one go through the gateway at `trace` level, and neither token
/// appears anywhere in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bearer_token_in_trace_logs() {
    const GOOD: &str = "faults-bearer-token-7d3e1a";
    const BAD: &str = "faults-wrong-token-90b2cc";
    let mut tokens = tempfile::NamedTempFile::new().expect("tokens file");
    std::io::Write::write_all(&mut tokens, format!("# callers\n{GOOD}\n").as_bytes())
        .expect("write tokens");
    let tokens_path = tokens.path().to_str().expect("UTF-8 path").to_owned();

    let upstream = FakeUpstream::start().await;
    upstream.otherwise(Reply::Json(200, person::success()));
    let mut subject = Subject::start(
        &upstream,
        "trace",
        &[("KTP_GATEWAY__AUTH__TOKENS_FILE", tokens_path.as_str())],
    )
    .await;
    let mut client = subject.gateway.ktp().await;
    let request = |token: Option<&str>| {
        let mut r = tonic::Request::new(ktp_gateway::proto::GetKtpResultRequest {
            read_mask: None,
            reference_id: "TOKENS-1".into(),
            wait: false,
        });
        if let Some(t) = token {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("ASCII"),
            );
        }
        r
    };
    client
        .get_ktp_result(request(Some(GOOD)))
        .await
        .expect("a listed token is accepted");
    let wrong = client
        .get_ktp_result(request(Some(BAD)))
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let missing = client
        .get_ktp_result(request(None))
        .await
        .expect_err("no token is refused");
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);

    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
    let status = tokio::task::block_in_place(|| subject.gateway.stop());
    assert!(status.success(), "exit status {status}");
    let lines = subject.output_lines();
    assert!(
        lines
            .iter()
            .filter(|l| l.contains(r#""level":"TRACE""#))
            .count()
            > 20,
        "trace output was on"
    );
    for needle in [GOOD, BAD, APP_ID, API_KEY]
        .into_iter()
        .chain(person::ALL.iter().copied())
    {
        if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
            panic!("{needle:?} leaked into the output: {line}");
        }
    }
}
