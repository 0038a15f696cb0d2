//! TLS, mutual TLS, bearer-token authentication and the reflection switch.

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

use crate::helpers::{TestApp, channel, expect_error, sample_success};
use ktp_gateway::proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient};

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

fn path(f: &NamedTempFile) -> &str {
    f.path().to_str().unwrap()
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
    let app = TestApp::spawn_with(&[
        ("KTP_GATEWAY__SERVER__TLS__CERT_FILE", path(&pki.server.0)),
        ("KTP_GATEWAY__SERVER__TLS__KEY_FILE", path(&pki.server.1)),
    ])
    .await;
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
    let app = TestApp::spawn_with(&[
        ("KTP_GATEWAY__SERVER__TLS__CERT_FILE", path(&pki.server.0)),
        ("KTP_GATEWAY__SERVER__TLS__KEY_FILE", path(&pki.server.1)),
        (
            "KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE",
            path(&pki.ca_file),
        ),
    ])
    .await;
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
    let app = TestApp::spawn_with(&[("KTP_GATEWAY__AUTH__TOKENS_FILE", path(&tokens))]).await;
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
    let app = TestApp::spawn_with(&[("KTP_GATEWAY__SERVER__REFLECTION", "false")]).await;
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
