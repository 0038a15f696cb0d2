//! The error table, row by row, and the statuses it renders.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::*;
use crate::{
    error::GatewayError,
    reference_id::InvalidReferenceId,
    security::auth::Unauthenticated,
    status::REQUEST_ID_HEADER,
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

mod gateway_rows;
mod submit_rows;
mod table;
mod upstream_rows;

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
