//! `[metrics]`: the Prometheus endpoint, on its own port so that it is never
//! exposed with the gRPC one.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::values::ListenAddr;

/// `[metrics]`: whether and where Prometheus scrapes the gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics on `addr` at `/metrics`.
    pub enabled: bool,
    /// Where the metrics endpoint listens.
    pub addr: ListenAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: ListenAddr::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 9090)),
        }
    }
}
