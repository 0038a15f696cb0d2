//! `[upstream]`: where and how the Verihubs API is called, with its
//! credentials, and the retry and breaker policy around each call.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    secrets::Secret,
    values::{
        Attempts, BaseUrl, Count, Count32, MessageBytes, PerSecond, PositiveDuration, Ratio, known,
    },
};

/// `[upstream]`: the vendor's API and everything that bounds a call to it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// The vendor's API, or a stand-in for it (tests, a proxy) on loopback.
    pub base_url: BaseUrl,
    /// `App-ID` header; required unless sandbox, exclusive with `app_id_file`.
    pub app_id: Secret,
    /// File holding the App-ID (a Kubernetes Secret mount), read at load.
    pub app_id_file: Option<PathBuf>,
    /// `API-Key` header; required unless sandbox, exclusive with `api_key_file`.
    pub api_key: Secret,
    /// File holding the API key, read at load.
    pub api_key_file: Option<PathBuf>,
    /// Whole request, connect to last body byte: a slow upstream must not
    /// hold a call (and its slot) for longer.
    pub timeout: PositiveDuration,
    /// TCP + TLS connect, shorter than `timeout` so an unreachable host
    /// fails early.
    pub connect_timeout: PositiveDuration,
    /// Largest body read, so a runaway upstream cannot exhaust memory.
    pub max_body_bytes: MessageBytes,
    /// Where the GET carries `reference_id`.
    pub reference_id_in: ReferenceIdPlacement,
    /// Idle keep-alive connections kept: as many as may be in flight, since
    /// a smaller pool closes connections after each burst only to open them
    /// again for the next (`bench/README.md`).
    pub pool_max_idle_per_host: usize,
    /// Idle connections are closed after this, before the upstream or a
    /// middlebox drops them silently.
    pub pool_idle_timeout: PositiveDuration,
    /// Cap on upstream requests (and so connections) in flight at once.
    pub max_connections: Count,
    /// Share one upstream request among concurrent calls for the same id.
    pub coalesce: bool,
    /// PEM certificates trusted in addition to the platform's roots, for a
    /// private CA or a TLS-inspecting egress proxy; read at load.
    pub ca_file: Option<PathBuf>,
    /// `[upstream.retry]`: transient failures are retried, within a budget.
    pub retry: RetrySettings,
    /// `[upstream.breaker]`: a down upstream is failed fast, not waited on.
    pub breaker: BreakerSettings,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            base_url: known::parse("https://api.verihubs.com"),
            app_id: Secret::default(),
            app_id_file: None,
            api_key: Secret::default(),
            api_key_file: None,
            timeout: known::secs(10),
            connect_timeout: known::secs(3),
            max_body_bytes: known::valid(MessageBytes::new(1024 * 1024)),
            reference_id_in: ReferenceIdPlacement::Both,
            pool_max_idle_per_host: 2048,
            pool_idle_timeout: known::secs(90),
            max_connections: known::valid(Count::new(2048)),
            coalesce: true,
            ca_file: None,
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
        }
    }
}

/// Where `reference_id` goes in the GET. The vendor documents a JSON body; the
/// only public client sends a query parameter; the default sends both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceIdPlacement {
    /// Query and body: whichever the upstream reads, it finds the id.
    #[default]
    Both,
    /// `?reference_id=…` only, as the public client does.
    Query,
    /// A JSON body only, as the vendor documents.
    Body,
}

impl ReferenceIdPlacement {
    /// Whether the request carries `?reference_id=…`.
    pub fn in_query(self) -> bool {
        matches!(self, Self::Both | Self::Query)
    }
    /// Whether the request carries a JSON body `{"reference_id": …}`.
    pub fn in_body(self) -> bool {
        matches!(self, Self::Both | Self::Body)
    }
}

/// Retry parameters of the upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: Attempts,
    /// First backoff ceiling; doubles per retry (full jitter).
    pub base_backoff: PositiveDuration,
    /// Backoff cap; a longer `Retry-After` is passed to the caller instead.
    pub max_backoff: PositiveDuration,
    /// Retries allowed per request, on average (0.2 = 20 %), so that retries
    /// cannot multiply the load on a struggling upstream.
    pub budget_ratio: Ratio,
    /// Retries per second allowed regardless of traffic, so that a quiet
    /// gateway can still retry.
    pub budget_min_per_sec: PerSecond,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: known::valid(Attempts::new(3)),
            base_backoff: known::millis(50),
            max_backoff: known::secs(1),
            budget_ratio: known::valid(Ratio::new(0.2)),
            budget_min_per_sec: known::valid(PerSecond::new(10.0)),
        }
    }
}

/// Breaker parameters: fail fast while the upstream is down, probe it now
/// and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failed attempts that open the circuit.
    pub failure_threshold: Count32,
    /// How long an open circuit fails fast before a probe.
    pub cooldown: PositiveDuration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: known::valid(Count32::new(5)),
            cooldown: known::secs(10),
        }
    }
}

/// The certificates of `upstream.ca_file`, each checked as a trust anchor
/// the way the TLS client will use it, so that a file that is not PEM, holds
/// no certificate or a broken one fails at load, not at the first call.
pub(super) fn check_ca_file(path: &std::path::Path) -> Result<usize, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{} holds an unusable CA certificate: {e}", path.display()))?;
    }
    match roots.len() {
        0 => Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        n => Ok(n),
    }
}
