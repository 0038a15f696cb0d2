//! The table itself, in the README's row order.

mod asynchronous;
mod fields;

use std::time::Duration;

use super::{
    Answer, Body, Cells, Delay, Detail,
    Domain::{Gateway, Upstream},
    Entry, Example, Expect, GrpcCode,
    HttpStatus::{Exact, Other, Range},
    ImageCase,
    Meta::{self, Absent, Is},
    Provoke, Reason, Rpc, Trigger,
};
use crate::card_holders::VENDOR_SAMPLE_SUCCESS;

/// Upstream requests a call makes when every attempt fails in a retried
/// way (`upstream.retry.max_attempts`, default 3).
const RETRIED: u32 = 3;
const MIB: usize = 1024 * 1024;
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const RETRY_1S: Detail = Detail::RetryInfo(Delay::Exactly(secs(1)));
const fn retry(n: u64) -> Detail {
    Detail::RetryInfo(Delay::Exactly(secs(n)))
}
const HTTP_200: (&str, Meta) = ("upstream_http_status", Is("200"));
const ON_REFERENCE_ID: Detail = Detail::BadRequest {
    field: "reference_id",
};
const RESOURCE_INFO: Detail = Detail::ResourceInfo {
    resource_type: "ktp.v1.KtpResult",
};
/// An error of the submit call, or of `ExtractKtp` after its submit
/// succeeded, names the job (the upstream may hold it, under an id the
/// caller may not know).
const AFTER_SUBMIT: (&str, Meta) = ("reference_id", Meta::ReferenceId);
/// An error before anything was sent names no job.
const NO_JOB: (&str, Meta) = ("reference_id", Absent);
/// Every error once the call's id is valid names it (on `GetKtpResult`
/// too): the caller's own id.
const NAMES_ID: (&str, Meta) = ("reference_id", Meta::ReferenceId);

/// An example calling `GetKtpResult`.
const fn example(name: &'static str, trigger: Trigger, expect: Expect) -> Example {
    on(Rpc::GetKtpResult, name, trigger, expect)
}
/// An example calling `rpc`.
const fn on(rpc: Rpc, name: &'static str, trigger: Trigger, expect: Expect) -> Example {
    Example {
        name,
        rpc,
        trigger,
        expect,
    }
}
/// A JSON answer of the submit call.
const fn submit_json(status: u16, body: &'static str) -> Trigger {
    Trigger::Submit(Answer {
        status,
        headers: &[],
        body: Body::Json(body),
    })
}
/// An answer of the submit call.
const fn submit_answer(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
) -> Trigger {
    Trigger::Submit(Answer {
        status,
        headers,
        body,
    })
}
/// A JSON answer.
const fn json(status: u16, body: &'static str) -> Trigger {
    answer(status, &[], Body::Json(body))
}
const fn answer(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
) -> Trigger {
    Trigger::Upstream(Answer {
        status,
        headers,
        body,
    })
}
const fn provoke(what: Provoke) -> Trigger {
    Trigger::Provoke(what)
}
const fn upstream(code: &'static str, reason: &'static str) -> Expect {
    Expect::error(code, reason, Upstream)
}
const fn gateway(code: &'static str, reason: &'static str) -> Expect {
    Expect::error(code, reason, Gateway)
}

/// Every row of the README's error table, in its order.
pub static TABLE: &[Entry] = &[
    Entry {
        name: "ok",
        readme: Cells {
            answer: "200 with data, no `error_code`",
            code: "OK",
            reason: "–",
            detail: "–",
        },
        statuses: &[Range(200, 299)],
        submit_statuses: &[Range(200, 299)],
        code: GrpcCode::Is("OK"),
        reason: Reason::None,
        detail: Detail::None,
        examples: &[
            example(
                "the vendor's sample",
                json(200, VENDOR_SAMPLE_SUCCESS),
                Expect::ok(1),
            ),
            example(
                "nulls, empty, missing and unknown fields",
                json(
                    200,
                    r#"{"data": {"nik": null, "full_name": "", "brand_new": {"nested": [1, 2]}}, "trace": "x"}"#,
                ),
                Expect::ok(1),
            ),
            example(
                "an empty error_code",
                json(200, r#"{"data": {}, "error_code": ""}"#),
                Expect::ok(1),
            ),
            example(
                "a null error_code",
                json(200, r#"{"data": {}, "error_code": null}"#),
                Expect::ok(1),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: accepted, naming the job",
                submit_json(
                    200,
                    r#"{"message": "success", "data": {"reference_id": "VENDOR-JOB-7"}}"#,
                ),
                Expect::ok(1),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: accepted, data without an id",
                submit_json(200, r#"{"message": "success", "data": {}}"#),
                Expect::ok(1),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: accepted on a retry after a lost attempt",
                Trigger::SubmitAfterLostAttempt(Answer {
                    status: 200,
                    headers: &[],
                    body: Body::Json(r#"{"message": "success", "data": {}}"#),
                }),
                Expect::ok(2),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the job's result",
                json(200, VENDOR_SAMPLE_SUCCESS),
                Expect::ok(2),
            ),
        ],
    },
    Entry {
        name: "job_fail_on_1",
        readme: Cells {
            answer: "200 `error_code` `FAIL_ON_1`",
            code: "FAILED_PRECONDITION",
            reason: "`FAIL_ON_1` (upstream)",
            detail: "metadata `blur`, `dark`, `flashlight`, `grayscale` = `true`/`false` for each flag present",
        },
        statuses: &[Range(200, 299)],
        submit_statuses: &[Range(200, 299)],
        code: GrpcCode::Is("FAILED_PRECONDITION"),
        reason: Reason::Is("FAIL_ON_1", Upstream),
        detail: Detail::None,
        examples: &[
            example(
                "two flags present",
                json(
                    200,
                    r#"{"error_code": "FAIL_ON_1", "message": "quality check failed", "data": {"image_quality": {"blur": true, "dark": false}}}"#,
                ),
                upstream("FAILED_PRECONDITION", "FAIL_ON_1").meta(&[
                    ("upstream_http_status", Is("200")),
                    ("blur", Is("true")),
                    ("dark", Is("false")),
                    ("flashlight", Absent),
                    ("grayscale", Absent),
                ]),
            ),
            example(
                "every flag present",
                json(
                    200,
                    r#"{"error_code": "FAIL_ON_1", "data": {"image_quality": {"blur": false, "dark": true, "flashlight": true, "grayscale": false}}}"#,
                ),
                upstream("FAILED_PRECONDITION", "FAIL_ON_1").meta(&[
                    ("upstream_http_status", Is("200")),
                    ("blur", Is("false")),
                    ("dark", Is("true")),
                    ("flashlight", Is("true")),
                    ("grayscale", Is("false")),
                ]),
            ),
            example(
                "no flags",
                json(200, r#"{"data": {}, "error_code": "FAIL_ON_1"}"#),
                upstream("FAILED_PRECONDITION", "FAIL_ON_1").meta(&[
                    ("upstream_http_status", Is("200")),
                    ("blur", Absent),
                    ("dark", Absent),
                    ("flashlight", Absent),
                    ("grayscale", Absent),
                ]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the job failed the quality check",
                json(
                    200,
                    r#"{"error_code": "FAIL_ON_1", "message": "quality check failed", "data": {"image_quality": {"blur": true}}}"#,
                ),
                upstream("FAILED_PRECONDITION", "FAIL_ON_1")
                    .meta(&[
                        ("upstream_http_status", Is("200")),
                        ("blur", Is("true")),
                        ("dark", Absent),
                        AFTER_SUBMIT,
                    ])
                    .attempts(2),
            ),
        ],
    },
    Entry {
        name: "job_ktp_not_detected",
        readme: Cells {
            answer: "200 `error_code` `KTP_NOT_DETECTED`",
            code: "FAILED_PRECONDITION",
            reason: "`KTP_NOT_DETECTED` (upstream)",
            detail: "–",
        },
        statuses: &[Range(200, 299)],
        submit_statuses: &[Range(200, 299)],
        code: GrpcCode::Is("FAILED_PRECONDITION"),
        reason: Reason::Is("KTP_NOT_DETECTED", Upstream),
        detail: Detail::None,
        examples: &[
            example(
                "with data",
                json(
                    200,
                    r#"{"data": {}, "error_code": "KTP_NOT_DETECTED", "message": "ktp not detected"}"#,
                ),
                upstream("FAILED_PRECONDITION", "KTP_NOT_DETECTED")
                    .meta(&[("upstream_http_status", Is("200"))]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: no card in the image",
                json(200, r#"{"data": {}, "error_code": "KTP_NOT_DETECTED"}"#),
                upstream("FAILED_PRECONDITION", "KTP_NOT_DETECTED")
                    .meta(&[("upstream_http_status", Is("200")), AFTER_SUBMIT])
                    .attempts(2),
            ),
        ],
    },
    Entry {
        name: "job_internal_server_error",
        readme: Cells {
            answer: "200 `error_code` `INTERNAL_SERVER_ERROR`",
            code: "INTERNAL",
            reason: "`INTERNAL_SERVER_ERROR` (upstream)",
            detail: "–",
        },
        statuses: &[Range(200, 299)],
        submit_statuses: &[Range(200, 299)],
        code: GrpcCode::Is("INTERNAL"),
        reason: Reason::Is("INTERNAL_SERVER_ERROR", Upstream),
        detail: Detail::None,
        examples: &[example(
            "without data",
            json(
                200,
                r#"{"error_code": "INTERNAL_SERVER_ERROR", "message": "x"}"#,
            ),
            upstream("INTERNAL", "INTERNAL_SERVER_ERROR")
                .meta(&[("upstream_http_status", Is("200"))]),
        )],
    },
    Entry {
        name: "job_other_code",
        readme: Cells {
            answer: "200 any other `error_code`",
            code: "UNKNOWN",
            reason: "that code, as given (upstream)",
            detail: "–",
        },
        statuses: &[Range(200, 299)],
        submit_statuses: &[Range(200, 299)],
        code: GrpcCode::Is("UNKNOWN"),
        reason: Reason::UpstreamCode,
        detail: Detail::None,
        examples: &[
            example(
                "FAIL_ON_2",
                json(200, r#"{"data": {}, "error_code": "FAIL_ON_2"}"#),
                upstream("UNKNOWN", "FAIL_ON_2").meta(&[("upstream_http_status", Is("200"))]),
            ),
            example(
                "lower case, digits, dots and dashes",
                json(200, r#"{"error_code": "ocr.v2-timeout_1"}"#),
                upstream("UNKNOWN", "ocr.v2-timeout_1")
                    .meta(&[("upstream_http_status", Is("200"))]),
            ),
        ],
    },
    Entry {
        name: "invalid_payload_reference_id",
        readme: Cells {
            answer: "400 `INVALID_PAYLOAD_REFERENCE_ID`",
            code: "INVALID_ARGUMENT",
            reason: "`INVALID_PAYLOAD_REFERENCE_ID` (upstream)",
            detail: "`BadRequest` violation on `reference_id`",
        },
        statuses: &[Exact(400)],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("INVALID_PAYLOAD_REFERENCE_ID", Upstream),
        detail: ON_REFERENCE_ID,
        examples: &[example(
            "too long for the upstream",
            json(
                400,
                r#"{"message": "too long", "error_code": "INVALID_PAYLOAD_REFERENCE_ID"}"#,
            ),
            upstream("INVALID_ARGUMENT", "INVALID_PAYLOAD_REFERENCE_ID")
                .meta(&[("upstream_http_status", Is("400"))])
                .detail(ON_REFERENCE_ID),
        )],
    },
    Entry {
        name: "invalid_sandbox_code",
        readme: Cells {
            answer: r#"400 `INVALID_SANDBOX_CODE` (the vendor sandbox's "no such magic value")"#,
            code: "INVALID_ARGUMENT",
            reason: "`INVALID_SANDBOX_CODE` (upstream)",
            detail: "`BadRequest` violation on `reference_id`",
        },
        statuses: &[Exact(400)],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("INVALID_SANDBOX_CODE", Upstream),
        detail: ON_REFERENCE_ID,
        examples: &[example(
            "no such magic value",
            json(
                400,
                r#"{"message": "invalid sandbox code", "error_code": "INVALID_SANDBOX_CODE"}"#,
            ),
            upstream("INVALID_ARGUMENT", "INVALID_SANDBOX_CODE")
                .meta(&[("upstream_http_status", Is("400"))])
                .detail(ON_REFERENCE_ID),
        )],
    },
    Entry {
        name: "invalid_reference_id",
        readme: Cells {
            answer: "local validation failure (empty, blank, > 128 bytes, control characters)",
            code: "INVALID_ARGUMENT",
            reason: "`INVALID_REFERENCE_ID` (gateway); metadata `constraint` = `required` / `not_blank` / `max_length` / `no_control_characters`",
            detail: "`BadRequest` violation on `reference_id`; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("INVALID_REFERENCE_ID", Gateway),
        detail: ON_REFERENCE_ID,
        examples: &[
            example(
                "empty",
                provoke(Provoke::ReferenceId("")),
                invalid_reference_id(&[
                    ("constraint", Is("required")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            example(
                "blank",
                provoke(Provoke::ReferenceId("   ")),
                invalid_reference_id(&[
                    ("constraint", Is("not_blank")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            example(
                "129 bytes",
                provoke(Provoke::LongReferenceId(129)),
                invalid_reference_id(&[
                    ("constraint", Is("max_length")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            example(
                "a newline",
                provoke(Provoke::ReferenceId("REF\n1")),
                invalid_reference_id(&[
                    ("constraint", Is("no_control_characters")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            example(
                "a NUL",
                provoke(Provoke::ReferenceId("REF\u{0}")),
                invalid_reference_id(&[
                    ("constraint", Is("no_control_characters")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: blank",
                provoke(Provoke::ReferenceId(" \u{3000} ")),
                invalid_reference_id(&[
                    ("constraint", Is("not_blank")),
                    ("upstream_http_status", Absent),
                ]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: 129 bytes",
                provoke(Provoke::LongReferenceId(129)),
                invalid_reference_id(&[
                    ("constraint", Is("max_length")),
                    ("upstream_http_status", Absent),
                    ("reference_id", Absent),
                ]),
            ),
        ],
    },
    asynchronous::INVALID_IMAGE,
    fields::INVALID_READ_MASK,
    fields::FIELD_NOT_ALLOWED,
    asynchronous::SUBMIT_EXISTS,
    asynchronous::SUBMIT_INVALID_PAYLOAD,
    Entry {
        name: "upstream_401",
        readme: Cells {
            answer: "401",
            code: "INTERNAL (the gateway's own credentials were refused; the caller can't fix it)",
            reason: "`UPSTREAM_AUTH_FAILED` (gateway)",
            detail: "logged at error level",
        },
        statuses: &[Exact(401)],
        submit_statuses: &[Exact(401)],
        code: GrpcCode::Is("INTERNAL"),
        reason: Reason::Is("UPSTREAM_AUTH_FAILED", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "no error_code",
                json(401, r#"{"message": "Authorization failed"}"#),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("401")),
                    ("upstream_error_code", Absent),
                ]),
            ),
            example(
                "an error_code",
                json(
                    401,
                    r#"{"message": "Authorization failed", "error_code": "UNAUTHORIZED"}"#,
                ),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("401")),
                    ("upstream_error_code", Is("UNAUTHORIZED")),
                ]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: an error_code",
                submit_json(
                    401,
                    r#"{"message": "Authorization Failed", "error_code": "UNAUTHORIZED"}"#,
                ),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("401")),
                    ("upstream_error_code", Is("UNAUTHORIZED")),
                ]),
            ),
        ],
    },
    Entry {
        name: "insufficient_quota",
        readme: Cells {
            answer: "403 `INSUFFICIENT_QUOTA`",
            code: "RESOURCE_EXHAUSTED",
            reason: "`INSUFFICIENT_QUOTA` (upstream)",
            detail: "`QuotaFailure`",
        },
        statuses: &[Exact(403)],
        submit_statuses: &[Exact(403)],
        code: GrpcCode::Is("RESOURCE_EXHAUSTED"),
        reason: Reason::Is("INSUFFICIENT_QUOTA", Upstream),
        detail: Detail::QuotaFailure,
        examples: &[
            example(
                "quota used up",
                json(
                    403,
                    r#"{"error_code": "INSUFFICIENT_QUOTA", "message": "insufficient quota"}"#,
                ),
                upstream("RESOURCE_EXHAUSTED", "INSUFFICIENT_QUOTA")
                    .meta(&[("upstream_http_status", Is("403"))])
                    .detail(Detail::QuotaFailure),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: quota used up",
                submit_json(
                    403,
                    r#"{"error_code": "INSUFFICIENT_QUOTA", "message": "insufficient quota"}"#,
                ),
                upstream("RESOURCE_EXHAUSTED", "INSUFFICIENT_QUOTA")
                    .meta(&[("upstream_http_status", Is("403"))])
                    .detail(Detail::QuotaFailure),
            ),
        ],
    },
    Entry {
        name: "upstream_403_other",
        readme: Cells {
            answer: "403 without `INSUFFICIENT_QUOTA`",
            code: "INTERNAL",
            reason: "`UPSTREAM_AUTH_FAILED` (gateway)",
            detail: "logged at error level",
        },
        statuses: &[Exact(403)],
        submit_statuses: &[Exact(403)],
        code: GrpcCode::Is("INTERNAL"),
        reason: Reason::Is("UPSTREAM_AUTH_FAILED", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "no error_code",
                json(403, r#"{"message": "Forbidden"}"#),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("403")),
                    ("upstream_error_code", Absent),
                ]),
            ),
            example(
                "another error_code",
                json(403, r#"{"error_code": "IP_NOT_ALLOWED"}"#),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("403")),
                    ("upstream_error_code", Is("IP_NOT_ALLOWED")),
                ]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the submit forbidden",
                submit_json(403, r#"{"message": "Forbidden"}"#),
                gateway("INTERNAL", "UPSTREAM_AUTH_FAILED").meta(&[
                    ("upstream_http_status", Is("403")),
                    ("upstream_error_code", Absent),
                    AFTER_SUBMIT,
                ]),
            ),
        ],
    },
    Entry {
        name: "not_found",
        readme: Cells {
            answer: "404 `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND`",
            code: "NOT_FOUND",
            reason: "`INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND` (upstream)",
            detail: "`ResourceInfo` (`resource_type` `ktp.v1.KtpResult`, `resource_name` = the reference id)",
        },
        statuses: &[Exact(404)],
        submit_statuses: &[],
        code: GrpcCode::Is("NOT_FOUND"),
        reason: Reason::Is("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND", Upstream),
        detail: RESOURCE_INFO,
        examples: &[example(
            "the documented answer",
            json(
                404,
                r#"{"message": "Reference ID not found", "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}"#,
            ),
            upstream("NOT_FOUND", "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")
                .meta(&[("upstream_http_status", Is("404"))])
                .detail(RESOURCE_INFO),
        )],
    },
    asynchronous::NOT_FOUND_AFTER_WAIT,
    asynchronous::NO_ANSWER_IN_WAIT,
    asynchronous::SHUTTING_DOWN_WAIT,
    asynchronous::SHUTTING_DOWN_EXTRACT,
    asynchronous::RESULT_NOT_READY,
    Entry {
        name: "rate_limited",
        readme: Cells {
            answer: "429",
            code: "UNAVAILABLE",
            reason: "`UPSTREAM_RATE_LIMITED` (gateway)",
            detail: "`RetryInfo` from `Retry-After` (seconds or HTTP date, capped at 1 h; 1 s when absent)",
        },
        statuses: &[Exact(429)],
        submit_statuses: &[Exact(429)],
        code: GrpcCode::Is("UNAVAILABLE"),
        reason: Reason::Is("UPSTREAM_RATE_LIMITED", Gateway),
        detail: Detail::RetryInfo(Delay::RetryAfterElse(secs(1))),
        // A Retry-After beyond the 1 s backoff cap is not waited out but
        // passed to the caller: one attempt.
        examples: &[
            example(
                "Retry-After: 2",
                answer(
                    429,
                    &[("Retry-After", "2")],
                    Body::Json(r#"{"message": "slow down"}"#),
                ),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[
                        ("upstream_http_status", Is("429")),
                        ("upstream_error_code", Absent),
                    ])
                    .detail(retry(2)),
            ),
            example(
                "no Retry-After",
                json(429, r#"{"message": "Too Many Requests"}"#),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[("upstream_http_status", Is("429"))])
                    .detail(RETRY_1S)
                    .attempts(RETRIED),
            ),
            example(
                "Retry-After over an hour",
                answer(429, &[("Retry-After", "7200")], Body::Bytes(b"")),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[("upstream_http_status", Is("429"))])
                    .detail(retry(3600)),
            ),
            example(
                "an error_code",
                answer(
                    429,
                    &[("Retry-After", "5")],
                    Body::Json(r#"{"error_code": "RATE_LIMIT_EXCEEDED"}"#),
                ),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[
                        ("upstream_http_status", Is("429")),
                        ("upstream_error_code", Is("RATE_LIMIT_EXCEEDED")),
                    ])
                    .detail(retry(5)),
            ),
            // Retried with the same reference id, like the result call.
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: no Retry-After",
                submit_json(429, r#"{"message": "Too Many Requests"}"#),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[("upstream_http_status", Is("429"))])
                    .detail(RETRY_1S)
                    .attempts(RETRIED),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: Retry-After: 2",
                submit_answer(
                    429,
                    &[("Retry-After", "2")],
                    Body::Json(r#"{"message": "slow down"}"#),
                ),
                gateway("UNAVAILABLE", "UPSTREAM_RATE_LIMITED")
                    .meta(&[("upstream_http_status", Is("429"))])
                    .detail(retry(2)),
            ),
        ],
    },
    Entry {
        name: "upstream_5xx",
        readme: Cells {
            answer: "500 / 502 / 503 / 504",
            code: "UNAVAILABLE",
            reason: "the upstream's `error_code` if it sent one (upstream), else `UPSTREAM_UNAVAILABLE` (gateway)",
            detail: "`RetryInfo` (`Retry-After`, else 1 s)",
        },
        statuses: &[Exact(500), Exact(502), Exact(503), Exact(504)],
        submit_statuses: &[Exact(500), Exact(502), Exact(503), Exact(504)],
        code: GrpcCode::Is("UNAVAILABLE"),
        reason: Reason::UpstreamCodeElse("UPSTREAM_UNAVAILABLE"),
        detail: Detail::RetryInfo(Delay::RetryAfterElse(secs(1))),
        examples: &[
            example(
                "500, an HTML page",
                answer(
                    500,
                    &[("Content-Type", "text/html")],
                    Body::Bytes(b"<html>down</html>"),
                ),
                unavailable(&[("upstream_http_status", Is("500"))]),
            ),
            example(
                "502, no body",
                answer(502, &[], Body::Bytes(b"")),
                unavailable(&[("upstream_http_status", Is("502"))]),
            ),
            example(
                "503, a 2 MiB chunked page",
                answer(
                    503,
                    &[],
                    Body::Filler {
                        len: 2 * MIB,
                        chunked: true,
                    },
                ),
                unavailable(&[("upstream_http_status", Is("503"))]),
            ),
            example(
                "504, JSON without a code",
                json(504, r#"{"message": "Gateway Timeout"}"#),
                unavailable(&[("upstream_http_status", Is("504"))]),
            ),
            example(
                "500 with an error_code",
                json(
                    500,
                    r#"{"message": "Internal server error", "error_code": "INTERNAL_SERVER_ERROR"}"#,
                ),
                upstream("UNAVAILABLE", "INTERNAL_SERVER_ERROR")
                    .meta(&[("upstream_http_status", Is("500"))])
                    .detail(RETRY_1S)
                    .attempts(RETRIED),
            ),
            example(
                "503 with an error_code and Retry-After: 5",
                answer(
                    503,
                    &[("Retry-After", "5")],
                    Body::Json(r#"{"error_code": "MAINTENANCE"}"#),
                ),
                upstream("UNAVAILABLE", "MAINTENANCE")
                    .meta(&[("upstream_http_status", Is("503"))])
                    .detail(retry(5)),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: 503, no body",
                submit_answer(503, &[], Body::Bytes(b"")),
                unavailable(&[("upstream_http_status", Is("503"))]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: 500 with the vendor's error_code",
                submit_json(
                    500,
                    r#"{"message": "Internal Server Error", "error_code": "INTERNAL_SERVER_ERROR"}"#,
                ),
                upstream("UNAVAILABLE", "INTERNAL_SERVER_ERROR")
                    .meta(&[("upstream_http_status", Is("500"))])
                    .detail(RETRY_1S)
                    .attempts(RETRIED),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the submit's 502",
                submit_answer(502, &[], Body::Bytes(b"")),
                unavailable(&[("upstream_http_status", Is("502")), AFTER_SUBMIT]),
            ),
            // The submit is accepted (one request), then each poll retries.
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the result call's 503",
                answer(503, &[], Body::Bytes(b"")),
                unavailable(&[("upstream_http_status", Is("503")), AFTER_SUBMIT])
                    .attempts(1 + RETRIED),
            ),
        ],
    },
    Entry {
        name: "transport",
        readme: Cells {
            answer: "connection refused, reset, cut mid-body, connect timeout, TLS failure",
            code: "UNAVAILABLE",
            reason: "`UPSTREAM_UNAVAILABLE` (gateway); `upstream_http_status` when the cut came after the response head",
            detail: "`RetryInfo` 1 s",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("UNAVAILABLE"),
        reason: Reason::Is("UPSTREAM_UNAVAILABLE", Gateway),
        detail: RETRY_1S,
        examples: &[
            example(
                "connection refused",
                provoke(Provoke::ConnectionRefused),
                transport(&[("upstream_http_status", Absent)]).attempts(0),
            ),
            example(
                "closed without an answer",
                provoke(Provoke::ConnectionClosed),
                transport(&[("upstream_http_status", Absent)]),
            ),
            example(
                "cut mid-body",
                provoke(Provoke::CutMidBody),
                transport(&[("upstream_http_status", Is("200"))]),
            ),
            example(
                "reset mid-body",
                provoke(Provoke::ResetMidBody),
                transport(&[("upstream_http_status", Is("200"))]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: connection refused",
                provoke(Provoke::ConnectionRefused),
                transport(&[("upstream_http_status", Absent)]).attempts(0),
            ),
            // Retried with the same reference id: a lost attempt may have
            // been taken, which the retry's answer then shows.
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: closed without an answer",
                provoke(Provoke::ConnectionClosed),
                transport(&[("upstream_http_status", Absent)]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the submit reset mid-body",
                provoke(Provoke::ResetMidBody),
                transport(&[("upstream_http_status", Is("200")), AFTER_SUBMIT]),
            ),
        ],
    },
    Entry {
        name: "upstream_timeout",
        readme: Cells {
            answer: "upstream slower than `upstream.timeout`",
            code: "UNAVAILABLE",
            reason: "`UPSTREAM_TIMEOUT` (gateway)",
            detail: "`RetryInfo` 1 s",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("UNAVAILABLE"),
        reason: Reason::Is("UPSTREAM_TIMEOUT", Gateway),
        detail: RETRY_1S,
        // Timeouts are not retried: a slow upstream only gets slower with
        // more load.
        examples: &[
            example(
                "slower than upstream.timeout",
                provoke(Provoke::UpstreamTimeout),
                gateway("UNAVAILABLE", "UPSTREAM_TIMEOUT")
                    .meta(&[("upstream_http_status", Absent)])
                    .detail(RETRY_1S),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: slower than upstream.timeout",
                provoke(Provoke::UpstreamTimeout),
                gateway("UNAVAILABLE", "UPSTREAM_TIMEOUT")
                    .meta(&[("upstream_http_status", Absent)])
                    .detail(RETRY_1S),
            ),
        ],
    },
    Entry {
        name: "circuit_open",
        readme: Cells {
            answer: "circuit breaker open (recent attempts kept failing)",
            code: "UNAVAILABLE",
            reason: "`UPSTREAM_CIRCUIT_OPEN` (gateway)",
            detail: "`RetryInfo` = the rest of the cool-down (1 s while a half-open probe is out); no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("UNAVAILABLE"),
        reason: Reason::Is("UPSTREAM_CIRCUIT_OPEN", Gateway),
        detail: Detail::RetryInfo(Delay::RestOfCoolDown),
        examples: &[
            example(
                "open",
                provoke(Provoke::CircuitOpen),
                gateway("UNAVAILABLE", "UPSTREAM_CIRCUIT_OPEN")
                    .meta(&[("upstream_http_status", Absent)])
                    .detail(Detail::RetryInfo(Delay::RestOfCoolDown))
                    .attempts(0),
            ),
            // One breaker for both upstream calls.
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: open",
                provoke(Provoke::CircuitOpen),
                gateway("UNAVAILABLE", "UPSTREAM_CIRCUIT_OPEN")
                    .meta(&[("upstream_http_status", Absent)])
                    .detail(Detail::RetryInfo(Delay::RestOfCoolDown))
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "bearer_token",
        readme: Cells {
            answer: "bearer token missing / wrong (`auth.tokens_file` set)",
            code: "UNAUTHENTICATED",
            reason: "`BEARER_TOKEN_MISSING` / `BEARER_TOKEN_INVALID` (gateway)",
            detail: "– ; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("UNAUTHENTICATED"),
        reason: Reason::OneOf(&["BEARER_TOKEN_MISSING", "BEARER_TOKEN_INVALID"], Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "missing",
                provoke(Provoke::BearerTokenMissing),
                gateway("UNAUTHENTICATED", "BEARER_TOKEN_MISSING").attempts(0),
            ),
            example(
                "wrong",
                provoke(Provoke::BearerTokenInvalid),
                gateway("UNAUTHENTICATED", "BEARER_TOKEN_INVALID").attempts(0),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: missing",
                provoke(Provoke::BearerTokenMissing),
                gateway("UNAUTHENTICATED", "BEARER_TOKEN_MISSING").attempts(0),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: wrong",
                provoke(Provoke::BearerTokenInvalid),
                gateway("UNAUTHENTICATED", "BEARER_TOKEN_INVALID")
                    .meta(&[NO_JOB])
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "overloaded",
        readme: Cells {
            answer: "`server.max_in_flight` calls (or `submit.max_in_flight` image-carrying calls) already in flight",
            code: "RESOURCE_EXHAUSTED",
            reason: "`OVERLOADED` (gateway); metadata `scope` = `calls` / `submits`, `limit` and `max_in_flight` = the limit reached",
            detail: "– ; refused at once, never queued",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("RESOURCE_EXHAUSTED"),
        reason: Reason::Is("OVERLOADED", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "one call allowed, one in flight",
                provoke(Provoke::Overloaded),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[
                        ("scope", Is("calls")),
                        ("limit", Is("1")),
                        ("max_in_flight", Is("1")),
                    ])
                    .attempts(0),
            ),
            on(
                Rpc::SubmitKtp,
                "one image call allowed, one in flight",
                provoke(Provoke::ImageCallsOverloaded),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[
                        ("scope", Is("submits")),
                        ("limit", Is("1")),
                        ("max_in_flight", Is("1")),
                    ])
                    .attempts(0),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: one image call allowed, one in flight",
                provoke(Provoke::ImageCallsOverloaded),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[
                        ("scope", Is("submits")),
                        ("limit", Is("1")),
                        ("max_in_flight", Is("1")),
                        NO_JOB,
                    ])
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "upstream_saturated",
        readme: Cells {
            answer: "no upstream connection slot free (`upstream.max_connections` requests to the upstream in flight) within half of `upstream.timeout`",
            code: "RESOURCE_EXHAUSTED",
            reason: "`OVERLOADED` (gateway); metadata `scope` = `upstream`, `limit` = `upstream.max_connections`",
            detail: "– ; nothing sent; not a circuit-breaker failure, not an upstream attempt in the metrics",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("RESOURCE_EXHAUSTED"),
        reason: Reason::Is("OVERLOADED", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "one slot, held by a slow request",
                provoke(Provoke::UpstreamSaturated),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[
                        ("scope", Is("upstream")),
                        ("limit", Is("1")),
                        ("upstream_http_status", Absent),
                    ])
                    .attempts(0),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: one slot, held by a slow request",
                provoke(Provoke::UpstreamSaturated),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[("scope", Is("upstream")), ("limit", Is("1"))])
                    .attempts(0),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: one slot, held by a slow request",
                provoke(Provoke::UpstreamSaturated),
                gateway("RESOURCE_EXHAUSTED", "OVERLOADED")
                    .meta(&[("scope", Is("upstream")), ("limit", Is("1")), AFTER_SUBMIT])
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "request_too_large",
        readme: Cells {
            answer: "request message over 16 KiB (`SubmitKtp`, `ExtractKtp`: over `submit.max_image_bytes` + 16 KiB), refused by the gRPC layer",
            code: "INVALID_ARGUMENT",
            reason: "`REQUEST_TOO_LARGE` (gateway)",
            detail: "– ; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("REQUEST_TOO_LARGE", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "a 20 KiB reference id",
                provoke(Provoke::LongReferenceId(20 * 1024)),
                gateway("INVALID_ARGUMENT", "REQUEST_TOO_LARGE").attempts(0),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: an image over the image calls' limit",
                provoke(Provoke::OversizedImageMessage),
                gateway("INVALID_ARGUMENT", "REQUEST_TOO_LARGE").attempts(0),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: an image over the image calls' limit",
                provoke(Provoke::OversizedImageMessage),
                gateway("INVALID_ARGUMENT", "REQUEST_TOO_LARGE")
                    .meta(&[NO_JOB])
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "request_not_decodable",
        readme: Cells {
            answer: "request message that is not valid protobuf, or whose `reference_id` is not UTF-8",
            code: "INVALID_ARGUMENT",
            reason: "`REQUEST_NOT_DECODABLE` (gateway)",
            detail: "– ; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("REQUEST_NOT_DECODABLE", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "reference_id not UTF-8",
                provoke(Provoke::ReferenceIdBytes(b"REF-\xff\xfe")),
                gateway("INVALID_ARGUMENT", "REQUEST_NOT_DECODABLE").attempts(0),
            ),
            example(
                "wrong wire type",
                provoke(Provoke::WrongWireType),
                gateway("INVALID_ARGUMENT", "REQUEST_NOT_DECODABLE").attempts(0),
            ),
        ],
    },
    Entry {
        name: "json_not_decodable",
        readme: Cells {
            answer: "Connect JSON request with a member the message has no field for, or a value of the wrong kind (or not JSON at all)",
            code: "INVALID_ARGUMENT",
            reason: "`REQUEST_NOT_DECODABLE` (gateway)",
            detail: "`BadRequest` violation on the field (an unknown member as the caller wrote it; none when the body is not JSON); never the value; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("INVALID_ARGUMENT"),
        reason: Reason::Is("REQUEST_NOT_DECODABLE", Gateway),
        detail: Detail::BadRequestOneOf(&["shoeSize", "wait"]),
        examples: &[
            example(
                "an unknown member",
                provoke(Provoke::JsonUnknownMember("shoeSize")),
                gateway("INVALID_ARGUMENT", "REQUEST_NOT_DECODABLE")
                    .detail(Detail::BadRequest { field: "shoeSize" })
                    .attempts(0),
            ),
            example(
                "a string for wait",
                provoke(Provoke::JsonWrongKind("wait")),
                gateway("INVALID_ARGUMENT", "REQUEST_NOT_DECODABLE")
                    .detail(Detail::BadRequest { field: "wait" })
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "request_refused",
        readme: Cells {
            answer: "anything else the gRPC layer refuses before the gateway's code runs (e.g. an unsupported compression)",
            code: "the gRPC layer's code",
            reason: "`REQUEST_REFUSED` (gateway)",
            detail: "– ; no upstream call",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::AsRefused,
        reason: Reason::Is("REQUEST_REFUSED", Gateway),
        detail: Detail::None,
        examples: &[example(
            "gzip",
            provoke(Provoke::UnsupportedCompression),
            gateway("UNIMPLEMENTED", "REQUEST_REFUSED").attempts(0),
        )],
    },
    Entry {
        name: "request_read_timeout",
        readme: Cells {
            answer: "the request message not fully received within `server.request_read_timeout` (30 s) of its request headers (a client that stalls mid-body)",
            code: "DEADLINE_EXCEEDED",
            reason: "`REQUEST_READ_TIMEOUT` (gateway)",
            detail: "– ; no upstream call; the call's place among `server.max_in_flight` and its image slot are freed",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("DEADLINE_EXCEEDED"),
        reason: Reason::Is("REQUEST_READ_TIMEOUT", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "headers, then half a message, then nothing",
                provoke(Provoke::StalledBody),
                gateway("DEADLINE_EXCEEDED", "REQUEST_READ_TIMEOUT")
                    .meta(&[NO_JOB])
                    .attempts(0),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: part of an image, then nothing",
                provoke(Provoke::StalledBody),
                gateway("DEADLINE_EXCEEDED", "REQUEST_READ_TIMEOUT")
                    .meta(&[NO_JOB])
                    .attempts(0),
            ),
        ],
    },
    Entry {
        name: "caller_deadline",
        readme: Cells {
            answer: "the caller's deadline (`grpc-timeout`) runs out first",
            code: "DEADLINE_EXCEEDED",
            reason: "`DEADLINE_EXCEEDED` (gateway)",
            detail: "– ; the upstream request is dropped (its connection closed), not left running",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("DEADLINE_EXCEEDED"),
        reason: Reason::Is("DEADLINE_EXCEEDED", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "shorter than the upstream's answer",
                provoke(Provoke::CallerDeadline),
                gateway("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED")
                    .meta(&[("upstream_http_status", Absent)]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: shorter than the upstream's answer",
                provoke(Provoke::CallerDeadline),
                gateway("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED")
                    .meta(&[("upstream_http_status", Absent)]),
            ),
        ],
    },
    Entry {
        name: "bad_response",
        readme: Cells {
            answer: "unparseable / wrong-shaped / oversized body, unexpected status (1xx, 3xx, 400/404 without the documented code, other 4xx, other 5xx)",
            code: "INTERNAL",
            reason: "`UPSTREAM_BAD_RESPONSE` (gateway); metadata `problem` = `not_json` / `not_an_object` / `wrong_shape` / `no_data` / `too_large` for bodies",
            detail: "–",
        },
        statuses: &[Range(200, 299), Exact(400), Exact(404), Other],
        submit_statuses: &[Range(200, 299), Exact(400), Exact(404), Other],
        code: GrpcCode::Is("INTERNAL"),
        reason: Reason::Is("UPSTREAM_BAD_RESPONSE", Gateway),
        detail: Detail::None,
        examples: &[
            example(
                "HTML",
                answer(
                    200,
                    &[("Content-Type", "text/html")],
                    Body::Bytes(b"<html/>"),
                ),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            example(
                "empty",
                answer(200, &[], Body::Bytes(b"")),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            example(
                "truncated JSON",
                json(200, r#"{"data": {"nik": "3506"#),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            example(
                "nested too deep",
                json(
                    200,
                    concat!(
                        r#"{"data": {"nik": "1", "x": "#,
                        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                        "}}",
                    ),
                ),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            example(
                "not UTF-8",
                answer(200, &[], Body::Bytes(b"{\"data\":{\"nik\":\"\xff\"}}")),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            example(
                "an array",
                json(200, "[1, 2]"),
                bad_response(&[HTTP_200, ("problem", Is("not_an_object"))]),
            ),
            example(
                "nik is a number",
                json(200, r#"{"data": {"nik": 3506042602660001}}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            example(
                "data is an array",
                json(200, r#"{"data": ["A", "B"]}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            example(
                "a quality flag is a string",
                json(200, r#"{"data": {"image_quality": {"blur": "yes"}}}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            example(
                "error_code is a number",
                json(200, r#"{"data": {}, "error_code": 42}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            example(
                "error_code is not a token",
                json(200, r#"{"data": {}, "error_code": "FAIL ON 1"}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            example(
                "no data",
                json(200, r#"{"message": "ok"}"#),
                bad_response(&[HTTP_200, ("problem", Is("no_data"))]),
            ),
            example(
                "data is null",
                json(200, r#"{"message": "ok", "data": null}"#),
                bad_response(&[HTTP_200, ("problem", Is("no_data"))]),
            ),
            example(
                "2 MiB, announced",
                answer(
                    200,
                    &[],
                    Body::Filler {
                        len: 2 * MIB,
                        chunked: false,
                    },
                ),
                bad_response(&[HTTP_200, ("problem", Is("too_large"))]),
            ),
            example(
                "2 MiB, chunked",
                answer(
                    200,
                    &[],
                    Body::Filler {
                        len: 2 * MIB,
                        chunked: true,
                    },
                ),
                bad_response(&[HTTP_200, ("problem", Is("too_large"))]),
            ),
            example(
                "302",
                answer(302, &[("Location", "http://elsewhere/")], Body::Bytes(b"")),
                bad_response(&[
                    ("upstream_http_status", Is("302")),
                    ("problem", Absent),
                    ("upstream_error_code", Absent),
                ]),
            ),
            example(
                "400 with another error_code",
                json(400, r#"{"error_code": "INVALID_PAYLOAD"}"#),
                bad_response(&[
                    ("upstream_http_status", Is("400")),
                    ("problem", Absent),
                    ("upstream_error_code", Is("INVALID_PAYLOAD")),
                ]),
            ),
            example(
                "404 with another error_code",
                json(404, r#"{"error_code": "ROUTE_NOT_FOUND"}"#),
                bad_response(&[
                    ("upstream_http_status", Is("404")),
                    ("problem", Absent),
                    ("upstream_error_code", Is("ROUTE_NOT_FOUND")),
                ]),
            ),
            example(
                "404 without an error_code",
                json(404, r#"{"message": "Not Found"}"#),
                bad_response(&[
                    ("upstream_http_status", Is("404")),
                    ("problem", Absent),
                    ("upstream_error_code", Absent),
                ]),
            ),
            example(
                "418",
                answer(418, &[], Body::Bytes(b"")),
                bad_response(&[
                    ("upstream_http_status", Is("418")),
                    ("problem", Absent),
                    ("upstream_error_code", Absent),
                ]),
            ),
            example(
                "501",
                json(501, r#"{"message": "Not Implemented"}"#),
                bad_response(&[
                    ("upstream_http_status", Is("501")),
                    ("problem", Absent),
                    ("upstream_error_code", Absent),
                ]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: HTML",
                submit_answer(
                    200,
                    &[("Content-Type", "text/html")],
                    Body::Bytes(b"<html>accepted</html>"),
                ),
                bad_response(&[HTTP_200, ("problem", Is("not_json"))]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: an array",
                submit_json(200, r#"[{"reference_id": "X"}]"#),
                bad_response(&[HTTP_200, ("problem", Is("not_an_object"))]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: data.reference_id is a number",
                submit_json(200, r#"{"data": {"reference_id": 42}}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            // The caller would read this id back: it must be one the
            // gateway could have sent.
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: data.reference_id is blank",
                submit_json(200, r#"{"data": {"reference_id": "   "}}"#),
                bad_response(&[HTTP_200, ("problem", Is("wrong_shape"))]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: 404 with the result call's not-found code",
                submit_json(
                    404,
                    r#"{"error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}"#,
                ),
                bad_response(&[
                    ("upstream_http_status", Is("404")),
                    ("problem", Absent),
                    (
                        "upstream_error_code",
                        Is("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"),
                    ),
                ]),
            ),
            on(
                Rpc::SubmitKtp,
                "SubmitKtp: 400 with a code of neither submit row",
                submit_json(400, r#"{"error_code": "INVALID_SANDBOX_CODE"}"#),
                bad_response(&[
                    ("upstream_http_status", Is("400")),
                    ("problem", Absent),
                    ("upstream_error_code", Is("INVALID_SANDBOX_CODE")),
                ]),
            ),
            on(
                Rpc::ExtractKtp,
                "ExtractKtp: the submit answers 418",
                submit_answer(418, &[], Body::Bytes(b"")),
                bad_response(&[("upstream_http_status", Is("418")), AFTER_SUBMIT]),
            ),
        ],
    },
    Entry {
        name: "shared_request_lost",
        readme: Cells {
            answer: "the shared (coalesced) upstream request, or the shared poll of a wait (`wait = true`, `ExtractKtp`), the call waited on panicked or was aborted: a gateway bug",
            code: "INTERNAL",
            reason: "`INTERNAL_ERROR` (gateway)",
            detail: "– ; logged at error level",
        },
        statuses: &[],
        submit_statuses: &[],
        code: GrpcCode::Is("INTERNAL"),
        reason: Reason::Is("INTERNAL_ERROR", Gateway),
        detail: Detail::None,
        examples: &[example(
            "the shared request panicked",
            provoke(Provoke::SharedRequestLost),
            gateway("INTERNAL", "INTERNAL_ERROR").meta(&[("upstream_http_status", Absent)]),
        )],
    },
];

const fn invalid_reference_id(metadata: &'static [(&'static str, Meta)]) -> Expect {
    gateway("INVALID_ARGUMENT", "INVALID_REFERENCE_ID")
        .meta(metadata)
        .detail(ON_REFERENCE_ID)
        .attempts(0)
}

/// A 5xx without an `error_code`, after every attempt.
const fn unavailable(metadata: &'static [(&'static str, Meta)]) -> Expect {
    gateway("UNAVAILABLE", "UPSTREAM_UNAVAILABLE")
        .meta(metadata)
        .detail(RETRY_1S)
        .attempts(RETRIED)
}

/// A transport failure, retried.
const fn transport(metadata: &'static [(&'static str, Meta)]) -> Expect {
    gateway("UNAVAILABLE", "UPSTREAM_UNAVAILABLE")
        .meta(metadata)
        .detail(RETRY_1S)
        .attempts(RETRIED)
}

/// An answer the gateway cannot use.
const fn bad_response(metadata: &'static [(&'static str, Meta)]) -> Expect {
    gateway("INTERNAL", "UPSTREAM_BAD_RESPONSE").meta(metadata)
}
