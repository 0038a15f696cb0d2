//! The error table itself: [`classify`] maps each [`GatewayError`] to its
//! README row, one arm per row.

use tonic::Code;

use super::{DEFAULT_RETRY_DELAY, Detail, Row, reason};
use crate::{
    error::{GatewayError, Refusal, Scope},
    security::auth::Unauthenticated,
    upstream::{UpstreamError, submit::REFERENCE_ID_EXISTS},
};

/// The error table. Each arm is one README row; keep them in step.
pub fn classify(err: &GatewayError) -> Row {
    use reason::*;
    match err {
        GatewayError::InvalidReferenceId(why) => {
            Row::gateway(Code::InvalidArgument, INVALID_REFERENCE_ID, why.to_string())
                .with("constraint", why.constraint())
                .detail(Detail::BadRequest {
                    field: "reference_id",
                    description: why.to_string(),
                })
        }
        GatewayError::DeadlineExceeded => Row::gateway(
            Code::DeadlineExceeded,
            DEADLINE_EXCEEDED,
            "the call's deadline ran out before the upstream answered",
        ),
        GatewayError::ShuttingDown { retry_as_is } => Row::gateway(
            // AIP-194: only UNAVAILABLE says "retry as is".
            if *retry_as_is {
                Code::Unavailable
            } else {
                Code::Aborted
            },
            SHUTTING_DOWN,
            err.to_string(),
        )
        .detail(Detail::RetryInfo(std::time::Duration::ZERO)),
        GatewayError::RequestReadTimeout { .. } => {
            Row::gateway(Code::DeadlineExceeded, REQUEST_READ_TIMEOUT, err.to_string())
        }
        GatewayError::Unauthenticated(why) => {
            let reason = match why {
                Unauthenticated::Missing => BEARER_TOKEN_MISSING,
                Unauthenticated::Invalid => BEARER_TOKEN_INVALID,
            };
            Row::gateway(Code::Unauthenticated, reason, why.to_string())
        }
        GatewayError::Overloaded { scope, limit } => {
            let row = overloaded(*scope, *limit, format!("{err}; retry with backoff"));
            match scope {
                // The key these two refusals had before `scope`, kept.
                Scope::Calls | Scope::Submits => row.with("max_in_flight", limit),
                Scope::Waits | Scope::Upstream => row,
            }
        }
        GatewayError::Upstream(up) => classify_upstream(up),
        GatewayError::InvalidImage(why) => {
            Row::gateway(Code::InvalidArgument, INVALID_IMAGE, why.to_string())
                .with("constraint", why.constraint())
                .detail(Detail::BadRequest {
                    field: why.field(),
                    description: why.to_string(),
                })
        }
        GatewayError::InvalidReadMask { path } => {
            Row::gateway(Code::InvalidArgument, INVALID_READ_MASK, err.to_string())
                .with("path", path)
                .detail(Detail::BadRequest {
                    field: "read_mask",
                    description: err.to_string(),
                })
        }
        GatewayError::FieldNotAllowed { field } => {
            Row::gateway(Code::PermissionDenied, FIELD_NOT_ALLOWED, err.to_string())
                .with("field", field)
        }
        GatewayError::Submit { error, image_field } => classify_submit(error, image_field),
        GatewayError::NotFoundAfterWait { error, waited } => {
            classify_upstream(error).with("waited_ms", waited.as_millis())
        }
        GatewayError::NoAnswerInWait { waited } => Row::gateway(
            Code::NotFound,
            RESULT_NOT_READY,
            "no answer about the job came within wait.max_wait; ask again, with wait = true",
        )
        .with("waited_ms", waited.as_millis()),
        GatewayError::ResultNotReady { waited } => Row::gateway(
            Code::DeadlineExceeded,
            RESULT_NOT_READY,
            "the job was submitted but its result was not ready in time; read it later with GetKtpResult (wait = true)",
        )
        .with("waited_ms", waited.as_millis()),
        GatewayError::ForJob {
            reference_id,
            error,
        } => classify(error).with(super::REFERENCE_ID, reference_id),
        // tonic's own codes for these (OUT_OF_RANGE, INTERNAL) would blame
        // the server or suggest a retry; the request is what is wrong.
        GatewayError::Malformed(m) => match m.kind {
            Refusal::TooLarge => Row::gateway(Code::InvalidArgument, REQUEST_TOO_LARGE, &m.message),
            Refusal::NotDecodable => {
                Row::gateway(Code::InvalidArgument, REQUEST_NOT_DECODABLE, &m.message)
            }
            Refusal::Other(code) => Row::gateway(Code::from(code), REQUEST_REFUSED, &m.message),
        },
        GatewayError::InvalidJsonField { field, .. } => {
            Row::gateway(Code::InvalidArgument, REQUEST_NOT_DECODABLE, err.to_string()).detail(
                Detail::BadRequest {
                    field,
                    description: err.to_string(),
                },
            )
        }
        GatewayError::UnknownJsonField { name } => {
            Row::gateway(Code::InvalidArgument, REQUEST_NOT_DECODABLE, err.to_string()).detail(
                Detail::UnknownField {
                    // A name is short; a longer one is cut, not echoed whole.
                    name: name.chars().take(128).collect(),
                },
            )
        }
    }
}

/// The submit call's own 400s; its other answers read as the result call's.
fn classify_submit(err: &UpstreamError, image_field: &'static str) -> Row {
    let UpstreamError::Status {
        status: 400,
        error_code: Some(code),
        ..
    } = err
    else {
        return match err {
            // Not found is the result call's answer, not a submit's.
            UpstreamError::Status { status: 404, .. } => bad_status(err),
            _ => classify_upstream(err),
        };
    };
    let row = if code == REFERENCE_ID_EXISTS {
        Row::upstream(
            Code::AlreadyExists,
            code,
            "a job was already submitted under this reference id",
        )
        .detail(Detail::ResourceExists)
    } else if code.starts_with("INVALID_PAYLOAD") || code == reason::MISSING_PAYLOAD_IMAGE {
        // The field the code names; the image (as the caller sent it: the
        // file or its URL) when it names none.
        let field = if code.contains("REFERENCE_ID") {
            "reference_id"
        } else if code.contains("QUALITY_VALIDATION") {
            "validate_quality"
        } else {
            image_field
        };
        Row::upstream(
            Code::InvalidArgument,
            code,
            "the upstream refused the submitted payload",
        )
        .detail(Detail::BadRequest {
            field,
            description: format!("refused by the upstream ({code})"),
        })
    } else {
        return bad_status(err);
    };
    row.with_http_status(400)
}

/// Every `OVERLOADED`: which bound (`scope`) and its value (`limit`).
fn overloaded(scope: Scope, limit: usize, message: impl Into<String>) -> Row {
    Row::gateway(Code::ResourceExhausted, reason::OVERLOADED, message)
        .with("scope", scope.as_str())
        .with("limit", limit)
}

/// An HTTP status the call does not expect.
fn bad_status(err: &UpstreamError) -> Row {
    let (status, code) = match err {
        UpstreamError::Status {
            status, error_code, ..
        } => (*status, error_code.as_deref()),
        _ => (0, None),
    };
    Row::gateway(
        Code::Internal,
        reason::UPSTREAM_BAD_RESPONSE,
        "the upstream answered with an unexpected HTTP status",
    )
    .with_upstream_code(code)
    .with_http_status(status)
}

fn classify_upstream(err: &UpstreamError) -> Row {
    use reason::*;
    match err {
        UpstreamError::JobFailed {
            status,
            code,
            image_quality,
        } => {
            let row = match code.as_str() {
                FAIL_ON_1 => Row::upstream(
                    Code::FailedPrecondition,
                    code,
                    "the KTP image failed the upstream's quality check; submit a better image",
                ),
                KTP_NOT_DETECTED => Row::upstream(
                    Code::FailedPrecondition,
                    code,
                    "the upstream found no KTP in the submitted image",
                ),
                INTERNAL_SERVER_ERROR => Row::upstream(
                    Code::Internal,
                    code,
                    "the OCR job failed inside the upstream",
                ),
                _ => Row::upstream(
                    Code::Unknown,
                    code,
                    "the OCR job failed upstream with an error code this gateway does not know",
                ),
            };
            let mut row = row.with_http_status(*status);
            if code == FAIL_ON_1 {
                for (flag, value) in image_quality.iter().flat_map(|q| q.present()) {
                    row = row.with(flag, value);
                }
            }
            row
        }
        UpstreamError::Status {
            status,
            error_code,
            retry_after,
        } => {
            let code = error_code.as_deref();
            let retry = Detail::RetryInfo(retry_after.unwrap_or(DEFAULT_RETRY_DELAY));
            let row = match (*status, code) {
                (400, Some(c @ INVALID_PAYLOAD_REFERENCE_ID)) => Row::upstream(
                    Code::InvalidArgument,
                    c,
                    "the upstream rejected the reference id (too short or too long)",
                )
                .detail(Detail::BadRequest {
                    field: "reference_id",
                    description: "rejected by the upstream: too short or too long".into(),
                }),
                (400, Some(c @ INVALID_SANDBOX_CODE)) => Row::upstream(
                    Code::InvalidArgument,
                    c,
                    "the sandbox knows no such reference id; use one of its magic values",
                )
                .detail(Detail::BadRequest {
                    field: "reference_id",
                    description: "not a sandbox magic value".into(),
                }),
                (401, _) => Row::gateway(
                    Code::Internal,
                    UPSTREAM_AUTH_FAILED,
                    "the upstream refused the gateway's credentials; the gateway's operators must fix them",
                )
                .with_upstream_code(code),
                (403, Some(INSUFFICIENT_QUOTA)) => Row::upstream(
                    Code::ResourceExhausted,
                    INSUFFICIENT_QUOTA,
                    "the gateway's upstream quota is used up",
                )
                .detail(Detail::QuotaFailure),
                (403, _) => Row::gateway(
                    Code::Internal,
                    UPSTREAM_AUTH_FAILED,
                    "the upstream forbade the gateway's credentials this call",
                )
                .with_upstream_code(code),
                (404, Some(c @ INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND)) => Row::upstream(
                    Code::NotFound,
                    c,
                    "no KTP result under this reference id (unknown, or the job has not finished)",
                )
                .detail(Detail::ResourceInfo),
                (429, _) => Row::gateway(
                    Code::Unavailable,
                    UPSTREAM_RATE_LIMITED,
                    "the upstream is rate limiting the gateway; retry after the suggested delay",
                )
                .with_upstream_code(code)
                .detail(retry),
                (500 | 502 | 503 | 504, Some(c)) => {
                    Row::upstream(Code::Unavailable, c, "the upstream failed; retry later").detail(retry)
                }
                (500 | 502 | 503 | 504, None) => Row::gateway(
                    Code::Unavailable,
                    UPSTREAM_UNAVAILABLE,
                    "the upstream failed; retry later",
                )
                .detail(retry),
                _ => Row::gateway(
                    Code::Internal,
                    UPSTREAM_BAD_RESPONSE,
                    "the upstream answered with an unexpected HTTP status",
                )
                .with_upstream_code(code),
            };
            row.with_http_status(*status)
        }
        UpstreamError::Transport { status, .. } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_UNAVAILABLE,
            "the upstream could not be reached; retry later",
        )
        .with_optional_http_status(*status)
        .detail(Detail::RetryInfo(DEFAULT_RETRY_DELAY)),
        UpstreamError::CircuitOpen { retry_in } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_CIRCUIT_OPEN,
            "the upstream is failing; the gateway is not calling it for a cool-down; retry later",
        )
        .detail(Detail::RetryInfo(*retry_in)),
        UpstreamError::Timeout { limit, status } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_TIMEOUT,
            format!(
                "the upstream did not answer within {} ms; retry later",
                limit.as_millis()
            ),
        )
        .with_optional_http_status(*status)
        .detail(Detail::RetryInfo(DEFAULT_RETRY_DELAY)),
        UpstreamError::NoSlot { limit } => overloaded(
            Scope::Upstream,
            *limit,
            "every upstream connection of the gateway stayed busy; nothing was sent; retry with backoff",
        ),
        UpstreamError::FlightLost => Row::gateway(
            Code::Internal,
            INTERNAL_ERROR,
            "the gateway failed internally while waiting for the upstream; retry later",
        ),
        UpstreamError::BadResponse { status, problem } => Row::gateway(
            Code::Internal,
            UPSTREAM_BAD_RESPONSE,
            format!("the upstream sent an unusable answer ({problem})"),
        )
        .with_http_status(*status)
        .with("problem", problem.as_str()),
    }
}
