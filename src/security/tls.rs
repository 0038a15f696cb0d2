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

/// Which of the TLS files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `cert_file`.
    Cert,
    /// `key_file`.
    Key,
    /// `client_ca_file`.
    ClientCa,
}

/// A TLS file that is readable but that the server could not use.
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
pub struct TlsCheckError {
    /// The file at fault.
    pub file: TlsFile,
    /// What is wrong with it (its path, never its contents).
    pub why: String,
}

impl TlsSettings {
    /// Reads and parses the files as the server will when it starts (same
    /// parsers, same key-matches-certificate check), so that a certificate
    /// or CA that is not PEM, or a key that is not one or not the
    /// certificate's, fails at config load instead of after the gRPC port is
    /// bound, as "transport error".
    pub fn check(&self) -> Result<(), TlsCheckError> {
        use rustls::{
            RootCertStore, ServerConfig,
            pki_types::{PrivateKeyDer, pem::PemObject},
            server::WebPkiClientVerifier,
        };
        let fail = |file, why: String| TlsCheckError { file, why };
        let read = |file, path: &PathBuf| {
            read(path).map_err(|e| {
                fail(
                    file,
                    format!("cannot read {}: {}", path.display(), e.source),
                )
            })
        };
        let certs = |file, path: &PathBuf| {
            let pem = read(file, path)?;
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(file, format!("{} is not valid PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(fail(
                    file,
                    format!(
                        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        path.display()
                    ),
                ));
            }
            Ok(certs)
        };
        let chain = certs(TlsFile::Cert, &self.cert_file)?;
        let key_pem = read(TlsFile::Key, &self.key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            fail(
                TlsFile::Key,
                format!(
                    "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    self.key_file.display()
                ),
            )
        })?;
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(TlsFile::Cert, format!("no TLS version available: {e}")))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in certs(TlsFile::ClientCa, path)? {
                    roots.add(cert).map_err(|e| {
                        fail(
                            TlsFile::ClientCa,
                            format!("{} holds an unusable CA certificate: {e}", path.display()),
                        )
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder(roots.into())
                    .build()
                    .map_err(|e| {
                        fail(
                            TlsFile::ClientCa,
                            format!("{} cannot verify clients: {e}", path.display()),
                        )
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder.with_single_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => fail(
                TlsFile::Key,
                format!(
                    "{} is not the private key of the certificate in {}",
                    self.key_file.display(),
                    self.cert_file.display()
                ),
            ),
            rustls::Error::InvalidCertificate(e) => fail(
                TlsFile::Cert,
                format!(
                    "{} holds an unusable certificate: {e}",
                    self.cert_file.display()
                ),
            ),
            e => fail(
                TlsFile::Key,
                format!(
                    "{} holds an unusable private key: {e}",
                    self.key_file.display()
                ),
            ),
        })?;
        Ok(())
    }
}
