//! The gRPC port's rustls configuration, built from the PEM files of
//! `server.tls`: the server's own accept loop (`serve`) does the handshake,
//! so that `server.handshake_timeout` covers it.

use std::sync::Arc;

use rustls::{
    RootCertStore, ServerConfig,
    crypto::{CryptoProvider, aws_lc_rs},
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

use crate::{
    config::env_name,
    security::tls::{TlsFileError, TlsSettings},
};

/// The only application protocol the port speaks.
const ALPN_H2: &[u8] = b"h2";

/// The TLS files could not be turned into a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file could not be read.
    #[error(transparent)]
    File(#[from] TlsFileError),
    /// A file is not the PEM it should be.
    #[error("invalid {key} (set with {env}): {path} holds no usable {what}: {detail}")]
    Pem {
        /// The setting that names the file.
        key: &'static str,
        /// Its environment variable.
        env: String,
        /// The file, as configured.
        path: String,
        /// What it should hold.
        what: &'static str,
        /// Why it does not.
        detail: String,
    },
    /// rustls refused the certificate, key or client CA together.
    #[error(
        "invalid server.tls files (KTP_GATEWAY__SERVER__TLS__CERT_FILE, \
         KTP_GATEWAY__SERVER__TLS__KEY_FILE, KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE): {0}"
    )]
    Rustls(String),
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        path: path.display().to_string(),
        source,
    })
}

fn certificates(
    key: &'static str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(path)?;
    let bad = |detail: String| TlsSetupError::Pem {
        key,
        env: env_name(key),
        path: path.display().to_string(),
        what: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".to_owned()));
    }
    Ok(certs)
}

fn private_key(path: &std::path::Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    const KEY: &str = "server.tls.key_file";
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsSetupError::Pem {
        key: KEY,
        env: env_name(KEY),
        path: path.display().to_string(),
        what: "private key",
        detail: e.to_string(),
    })
}

/// The server configuration: the certificate chain and key, a client
/// certificate verifier for mutual TLS, and ALPN `h2` (what tonic set up
/// before the gateway accepted connections itself).
pub(super) fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let rustls_error = |e: &dyn std::fmt::Display| TlsSetupError::Rustls(e.to_string());
    let provider: Arc<CryptoProvider> = Arc::new(aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| rustls_error(&e))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("server.tls.client_ca_file", ca)? {
                roots.add(cert).map_err(|e| rustls_error(&e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| rustls_error(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(
            certificates("server.tls.cert_file", &tls.cert_file)?,
            private_key(&tls.key_file)?,
        )
        .map_err(|e| rustls_error(&e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}
