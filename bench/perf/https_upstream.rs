//! `https-upstream`: the fake vendor over HTTPS, for the rows of
//! `bench/perf/run` that measure the production path (rustls, and HTTP/2
//! when ALPN agrees on it). nginx cannot stand in here: its HTTP/2 slows
//! down over a long-lived connection with thousands of streams (its CPU per
//! request grew sixfold between 40k and 200k requests on one connection),
//! so it, not the gateway, would set the figures.

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ktp_testkit::pki::TestCa;
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
};

/// More streams than any bench level keeps in flight, so that one HTTP/2
/// connection carries every call (hyper's server default is 200).
const MAX_STREAMS: u32 = 16_384;

/// Serves the fixed JSON `body` after `delay` on `addr` over TLS, with a
/// certificate for 127.0.0.1 from a throw-away CA written to `ca_out`.
/// ALPN offers HTTP/2 and HTTP/1.1, or HTTP/1.1 only with `http1_only`.
pub(crate) async fn serve(
    addr: SocketAddr,
    body: PathBuf,
    delay: Duration,
    ca_out: PathBuf,
    http1_only: bool,
) -> Result<(), String> {
    let json = Bytes::from(std::fs::read(&body).map_err(|e| format!("{}: {e}", body.display()))?);
    let acceptor = acceptor(&ca_out, http1_only)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_STREAMS);
    let builder = Arc::new(builder);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, json) = (acceptor.clone(), Arc::clone(&builder), json.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |_: Request<Incoming>| {
                let json = json.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let mut answer = Response::new(Full::new(json));
                    answer.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

/// A CA (its certificate written to `ca_out` as PEM, for the gateway's
/// `upstream.ca_file`) and a server certificate for 127.0.0.1 it signed.
fn acceptor(ca_out: &PathBuf, http1_only: bool) -> Result<TlsAcceptor, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let ca = TestCa::new().map_err(|e| err(&e))?;
    let leaf = ca.leaf(&["127.0.0.1"]).map_err(|e| err(&e))?;
    std::fs::write(ca_out, ca.pem()).map_err(|e| format!("{}: {e}", ca_out.display()))?;
    let certs = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}
