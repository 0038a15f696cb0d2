//! A scriptable fake upstream speaking HTTP/1.1 over raw TCP on 127.0.0.1:0,
//! so that it can misbehave in every way the tests need: hang after
//! accepting, answer late, close or reset the connection mid-body, stream a
//! 50 MB body, send bytes that are not JSON or not UTF-8, flap, rate-limit.
//!
//! It also keeps the facts the tests check afterwards: every request as
//! received, connections accepted, requests in flight (now and at most), and
//! how many delayed or hung requests the gateway abandoned (closed the
//! connection before the answer).
//!
//! [`Reply::from`] plays an answer of the error table
//! ([`crate::error_table::Answer`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use crate::error_table::{Answer, Body};

/// What the fake upstream does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with this status (`Content-Type: application/json`).
    Json(u16, Value),
    /// Exact status, headers and body bytes (a `Content-Length` is added
    /// unless the headers frame the body themselves).
    Raw {
        /// The HTTP status.
        status: u16,
        /// Header names and values, in order.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Waits, then gives the inner reply; if the gateway closes the
    /// connection meanwhile, counts an abandoned request and stops.
    Delayed(Duration, Box<Reply>),
    /// Reads the request and never answers, until the gateway goes away.
    Hang,
    /// A 200 head announcing 1000 bytes, the start of a JSON body, then a
    /// clean close.
    CutMidBody,
    /// A 200 head announcing 1000 bytes, the first part of a body holding
    /// personal data, then a TCP reset (`SO_LINGER` 0).
    ResetMidBody(Vec<u8>),
    /// Closes the connection without answering.
    Close,
    /// A body of `len` bytes, streamed in 64 KiB pieces, announced with
    /// `Content-Length` or sent chunked.
    Huge {
        /// The HTTP status.
        status: u16,
        /// Bytes in the body (spaces).
        len: usize,
        /// `Transfer-Encoding: chunked` instead of `Content-Length`.
        chunked: bool,
    },
    /// Each request for the id gets the next reply of the list, round and
    /// round (a flapping upstream).
    Cycle(Arc<Vec<Reply>>, Arc<AtomicUsize>),
}

impl Reply {
    /// Raw bytes with a `Content-Type` of the caller's choosing.
    pub fn typed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::raw(status, &[("Content-Type", content_type)], body)
    }

    /// Exact status, headers and body bytes.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
        }
    }

    /// Each request for the id gets the next of `replies`, round and round.
    pub fn cycle(replies: Vec<Reply>) -> Self {
        Self::Cycle(Arc::new(replies), Arc::new(AtomicUsize::new(0)))
    }

    /// `then`, after `pause`.
    pub fn delayed(pause: Duration, then: Reply) -> Self {
        Self::Delayed(pause, Box::new(then))
    }
}

impl From<&Answer> for Reply {
    /// Plays an answer of the error table. A [`Body::Filler`] is streamed
    /// as [`Reply::Huge`], which sends no other headers: such answers must
    /// have none.
    fn from(answer: &Answer) -> Self {
        let status = answer.status;
        match answer.body {
            Body::Json(text) => {
                let mut headers = vec![("Content-Type", "application/json")];
                headers.extend_from_slice(answer.headers);
                Self::raw(status, &headers, text)
            }
            Body::Bytes(bytes) => Self::raw(status, answer.headers, bytes),
            Body::Filler { len, chunked } => {
                assert!(
                    answer.headers.is_empty(),
                    "a filler body is sent without other headers"
                );
                Self::Huge {
                    status,
                    len,
                    chunked,
                }
            }
        }
    }
}

/// One request as the fake upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, …
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body, as received.
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// A query parameter's decoded value.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The id from the query, else from the JSON body: the gateway can be
    /// configured to send either.
    pub fn reference_id(&self) -> Option<String> {
        self.query_value("reference_id")
            .map(str::to_owned)
            .or_else(|| {
                let v: Value = serde_json::from_slice(&self.body).ok()?;
                v.get("reference_id")?.as_str().map(str::to_owned)
            })
    }
}

#[derive(Default)]
struct State {
    by_reference: Mutex<HashMap<String, Reply>>,
    default: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    /// New connections are held open without an answer (read and discarded).
    hang_on_accept: AtomicBool,
    abandoned: AtomicUsize,
    /// Connections with a request being answered (or hung) right now, and
    /// the most seen at once.
    busy: AtomicUsize,
    max_busy: AtomicUsize,
}

/// The fake upstream; its accept loop ends, and its idle keep-alive
/// connections close, when the last clone is dropped.
#[derive(Clone)]
pub struct FakeUpstream {
    /// Where it listens (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    state: Arc<State>,
    running: Arc<Running>,
}

struct Running {
    close_idle: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Binds 127.0.0.1:0 and serves until dropped; unscripted requests get
    /// the documented 404 until [`Self::otherwise`] says else.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake upstream");
        let addr = listener.local_addr().expect("fake upstream address");
        let state = Arc::new(State::default());
        let (close_idle, _) = watch::channel(0u64);
        let (accept_state, accept_close) = (state.clone(), close_idle.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                let state = accept_state.clone();
                let close_idle = accept_close.subscribe();
                tokio::spawn(async move { serve(stream, &state, close_idle).await });
            }
        });
        Self {
            addr,
            state,
            running: Arc::new(Running { close_idle, task }),
        }
    }

    /// `http://127.0.0.1:PORT`, for `upstream.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers requests for `reference_id` with `reply`.
    pub fn on(&self, reference_id: &str, reply: Reply) {
        self.state
            .by_reference
            .lock()
            .unwrap()
            .insert(reference_id.to_owned(), reply);
    }

    /// Answers every request without a specific script with `reply`.
    pub fn otherwise(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = Some(reply);
    }

    /// Whether new connections are accepted and then left hanging.
    pub fn hang_on_accept(&self, on: bool) {
        self.state.hang_on_accept.store(on, Ordering::SeqCst);
    }

    /// Closes every keep-alive connection that is waiting for its next
    /// request (as a server restarting would), so the next request needs a
    /// new connection.
    pub fn close_idle_connections(&self) {
        self.running
            .close_idle
            .send_modify(|generation| *generation += 1);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests received for `reference_id` so far.
    pub fn attempts(&self, reference_id: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.reference_id().as_deref() == Some(reference_id))
            .count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Delayed or hung requests whose connection the gateway closed first.
    pub fn abandoned(&self) -> usize {
        self.state.abandoned.load(Ordering::SeqCst)
    }

    /// Connections on which a request is still being answered or hung: once
    /// the gateway has its answer or gave up, there must be none (an idle
    /// keep-alive connection is not busy).
    pub fn busy_connections(&self) -> usize {
        self.state.busy.load(Ordering::SeqCst)
    }

    /// The most requests the fake upstream was answering at the same time.
    pub fn max_concurrent_requests(&self) -> usize {
        self.state.max_busy.load(Ordering::SeqCst)
    }
}

/// Counts one busy connection until dropped.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn enter(state: &'a State) -> Self {
        let now = state.busy.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_busy.fetch_max(now, Ordering::SeqCst);
        Self(&state.busy)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves keep-alive requests on one connection until it closes.
async fn serve(mut stream: TcpStream, state: &State, mut close_idle: watch::Receiver<u64>) {
    close_idle.borrow_and_update();
    if state.hang_on_accept.load(Ordering::SeqCst) {
        let _busy = Busy::enter(state);
        wait_for_close(&mut stream, state).await;
        return;
    }
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            r = read_request(&mut stream, &mut buf) => r,
            _ = close_idle.changed() => None,
        };
        let Some(request) = request else { return };
        let reply = reply_for(state, &request);
        state.requests.lock().unwrap().push(request);
        let _busy = Busy::enter(state);
        if !answer(&mut stream, state, reply).await {
            return;
        }
    }
}

fn reply_for(state: &State, request: &Recorded) -> Reply {
    let scripted = request
        .reference_id()
        .and_then(|id| state.by_reference.lock().unwrap().get(&id).cloned());
    scripted
        .or_else(|| state.default.lock().unwrap().clone())
        .unwrap_or_else(|| {
            Reply::Json(
                404,
                serde_json::json!({"message": "Reference ID not found",
                                   "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
            )
        })
}

/// Reads and discards until the peer closes; counts that as abandoned.
async fn wait_for_close(stream: &mut TcpStream, state: &State) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
    state.abandoned.fetch_add(1, Ordering::SeqCst);
}

/// Sends `reply`; false when the connection must close afterwards.
async fn answer(stream: &mut TcpStream, state: &State, mut reply: Reply) -> bool {
    let reply = loop {
        reply = match reply {
            Reply::Cycle(replies, next) => {
                let i = next.fetch_add(1, Ordering::SeqCst) % replies.len();
                replies[i].clone()
            }
            Reply::Delayed(pause, then) => {
                let mut probe = [0u8; 1];
                tokio::select! {
                    () = tokio::time::sleep(pause) => *then,
                    // HTTP/1.1 clients send nothing more while waiting: a
                    // read that ends means the gateway closed the connection.
                    _ = stream.read(&mut probe) => {
                        state.abandoned.fetch_add(1, Ordering::SeqCst);
                        return false;
                    }
                }
            }
            other => break other,
        };
    };
    match reply {
        Reply::Json(status, body) => {
            let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
            write_whole(stream, status, &headers, body.to_string().as_bytes()).await
        }
        Reply::Raw {
            status,
            headers,
            body,
        } => write_whole(stream, status, &headers, &body).await,
        Reply::Hang => {
            wait_for_close(stream, state).await;
            false
        }
        Reply::CutMidBody => {
            write_part(stream, br#"{"data": {"nik": "#).await;
            false
        }
        Reply::ResetMidBody(part) => {
            write_part(stream, &part).await;
            // Give the gateway time to read the head as such (so the cut
            // comes after the status), then reset.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = stream.set_zero_linger();
            false
        }
        Reply::Close => false,
        Reply::Huge {
            status,
            len,
            chunked,
        } => {
            write_huge(stream, status, len, chunked).await;
            false
        }
        Reply::Cycle(..) | Reply::Delayed(..) => unreachable!("resolved above"),
    }
}

async fn write_whole(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> bool {
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    let mut head = format!("HTTP/1.1 {status} Fake\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !framed {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// A 200 head announcing 1000 bytes and only `part` of them.
async fn write_part(stream: &mut TcpStream, part: &[u8]) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let _ = stream.write_all(&[head.as_bytes(), part].concat()).await;
    let _ = stream.flush().await;
}

/// Streams `len` bytes of a JSON-looking body until done or until the
/// gateway stops reading and closes the connection.
async fn write_huge(stream: &mut TcpStream, status: u16, len: usize, chunked: bool) {
    const PIECE: usize = 64 * 1024;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head =
        format!("HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let piece = vec![b' '; PIECE];
    let mut sent = 0;
    while sent < len {
        let n = PIECE.min(len - sent);
        let ok = if chunked {
            let size = format!("{n:x}\r\n");
            stream.write_all(size.as_bytes()).await.is_ok()
                && stream.write_all(&piece[..n]).await.is_ok()
                && stream.write_all(b"\r\n").await.is_ok()
        } else {
            stream.write_all(&piece[..n]).await.is_ok()
        };
        if !ok {
            return;
        }
        sent += n;
    }
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
}

/// Reads one request head and its `Content-Length` body; `None` at EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    let url = url::Url::parse(&format!("http://fake{target}")).ok()?;
    Some(Recorded {
        method,
        path: url.path().to_owned(),
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
