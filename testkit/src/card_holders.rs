//! The fictional card holders the tests use, in one place: each suite that
//! searches the gateway's output for a personal value must search for the
//! same values the upstream (fake or sandbox) sent.

use serde_json::{Value, json};

/// The vendor's documented sample success body, verbatim from its page
/// (`SULISTYONO`): what the in-process tests' fake upstream answers.
pub const VENDOR_SAMPLE_SUCCESS: &str = r#"{ "message": "success extract ktp data", "data": { "nik": "3506042602660001", "city": "KABUPATEN KEDIRI", "rt_rw": "002/003", "state": "PROVINSI JAWA TIMUR", "gender": "LAKI-LAKI", "address": "JL.AYYA DSN PURWOKERTO", "district": "NGADILUWIH", "religion": "ISLAM", "full_name": "SULISTYONO", "blood_type": "-", "occupation": "GURU", "nationality": "WNI", "date_of_birth": "26-02-1966", "marital_status": "KAWIN", "place_of_birth": "KEDIRI", "administrative_village": "PURWOKERTO", "image_quality": { "blur": false, "dark": false, "grayscale": false, "flashlight": false } } }"#;

/// [`VENDOR_SAMPLE_SUCCESS`] as JSON.
pub fn sample_success() -> Value {
    serde_json::from_str(VENDOR_SAMPLE_SUCCESS).expect("the vendor sample is JSON")
}

/// Personal values of the embedded sandbox's fictional card holder
/// (`SITI CONTOH`, written in `src/sandbox.rs`): none may ever reach the
/// gateway's output.
pub const SANDBOX_PERSONAL_VALUES: &[&str] = &[
    "SITI CONTOH",
    "3273016505900002",
    "25-05-1990",
    "JL. CONTOH NO. 1",
    "PEREMPUAN",
    "BANDUNG WETAN",
    "CITARUM",
    "KARYAWAN SWASTA",
];

/// The card holder the fault matrix's fake upstream returns. Every value is
/// unusual enough that finding it in the gateway's output can only mean a
/// leak.
pub mod person {
    use super::{Value, json};

    /// `nik`.
    pub const NIK: &str = "3578015712880004";
    /// `full_name`.
    pub const FULL_NAME: &str = "KARTIKA UJIAN RAHASIA";
    /// `place_of_birth`.
    pub const PLACE_OF_BIRTH: &str = "SINGKAWANG";
    /// `date_of_birth`.
    pub const DATE_OF_BIRTH: &str = "17-12-1988";
    /// `gender`.
    pub const GENDER: &str = "PEREMPUAN";
    /// `address`.
    pub const ADDRESS: &str = "JL. MELATI UJIAN NO. 42";
    /// `rt_rw`.
    pub const RT_RW: &str = "007/011";
    /// `administrative_village`.
    pub const VILLAGE: &str = "SUKAMAJU UJIAN";
    /// `district`.
    pub const DISTRICT: &str = "CIBEUNYING UJIAN";
    /// `city`.
    pub const CITY: &str = "KOTA UJIAN BARAT";
    /// `state`.
    pub const STATE: &str = "PROVINSI UJIAN TENGAH";
    /// `religion`.
    pub const RELIGION: &str = "KATOLIK";
    /// `marital_status`.
    pub const MARITAL_STATUS: &str = "CERAI HIDUP";
    /// `occupation`.
    pub const OCCUPATION: &str = "PENELITI KEAMANAN";

    /// Every personal value above (blood type and nationality are too short
    /// to search for: `AB`, `WNI`).
    pub const ALL: &[&str] = &[
        NIK,
        FULL_NAME,
        PLACE_OF_BIRTH,
        DATE_OF_BIRTH,
        GENDER,
        ADDRESS,
        RT_RW,
        VILLAGE,
        DISTRICT,
        CITY,
        STATE,
        RELIGION,
        MARITAL_STATUS,
        OCCUPATION,
    ];

    /// The `data` object of the card holder.
    pub fn data() -> Value {
        json!({
            "nik": NIK, "full_name": FULL_NAME, "place_of_birth": PLACE_OF_BIRTH,
            "date_of_birth": DATE_OF_BIRTH, "gender": GENDER, "blood_type": "AB",
            "address": ADDRESS, "rt_rw": RT_RW, "administrative_village": VILLAGE,
            "district": DISTRICT, "city": CITY, "state": STATE, "religion": RELIGION,
            "marital_status": MARITAL_STATUS, "occupation": OCCUPATION, "nationality": "WNI",
            "image_quality": {"blur": false, "dark": false, "flashlight": false, "grayscale": false}
        })
    }

    /// A clean success for the card holder.
    pub fn success() -> Value {
        json!({"message": "success extract ktp data", "data": data()})
    }
}
