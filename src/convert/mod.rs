//! Upstream KTP data → the protobuf response: raw strings kept exactly as
//! sent, typed views for the closed value sets ([`words`]), the consistency
//! checks of the NIK against the other fields, and the removal of the
//! fields a caller may not or did not ask to see ([`mask`]).

pub mod mask;
pub mod words;

pub use words::{
    blood_type, gender, marital_status, nationality, parse_date, parse_rt_rw, religion,
};

use crate::{
    image::ImageInput,
    nik::{self, Check},
    proto::{self, CheckResult, Gender},
    reference_id::ReferenceId,
    upstream::{ImageQualityFlags, KtpResult},
};

/// Builds the response for `requested`; the upstream's echoed reference id wins
/// when it sent one.
pub fn to_response(result: KtpResult, requested: &ReferenceId) -> proto::GetKtpResultResponse {
    let d = result.data;
    let s = |v: Option<String>| v.unwrap_or_default();
    let mut response = proto::GetKtpResultResponse {
        reference_id: d
            .reference_id
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| requested.as_str().to_owned()),
        message: s(result.message),
        status_code: s(result.status_code),
        image_quality: d.image_quality.map(image_quality),
        date_of_birth_value: d.date_of_birth.as_deref().and_then(parse_date),
        rt_rw_value: d.rt_rw.as_deref().and_then(parse_rt_rw),
        nik: s(d.nik),
        full_name: s(d.full_name),
        place_of_birth: s(d.place_of_birth),
        date_of_birth: s(d.date_of_birth),
        address: s(d.address),
        rt_rw: s(d.rt_rw),
        administrative_village: s(d.administrative_village),
        district: s(d.district),
        city: s(d.city),
        state: s(d.state),
        occupation: s(d.occupation),
        gender: s(d.gender),
        blood_type: s(d.blood_type),
        religion: s(d.religion),
        marital_status: s(d.marital_status),
        nationality: s(d.nationality),
        ..Default::default()
    };
    response.set_gender_value(gender(&response.gender));
    response.set_blood_type_value(blood_type(&response.blood_type));
    response.set_religion_value(religion(&response.religion));
    response.set_marital_status_value(marital_status(&response.marital_status));
    response.set_nationality_value(nationality(&response.nationality));
    response.checks = Some(checks(&response));
    response
}

/// The consistency checks of a whole (not yet masked) answer.
fn checks(r: &proto::GetKtpResultResponse) -> proto::KtpChecks {
    let card = nik::Card {
        nik: &r.nik,
        date_of_birth: r.date_of_birth_value.as_ref().and_then(|d| {
            Some((
                d.year,
                u32::try_from(d.month).ok()?,
                u32::try_from(d.day).ok()?,
            ))
        }),
        female: match r.gender_value() {
            Gender::Male => Some(false),
            Gender::Female => Some(true),
            Gender::Unspecified => None,
        },
        state: &r.state,
    };
    let c = nik::check(&card);
    let result = |check: Check| -> i32 {
        match check {
            Check::Pass => CheckResult::Pass,
            Check::Fail => CheckResult::Fail,
            Check::NotChecked => CheckResult::NotChecked,
        }
        .into()
    };
    proto::KtpChecks {
        nik_format: result(c.nik_format),
        nik_birth_date: result(c.nik_birth_date),
        nik_gender: result(c.nik_gender),
        nik_province: result(c.nik_province),
    }
}

impl From<proto::submit_ktp_request::ImageSource> for ImageInput {
    fn from(source: proto::submit_ktp_request::ImageSource) -> Self {
        use proto::submit_ktp_request::ImageSource;
        match source {
            ImageSource::Image(bytes) => Self::File(bytes),
            ImageSource::ImageUrl(url) => Self::Url(url),
        }
    }
}

impl From<proto::extract_ktp_request::ImageSource> for ImageInput {
    fn from(source: proto::extract_ktp_request::ImageSource) -> Self {
        use proto::extract_ktp_request::ImageSource;
        match source {
            ImageSource::Image(bytes) => Self::File(bytes),
            ImageSource::ImageUrl(url) => Self::Url(url),
        }
    }
}

fn image_quality(q: ImageQualityFlags) -> proto::ImageQuality {
    proto::ImageQuality {
        blur: q.blur.unwrap_or_default(),
        dark: q.dark.unwrap_or_default(),
        flashlight: q.flashlight.unwrap_or_default(),
        grayscale: q.grayscale.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
