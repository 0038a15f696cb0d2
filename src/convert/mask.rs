//! Clearing the fields of an answer that a caller did not ask for
//! (`read_mask`) or may not see (its token's allowance). Cleared fields
//! take their default value, which proto3 does not encode: they are gone
//! before the answer is encoded or logged.

use crate::{
    fields::{FieldSet, NAMES},
    proto::GetKtpResultResponse,
};

/// Keeps the fields in `keep` and `reference_id` (always returned: it
/// names the answer); clears every other.
pub fn retain(r: &mut GetKtpResultResponse, keep: FieldSet) {
    if keep.is_all() {
        return;
    }
    for number in 2..=NAMES.len() as u32 {
        if !keep.has_number(number) {
            clear(r, number);
        }
    }
}

fn clear(r: &mut GetKtpResultResponse, number: u32) {
    let take = std::mem::take::<String>;
    match number {
        2 => drop(take(&mut r.message)),
        3 => drop(take(&mut r.status_code)),
        4 => drop(take(&mut r.nik)),
        5 => drop(take(&mut r.full_name)),
        6 => drop(take(&mut r.place_of_birth)),
        7 => drop(take(&mut r.date_of_birth)),
        8 => drop(take(&mut r.gender)),
        9 => drop(take(&mut r.blood_type)),
        10 => drop(take(&mut r.address)),
        11 => drop(take(&mut r.rt_rw)),
        12 => drop(take(&mut r.administrative_village)),
        13 => drop(take(&mut r.district)),
        14 => drop(take(&mut r.city)),
        15 => drop(take(&mut r.state)),
        16 => drop(take(&mut r.religion)),
        17 => drop(take(&mut r.marital_status)),
        18 => drop(take(&mut r.occupation)),
        19 => drop(take(&mut r.nationality)),
        20 => r.image_quality = None,
        21 => r.gender_value = 0,
        22 => r.blood_type_value = 0,
        23 => r.religion_value = 0,
        24 => r.marital_status_value = 0,
        25 => r.nationality_value = 0,
        26 => r.date_of_birth_value = None,
        27 => r.rt_rw_value = None,
        28 => r.checks = None,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::{fields::Field, proto};

    /// An answer with every field set to a non-default value.
    fn full() -> GetKtpResultResponse {
        let text = |s: &str| s.to_owned();
        GetKtpResultResponse {
            reference_id: text("REF"),
            message: text("m"),
            status_code: text("BILLED"),
            nik: text("3506042602660001"),
            full_name: text("n"),
            place_of_birth: text("p"),
            date_of_birth: text("26-02-1966"),
            gender: text("LAKI-LAKI"),
            blood_type: text("O"),
            address: text("a"),
            rt_rw: text("001/002"),
            administrative_village: text("v"),
            district: text("d"),
            city: text("c"),
            state: text("s"),
            religion: text("ISLAM"),
            marital_status: text("KAWIN"),
            occupation: text("o"),
            nationality: text("WNI"),
            image_quality: Some(proto::ImageQuality::default()),
            gender_value: 1,
            blood_type_value: 1,
            religion_value: 1,
            marital_status_value: 1,
            nationality_value: 1,
            date_of_birth_value: Some(proto::google::r#type::Date::default()),
            rt_rw_value: Some(proto::RtRw::default()),
            checks: Some(proto::KtpChecks::default()),
        }
    }

    /// The field numbers an encoded message carries.
    fn encoded_numbers(r: &GetKtpResultResponse) -> Vec<u32> {
        let bytes = r.encode_to_vec();
        let mut buf = bytes.as_slice();
        let mut numbers = Vec::new();
        while !buf.is_empty() {
            let (number, wire) = prost::encoding::decode_key(&mut buf).unwrap();
            numbers.push(number);
            prost::encoding::skip_field(wire, number, &mut buf, Default::default()).unwrap();
        }
        numbers
    }

    #[test]
    fn every_field_is_encoded_when_set() {
        assert_eq!(encoded_numbers(&full()), (1..=28).collect::<Vec<_>>());
    }

    #[test]
    fn keeps_exactly_the_fields_asked_for_and_the_reference_id() {
        for name in NAMES {
            let field = Field::named(name).unwrap();
            let mut r = full();
            let mut keep = FieldSet::NONE;
            keep.insert(field);
            retain(&mut r, keep);
            let mut want = vec![1, field.number()];
            want.dedup();
            assert_eq!(encoded_numbers(&r), want, "{name}");
        }
        let mut r = full();
        retain(&mut r, FieldSet::NONE);
        assert_eq!(encoded_numbers(&r), [1]);
        let mut r = full();
        retain(&mut r, FieldSet::ALL);
        assert_eq!(r, full());
    }
}
