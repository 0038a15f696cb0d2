//! The asynchronous flow through the compiled binary and its embedded
//! sandbox (`--sandbox`, jobs "processing" for
//! `sandbox.processing_time` = 300 ms): `ExtractKtp` with a real 720×480 PNG
//! returns the sandbox's card; `SubmitKtp` then a waiting `GetKtpResult`
//! does too; the sandbox's magic submit ids and a second submit of one id
//! answer their rows. Each call writes its one log line under its own
//! method, and no log line, at any level, holds the image's bytes or an
//! image URL's query string.
#![expect(
    clippy::disallowed_methods,
    reason = "multi-thread test runtimes, around the synchronous process harness"
)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use ktp_gateway::proto::{
    ExtractKtpRequest, GetKtpResultRequest, SubmitKtpRequest, extract_ktp_request,
    ktp_service_client::KtpServiceClient, submit_ktp_request,
};
use ktp_testkit::{card_holders::SANDBOX_PERSONAL_VALUES, images};
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt;

use crate::harness::{Gateway, assert_absent, env};

const PROCESSING_TIME: &str = "KTP_GATEWAY__SANDBOX__PROCESSING_TIME";

fn sandbox(extra: &[(&str, &str)]) -> Gateway {
    let mut vars = vec![(PROCESSING_TIME, "300ms")];
    vars.extend_from_slice(extra);
    Gateway::sandbox(&vars)
}

fn with_request_id<T>(message: T, request_id: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-request-id", request_id.parse().expect("ASCII"));
    request.set_timeout(Duration::from_secs(20));
    request
}

fn submit(image: Vec<u8>, reference_id: &str) -> SubmitKtpRequest {
    SubmitKtpRequest {
        image_source: Some(submit_ktp_request::ImageSource::Image(image.into())),
        validate_quality: false,
        reference_id: reference_id.to_owned(),
    }
}

fn extract(image: Vec<u8>, reference_id: &str) -> ExtractKtpRequest {
    ExtractKtpRequest {
        read_mask: None,
        image_source: Some(extract_ktp_request::ImageSource::Image(image.into())),
        validate_quality: false,
        reference_id: reference_id.to_owned(),
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

async fn stop(mut gateway: Gateway) -> Gateway {
    let status = tokio::task::block_in_place(|| gateway.stop());
    assert_eq!(status.code(), Some(0), "{}", gateway.process.output());
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_returns_the_sandbox_card_once_the_job_is_done() {
    let mut gateway = sandbox(&[]);
    let mut client = gateway.ktp().await;
    let started = Instant::now();
    let response = client
        .extract_ktp(with_request_id(
            extract(images::png(720, 480), "CLI-EXTRACT-1"),
            "cli-extract-1",
        ))
        .await
        .expect("the sandbox's card");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "answered before the job's processing time: {:?}",
        started.elapsed()
    );
    let r = response.into_inner().result.expect("result");
    assert_eq!(
        (
            r.reference_id.as_str(),
            r.full_name.as_str(),
            r.nik.as_str()
        ),
        ("CLI-EXTRACT-1", "SITI CONTOH", "3273016505900002")
    );
    let log = tokio::task::block_in_place(|| gateway.call_log("cli-extract-1"));
    assert_eq!(log["method"], "/ktp.v1.KtpService/ExtractKtp", "{log}");
    assert_eq!(log["grpc_code"], "OK", "{log}");
    assert_eq!(log["reference_id"], "CLI-EXTRACT-1", "{log}");
    assert_eq!(log["level"], "INFO", "{log}");

    // A generated reference id: a UUID, in the answer and the log line.
    let r = client
        .extract_ktp(with_request_id(
            extract(images::png(1280, 800), ""),
            "cli-extract-2",
        ))
        .await
        .expect("the sandbox's card")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(r.reference_id.len(), 36, "{:?}", r.reference_id);
    let log = tokio::task::block_in_place(|| gateway.call_log("cli-extract-2"));
    assert_eq!(log["reference_id"], r.reference_id.as_str(), "{log}");
    stop(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_a_waiting_get_ktp_result_returns_the_card() {
    let mut gateway = sandbox(&[]);
    let mut client = gateway.ktp().await;
    let submitted = client
        .submit_ktp(with_request_id(
            submit(images::png(720, 480), "CLI-SUBMIT-1"),
            "cli-submit-1",
        ))
        .await
        .expect("submitted")
        .into_inner();
    assert_eq!(submitted.reference_id, "CLI-SUBMIT-1");
    assert_eq!(submitted.message, "success");

    // Still processing: without wait, not found; with wait, the card.
    let early = client
        .get_ktp_result(GetKtpResultRequest {
            read_mask: None,
            reference_id: "CLI-SUBMIT-1".into(),
            wait: false,
        })
        .await
        .expect_err("still processing");
    assert_eq!(early.code(), Code::NotFound, "{early:?}");
    let r = client
        .get_ktp_result(with_request_id(
            GetKtpResultRequest {
                read_mask: None,
                reference_id: "CLI-SUBMIT-1".into(),
                wait: true,
            },
            "cli-wait-1",
        ))
        .await
        .expect("the card, after waiting")
        .into_inner();
    assert_eq!(r.full_name, "SITI CONTOH");

    for (request_id, method) in [
        ("cli-submit-1", "/ktp.v1.KtpService/SubmitKtp"),
        ("cli-wait-1", "/ktp.v1.KtpService/GetKtpResult"),
    ] {
        let log = tokio::task::block_in_place(|| gateway.call_log(request_id));
        assert_eq!(
            (&log["method"], &log["grpc_code"], &log["reference_id"]),
            (&method.into(), &"OK".into(), &"CLI-SUBMIT-1".into()),
            "{log}"
        );
    }
    stop(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandboxs_submit_magic_ids_and_a_second_submit_answer_their_rows() {
    let mut gateway = sandbox(&[]);
    let mut client = gateway.ktp().await;
    let mut submit_as = async |id: &str, request_id: &str| {
        client
            .submit_ktp(with_request_id(
                submit(images::png(720, 480), id),
                request_id,
            ))
            .await
    };

    let s = submit_as("REFERENCE_ID_EXIST", "cli-exist-1")
        .await
        .expect_err("taken");
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    assert_eq!(reason(&s), "INVALID_PAYLOAD_REFERENCE_ID_EXISTS");
    let info = s
        .get_error_details()
        .resource_info()
        .cloned()
        .expect("ResourceInfo");
    assert_eq!(info.resource_name, "REFERENCE_ID_EXIST");

    for id in ["REFERENCE_ID_TOO_LONG", "REFERENCE_ID_TOO_SHORT"] {
        let s = submit_as(id, "cli-too").await.expect_err(id);
        assert_eq!(s.code(), Code::InvalidArgument, "{id}: {s:?}");
        assert_eq!(reason(&s), "INVALID_PAYLOAD_REFERENCE_ID", "{id}");
        let fields: Vec<String> = s
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["reference_id"], "{id}");
    }

    submit_as("CLI-TWICE-1", "cli-twice-1")
        .await
        .expect("first submit");
    let s = submit_as("CLI-TWICE-1", "cli-twice-2")
        .await
        .expect_err("the same id again");
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");

    let log = tokio::task::block_in_place(|| gateway.call_log("cli-twice-2"));
    assert_eq!(
        (&log["method"], &log["grpc_code"], &log["reason"]),
        (
            &"/ktp.v1.KtpService/SubmitKtp".into(),
            &"ALREADY_EXISTS".into(),
            &"INVALID_PAYLOAD_REFERENCE_ID_EXISTS".into()
        ),
        "{log}"
    );
    assert_eq!(log["upstream_http_status"], "400", "{log}");
    stop(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_magic_id_submitted_answers_as_that_id_and_names_the_job() {
    let gateway = sandbox(&[]);
    let mut client = gateway.ktp().await;
    let s = client
        .extract_ktp(with_request_id(
            extract(images::png(720, 480), "REFERENCE_ID_KTP_B_V"),
            "cli-magic-1",
        ))
        .await
        .expect_err("FAIL_ON_1");
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let info = s
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(info.reason, "FAIL_ON_1");
    assert_eq!(
        (
            info.metadata.get("blur").map(String::as_str),
            info.metadata.get("reference_id").map(String::as_str)
        ),
        (Some("true"), Some("REFERENCE_ID_KTP_B_V"))
    );

    // A deadline shorter than the processing time: not ready, named.
    let mut short = Request::new(extract(images::png(720, 480), "CLI-NOT-READY-1"));
    short.set_timeout(Duration::from_millis(1000));
    let gateway_slow = Gateway::sandbox(&[(PROCESSING_TIME, "30s")]);
    let mut slow = KtpServiceClient::new(gateway_slow.channel().await);
    let s = slow.extract_ktp(short).await.expect_err("not ready");
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
    assert_eq!(reason(&s), "RESULT_NOT_READY");
    let info = s
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("reference_id").map(String::as_str),
        Some("CLI-NOT-READY-1")
    );
}

/// Every way the images of a run could show in its output.
fn image_traces(image: &[u8]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(image);
    let mut traces = vec!["IMAGE-MARKER-5e1f".to_owned(), "IHDR".to_owned()];
    // Any 40 characters of the base64 text, at each alignment.
    for start in [0, 1, 2, 3, b64.len() / 2, b64.len() - 41] {
        traces.push(b64[start..start + 40].to_owned());
    }
    // Debug forms of the bytes: `[137, 80, 78, 71` and `\x89PNG`.
    traces.push("137, 80, 78, 71".to_owned());
    traces.push("\\x89PNG".to_owned());
    traces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_image_bytes_or_an_image_urls_query_at_any_level() {
    let gateway = sandbox(&[(env::LOG_FILTER, "trace")]);
    let mut image = images::png(720, 480);
    image.extend_from_slice(b"IMAGE-MARKER-5e1f");
    image = images::padded(image, 60_000);
    let mut client: KtpServiceClient<Channel> = gateway.ktp().await;
    client
        .extract_ktp(with_request_id(
            extract(image.clone(), "CLI-PRIVATE-1"),
            "cli-private-1",
        ))
        .await
        .expect("the card");
    client
        .submit_ktp(with_request_id(submit(image.clone(), ""), "cli-private-2"))
        .await
        .expect("submitted");
    // A URL the sandbox accepts, and one the gateway refuses.
    for (i, url) in [
        "https://images.example.com/ktp.png?token=QUERY-SECRET-1&sig=QUERY-SECRET-2",
        "http://images.example.com/ktp.png?token=QUERY-SECRET-3",
    ]
    .into_iter()
    .enumerate()
    {
        let request = SubmitKtpRequest {
            image_source: Some(submit_ktp_request::ImageSource::ImageUrl(url.into())),
            validate_quality: false,
            reference_id: format!("CLI-URL-{i}"),
        };
        let _ = client
            .submit_ktp(with_request_id(request, &format!("cli-url-{i}")))
            .await;
    }
    let gateway = stop(gateway).await;
    let lines: Vec<String> = gateway
        .process
        .stdout()
        .iter()
        .chain(gateway.process.stderr())
        .cloned()
        .collect();
    assert!(
        lines.len() > 20,
        "trace level logs more than the call lines: {} lines",
        lines.len()
    );
    for trace in image_traces(&image) {
        assert_absent(&lines, &trace, "image bytes");
    }
    for secret in [
        "QUERY-SECRET-1",
        "QUERY-SECRET-2",
        "QUERY-SECRET-3",
        "token=",
    ] {
        assert_absent(&lines, secret, "an image URL's query");
    }
    for value in SANDBOX_PERSONAL_VALUES {
        assert_absent(&lines, value, "personal value");
    }
}

/// The sandbox takes every image the gateway accepts (up to
/// `submit.max_image_bytes`, base64 included): a real photo of 4.5 MB,
/// whose base64 body (6 MB) is far over a web framework's 2 MiB default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_takes_a_photo_as_large_as_the_gateway_accepts() {
    let gateway = sandbox(&[]);
    let mut client = gateway.ktp().await;
    let photo = images::padded(images::jpeg(4000, 3000), 4_500_000);
    let r = client
        .extract_ktp(with_request_id(
            extract(photo, "CLI-LARGE-PHOTO"),
            "cli-large-photo",
        ))
        .await
        .unwrap_or_else(|e| panic!("a 4.5 MB JPEG: {e:?}"))
        .into_inner()
        .result
        .expect("result");
    assert_eq!(r.reference_id, "CLI-LARGE-PHOTO");
    stop(gateway).await;
}
