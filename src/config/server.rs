//! `[server]`: the gRPC listener, its limits, its TLS, and shutdown.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{
    origins::CorsOrigins,
    values::{Count, Count32, ListenAddr, PositiveDuration, Threads, known},
};
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
    /// Client connections open at once; past it, new ones wait in the
    /// kernel's accept queue until one closes. Each connection holds h2
    /// buffers, so this bounds their memory and file descriptors.
    pub max_connections: Count,
    /// A connection that has not finished TLS and sent the HTTP/2 preface
    /// (or the head of its first HTTP/1.1 request) by then is closed, so
    /// that silent sockets cannot hold connection slots; an HTTP/1.1
    /// request's head must also arrive this long after its first byte.
    pub handshake_timeout: PositiveDuration,
    /// After this (±10 % jitter, so clients do not reconnect in step) a
    /// connection gets GOAWAY (HTTP/1.1: `Connection: close` on its next
    /// answer) and the client reconnects through the Service:
    /// after a scale-out, new pods get their share of long-lived clients
    /// within this time. 5 min: gRPC's default is never, which leaves new
    /// pods idle; a reconnect every 5 min per client costs nothing.
    pub max_connection_age: PositiveDuration,
    /// Calls in flight at the GOAWAY of `max_connection_age` may finish for
    /// this long; then the connection is closed. 60 s outlasts the longest
    /// call with the defaults (`wait.max_wait` 30 s plus one upstream attempt).
    pub max_connection_age_grace: PositiveDuration,
    /// HTTP/2 PING to an idle client this often, so that dead peers behind
    /// load balancers and NAT are noticed (and idle timeouts kept at bay).
    pub keepalive_interval: PositiveDuration,
    /// A PING not answered within this closes the connection. HTTP/1.1 has
    /// no PING: a connection of it idle for `keepalive_interval` + this
    /// after its last answer is closed, the same bound on a dead peer.
    pub keepalive_timeout: PositiveDuration,
    /// A request message must have fully arrived this long after its
    /// request headers, or the call ends (DEADLINE_EXCEEDED
    /// `REQUEST_READ_TIMEOUT`) and frees what it held: a client that sends
    /// headers and stalls cannot hold an image slot or a call for longer.
    pub request_read_timeout: PositiveDuration,
    /// Browser origins allowed to call `ktp.v1.KtpService` through gRPC-Web
    /// (CORS); empty: none, no answer carries a CORS header. Never `*`:
    /// bearer tokens travel in headers.
    pub cors_allowed_origins: CorsOrigins,
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
            max_connections: known::valid(Count::new(1024)),
            handshake_timeout: known::secs(10),
            max_connection_age: known::secs(300),
            max_connection_age_grace: known::secs(60),
            keepalive_interval: known::secs(30),
            keepalive_timeout: known::secs(10),
            request_read_timeout: known::secs(30),
            cors_allowed_origins: CorsOrigins::default(),
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
