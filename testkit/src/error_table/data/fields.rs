//! The rows of the answer's field selection (`read_mask`, and the caller's
//! allowance from the tokens file): both are refused before any upstream
//! call, so nothing is billed for an answer the caller could not get.

use super::*;

/// `GetKtpResult` checks its id before the mask, so its refusal names the
/// (valid) id, as every error after that does; `ExtractKtp` checks the mask
/// before its image and id, so it names no job.
const MASK_AFTER_ID: &[(&str, Meta)] = &[("upstream_http_status", Absent), NAMES_ID];
const MASK_BEFORE_ID: &[(&str, Meta)] = &[("upstream_http_status", Absent), NO_JOB];

const fn read_mask(name: &'static str, rpc: Rpc, paths: &'static [&'static str]) -> Example {
    on(
        rpc,
        name,
        provoke(Provoke::ReadMask(paths)),
        gateway("INVALID_ARGUMENT", "INVALID_READ_MASK")
            .meta(match rpc {
                Rpc::GetKtpResult => MASK_AFTER_ID,
                _ => MASK_BEFORE_ID,
            })
            .detail(ON_READ_MASK)
            .attempts(0),
    )
}

const ON_READ_MASK: Detail = Detail::BadRequest { field: "read_mask" };

pub(super) const INVALID_READ_MASK: Entry = Entry {
    name: "invalid_read_mask",
    readme: Cells {
        answer: "`read_mask` path that is no top-level field of `GetKtpResultResponse` (unknown, nested, misspelt)",
        code: "INVALID_ARGUMENT",
        reason: "`INVALID_READ_MASK` (gateway); metadata `path` = the path (its first 64 bytes)",
        detail: "`BadRequest` violation on `read_mask`; no upstream call",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("INVALID_ARGUMENT"),
    reason: Reason::Is("INVALID_READ_MASK", Gateway),
    detail: ON_READ_MASK,
    examples: &[
        read_mask("an unknown field", Rpc::GetKtpResult, &["nik", "dob"]),
        read_mask("a nested path", Rpc::GetKtpResult, &["checks.nik_format"]),
        read_mask(
            "ExtractKtp: a camelCase name",
            Rpc::ExtractKtp,
            &["fullName"],
        ),
    ],
};

pub(super) const FIELD_NOT_ALLOWED: Entry = Entry {
    name: "field_not_allowed",
    readme: Cells {
        answer: "`read_mask` names a field outside the caller's allowance (`fields=` of its token's line in `auth.tokens_file`)",
        code: "PERMISSION_DENIED",
        reason: "`FIELD_NOT_ALLOWED` (gateway); metadata `field` = the field",
        detail: "no upstream call",
    },
    statuses: &[],
    submit_statuses: &[],
    code: GrpcCode::Is("PERMISSION_DENIED"),
    reason: Reason::Is("FIELD_NOT_ALLOWED", Gateway),
    detail: Detail::None,
    examples: &[
        example(
            "address, for a caller allowed nik and full_name",
            provoke(Provoke::FieldNotAllowed),
            not_allowed(NAMES_ID),
        ),
        on(
            Rpc::ExtractKtp,
            "ExtractKtp: address, for a caller allowed nik and full_name",
            provoke(Provoke::FieldNotAllowed),
            not_allowed(NO_JOB),
        ),
    ],
};

/// As for the mask: `reference_id` names the job on `GetKtpResult` (the id
/// is checked first), none on `ExtractKtp`.
const fn not_allowed(job: (&'static str, Meta)) -> Expect {
    gateway("PERMISSION_DENIED", "FIELD_NOT_ALLOWED")
        .meta(match job.1 {
            Absent => &[
                ("field", Is("address")),
                ("upstream_http_status", Absent),
                NO_JOB,
            ],
            _ => &[
                ("field", Is("address")),
                ("upstream_http_status", Absent),
                NAMES_ID,
            ],
        })
        .attempts(0)
}
