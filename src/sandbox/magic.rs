//! The sandbox's magic reference ids, in one table: each id and what the
//! sandbox answers for it. The vendor's own sandbox knows `REFERENCE_ID_KTP`
//! with its quality-flag variants (B blur, D dark, F flashlight, G
//! grayscale) and their `_V` forms (quality validation was on at submit);
//! the `REFERENCE_ID_ERROR_*` ids are ours, one per documented failure.

use std::time::Duration;

/// How long [`Canned::Slow`] makes the caller wait: longer than any sensible
/// `upstream.timeout`, so it shows the timeout path.
pub const SLOW_DELAY: Duration = Duration::from_secs(60);

/// What the sandbox answers for a magic id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    /// 200 with the fictional card holder and these quality flags (letters
    /// of `BDFG`); with `validated` and any flag, a 200 `FAIL_ON_1` instead.
    Card {
        /// `B`lur, `D`ark, `F`lashlight, `G`rayscale: the flags detected.
        flags: &'static str,
        /// Quality validation was asked for at submit, so a flag fails the job.
        validated: bool,
    },
    /// This HTTP status with this top-level `error_code` (none when `None`)
    /// and message; a 200 also carries an empty `data`.
    Reply {
        /// The HTTP status.
        status: u16,
        /// The top-level `error_code`, as the vendor spells it.
        error_code: Option<&'static str>,
        /// The top-level `message`.
        message: &'static str,
    },
    /// 429 with `Retry-After` of this many seconds.
    RateLimited {
        /// Seconds, the form of `Retry-After` the vendor documents.
        retry_after: u64,
    },
    /// The clean card, after [`SLOW_DELAY`].
    Slow,
    /// The clean card with one field that its NIK disagrees with, so that
    /// callers can see each consistency check fail.
    Inconsistent(Mismatch),
}

/// What [`Canned::Inconsistent`] changes on the clean card, whose NIK
/// (`3273016505900002`: Jawa Barat, a woman born 25-05-1990) agrees with
/// every other field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// `date_of_birth` 26-05-1990: `nik_birth_date` fails.
    BirthDate,
    /// `gender` LAKI-LAKI: `nik_gender` fails.
    Gender,
    /// `state` PROVINSI JAWA TIMUR: `nik_province` fails.
    Province,
    /// The NIK read with a letter O for a zero: `nik_format` fails, and the
    /// other checks cannot be made (NOT_CHECKED).
    MalformedNik,
}

impl Mismatch {
    /// The field changed, and its new value.
    pub fn change(self) -> (&'static str, &'static str) {
        match self {
            Self::BirthDate => ("date_of_birth", "26-05-1990"),
            Self::Gender => ("gender", "LAKI-LAKI"),
            Self::Province => ("state", "PROVINSI JAWA TIMUR"),
            Self::MalformedNik => ("nik", "32730165059O0002"),
        }
    }
}

const fn card(flags: &'static str, validated: bool) -> Canned {
    Canned::Card { flags, validated }
}

const fn reply(status: u16, error_code: Option<&'static str>, message: &'static str) -> Canned {
    Canned::Reply {
        status,
        error_code,
        message,
    }
}

/// Every magic id and its answer; any other id answers 400
/// `INVALID_SANDBOX_CODE`, as the vendor's sandbox does.
pub const MAGIC_IDS: &[(&str, Canned)] = &[
    ("REFERENCE_ID_KTP", card("", false)),
    ("REFERENCE_ID_KTP_B", card("B", false)),
    ("REFERENCE_ID_KTP_D", card("D", false)),
    ("REFERENCE_ID_KTP_F", card("F", false)),
    ("REFERENCE_ID_KTP_G", card("G", false)),
    ("REFERENCE_ID_KTP_BD", card("BD", false)),
    ("REFERENCE_ID_KTP_BF", card("BF", false)),
    ("REFERENCE_ID_KTP_BG", card("BG", false)),
    ("REFERENCE_ID_KTP_DG", card("DG", false)),
    ("REFERENCE_ID_KTP_FG", card("FG", false)),
    ("REFERENCE_ID_KTP_V", card("", true)),
    ("REFERENCE_ID_KTP_B_V", card("B", true)),
    ("REFERENCE_ID_KTP_D_V", card("D", true)),
    ("REFERENCE_ID_KTP_F_V", card("F", true)),
    ("REFERENCE_ID_KTP_G_V", card("G", true)),
    ("REFERENCE_ID_KTP_BD_V", card("BD", true)),
    ("REFERENCE_ID_KTP_BF_V", card("BF", true)),
    ("REFERENCE_ID_KTP_BG_V", card("BG", true)),
    ("REFERENCE_ID_KTP_DG_V", card("DG", true)),
    ("REFERENCE_ID_KTP_FG_V", card("FG", true)),
    (
        "REFERENCE_ID_ERROR_NOT_FOUND",
        reply(
            404,
            Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"),
            "Reference ID not found",
        ),
    ),
    (
        "REFERENCE_ID_ERROR_KTP_NOT_DETECTED",
        reply(200, Some("KTP_NOT_DETECTED"), "ktp not detected"),
    ),
    (
        "REFERENCE_ID_ERROR_JOB_FAILED",
        reply(200, Some("INTERNAL_SERVER_ERROR"), "internal server error"),
    ),
    (
        "REFERENCE_ID_ERROR_INVALID",
        reply(
            400,
            Some("INVALID_PAYLOAD_REFERENCE_ID"),
            "reference_id is too short/too long",
        ),
    ),
    (
        "REFERENCE_ID_ERROR_UNAUTHORIZED",
        reply(401, None, "Authorization failed"),
    ),
    (
        "REFERENCE_ID_ERROR_QUOTA",
        reply(403, Some("INSUFFICIENT_QUOTA"), "Insufficient quota"),
    ),
    (
        "REFERENCE_ID_ERROR_RATE_LIMITED",
        Canned::RateLimited { retry_after: 2 },
    ),
    (
        "REFERENCE_ID_ERROR_SERVER",
        reply(500, None, "Internal server error"),
    ),
    ("REFERENCE_ID_ERROR_SLOW", Canned::Slow),
    (
        "REFERENCE_ID_KTP_NIK_BIRTH_DATE_MISMATCH",
        Canned::Inconsistent(Mismatch::BirthDate),
    ),
    (
        "REFERENCE_ID_KTP_NIK_GENDER_MISMATCH",
        Canned::Inconsistent(Mismatch::Gender),
    ),
    (
        "REFERENCE_ID_KTP_NIK_PROVINCE_MISMATCH",
        Canned::Inconsistent(Mismatch::Province),
    ),
    (
        "REFERENCE_ID_KTP_NIK_MALFORMED",
        Canned::Inconsistent(Mismatch::MalformedNik),
    ),
];

/// The canned answer for `id`, if it is a magic id of the result call.
pub fn lookup(id: &str) -> Option<Canned> {
    find(MAGIC_IDS, id)
}

/// The vendor sandbox's magic `reference_id` values of the submit call, each
/// refused as the vendor's sandbox refuses it. Any other id is accepted.
pub const SUBMIT_REFERENCE_IDS: &[(&str, Canned)] = &[
    (
        "REFERENCE_ID_EXIST",
        reply(
            400,
            Some("INVALID_PAYLOAD_REFERENCE_ID_EXISTS"),
            "reference_id already exists",
        ),
    ),
    (
        "REFERENCE_ID_TOO_LONG",
        reply(
            400,
            Some("INVALID_PAYLOAD_REFERENCE_ID"),
            "reference_id is too long",
        ),
    ),
    (
        "REFERENCE_ID_TOO_SHORT",
        reply(
            400,
            Some("INVALID_PAYLOAD_REFERENCE_ID"),
            "reference_id is too short",
        ),
    ),
];

/// The vendor sandbox's magic `image` values of the submit call: refused at
/// once (a 4xx) or what the job answers. Any other image (a real file or
/// URL, which the gateway sends) makes a job answering the clean card.
pub const SUBMIT_IMAGES: &[(&str, Canned)] = &[
    (
        "IMAGE_SIZE_EXCEED_LIMIT",
        reply(
            400,
            Some("INVALID_PAYLOAD_IMAGE_SIZE"),
            "image size exceeds the limit",
        ),
    ),
    (
        "NO_KTP_DETECTED",
        reply(200, Some("KTP_NOT_DETECTED"), "ktp not detected"),
    ),
    ("KTP", card("", false)),
    ("KTP_B", card("B", false)),
    ("KTP_D", card("D", false)),
    ("KTP_F", card("F", false)),
    ("KTP_G", card("G", false)),
    ("KTP_BD", card("BD", false)),
    ("KTP_BF", card("BF", false)),
    ("KTP_BG", card("BG", false)),
    ("KTP_DG", card("DG", false)),
    ("KTP_FG", card("FG", false)),
];

/// `value`'s row of `table`, if any.
pub fn find(table: &[(&str, Canned)], value: &str) -> Option<Canned> {
    table.iter().find(|(v, _)| *v == value).map(|(_, c)| *c)
}
