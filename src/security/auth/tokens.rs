//! One line of the tokens file: `<token>`, or `<token> caller=<name>` and
//! optionally `fields=<path>,<path>,…` (answer field names, as in a
//! `read_mask`). Errors never quote the token, nor any word that could be
//! part of one (a word without `=`, the name of an unknown option).

use std::sync::Arc;

use super::Caller;
use crate::fields::{Field, FieldSet};

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
    /// A line is not in the format.
    #[error("{path} line {line}: {why}")]
    Malformed {
        /// The file, as configured.
        path: String,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        why: LineError,
    },
}

/// What is wrong with a line of the tokens file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A word after the token that is not `caller=` or `fields=`.
    #[error(
        "after the token, expected `caller=<name>` and optionally `fields=<path>,<path>,…` (the rest of the line is not shown: it may hold a token)"
    )]
    UnknownOption,
    /// `caller=` or `fields=` twice.
    #[error("`{0}=` is given twice")]
    Twice(&'static str),
    /// `fields=` without `caller=`.
    #[error("`fields=` needs a `caller=<name>` on the same line (the logs name whom it restricts)")]
    FieldsWithoutCaller,
    /// A caller name outside the allowed characters or length.
    #[error(
        "the caller name must be 1 to 64 of A-Z a-z 0-9 . _ - and not `unknown` (the label of calls with no name)"
    )]
    CallerName,
    /// `fields=` with an empty list or an empty item.
    #[error("`fields=` needs a comma-separated list of answer field names")]
    EmptyFields,
    /// A path that is no top-level field of `GetKtpResultResponse`.
    #[error("`fields=` names `{0}`, which is not a field of GetKtpResultResponse")]
    UnknownField(String),
    /// The same token as an earlier line.
    #[error("the token repeats the one of line {first}")]
    Repeated {
        /// The earlier line.
        first: usize,
    },
    /// A token of an example file (`PLACEHOLDER…`), which must never
    /// authenticate anyone: the file was deployed without being filled in.
    #[error(
        "the token begins with `{PLACEHOLDER_PREFIX}`: an example value, not a token; replace it with a real one"
    )]
    Placeholder,
}

/// How the example files' tokens begin (deploy/overlays/prod); a token that
/// begins so refuses the start.
pub const PLACEHOLDER_PREFIX: &str = "PLACEHOLDER";

/// A token line, parsed.
pub(super) struct Entry<'a> {
    pub(super) token: &'a str,
    pub(super) caller: Caller,
}

/// `Ok(None)` for a blank or comment line.
pub(super) fn parse_line(line: &str) -> Result<Option<Entry<'_>>, LineError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let Some(token) = words.next() else {
        return Ok(None);
    };
    if token.starts_with(PLACEHOLDER_PREFIX) {
        return Err(LineError::Placeholder);
    }
    let (mut name, mut fields) = (None, None);
    for word in words {
        match word.split_once('=') {
            Some(("caller", value)) if name.is_none() => name = Some(value),
            Some(("fields", value)) if fields.is_none() => fields = Some(value),
            Some(("caller", _)) => return Err(LineError::Twice("caller")),
            Some(("fields", _)) => return Err(LineError::Twice("fields")),
            _ => return Err(LineError::UnknownOption),
        }
    }
    let name = name.map(caller_name).transpose()?;
    let allowed = match fields {
        None => FieldSet::ALL,
        Some(_) if name.is_none() => return Err(LineError::FieldsWithoutCaller),
        Some(list) => field_list(list)?,
    };
    Ok(Some(Entry {
        token,
        caller: Caller { name, allowed },
    }))
}

fn caller_name(name: &str) -> Result<Arc<str>, LineError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if (1..=64).contains(&name.len()) && name.bytes().all(allowed) && name != super::UNKNOWN_CALLER
    {
        Ok(Arc::from(name))
    } else {
        Err(LineError::CallerName)
    }
}

fn field_list(list: &str) -> Result<FieldSet, LineError> {
    let mut set = FieldSet::NONE;
    for path in list.split(',') {
        if path.is_empty() {
            return Err(LineError::EmptyFields);
        }
        let field = Field::named(path).ok_or_else(|| LineError::UnknownField(path.to_owned()))?;
        set.insert(field);
    }
    Ok(set)
}
