//! Settings: built-in defaults → optional TOML file (`--config`) → environment
//! variables `KTP_GATEWAY__SECTION__KEY`. Loaded and validated once at start;
//! any problem is one line naming the key and its env var, before listening.
//!
//! Each setting is one field of its section's struct: its type checks the
//! value as it is deserialised (`values.rs`), its default is in the section's
//! `Default`, and it has a row in the README's configuration table (a test
//! holds the two together). Only rules between settings are checked after.
//!
//! Secrets (`upstream.app_id`, `upstream.api_key`) may also come from files
//! (`…_FILE`), which is how Kubernetes mounts Secrets. They are held as
//! [`SecretString`](secrecy::SecretString), so `Debug` shows `[REDACTED]`, and
//! are never echoed in errors.

use std::{collections::HashMap, path::PathBuf};

use serde::{Deserialize, Serialize};

mod auth;
mod log;
mod metrics;
mod origins;
mod sandbox;
mod secrets;
mod server;
mod submit;
#[cfg(test)]
mod tests;
mod trace;
mod upstream;
mod values;
mod wait;

pub use auth::{AuthSettings, TokensFile};
pub use log::{LogFormat, LogSettings};
pub use metrics::MetricsSettings;
pub use origins::CorsOrigins;
pub use sandbox::SandboxSettings;
pub use secrets::Secret;
pub use server::{ServerSettings, TlsFiles};
pub use submit::SubmitSettings;
pub use trace::{OtlpEndpoint, TraceSettings};
pub use upstream::{BreakerSettings, ReferenceIdPlacement, RetrySettings, UpstreamSettings};
pub use values::{
    Attempts, BaseUrl, Count, Count32, InvalidValue, ListenAddr, LogFilter, MessageBytes,
    PerSecond, PositiveDuration, Ratio, Threads, WaitDuration,
};
pub use wait::{FirstPoll, WaitSettings};

/// Prefix of every environment variable read as configuration.
pub const ENV_PREFIX: &str = "KTP_GATEWAY";

/// Settings of the whole process, validated.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: the gRPC listener and its limits.
    pub server: ServerSettings,
    /// `[upstream]`: the Verihubs API, its credentials and the resilience
    /// around it.
    pub upstream: UpstreamSettings,
    /// `[log]`: format and level of the log lines.
    pub log: LogSettings,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// `[auth]`: bearer tokens callers must present.
    pub auth: AuthSettings,
    /// `[submit]`: the images `SubmitKtp` and `ExtractKtp` take.
    pub submit: SubmitSettings,
    /// `[wait]`: how calls wait for unfinished jobs.
    pub wait: WaitSettings,
    /// `[sandbox]`: the embedded look-alike of the vendor's sandbox.
    pub sandbox: SandboxSettings,
    /// `[trace]`: OpenTelemetry span export.
    pub trace: TraceSettings,
}

/// Where settings come from besides the defaults.
#[derive(Debug, Default)]
pub struct Sources {
    /// The TOML file given with `--config`; `None`: defaults and environment only.
    pub file: Option<PathBuf>,
    /// Environment to read; `None` reads the process environment. Tests pass
    /// a map instead of mutating the process's.
    pub env: Option<HashMap<String, String>>,
    /// `--sandbox` on the command line (same as `sandbox = true`).
    pub sandbox: bool,
}

/// A setting could not be loaded or is invalid. Never carries a secret, and
/// renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read at all (e.g. the config file is missing);
    /// the message is the `config` crate's, reworded where it could quote a
    /// secret.
    #[error("cannot load configuration: {0}")]
    Load(String),
    /// The config file is not TOML. Only its path is shown: the parser's
    /// message would quote the offending line, which may hold a secret.
    #[error("cannot parse config file {path}: not valid TOML (the offending text is not shown)")]
    FileSyntax {
        /// The file, as given with `--config`.
        path: String,
    },
    /// A setting has a value its type refuses, or breaks a rule between
    /// settings.
    #[error("invalid {key} (set with {env}): {why}")]
    Invalid {
        /// The dotted key (`upstream.timeout`), as in the README's table.
        key: String,
        /// The environment variable that sets it, so the fix is one line.
        env: String,
        /// What is wrong; never the value of a secret.
        why: String,
    },
    /// Nothing authenticates callers outside the sandbox: no tokens file,
    /// no mutual TLS, and no explicit opt-out.
    #[error(
        "callers are not authenticated: set auth.tokens_file (KTP_GATEWAY__AUTH__TOKENS_FILE) to a file of bearer tokens, \
         or server.tls.client_ca_file (KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE) for mutual TLS, \
         or auth.allow_unauthenticated = true (KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED) if a mesh or network policy \
         alone guards the port (--sandbox needs none of these)"
    )]
    Unauthenticated,
    /// A setting with no default is not set (the credentials, unless the
    /// sandbox answers).
    #[error("missing {key}: set {env} or {env}_FILE (or run with --sandbox)")]
    Missing {
        /// The dotted key.
        key: &'static str,
        /// Its environment variable (the `_FILE` variant works too).
        env: String,
    },
}

/// Keys whose values must never appear in an error.
const SECRET_KEYS: &[&str] = &["upstream.app_id", "upstream.api_key"];

impl From<config::ConfigError> for ConfigError {
    /// The `config` crate's errors, reworded to name the env var and never
    /// quote file text (a TOML syntax error would show the line, secret and
    /// all). A setting type's own check arrives here as a message at its key.
    fn from(err: config::ConfigError) -> Self {
        use config::ConfigError as E;
        match err {
            E::FileParse { uri, .. } => Self::FileSyntax {
                path: uri.unwrap_or_default(),
            },
            E::Type {
                key: Some(key),
                unexpected,
                expected,
                ..
            } => {
                let why = if SECRET_KEYS.contains(&key.as_str()) {
                    format!("expected {expected}")
                } else {
                    format!("expected {expected}, found {unexpected}")
                };
                Self::Invalid {
                    env: env_name(&key),
                    key,
                    why,
                }
            }
            E::At {
                error,
                key: Some(key),
                ..
            } => {
                let why = if SECRET_KEYS.contains(&key.as_str()) {
                    "wrong type".to_owned()
                } else {
                    match *error {
                        E::Message(m) => m,
                        other => other.to_string(),
                    }
                };
                Self::Invalid {
                    env: env_name(&key),
                    key,
                    why,
                }
            }
            other => Self::Load(other.to_string().replace('\n', " ")),
        }
    }
}

/// The environment variable that sets `key` (`upstream.app_id` →
/// `KTP_GATEWAY__UPSTREAM__APP_ID`).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

fn invalid(key: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        env: env_name(key),
        why: why.into(),
    }
}

impl Settings {
    /// Loads and validates the settings.
    pub fn load(sources: Sources) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = &sources.file {
            builder = builder.add_source(
                config::File::from(file.as_path())
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(sources.env);
        let built = builder
            .add_source(env)
            .build()
            .map_err(|e| match (e, &sources.file) {
                // Name the file as the operator gave it.
                (config::ConfigError::FileParse { .. }, Some(file)) => ConfigError::FileSyntax {
                    path: file.display().to_string(),
                },
                (e, _) => e.into(),
            })?;
        let settings: Self = built.try_deserialize()?;
        settings.validate(sources.sandbox)
    }

    /// Settings built in code (tests, benches: `Settings::default()` with
    /// fields set) checked by the rules [`Settings::load`] applies after
    /// reading its sources, with the credentials resolved.
    pub fn checked(self) -> Result<Self, ConfigError> {
        self.validate(false)
    }

    /// The rules between settings; each setting's own were checked as it was
    /// deserialised. Resolves the credentials.
    fn validate(mut self, sandbox_flag: bool) -> Result<Self, ConfigError> {
        self.sandbox.enabled |= sandbox_flag;
        if self.server.drain_delay >= *self.server.shutdown_grace {
            return Err(invalid(
                "server.drain_delay",
                "must be shorter than server.shutdown_grace (it is part of it)",
            ));
        }
        check_tls(&self.server.tls)?;
        let retry = &self.upstream.retry;
        if retry.max_backoff < retry.base_backoff {
            return Err(invalid(
                "upstream.retry.max_backoff",
                "must be at least upstream.retry.base_backoff",
            ));
        }
        if self.wait.max_poll_interval < self.wait.poll_interval {
            return Err(invalid(
                "wait.max_poll_interval",
                "must be at least wait.poll_interval",
            ));
        }
        if let Some(ca) = &self.upstream.ca_file {
            upstream::check_ca_file(ca).map_err(|why| invalid("upstream.ca_file", why))?;
        }
        let u = &mut self.upstream;
        if self.sandbox.enabled {
            u.app_id = Secret::fixed("sandbox-app-id");
            u.api_key = Secret::fixed("sandbox-api-key");
        } else {
            u.app_id = secrets::resolve(
                "upstream.app_id",
                "upstream.app_id_file",
                &u.app_id,
                u.app_id_file.as_deref(),
            )?;
            u.api_key = secrets::resolve(
                "upstream.api_key",
                "upstream.api_key_file",
                &u.api_key,
                u.api_key_file.as_deref(),
            )?;
        }
        let authenticated = self.auth.tokens_file.is_some()
            || self.server.tls.client_ca_file.is_some()
            || self.auth.allow_unauthenticated;
        if !self.sandbox.enabled && !authenticated {
            return Err(ConfigError::Unauthenticated);
        }
        Ok(self)
    }
}

/// TLS needs both a certificate and a key; a client CA only makes sense with
/// them. Each file must be readable and usable now, so a typo or a wrong
/// file fails at start.
fn check_tls(tls: &TlsFiles) -> Result<(), ConfigError> {
    let readable = |key: &'static str, path: &std::path::Path| {
        std::fs::metadata(path)
            .map(|_| ())
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
    };
    match (&tls.cert_file, &tls.key_file) {
        (None, None) if tls.client_ca_file.is_some() => Err(invalid(
            "server.tls.client_ca_file",
            "mutual TLS needs server.tls.cert_file and server.tls.key_file too",
        )),
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid(
            "server.tls.key_file",
            "server.tls.cert_file is set, so this is required",
        )),
        (None, Some(_)) => Err(invalid(
            "server.tls.cert_file",
            "server.tls.key_file is set, so this is required",
        )),
        (Some(cert), Some(key)) => {
            readable("server.tls.cert_file", cert)?;
            readable("server.tls.key_file", key)?;
            if let Some(ca) = &tls.client_ca_file {
                readable("server.tls.client_ca_file", ca)?;
            }
            // Parsed now, as the server will parse them: a bad file must stop
            // the start here, not after the gRPC port is bound.
            let Some(settings) = tls.settings() else {
                return Ok(());
            };
            settings.check().map_err(|e| invalid(e.file.key(), e.why))
        }
    }
}
