//! TLS on the gRPC port: server certificate and key from PEM files, and for
//! mutual TLS a CA whose certificates clients must present. The files are
//! read once at start; rotating them is a rollout (Kubernetes restarts pods
//! when a mounted Secret changes only if told to, so say it in the runbook).

use std::path::PathBuf;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Paths of the PEM files; validated to be readable at config load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain.
    pub cert_file: PathBuf,
    /// The private key of `cert_file`.
    pub key_file: PathBuf,
    /// Set: clients must present a certificate signed by this CA.
    pub client_ca_file: Option<PathBuf>,
}

/// A TLS file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read TLS file {path}: {source}")]
pub struct TlsFileError {
    /// The file, as configured.
    pub path: String,
    /// Why the read failed.
    #[source]
    pub source: std::io::Error,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        path: path.display().to_string(),
        source,
    })
}

impl TlsSettings {
    /// The tonic TLS configuration. PEM contents are checked by tonic when
    /// the server is built.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsFileError> {
        let identity = Identity::from_pem(read(&self.cert_file)?, read(&self.key_file)?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca_file {
            config = config.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(config)
    }
}
