//! `SubmitKtp` against the fake upstream's submit call: local validation
//! before any billed request, the generated reference id, the exact request
//! the upstream gets, the answered reference id, the rows of a taken id
//! (also after a lost attempt), and which failures are retried. The error
//! table's examples (`table.rs`) play every row through this RPC too; here
//! are the cases that need more than one answer or a look at the wire.

use std::time::Duration;

use ktp_gateway::proto::SubmitKtpRequest;
use ktp_testkit::{
    fake_upstream::{Recorded, Reply},
    images::{self, ImageSource},
};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{
    API_KEY, APP_ID, TestApp, count32, expect_error, extract_request, message_bytes, millis,
    sample_success, submit_request, tokens_file, valid_image,
};

/// Whether `id` is a UUID v4 in its lower-case hyphenated form.
fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lens == [8, 4, 4, 4, 12]
        && id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

/// The one submit the upstream received.
fn only_submit(app: &TestApp) -> Recorded {
    let submits = app.upstream.submits();
    assert_eq!(submits.len(), 1, "{submits:?}");
    submits.into_iter().next().expect("one submit")
}

#[tokio::test]
async fn each_local_image_rule_refuses_before_any_upstream_request() {
    let app = TestApp::spawn_with(|s| s.submit.max_image_bytes = message_bytes(100_000)).await;
    let over = images::padded(images::valid(), 100_001);
    let cases: Vec<(&str, ImageSource, &str, &str)> = vec![
        ("no image", ImageSource::None, "required", "image"),
        ("empty", ImageSource::File(Vec::new()), "required", "image"),
        ("over the limit", ImageSource::File(over), "size", "image"),
        (
            "a GIF",
            ImageSource::File(b"GIF89a\xd0\x02\xe0\x01".to_vec()),
            "format",
            "image",
        ),
        (
            "a BMP",
            ImageSource::File(b"BM\x36\x00\x0c\x00\x00\x00".to_vec()),
            "format",
            "image",
        ),
        (
            "a PNG of 719x480",
            ImageSource::File(images::png(719, 480)),
            "dimensions",
            "image",
        ),
        (
            "a JPEG of 720x479",
            ImageSource::File(images::jpeg(720, 479)),
            "dimensions",
            "image",
        ),
        (
            "an http URL",
            ImageSource::Url("http://example.com/ktp.png".into()),
            "url",
            "image_url",
        ),
        (
            "a URL without a scheme",
            ImageSource::Url("example.com/ktp.png".into()),
            "url",
            "image_url",
        ),
        (
            "a data URL",
            ImageSource::Url("data:image/png;base64,iVBORw0KGgo=".into()),
            "url",
            "image_url",
        ),
        (
            "2,049 bytes",
            ImageSource::Url(format!("https://example.com/{}", "a".repeat(2029))),
            "url",
            "image_url",
        ),
    ];
    for (what, image, constraint, field) in cases {
        for extract in [false, true] {
            let result = if extract {
                app.extract(extract_request(image.clone(), "LOCAL-1"))
                    .await
                    .map(|_| ())
            } else {
                app.submit(submit_request(image.clone(), "LOCAL-1"))
                    .await
                    .map(|_| ())
            };
            let e = expect_error(result);
            let rpc = if extract { "ExtractKtp" } else { "SubmitKtp" };
            assert_eq!(
                (e.code, e.reason(), e.domain()),
                (Code::InvalidArgument, "INVALID_IMAGE", "ktp-gateway"),
                "{rpc} {what}: {}",
                e.message
            );
            assert_eq!(e.meta("constraint"), Some(constraint), "{rpc} {what}");
            let fields: Vec<&str> = e
                .details
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| v.field.as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(fields, [field], "{rpc} {what}");
            assert_eq!(e.meta("reference_id"), None, "{rpc} {what}: no job");
        }
    }
    assert!(
        app.upstream.requests().is_empty(),
        "a refused image reached the upstream: {:?}",
        app.upstream.requests()
    );
}

#[tokio::test]
async fn images_at_the_edges_of_the_rules_are_submitted() {
    let app = TestApp::spawn_with(|s| s.submit.max_image_bytes = message_bytes(100_000)).await;
    let cases = [
        ("720x480", images::png(720, 480)),
        ("a portrait 480x720", images::png(480, 720)),
        ("a JPEG 1280x960", images::jpeg(1280, 960)),
        (
            "exactly submit.max_image_bytes",
            images::padded(images::png(720, 480), 100_000),
        ),
    ];
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let id = format!("EDGE-{i}");
        let response = app
            .submit(submit_request(ImageSource::File(bytes.clone()), &id))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
            .into_inner();
        assert_eq!(response.reference_id, id, "{what}");
        let sent = app
            .upstream
            .submits()
            .into_iter()
            .find(|r| r.reference_id().as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("{what}: not submitted"));
        assert!(
            sent.submitted_image().is_some_and(|b| b == bytes),
            "{what}: the upstream got other bytes"
        );
    }
}

#[tokio::test]
async fn the_body_is_the_documented_json_with_the_image_in_standard_base64() {
    let app = TestApp::spawn().await;
    // 100,001 bytes: base64 needs one padding character; the filler's bytes
    // encode to `+` and `/`, which a URL-safe alphabet would not use.
    let image = images::padded(images::valid(), 100_001);
    let mut request = submit_request(ImageSource::File(image.clone()), "BODY-1");
    request.validate_quality = true;
    let response = app.submit(request).await.expect("accepted").into_inner();
    assert_eq!(
        (response.reference_id.as_str(), response.message.as_str()),
        ("BODY-1", "success")
    );
    let r = only_submit(&app);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/ktp/id/extract-async")
    );
    assert!(r.query.is_empty(), "nothing in the query: {:?}", r.query);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json().expect("a JSON body");
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "exactly image, validate_quality, reference_id (no callback_url): {keys:?}"
    );
    assert_eq!(body["validate_quality"], json!(true));
    assert_eq!(body["reference_id"], json!("BODY-1"));
    let encoded = body["image"].as_str().expect("image is a string");
    assert_eq!(encoded.len(), 133_336, "4 characters per 3 bytes, padded");
    assert!(encoded.ends_with('=') && !encoded.ends_with("=="));
    assert!(
        encoded.contains('+') && encoded.contains('/'),
        "the standard alphabet"
    );
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
        "no line breaks or other characters"
    );
    assert!(
        r.submitted_image().is_some_and(|b| b == image),
        "the image decodes to the bytes sent"
    );
    // Without validate_quality: false, not absent.
    app.submit(submit_request(valid_image(), "BODY-2"))
        .await
        .expect("accepted");
    let second = app
        .upstream
        .submits()
        .into_iter()
        .find(|r| r.reference_id().as_deref() == Some("BODY-2"))
        .expect("second submit");
    assert_eq!(
        second.json().expect("JSON")["validate_quality"],
        json!(false)
    );
}

#[tokio::test]
async fn an_image_url_is_sent_as_given_or_as_normalised() {
    let app = TestApp::spawn().await;
    for (i, (given, sent)) in [
        (
            "https://images.example.com/ktp/card.png?sig=a%2Fb&x=1",
            "https://images.example.com/ktp/card.png?sig=a%2Fb&x=1",
        ),
        (
            "HTTPS://Images.Example.COM/a/../ktp.png",
            "https://images.example.com/ktp.png",
        ),
        ("https://example.com", "https://example.com/"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("URL-{i}");
        app.submit(submit_request(ImageSource::Url(given.into()), &id))
            .await
            .unwrap_or_else(|e| panic!("{given}: {e:?}"));
        let r = app
            .upstream
            .submits()
            .into_iter()
            .find(|r| r.reference_id().as_deref() == Some(id.as_str()))
            .expect("submitted");
        let body = r.json().expect("JSON");
        assert_eq!(body["image"], json!(sent), "{given}");
        assert_eq!(body["reference_id"], json!(id));
    }
}

#[tokio::test]
async fn the_submit_carries_the_result_calls_headers() {
    let app = TestApp::spawn().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    app.submit_with(submit_request(valid_image(), "HEADERS-1"), |r| {
        r.metadata_mut()
            .insert("traceparent", traceparent.parse().unwrap());
    })
    .await
    .expect("accepted");
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call("HEADERS-1").await.expect("result");
    let requests = app.upstream.requests();
    let (submit, result) = (&requests[0], &requests[1]);
    assert!(submit.is_submit() && !result.is_submit());
    for name in ["app-id", "api-key", "accept", "user-agent"] {
        assert!(submit.header(name).is_some(), "{name}");
        assert_eq!(submit.header(name), result.header(name), "{name}");
    }
    assert_eq!(submit.header("app-id"), Some(APP_ID));
    assert_eq!(submit.header("api-key"), Some(API_KEY));
    assert_eq!(submit.header("traceparent"), Some(traceparent));
}

#[tokio::test]
async fn an_empty_reference_id_becomes_one_uuid_v4_for_every_attempt() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise_submit(Reply::sequence(vec![
        Reply::Json(503, json!({"message": "busy"})),
        Reply::Close,
        Reply::Json(200, json!({"message": "success", "data": {}})),
    ]));
    let response = app
        .submit(submit_request(valid_image(), ""))
        .await
        .expect("accepted on the third attempt")
        .into_inner();
    let id = response.reference_id;
    assert!(is_uuid_v4(&id), "{id:?}");
    let submits = app.upstream.submits();
    assert_eq!(submits.len(), 3);
    let first_body = &submits[0].body;
    for (n, r) in submits.iter().enumerate() {
        assert_eq!(
            r.reference_id().as_deref(),
            Some(id.as_str()),
            "attempt {n}"
        );
        assert!(&r.body == first_body, "attempt {n} sent another body");
    }
    // Each call gets its own.
    app.upstream
        .otherwise_submit(Reply::Json(200, json!({"data": {}})));
    let other = app
        .submit(submit_request(valid_image(), ""))
        .await
        .expect("accepted")
        .into_inner()
        .reference_id;
    assert!(is_uuid_v4(&other) && other != id, "{other:?}");
}

#[tokio::test]
async fn the_answered_reference_id_is_the_upstreams_else_the_one_sent() {
    let app = TestApp::spawn().await;
    app.upstream.on_submit(
        "MINE-1",
        Reply::Json(
            200,
            json!({"message": "queued", "data": {"reference_id": "VENDOR-9"}}),
        ),
    );
    app.upstream
        .on_submit("MINE-2", Reply::Json(200, json!({"message": "queued"})));
    app.upstream.on_submit(
        "MINE-3",
        Reply::Json(200, json!({"data": {"reference_id": ""}})),
    );
    for (sent, answered, message) in [
        ("MINE-1", "VENDOR-9", "queued"),
        ("MINE-2", "MINE-2", "queued"),
        ("MINE-3", "MINE-3", ""),
    ] {
        let r = app
            .submit(submit_request(valid_image(), sent))
            .await
            .unwrap_or_else(|e| panic!("{sent}: {e:?}"))
            .into_inner();
        assert_eq!(
            (r.reference_id.as_str(), r.message.as_str()),
            (answered, message),
            "{sent}"
        );
    }
}

#[tokio::test]
async fn a_reference_id_submitted_twice_is_already_exists_naming_it() {
    let app = TestApp::spawn().await;
    app.submit(submit_request(valid_image(), "TWICE-1"))
        .await
        .expect("first submit");
    let e = expect_error(app.submit(submit_request(valid_image(), "TWICE-1")).await);
    assert_eq!(e.code, Code::AlreadyExists, "{}", e.message);
    assert_eq!(
        (e.reason(), e.domain()),
        ("INVALID_PAYLOAD_REFERENCE_ID_EXISTS", "api.verihubs.com")
    );
    assert_eq!(e.meta("upstream_http_status"), Some("400"));
    let info = e.details.resource_info().expect("ResourceInfo");
    assert_eq!(
        (info.resource_type.as_str(), info.resource_name.as_str()),
        ("ktp.v1.KtpResult", "TWICE-1")
    );
    assert_eq!(app.upstream.attempts("TWICE-1"), 2, "not retried");
}

/// Submits `id` whose attempts the upstream answers with `attempts`.
async fn submit_through(
    app: &TestApp,
    id: &str,
    attempts: Vec<Reply>,
) -> Result<String, tonic::Status> {
    app.upstream.on_submit(id, Reply::sequence(attempts));
    app.submit(submit_request(valid_image(), id))
        .await
        .map(|r| r.into_inner().reference_id)
}

#[tokio::test]
async fn a_taken_id_after_a_lost_attempt_is_the_callers_own_job() {
    let app = TestApp::spawn().await;
    // A 502 or 504 comes from a proxy that may have forwarded the submit
    // before its own upstream failed: lost as well.
    for (id, lost) in [
        ("LOST-CLOSE", Reply::Close),
        ("LOST-RESET", Reply::Reset),
        ("PROXY-502", Reply::Json(502, json!({}))),
        ("PROXY-504", Reply::Json(504, json!({}))),
    ] {
        let answered = submit_through(&app, id, vec![lost, Reply::reference_id_exists()])
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(answered, id);
        assert_eq!(app.upstream.attempts(id), 2, "{id}");
    }
    // A lost attempt, an answered failure, then the id taken: the lost one
    // may have been taken, so still OK.
    let answered = submit_through(
        &app,
        "LOST-THEN-503",
        vec![
            Reply::Close,
            Reply::Json(503, json!({})),
            Reply::reference_id_exists(),
        ],
    )
    .await
    .expect("the lost attempt was taken");
    assert_eq!(answered, "LOST-THEN-503");
}

#[tokio::test]
async fn a_taken_id_after_an_answered_failure_is_already_exists() {
    let app = TestApp::spawn().await;
    // The 500, 503 and 429 were the vendor's answers: nothing was taken,
    // so the id was someone else's.
    for (id, first) in [
        ("ANSWERED-500", Reply::Json(500, json!({}))),
        ("ANSWERED-503", Reply::Json(503, json!({}))),
        ("ANSWERED-429", Reply::Json(429, json!({}))),
    ] {
        let e =
            expect_error(submit_through(&app, id, vec![first, Reply::reference_id_exists()]).await);
        assert_eq!(
            (e.code, e.reason()),
            (Code::AlreadyExists, "INVALID_PAYLOAD_REFERENCE_ID_EXISTS"),
            "{id}"
        );
        assert_eq!(app.upstream.attempts(id), 2, "{id}");
    }
}

/// The upstream accepted the job (its 200 head arrived), the connection
/// broke before the body ended, the gateway retried and met its own job.
/// The issue's exception (an attempt whose answer was lost "after
/// sending") covers it: the call must answer OK, not ALREADY_EXISTS.
#[tokio::test]
async fn a_taken_id_after_a_200_cut_mid_body_is_the_callers_own_job() {
    let app = TestApp::spawn().await;
    let answered = submit_through(
        &app,
        "CUT-AFTER-200",
        vec![
            Reply::ResetMidBody(br#"{"message": "success", "data": {"refer"#.to_vec()),
            Reply::reference_id_exists(),
        ],
    )
    .await;
    assert_eq!(app.upstream.attempts("CUT-AFTER-200"), 2);
    match answered {
        Ok(id) => assert_eq!(id, "CUT-AFTER-200"),
        Err(s) => panic!(
            "the job this call's own first attempt created was answered as {:?} {:?}",
            s.code(),
            s.get_error_details().error_info().map(|i| i.reason.clone())
        ),
    }
}

#[tokio::test]
async fn only_transient_failures_are_retried_and_always_with_the_same_id_and_body() {
    // The failures come in a row: a breaker opening would end retries.
    let app = TestApp::spawn_with(|s| {
        s.upstream.timeout = millis(300);
        s.upstream.breaker.failure_threshold = count32(1000);
    })
    .await;
    let cases: Vec<(&str, Reply, usize)> = vec![
        ("503", Reply::Json(503, json!({})), 3),
        ("500", Reply::raw(500, &[], ""), 3),
        ("429 without Retry-After", Reply::Json(429, json!({})), 3),
        ("closed", Reply::Close, 3),
        ("reset", Reply::Reset, 3),
        (
            "401",
            Reply::Json(401, json!({"message": "Authorization failed"})),
            1,
        ),
        (
            "403",
            Reply::Json(403, json!({"error_code": "INSUFFICIENT_QUOTA"})),
            1,
        ),
        (
            "400 image format",
            Reply::Json(400, json!({"error_code": "INVALID_PAYLOAD_IMAGE_FORMAT"})),
            1,
        ),
        ("400 exists", Reply::reference_id_exists(), 1),
        ("404", Reply::Json(404, json!({"message": "Not Found"})), 1),
        (
            "200, not JSON",
            Reply::typed(200, "text/html", "<html/>"),
            1,
        ),
        (
            "slower than upstream.timeout",
            Reply::delayed(Duration::from_secs(5), Reply::accepted("X")),
            1,
        ),
    ];
    for (n, (what, reply, want)) in cases.into_iter().enumerate() {
        let id = format!("RETRY-{n}");
        app.upstream.on_submit(&id, reply);
        let result = app.submit(submit_request(valid_image(), &id)).await;
        assert!(result.is_err(), "{what}: {result:?}");
        // The upstream may hold the job (a lost answer, a timeout): the
        // caller learns the id it was filed under.
        let e = expect_error(result);
        assert_eq!(e.meta("reference_id"), Some(id.as_str()), "{what}");
        let sent: Vec<Recorded> = app
            .upstream
            .submits()
            .into_iter()
            .filter(|r| r.reference_id().as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(sent.len(), want, "{what}: attempts");
        assert!(
            sent.iter().all(|r| r.body == sent[0].body),
            "{what}: a retry sent another body"
        );
    }
}

#[tokio::test]
async fn request_ids_and_bearer_tokens_apply_to_the_image_calls() {
    let mut tokens = tempfile::NamedTempFile::new().expect("tokens file");
    std::io::Write::write_all(&mut tokens, b"submit-token-1\n").expect("write");
    let app = TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(tokens.path())).await;
    let authorized = |r: &mut tonic::Request<SubmitKtpRequest>| {
        r.metadata_mut()
            .insert("authorization", "Bearer submit-token-1".parse().unwrap());
        r.metadata_mut()
            .insert("x-request-id", "submit-req-1".parse().unwrap());
    };
    let ok = app
        .submit_with(submit_request(valid_image(), "AUTH-1"), authorized)
        .await
        .expect("a valid token");
    assert_eq!(ok.metadata().get("x-request-id").unwrap(), "submit-req-1");

    let e = expect_error(
        app.submit_with(submit_request(valid_image(), "AUTH-2"), |r| {
            r.metadata_mut()
                .insert("x-request-id", "submit-req-2".parse().unwrap());
        })
        .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unauthenticated, "BEARER_TOKEN_MISSING")
    );
    assert_eq!(e.request_id(), "submit-req-2");

    let e = expect_error(
        app.extract_with(extract_request(valid_image(), "AUTH-3"), |r| {
            r.metadata_mut()
                .insert("authorization", "Bearer nope".parse().unwrap());
        })
        .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unauthenticated, "BEARER_TOKEN_INVALID")
    );
    assert_eq!(e.request_id().len(), 36, "a generated request id");
    assert_eq!(
        app.upstream.attempts("AUTH-2") + app.upstream.attempts("AUTH-3"),
        0
    );

    // A refused image keeps the caller's request id too.
    let e = expect_error(
        app.submit_with(submit_request(ImageSource::None, "AUTH-4"), |r| {
            authorized(r);
            r.metadata_mut()
                .insert("x-request-id", "submit-req-4".parse().unwrap());
        })
        .await,
    );
    assert_eq!(
        (e.reason(), e.request_id()),
        ("INVALID_IMAGE", "submit-req-4")
    );
}

#[tokio::test]
async fn a_submit_retry_never_starts_past_the_callers_deadline() {
    let app = TestApp::spawn().await;
    // Asked to come back in 1 s (within the 1 s backoff cap), with 600 ms
    // left: the caller gets the real answer at once, not a deadline later.
    app.upstream.on_submit(
        "HURRIED-1",
        Reply::raw(
            429,
            &[("Content-Type", "application/json"), ("Retry-After", "1")],
            "{}",
        ),
    );
    let started = std::time::Instant::now();
    let e = expect_error(
        app.submit_with(submit_request(valid_image(), "HURRIED-1"), |r| {
            r.set_timeout(Duration::from_millis(600));
        })
        .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_RATE_LIMITED"),
        "{}",
        e.message
    );
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(1)));
    assert_eq!(app.upstream.attempts("HURRIED-1"), 1);
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failed_submit_names_the_id_the_gateway_generated() {
    let app = TestApp::spawn_with(|s| s.upstream.timeout = millis(300)).await;
    app.upstream.otherwise_submit(Reply::delayed(
        Duration::from_secs(5),
        Reply::accepted("LATE"),
    ));
    let e = expect_error(app.submit(submit_request(valid_image(), "")).await);
    assert_eq!(e.reason(), "UPSTREAM_TIMEOUT");
    let named = e.meta("reference_id").unwrap_or_default();
    assert!(is_uuid_v4(named), "{named:?}");
    assert_eq!(
        only_submit(&app).reference_id().as_deref(),
        Some(named),
        "the id the upstream was sent"
    );
}

/// A gateway whose upstream takes 5 s to accept a submit.
async fn slow_submits() -> TestApp {
    let app = TestApp::spawn().await;
    app.upstream.otherwise_submit(Reply::delayed(
        Duration::from_secs(5),
        Reply::accepted("IGNORED"),
    ));
    app
}

/// A caller's deadline of half a second.
fn half_a_second<T>(request: &mut tonic::Request<T>) {
    request.set_timeout(Duration::from_millis(500));
}

/// The caller's deadline runs out while the upstream is still taking the
/// submit: the vendor may have accepted (and billed) the job, under an id
/// the gateway generated. The DEADLINE_EXCEEDED names that id, so the
/// caller resubmits under it (ALREADY_EXISTS: the first got through) and
/// reads the job with a wait, instead of submitting a second job.
#[tokio::test]
async fn a_deadline_during_the_submit_keeps_the_generated_id() {
    let app = slow_submits().await;
    app.upstream.jobs_finish_after(Duration::ZERO);
    let e = expect_error(
        app.submit_with(submit_request(valid_image(), ""), half_a_second)
            .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED")
    );
    let id = e.meta("reference_id").unwrap_or_default().to_owned();
    assert!(is_uuid_v4(&id), "{id:?}");
    assert_eq!(only_submit(&app).reference_id(), Some(id.clone()));

    // The README's guidance: the same id again.
    app.upstream.otherwise_submit(Reply::reference_id_exists());
    let again = expect_error(app.submit(submit_request(valid_image(), &id)).await);
    assert_eq!(again.code, Code::AlreadyExists);
    assert_eq!(again.meta("reference_id"), Some(id.as_str()));
    let card = app
        .wait_for(&id, Some(Duration::from_secs(5)))
        .await
        .expect("the first submit's job")
        .into_inner();
    assert_eq!(card.reference_id, id);
}

/// `ExtractKtp` and `GetKtpResult` name their (valid) id on a deadline too;
/// an invalid one is never echoed.
#[tokio::test]
async fn every_error_after_the_id_is_valid_names_it() {
    let app = slow_submits().await;
    let e = expect_error(
        app.extract_with(
            extract_request(valid_image(), "EXTRACT-LATE"),
            half_a_second,
        )
        .await,
    );
    assert_eq!(e.code, Code::DeadlineExceeded);
    assert_eq!(e.meta("reference_id"), Some("EXTRACT-LATE"));

    app.upstream.on(
        "RESULT-LATE",
        Reply::delayed(Duration::from_secs(5), Reply::not_found()),
    );
    let e = expect_error(
        app.call_with("RESULT-LATE", |r| r.set_timeout(Duration::from_millis(500)))
            .await,
    );
    assert_eq!(e.code, Code::DeadlineExceeded);
    assert_eq!(e.meta("reference_id"), Some("RESULT-LATE"));

    let e = expect_error(app.call(&"x".repeat(129)).await);
    assert_eq!(e.reason(), "INVALID_REFERENCE_ID");
    assert_eq!(e.meta("reference_id"), None, "an invalid id is not echoed");
}

/// An upstream refusal of the image points at the field the image came in:
/// for an `image_url` submit, `image_url`. An empty `image_url` is a
/// missing image, on that field.
#[tokio::test]
async fn image_errors_name_the_field_the_image_came_in() {
    let app = TestApp::spawn().await;
    app.upstream.on_submit(
        "URL-TOO-BIG",
        Reply::Json(
            400,
            json!({"message": "image too large", "error_code": "INVALID_PAYLOAD_IMAGE_SIZE"}),
        ),
    );
    let by_url = ImageSource::Url("https://example.com/ktp.jpg".into());
    let e = expect_error(app.submit(submit_request(by_url, "URL-TOO-BIG")).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::InvalidArgument, "INVALID_PAYLOAD_IMAGE_SIZE")
    );
    let fields: Vec<_> = e
        .details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["image_url"]);

    let empty = ImageSource::Url(String::new());
    let e = expect_error(app.submit(submit_request(empty, "URL-EMPTY")).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::InvalidArgument, "INVALID_IMAGE")
    );
    assert_eq!(e.meta("constraint"), Some("required"));
    let fields: Vec<_> = e
        .details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["image_url"]);
    assert_eq!(app.upstream.attempts("URL-EMPTY"), 0);
}
