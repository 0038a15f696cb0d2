//! The error table, row by row.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::*;
use crate::{
    error::GatewayError,
    grpc::{call::refusal, metadata::REQUEST_ID_HEADER},
    reference_id::InvalidReferenceId,
    security::auth::Unauthenticated,
    upstream::{BodyProblem, ImageQualityFlags, UpstreamError},
};

/// Request id and reference id of the call a status answers.
#[derive(Clone, Copy)]
struct CallContext<'a> {
    request_id: &'a str,
    reference_id: Option<&'a str>,
}

fn to_status(err: &GatewayError, call: CallContext<'_>) -> Status {
    render(&classify(err), call.request_id, call.reference_id)
}

fn job(code: &str) -> GatewayError {
    GatewayError::Upstream(UpstreamError::JobFailed {
        status: 200,
        code: code.to_owned(),
        image_quality: None,
    })
}

fn http(status: u16, code: Option<&str>) -> GatewayError {
    GatewayError::Upstream(UpstreamError::Status {
        status,
        error_code: code.map(str::to_owned),
        retry_after: None,
    })
}

fn row(err: &GatewayError) -> (Code, String, &'static str) {
    let r = classify(err);
    (r.code, r.reason, r.domain)
}

fn meta(err: &GatewayError, key: &str) -> Option<String> {
    classify(err)
        .metadata
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[test]
fn row_200_fail_on_1() {
    assert_eq!(
        row(&job("FAIL_ON_1")),
        (
            Code::FailedPrecondition,
            "FAIL_ON_1".into(),
            UPSTREAM_DOMAIN
        )
    );
    let err = GatewayError::Upstream(UpstreamError::JobFailed {
        status: 200,
        code: "FAIL_ON_1".into(),
        image_quality: Some(ImageQualityFlags {
            blur: Some(true),
            dark: Some(false),
            flashlight: None,
            grayscale: Some(true),
        }),
    });
    assert_eq!(meta(&err, "blur").as_deref(), Some("true"));
    assert_eq!(meta(&err, "dark").as_deref(), Some("false"));
    assert_eq!(meta(&err, "flashlight"), None);
    assert_eq!(meta(&err, "grayscale").as_deref(), Some("true"));
    assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("200"));
    assert_eq!(classify(&err).detail, Detail::None);
}

#[test]
fn row_200_ktp_not_detected() {
    assert_eq!(
        row(&job("KTP_NOT_DETECTED")),
        (
            Code::FailedPrecondition,
            "KTP_NOT_DETECTED".into(),
            UPSTREAM_DOMAIN
        )
    );
}

#[test]
fn row_200_internal_server_error() {
    assert_eq!(
        row(&job("INTERNAL_SERVER_ERROR")),
        (
            Code::Internal,
            "INTERNAL_SERVER_ERROR".into(),
            UPSTREAM_DOMAIN
        )
    );
}

#[test]
fn row_200_other_code_is_unknown_with_the_code_as_given() {
    assert_eq!(
        row(&job("NEW_THING_9")),
        (Code::Unknown, "NEW_THING_9".into(), UPSTREAM_DOMAIN)
    );
    assert_eq!(
        row(&job("fail_on_1")),
        (Code::Unknown, "fail_on_1".into(), UPSTREAM_DOMAIN)
    );
}

#[test]
fn row_400_invalid_payload_reference_id() {
    let err = http(400, Some("INVALID_PAYLOAD_REFERENCE_ID"));
    assert_eq!(
        row(&err),
        (
            Code::InvalidArgument,
            "INVALID_PAYLOAD_REFERENCE_ID".into(),
            UPSTREAM_DOMAIN
        )
    );
    assert!(matches!(
        classify(&err).detail,
        Detail::BadRequest {
            field: "reference_id",
            ..
        }
    ));
    assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("400"));
}

#[test]
fn row_400_sandbox_code_and_other_400s() {
    let err = http(400, Some("INVALID_SANDBOX_CODE"));
    assert_eq!(
        row(&err),
        (
            Code::InvalidArgument,
            "INVALID_SANDBOX_CODE".into(),
            UPSTREAM_DOMAIN
        )
    );
    assert!(matches!(
        classify(&err).detail,
        Detail::BadRequest {
            field: "reference_id",
            ..
        }
    ));
    // Any other 400 says the gateway's own request was wrong: not the caller's fault.
    let err = http(400, Some("INVALID_PAYLOAD"));
    assert_eq!(
        row(&err),
        (
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(
        meta(&err, "upstream_error_code").as_deref(),
        Some("INVALID_PAYLOAD")
    );
}

#[test]
fn row_local_validation_failure() {
    for why in [
        InvalidReferenceId::Empty,
        InvalidReferenceId::Blank,
        InvalidReferenceId::TooLong(200),
        InvalidReferenceId::ControlCharacter,
    ] {
        let err = GatewayError::InvalidReferenceId(why);
        assert_eq!(
            row(&err),
            (
                Code::InvalidArgument,
                "INVALID_REFERENCE_ID".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            classify(&err).detail,
            Detail::BadRequest {
                field: "reference_id",
                description: why.to_string()
            }
        );
        assert_eq!(meta(&err, "upstream_http_status"), None);
        assert_eq!(meta(&err, "constraint").as_deref(), Some(why.constraint()));
    }
}

#[test]
fn row_401() {
    for code in [None, Some("UNAUTHORIZED")] {
        let err = http(401, code);
        assert_eq!(
            row(&err),
            (
                Code::Internal,
                "UPSTREAM_AUTH_FAILED".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("401"));
        assert_eq!(meta(&err, "upstream_error_code").as_deref(), code);
    }
}

#[test]
fn row_403_insufficient_quota() {
    let err = http(403, Some("INSUFFICIENT_QUOTA"));
    assert_eq!(
        row(&err),
        (
            Code::ResourceExhausted,
            "INSUFFICIENT_QUOTA".into(),
            UPSTREAM_DOMAIN
        )
    );
    assert_eq!(classify(&err).detail, Detail::QuotaFailure);
    // Any other 403 is the credentials' fault.
    assert_eq!(
        row(&http(403, None)),
        (
            Code::Internal,
            "UPSTREAM_AUTH_FAILED".into(),
            GATEWAY_DOMAIN
        )
    );
}

#[test]
fn row_404_not_found() {
    let err = http(404, Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"));
    assert_eq!(
        row(&err),
        (
            Code::NotFound,
            "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND".into(),
            UPSTREAM_DOMAIN
        )
    );
    assert_eq!(classify(&err).detail, Detail::ResourceInfo);
    // A 404 without the documented code is a wrong route, not a missing result.
    assert_eq!(
        row(&http(404, Some("NOT_FOUND"))),
        (
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(
        row(&http(404, None)),
        (
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE".into(),
            GATEWAY_DOMAIN
        )
    );
}

#[test]
fn row_429_with_and_without_retry_after() {
    let err = http(429, None);
    assert_eq!(
        row(&err),
        (
            Code::Unavailable,
            "UPSTREAM_RATE_LIMITED".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(
        classify(&err).detail,
        Detail::RetryInfo(DEFAULT_RETRY_DELAY)
    );
    let err = GatewayError::Upstream(UpstreamError::Status {
        status: 429,
        error_code: None,
        retry_after: Some(Duration::from_secs(7)),
    });
    assert_eq!(
        classify(&err).detail,
        Detail::RetryInfo(Duration::from_secs(7))
    );
}

#[test]
fn row_5xx_and_transport() {
    for status in [500, 502, 503, 504] {
        let err = http(status, None);
        assert_eq!(
            row(&err),
            (
                Code::Unavailable,
                "UPSTREAM_UNAVAILABLE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert!(matches!(classify(&err).detail, Detail::RetryInfo(_)));
        assert_eq!(meta(&err, "upstream_http_status"), Some(status.to_string()));
        let err = http(status, Some("INTERNAL_SERVER_ERROR"));
        assert_eq!(
            row(&err),
            (
                Code::Unavailable,
                "INTERNAL_SERVER_ERROR".into(),
                UPSTREAM_DOMAIN
            )
        );
    }
    let err = GatewayError::Upstream(UpstreamError::Transport {
        status: None,
        detail: "connection refused".into(),
    });
    assert_eq!(
        row(&err),
        (
            Code::Unavailable,
            "UPSTREAM_UNAVAILABLE".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(
        classify(&err).detail,
        Detail::RetryInfo(DEFAULT_RETRY_DELAY)
    );
    assert_eq!(meta(&err, "upstream_http_status"), None);
}

#[test]
fn row_upstream_timeout() {
    let err = GatewayError::Upstream(UpstreamError::Timeout {
        limit: Duration::from_secs(10),
        status: None,
    });
    assert_eq!(
        row(&err),
        (Code::Unavailable, "UPSTREAM_TIMEOUT".into(), GATEWAY_DOMAIN)
    );
    assert!(matches!(classify(&err).detail, Detail::RetryInfo(_)));
}

#[test]
fn row_circuit_open() {
    let err = GatewayError::Upstream(UpstreamError::CircuitOpen {
        retry_in: Duration::from_millis(7300),
    });
    assert_eq!(
        row(&err),
        (
            Code::Unavailable,
            "UPSTREAM_CIRCUIT_OPEN".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(
        classify(&err).detail,
        Detail::RetryInfo(Duration::from_millis(7300))
    );
    assert_eq!(meta(&err, "upstream_http_status"), None);
}

#[test]
fn row_unauthenticated() {
    let err = GatewayError::Unauthenticated(Unauthenticated::Missing);
    assert_eq!(
        row(&err),
        (
            Code::Unauthenticated,
            "BEARER_TOKEN_MISSING".into(),
            GATEWAY_DOMAIN
        )
    );
    let err = GatewayError::Unauthenticated(Unauthenticated::Invalid);
    assert_eq!(
        row(&err),
        (
            Code::Unauthenticated,
            "BEARER_TOKEN_INVALID".into(),
            GATEWAY_DOMAIN
        )
    );
}

#[test]
fn row_overloaded() {
    let err = GatewayError::Overloaded { limit: 64 };
    assert_eq!(
        row(&err),
        (Code::ResourceExhausted, "OVERLOADED".into(), GATEWAY_DOMAIN)
    );
    assert_eq!(meta(&err, "max_in_flight").as_deref(), Some("64"));
}

#[test]
fn rows_for_requests_tonic_refused() {
    let refused = |code| refusal(&Status::new(code, "tonic's words"));
    for (tonic_code, code, reason) in [
        (Code::OutOfRange, Code::InvalidArgument, "REQUEST_TOO_LARGE"),
        (
            Code::Internal,
            Code::InvalidArgument,
            "REQUEST_NOT_DECODABLE",
        ),
        (Code::Unimplemented, Code::Unimplemented, "REQUEST_REFUSED"),
    ] {
        let err = refused(tonic_code);
        assert_eq!(row(&err), (code, reason.into(), GATEWAY_DOMAIN));
        assert_eq!(classify(&err).message, "tonic's words");
    }
}

#[test]
fn row_caller_deadline() {
    let err = GatewayError::DeadlineExceeded;
    assert_eq!(
        row(&err),
        (
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(classify(&err).detail, Detail::None);
}

#[test]
fn row_bad_response_and_unexpected_status() {
    let err = GatewayError::Upstream(UpstreamError::BadResponse {
        status: 200,
        problem: BodyProblem::NotJson,
    });
    assert_eq!(
        row(&err),
        (
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(meta(&err, "problem").as_deref(), Some("not_json"));
    for status in [100, 302, 400, 405, 418, 501, 505, 599] {
        let err = http(status, None);
        assert_eq!(
            row(&err),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            ),
            "HTTP {status}"
        );
    }
    assert_eq!(
        row(&http(418, Some("TEAPOT"))),
        (
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE".into(),
            GATEWAY_DOMAIN
        )
    );
}

#[test]
fn status_carries_error_info_request_info_and_the_row_detail() {
    let call = CallContext {
        request_id: "req-1",
        reference_id: Some("REF_9"),
    };
    let status = to_status(
        &http(404, Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")),
        call,
    );
    assert_eq!(status.code(), Code::NotFound);
    let d = status.get_error_details();
    let info = d.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND");
    assert_eq!(info.domain, UPSTREAM_DOMAIN);
    assert_eq!(
        info.metadata
            .get("upstream_http_status")
            .map(String::as_str),
        Some("404")
    );
    assert_eq!(d.request_info().expect("RequestInfo").request_id, "req-1");
    assert_eq!(
        d.resource_info().expect("ResourceInfo").resource_name,
        "REF_9"
    );
    assert_eq!(status.metadata().get(REQUEST_ID_HEADER).unwrap(), "req-1");

    let status = to_status(&http(429, None), call);
    let retry = status
        .get_error_details()
        .retry_info()
        .cloned()
        .expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(DEFAULT_RETRY_DELAY));

    let status = to_status(&http(403, Some("INSUFFICIENT_QUOTA")), call);
    assert!(status.get_error_details().quota_failure().is_some());

    let status = to_status(
        &GatewayError::InvalidReferenceId(InvalidReferenceId::Empty),
        call,
    );
    let bad = status
        .get_error_details()
        .bad_request()
        .cloned()
        .expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "reference_id");
}
