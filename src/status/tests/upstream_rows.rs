//! Rows of upstream answers.

use super::*;

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
