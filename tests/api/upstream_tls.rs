//! The production upstream path: HTTPS through rustls, against a local fake
//! upstream whose certificate a throw-away CA signed, trusted through
//! `upstream.ca_file` (issue 10, point 8).

use std::{
    convert::Infallible,
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ktp_testkit::{card_holders::VENDOR_SAMPLE_SUCCESS, pki::TestCa};
use tempfile::NamedTempFile;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
};
use tonic::Code;

use crate::helpers::{TestApp, base_url, expect_error, millis, secs};

/// A throw-away CA (as a PEM file) and a server certificate it signed.
struct Pki {
    ca_file: NamedTempFile,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    /// A CA, and a server certificate for `names` signed by it.
    fn new(names: &[&str]) -> Self {
        let ca = TestCa::new().unwrap();
        let leaf = ca.leaf(names).unwrap();
        let mut ca_file = NamedTempFile::new().unwrap();
        ca_file.write_all(ca.pem().as_bytes()).unwrap();
        Self {
            ca_file,
            cert_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
        }
    }

    fn ca_path(&self) -> &str {
        self.ca_file.path().to_str().unwrap()
    }
}

/// What the fake saw.
#[derive(Debug, Default)]
struct Seen {
    /// The protocol each completed handshake agreed through ALPN.
    alpn: Vec<Option<String>>,
    /// The HTTP version of each request that arrived.
    requests: Vec<String>,
}

/// An HTTPS upstream offering HTTP/2 and HTTP/1.1 through ALPN, answering
/// the vendor's sample success to every request.
struct HttpsUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl HttpsUpstream {
    async fn start(pki: &Pki) -> Self {
        let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let alpn = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                    seen.lock().unwrap().alpn.push(alpn);
                    let service = service_fn(move |request: Request<Incoming>| {
                        let version = format!("{:?}", request.version());
                        seen.lock().unwrap().requests.push(version);
                        async {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(
                                        VENDOR_SAMPLE_SUCCESS.as_bytes(),
                                    )))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    fn base_url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

impl Drop for HttpsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_https_upstream_signed_by_the_ca_file_answers_over_http2() {
    let pki = Pki::new(&["127.0.0.1"]);
    let upstream = HttpsUpstream::start(&pki).await;
    let base = upstream.base_url();
    let app = TestApp::spawn_with(|s| {
        s.upstream.base_url = base_url(&base);
        s.upstream.ca_file = Some(pki.ca_path().into());
    })
    .await;
    let card = app
        .call("TLS-REF-1")
        .await
        .expect("OK over HTTPS")
        .into_inner();
    assert_eq!(card.full_name, "SULISTYONO");
    let seen = upstream.seen();
    assert_eq!(
        seen.alpn,
        [Some("h2".to_owned())],
        "HTTP/2 agreed through ALPN"
    );
    assert_eq!(seen.requests, ["HTTP/2.0"]);
}

#[tokio::test]
async fn without_the_ca_file_the_private_ca_is_not_trusted() {
    let pki = Pki::new(&["127.0.0.1"]);
    let upstream = HttpsUpstream::start(&pki).await;
    let base = upstream.base_url();
    let app = TestApp::spawn_with(|s| s.upstream.base_url = base_url(&base)).await;
    let e = expect_error(app.call("TLS-REF-2").await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE")
    );
    assert!(upstream.seen().requests.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_and_nothing_is_sent() {
    let pki = Pki::new(&["upstream.example"]);
    let upstream = HttpsUpstream::start(&pki).await;
    let base = upstream.base_url();
    let app = TestApp::spawn_with(|s| {
        s.upstream.base_url = base_url(&base);
        s.upstream.ca_file = Some(pki.ca_path().into());
    })
    .await;
    let e = expect_error(app.call("TLS-REF-3").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE", "ktp-gateway")
    );
    let seen = upstream.seen();
    assert!(seen.alpn.is_empty(), "no handshake completed: {seen:?}");
    assert!(seen.requests.is_empty(), "nothing was sent: {seen:?}");
}

/// A listener that accepts TCP connections and never says a word: the TLS
/// handshake never completes, and `upstream.connect_timeout` (which covers
/// TCP and TLS) must end each attempt long before `upstream.timeout`.
#[tokio::test]
async fn a_handshake_that_never_completes_ends_at_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            open.push(tcp);
        }
    });
    let pki = Pki::new(&["127.0.0.1"]);
    let base = format!("https://{addr}/");
    let app = TestApp::spawn_with(|s| {
        s.upstream.base_url = base_url(&base);
        s.upstream.ca_file = Some(pki.ca_path().into());
        s.upstream.connect_timeout = millis(300);
        s.upstream.timeout = secs(60);
    })
    .await;
    let started = Instant::now();
    let e = expect_error(app.call("TLS-REF-4").await);
    let took = started.elapsed();
    held.abort();
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
        "a connect failure, retried, not an upstream timeout: {}",
        e.message
    );
    // Three attempts of 300 ms plus backoff; far below the 60 s timeout.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
