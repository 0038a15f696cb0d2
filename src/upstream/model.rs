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
    pub nik: Option<String>,
    pub full_name: Option<String>,
    pub place_of_birth: Option<String>,
    pub date_of_birth: Option<String>,
    pub gender: Option<String>,
    pub blood_type: Option<String>,
    pub address: Option<String>,
    pub rt_rw: Option<String>,
    pub administrative_village: Option<String>,
    pub district: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub religion: Option<String>,
    pub marital_status: Option<String>,
    pub occupation: Option<String>,
    pub nationality: Option<String>,
    #[serde(default, deserialize_with = "object_only")]
    pub image_quality: Option<ImageQualityFlags>,
    pub reference_id: Option<String>,
    pub status_code: Option<String>,
}

/// The four quality verdicts; each may be absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ImageQualityFlags {
    pub blur: Option<bool>,
    pub dark: Option<bool>,
    pub flashlight: Option<bool>,
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

impl std::fmt::Debug for KtpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtpResult")
            .field("message", &self.message)
            .field("status_code", &self.status_code)
            .field("data", &self.data)
            .finish()
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
        return Err(UpstreamError::Status {
            status,
            error_code: error_code_of_error_body(body),
            retry_after,
        });
    }
    usual_success(body).map_or_else(|| read_2xx(status, body), Ok)
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

/// The usual answer, a success with data, read in one pass straight into
/// [`KtpResult`] instead of through a [`Value`] tree (a tenth of the
/// gateway's CPU per call; `bench/README.md`).
///
/// It takes only bodies without unknown or repeated fields, whose every value
/// has its expected type and whose objects are objects: exactly the bodies
/// [`interpret`]'s general path reads the same way. `None` sends anything
/// else (job errors, missing data, extra fields, any doubt) to that path, so
/// the outcome never depends on which path read the body.
fn usual_success(body: &[u8]) -> Option<KtpResult> {
    // Checking UTF-8 once for the whole body is cheaper than string by string.
    let text = std::str::from_utf8(body).ok()?;
    let ObjectOnly(envelope) = serde_json::from_str::<ObjectOnly<UsualEnvelope>>(text).ok()?;
    if non_empty(envelope.error_code).is_some() {
        return None;
    }
    let ObjectOnly(d) = envelope.data?;
    let data = KtpData {
        nik: d.nik,
        full_name: d.full_name,
        place_of_birth: d.place_of_birth,
        date_of_birth: d.date_of_birth,
        gender: d.gender,
        blood_type: d.blood_type,
        address: d.address,
        rt_rw: d.rt_rw,
        administrative_village: d.administrative_village,
        district: d.district,
        city: d.city,
        state: d.state,
        religion: d.religion,
        marital_status: d.marital_status,
        occupation: d.occupation,
        nationality: d.nationality,
        image_quality: d.image_quality.map(|ObjectOnly(q)| ImageQualityFlags {
            blur: q.blur,
            dark: q.dark,
            flashlight: q.flashlight,
            grayscale: q.grayscale,
        }),
        reference_id: d.reference_id,
        status_code: d.status_code,
    };
    Some(KtpResult {
        message: envelope.message,
        status_code: non_empty(envelope.status_code).or_else(|| data.status_code.clone()),
        data,
    })
}

/// [`Envelope`] for [`usual_success`]: strict, so that it reads only what the
/// general path would read identically.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsualEnvelope {
    message: Option<String>,
    error_code: Option<String>,
    status_code: Option<String>,
    data: Option<ObjectOnly<UsualData>>,
}

/// [`KtpData`] for [`usual_success`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsualData {
    nik: Option<String>,
    full_name: Option<String>,
    place_of_birth: Option<String>,
    date_of_birth: Option<String>,
    gender: Option<String>,
    blood_type: Option<String>,
    address: Option<String>,
    rt_rw: Option<String>,
    administrative_village: Option<String>,
    district: Option<String>,
    city: Option<String>,
    state: Option<String>,
    religion: Option<String>,
    marital_status: Option<String>,
    occupation: Option<String>,
    nationality: Option<String>,
    image_quality: Option<ObjectOnly<UsualFlags>>,
    reference_id: Option<String>,
    status_code: Option<String>,
}

/// [`ImageQualityFlags`] for [`usual_success`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsualFlags {
    blur: Option<bool>,
    dark: Option<bool>,
    flashlight: Option<bool>,
    grayscale: Option<bool>,
}

/// A derived struct read from a JSON object only (derived deserializers also
/// take an array, field by field).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// Flags of a failed job, read best-effort: a malformed `image_quality` on an
/// error answer just means there are no flags to report.
fn image_quality_of(data: &Value) -> Option<ImageQualityFlags> {
    ImageQualityFlags::deserialize(data.get("image_quality").filter(|v| v.is_object())?).ok()
}

/// Derived struct deserializers also accept a JSON array, field by field;
/// the vendor's objects must be objects.
fn object_only<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<ImageQualityFlags>, D::Error> {
    Option::<serde_json::Map<String, Value>>::deserialize(d)?
        .map(|m| ImageQualityFlags::deserialize(Value::Object(m)).map_err(serde::de::Error::custom))
        .transpose()
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

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Codes are tokens like `FAIL_ON_1`; anything else is not passed on.
fn valid_error_code(code: String) -> Option<String> {
    let ok = code.len() <= MAX_ERROR_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(code)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SAMPLE: &str = r#"{ "message": "success extract ktp data", "data": { "nik": "3506042602660001", "city": "KABUPATEN KEDIRI", "rt_rw": "002/003", "state": "PROVINSI JAWA TIMUR", "gender": "LAKI-LAKI", "address": "JL.AYYA DSN PURWOKERTO", "district": "NGADILUWIH", "religion": "ISLAM", "full_name": "SULISTYONO", "blood_type": "-", "occupation": "GURU", "nationality": "WNI", "date_of_birth": "26-02-1966", "marital_status": "KAWIN", "place_of_birth": "KEDIRI", "administrative_village": "PURWOKERTO", "image_quality": { "blur": false, "dark": false, "grayscale": false, "flashlight": false } } }"#;

    fn ok(body: &str) -> KtpResult {
        interpret(200, None, body.as_bytes()).expect("should parse")
    }

    fn problem(status: u16, body: &[u8]) -> BodyProblem {
        match interpret(status, None, body) {
            Err(UpstreamError::BadResponse { problem, .. }) => problem,
            other => panic!("expected BadResponse, got {other:?}"),
        }
    }

    /// The one-pass reading takes only what the general one reads the same way.
    #[test]
    fn usual_success_agrees_with_the_general_path() {
        let taken = [
            SAMPLE,
            r#"{"data": {}}"#,
            r#"{"message": null, "error_code": "", "status_code": " ", "data": {"status_code": "1"}}"#,
            r#"{"error_code": null, "status_code": "2", "data": {"nik": "", "image_quality": null}}"#,
            r#" {"data": {"image_quality": {"blur": true, "dark": null}, "reference_id": "R"}} "#,
        ];
        for body in taken {
            let fast = usual_success(body.as_bytes()).expect(body);
            assert!(
                fast == read_2xx(200, body.as_bytes()).expect(body),
                "{body}"
            );
        }
        let left = [
            r#"{"data": {}, "extra": 1}"#,
            r#"{"data": {"new_field": 1}}"#,
            r#"{"data": {"image_quality": {"score": 0.3}}}"#,
            r#"{"data": {"nik": "1", "nik": "2"}}"#,
            r#"{"data": {}, "x": 1e400}"#,
            r#"{"data": null}"#,
            r#"{"message": "m"}"#,
            r#"{"data": [], "message": "m"}"#,
            r#"{"data": {"image_quality": [true, false, false, true]}}"#,
            r#"[null, null, null, {}]"#,
            r#"{"error_code": "FAIL_ON_1", "data": {}}"#,
            r#"{"data": {"nik": 5}}"#,
            r#"{"data": {}"#,
            "",
        ];
        for body in left {
            assert!(usual_success(body.as_bytes()).is_none(), "{body}");
        }
    }

    #[test]
    fn documented_sample_parses_field_by_field() {
        let r = ok(SAMPLE);
        assert_eq!(r.message.as_deref(), Some("success extract ktp data"));
        assert_eq!(r.status_code, None);
        let d = &r.data;
        assert_eq!(d.nik.as_deref(), Some("3506042602660001"));
        assert_eq!(d.full_name.as_deref(), Some("SULISTYONO"));
        assert_eq!(d.place_of_birth.as_deref(), Some("KEDIRI"));
        assert_eq!(d.date_of_birth.as_deref(), Some("26-02-1966"));
        assert_eq!(d.gender.as_deref(), Some("LAKI-LAKI"));
        assert_eq!(d.blood_type.as_deref(), Some("-"));
        assert_eq!(d.address.as_deref(), Some("JL.AYYA DSN PURWOKERTO"));
        assert_eq!(d.rt_rw.as_deref(), Some("002/003"));
        assert_eq!(d.administrative_village.as_deref(), Some("PURWOKERTO"));
        assert_eq!(d.district.as_deref(), Some("NGADILUWIH"));
        assert_eq!(d.city.as_deref(), Some("KABUPATEN KEDIRI"));
        assert_eq!(d.state.as_deref(), Some("PROVINSI JAWA TIMUR"));
        assert_eq!(d.religion.as_deref(), Some("ISLAM"));
        assert_eq!(d.marital_status.as_deref(), Some("KAWIN"));
        assert_eq!(d.occupation.as_deref(), Some("GURU"));
        assert_eq!(d.nationality.as_deref(), Some("WNI"));
        let q = d.image_quality.expect("flags");
        assert_eq!(q.present().filter(|(_, v)| *v).count(), 0);
        assert_eq!(q.present().count(), 4);
    }

    #[test]
    fn missing_null_empty_and_unknown_fields_are_accepted() {
        let r = ok(
            r#"{"data": {"nik": null, "full_name": "", "new_field": [1, {"x": 2}],
                        "image_quality": {"blur": null, "score": 0.3}}, "extra": true}"#,
        );
        assert_eq!(r.data.nik, None);
        assert_eq!(r.data.full_name.as_deref(), Some(""));
        assert_eq!(r.data.city, None);
        assert_eq!(r.data.image_quality, Some(ImageQualityFlags::default()));
        assert_eq!(ok(r#"{"data": {}}"#).data, KtpData::default());
    }

    #[test]
    fn status_code_is_read_from_either_level_top_first() {
        assert_eq!(
            ok(r#"{"status_code": "1", "data": {}}"#)
                .status_code
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            ok(r#"{"data": {"status_code": "2"}}"#)
                .status_code
                .as_deref(),
            Some("2")
        );
        let both = ok(r#"{"status_code": "1", "data": {"status_code": "2"}}"#);
        assert_eq!(both.status_code.as_deref(), Some("1"));
        assert_eq!(ok(r#"{"status_code": null, "data": {}}"#).status_code, None);
    }

    #[test]
    fn job_errors_are_read_from_the_top_level_of_a_200() {
        match interpret(
            200,
            None,
            br#"{"data": {}, "error_code": "KTP_NOT_DETECTED", "message": "ktp not detected"}"#,
        ) {
            Err(UpstreamError::JobFailed {
                code,
                status: 200,
                image_quality: None,
            }) => {
                assert_eq!(code, "KTP_NOT_DETECTED")
            }
            other => panic!("{other:?}"),
        }
        // An error_code nested in data is not a job error.
        let r = ok(r#"{"data": {"error_code": "FAIL_ON_1"}}"#);
        assert_eq!(r.data, KtpData::default());
    }

    #[test]
    fn fail_on_1_carries_the_flags_that_are_present() {
        let body = br#"{"data": {"image_quality": {"blur": true, "dark": false}}, "error_code": "FAIL_ON_1"}"#;
        match interpret(200, None, body) {
            Err(UpstreamError::JobFailed {
                image_quality: Some(q),
                ..
            }) => {
                let flags: Vec<_> = q.present().collect();
                assert_eq!(flags, vec![("blur", true), ("dark", false)]);
            }
            other => panic!("{other:?}"),
        }
        // An array is not the flags object.
        let body =
            br#"{"data": {"image_quality": [true, true, true, true]}, "error_code": "FAIL_ON_1"}"#;
        assert!(matches!(
            interpret(200, None, body),
            Err(UpstreamError::JobFailed {
                image_quality: None,
                ..
            })
        ));
        // Malformed flags on an error answer do not hide the error.
        let body = br#"{"data": {"image_quality": "bad"}, "error_code": "FAIL_ON_1"}"#;
        assert!(matches!(
            interpret(200, None, body),
            Err(UpstreamError::JobFailed {
                image_quality: None,
                ..
            })
        ));
    }

    #[test]
    fn empty_or_null_error_code_means_no_error() {
        assert!(interpret(200, None, br#"{"error_code": "", "data": {}}"#).is_ok());
        assert!(interpret(200, None, br#"{"error_code": null, "data": {}}"#).is_ok());
    }

    #[test]
    fn hostile_success_bodies_are_bad_responses() {
        assert_eq!(problem(200, b""), BodyProblem::NotJson);
        assert_eq!(problem(200, b"<html>oops</html>"), BodyProblem::NotJson);
        assert_eq!(
            problem(200, b"{\"data\": {\"nik\": \"\xff\xfe\"}}"),
            BodyProblem::NotJson
        );
        assert_eq!(problem(200, b"{\"data\": {}"), BodyProblem::NotJson);
        assert_eq!(problem(200, b"[]"), BodyProblem::NotAnObject);
        assert_eq!(problem(200, b"\"data\""), BodyProblem::NotAnObject);
        assert_eq!(problem(200, b"null"), BodyProblem::NotAnObject);
        assert_eq!(
            problem(200, br#"{"data": {"nik": 3506042602660001}}"#),
            BodyProblem::WrongShape
        );
        assert_eq!(
            problem(200, br#"{"data": {"image_quality": {"blur": "yes"}}}"#),
            BodyProblem::WrongShape
        );
        assert_eq!(problem(200, br#"{"data": []}"#), BodyProblem::WrongShape);
        assert_eq!(
            problem(
                200,
                br#"{"data": {"image_quality": [true, false, false, true]}}"#
            ),
            BodyProblem::WrongShape
        );
        assert_eq!(
            problem(200, br#"{"message": 5, "data": {}}"#),
            BodyProblem::WrongShape
        );
        assert_eq!(
            problem(200, br#"{"error_code": 7, "data": {}}"#),
            BodyProblem::WrongShape
        );
        assert_eq!(problem(200, br#"{"message": "ok"}"#), BodyProblem::NoData);
        assert_eq!(problem(200, br#"{"data": null}"#), BodyProblem::NoData);
        let long = format!(r#"{{"error_code": "{}"}}"#, "A".repeat(65));
        assert_eq!(problem(200, long.as_bytes()), BodyProblem::WrongShape);
        assert_eq!(
            problem(200, br#"{"error_code": "BAD CODE\n"}"#),
            BodyProblem::WrongShape
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            r#"{{"data": {{"x": {}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(problem(200, deep.as_bytes()), BodyProblem::NotJson);
        let deep_err = "[".repeat(100_000);
        assert!(matches!(
            interpret(500, None, deep_err.as_bytes()),
            Err(UpstreamError::Status {
                status: 500,
                error_code: None,
                ..
            })
        ));
    }

    #[test]
    fn error_statuses_keep_code_and_retry_after() {
        let body = br#"{"message": "Reference ID not found", "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}"#;
        match interpret(404, Some(Duration::from_secs(2)), body) {
            Err(UpstreamError::Status {
                status: 404,
                error_code,
                retry_after,
            }) => {
                assert_eq!(
                    error_code.as_deref(),
                    Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")
                );
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_bodies_are_read_leniently() {
        let code = |status, body: &[u8]| match interpret(status, None, body) {
            Err(UpstreamError::Status { error_code, .. }) => error_code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(401, br#"{"message": "Authorization failed"}"#), None);
        assert_eq!(code(500, b"<html>Bad gateway</html>"), None);
        assert_eq!(code(500, b""), None);
        assert_eq!(code(500, br#"{"error_code": 42}"#), None);
        assert_eq!(code(403, br#"["INSUFFICIENT_QUOTA"]"#), None);
        assert_eq!(code(500, br#"{"error_code": ""}"#), None);
        assert_eq!(code(500, br#"{"error_code": "has space"}"#), None);
        assert_eq!(
            code(
                500,
                br#"{"message": {"nested": 1}, "error_code": "INTERNAL_SERVER_ERROR"}"#
            )
            .as_deref(),
            Some("INTERNAL_SERVER_ERROR")
        );
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let shown = format!("{:?}", ok(SAMPLE));
        for personal in [
            "3506042602660001",
            "SULISTYONO",
            "KEDIRI",
            "26-02-1966",
            "PURWOKERTO",
        ] {
            assert!(!shown.contains(personal), "{personal} leaked: {shown}");
        }
    }
}
