//! Whether a `tonic::Status` is the answer an error-table example expects:
//! one comparison for every consumer of the table (the in-process API tests,
//! the fault matrix, the gateway's unit tests), so they cannot drift apart.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error_table::{Delay, Detail, Expect, Meta, code_number};

/// The tonic code of a canonical code name; panics on a name that is not one.
pub fn code(name: &str) -> Code {
    let number = code_number(name).unwrap_or_else(|| panic!("{name:?} is not a gRPC code name"));
    Code::from(number)
}

/// Compares `status` with `want` (an error expectation): the code, the
/// `ErrorInfo` reason, domain and listed metadata, the detail (and no other
/// detail kind), and a `RequestInfo` with a request id. `reference_id` is
/// the call's, which a `ResourceInfo` must name. `Err` lists every
/// difference.
pub fn error_status(status: &Status, want: &Expect, reference_id: &str) -> Result<(), String> {
    let Some(failure) = want.error else {
        return Err(format!("expected {}, got {status:?}", want.code));
    };
    let mut problems = Vec::new();
    if status.code() != code(want.code) {
        problems.push(format!("code {:?}, expected {}", status.code(), want.code));
    }
    let details = status.get_error_details();
    match details.error_info() {
        None => problems.push("no ErrorInfo".to_owned()),
        Some(info) => {
            if (info.reason.as_str(), info.domain.as_str())
                != (failure.reason, failure.domain.as_str())
            {
                problems.push(format!(
                    "ErrorInfo {} ({}), expected {} ({})",
                    info.reason,
                    info.domain,
                    failure.reason,
                    failure.domain.as_str()
                ));
            }
            for (key, meta) in failure.metadata {
                let got = info.metadata.get(*key).map(String::as_str);
                let (ok, expected) = match meta {
                    Meta::Is(v) => (got == Some(*v), format!("{v:?}")),
                    Meta::ReferenceId => (
                        got == Some(reference_id),
                        format!("the reference id {reference_id:?}"),
                    ),
                    Meta::Number => (
                        got.is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
                        "a whole number".to_owned(),
                    ),
                    Meta::Absent => (got.is_none(), "absent".to_owned()),
                };
                if !ok {
                    problems.push(format!(
                        "metadata {key} is {got:?}, expected {expected} (all: {:?})",
                        info.metadata
                    ));
                }
            }
        }
    }
    if details
        .request_info()
        .is_none_or(|r| r.request_id.is_empty())
    {
        problems.push("no RequestInfo with a request id".to_owned());
    }
    problems.extend(detail_problems(&details, failure.detail, reference_id));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nin {status:?}", problems.join("\n")))
    }
}

/// What is off about the detail kinds beside `ErrorInfo` and `RequestInfo`.
fn detail_problems(details: &ErrorDetails, want: Detail, reference_id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let retry = details.retry_info().and_then(|r| r.retry_delay);
    match want {
        Detail::RetryInfo(Delay::Exactly(d)) if retry != Some(d) => {
            problems.push(format!("RetryInfo {retry:?}, expected {d:?}"));
        }
        Detail::RetryInfo(Delay::RestOfCoolDown) if retry.is_none_or(|d| d.is_zero()) => {
            problems.push(format!(
                "RetryInfo {retry:?}, expected the rest of a cool-down"
            ));
        }
        Detail::RetryInfo(Delay::RetryAfterElse(_)) => {
            problems.push("an example expects an exact delay, not a rule".to_owned());
        }
        Detail::RetryInfo(_) => {}
        _ if retry.is_some() => problems.push(format!("unexpected RetryInfo {retry:?}")),
        _ => {}
    }
    match (want, details.bad_request()) {
        (Detail::BadRequestOneOf(_), _) => {
            problems.push("an example expects an exact field, not a rule".to_owned());
        }
        (Detail::BadRequest { field }, Some(b)) => {
            let fields: Vec<&str> = b
                .field_violations
                .iter()
                .map(|v| v.field.as_str())
                .collect();
            let described = b.field_violations.iter().all(|v| !v.description.is_empty());
            if fields != [field] || !described {
                problems.push(format!(
                    "BadRequest {b:?}, expected one violation on {field}"
                ));
            }
        }
        (Detail::BadRequest { field }, None) => {
            problems.push(format!("no BadRequest, expected one on {field}"));
        }
        (_, Some(b)) => problems.push(format!("unexpected BadRequest {b:?}")),
        (_, None) => {}
    }
    match (want, details.resource_info()) {
        (Detail::ResourceInfo { resource_type }, Some(r)) => {
            if (r.resource_type.as_str(), r.resource_name.as_str()) != (resource_type, reference_id)
            {
                problems.push(format!(
                    "ResourceInfo {r:?}, expected {resource_type} {reference_id:?}"
                ));
            }
        }
        (Detail::ResourceInfo { .. }, None) => problems.push("no ResourceInfo".to_owned()),
        (_, Some(r)) => problems.push(format!("unexpected ResourceInfo {r:?}")),
        (_, None) => {}
    }
    match (want, details.quota_failure()) {
        (Detail::QuotaFailure, Some(q)) if q.violations.is_empty() => {
            problems.push("a QuotaFailure without violations".to_owned());
        }
        (Detail::QuotaFailure, None) => problems.push("no QuotaFailure".to_owned()),
        (Detail::QuotaFailure, Some(_)) | (_, None) => {}
        (_, Some(q)) => problems.push(format!("unexpected QuotaFailure {q:?}")),
    }
    problems
}
