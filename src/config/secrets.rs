//! Credentials, given as a value or as a file (`…_FILE`, how Kubernetes
//! mounts Secrets). Held as [`SecretString`], so neither `Debug` nor
//! `Serialize` nor any error shows them.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::{ConfigError, env_name, invalid};

/// A credential: as set, then, once loaded, from its value or its file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(Option<SecretString>);

impl Secret {
    /// A value known at build time (the sandbox's).
    pub(super) fn fixed(value: &'static str) -> Self {
        Self(Some(SecretString::from(value)))
    }

    /// A credential set in code (tests, benches), as if read from its
    /// variable.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Some(SecretString::from(value.into())))
    }
}

/// Empty until loaded: a loaded [`Settings`](super::Settings) always holds
/// one (or the sandbox's).
impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.as_ref().map_or("", ExposeSecret::expose_secret)
    }
}

/// Never the value: only that the key exists.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

/// The secret `key` from its value or its file `file_key`, exactly one of
/// them. Trailing whitespace (the newline editors and `kubectl create secret`
/// leave) is trimmed; what remains must be usable as an HTTP header value.
pub(super) fn resolve(
    key: &'static str,
    file_key: &'static str,
    value: &Secret,
    file: Option<&Path>,
) -> Result<Secret, ConfigError> {
    let secret = match (&value.0, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                key,
                format!(
                    "set either {} or {}, not both",
                    env_name(key),
                    env_name(file_key)
                ),
            ));
        }
        (Some(v), None) => v.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(file_key, format!("cannot read {}: {e}", path.display())))?;
            SecretString::from(text.trim_end().to_owned())
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                key,
                env: env_name(key),
            });
        }
    };
    let v = secret.expose_secret();
    if v.is_empty() {
        return Err(ConfigError::Missing {
            key,
            env: env_name(key),
        });
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            key,
            "must be printable ASCII without spaces (the value is not shown)",
        ));
    }
    Ok(Secret(Some(secret)))
}
