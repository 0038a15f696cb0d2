//! A reference id that is worth sending upstream ("parse, don't validate").
//!
//! The upstream's own rules for reference ids are undocumented, so the gateway
//! only rejects what can never be right: empty or blank values, values longer
//! than [`MAX_LEN`] bytes, and control characters (which would corrupt logs and
//! have no place in an id). Everything else goes upstream as given, untrimmed.

use std::fmt;

/// Longest reference id accepted, in bytes of UTF-8.
pub const MAX_LEN: usize = 128;

/// Why a reference id was rejected locally. The messages name the rule, never
/// the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReferenceId {
    /// Not set at all: proto3 sends an unset string as `""`.
    #[error("reference_id is required")]
    Empty,
    /// Only white space: no upstream job has such an id.
    #[error("reference_id must not be blank")]
    Blank,
    /// Longer than [`MAX_LEN`] bytes (the length is safe to show; the value
    /// is not).
    #[error("reference_id must be at most {MAX_LEN} bytes, got {0}")]
    TooLong(usize),
    /// A control character, which would corrupt log lines.
    #[error("reference_id must not contain control characters")]
    ControlCharacter,
}

impl InvalidReferenceId {
    /// A stable, machine-readable name of the violated rule.
    pub fn constraint(&self) -> &'static str {
        match self {
            Self::Empty => "required",
            Self::Blank => "not_blank",
            Self::TooLong(_) => "max_length",
            Self::ControlCharacter => "no_control_characters",
        }
    }
}

/// A reference id that passed local validation.
#[derive(Clone, PartialEq, Eq)]
pub struct ReferenceId(String);

impl ReferenceId {
    /// Validates `raw`, keeping it exactly as given when it is accepted.
    ///
    /// ```
    /// use ktp_gateway::reference_id::{InvalidReferenceId, ReferenceId};
    ///
    /// assert_eq!(ReferenceId::parse("ID_CHECK_123".into()).unwrap().as_str(), "ID_CHECK_123");
    /// assert_eq!(ReferenceId::parse("  ".into()), Err(InvalidReferenceId::Blank));
    /// ```
    pub fn parse(raw: String) -> Result<Self, InvalidReferenceId> {
        if raw.is_empty() {
            return Err(InvalidReferenceId::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(InvalidReferenceId::TooLong(raw.len()));
        }
        if raw.chars().any(char::is_control) {
            return Err(InvalidReferenceId::ControlCharacter);
        }
        if raw.chars().all(char::is_whitespace) {
            return Err(InvalidReferenceId::Blank);
        }
        Ok(Self(raw))
    }

    /// The id as the caller sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ReferenceId, InvalidReferenceId> {
        ReferenceId::parse(s.to_owned())
    }

    #[test]
    fn accepts_the_vendor_examples_unchanged() {
        for ok in [
            "ID_CHECK_123",
            "REFERENCE_ID_KTP_B_V",
            "0b7c1f9e-3c1a-4c59-9d7e-6b1f0d8e2a11",
            " padded ",
            "x",
        ] {
            assert_eq!(parse(ok).map(|r| r.as_str().to_owned()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_empty_blank_long_and_control_characters() {
        assert_eq!(parse(""), Err(InvalidReferenceId::Empty));
        assert_eq!(parse("   "), Err(InvalidReferenceId::Blank));
        assert_eq!(parse("\u{3000}"), Err(InvalidReferenceId::Blank));
        assert_eq!(parse("ab\ncd"), Err(InvalidReferenceId::ControlCharacter));
        assert_eq!(parse("\t"), Err(InvalidReferenceId::ControlCharacter));
        assert_eq!(parse("a\u{7f}"), Err(InvalidReferenceId::ControlCharacter));
        assert_eq!(parse("a\u{85}"), Err(InvalidReferenceId::ControlCharacter));
        assert_eq!(
            parse(&"a".repeat(129)),
            Err(InvalidReferenceId::TooLong(129))
        );
    }

    #[test]
    fn length_limit_counts_bytes_not_characters() {
        assert!(parse(&"a".repeat(MAX_LEN)).is_ok());
        // 43 three-byte characters = 129 bytes.
        assert_eq!(
            parse(&"€".repeat(43)),
            Err(InvalidReferenceId::TooLong(129))
        );
        assert!(parse(&"€".repeat(42)).is_ok());
    }

    #[test]
    fn errors_never_echo_the_value() {
        let err = parse(&"SECRET".repeat(30)).unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
