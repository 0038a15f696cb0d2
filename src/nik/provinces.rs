//! The province table: the Ministry of Home Affairs (Kemendagri) province
//! codes a NIK's first two digits carry, with the names OCR reads off a
//! card's "PROVINSI" line.
//!
//! Source: Kepmendagri 300.2.2-2138/2025 (the 38 provinces in force), as
//! summarised in the `cahyadsn/wilayah` dataset (MIT); the provinces' laws of
//! formation for `formed_from`. These are Kemendagri codes, not the statistics bureau's
//! (BPS): the vendor's own sample NIK proves it. No retired province code is
//! known to be carried by NIKs in use, so the table holds only codes in force.
//!
//! `formed_from` names the province a newer one was split from (the law that
//! formed it in the comment): a NIK keeps the code of its first issue for
//! life, so a card printed with the newer province may carry the older code.

/// One province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Province {
    /// The two-digit Kemendagri code.
    pub code: u8,
    /// Its name, as printed (without "PROVINSI").
    pub name: &'static str,
    /// Other ways a card or an OCR may name it.
    pub aliases: &'static [&'static str],
    /// The codes of the provinces it was split from, if any.
    pub formed_from: &'static [u8],
}

const fn p(
    code: u8,
    name: &'static str,
    aliases: &'static [&'static str],
    formed_from: &'static [u8],
) -> Province {
    Province {
        code,
        name,
        aliases,
        formed_from,
    }
}

/// The 38 provinces in force, by code.
pub const PROVINCES: &[Province] = &[
    p(
        11,
        "ACEH",
        &[
            "NANGGROE ACEH DARUSSALAM",
            "NAD",
            "DI ACEH",
            "DAERAH ISTIMEWA ACEH",
        ],
        &[],
    ),
    p(12, "SUMATERA UTARA", &["SUMUT", "SUMATRA UTARA"], &[]),
    p(13, "SUMATERA BARAT", &["SUMBAR", "SUMATRA BARAT"], &[]),
    p(14, "RIAU", &[], &[]),
    p(15, "JAMBI", &[], &[]),
    p(16, "SUMATERA SELATAN", &["SUMSEL", "SUMATRA SELATAN"], &[]),
    p(17, "BENGKULU", &[], &[]),
    p(18, "LAMPUNG", &[], &[]),
    // UU 27/2000, from Sumatera Selatan.
    p(
        19,
        "KEPULAUAN BANGKA BELITUNG",
        &["BANGKA BELITUNG", "KEP BANGKA BELITUNG", "BABEL"],
        &[16],
    ),
    // UU 25/2002, from Riau.
    p(21, "KEPULAUAN RIAU", &["KEP RIAU", "KEPRI"], &[14]),
    p(
        31,
        "DKI JAKARTA",
        &[
            "DAERAH KHUSUS IBUKOTA JAKARTA",
            "JAKARTA",
            "DAERAH KHUSUS JAKARTA",
            "DK JAKARTA",
        ],
        &[],
    ),
    p(32, "JAWA BARAT", &["JABAR"], &[]),
    p(33, "JAWA TENGAH", &["JATENG"], &[]),
    p(
        34,
        "DI YOGYAKARTA",
        &["DAERAH ISTIMEWA YOGYAKARTA", "YOGYAKARTA", "DIY"],
        &[],
    ),
    p(35, "JAWA TIMUR", &["JATIM"], &[]),
    // UU 23/2000, from Jawa Barat.
    p(36, "BANTEN", &[], &[32]),
    p(51, "BALI", &[], &[]),
    p(52, "NUSA TENGGARA BARAT", &["NTB"], &[]),
    p(53, "NUSA TENGGARA TIMUR", &["NTT"], &[]),
    p(61, "KALIMANTAN BARAT", &["KALBAR"], &[]),
    p(62, "KALIMANTAN TENGAH", &["KALTENG"], &[]),
    p(63, "KALIMANTAN SELATAN", &["KALSEL"], &[]),
    p(64, "KALIMANTAN TIMUR", &["KALTIM"], &[]),
    // UU 20/2012, from Kalimantan Timur.
    p(65, "KALIMANTAN UTARA", &["KALTARA"], &[64]),
    p(71, "SULAWESI UTARA", &["SULUT"], &[]),
    p(72, "SULAWESI TENGAH", &["SULTENG"], &[]),
    p(73, "SULAWESI SELATAN", &["SULSEL"], &[]),
    p(74, "SULAWESI TENGGARA", &["SULTRA"], &[]),
    // UU 38/2000, from Sulawesi Utara.
    p(75, "GORONTALO", &[], &[71]),
    // UU 26/2004, from Sulawesi Selatan.
    p(76, "SULAWESI BARAT", &["SULBAR"], &[73]),
    p(81, "MALUKU", &[], &[]),
    // UU 46/1999, from Maluku.
    p(82, "MALUKU UTARA", &["MALUT"], &[81]),
    p(91, "PAPUA", &["IRIAN JAYA"], &[]),
    // UU 45/1999 (in effect 2003), from Papua.
    p(92, "PAPUA BARAT", &["IRIAN JAYA BARAT"], &[91]),
    // UU 14, 15 and 16/2022 from Papua; UU 29/2022 from Papua Barat. A card
    // printed with one of them may carry 91 or 92 (issued before the split).
    p(93, "PAPUA SELATAN", &[], &[91, 92]),
    p(94, "PAPUA TENGAH", &[], &[91, 92]),
    p(95, "PAPUA PEGUNUNGAN", &[], &[91, 92]),
    p(96, "PAPUA BARAT DAYA", &[], &[91, 92]),
];

/// The province under a NIK's first two digits.
pub fn by_code(code: u8) -> Option<&'static Province> {
    PROVINCES.iter().find(|p| p.code == code)
}

/// Upper-case letters and digits only, words joined by nothing: what OCR
/// keeps of a name whatever it does to case, spaces and punctuation.
fn key(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The province a card's "state" line names (`PROVINSI JAWA BARAT`,
/// `Jawa Barat`, `DKI JAKARTA`, `DI YOGYAKARTA`, …), if any.
pub fn by_name(raw: &str) -> Option<&'static Province> {
    let k = key(raw);
    let k = k
        .strip_prefix("PROVINSI")
        .or_else(|| k.strip_prefix("PROV"))
        .unwrap_or(&k);
    if k.is_empty() {
        return None;
    }
    BY_KEY
        .iter()
        .find_map(|(name, province)| (name == k).then_some(*province))
}

/// Every name and alias as its [`key`], made once: every answer looks its
/// `state` up here, and keying the table per lookup cost a seventh of a
/// call's instructions (`bench/README.md`, "issue 10, every point merged").
static BY_KEY: std::sync::LazyLock<Vec<(String, &'static Province)>> =
    std::sync::LazyLock::new(|| {
        PROVINCES
            .iter()
            .flat_map(|p| {
                std::iter::once(p.name)
                    .chain(p.aliases.iter().copied())
                    .map(move |name| (key(name), p))
            })
            .collect()
    });

impl Province {
    /// Whether a NIK first issued under `code` agrees with a card printed
    /// with this province: the same code, or one it was split from.
    pub fn agrees_with(&self, code: u8) -> bool {
        self.code == code || self.formed_from.contains(&code)
    }
}
