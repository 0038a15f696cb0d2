//! Upstream KTP data → the protobuf response: raw strings kept exactly as
//! sent, plus typed views for the closed value sets.
//!
//! Recognition is forgiving about what OCR does to printed words: case,
//! spacing and punctuation are ignored ("LAKI - LAKI", "laki laki" and
//! "LAKI-LAKI" are all male). Anything not recognised is `_UNSPECIFIED`; the
//! raw string is still there for the caller.

use crate::{
    image::ImageInput,
    proto::{self, BloodType, Gender, MaritalStatus, Nationality, Religion},
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
    response
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

/// Upper-case letters and digits only: what survives OCR noise in a word.
/// Kept on the stack, at most [`Key::CAP`] of them: every known word is
/// shorter, so a longer one still matches nothing, and prefixes still work.
fn key(raw: &str) -> Key {
    let mut key = Key {
        bytes: [0; Key::CAP],
        len: 0,
    };
    for b in raw.bytes().filter(u8::is_ascii_alphanumeric).take(Key::CAP) {
        key.bytes[key.len] = b.to_ascii_uppercase();
        key.len += 1;
    }
    key
}

struct Key {
    bytes: [u8; Key::CAP],
    len: usize,
}

impl Key {
    const CAP: usize = 48;

    fn as_str(&self) -> &str {
        // ASCII letters and digits only, so always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.as_str().starts_with(prefix)
    }
}

/// `LAKI-LAKI`/`PRIA` or `PEREMPUAN`/`WANITA`, the words a KTP prints.
pub fn gender(raw: &str) -> Gender {
    match key(raw).as_str() {
        "LAKILAKI" | "PRIA" => Gender::Male,
        "PEREMPUAN" | "WANITA" => Gender::Female,
        _ => Gender::Unspecified,
    }
}

/// A KTP prints `-` when no blood type was declared: that is a value
/// ([`BloodType::NotStated`]), not a gap.
pub fn blood_type(raw: &str) -> BloodType {
    if raw.trim() == "-" {
        return BloodType::NotStated;
    }
    match key(raw).as_str() {
        "A" => BloodType::A,
        "B" => BloodType::B,
        "AB" => BloodType::Ab,
        "O" => BloodType::O,
        _ => BloodType::Unspecified,
    }
}

/// The six recognised religions under their Indonesian names and common
/// spellings, plus any `KEPERCAYAAN …` (folk belief) wording.
pub fn religion(raw: &str) -> Religion {
    let k = key(raw);
    match k.as_str() {
        "ISLAM" => Religion::Islam,
        "KRISTEN" | "PROTESTAN" | "KRISTENPROTESTAN" => Religion::Protestant,
        "KATOLIK" | "KATHOLIK" => Religion::Catholic,
        "HINDU" => Religion::Hindu,
        "BUDDHA" | "BUDHA" => Religion::Buddhist,
        "KONGHUCU" | "KHONGHUCU" => Religion::Confucian,
        _ if k.starts_with("KEPERCAYAAN") => Religion::FolkBelief,
        _ => Religion::Unspecified,
    }
}

/// `BELUM KAWIN`, `KAWIN`, `CERAI HIDUP`, `CERAI MATI`.
pub fn marital_status(raw: &str) -> MaritalStatus {
    match key(raw).as_str() {
        "BELUMKAWIN" => MaritalStatus::Single,
        "KAWIN" => MaritalStatus::Married,
        "CERAIHIDUP" => MaritalStatus::Divorced,
        "CERAIMATI" => MaritalStatus::Widowed,
        _ => MaritalStatus::Unspecified,
    }
}

/// `WNI` (citizen) or `WNA` (foreigner), as the card abbreviates them.
pub fn nationality(raw: &str) -> Nationality {
    match key(raw).as_str() {
        "WNI" => Nationality::Indonesian,
        "WNA" => Nationality::Foreign,
        _ => Nationality::Unspecified,
    }
}

/// `DD-MM-YYYY` (also with `/` or `.`) → a valid calendar date, else `None`.
///
/// ```
/// use ktp_gateway::convert::parse_date;
///
/// let d = parse_date("26-02-1966").unwrap();
/// assert_eq!((d.year, d.month, d.day), (1966, 2, 26));
/// assert!(parse_date("31-02-1966").is_none());
/// ```
pub fn parse_date(raw: &str) -> Option<proto::google::r#type::Date> {
    let mut parts = raw.trim().split(['-', '/', '.']).map(str::trim);
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || d.len() > 2 || m.len() > 2 || y.len() != 4 {
        return None;
    }
    let number = |s: &str| -> Option<i32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (day, month, year) = (number(d)?, number(m)?, number(y)?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(proto::google::r#type::Date { year, month, day })
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{KtpData, KtpResult};

    #[test]
    fn genders() {
        assert_eq!(gender("LAKI-LAKI"), Gender::Male);
        assert_eq!(gender(" laki - laki "), Gender::Male);
        assert_eq!(gender("PEREMPUAN"), Gender::Female);
        assert_eq!(gender(""), Gender::Unspecified);
        assert_eq!(gender("LAKI"), Gender::Unspecified);
    }

    #[test]
    fn blood_types() {
        for (raw, want) in [
            ("A", BloodType::A),
            ("B", BloodType::B),
            ("AB", BloodType::Ab),
            ("ab", BloodType::Ab),
            ("O", BloodType::O),
            ("-", BloodType::NotStated),
            (" - ", BloodType::NotStated),
            ("", BloodType::Unspecified),
            ("0", BloodType::Unspecified),
            ("C", BloodType::Unspecified),
        ] {
            assert_eq!(blood_type(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn religions() {
        for (raw, want) in [
            ("ISLAM", Religion::Islam),
            ("KRISTEN", Religion::Protestant),
            ("KATOLIK", Religion::Catholic),
            ("HINDU", Religion::Hindu),
            ("BUDHA", Religion::Buddhist),
            ("BUDDHA", Religion::Buddhist),
            ("KHONGHUCU", Religion::Confucian),
            ("KEPERCAYAAN TERHADAP TUHAN YME", Religion::FolkBelief),
            ("JEDI", Religion::Unspecified),
            // Past the key's length: a long word matches no short one, and
            // a prefix still counts.
            (&"ISLAM ".repeat(40), Religion::Unspecified),
            (
                &format!("kepercayaan {}", "x".repeat(500)),
                Religion::FolkBelief,
            ),
            ("I-s-l-a-m é", Religion::Islam),
        ] {
            assert_eq!(religion(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn marital_statuses_and_nationalities() {
        assert_eq!(marital_status("BELUM KAWIN"), MaritalStatus::Single);
        assert_eq!(marital_status("KAWIN"), MaritalStatus::Married);
        assert_eq!(marital_status("CERAI HIDUP"), MaritalStatus::Divorced);
        assert_eq!(marital_status("CERAI MATI"), MaritalStatus::Widowed);
        assert_eq!(marital_status("CERAI"), MaritalStatus::Unspecified);
        assert_eq!(nationality("WNI"), Nationality::Indonesian);
        assert_eq!(nationality("wna"), Nationality::Foreign);
        assert_eq!(nationality("INDONESIA"), Nationality::Unspecified);
    }

    #[test]
    fn dates() {
        let date = |y, m, d| {
            Some(proto::google::r#type::Date {
                year: y,
                month: m,
                day: d,
            })
        };
        assert_eq!(parse_date("26-02-1966"), date(1966, 2, 26));
        assert_eq!(parse_date("1/1/2000"), date(2000, 1, 1));
        assert_eq!(parse_date("29.02.2000"), date(2000, 2, 29));
        assert_eq!(parse_date("29-02-1900"), None);
        assert_eq!(parse_date("29-02-2023"), None);
        assert_eq!(parse_date("31-04-1990"), None);
        assert_eq!(parse_date("00-01-1990"), None);
        assert_eq!(parse_date("01-13-1990"), None);
        assert_eq!(parse_date("1966-02-26"), None);
        assert_eq!(parse_date("26-02-66"), None);
        assert_eq!(parse_date("+1-02-1966"), None);
        assert_eq!(parse_date("26-02-1966-1"), None);
        assert_eq!(parse_date(""), None);
        assert_eq!(parse_date("٢٦-02-1966"), None);
    }

    #[test]
    fn response_keeps_raw_strings_and_adds_typed_views() {
        let result = KtpResult {
            message: Some("ok".into()),
            status_code: Some("BILLED".into()),
            data: KtpData {
                nik: Some("3506042602660001".into()),
                gender: Some("laki-laki".into()),
                date_of_birth: Some("26-02-1966".into()),
                blood_type: Some("-".into()),
                religion: Some("ISLAM".into()),
                marital_status: Some("KAWIN".into()),
                nationality: Some("WNI".into()),
                image_quality: Some(ImageQualityFlags {
                    blur: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        let requested = ReferenceId::parse("REF".into()).unwrap();
        let r = to_response(result, &requested);
        assert_eq!(r.reference_id, "REF");
        assert_eq!(r.status_code, "BILLED");
        assert_eq!(r.gender, "laki-laki");
        assert_eq!(r.gender_value(), Gender::Male);
        assert_eq!(r.blood_type_value(), BloodType::NotStated);
        assert_eq!(r.religion_value(), Religion::Islam);
        assert_eq!(r.marital_status_value(), MaritalStatus::Married);
        assert_eq!(r.nationality_value(), Nationality::Indonesian);
        assert_eq!(
            r.date_of_birth_value.map(|d| (d.year, d.month, d.day)),
            Some((1966, 2, 26))
        );
        assert_eq!(r.full_name, "");
        let q = r.image_quality.expect("flags");
        assert!(q.blur && !q.dark);
    }

    #[test]
    fn echoed_reference_id_wins_and_missing_flags_stay_unset() {
        let result = KtpResult {
            data: KtpData {
                reference_id: Some("ECHO".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = to_response(result, &ReferenceId::parse("REF".into()).unwrap());
        assert_eq!(r.reference_id, "ECHO");
        assert!(r.image_quality.is_none());
        assert!(r.date_of_birth_value.is_none());
        assert_eq!(r.gender_value(), Gender::Unspecified);
    }
}
