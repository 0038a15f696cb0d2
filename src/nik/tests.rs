//! The NIK's rules and the checks, table by table.

use super::{
    Check::{Fail, NotChecked, Pass},
    *,
};

/// The vendor's sample card: Kediri (Jawa Timur), a man born 26-02-1966.
const SAMPLE: &str = "3506042602660001";

#[test]
fn well_formed_niks_parse_into_their_parts() {
    assert_eq!(
        Nik::parse(SAMPLE),
        Some(Nik {
            province: 35,
            regency: 6,
            district: 4,
            day: 26,
            month: 2,
            year: 66,
            serial: 1
        })
    );
    let woman = Nik::parse("3273016505900002").expect("the sandbox's card");
    assert!(woman.female());
    assert_eq!(woman.birth_day(), 25);
}

#[test]
fn each_format_rule_refuses_what_breaks_it() {
    for (nik, why) in [
        ("", "empty"),
        ("350604260266000", "15 digits"),
        ("35060426026600011", "17 digits"),
        ("35060426026600O1", "a letter O"),
        ("３５06042602660001", "full-width digits"),
        ("0006042602660001", "province 00"),
        ("2006042602660001", "province 20: not in force"),
        ("9706042602660001", "province 97"),
        ("3500042602660001", "regency 00"),
        ("3570042602660001", "regency 70"),
        ("3506002602660001", "district 00"),
        ("3506040002660001", "day 00"),
        ("3506043202660001", "day 32"),
        ("3506044002660001", "day 40"),
        ("3506047202660001", "day 72"),
        ("3506043102660001", "31 February"),
        ("3506042600660001", "month 00"),
        ("3506042613660001", "month 13"),
        ("3506042902010001", "29 February 1901 and 2001"),
        ("3506042602660000", "serial 0000"),
    ] {
        assert_eq!(Nik::parse(nik), None, "{why}: {nik}");
    }
    for (nik, why) in [
        ("3506042902000001", "29 February 2000"),
        ("3506046902960001", "29 February 1996, a woman"),
        ("3506047101660001", "31 January, a woman"),
        ("3599042602660001", "city 99"),
        ("3571992602660001", "district 99"),
        ("9606042602669999", "Papua Barat Daya"),
        ("1106042602660001", "Aceh"),
    ] {
        assert!(Nik::parse(nik).is_some(), "{why}: {nik}");
    }
}

fn card<'a>(
    nik: &'a str,
    dob: Option<(i32, u32, u32)>,
    female: Option<bool>,
    state: &'a str,
) -> Checks {
    check(&Card {
        nik,
        date_of_birth: dob,
        female,
        state,
    })
}

#[test]
fn the_sample_card_agrees_with_itself() {
    let c = card(
        SAMPLE,
        Some((1966, 2, 26)),
        Some(false),
        "PROVINSI JAWA TIMUR",
    );
    assert_eq!(
        c,
        Checks {
            nik_format: Pass,
            nik_birth_date: Pass,
            nik_gender: Pass,
            nik_province: Pass
        }
    );
}

#[test]
fn birth_date_gender_and_province_each_disagree_on_their_own() {
    let base = (Some((1966, 2, 26)), Some(false), "JAWA TIMUR");
    for (dob, want) in [
        (Some((1966, 2, 27)), Fail),
        (Some((1966, 3, 26)), Fail),
        (Some((1967, 2, 26)), Fail),
        (Some((2066, 2, 26)), Pass),
        (None, NotChecked),
    ] {
        assert_eq!(
            card(SAMPLE, dob, base.1, base.2).nik_birth_date,
            want,
            "{dob:?}"
        );
    }
    for (female, want) in [(Some(true), Fail), (Some(false), Pass), (None, NotChecked)] {
        assert_eq!(
            card(SAMPLE, base.0, female, base.2).nik_gender,
            want,
            "{female:?}"
        );
    }
    // A woman's day is +40: the date check reads through it.
    let woman = card(
        "3506046602660001",
        Some((1966, 2, 26)),
        Some(true),
        "JAWA TIMUR",
    );
    assert_eq!((woman.nik_birth_date, woman.nik_gender), (Pass, Pass));
    for (state, want) in [
        ("JAWA TIMUR", Pass),
        ("PROVINSI JAWA TIMUR", Pass),
        ("Prov. Jawa  Timur", Pass),
        ("jawa-timur", Pass),
        ("JAWA BARAT", Fail),
        ("", NotChecked),
        ("PROVINSI", NotChecked),
        ("ATLANTIS", NotChecked),
    ] {
        assert_eq!(
            card(SAMPLE, base.0, base.1, state).nik_province,
            want,
            "{state:?}"
        );
    }
}

#[test]
fn province_names_in_every_usual_spelling() {
    for (name, code) in [
        ("PROVINSI DKI JAKARTA", 31),
        ("DAERAH KHUSUS IBUKOTA JAKARTA", 31),
        ("PROVINSI DAERAH ISTIMEWA YOGYAKARTA", 34),
        ("DI YOGYAKARTA", 34),
        ("D.I. YOGYAKARTA", 34),
        ("Jawa Barat", 32),
        ("NANGGROE ACEH DARUSSALAM", 11),
        ("KEP. BANGKA BELITUNG", 19),
        ("KEPULAUAN RIAU", 21),
        ("NUSA TENGGARA TIMUR", 53),
        ("PAPUA BARAT DAYA", 96),
    ] {
        assert_eq!(
            provinces::by_name(name).map(|p| p.code),
            Some(code),
            "{name}"
        );
    }
    // A province whose name starts like another's is not taken for it.
    assert_eq!(provinces::by_name("PAPUA").map(|p| p.code), Some(91));
    assert_eq!(provinces::by_name("PAPUA BARAT").map(|p| p.code), Some(92));
}

#[test]
fn a_nik_first_issued_before_a_province_split_agrees_with_the_new_one() {
    let papua = "9106042602660001";
    for state in [
        "PAPUA",
        "PAPUA SELATAN",
        "PAPUA TENGAH",
        "PAPUA PEGUNUNGAN",
        "PAPUA BARAT DAYA",
    ] {
        assert_eq!(card(papua, None, None, state).nik_province, Pass, "{state}");
    }
    assert_eq!(
        card(papua, None, None, "PAPUA BARAT").nik_province,
        Pass,
        "split 2003"
    );
    // Not the other way round: an older province's card with a newer code.
    let papua_selatan = "9306042602660001";
    assert_eq!(card(papua_selatan, None, None, "PAPUA").nik_province, Fail);
    // Banten was part of Jawa Barat until 2000.
    assert_eq!(
        card("3206042602660001", None, None, "BANTEN").nik_province,
        Pass
    );
}

#[test]
fn a_malformed_or_missing_nik_checks_nothing_else() {
    let full = (Some((1966, 2, 26)), Some(false), "JAWA TIMUR");
    let missing = card("", full.0, full.1, full.2);
    assert_eq!(missing.nik_format, NotChecked);
    let malformed = card("3506042602660000", full.0, full.1, full.2);
    assert_eq!(malformed.nik_format, Fail);
    for c in [missing, malformed] {
        assert_eq!(
            (c.nik_birth_date, c.nik_gender, c.nik_province),
            (NotChecked, NotChecked, NotChecked)
        );
    }
}

#[test]
fn the_province_table_has_the_38_provinces_in_force_each_once() {
    assert_eq!(provinces::PROVINCES.len(), 38);
    let mut codes: Vec<u8> = provinces::PROVINCES.iter().map(|p| p.code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 38, "every code once");
    let mut names: Vec<String> = provinces::PROVINCES
        .iter()
        .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
        .map(|n| n.replace(|c: char| !c.is_ascii_alphanumeric(), ""))
        .collect();
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all, "no name or alias names two provinces");
    for p in provinces::PROVINCES {
        assert!((11..=96).contains(&p.code), "{p:?}");
        for parent in p.formed_from {
            assert!(provinces::by_code(*parent).is_some(), "{p:?}");
        }
    }
}
