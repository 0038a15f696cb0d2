//! Rows of the submit call, the wait and `ExtractKtp`.

use std::time::Duration;

use super::*;
use crate::image::InvalidImage;

fn submit(status: u16, code: Option<&str>) -> GatewayError {
    submit_of("image", status, code)
}

/// A submit of an image that came in `image_field`.
fn submit_of(image_field: &'static str, status: u16, code: Option<&str>) -> GatewayError {
    GatewayError::Submit {
        error: UpstreamError::Status {
            status,
            error_code: code.map(str::to_owned),
            retry_after: None,
        },
        image_field,
    }
}

/// The upstream's refusal of the image points at the field the caller sent
/// it in: the file, or its URL.
#[test]
fn an_upstream_image_refusal_names_the_field_the_image_came_in() {
    for field in ["image", "image_url"] {
        for code in ["INVALID_PAYLOAD_IMAGE_SIZE", "MISSING_PAYLOAD_IMAGE"] {
            let row = classify(&submit_of(field, 400, Some(code)));
            assert_eq!(
                row.detail,
                Detail::BadRequest {
                    field,
                    description: format!("refused by the upstream ({code})"),
                },
                "{field} {code}"
            );
        }
        // A code that names another field still names that one.
        let row = classify(&submit_of(field, 400, Some("INVALID_PAYLOAD_REFERENCE_ID")));
        assert!(
            matches!(
                row.detail,
                Detail::BadRequest {
                    field: "reference_id",
                    ..
                }
            ),
            "{row:?}"
        );
    }
}

#[test]
fn local_image_failures_name_the_rule_and_the_field() {
    for (why, constraint, field) in [
        (InvalidImage::Required, "required", "image"),
        (
            InvalidImage::TooLarge { size: 9, limit: 8 },
            "size",
            "image",
        ),
        (InvalidImage::Format, "format", "image"),
        (
            InvalidImage::Dimensions {
                width: 10,
                height: 10,
            },
            "dimensions",
            "image",
        ),
        (InvalidImage::Url, "url", "image_url"),
        (InvalidImage::UrlRequired, "required", "image_url"),
    ] {
        let err = GatewayError::InvalidImage(why);
        assert_eq!(
            row(&err),
            (
                Code::InvalidArgument,
                "INVALID_IMAGE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(meta(&err, "constraint").as_deref(), Some(constraint));
        assert!(matches!(classify(&err).detail, Detail::BadRequest { field: f, .. } if f == field));
    }
}

#[test]
fn a_used_reference_id_is_already_exists_with_resource_info() {
    let err = submit(400, Some("INVALID_PAYLOAD_REFERENCE_ID_EXISTS"));
    assert_eq!(
        row(&err),
        (
            Code::AlreadyExists,
            "INVALID_PAYLOAD_REFERENCE_ID_EXISTS".into(),
            UPSTREAM_DOMAIN
        )
    );
    assert_eq!(classify(&err).detail, Detail::ResourceExists);
    assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("400"));
    let status = render(&classify(&err), "req", Some("REF_USED"));
    let info = status.get_error_details().resource_info().cloned().unwrap();
    assert_eq!(info.resource_name, "REF_USED");
}

#[test]
fn other_payload_refusals_blame_the_field_their_code_names() {
    for (code, field) in [
        ("INVALID_PAYLOAD", "image"),
        ("INVALID_PAYLOAD_IMAGE_MISSING", "image"),
        ("MISSING_PAYLOAD_IMAGE", "image"),
        ("INVALID_PAYLOAD_IMAGE_SIZE", "image"),
        ("INVALID_PAYLOAD_IMAGE_FORMAT", "image"),
        ("INVALID_PAYLOAD_REFERENCE_ID", "reference_id"),
        (
            "INVALID_PAYLOAD_QUALITY_VALIDATION_DEPENDENCY",
            "validate_quality",
        ),
    ] {
        let err = submit(400, Some(code));
        assert_eq!(
            row(&err),
            (Code::InvalidArgument, code.into(), UPSTREAM_DOMAIN)
        );
        assert!(
            matches!(classify(&err).detail, Detail::BadRequest { field: f, .. } if f == field),
            "{code}"
        );
    }
}

#[test]
fn the_submits_other_answers_read_as_the_result_calls() {
    for (err, reason) in [
        (submit(400, Some("SOMETHING_ELSE")), "UPSTREAM_BAD_RESPONSE"),
        (submit(400, None), "UPSTREAM_BAD_RESPONSE"),
        (
            submit(404, Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")),
            "UPSTREAM_BAD_RESPONSE",
        ),
        (submit(401, None), "UPSTREAM_AUTH_FAILED"),
        (submit(429, None), "UPSTREAM_RATE_LIMITED"),
        (submit(503, None), "UPSTREAM_UNAVAILABLE"),
    ] {
        assert_eq!(classify(&err).reason, reason, "{err:?}");
    }
    assert_eq!(
        meta(&submit(404, None), "upstream_http_status").as_deref(),
        Some("404")
    );
}

#[test]
fn a_wait_adds_how_long_it_waited() {
    let err = GatewayError::NotFoundAfterWait {
        error: UpstreamError::Status {
            status: 404,
            error_code: Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND".into()),
            retry_after: None,
        },
        waited: Duration::from_millis(2500),
    };
    assert_eq!(row(&err).0, Code::NotFound);
    assert_eq!(meta(&err, "waited_ms").as_deref(), Some("2500"));
    assert_eq!(classify(&err).detail, Detail::ResourceInfo);
}

#[test]
fn extract_errors_after_the_submit_name_the_job() {
    let err = GatewayError::ForJob {
        reference_id: "JOB-9".into(),
        error: Box::new(GatewayError::ResultNotReady {
            waited: Duration::from_secs(3),
        }),
    };
    assert_eq!(
        row(&err),
        (
            Code::DeadlineExceeded,
            "RESULT_NOT_READY".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(meta(&err, "reference_id").as_deref(), Some("JOB-9"));
    assert_eq!(meta(&err, "waited_ms").as_deref(), Some("3000"));
    let job_error = GatewayError::ForJob {
        reference_id: "JOB-9".into(),
        error: Box::new(GatewayError::Upstream(UpstreamError::JobFailed {
            status: 200,
            code: "FAIL_ON_1".into(),
            image_quality: None,
        })),
    };
    assert_eq!(row(&job_error).1, "FAIL_ON_1");
    assert_eq!(meta(&job_error, "reference_id").as_deref(), Some("JOB-9"));
}
