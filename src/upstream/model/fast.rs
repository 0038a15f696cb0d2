//! The one-pass reading of the usual answer, a success with data: straight
//! into [`KtpResult`] instead of through a [`serde_json::Value`] tree, which
//! saves a tenth of the gateway's CPU per call (`bench/README.md`).

use serde::Deserialize;

use super::{ImageQualityFlags, KtpData, KtpResult, non_empty};

/// The usual answer, or `None` to leave it to the general path.
///
/// It takes only bodies without unknown or repeated fields, whose every value
/// has its expected type and whose objects are objects: exactly the bodies
/// [`interpret`](super::interpret)'s general path reads the same way. `None` sends anything
/// else (job errors, missing data, extra fields, any doubt) to that path, so
/// the outcome never depends on which path read the body.
pub(super) fn usual_success(body: &[u8]) -> Option<KtpResult> {
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

/// [`Envelope`](super::Envelope) for [`usual_success`]: strict, so that it reads only what the
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
