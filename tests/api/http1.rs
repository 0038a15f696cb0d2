//! HTTP/1.1 connections of the gRPC port and their limits, at the byte
//! level (a real client cannot trickle a request head or hold a connection
//! idle on purpose): the head of a request within
//! `server.handshake_timeout`, an idle keep-alive connection closed after
//! `server.keepalive_interval` + `server.keepalive_timeout`, and at
//! `server.max_connection_age` `Connection: close` on the next answer.

use std::time::{Duration, Instant};

use ktp_gateway::proto::GetKtpResultRequest;
use ktp_testkit::fake_upstream::Reply;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    connections::{closed_for, closed_within},
    curl::frame,
    helpers::{TestApp, millis, sample_success, secs},
};

/// A whole gRPC-Web request for `GetKtpResult`, as HTTP/1.1 bytes.
fn request(id: &str) -> Vec<u8> {
    let body = frame(&GetKtpResultRequest {
        reference_id: id.to_owned(),
        ..Default::default()
    });
    let mut bytes = format!(
        "POST /ktp.v1.KtpService/GetKtpResult HTTP/1.1\r\nHost: gateway\r\n\
         Content-Type: application/grpc-web+proto\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend(body);
    bytes
}

/// Reads one answer (head and chunked body) and returns its head.
async fn answer(tcp: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    let read = async {
        loop {
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a whole answer: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some((head, body)) = text.split_once("\r\n\r\n")
                && body.ends_with("0\r\n\r\n")
            {
                return head.to_ascii_lowercase();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer within 5 s")
}

async fn gateway(configure: impl FnOnce(&mut ktp_gateway::config::Settings)) -> TestApp {
    let app = TestApp::spawn_with(configure).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app
}

#[tokio::test]
async fn a_request_head_must_arrive_within_the_handshake_timeout() {
    let app = gateway(|s| s.server.handshake_timeout = millis(300)).await;
    // The first request's head, trickled and never finished.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    first
        .write_all(b"POST /ktp.v1.KtpService/GetKtpResult HTTP/1.1\r\nHost: g")
        .await
        .unwrap();
    let closed = closed_within(&mut first, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a trickled first head stayed open");

    // A later request's head, counted from its first byte: the idle time
    // before it (longer than the timeout) is not held against it.
    let mut later = TcpStream::connect(app.addr).await.unwrap();
    later.write_all(&request("H1-HEAD")).await.unwrap();
    assert!(answer(&mut later).await.starts_with("http/1.1 200"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    later
        .write_all(b"POST /ktp.v1.KtpService/GetKtpResult HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let closed = closed_within(&mut later, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a trickled later head stayed open");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(closed_for(&app, "handshake", 2).await, 2);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_after_keepalive_interval_plus_timeout() {
    let app = gateway(|s| {
        s.server.keepalive_interval = millis(400);
        s.server.keepalive_timeout = millis(200);
        s.server.handshake_timeout = secs(5);
    })
    .await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(&request("H1-IDLE")).await.unwrap();
    assert!(answer(&mut tcp).await.starts_with("http/1.1 200"));
    // Kept alive: a second request on the same connection.
    tcp.write_all(&request("H1-IDLE")).await.unwrap();
    let head = answer(&mut tcp).await;
    assert!(!head.contains("connection: close"), "{head}");
    let idle = Instant::now();
    let closed = closed_within(&mut tcp, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection stayed open");
    let after = idle.elapsed();
    assert!(
        (Duration::from_millis(550)..Duration::from_secs(3)).contains(&after),
        "closed after {after:?}, not about 600 ms"
    );
    assert_eq!(closed_for(&app, "idle", 1).await, 1);
}

#[tokio::test]
async fn at_max_connection_age_the_next_answer_says_connection_close() {
    let app = gateway(|s| {
        s.server.max_connection_age = millis(600);
        s.server.max_connection_age_grace = secs(5);
    })
    .await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(&request("H1-AGE")).await.unwrap();
    let young = answer(&mut tcp).await;
    assert!(!young.contains("connection: close"), "{young}");
    // Past the age (600 ms ± 10 %), idle: not closed under the client, the
    // next answer says so.
    tokio::time::sleep(Duration::from_millis(900)).await;
    tcp.write_all(&request("H1-AGE")).await.unwrap();
    let aged = answer(&mut tcp).await;
    assert!(aged.starts_with("http/1.1 200"), "{aged}");
    assert!(aged.contains("connection: close"), "{aged}");
    assert!(
        closed_within(&mut tcp, Duration::from_secs(2))
            .await
            .is_some(),
        "open after its Connection: close"
    );
    assert_eq!(closed_for(&app, "age", 1).await, 1);
}
