//! Bounded inbound connections (issue 10, point 6): a cap on open
//! connections, a deadline for TLS and the HTTP/2 preface, and a connection
//! age after which the client gets GOAWAY and its calls in flight a grace.

use std::time::{Duration, Instant};

use ktp_testkit::fake_upstream::Reply;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::transport::Channel;

use crate::helpers::{TestApp, count, millis, sample_success, secs, test_settings};

/// A fresh client connection (a channel opens one connection).
fn client(app: &TestApp) -> ktp_gateway::proto::ktp_service_client::KtpServiceClient<Channel> {
    ktp_gateway::proto::ktp_service_client::KtpServiceClient::new(
        Channel::from_shared(format!("http://{}", app.addr))
            .unwrap()
            .connect_lazy(),
    )
}

fn request(id: &str, timeout: Duration) -> tonic::Request<ktp_gateway::proto::GetKtpResultRequest> {
    let mut request = tonic::Request::new(ktp_gateway::proto::GetKtpResultRequest {
        read_mask: None,
        reference_id: id.to_owned(),
        wait: false,
    });
    request.set_timeout(timeout);
    request
}

/// `ktp_gateway_grpc_connections_closed_total{reason}`, once it reaches at
/// least `want` (connections close in the background), or as it is after
/// 5 s.
pub(crate) async fn closed_for(app: &TestApp, reason: &str, want: u64) -> u64 {
    let series = format!("ktp_gateway_grpc_connections_closed_total{{reason=\"{reason}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = app.scrape().await;
        let count = page
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if count >= want || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads until the server closes the connection; `None` if it is still
/// open after `within`.
pub(crate) async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0; 1024];
    let closed = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, closed)
        .await
        .ok()
        .map(|()| started.elapsed())
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let app = TestApp::spawn_with(|s| s.server.max_connections = count(2)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    // Two connections take both slots (silent, well within the handshake
    // timeout of 10 s).
    let first = TcpStream::connect(app.addr).await.unwrap();
    let _second = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut third = client(&app);
    let refused = third
        .get_ktp_result(request("CAPPED", Duration::from_millis(800)))
        .await;
    assert!(refused.is_err(), "served beyond the cap: {refused:?}");

    // One closes: the waiting connection is accepted and served.
    drop(first);
    let served = third
        .get_ktp_result(request("CAPPED", Duration::from_secs(5)))
        .await;
    assert!(served.is_ok(), "not served after a slot freed: {served:?}");
}

#[tokio::test]
async fn a_connection_that_never_completes_the_preface_is_closed_after_the_handshake_timeout() {
    let app = TestApp::spawn_with(|s| s.server.handshake_timeout = millis(300)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));

    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut partial = TcpStream::connect(app.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let silent_closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    let partial_closed = closed_within(&mut partial, Duration::from_secs(5)).await;
    assert!(silent_closed.is_some(), "a silent connection stayed open");
    assert!(partial_closed.is_some(), "a half-sent preface stayed open");
    assert_eq!(closed_for(&app, "handshake", 2).await, 2);
    assert!(
        app.scrape()
            .await
            .contains("ktp_gateway_grpc_connections_open 0\n"),
        "both closed, none open"
    );

    // A client that spoke HTTP/2 in time keeps its connection past the
    // timeout: a call still in flight after it completes.
    app.upstream.on(
        "SLOW",
        Reply::delayed(
            Duration::from_millis(800),
            Reply::Json(200, sample_success()),
        ),
    );
    let answer = client(&app)
        .get_ktp_result(request("SLOW", Duration::from_secs(5)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test]
async fn the_handshake_timeout_covers_tls() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = TestApp::spawn_with(|s| {
        s.server.tls.cert_file = Some(cert);
        s.server.tls.key_file = Some(key);
        s.server.handshake_timeout = millis(300);
    })
    .await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection that never started TLS stayed open"
    );
}

/// An HTTP/2 client at the frame level: sends the preface and empty
/// SETTINGS, acknowledges PINGs, and resolves at the first GOAWAY with its
/// error code and when it came (`None`: the connection closed without one).
async fn first_goaway(app: &TestApp) -> tokio::task::JoinHandle<Option<(u32, Instant)>> {
    const GOAWAY: u8 = 0x7;
    const PING: u8 = 0x6;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tcp.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.unwrap();
    tokio::spawn(async move {
        loop {
            let mut head = [0; 9];
            tcp.read_exact(&mut head).await.ok()?;
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0; len];
            tcp.read_exact(&mut payload).await.ok()?;
            match head[3] {
                GOAWAY => {
                    let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                    return Some((code, Instant::now()));
                }
                PING if head[4] & 0x1 == 0 => {
                    let mut ack = vec![0, 0, 8, PING, 0x1, 0, 0, 0, 0];
                    ack.extend_from_slice(&payload);
                    tcp.write_all(&ack).await.ok()?;
                }
                _ => {}
            }
        }
    })
}

#[tokio::test]
async fn an_aged_connection_gets_goaway_and_its_calls_in_flight_finish_within_the_grace() {
    let app = TestApp::spawn_with(|s| {
        s.server.max_connection_age = secs(1);
        s.server.max_connection_age_grace = secs(3);
    })
    .await;
    let opened = Instant::now();
    let idle = first_goaway(&app).await;

    // A call that starts before the age and ends after it (within the grace).
    app.upstream.on(
        "ACROSS_THE_AGE",
        Reply::delayed(
            Duration::from_millis(1500),
            Reply::Json(200, sample_success()),
        ),
    );
    let mut aging = client(&app);
    let answer = aging
        .get_ktp_result(request("ACROSS_THE_AGE", Duration::from_secs(10)))
        .await;

    // The idle connection got GOAWAY with NO_ERROR at about the age (±10 %).
    let (code, at) = tokio::time::timeout(Duration::from_secs(5), idle)
        .await
        .expect("no GOAWAY on the aged connection")
        .unwrap()
        .expect("the aged connection closed without GOAWAY");
    assert_eq!(code, 0, "GOAWAY error code");
    let age = at - opened;
    assert!(age >= Duration::from_millis(850), "closed at {age:?}");
    assert!(answer.is_ok(), "call in flight at the age: {answer:?}");

    // The client reconnects by itself for its next call.
    let again = aging
        .get_ktp_result(request("ACROSS_THE_AGE", Duration::from_secs(10)))
        .await;
    assert!(again.is_ok(), "after the GOAWAY: {again:?}");
    assert!(
        closed_for(&app, "age", 2).await >= 2,
        "closes by age counted"
    );
    assert_eq!(closed_for(&app, "handshake", 0).await, 0);
}

#[tokio::test]
async fn a_call_still_running_after_the_age_grace_is_cut() {
    let app = TestApp::spawn_with(|s| {
        s.server.max_connection_age = secs(1);
        s.server.max_connection_age_grace = secs(1);
        s.upstream.timeout = secs(30);
    })
    .await;
    app.upstream.on(
        "OUTLIVES_THE_GRACE",
        Reply::delayed(Duration::from_secs(8), Reply::Json(200, sample_success())),
    );
    let started = Instant::now();
    let cut = client(&app)
        .get_ktp_result(request("OUTLIVES_THE_GRACE", Duration::from_secs(20)))
        .await;
    let took = started.elapsed();
    assert!(cut.is_err(), "the call outlived age + grace: {cut:?}");
    // Age (0.9–1.1 s) + grace (1 s), well before the upstream's 8 s.
    assert!(took < Duration::from_secs(6), "cut after {took:?}");
    // The call's work stopped with it: its upstream request was dropped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.upstream.abandoned() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.upstream.abandoned(), 1, "upstream request abandoned");
}

#[tokio::test]
async fn keepalive_pings_follow_the_settings_and_an_unanswered_one_closes_the_connection() {
    let app = TestApp::spawn_with(|s| {
        s.server.keepalive_interval = millis(300);
        s.server.keepalive_timeout = millis(300);
    })
    .await;
    // A peer that completed the HTTP/2 preface, then went dead: it never
    // answers a PING.
    let mut dead = TcpStream::connect(app.addr).await.unwrap();
    dead.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    dead.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let opened = Instant::now();
    let mut pinged = None;
    let read_frames = async {
        loop {
            let mut head = [0; 9];
            if dead.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0; len];
            if dead.read_exact(&mut payload).await.is_err() {
                return;
            }
            if head[3] == 0x6 && head[4] & 0x1 == 0 {
                pinged.get_or_insert(opened.elapsed());
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(5), read_frames).await;
    assert!(pinged.is_some(), "no keepalive PING within the interval");
    assert!(
        closed.is_ok(),
        "a peer that never answers PINGs kept its connection"
    );
}

/// The error the gateway stops with when started with these TLS files.
/// The error of a start whose TLS files were good at load and replaced by
/// `cert_pem` / `key_pem` before the server started (a Secret rotated in
/// between): the start must stop naming the key and its env var.
async fn tls_start_error(cert_pem: &str, key_pem: &str) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut settings = test_settings("http://127.0.0.1:9");
    settings.server.tls.cert_file = Some(cert.clone());
    settings.server.tls.key_file = Some(key.clone());
    let settings = settings.checked().expect("good TLS files load");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        ktp_gateway::server::run_with(settings, listener, None, std::future::pending()),
    )
    .await
    .expect("the gateway served with unusable TLS files");
    ended
        .expect_err("started with unusable TLS files")
        .to_string()
}

#[tokio::test]
async fn tls_files_that_go_bad_after_load_stop_the_start_naming_the_key_and_env_var() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());

    let bad_cert = tls_start_error("not a certificate\n", &key).await;
    assert!(
        bad_cert.contains("server.tls.cert_file")
            && bad_cert.contains("KTP_GATEWAY__SERVER__TLS__CERT_FILE"),
        "{bad_cert}"
    );
    let bad_key = tls_start_error(&cert, "not a key\n").await;
    assert!(
        bad_key.contains("server.tls.key_file")
            && bad_key.contains("KTP_GATEWAY__SERVER__TLS__KEY_FILE"),
        "{bad_key}"
    );
}
