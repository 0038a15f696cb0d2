//! Bearer-token authentication of callers of `ktp.v1.KtpService`, and what
//! each caller may see.
//!
//! Tokens come from a file, one per line (blank lines and `#` comments
//! ignored), so that a Kubernetes Secret can hold them and rotation is a
//! Secret update plus a rollout. A line may name its caller and restrict the
//! answer fields it sees (the format is in README.md, "Security"). Only SHA-256 digests
//! are kept in memory, and a presented token is compared with every one of
//! them in constant time, so neither the comparison time nor a memory dump
//! gives a token away. Health checks are not authenticated (the kubelet
//! sends no token).

mod tokens;

use std::{path::Path, sync::Arc};

use subtle::{ConditionallySelectable, ConstantTimeEq};

pub use tokens::{LineError, PLACEHOLDER_PREFIX, TokensError};

use crate::fields::FieldSet;

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

/// Who made a call, as its token's line in the tokens file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `caller=` of the token's line; `None` when it names none.
    pub name: Option<Arc<str>>,
    /// The answer fields the caller may see (`fields=`); every field when
    /// the line restricts none.
    pub allowed: FieldSet,
}

impl Caller {
    /// A caller with no name that may see every field: every call when
    /// authentication is off, and a token on a line of its own.
    pub const ANYONE: Self = Self {
        name: None,
        allowed: FieldSet::ALL,
    };

    /// The caller's name as a metric label: only names from the tokens
    /// file, so the label's values stay bounded.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(UNKNOWN_CALLER)
    }
}

/// The metric label of a call whose caller has no name.
pub const UNKNOWN_CALLER: &str = "unknown";

/// The accepted tokens, as digests, each with its caller.
#[derive(Clone)]
pub struct BearerTokens {
    digests: Vec<[u8; 32]>,
    callers: Vec<Caller>,
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
    /// Reads the tokens file; a line that is not in the format fails the
    /// load, naming the file and the line number, never the token.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let shown = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: shown(),
            source,
        })?;
        match Self::parse(&text) {
            Ok(Some(tokens)) => Ok(tokens),
            Ok(None) => Err(TokensError::Empty { path: shown() }),
            Err((line, why)) => Err(TokensError::Malformed {
                path: shown(),
                line,
                why,
            }),
        }
    }

    /// The tokens of a file's text; `Ok(None)` if there is none, else the
    /// first malformed line's number and what is wrong with it.
    pub fn parse(text: &str) -> Result<Option<Self>, (usize, tokens::LineError)> {
        let mut found = Self {
            digests: Vec::new(),
            callers: Vec::new(),
        };
        let mut lines = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let Some(entry) = tokens::parse_line(line).map_err(|why| (number, why))? else {
                continue;
            };
            let d = digest(entry.token.as_bytes());
            if let Some(first) = found.digests.iter().position(|k| *k == d) {
                return Err((
                    number,
                    tokens::LineError::Repeated {
                        first: lines[first],
                    },
                ));
            }
            found.digests.push(d);
            found.callers.push(entry.caller);
            lines.push(number);
        }
        Ok((!found.digests.is_empty()).then_some(found))
    }

    /// The caller of `token`, if it is one of the accepted tokens, in time
    /// independent of which one (or none) it matches.
    pub fn caller_of(&self, token: &str) -> Option<&Caller> {
        let presented = digest(token.as_bytes());
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, known) in (0u32..).zip(&self.digests) {
            let eq = known.ct_eq(&presented);
            index.conditional_assign(&i, eq);
            matched |= eq;
        }
        let matched: bool = matched.into();
        matched.then(|| self.callers.get(index as usize)).flatten()
    }

    /// Whether `token` is one of the accepted tokens.
    pub fn accepts(&self, token: &str) -> bool {
        self.caller_of(token).is_some()
    }

    /// Checks a call's `authorization` header value (`None` when absent;
    /// a value that is not visible ASCII should be passed as `Some("")`).
    pub fn check(&self, authorization: Option<&str>) -> Result<&Caller, Unauthenticated> {
        let value = authorization.ok_or(Unauthenticated::Missing)?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Unauthenticated::Invalid)?;
        self.caller_of(token).ok_or(Unauthenticated::Invalid)
    }

    /// The caller names the file gives, for the metric label's bound.
    pub fn caller_names(&self) -> impl Iterator<Item = &str> {
        self.callers.iter().filter_map(|c| c.name.as_deref())
    }
}

#[cfg(test)]
mod tests;
