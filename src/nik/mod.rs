//! The NIK (Nomor Induk Kependudukan), the card's 16-digit number
//! `PP KK CC DD MM YY SSSS`: province, regency/city and district of first
//! issue, day of birth (+40 for women), month, two-digit year, serial.
//!
//! Its digits repeat what else the card says, so a misread digit or a misread
//! birth date usually shows as a disagreement between fields. The checks
//! here say whether they agree; they are signals, never errors: a NIK keeps
//! its first issue's region and date for life, so a genuine card can differ.

pub mod provinces;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The fields agree.
    Pass,
    /// They disagree (or, for the format, the NIK is malformed).
    Fail,
    /// An input is missing or not recognised.
    NotChecked,
}

/// The four checks of one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// The NIK is well formed.
    pub nik_format: Check,
    /// Its DDMMYY agrees with the date of birth.
    pub nik_birth_date: Check,
    /// Its day (+40 for women) agrees with the gender.
    pub nik_gender: Check,
    /// Its province code agrees with the printed province.
    pub nik_province: Check,
}

/// What a card says besides its NIK, as far as the checks need it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Card<'a> {
    /// The NIK as read.
    pub nik: &'a str,
    /// The parsed date of birth (year, month, day), if it parsed.
    pub date_of_birth: Option<(i32, u32, u32)>,
    /// `Some(true)` for a woman, `Some(false)` for a man, `None` if unknown.
    pub female: Option<bool>,
    /// The printed province line.
    pub state: &'a str,
}

/// A well-formed NIK's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nik {
    /// Province code of first issue.
    pub province: u8,
    /// Regency (01–69) or city (71–99) code.
    pub regency: u8,
    /// District code, from 01.
    pub district: u8,
    /// Day of birth as encoded: 1–31, or 41–71 for women.
    pub day: u8,
    /// Month of birth.
    pub month: u8,
    /// Last two digits of the year of birth.
    pub year: u8,
    /// Serial, from 0001.
    pub serial: u16,
}

impl Nik {
    /// The parts of `raw`, if it is well formed: exactly 16 ASCII digits; a
    /// province code in force; regency 01–69 or 71–99; district from 01; a
    /// day of 01–31 or 41–71 that, with the month and year (19YY or 20YY),
    /// makes a real date; a serial other than 0000.
    pub fn parse(raw: &str) -> Option<Self> {
        let b = raw.as_bytes();
        if b.len() != 16 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        let nik = Self {
            province: two(0),
            regency: two(2),
            district: two(4),
            day: two(6),
            month: two(8),
            year: two(10),
            serial: u16::from(two(12)) * 100 + u16::from(two(14)),
        };
        let real_date = [1900, 2000].iter().any(|century| {
            is_date(
                century + i32::from(nik.year),
                nik.month.into(),
                nik.birth_day().into(),
            )
        });
        let ok = provinces::by_code(nik.province).is_some()
            && matches!(nik.regency, 1..=69 | 71..=99)
            && nik.district >= 1
            && matches!(nik.day, 1..=31 | 41..=71)
            && real_date
            && nik.serial != 0;
        ok.then_some(nik)
    }

    /// The day of birth without the +40.
    pub fn birth_day(&self) -> u8 {
        self.day % 40
    }

    /// Whether the NIK says its holder is a woman.
    pub fn female(&self) -> bool {
        self.day > 40
    }
}

/// The four checks of `card`.
pub fn check(card: &Card<'_>) -> Checks {
    use Check::{Fail, NotChecked, Pass};
    let verdict = |agree: bool| if agree { Pass } else { Fail };
    let nik = Nik::parse(card.nik);
    let nik_format = match (card.nik.trim().is_empty(), nik) {
        (true, _) => NotChecked,
        (false, Some(_)) => Pass,
        (false, None) => Fail,
    };
    let Some(nik) = nik else {
        return Checks {
            nik_format,
            nik_birth_date: NotChecked,
            nik_gender: NotChecked,
            nik_province: NotChecked,
        };
    };
    let nik_birth_date = match card.date_of_birth {
        None => NotChecked,
        Some((year, month, day)) => verdict(
            day == u32::from(nik.birth_day())
                && month == u32::from(nik.month)
                && year.rem_euclid(100) == i32::from(nik.year),
        ),
    };
    let nik_gender = card
        .female
        .map_or(NotChecked, |female| verdict(female == nik.female()));
    let nik_province = provinces::by_name(card.state).map_or(NotChecked, |printed| {
        verdict(printed.agrees_with(nik.province))
    });
    Checks {
        nik_format,
        nik_birth_date,
        nik_gender,
        nik_province,
    }
}

fn is_date(year: i32, month: u32, day: u32) -> bool {
    let days = match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests;
