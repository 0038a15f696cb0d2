//! The bounds of the image-carrying RPCs: each method's own request size
//! limit (16 KiB for `GetKtpResult`, `submit.max_image_bytes` + 16 KiB for
//! `SubmitKtp` and `ExtractKtp`), and `submit.max_in_flight` shedding image
//! calls at once while `GetKtpResult` goes on.

use std::time::Duration;

use ktp_gateway::proto::ktp_service_client::KtpServiceClient;
use ktp_testkit::{fake_upstream::Reply, images};
use tonic::Code;

use crate::helpers::{
    Stalled, TestApp, channel, count, expect_error, extract_request, h2_connection, message_bytes,
    millis, sample_success, secs, submit_request, tokens_file, valid_image,
};

const KIB: usize = 1024;

#[tokio::test]
async fn each_method_has_its_own_message_limit() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));

    // GetKtpResult keeps its 16 KiB, whatever the image calls take.
    let e = expect_error(app.call(&"R".repeat(20 * KIB)).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::InvalidArgument, "REQUEST_TOO_LARGE")
    );
    assert!(e.message.contains("16384"), "{}", e.message);

    // A 4 MB image is fine.
    let four_mb = images::padded(images::valid(), 4_000_000);
    let accepted = app
        .submit(submit_request(
            ktp_testkit::images::ImageSource::File(four_mb.clone()),
            "BIG-OK",
        ))
        .await
        .expect("a 4 MB image is accepted")
        .into_inner();
    assert_eq!(accepted.reference_id, "BIG-OK");
    let sent = app.upstream.submits();
    assert!(sent[0].submitted_image().is_some_and(|b| b == four_mb));

    // Over submit.max_image_bytes (5,000,000) but within the message
    // limit: the gateway's own check answers, naming the rule.
    let over_image = images::padded(images::valid(), 5_000_001);
    let e = expect_error(
        app.submit(submit_request(
            ktp_testkit::images::ImageSource::File(over_image),
            "BIG-1",
        ))
        .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::InvalidArgument, "INVALID_IMAGE")
    );
    assert_eq!(e.meta("constraint"), Some("size"));

    // Over the image limit plus 16 KiB: the gRPC layer refuses the message.
    let over_message = images::padded(images::valid(), 5_000_000 + 16 * KIB + 1);
    for extract in [false, true] {
        let source = ktp_testkit::images::ImageSource::File(over_message.clone());
        let result = if extract {
            app.extract(extract_request(source, "BIG-2"))
                .await
                .map(|_| ())
        } else {
            app.submit(submit_request(source, "BIG-2"))
                .await
                .map(|_| ())
        };
        let e = expect_error(result);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::InvalidArgument, "REQUEST_TOO_LARGE", "ktp-gateway"),
            "extract={extract}: {}",
            e.message
        );
    }
    assert_eq!(
        app.upstream.attempts("BIG-1") + app.upstream.attempts("BIG-2"),
        0
    );
    app.call("FINE").await.expect("normal calls still work");
}

#[tokio::test]
async fn the_image_calls_message_limit_follows_submit_max_image_bytes() {
    let app = TestApp::spawn_with(|s| s.submit.max_image_bytes = message_bytes(100_000)).await;
    let source = |len| ktp_testkit::images::ImageSource::File(images::padded(images::valid(), len));
    // Between the image limit and the message limit: the image rule.
    let e = expect_error(app.submit(submit_request(source(110_000), "SMALL-1")).await);
    assert_eq!(
        (e.reason(), e.meta("constraint")),
        ("INVALID_IMAGE", Some("size"))
    );
    // Beyond 100,000 + 16 KiB: refused as a message.
    let e = expect_error(app.submit(submit_request(source(120_000), "SMALL-2")).await);
    assert_eq!(e.reason(), "REQUEST_TOO_LARGE", "{}", e.message);
    // A 4 MB image, fine with the default limit, is now far too large.
    let e = expect_error(
        app.submit(submit_request(source(4_000_000), "SMALL-3"))
            .await,
    );
    assert_eq!(e.reason(), "REQUEST_TOO_LARGE", "{}", e.message);
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn image_calls_beyond_submit_max_in_flight_are_shed_while_results_go_on() {
    let app = TestApp::spawn_with(|s| s.submit.max_in_flight = count(1)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.upstream.on_submit(
        "HELD",
        Reply::delayed(Duration::from_millis(1500), Reply::accepted("HELD")),
    );
    let mut held_client = app.client.clone();
    let held = tokio::spawn(async move {
        held_client
            .submit_ktp(submit_request(valid_image(), "HELD"))
            .await
    });
    while app.upstream.attempts("HELD") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut other = KtpServiceClient::new(channel(app.addr).await);
    let started = std::time::Instant::now();
    let e = expect_error(
        other
            .submit_ktp(submit_request(valid_image(), "SHED-1"))
            .await,
    );
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::ResourceExhausted, "OVERLOADED", "ktp-gateway")
    );
    assert_eq!(e.meta("max_in_flight"), Some("1"));
    let e = expect_error(
        other
            .extract_ktp(extract_request(valid_image(), "SHED-2"))
            .await,
    );
    assert_eq!(
        (e.reason(), e.meta("max_in_flight")),
        ("OVERLOADED", Some("1"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "refused at once, not queued behind the held submit: {:?}",
        started.elapsed()
    );
    // GetKtpResult is not an image call.
    other
        .get_ktp_result(ktp_gateway::proto::GetKtpResultRequest {
            read_mask: None,
            reference_id: "STILL-SERVED".into(),
            wait: false,
        })
        .await
        .expect("GetKtpResult is not shed");
    assert_eq!(
        app.upstream.attempts("SHED-1") + app.upstream.attempts("SHED-2"),
        0
    );

    held.await
        .expect("task")
        .expect("the held submit completes");
    // The slot is free again.
    other
        .submit_ktp(submit_request(valid_image(), "AFTER"))
        .await
        .expect("accepted once the held submit is done");
}

/// `submit.max_in_flight` bounds the memory images hold ("at most
/// `submit.max_in_flight` submits hold image bytes at once", issue 11;
/// README: "submits holding image bytes at once"). An `ExtractKtp` whose
/// submit is done holds no image any more while it waits for the job, which
/// may take the whole `wait.max_wait` (30 s): it must not keep a new submit
/// out, or 16 waiting extracts would shed every image call of the process.
#[tokio::test]
async fn a_waiting_extract_holds_no_image_slot() {
    let app = TestApp::spawn_with(|s| {
        s.submit.max_in_flight = count(1);
        s.wait.poll_interval = millis(100);
        s.wait.max_poll_interval = millis(100);
    })
    .await;
    app.upstream.jobs_finish_after(Duration::from_millis(2500));
    let mut waiting_client = app.client.clone();
    let waiting = tokio::spawn(async move {
        waiting_client
            .extract_ktp(extract_request(valid_image(), "WAITING-1"))
            .await
    });
    // Its submit is done once the job is being polled.
    while app.upstream.result_times("WAITING-1").is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut other = KtpServiceClient::new(channel(app.addr).await);
    let submitted = other
        .submit_ktp(submit_request(valid_image(), "WHILE-WAITING"))
        .await;
    let waited = waiting.await.expect("task");
    assert!(waited.is_ok(), "the waiting extract: {waited:?}");
    if let Err(status) = submitted {
        let e = expect_error::<()>(Err(status));
        panic!(
            "a submit while an extract only waits was refused: {:?} {} max_in_flight={:?}",
            e.code,
            e.reason(),
            e.meta("max_in_flight")
        );
    }
}

/// Clients that send a call's headers and stall: unauthenticated ones are
/// refused before they can take an image slot, and authenticated ones hold
/// theirs only until `server.request_read_timeout`, when their calls end
/// with DEADLINE_EXCEEDED `REQUEST_READ_TIMEOUT` and free the slots.
#[tokio::test]
async fn stalled_bodies_hold_no_image_slot_past_the_read_timeout() {
    let mut tokens = tempfile::NamedTempFile::new().expect("tokens file");
    std::io::Write::write_all(&mut tokens, b"stall-token-1\n").expect("write tokens");
    let app = TestApp::spawn_with(|s| {
        s.auth.tokens_file = tokens_file(tokens.path());
        s.server.request_read_timeout = secs(1);
    })
    .await;
    let connection = h2_connection(app.addr).await;
    const SUBMIT: &str = "/ktp.v1.KtpService/SubmitKtp";
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(Stalled::open(&connection, SUBMIT, None, 100_000, 10).await);
    }
    let mut authenticated = Vec::new();
    for _ in 0..16 {
        authenticated.push(
            Stalled::open(
                &connection,
                SUBMIT,
                Some("Bearer stall-token-1"),
                100_000,
                10,
            )
            .await,
        );
    }
    let refused = stalled.remove(0).answer().await;
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Every slot is held now; a caller without a token is still told so,
    // not OVERLOADED: it never contends for a slot.
    let late = Stalled::open(&connection, SUBMIT, None, 100_000, 10).await;
    let refused = late.answer().await;
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut request = tonic::Request::new(submit_request(valid_image(), "AFTER-STALL-1"));
    request.metadata_mut().insert(
        "authorization",
        "Bearer stall-token-1".parse().expect("ASCII"),
    );
    app.client
        .clone()
        .submit_ktp(request)
        .await
        .expect("every image slot is free again");

    for call in authenticated {
        let status = call.answer().await;
        let e = expect_error::<()>(Err(status));
        assert_eq!(
            (e.code, e.reason()),
            (Code::DeadlineExceeded, "REQUEST_READ_TIMEOUT"),
            "{}",
            e.message
        );
    }
    assert_eq!(
        app.upstream.submits().len(),
        1,
        "only the whole one was sent"
    );
    drop(stalled);
}
