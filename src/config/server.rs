//! `[server]`: the gRPC listener, its limits, its TLS, and shutdown.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::values::{Count, Count32, ListenAddr, PositiveDuration, Threads, known};
use crate::security::tls::TlsSettings;

/// `[server]`: how callers reach the gateway and how much of it they may take.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Where gRPC listens; port 0 picks a free one (tests).
    pub grpc_addr: ListenAddr,
    /// Upper bound from SIGTERM to exit: in-flight calls that take longer
    /// are abandoned, so a stuck connection cannot hold the process.
    pub shutdown_grace: PositiveDuration,
    /// After SIGTERM, how long the server keeps accepting calls while health
    /// already says NOT_SERVING, so that health-checking clients move away
    /// before connections get GOAWAY. Part of `shutdown_grace`.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Process-wide cap on `GetKtpResult` calls in flight; past it calls are
    /// refused with RESOURCE_EXHAUSTED `OVERLOADED`. Unset: derived at start
    /// from the memory the process may use (`resilience::capacity`), so the
    /// gateway sheds before the kernel kills it.
    pub max_in_flight: Option<Count>,
    /// HTTP/2 streams one client connection may have open, so that one
    /// client cannot take the whole `max_in_flight`.
    pub max_concurrent_streams: Count32,
    /// Runtime worker threads; 0: one per CPU the process may use (cgroup
    /// quota and affinity included). One runs a single-threaded runtime,
    /// which batches the answers' writes better (`bench/README.md`, change 11).
    pub worker_threads: Threads,
    /// Serve gRPC server reflection (v1 and v1alpha), for grpcurl and the like.
    pub reflection: bool,
    /// Set: the gRPC port speaks TLS (and mutual TLS with a client CA).
    pub tls: TlsFiles,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            grpc_addr: ListenAddr::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 50051)),
            shutdown_grace: known::secs(20),
            drain_delay: Duration::from_secs(1),
            max_in_flight: None,
            max_concurrent_streams: known::valid(Count32::new(1024)),
            worker_threads: known::valid(Threads::new(0)),
            reflection: true,
            tls: TlsFiles::default(),
        }
    }
}

/// PEM files of the gRPC port's TLS: none, or a certificate and its key,
/// plus optionally a client CA. The pairing and that each file is readable
/// are checked at load.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain; with `key_file`, the gRPC port speaks TLS.
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Set: mutual TLS, clients must present a certificate this CA signed.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsFiles {
    /// What the server needs to speak TLS; `None`: plaintext.
    pub fn settings(&self) -> Option<TlsSettings> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert_file: cert.clone(),
                key_file: key.clone(),
                client_ca_file: self.client_ca_file.clone(),
            }),
            _ => None,
        }
    }
}
