//! The sandbox's answers as HTTP status + JSON body: canned ones for magic
//! ids, and the fictional card holder ("CONTOH" means "example").

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    jobs::Jobs,
    magic::{self, Canned, SLOW_DELAY},
};

/// One canned answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, in the vendor's shape.
    pub body: Value,
    /// `Retry-After` in seconds, for the 429.
    pub retry_after: Option<u64>,
    /// How long to wait before answering, so the timeout path can be tried.
    pub delay: Option<Duration>,
}

impl Answer {
    pub(super) fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            delay: None,
        }
    }
}

pub(super) fn not_found() -> Answer {
    answer_for("REFERENCE_ID_ERROR_NOT_FOUND")
}

/// The canned answer for one reference id: its row of [`magic::MAGIC_IDS`],
/// else 400 `INVALID_SANDBOX_CODE`.
pub fn answer_for(reference_id: &str) -> Answer {
    match magic::lookup(reference_id) {
        Some(canned) => canned_answer(reference_id, canned),
        None => invalid_sandbox_code(),
    }
}

/// The vendor sandbox's answer to a value that is not one of its magic ones.
pub(super) fn invalid_sandbox_code() -> Answer {
    Answer::new(
        400,
        json!({ "message": "Invalid sandbox code", "error_code": "INVALID_SANDBOX_CODE" }),
    )
}

/// `canned`, as answered for `reference_id`.
pub(super) fn canned_answer(reference_id: &str, canned: Canned) -> Answer {
    match canned {
        Canned::Card { flags, validated } => {
            let quality = json!({
                "blur": flags.contains('B'),
                "dark": flags.contains('D'),
                "flashlight": flags.contains('F'),
                "grayscale": flags.contains('G'),
            });
            if validated && !flags.is_empty() {
                return Answer::new(
                    200,
                    json!({ "data": { "image_quality": quality }, "error_code": "FAIL_ON_1", "message": "fail on quality" }),
                );
            }
            Answer::new(200, success(reference_id, quality))
        }
        Canned::Reply {
            status,
            error_code,
            message,
        } => {
            let mut body = json!({ "message": message });
            if let Some(code) = error_code {
                body["error_code"] = json!(code);
            }
            if status == 200 {
                body["data"] = json!({});
            }
            Answer::new(status, body)
        }
        Canned::RateLimited { retry_after } => Answer {
            retry_after: Some(retry_after),
            ..Answer::new(429, json!({ "message": "Too many requests" }))
        },
        Canned::Inconsistent(mismatch) => {
            let mut body = success(reference_id, json!({}));
            let (field, value) = mismatch.change();
            body["data"][field] = json!(value);
            Answer::new(200, body)
        }
        Canned::Slow => Answer {
            delay: Some(SLOW_DELAY),
            ..Answer::new(200, success(reference_id, json!({})))
        },
    }
}

/// The answer to a submit: refused as the vendor's sandbox refuses its
/// payloads and magic values, else a new job under the given (or a
/// generated) reference id, answering once its processing time is up.
pub(super) fn submitted(jobs: &Jobs, body: &[u8]) -> Answer {
    let refused = |code: &str, message: &str| {
        Answer::new(400, json!({ "message": message, "error_code": code }))
    };
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(body) else {
        return refused("INVALID_PAYLOAD", "invalid payload");
    };
    let image = match payload.get("image") {
        None | Some(Value::Null) => return refused("MISSING_PAYLOAD_IMAGE", "image is required"),
        Some(Value::String(s)) if s.is_empty() => {
            return refused("INVALID_PAYLOAD_IMAGE_MISSING", "image is empty");
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return refused("INVALID_PAYLOAD_IMAGE_FORMAT", "image cannot be decoded"),
    };
    let validated = match payload.get("validate_quality") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return refused("INVALID_PAYLOAD", "validate_quality must be a boolean"),
    };
    let reference_id = match payload.get("reference_id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return refused("INVALID_PAYLOAD_REFERENCE_ID", "reference_id is invalid"),
    };
    if let Some(canned) = magic::find(magic::SUBMIT_REFERENCE_IDS, &reference_id) {
        return canned_answer(&reference_id, canned);
    }
    let by_image = magic::find(magic::SUBMIT_IMAGES, image);
    if let Some(canned @ Canned::Reply { status: 400.., .. }) = by_image {
        return canned_answer(&reference_id, canned);
    }
    // A result-call magic id answers as that id; else the image decides.
    let job = match (magic::lookup(&reference_id), by_image) {
        (Some(canned), _) => canned,
        (None, Some(Canned::Card { flags, .. })) => Canned::Card { flags, validated },
        (None, Some(canned)) => canned,
        (None, None) => Canned::Card {
            flags: "",
            validated,
        },
    };
    if !jobs.submit(&reference_id, job) {
        return refused(
            "INVALID_PAYLOAD_REFERENCE_ID_EXISTS",
            "reference_id already exists",
        );
    }
    Answer::new(
        200,
        json!({ "message": "success", "data": { "reference_id": reference_id } }),
    )
}

/// A fictional card holder ("CONTOH" means "example").
fn success(reference_id: &str, quality: Value) -> Value {
    json!({
        "message": "success extract ktp data",
        "data": {
            "reference_id": reference_id,
            "nik": "3273016505900002",
            "full_name": "SITI CONTOH",
            "place_of_birth": "BANDUNG",
            "date_of_birth": "25-05-1990",
            "gender": "PEREMPUAN",
            "blood_type": "O",
            "address": "JL. CONTOH NO. 1",
            "rt_rw": "001/002",
            "administrative_village": "CITARUM",
            "district": "BANDUNG WETAN",
            "city": "KOTA BANDUNG",
            "state": "PROVINSI JAWA BARAT",
            "religion": "ISLAM",
            "marital_status": "BELUM KAWIN",
            "occupation": "KARYAWAN SWASTA",
            "nationality": "WNI",
            "image_quality": quality,
        }
    })
}
