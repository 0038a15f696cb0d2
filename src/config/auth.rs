//! `[auth]`: bearer tokens that `ktp.v1.KtpService` calls must present.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use crate::security::auth::{BearerTokens, TokensError};

/// `[auth]`: whether calls need a bearer token, and which ones are accepted.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Set: calls need one of the tokens in this file.
    pub tokens_file: Option<TokensFile>,
    /// The explicit opt-out of caller authentication outside the sandbox
    /// (a mesh or the network policy guards the port). Without it, a
    /// gateway with neither `tokens_file` nor mutual TLS refuses to start:
    /// national-ID data must not be served to anyone by default. Tokens,
    /// when set, apply regardless.
    pub allow_unauthenticated: bool,
}

impl AuthSettings {
    /// The accepted tokens; `None`: calls need none.
    pub fn tokens(&self) -> Option<&BearerTokens> {
        self.tokens_file.as_ref().map(|f| &f.tokens)
    }
}

/// A tokens file, read as the settings load, so that a missing or empty one
/// stops the start rather than the first call.
#[derive(Debug, Clone)]
pub struct TokensFile {
    path: PathBuf,
    tokens: BearerTokens,
}

impl TokensFile {
    /// Reads the file at `path` now, as loading the settings does (for
    /// settings built in code: tests, benches).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, TokensError> {
        let path = path.into();
        let tokens = BearerTokens::load(&path)?;
        Ok(Self { path, tokens })
    }
}

impl<'de> Deserialize<'de> for TokensFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::load(PathBuf::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// The path, never the tokens.
impl Serialize for TokensFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}
