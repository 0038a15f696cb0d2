//! The fields of a KTP answer (`GetKtpResultResponse`) by name, as sets:
//! what a `read_mask` asks for and what a caller's token allows. A leaf, so
//! that the tokens file (`security`) and the gRPC edge share one list.
//!
//! A set is a bitmask over field numbers, so intersecting a caller's
//! allowance with a mask costs nothing per call.

/// Every field of `GetKtpResultResponse`, by field number − 1 (a test checks
/// this list against the compiled contract).
pub const NAMES: [&str; 28] = [
    "reference_id",
    "message",
    "status_code",
    "nik",
    "full_name",
    "place_of_birth",
    "date_of_birth",
    "gender",
    "blood_type",
    "address",
    "rt_rw",
    "administrative_village",
    "district",
    "city",
    "state",
    "religion",
    "marital_status",
    "occupation",
    "nationality",
    "image_quality",
    "gender_value",
    "blood_type_value",
    "religion_value",
    "marital_status_value",
    "nationality_value",
    "date_of_birth_value",
    "rt_rw_value",
    "checks",
];

/// A field of the answer, by its number in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field(u8);

impl Field {
    /// The field named `name` exactly (a top-level field name), if any.
    pub fn named(name: &str) -> Option<Self> {
        let index = NAMES.iter().position(|n| *n == name)?;
        u8::try_from(index + 1).ok().map(Self)
    }

    /// The field's number in `GetKtpResultResponse`.
    pub fn number(self) -> u32 {
        u32::from(self.0)
    }

    /// The field's name in the contract.
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0) - 1]
    }
}

/// A set of answer fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSet(u32);

impl FieldSet {
    /// Every field: no mask, no restriction.
    pub const ALL: Self = Self((1 << NAMES.len()) - 1);
    /// No field.
    pub const NONE: Self = Self(0);

    /// Adds `field`.
    pub fn insert(&mut self, field: Field) {
        self.0 |= 1 << (field.0 - 1);
    }

    /// Whether `field` is in the set.
    pub fn contains(self, field: Field) -> bool {
        self.0 & (1 << (field.0 - 1)) != 0
    }

    /// Whether the field numbered `number` is in the set (`false` for a
    /// number the answer does not have).
    pub fn has_number(self, number: u32) -> bool {
        (1..=NAMES.len() as u32).contains(&number) && self.0 & (1 << (number - 1)) != 0
    }

    /// The fields in both sets.
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether every field is in the set.
    pub fn is_all(self) -> bool {
        self == Self::ALL
    }

    /// The set of `paths`, or the first path that names no field.
    pub fn parse<'a>(paths: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut set = Self::NONE;
        for path in paths {
            set.insert(Field::named(path).ok_or(path)?);
        }
        Ok(set)
    }

    /// The fields of the set, in field-number order.
    pub fn fields(self) -> impl Iterator<Item = Field> {
        (1..=NAMES.len() as u8)
            .map(Field)
            .filter(move |f| self.contains(*f))
    }
}

/// Why a read mask cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskError<'a> {
    /// A path that is no top-level field.
    Unknown(&'a str),
    /// A field outside the caller's allowance.
    NotAllowed(Field),
}

/// The fields an answer keeps: those `paths` name (every field when there
/// are none: an unset or empty mask), within `allowed`. `reference_id` is
/// always allowed, since every answer carries it.
pub fn visible(paths: &[String], allowed: FieldSet) -> Result<FieldSet, MaskError<'_>> {
    if paths.is_empty() {
        return Ok(allowed);
    }
    let mut asked = FieldSet::NONE;
    for path in paths {
        let field = Field::named(path).ok_or(MaskError::Unknown(path))?;
        if field.number() != 1 && !allowed.contains(field) {
            return Err(MaskError::NotAllowed(field));
        }
        asked.insert(field);
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn names_are_the_contracts_fields_in_number_order() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes");
        let response = set
            .file
            .iter()
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == "GetKtpResultResponse")
            .expect("GetKtpResultResponse in the contract");
        let mut fields: Vec<(i32, &str)> = response
            .field
            .iter()
            .map(|f| (f.number(), f.name()))
            .collect();
        fields.sort_unstable();
        let want: Vec<(i32, &str)> = NAMES.iter().zip(1..).map(|(n, i)| (i, *n)).collect();
        assert_eq!(fields, want);
    }

    #[test]
    fn parses_top_level_names_only() {
        let set = FieldSet::parse(["nik", "checks", "reference_id"]).unwrap();
        let names: Vec<_> = set.fields().map(Field::name).collect();
        assert_eq!(names, ["reference_id", "nik", "checks"]);
        assert!(set.has_number(28) && !set.has_number(5) && !set.has_number(0));
        assert!(!set.has_number(29));
        for bad in ["checks.nik_format", "NIK", "", " nik", "rtRw", "unknown"] {
            assert_eq!(FieldSet::parse(["nik", bad]), Err(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_read_mask_within_an_allowance() {
        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let lite = FieldSet::parse(["nik", "full_name", "checks"]).unwrap();
        let nik = Field::named("nik").unwrap();
        let address = Field::named("address").unwrap();
        let cases: &[(&[&str], FieldSet, Result<FieldSet, MaskError<'_>>)] = &[
            (&[], FieldSet::ALL, Ok(FieldSet::ALL)),
            (&[], lite, Ok(lite)),
            (
                &["nik"],
                FieldSet::ALL,
                Ok(FieldSet::parse(["nik"]).unwrap()),
            ),
            (&["nik", "nik"], lite, Ok(FieldSet::parse(["nik"]).unwrap())),
            (
                &["reference_id"],
                lite,
                Ok(FieldSet::parse(["reference_id"]).unwrap()),
            ),
            (&["address"], lite, Err(MaskError::NotAllowed(address))),
            (
                &["nik", "address"],
                lite,
                Err(MaskError::NotAllowed(address)),
            ),
            (
                &["checks.nik_format"],
                lite,
                Err(MaskError::Unknown("checks.nik_format")),
            ),
            (&["Nik"], FieldSet::ALL, Err(MaskError::Unknown("Nik"))),
            (&["", "nik"], FieldSet::ALL, Err(MaskError::Unknown(""))),
            (&["*"], FieldSet::ALL, Err(MaskError::Unknown("*"))),
            // The unknown path is reported even after an allowed one.
            (&["nik", "dob"], lite, Err(MaskError::Unknown("dob"))),
        ];
        for (mask, allowed, want) in cases {
            let mask = paths(mask);
            assert_eq!(visible(&mask, *allowed), *want, "{mask:?}");
        }
        assert!(lite.contains(nik));
    }

    #[test]
    fn all_holds_every_field_and_intersects() {
        assert_eq!(FieldSet::ALL.fields().count(), NAMES.len());
        assert!(FieldSet::ALL.is_all());
        let nik = FieldSet::parse(["nik"]).unwrap();
        assert_eq!(FieldSet::ALL.intersect(nik), nik);
        assert_eq!(nik.intersect(FieldSet::NONE), FieldSet::NONE);
        for (i, name) in NAMES.iter().enumerate() {
            let field = Field::named(name).unwrap();
            assert_eq!(field.number() as usize, i + 1);
            assert_eq!(field.name(), *name);
        }
    }
}
