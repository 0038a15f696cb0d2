//! TLS on the gRPC port: server certificate and key from PEM files, and for
//! mutual TLS a CA whose certificates clients must present. The files are
//! read once at start; rotating them is a rollout (Kubernetes restarts pods
//! when a mounted Secret changes only if told to, so say it in the runbook).

use std::{path::PathBuf, sync::Arc};

use rustls::ServerConfig;

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

fn read(path: &PathBuf) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
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

impl TlsFile {
    /// The setting that names the file.
    pub fn key(self) -> &'static str {
        match self {
            Self::Cert => "server.tls.cert_file",
            Self::Key => "server.tls.key_file",
            Self::ClientCa => "server.tls.client_ca_file",
        }
    }
}

/// HTTP/2, which gRPC needs: offered first, so gRPC clients get it.
const ALPN_H2: &[u8] = b"h2";
/// HTTP/1.1, for gRPC-Web callers (browsers, `curl`) that do not speak h2.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

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
    /// Parses the files as the server does when it starts, so that a
    /// certificate or CA that is not PEM, or a key that is not one or not
    /// the certificate's, fails at config load instead of after the gRPC
    /// port is bound.
    pub fn check(&self) -> Result<(), TlsCheckError> {
        self.server_config().map(drop)
    }

    /// The gRPC port's rustls configuration: the certificate chain and key,
    /// a client certificate verifier for mutual TLS, ALPN `h2` and
    /// `http/1.1` (in that order of preference). One builder
    /// for the check at load and the server at start, so both agree.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsCheckError> {
        use rustls::{
            RootCertStore,
            pki_types::{PrivateKeyDer, pem::PemObject},
            server::WebPkiClientVerifier,
        };
        let fail = |file, why: String| TlsCheckError { file, why };
        let read = |file, path: &PathBuf| {
            read(path).map_err(|e| fail(file, format!("cannot read {}: {e}", path.display())))
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
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
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
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
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
        let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
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
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(Arc::new(config))
    }
}
