//! Settings: built-in defaults → optional TOML file (`--config`) → environment
//! variables `KTP_GATEWAY__SECTION__KEY`. Loaded and validated once at start;
//! any problem is one line naming the key and its env var, before listening.
//!
//! Secrets (`upstream.app_id`, `upstream.api_key`) may also come from files
//! (`…_FILE`), which is how Kubernetes mounts Secrets. They are held as
//! [`SecretString`], so `Debug` shows `[REDACTED]`, and are never echoed in
//! errors.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::security::{auth::BearerTokens, tls::TlsSettings};

/// Prefix of every environment variable read as configuration.
pub const ENV_PREFIX: &str = "KTP_GATEWAY";

pub const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50051";
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9090";
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(1);
pub const DEFAULT_BASE_URL: &str = "https://api.verihubs.com";
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// As many as may be in flight: a smaller pool closes connections after each
/// burst only to open them again for the next (`bench/README.md`).
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = DEFAULT_MAX_CONNECTIONS;
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
pub const DEFAULT_LOG_FILTER: &str = "info";
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_RETRY_BASE_BACKOFF: Duration = Duration::from_millis(50);
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(1);
pub const DEFAULT_RETRY_BUDGET_RATIO: f64 = 0.2;
pub const DEFAULT_RETRY_BUDGET_MIN_PER_SEC: f64 = 10.0;
pub const DEFAULT_BREAKER_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(10);

/// Validated settings of the whole process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    /// Set: `ktp.v1.KtpService` calls need one of these bearer tokens.
    pub auth: Option<BearerTokens>,
    /// Answer from the embedded sandbox instead of the real upstream.
    pub sandbox: bool,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics on `addr` at `/metrics`.
    pub enabled: bool,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub grpc_addr: SocketAddr,
    /// Upper bound from SIGTERM to exit: in-flight calls that take longer
    /// are abandoned, so a stuck connection cannot hold the process.
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long the server keeps accepting calls while health
    /// already says NOT_SERVING, so that health-checking clients move away
    /// before connections get GOAWAY. Part of `shutdown_grace`.
    pub drain_delay: Duration,
    /// Process-wide cap on `GetKtpResult` calls in flight; past it calls are
    /// refused with RESOURCE_EXHAUSTED `OVERLOADED`.
    pub max_in_flight: usize,
    /// HTTP/2 streams one client connection may have open.
    pub max_concurrent_streams: u32,
    /// Runtime worker threads; 0: one per CPU the process may use (cgroup
    /// quota and affinity included). One runs a single-threaded runtime,
    /// which batches the answers' writes better (`bench/README.md`, change 11).
    pub worker_threads: usize,
    /// Set: the gRPC port speaks TLS (and mutual TLS with a client CA).
    pub tls: Option<TlsSettings>,
    /// Serve gRPC server reflection (v1 and v1alpha).
    pub reflection: bool,
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub base_url: Url,
    pub app_id: SecretString,
    pub api_key: SecretString,
    /// Whole request, connect to last body byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body_bytes: usize,
    pub reference_id_in: ReferenceIdPlacement,
    pub pool_max_idle_per_host: usize,
    pub pool_idle_timeout: Duration,
    /// Cap on upstream requests (and so connections) in flight at once.
    pub max_connections: usize,
    /// Share one upstream request among concurrent calls for the same id.
    pub coalesce: bool,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
}

/// Where `reference_id` goes in the GET. The vendor documents a JSON body; the
/// only public client sends a query parameter; the default sends both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceIdPlacement {
    #[default]
    Both,
    Query,
    Body,
}

impl ReferenceIdPlacement {
    pub fn in_query(self) -> bool {
        matches!(self, Self::Both | Self::Query)
    }
    pub fn in_body(self) -> bool {
        matches!(self, Self::Both | Self::Body)
    }
}

/// Retry parameters of the upstream call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per retry (full jitter).
    pub base_backoff: Duration,
    /// Backoff cap; a longer `Retry-After` is passed to the caller instead.
    pub max_backoff: Duration,
    /// Retries allowed per request, on average (0.2 = 20 %).
    pub budget_ratio: f64,
    /// Retries per second allowed regardless of traffic.
    pub budget_min_per_sec: f64,
}

/// Breaker parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, e.g. `info,ktp_gateway=debug`.
    pub filter: String,
}

/// JSON lines for log collectors, or human-readable text for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

/// Where settings come from besides the defaults.
#[derive(Debug, Default)]
pub struct Sources {
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
    #[error("cannot load configuration: {0}")]
    Load(String),
    #[error("cannot parse config file {path}: not valid TOML (the offending text is not shown)")]
    FileSyntax { path: String },
    #[error("invalid {key} (set with {env}): {why}")]
    Invalid {
        key: String,
        env: String,
        why: String,
    },
    #[error("missing {key}: set {env} or {env}_FILE (or run with --sandbox)")]
    Missing { key: &'static str, env: String },
}

/// Keys whose values must never appear in an error.
const SECRET_KEYS: &[&str] = &["upstream.app_id", "upstream.api_key"];

impl From<config::ConfigError> for ConfigError {
    /// The `config` crate's errors, reworded to name the env var and never
    /// quote file text (a TOML syntax error would show the line, secret and all).
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

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    server: RawServer,
    upstream: RawUpstream,
    log: RawLog,
    metrics: RawMetrics,
    auth: RawAuth,
    sandbox: bool,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMetrics {
    enabled: bool,
    addr: String,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: DEFAULT_METRICS_ADDR.into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawAuth {
    tokens_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    grpc_addr: String,
    #[serde(with = "humantime_serde")]
    shutdown_grace: Duration,
    #[serde(with = "humantime_serde")]
    drain_delay: Duration,
    max_in_flight: usize,
    max_concurrent_streams: u32,
    worker_threads: usize,
    reflection: bool,
    tls: RawTls,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            grpc_addr: DEFAULT_GRPC_ADDR.into(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            drain_delay: DEFAULT_DRAIN_DELAY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            worker_threads: 0,
            reflection: true,
            tls: RawTls::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawUpstream {
    base_url: String,
    app_id: Option<SecretString>,
    app_id_file: Option<PathBuf>,
    api_key: Option<SecretString>,
    api_key_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    #[serde(with = "humantime_serde")]
    connect_timeout: Duration,
    max_body_bytes: usize,
    reference_id_in: ReferenceIdPlacement,
    pool_max_idle_per_host: usize,
    #[serde(with = "humantime_serde")]
    pool_idle_timeout: Duration,
    max_connections: usize,
    coalesce: bool,
    retry: RawRetry,
    breaker: RawBreaker,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRetry {
    max_attempts: u32,
    #[serde(with = "humantime_serde")]
    base_backoff: Duration,
    #[serde(with = "humantime_serde")]
    max_backoff: Duration,
    budget_ratio: f64,
    budget_min_per_sec: f64,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_RETRY_MAX_ATTEMPTS,
            base_backoff: DEFAULT_RETRY_BASE_BACKOFF,
            max_backoff: DEFAULT_RETRY_MAX_BACKOFF,
            budget_ratio: DEFAULT_RETRY_BUDGET_RATIO,
            budget_min_per_sec: DEFAULT_RETRY_BUDGET_MIN_PER_SEC,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBreaker {
    failure_threshold: u32,
    #[serde(with = "humantime_serde")]
    cooldown: Duration,
}

impl Default for RawBreaker {
    fn default() -> Self {
        Self {
            failure_threshold: DEFAULT_BREAKER_FAILURE_THRESHOLD,
            cooldown: DEFAULT_BREAKER_COOLDOWN,
        }
    }
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            app_id: None,
            app_id_file: None,
            api_key: None,
            api_key_file: None,
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            reference_id_in: ReferenceIdPlacement::Both,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            coalesce: true,
            retry: RawRetry::default(),
            breaker: RawBreaker::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLog {
    format: LogFormat,
    filter: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: DEFAULT_LOG_FILTER.into(),
        }
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
        let raw: Raw = built.try_deserialize()?;
        Self::validate(raw, sources.sandbox)
    }

    fn validate(raw: Raw, sandbox_flag: bool) -> Result<Self, ConfigError> {
        let sandbox = sandbox_flag || raw.sandbox;
        positive("server.shutdown_grace", raw.server.shutdown_grace)?;
        if raw.server.drain_delay >= raw.server.shutdown_grace {
            return Err(invalid(
                "server.drain_delay",
                "must be shorter than server.shutdown_grace (it is part of it)",
            ));
        }
        let metrics = MetricsSettings {
            enabled: raw.metrics.enabled,
            addr: raw.metrics.addr.parse().map_err(|_| {
                invalid(
                    "metrics.addr",
                    format!("{:?} is not an IP:port address", raw.metrics.addr),
                )
            })?,
        };
        let auth = match &raw.auth.tokens_file {
            None => None,
            Some(path) => Some(
                BearerTokens::load(path).map_err(|e| invalid("auth.tokens_file", e.to_string()))?,
            ),
        };
        let tls = tls_settings(&raw.server.tls)?;
        let grpc_addr = raw.server.grpc_addr.parse().map_err(|_| {
            invalid(
                "server.grpc_addr",
                format!("{:?} is not an IP:port address", raw.server.grpc_addr),
            )
        })?;
        let u = raw.upstream;
        let base_url = parse_base_url(&u.base_url)?;
        positive("upstream.timeout", u.timeout)?;
        positive("upstream.connect_timeout", u.connect_timeout)?;
        positive("upstream.pool_idle_timeout", u.pool_idle_timeout)?;
        at_least("server.max_in_flight", raw.server.max_in_flight, 1)?;
        at_least(
            "server.max_concurrent_streams",
            raw.server.max_concurrent_streams as usize,
            1,
        )?;
        at_least("upstream.max_connections", u.max_connections, 1)?;
        if raw.server.worker_threads > MAX_WORKER_THREADS {
            return Err(invalid(
                "server.worker_threads",
                format!("must be from 0 (one per CPU) to {MAX_WORKER_THREADS}"),
            ));
        }
        let retry = retry_settings(&u.retry)?;
        at_least(
            "upstream.breaker.failure_threshold",
            u.breaker.failure_threshold as usize,
            1,
        )?;
        positive("upstream.breaker.cooldown", u.breaker.cooldown)?;
        if u.max_body_bytes == 0 {
            return Err(invalid("upstream.max_body_bytes", "must be at least 1"));
        }
        if tracing_subscriber::EnvFilter::try_new(&raw.log.filter).is_err() {
            return Err(invalid(
                "log.filter",
                format!("{:?} is not a valid filter", raw.log.filter),
            ));
        }
        let (app_id, api_key) = if sandbox {
            (
                SecretString::from("sandbox-app-id"),
                SecretString::from("sandbox-api-key"),
            )
        } else {
            (
                secret("upstream.app_id", u.app_id, u.app_id_file.as_deref())?,
                secret("upstream.api_key", u.api_key, u.api_key_file.as_deref())?,
            )
        };
        Ok(Self {
            server: ServerSettings {
                grpc_addr,
                shutdown_grace: raw.server.shutdown_grace,
                drain_delay: raw.server.drain_delay,
                max_in_flight: raw.server.max_in_flight,
                max_concurrent_streams: raw.server.max_concurrent_streams,
                worker_threads: raw.server.worker_threads,
                tls,
                reflection: raw.server.reflection,
            },
            upstream: UpstreamSettings {
                base_url,
                app_id,
                api_key,
                timeout: u.timeout,
                connect_timeout: u.connect_timeout,
                max_body_bytes: u.max_body_bytes,
                reference_id_in: u.reference_id_in,
                pool_max_idle_per_host: u.pool_max_idle_per_host,
                pool_idle_timeout: u.pool_idle_timeout,
                max_connections: u.max_connections,
                coalesce: u.coalesce,
                retry,
                breaker: BreakerSettings {
                    failure_threshold: u.breaker.failure_threshold,
                    cooldown: u.breaker.cooldown,
                },
            },
            log: LogSettings {
                format: raw.log.format,
                filter: raw.log.filter,
            },
            metrics,
            auth,
            sandbox,
        })
    }
}

/// TLS needs both a certificate and a key; a client CA only makes sense with
/// them. Each file must be readable now, so a typo fails at start.
fn tls_settings(raw: &RawTls) -> Result<Option<TlsSettings>, ConfigError> {
    let readable = |key: &'static str, path: &Path| {
        std::fs::metadata(path)
            .map(|_| ())
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
    };
    match (&raw.cert_file, &raw.key_file) {
        (None, None) if raw.client_ca_file.is_some() => Err(invalid(
            "server.tls.client_ca_file",
            "mutual TLS needs server.tls.cert_file and server.tls.key_file too",
        )),
        (None, None) => Ok(None),
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
            if let Some(ca) = &raw.client_ca_file {
                readable("server.tls.client_ca_file", ca)?;
            }
            Ok(Some(TlsSettings {
                cert_file: cert.clone(),
                key_file: key.clone(),
                client_ca_file: raw.client_ca_file.clone(),
            }))
        }
    }
}

/// Upper bound of every count setting: far above any sane value, and low
/// enough that no semaphore or allocation sized by it can fail.
const MAX_COUNT: usize = 1_000_000;
/// Upper bound of every duration setting, so that `now + duration` can never
/// overflow an `Instant`.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// More workers than this would be a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

fn at_least(key: &'static str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min || value > MAX_COUNT {
        Err(invalid(key, format!("must be from {min} to {MAX_COUNT}")))
    } else {
        Ok(())
    }
}

fn retry_settings(r: &RawRetry) -> Result<RetrySettings, ConfigError> {
    if !(1..=10).contains(&r.max_attempts) {
        return Err(invalid(
            "upstream.retry.max_attempts",
            "must be from 1 (no retries) to 10",
        ));
    }
    positive("upstream.retry.base_backoff", r.base_backoff)?;
    positive("upstream.retry.max_backoff", r.max_backoff)?;
    if r.max_backoff < r.base_backoff {
        return Err(invalid(
            "upstream.retry.max_backoff",
            "must be at least upstream.retry.base_backoff",
        ));
    }
    if !(0.0..=1.0).contains(&r.budget_ratio) {
        return Err(invalid(
            "upstream.retry.budget_ratio",
            "must be from 0 to 1",
        ));
    }
    if !(0.0..=1_000_000.0).contains(&r.budget_min_per_sec) {
        return Err(invalid(
            "upstream.retry.budget_min_per_sec",
            "must be from 0 to 1000000",
        ));
    }
    Ok(RetrySettings {
        max_attempts: r.max_attempts,
        base_backoff: r.base_backoff,
        max_backoff: r.max_backoff,
        budget_ratio: r.budget_ratio,
        budget_min_per_sec: r.budget_min_per_sec,
    })
}

fn positive(key: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() || d > MAX_DURATION {
        Err(invalid(key, "must be greater than zero and at most 24h"))
    } else {
        Ok(())
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    const KEY: &str = "upstream.base_url";
    let url: Url = raw
        .parse()
        .map_err(|e| invalid(KEY, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            KEY,
            format!("{raw:?} must be an http:// or https:// URL with a host"),
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(invalid(
            KEY,
            format!(
                "{raw:?} would send the API key unencrypted: use https:// (http:// only for loopback hosts)"
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            KEY,
            "must not contain credentials; use upstream.app_id and upstream.api_key",
        ));
    }
    Ok(url)
}

/// A secret from its value or its file, exactly one of them. Trailing
/// whitespace (the newline editors and `kubectl create secret` leave) is
/// trimmed; what remains must be usable as an HTTP header value.
fn secret(
    key: &'static str,
    value: Option<SecretString>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    let file_key: &'static str = match key {
        "upstream.app_id" => "upstream.app_id_file",
        _ => "upstream.api_key_file",
    };
    let secret = match (value, file) {
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
        (Some(v), None) => v,
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
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(Sources {
            env: env(pairs),
            ..Default::default()
        })
    }

    const CREDS: [(&str, &str); 2] = [
        ("KTP_GATEWAY__UPSTREAM__APP_ID", "app-123"),
        ("KTP_GATEWAY__UPSTREAM__API_KEY", "key-456"),
    ];

    #[test]
    fn defaults_with_credentials() {
        let s = load_env(&CREDS).unwrap();
        assert_eq!(s.server.grpc_addr.to_string(), "0.0.0.0:50051");
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(20));
        assert_eq!(s.server.drain_delay, Duration::from_secs(1));
        assert_eq!(s.upstream.base_url.as_str(), "https://api.verihubs.com/");
        assert_eq!(s.upstream.max_body_bytes, 1024 * 1024);
        assert_eq!(s.upstream.reference_id_in, ReferenceIdPlacement::Both);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.upstream.app_id.expose_secret(), "app-123");
        assert!(!s.sandbox);
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            file,
            "[server]\ngrpc_addr = \"127.0.0.1:6000\"\nshutdown_grace = \"5s\"\n\
             [upstream]\nbase_url = \"http://127.0.0.1:8080\"\ntimeout = \"750ms\"\nreference_id_in = \"query\"\n\
             [log]\nformat = \"text\""
        )
        .unwrap();
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__SERVER__GRPC_ADDR", "127.0.0.1:7000"));
        vars.push(("KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES", "2048"));
        let s = Settings::load(Sources {
            file: Some(file.path().to_owned()),
            env: env(&vars),
            sandbox: false,
        })
        .unwrap();
        assert_eq!(s.server.grpc_addr.to_string(), "127.0.0.1:7000");
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(5));
        assert_eq!(s.upstream.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.upstream.timeout, Duration::from_millis(750));
        assert_eq!(s.upstream.reference_id_in, ReferenceIdPlacement::Query);
        assert_eq!(s.upstream.max_body_bytes, 2048);
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn missing_credentials_name_the_key_and_env_var() {
        let err = load_env(&[]).unwrap_err().to_string();
        assert!(err.contains("upstream.app_id"), "{err}");
        assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID"), "{err}");
        let err = load_env(&CREDS[..1]).unwrap_err().to_string();
        assert!(err.contains("KTP_GATEWAY__UPSTREAM__API_KEY"), "{err}");
    }

    #[test]
    fn sandbox_needs_no_credentials() {
        let s = Settings::load(Sources {
            sandbox: true,
            env: env(&[]),
            ..Default::default()
        })
        .unwrap();
        assert!(s.sandbox);
        let s = load_env(&[("KTP_GATEWAY__SANDBOX", "true")]).unwrap();
        assert!(s.sandbox);
    }

    #[test]
    fn secrets_from_files_are_trimmed() {
        let mut app = tempfile::NamedTempFile::new().unwrap();
        writeln!(app, "file-app-id").unwrap();
        let mut key = tempfile::NamedTempFile::new().unwrap();
        write!(key, "file-key\r\n").unwrap();
        let app_path = app.path().to_str().unwrap().to_owned();
        let key_path = key.path().to_str().unwrap().to_owned();
        let s = load_env(&[
            ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", &app_path),
            ("KTP_GATEWAY__UPSTREAM__API_KEY_FILE", &key_path),
        ])
        .unwrap();
        assert_eq!(s.upstream.app_id.expose_secret(), "file-app-id");
        assert_eq!(s.upstream.api_key.expose_secret(), "file-key");
    }

    #[test]
    fn bad_secrets_are_rejected_without_echoing_them() {
        let err = load_env(&[
            ("KTP_GATEWAY__UPSTREAM__APP_ID", "has space-SECRET"),
            ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");

        let err = load_env(&[
            ("KTP_GATEWAY__UPSTREAM__APP_ID", "a"),
            ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", "/nonexistent"),
            ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");

        let err = load_env(&[
            ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", "/nonexistent/app"),
            ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID_FILE"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key_and_env_var() {
        for (var, value, key) in [
            (
                "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT",
                "99999999999",
                "server.max_in_flight",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__MAX_CONNECTIONS",
                "2305843009213693952",
                "upstream.max_connections",
            ),
            (
                "KTP_GATEWAY__SERVER__WORKER_THREADS",
                "1025",
                "server.worker_threads",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__BREAKER__COOLDOWN",
                "300000000000y",
                "upstream.breaker.cooldown",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__RETRY__MAX_BACKOFF",
                "400d",
                "upstream.retry.max_backoff",
            ),
            ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "2d", "upstream.timeout"),
            (
                "KTP_GATEWAY__SERVER__GRPC_ADDR",
                "localhost",
                "server.grpc_addr",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
                "ftp://x",
                "upstream.base_url",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
                "not a url",
                "upstream.base_url",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
                "https://u:p@host",
                "upstream.base_url",
            ),
            ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "0s", "upstream.timeout"),
            (
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
                "http://api.verihubs.com",
                "upstream.base_url",
            ),
            (
                "KTP_GATEWAY__SERVER__DRAIN_DELAY",
                "30s",
                "server.drain_delay",
            ),
            (
                "KTP_GATEWAY__SERVER__SHUTDOWN_GRACE",
                "0s",
                "server.shutdown_grace",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS",
                "0",
                "upstream.retry.max_attempts",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_RATIO",
                "1.5",
                "upstream.retry.budget_ratio",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__BREAKER__FAILURE_THRESHOLD",
                "0",
                "upstream.breaker.failure_threshold",
            ),
            (
                "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT",
                "0",
                "server.max_in_flight",
            ),
            (
                "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
                "0",
                "upstream.max_body_bytes",
            ),
            ("KTP_GATEWAY__LOG__FILTER", "info,[", "log.filter"),
        ] {
            let mut vars = CREDS.to_vec();
            vars.push((var, value));
            let err = load_env(&vars).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(var),
                "{var}={value}: {err}"
            );
        }
    }

    #[test]
    fn malformed_types_and_unknown_keys_are_errors() {
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__UPSTREAM__TIMEOUT", "soon"));
        assert!(load_env(&vars).is_err());
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__UPSTREAM__BASE_ULR", "http://typo"));
        let err = load_env(&vars).unwrap_err().to_string();
        assert!(err.contains("base_ulr"), "{err}");
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__UPSTREAM__REFERENCE_ID_IN", "header"));
        assert!(load_env(&vars).is_err());
    }

    #[test]
    fn type_errors_name_the_key_and_env_var() {
        for (var, value, key) in [
            ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "soon", "upstream.timeout"),
            ("KTP_GATEWAY__LOG__FORMAT", "xml", "log.format"),
            ("KTP_GATEWAY__SANDBOX", "maybe", "sandbox"),
            (
                "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
                "lots",
                "upstream.max_body_bytes",
            ),
        ] {
            let mut vars = CREDS.to_vec();
            vars.push((var, value));
            let err = load_env(&vars).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(var),
                "{var}={value}: {err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn toml_syntax_errors_never_quote_the_file() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "[upstream]\napi_key = \"key-TOMLSECRET\nbase_url = 1").unwrap();
        let err = Settings::load(Sources {
            file: Some(file.path().to_owned()),
            env: env(&CREDS),
            sandbox: false,
        })
        .unwrap_err()
        .to_string();
        assert!(!err.contains("TOMLSECRET"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains(file.path().to_str().unwrap()), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = load_env(&CREDS).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("app-123") && !shown.contains("key-456"),
            "{shown}"
        );
    }

    #[test]
    fn tls_and_auth_settings_are_checked_at_load() {
        let cert = tempfile::NamedTempFile::new().unwrap();
        let cert_path = cert.path().to_str().unwrap().to_owned();
        for (pairs, key) in [
            (
                vec![("KTP_GATEWAY__SERVER__TLS__CERT_FILE", cert_path.as_str())],
                "server.tls.key_file",
            ),
            (
                vec![("KTP_GATEWAY__SERVER__TLS__KEY_FILE", cert_path.as_str())],
                "server.tls.cert_file",
            ),
            (
                vec![(
                    "KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE",
                    cert_path.as_str(),
                )],
                "server.tls.client_ca_file",
            ),
            (
                vec![
                    ("KTP_GATEWAY__SERVER__TLS__CERT_FILE", cert_path.as_str()),
                    ("KTP_GATEWAY__SERVER__TLS__KEY_FILE", "/nonexistent/key.pem"),
                ],
                "server.tls.key_file",
            ),
            (
                vec![("KTP_GATEWAY__AUTH__TOKENS_FILE", "/nonexistent/tokens")],
                "auth.tokens_file",
            ),
            (
                vec![("KTP_GATEWAY__AUTH__TOKENS_FILE", cert_path.as_str())],
                "auth.tokens_file",
            ),
            (
                vec![("KTP_GATEWAY__METRICS__ADDR", "nowhere")],
                "metrics.addr",
            ),
        ] {
            let mut vars = CREDS.to_vec();
            vars.extend(pairs);
            let err = load_env(&vars).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__SERVER__TLS__CERT_FILE", &cert_path));
        vars.push(("KTP_GATEWAY__SERVER__TLS__KEY_FILE", &cert_path));
        let s = load_env(&vars).unwrap();
        assert!(s.server.tls.is_some() && s.auth.is_none() && s.server.reflection);
        assert_eq!(s.metrics.addr.to_string(), "0.0.0.0:9090");
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "https://api.verihubs.com",
        ] {
            let mut vars = CREDS.to_vec();
            vars.push(("KTP_GATEWAY__UPSTREAM__BASE_URL", ok));
            assert!(load_env(&vars).is_ok(), "{ok}");
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(
            env_name("server.grpc_addr"),
            "KTP_GATEWAY__SERVER__GRPC_ADDR"
        );
        assert_eq!(
            env_name("upstream.api_key_file"),
            "KTP_GATEWAY__UPSTREAM__API_KEY_FILE"
        );
    }
}
