//! Reading the upstream's answer: status + body → a KTP result or an
//! [`UpstreamError`]. Pure functions, so every hostile body is a unit test.
//!
//! Lenient about presence, strict about types: any field may be missing, empty
//! or `null`, and unknown fields are ignored; but a field of the wrong JSON type
//! makes the body unusable, because guessing what the vendor meant is worse
//! than saying it is broken. The `Content-Type` is not consulted: the body is
//! parsed as JSON whatever it claims to be.

use serde::Deserialize;
use serde_json::Value;

use super::{BodyProblem, UpstreamError};

mod fast;
#[cfg(test)]
mod tests;

/// Longest `error_code` taken as a code; longer or non-token values make the
/// body unusable, so no caller ever receives an unbounded reason string.
pub const MAX_ERROR_CODE_LEN: usize = 64;

/// A successful extraction, as the upstream sent it.
#[derive(Clone, Default, PartialEq)]
pub struct KtpResult {
    /// The upstream's human summary.
    pub message: Option<String>,
    /// Billing status: top level, or else inside `data` (its position is undocumented).
    pub status_code: Option<String>,
    /// The extracted fields.
    pub data: KtpData,
}

/// The `data` object of a success. Every field is optional on purpose.
#[derive(Clone, Default, PartialEq, Deserialize)]
pub struct KtpData {
    /// NIK, the 16-digit national identity number.
    pub nik: Option<String>,
    /// Nama.
    pub full_name: Option<String>,
    /// Tempat lahir.
    pub place_of_birth: Option<String>,
    /// Tanggal lahir as printed, normally `DD-MM-YYYY`.
    pub date_of_birth: Option<String>,
    /// Jenis kelamin as printed (`LAKI-LAKI`, `PEREMPUAN`).
    pub gender: Option<String>,
    /// Golongan darah; `-` when the card states none.
    pub blood_type: Option<String>,
    /// Alamat (street).
    pub address: Option<String>,
    /// RT/RW, neighbourhood and community unit (`002/003`).
    pub rt_rw: Option<String>,
    /// Kelurahan/Desa.
    pub administrative_village: Option<String>,
    /// Kecamatan.
    pub district: Option<String>,
    /// Kota/Kabupaten.
    pub city: Option<String>,
    /// Provinsi (the upstream calls it `state`).
    pub state: Option<String>,
    /// Agama as printed.
    pub religion: Option<String>,
    /// Status perkawinan as printed.
    pub marital_status: Option<String>,
    /// Pekerjaan.
    pub occupation: Option<String>,
    /// Kewarganegaraan: `WNI` or `WNA`.
    pub nationality: Option<String>,
    /// The verdicts on the submitted image; `None` when absent or `null`.
    #[serde(default, deserialize_with = "object_only")]
    pub image_quality: Option<ImageQualityFlags>,
    /// The job's id as the upstream echoes it; preferred over the requested one.
    pub reference_id: Option<String>,
    /// Billing status, when the upstream puts it here rather than at the top level.
    pub status_code: Option<String>,
}

/// The four quality verdicts; each may be absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ImageQualityFlags {
    /// The image is blurred beyond the upstream's threshold.
    pub blur: Option<bool>,
    /// The image is too dark.
    pub dark: Option<bool>,
    /// A flashlight glare was detected on the card.
    pub flashlight: Option<bool>,
    /// Captured in black and white (a photocopy, say).
    pub grayscale: Option<bool>,
}

impl ImageQualityFlags {
    /// `(name, value)` of each flag that is present, in a fixed order.
    pub fn present(&self) -> impl Iterator<Item = (&'static str, bool)> {
        [
            ("blur", self.blur),
            ("dark", self.dark),
            ("flashlight", self.flashlight),
            ("grayscale", self.grayscale),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }
}

/// Personal data must not reach logs through `{:?}`.
impl std::fmt::Debug for KtpData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtpData")
            .field("reference_id", &self.reference_id)
            .field("image_quality", &self.image_quality)
            .finish_non_exhaustive()
    }
}

/// Neither may the upstream's free text (`message` can echo the card
/// holder's name): only its length shows.
impl std::fmt::Debug for KtpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtpResult")
            .field("message", &TextLen(self.message.as_deref()))
            .field("status_code", &TextLen(self.status_code.as_deref()))
            .field("data", &self.data)
            .finish()
    }
}

/// Upstream free text in `Debug`: its length, never its words.
pub(in crate::upstream) struct TextLen<'a>(pub Option<&'a str>);

impl std::fmt::Debug for TextLen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(text) => write!(f, "<{} bytes>", text.len()),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    message: Option<String>,
    error_code: Option<String>,
    status_code: Option<String>,
    data: Option<Value>,
}

/// The only part of an error body the gateway reads; anything else in it,
/// even malformed JSON, is ignored because the HTTP status already says enough.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error_code: Option<Value>,
}

/// Interprets one upstream answer.
///
/// `retry_after` is the already-parsed `Retry-After` header, kept for the
/// statuses where it matters.
pub fn interpret(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
) -> Result<KtpResult, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(error_status(status, retry_after, body));
    }
    fast::usual_success(body).map_or_else(|| read_2xx(status, body), Ok)
}

/// A 2xx answer, read through a [`Value`] tree: any body, however unusual.
fn read_2xx(status: u16, body: &[u8]) -> Result<KtpResult, UpstreamError> {
    let bad = |problem| UpstreamError::BadResponse { status, problem };

    let root: Value = serde_json::from_slice(body).map_err(|_| bad(BodyProblem::NotJson))?;
    if !root.is_object() {
        return Err(bad(BodyProblem::NotAnObject));
    }
    let envelope = Envelope::deserialize(root).map_err(|_| bad(BodyProblem::WrongShape))?;

    if let Some(code) = non_empty(envelope.error_code) {
        let code = valid_error_code(code).ok_or_else(|| bad(BodyProblem::WrongShape))?;
        return Err(UpstreamError::JobFailed {
            status,
            image_quality: envelope.data.as_ref().and_then(image_quality_of),
            code,
        });
    }

    let data = match envelope.data {
        Some(v @ Value::Object(_)) => {
            KtpData::deserialize(v).map_err(|_| bad(BodyProblem::WrongShape))?
        }
        Some(Value::Null) | None => return Err(bad(BodyProblem::NoData)),
        Some(_) => return Err(bad(BodyProblem::WrongShape)),
    };
    Ok(KtpResult {
        message: envelope.message,
        status_code: non_empty(envelope.status_code).or_else(|| data.status_code.clone()),
        data,
    })
}

/// Flags of a failed job, read best-effort: a malformed `image_quality` on an
/// error answer just means there are no flags to report.
fn image_quality_of(data: &Value) -> Option<ImageQualityFlags> {
    ImageQualityFlags::deserialize(data.get("image_quality").filter(|v| v.is_object())?).ok()
}

/// Derived struct deserializers also accept a JSON array, field by field
/// (`{"data":["A"]}` would read `"A"` as the first field); the vendor's
/// objects must be objects, or `null`.
pub(in crate::upstream) fn object_only<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Option::<serde_json::Map<String, Value>>::deserialize(d)?
        .map(|m| T::deserialize(Value::Object(m)).map_err(serde::de::Error::custom))
        .transpose()
}

/// A non-2xx answer of any call: the status decides, with the body's
/// `error_code` when it has a usable one.
pub(in crate::upstream) fn error_status(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
) -> UpstreamError {
    UpstreamError::Status {
        status,
        error_code: error_code_of_error_body(body),
        retry_after,
    }
}

fn error_code_of_error_body(body: &[u8]) -> Option<String> {
    // Only an object carries an error code (a struct would also take an array).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    match envelope.error_code? {
        Value::String(code) => non_empty(Some(code)).and_then(valid_error_code),
        _ => None,
    }
}

pub(super) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Codes are tokens like `FAIL_ON_1`; anything else is not passed on.
pub(in crate::upstream) fn valid_error_code(code: String) -> Option<String> {
    let ok = code.len() <= MAX_ERROR_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(code)
}
