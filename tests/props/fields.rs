//! The card checks and the field selection, on any input: the NIK checks
//! never panic, and on a full card (a parsed date of birth, a recognised
//! gender) a well-formed NIK always gets a verdict on the date and the
//! gender, which agree exactly when the NIK's digits say the same; `rt_rw`
//! parses exactly the `N/N` forms and gives back their numbers; an answer
//! cut to any set of fields carries no other field; a tokens file never
//! panics the parser, and its errors never repeat a line's first word (the
//! token).

use ktp_gateway::{
    convert::{mask, parse_rt_rw},
    fields::{FieldSet, NAMES},
    nik::{self, Card, Check, Nik, provinces::PROVINCES},
    proto::GetKtpResultResponse,
    security::auth::BearerTokens,
};
use proptest::prelude::*;
use prost::Message;

use super::config;

/// A well-formed NIK's digits from its parts.
fn nik_text(
    province: u8,
    regency: u8,
    district: u8,
    day: u8,
    month: u8,
    year: u8,
    serial: u16,
) -> String {
    format!("{province:02}{regency:02}{district:02}{day:02}{month:02}{year:02}{serial:04}")
}

/// NIKs: random text, random 16 digits, and well-formed ones.
fn nik_strategy() -> impl Strategy<Value = String> {
    let codes: Vec<u8> = PROVINCES.iter().map(|p| p.code).collect();
    let well_formed = (
        prop::sample::select(codes),
        prop_oneof![1u8..=69, 71u8..=99],
        1u8..=99,
        1u8..=28,
        any::<bool>(),
        1u8..=12,
        0u8..=99,
        1u16..=9999,
    )
        .prop_map(|(p, r, d, day, female, m, y, s)| {
            nik_text(p, r, d, if female { day + 40 } else { day }, m, y, s)
        });
    prop_oneof![
        2 => well_formed,
        1 => "[0-9]{16}",
        1 => ".{0,20}",
        1 => "[0-9O ]{14,18}",
    ]
}

fn state_strategy() -> impl Strategy<Value = String> {
    let names: Vec<String> = PROVINCES.iter().map(|p| p.name.to_owned()).collect();
    prop_oneof![
        prop::sample::select(names.clone()),
        prop::sample::select(names).prop_map(|n| format!("PROVINSI {}", n.to_lowercase())),
        ".{0,30}",
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn checks_never_panic_and_a_full_card_with_a_good_nik_gets_verdicts(
        raw in nik_strategy(),
        state in state_strategy(),
        year in 1900i32..=2099,
        month in 1u32..=12,
        day in 1u32..=28,
        female in any::<bool>(),
    ) {
        let card = Card { nik: &raw, date_of_birth: Some((year, month, day)), female: Some(female), state: &state };
        let c = nik::check(&card);
        match Nik::parse(&raw) {
            Some(n) => {
                prop_assert_eq!(c.nik_format, Check::Pass);
                let same_date = u32::from(n.birth_day()) == day
                    && u32::from(n.month) == month
                    && year.rem_euclid(100) == i32::from(n.year);
                let want = if same_date { Check::Pass } else { Check::Fail };
                prop_assert_eq!(c.nik_birth_date, want);
                let want = if n.female() == female { Check::Pass } else { Check::Fail };
                prop_assert_eq!(c.nik_gender, want);
            }
            None => {
                prop_assert_ne!(c.nik_format, Check::Pass);
                prop_assert_eq!(c.nik_birth_date, Check::NotChecked);
                prop_assert_eq!(c.nik_gender, Check::NotChecked);
                prop_assert_eq!(c.nik_province, Check::NotChecked);
            }
        }
        // Missing inputs never make a verdict up.
        let bare = nik::check(&Card { nik: &raw, ..Card::default() });
        prop_assert_eq!(bare.nik_format, c.nik_format);
        prop_assert_eq!(bare.nik_birth_date, Check::NotChecked);
        prop_assert_eq!(bare.nik_gender, Check::NotChecked);
    }

    #[test]
    fn rt_rw_parses_exactly_n_slash_n(
        rt in any::<u32>(),
        rw in any::<u32>(),
        zeros in 0usize..4,
        spaces in 0usize..3,
        junk in ".{0,12}",
    ) {
        let pad = " ".repeat(spaces);
        let raw = format!("{pad}{}{rt}{pad}/{pad}{}{rw}{pad}", "0".repeat(zeros), "0".repeat(zeros));
        let v = parse_rt_rw(&raw);
        prop_assert_eq!(v.map(|v| (v.rt, v.rw)), Some((rt, rw)));
        if let Some(v) = parse_rt_rw(&junk) {
            // Whatever parses is digits, spaces and one slash.
            prop_assert!(junk.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'/'));
            prop_assert_eq!(junk.matches('/').count(), 1);
            let _ = v;
        }
    }

    #[test]
    fn a_cut_answer_carries_only_its_fields(bits in 0u32..(1 << 28)) {
        let keep = FieldSet::parse(
            NAMES.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n),
        ).unwrap();
        let mut r = GetKtpResultResponse {
            reference_id: "R".into(),
            nik: "3273016505900002".into(),
            full_name: "F".into(),
            address: "A".into(),
            state: "S".into(),
            gender_value: 2,
            checks: Some(Default::default()),
            rt_rw_value: Some(Default::default()),
            ..Default::default()
        };
        mask::retain(&mut r, keep);
        let bytes = r.encode_to_vec();
        let mut buf = bytes.as_slice();
        while !buf.is_empty() {
            let (number, wire) = prost::encoding::decode_key(&mut buf).unwrap();
            prop_assert!(number == 1 || keep.has_number(number), "field {number} survived");
            prost::encoding::skip_field(wire, number, &mut buf, Default::default()).unwrap();
        }
        prop_assert_eq!(r.reference_id.as_str(), "R");
    }

    #[test]
    fn a_tokens_file_never_panics_and_never_repeats_a_token(
        lines in prop::collection::vec(
            prop_oneof![
                "[A-Za-z0-9=_-]{1,12}",
                "[A-Za-z0-9=_-]{1,12} caller=[a-z.=-]{0,8}",
                "[A-Za-z0-9=_-]{1,12} caller=[a-z]{1,5} fields=[a-z_,.]{0,20}",
                ".{0,30}",
            ],
            0..6,
        ),
    ) {
        let text = lines.join("\n");
        if let Err((line, why)) = BearerTokens::parse(&text) {
            prop_assert!((1..=lines.len()).contains(&line));
            let token = lines[line - 1].split_whitespace().next().unwrap_or("");
            // Only a token that cannot be one of the message's own words
            // (long, with a letter and a digit) is searched for.
            let distinct = token.len() >= 8
                && token.bytes().any(|b| b.is_ascii_digit())
                && token.bytes().any(|b| b.is_ascii_alphabetic());
            if distinct {
                prop_assert!(!why.to_string().contains(token), "{} in {}", token, why);
            }
        }
    }
}
