use super::*;
use crate::{
    proto::{BloodType, Gender, MaritalStatus, Nationality, Religion},
    upstream::{ImageQualityFlags, KtpData, KtpResult},
};

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

#[test]
fn rt_rw_values() {
    let v = |rt, rw| Some((rt, rw));
    for (raw, want) in [
        ("002/003", v(2, 3)),
        ("2/3", v(2, 3)),
        (" 002 / 013 ", v(2, 13)),
        ("000/000", v(0, 0)),
        ("0000000000000000000001/1", v(1, 1)),
        ("4294967295/1", v(u32::MAX, 1)),
        ("4294967296/1", None),
        ("002-003", None),
        ("002/003/004", None),
        ("/003", None),
        ("002/", None),
        ("", None),
        ("-", None),
        ("+2/3", None),
        ("0x2/3", None),
        ("２/3", None),
        ("2\t/3", None),
        ("RT 002/RW 003", None),
    ] {
        assert_eq!(parse_rt_rw(raw).map(|r| (r.rt, r.rw)), want, "{raw:?}");
    }
}

#[test]
fn the_answer_carries_rt_rw_and_the_checks_of_the_whole_card() {
    use crate::proto::CheckResult;
    let result = KtpResult {
        data: KtpData {
            // Woman born 26-02-1966, first issued in Jawa Timur (35).
            nik: Some("3506046602660001".into()),
            gender: Some("PEREMPUAN".into()),
            date_of_birth: Some("26-02-1966".into()),
            state: Some("PROVINSI JAWA TIMUR".into()),
            rt_rw: Some("001/002".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = to_response(result, &ReferenceId::parse("REF".into()).unwrap());
    assert_eq!(r.rt_rw_value.map(|v| (v.rt, v.rw)), Some((1, 2)));
    let c = r.checks.expect("checks are always computed");
    assert_eq!(c.nik_format(), CheckResult::Pass);
    assert_eq!(c.nik_birth_date(), CheckResult::Pass);
    assert_eq!(c.nik_gender(), CheckResult::Pass);
    assert_eq!(c.nik_province(), CheckResult::Pass);

    let empty = to_response(
        KtpResult::default(),
        &ReferenceId::parse("R".into()).unwrap(),
    );
    let c = empty.checks.expect("checks even of an empty card");
    assert_eq!(c.nik_format(), CheckResult::NotChecked);
    assert_eq!(c.nik_birth_date(), CheckResult::NotChecked);
    assert!(empty.rt_rw_value.is_none());
}
