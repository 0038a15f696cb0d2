//! The rows of the asynchronous flow (`SubmitKtp`, a waiting `GetKtpResult`,
//! `ExtractKtp`), kept apart so that the table stays readable; `TABLE`
//! places each in the README's order.

use super::*;

const ON_IMAGE: Detail = Detail::BadRequest { field: "image" };
const ON_IMAGE_URL: Detail = Detail::BadRequest { field: "image_url" };

/// A local image check failure: never reaches the upstream.
const fn invalid_image(constraint: &'static [(&'static str, Meta)], detail: Detail) -> Expect {
    gateway("INVALID_ARGUMENT", "INVALID_IMAGE")
        .meta(constraint)
        .detail(detail)
        .attempts(0)
}

const REQUIRED: &[(&str, Meta)] = &[
    ("constraint", Is("required")),
    ("upstream_http_status", Absent),
];
const SIZE: &[(&str, Meta)] = &[("constraint", Is("size")), ("upstream_http_status", Absent)];
const FORMAT: &[(&str, Meta)] = &[
    ("constraint", Is("format")),
    ("upstream_http_status", Absent),
];
const DIMENSIONS: &[(&str, Meta)] = &[
    ("constraint", Is("dimensions")),
    ("upstream_http_status", Absent),
];
const URL: &[(&str, Meta)] = &[("constraint", Is("url")), ("upstream_http_status", Absent)];
/// For `ExtractKtp`: no job either.
const REQUIRED_NO_JOB: &[(&str, Meta)] = &[("constraint", Is("required")), NO_JOB];
const DIMENSIONS_NO_JOB: &[(&str, Meta)] = &[("constraint", Is("dimensions")), NO_JOB];

const fn image(name: &'static str, case: ImageCase, expect: Expect) -> Example {
    on(Rpc::SubmitKtp, name, provoke(Provoke::Image(case)), expect)
}

pub(super) const INVALID_IMAGE: Entry = Entry {
    name: "invalid_image",
    readme: Cells {
        answer: "local image check failure (`SubmitKtp`, `ExtractKtp`: no image, an empty one, over `submit.max_image_bytes`, not JPEG or PNG, under 720×480, `image_url` not an absolute https URL of at most 2,048 bytes)",
        code: "INVALID_ARGUMENT",
        reason: "`INVALID_IMAGE` (gateway); metadata `constraint` = `required` / `size` / `format` / `dimensions` / `url`",
        detail: "`BadRequest` violation on `image` or `image_url`; no upstream call",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("INVALID_ARGUMENT"),
    reason: Reason::Is("INVALID_IMAGE", Gateway),
    detail: Detail::BadRequestOneOf(&["image", "image_url"]),
    examples: &[
        image(
            "no image",
            ImageCase::Missing,
            invalid_image(REQUIRED, ON_IMAGE),
        ),
        image(
            "an empty image",
            ImageCase::Empty,
            invalid_image(REQUIRED, ON_IMAGE),
        ),
        image(
            "one byte over submit.max_image_bytes",
            ImageCase::OverLimit,
            invalid_image(SIZE, ON_IMAGE),
        ),
        image(
            "a GIF",
            ImageCase::Bytes(b"GIF89a\xd0\x02\xe0\x01\x80\x00\x00"),
            invalid_image(FORMAT, ON_IMAGE),
        ),
        image(
            "PNG magic bytes without a header",
            ImageCase::Bytes(b"\x89PNG\r\n\x1a\n"),
            invalid_image(FORMAT, ON_IMAGE),
        ),
        image(
            "a PNG of 719x480",
            ImageCase::Png(719, 480),
            invalid_image(DIMENSIONS, ON_IMAGE),
        ),
        image(
            "a portrait PNG of 479x720",
            ImageCase::Png(479, 720),
            invalid_image(DIMENSIONS, ON_IMAGE),
        ),
        image(
            "a JPEG of 1280x479",
            ImageCase::Jpeg(1280, 479),
            invalid_image(DIMENSIONS, ON_IMAGE),
        ),
        image(
            "an http URL",
            ImageCase::Url("http://images.example.com/ktp.png"),
            invalid_image(URL, ON_IMAGE_URL),
        ),
        image(
            "a relative URL",
            ImageCase::Url("/uploads/ktp.png"),
            invalid_image(URL, ON_IMAGE_URL),
        ),
        image(
            "https without a host",
            ImageCase::Url("https:///ktp.png"),
            invalid_image(URL, ON_IMAGE_URL),
        ),
        image(
            "a URL of 2,049 bytes",
            ImageCase::LongUrl(2049),
            invalid_image(URL, ON_IMAGE_URL),
        ),
        on(
            Rpc::ExtractKtp,
            "ExtractKtp: no image",
            provoke(Provoke::Image(ImageCase::Missing)),
            invalid_image(REQUIRED_NO_JOB, ON_IMAGE),
        ),
        on(
            Rpc::ExtractKtp,
            "ExtractKtp: a PNG of 720x479",
            provoke(Provoke::Image(ImageCase::Png(720, 479))),
            invalid_image(DIMENSIONS_NO_JOB, ON_IMAGE),
        ),
    ],
};

const EXISTS: &str = r#"{"message": "reference_id already exists", "error_code": "INVALID_PAYLOAD_REFERENCE_ID_EXISTS"}"#;

const fn exists() -> Expect {
    upstream("ALREADY_EXISTS", "INVALID_PAYLOAD_REFERENCE_ID_EXISTS")
        .meta(&[("upstream_http_status", Is("400"))])
        .detail(RESOURCE_INFO)
}

pub(super) const SUBMIT_EXISTS: Entry = Entry {
    name: "submit_exists",
    readme: Cells {
        answer: "submit: 400 `INVALID_PAYLOAD_REFERENCE_ID_EXISTS`",
        code: "ALREADY_EXISTS",
        reason: "`INVALID_PAYLOAD_REFERENCE_ID_EXISTS` (upstream)",
        detail: "`ResourceInfo` (`resource_type` `ktp.v1.KtpResult`, `resource_name` = the reference id); OK instead when it answers a retry after an attempt whose outcome was lost (that attempt was taken)",
    },
    statuses: &[],
    submit_statuses: &[Exact(400)],
    code: GrpcCode::Is("ALREADY_EXISTS"),
    reason: Reason::Is("INVALID_PAYLOAD_REFERENCE_ID_EXISTS", Upstream),
    detail: RESOURCE_INFO,
    examples: &[
        on(
            Rpc::SubmitKtp,
            "SubmitKtp",
            submit_json(400, EXISTS),
            exists(),
        ),
        on(
            Rpc::ExtractKtp,
            "ExtractKtp",
            submit_json(400, EXISTS),
            upstream("ALREADY_EXISTS", "INVALID_PAYLOAD_REFERENCE_ID_EXISTS")
                .meta(&[("upstream_http_status", Is("400")), AFTER_SUBMIT])
                .detail(RESOURCE_INFO),
        ),
        // The exception the row names: the lost attempt was the one taken.
        on(
            Rpc::SubmitKtp,
            "SubmitKtp: a retry after a lost attempt is OK",
            Trigger::SubmitAfterLostAttempt(Answer {
                status: 400,
                headers: &[],
                body: Body::Json(EXISTS),
            }),
            Expect::ok(2),
        ),
    ],
};

const fn refused(code: &'static str, field: &'static str) -> Expect {
    upstream("INVALID_ARGUMENT", code)
        .meta(&[("upstream_http_status", Is("400"))])
        .detail(Detail::BadRequest { field })
}

pub(super) const SUBMIT_INVALID_PAYLOAD: Entry = Entry {
    name: "submit_invalid_payload",
    readme: Cells {
        answer: "submit: 400 any other `INVALID_PAYLOAD*`, or `MISSING_PAYLOAD_IMAGE`",
        code: "INVALID_ARGUMENT",
        reason: "that code, as given (upstream)",
        detail: "`BadRequest` violation on the field the code names (`reference_id`, `validate_quality`; else the image's: `image`, or `image_url` for a URL submit)",
    },
    statuses: &[],
    submit_statuses: &[Exact(400)],
    code: GrpcCode::Is("INVALID_ARGUMENT"),
    reason: Reason::UpstreamCode,
    detail: Detail::BadRequestOneOf(&["reference_id", "validate_quality", "image"]),
    examples: &[
        on(
            Rpc::SubmitKtp,
            "INVALID_PAYLOAD_REFERENCE_ID",
            submit_json(
                400,
                r#"{"message": "reference_id too long", "error_code": "INVALID_PAYLOAD_REFERENCE_ID"}"#,
            ),
            refused("INVALID_PAYLOAD_REFERENCE_ID", "reference_id"),
        ),
        on(
            Rpc::SubmitKtp,
            "INVALID_PAYLOAD_QUALITY_VALIDATION_DEPENDENCY",
            submit_json(
                400,
                r#"{"error_code": "INVALID_PAYLOAD_QUALITY_VALIDATION_DEPENDENCY"}"#,
            ),
            refused(
                "INVALID_PAYLOAD_QUALITY_VALIDATION_DEPENDENCY",
                "validate_quality",
            ),
        ),
        on(
            Rpc::SubmitKtp,
            "INVALID_PAYLOAD_IMAGE_FORMAT",
            submit_json(
                400,
                r#"{"message": "image cannot be decoded", "error_code": "INVALID_PAYLOAD_IMAGE_FORMAT"}"#,
            ),
            refused("INVALID_PAYLOAD_IMAGE_FORMAT", "image"),
        ),
        on(
            Rpc::SubmitKtp,
            "INVALID_PAYLOAD_IMAGE_SIZE",
            submit_json(400, r#"{"error_code": "INVALID_PAYLOAD_IMAGE_SIZE"}"#),
            refused("INVALID_PAYLOAD_IMAGE_SIZE", "image"),
        ),
        on(
            Rpc::SubmitKtp,
            "MISSING_PAYLOAD_IMAGE",
            submit_json(400, r#"{"error_code": "MISSING_PAYLOAD_IMAGE"}"#),
            refused("MISSING_PAYLOAD_IMAGE", "image"),
        ),
        on(
            Rpc::SubmitKtp,
            "plain INVALID_PAYLOAD",
            submit_json(400, r#"{"error_code": "INVALID_PAYLOAD"}"#),
            refused("INVALID_PAYLOAD", "image"),
        ),
        on(
            Rpc::SubmitKtp,
            "INVALID_PAYLOAD_CALLBACK_URL, a field the gateway never sends",
            submit_json(400, r#"{"error_code": "INVALID_PAYLOAD_CALLBACK_URL"}"#),
            refused("INVALID_PAYLOAD_CALLBACK_URL", "image"),
        ),
        on(
            Rpc::ExtractKtp,
            "ExtractKtp: INVALID_PAYLOAD_IMAGE_FORMAT",
            submit_json(400, r#"{"error_code": "INVALID_PAYLOAD_IMAGE_FORMAT"}"#),
            upstream("INVALID_ARGUMENT", "INVALID_PAYLOAD_IMAGE_FORMAT")
                .meta(&[("upstream_http_status", Is("400")), AFTER_SUBMIT])
                .detail(ON_IMAGE),
        ),
    ],
};

pub(super) const NOT_FOUND_AFTER_WAIT: Entry = Entry {
    name: "not_found_after_wait",
    readme: Cells {
        answer: "`GetKtpResult` with `wait`: still 404 `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND` when the wait ends",
        code: "NOT_FOUND",
        reason: "`INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND` (upstream); metadata `waited_ms`",
        detail: "`ResourceInfo`, as without `wait`",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("NOT_FOUND"),
    reason: Reason::Is("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND", Upstream),
    detail: RESOURCE_INFO,
    examples: &[example(
        "wait.max_wait ends it",
        provoke(Provoke::WaitEnds),
        upstream("NOT_FOUND", "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")
            .meta(&[
                ("upstream_http_status", Is("404")),
                ("waited_ms", Meta::Number),
            ])
            .detail(RESOURCE_INFO),
    )],
};

pub(super) const NO_ANSWER_IN_WAIT: Entry = Entry {
    name: "no_answer_in_wait",
    readme: Cells {
        answer: "`GetKtpResult` with `wait`: no poll answered before `wait.max_wait` ended the wait (an upstream slower than the wait)",
        code: "NOT_FOUND",
        reason: "`RESULT_NOT_READY` (gateway); metadata `waited_ms`",
        detail: "– ; no `upstream_http_status`; the caller's own deadline stays DEADLINE_EXCEEDED",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("NOT_FOUND"),
    reason: Reason::Is("RESULT_NOT_READY", Gateway),
    detail: Detail::None,
    // The one poll is still out when the wait ends.
    examples: &[example(
        "wait.max_wait ends it before the slow upstream answers",
        provoke(Provoke::NoAnswerInWait),
        gateway("NOT_FOUND", "RESULT_NOT_READY").meta(&[
            ("upstream_http_status", Absent),
            ("waited_ms", Meta::Number),
        ]),
    )],
};

/// The answer of a wait the shutdown ended: right away, again.
const RETRY_NOW: Detail = Detail::RetryInfo(Delay::Exactly(Duration::ZERO));

pub(super) const SHUTTING_DOWN_WAIT: Entry = Entry {
    name: "shutting_down_wait",
    readme: Cells {
        answer: "`GetKtpResult` with `wait`: the gateway's shutdown reached the end of `server.drain_delay` while the call waited (or the call started waiting after it)",
        code: "UNAVAILABLE",
        reason: "`SHUTTING_DOWN` (gateway); metadata `reference_id`",
        detail: "`RetryInfo` 0 s; retry the call as is (it reaches another pod)",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("UNAVAILABLE"),
    reason: Reason::Is("SHUTTING_DOWN", Gateway),
    detail: RETRY_NOW,
    // The first poll, then the shutdown.
    examples: &[example(
        "SIGTERM while the job runs",
        provoke(Provoke::ShutdownWhileWaiting),
        gateway("UNAVAILABLE", "SHUTTING_DOWN")
            .meta(&[("reference_id", Meta::ReferenceId)])
            .detail(RETRY_NOW),
    )],
};

pub(super) const SHUTTING_DOWN_EXTRACT: Entry = Entry {
    name: "shutting_down_extract",
    readme: Cells {
        answer: "`ExtractKtp`: the gateway's shutdown reached the end of `server.drain_delay` while the call waited for its job",
        code: "ABORTED",
        reason: "`SHUTTING_DOWN` (gateway); metadata `reference_id`",
        detail: "`RetryInfo` 0 s; not as is (that would submit the image again): resume with `GetKtpResult(wait = true)` on the id",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("ABORTED"),
    reason: Reason::Is("SHUTTING_DOWN", Gateway),
    detail: RETRY_NOW,
    // One submit, one poll, then the shutdown.
    examples: &[on(
        Rpc::ExtractKtp,
        "SIGTERM while the job runs",
        provoke(Provoke::ShutdownWhileWaiting),
        gateway("ABORTED", "SHUTTING_DOWN")
            .meta(&[AFTER_SUBMIT])
            .detail(RETRY_NOW)
            .attempts(2),
    )],
};

pub(super) const RESULT_NOT_READY: Entry = Entry {
    name: "result_not_ready",
    readme: Cells {
        answer: "`ExtractKtp`: the job's result not ready when the wait ends (the caller's deadline, or `wait.max_wait`)",
        code: "DEADLINE_EXCEEDED",
        reason: "`RESULT_NOT_READY` (gateway); metadata `reference_id`, `waited_ms`",
        detail: "– ; the job is not lost: resume with `GetKtpResult(wait = true)`",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("DEADLINE_EXCEEDED"),
    reason: Reason::Is("RESULT_NOT_READY", Gateway),
    detail: Detail::None,
    // One submit, one poll.
    examples: &[on(
        Rpc::ExtractKtp,
        "wait.max_wait ends it",
        provoke(Provoke::ResultNotReady),
        gateway("DEADLINE_EXCEEDED", "RESULT_NOT_READY")
            .meta(&[AFTER_SUBMIT, ("waited_ms", Meta::Number)])
            .attempts(2),
    )],
};
