//! The printed words of a card as typed values. Recognition is forgiving
//! about what OCR does to printed words: case, spacing and punctuation are
//! ignored ("LAKI - LAKI", "laki laki" and "LAKI-LAKI" are all male).
//! Anything not recognised is `_UNSPECIFIED` (or `None`); the raw string is
//! still there for the caller.

use crate::proto::{self, BloodType, Gender, MaritalStatus, Nationality, Religion};

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

/// `N/N` (RT/RW; spaces and leading zeros allowed, ASCII digits only, each
/// side a `u32`) → the two numbers, else `None`.
///
/// ```
/// use ktp_gateway::convert::parse_rt_rw;
///
/// let v = parse_rt_rw(" 002 / 013 ").unwrap();
/// assert_eq!((v.rt, v.rw), (2, 13));
/// assert!(parse_rt_rw("002-013").is_none());
/// ```
pub fn parse_rt_rw(raw: &str) -> Option<proto::RtRw> {
    let (rt, rw) = raw.split_once('/')?;
    let number = |s: &str| -> Option<u32> {
        let s = s.trim_matches(' ');
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Leading zeros never overflow: only the significant digits count.
        let significant = s.trim_start_matches('0');
        if significant.is_empty() {
            return Some(0);
        }
        significant.parse().ok()
    };
    Some(proto::RtRw {
        rt: number(rt)?,
        rw: number(rw)?,
    })
}
