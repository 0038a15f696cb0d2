//! `[auth]`: bearer tokens that `ktp.v1.KtpService` calls must present.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use crate::security::auth::BearerTokens;

/// `[auth]`: whether calls need a bearer token, and which ones are accepted.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Set: calls need one of the tokens in this file; unset: no auth (a
    /// mesh or the network policy guards the port).
    pub tokens_file: Option<TokensFile>,
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

impl<'de> Deserialize<'de> for TokensFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = PathBuf::deserialize(d)?;
        let tokens = BearerTokens::load(&path).map_err(D::Error::custom)?;
        Ok(Self { path, tokens })
    }
}

/// The path, never the tokens.
impl Serialize for TokensFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}
