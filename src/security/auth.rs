//! Bearer-token authentication of callers of `ktp.v1.KtpService`.
//!
//! Tokens come from a file, one per line (blank lines and `#` comments
//! ignored), so that a Kubernetes Secret can hold them and rotation is a
//! Secret update plus a rollout. Only SHA-256 digests are kept in memory, and a
//! presented token is compared with every one of them in constant time, so
//! neither the comparison time nor a memory dump gives a token away. Health
//! checks are not authenticated (the kubelet sends no token).

use std::path::Path;

use subtle::ConstantTimeEq;

/// Why a caller was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// No `authorization: Bearer …` metadata: the client is misconfigured,
    /// which the message says how to fix.
    #[error("the call carries no bearer token (metadata `authorization: Bearer <token>`)")]
    Missing,
    /// A token that matches none; the message never echoes it.
    #[error("the call's bearer token is not valid")]
    Invalid,
}

/// The tokens file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file cannot be read (missing, permissions).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file, as configured.
        path: String,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// Only blank lines and comments: with no token, no call could succeed,
    /// so this is a mistake, not "auth off".
    #[error("{path} holds no token")]
    Empty {
        /// The file, as configured.
        path: String,
    },
}

/// The accepted tokens, as digests.
#[derive(Clone)]
pub struct BearerTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerTokens({} tokens)", self.digests.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl BearerTokens {
    /// Reads the tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).ok_or_else(|| TokensError::Empty {
            path: path.display().to_string(),
        })
    }

    /// One token per line; `None` if there is none.
    pub fn parse(text: &str) -> Option<Self> {
        let digests: Vec<_> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|t| digest(t.as_bytes()))
            .collect();
        (!digests.is_empty()).then_some(Self { digests })
    }

    /// Whether `token` is one of the accepted tokens, in time independent of
    /// which one (or none) it matches.
    pub fn accepts(&self, token: &str) -> bool {
        let presented = digest(token.as_bytes());
        let mut matched = subtle::Choice::from(0);
        for known in &self.digests {
            matched |= known.ct_eq(&presented);
        }
        matched.into()
    }

    /// Checks a call's `authorization` header value (`None` when absent;
    /// a value that is not visible ASCII should be passed as `Some("")`).
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Unauthenticated> {
        let value = authorization.ok_or(Unauthenticated::Missing)?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Unauthenticated::Invalid)?;
        if self.accepts(token) {
            Ok(())
        } else {
            Err(Unauthenticated::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> Option<&str> {
        Some(value)
    }

    #[test]
    fn parses_one_token_per_line_ignoring_blanks_and_comments() {
        let t = BearerTokens::parse("# service A\ntoken-a\n\n  token-b  \r\n").unwrap();
        assert!(t.accepts("token-a") && t.accepts("token-b"));
        assert!(!t.accepts("token-c") && !t.accepts("") && !t.accepts("# service A"));
        assert!(BearerTokens::parse("# only a comment\n\n").is_none());
    }

    #[test]
    fn checks_the_authorization_metadata() {
        let t = BearerTokens::parse("s3cret").unwrap();
        assert_eq!(t.check(md("Bearer s3cret")), Ok(()));
        assert_eq!(t.check(md("bearer s3cret")), Ok(()));
        assert_eq!(t.check(None), Err(Unauthenticated::Missing));
        assert_eq!(t.check(md("Bearer wrong")), Err(Unauthenticated::Invalid));
        assert_eq!(t.check(md("Basic s3cret")), Err(Unauthenticated::Invalid));
        assert_eq!(t.check(md("s3cret")), Err(Unauthenticated::Invalid));
    }

    #[test]
    fn debug_shows_no_token() {
        let t = BearerTokens::parse("visible-token").unwrap();
        assert!(!format!("{t:?}").contains("visible-token"));
    }
}
