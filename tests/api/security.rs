//! TLS, mutual TLS, bearer-token authentication (of the API and of
//! reflection, not of health) and the reflection switch.

use std::io::Write;

use ktp_testkit::{fake_upstream::Reply, pki::TestCa};
use tempfile::NamedTempFile;
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{TestApp, assert_serving, channel, expect_error, sample_success, tokens_file};
use ktp_gateway::{
    config::TlsFiles,
    proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient},
};

/// A throw-away CA and certificates it signed, as PEM files.
struct Pki {
    ca_pem: String,
    server: (NamedTempFile, NamedTempFile),
    client_cert_pem: String,
    client_key_pem: String,
    ca_file: NamedTempFile,
}

fn file(contents: &str) -> NamedTempFile {
    let mut f = NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

fn pki() -> Pki {
    let ca = TestCa::new().unwrap();
    let server = ca.leaf(&["localhost"]).unwrap();
    let client = ca.leaf(&["client.example"]).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: (file(&server.cert_pem), file(&server.key_pem)),
        client_cert_pem: client.cert_pem,
        client_key_pem: client.key_pem,
        ca_file: file(&ca.pem()),
    }
}

/// `server.tls` with the server's certificate and key, and the CA as the
/// client CA when `mutual`.
fn tls_files(pki: &Pki, mutual: bool) -> TlsFiles {
    TlsFiles {
        cert_file: Some(pki.server.0.path().to_owned()),
        key_file: Some(pki.server.1.path().to_owned()),
        client_ca_file: mutual.then(|| pki.ca_file.path().to_owned()),
    }
}

async fn tls_channel(
    app: &TestApp,
    pki: &Pki,
    client_identity: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if client_identity {
        tls = tls.identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    Channel::from_shared(format!("https://{}", app.addr))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn request(id: &str) -> GetKtpResultRequest {
    GetKtpResultRequest {
        read_mask: None,
        reference_id: id.into(),
        wait: false,
    }
}

#[tokio::test]
async fn tls_serves_tls_clients_and_refuses_plaintext() {
    let pki = pki();
    let app = TestApp::spawn_with(|s| s.server.tls = tls_files(&pki, false)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let channel = tls_channel(&app, &pki, false).await.expect("TLS handshake");
    let mut client = KtpServiceClient::new(channel.clone());
    client
        .get_ktp_result(request("OVER_TLS"))
        .await
        .expect("call over TLS");
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(status.into_inner().status(), ServingStatus::Serving);

    let plaintext = app.call("PLAIN").await.expect_err("plaintext is refused");
    assert!(
        matches!(
            plaintext.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "{plaintext:?}"
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = pki();
    let app = TestApp::spawn_with(|s| s.server.tls = tls_files(&pki, true)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let with_cert = tls_channel(&app, &pki, true).await.expect("mTLS handshake");
    KtpServiceClient::new(with_cert)
        .get_ktp_result(request("MTLS"))
        .await
        .expect("call with a client certificate");

    // Without a client certificate the handshake (or the first call) fails.
    let refused = match tls_channel(&app, &pki, false).await {
        Err(_) => true,
        Ok(ch) => KtpServiceClient::new(ch)
            .get_ktp_result(request("NO_CERT"))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    assert_eq!(app.upstream.requests().len(), 1);
}

#[tokio::test]
async fn bearer_tokens_guard_the_api_but_not_health() {
    let tokens = file("# team-a\ntoken-alpha-123\ntoken-beta-456\n");
    let app = TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(tokens.path())).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));

    let e = expect_error(app.call("NO_TOKEN").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unauthenticated, "BEARER_TOKEN_MISSING", "ktp-gateway")
    );
    let e = expect_error(
        app.call_with("BAD_TOKEN", |r| {
            r.metadata_mut()
                .insert("authorization", "Bearer token-alpha-124".parse().unwrap());
        })
        .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unauthenticated, "BEARER_TOKEN_INVALID")
    );
    assert!(!e.message.contains("token-alpha"), "{}", e.message);
    assert!(
        app.upstream.requests().is_empty(),
        "refused calls never reach the upstream"
    );

    for token in ["token-alpha-123", "token-beta-456"] {
        app.call_with("GOOD_TOKEN", |r| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        })
        .await
        .expect("a listed token is accepted");
    }

    // The kubelet sends no token: health stays open.
    let mut health = HealthClient::new(channel(app.addr).await);
    let status = health
        .check(HealthCheckRequest {
            service: "ktp.v1.KtpService".into(),
        })
        .await
        .unwrap();
    assert_eq!(status.into_inner().status(), ServingStatus::Serving);
}

#[tokio::test]
async fn reflection_can_be_switched_off() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let app = TestApp::spawn_with(|s| s.server.reflection = false).await;
    let mut client = ServerReflectionClient::new(channel(app.addr).await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let status = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect_err("no reflection");
    assert_eq!(status.code(), Code::Unimplemented);
    // The API itself is unaffected.
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call("STILL_SERVED").await.expect("OK");
}

/// Defines `$name`: the services gRPC reflection `$version` lists, asked
/// with `token` as the bearer token if any.
macro_rules! services_lister {
    ($name:ident, $version:ident) => {
        async fn $name(app: &TestApp, token: Option<&str>) -> Result<Vec<String>, tonic::Status> {
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let list = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut request = tonic::Request::new(tokio_stream::iter([list]));
            if let Some(token) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            let mut answers = ServerReflectionClient::new(channel(app.addr).await)
                .server_reflection_info(request)
                .await?
                .into_inner();
            let answer = answers.message().await?.expect("an answer");
            match answer.message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    Ok(l.service.into_iter().map(|s| s.name).collect())
                }
                other => panic!("not a list of services: {other:?}"),
            }
        }
    };
}

services_lister!(services_v1, v1);
services_lister!(services_v1alpha, v1alpha);

#[tokio::test]
async fn with_tokens_reflection_needs_one_and_health_does_not() {
    let tokens = file("reflect-token-1\n");
    let app = TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(tokens.path())).await;

    for (version, token, reason) in [
        ("v1", None, "BEARER_TOKEN_MISSING"),
        ("v1", Some("reflect-token-2"), "BEARER_TOKEN_INVALID"),
        ("v1alpha", None, "BEARER_TOKEN_MISSING"),
        ("v1alpha", Some("reflect-token-2"), "BEARER_TOKEN_INVALID"),
    ] {
        let listed = match version {
            "v1" => services_v1(&app, token).await,
            _ => services_v1alpha(&app, token).await,
        };
        let e = expect_error(listed);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Unauthenticated, reason, "ktp-gateway"),
            "reflection {version} with {token:?}"
        );
    }

    for (version, listed) in [
        ("v1", services_v1(&app, Some("reflect-token-1")).await),
        (
            "v1alpha",
            services_v1alpha(&app, Some("reflect-token-1")).await,
        ),
    ] {
        let names = listed.unwrap_or_else(|e| panic!("reflection {version} with a token: {e:?}"));
        assert!(
            names.iter().any(|n| n == "ktp.v1.KtpService"),
            "reflection {version} lists {names:?}"
        );
    }

    // The kubelet sends no token: health stays open.
    assert_serving(app.addr).await;
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn without_tokens_reflection_is_open() {
    let app = TestApp::spawn_with(|s| {
        s.auth.tokens_file = None;
        s.auth.allow_unauthenticated = true;
    })
    .await;
    for (version, listed) in [
        ("v1", services_v1(&app, None).await),
        ("v1alpha", services_v1alpha(&app, None).await),
    ] {
        let names = listed.unwrap_or_else(|e| panic!("reflection {version}: {e:?}"));
        assert!(
            names.iter().any(|n| n == "ktp.v1.KtpService"),
            "reflection {version} lists {names:?}"
        );
    }
}
