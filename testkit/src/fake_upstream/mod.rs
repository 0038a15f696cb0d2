//! A scriptable fake upstream speaking HTTP/1.1 over raw TCP on 127.0.0.1:0,
//! so that it can misbehave in every way the tests need: hang after
//! accepting, answer late, close or reset the connection mid-body, stream a
//! 50 MB body, send bytes that are not JSON or not UTF-8, flap, rate-limit.
//!
//! It serves both documented calls: the result call (`GET
//! …/ktp/id/extract-async/result`, scripted with [`FakeUpstream::on`]) and
//! the submit call (`POST …/ktp/id/extract-async`, scripted with
//! [`FakeUpstream::on_submit`]), each per reference id, and per attempt with
//! [`Reply::sequence`]. An unscripted submit is accepted as the real one
//! is: a 200 naming the reference id, or 400
//! `INVALID_PAYLOAD_REFERENCE_ID_EXISTS` for an id it has accepted before.
//! With [`FakeUpstream::jobs_finish_after`], every accepted submit starts a
//! job whose result call answers 404 `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND`
//! until its time is up, then its scripted result (or a success).
//!
//! It also keeps the facts the tests check afterwards: every request as
//! received (with its arrival time), connections accepted, requests in
//! flight (now and at most), and how many delayed or hung requests the
//! gateway abandoned (closed the connection before the answer). A recorded
//! submit holds the image: its `Debug` shows the body's length only, and
//! tests compare images without printing them.
//!
//! [`Reply::from`] plays an answer of the error table
//! ([`crate::error_table::Answer`]).

mod reply;
mod wire;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

pub use reply::Reply;

use crate::{card_holders::sample_success, error_table::UpstreamCall};

/// The result call's path, after the base URL's own path.
const RESULT_PATH: &str = "/ktp/id/extract-async/result";
/// The submit call's path, after the base URL's own path.
const SUBMIT_PATH: &str = "/ktp/id/extract-async";

/// One request as the fake upstream received it.
#[derive(Clone)]
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
    /// When the request had fully arrived.
    pub received: Instant,
}

/// Never the body: a submit's holds the image.
impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
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
    /// configured to send either, and the submit call sends it in the body.
    pub fn reference_id(&self) -> Option<String> {
        self.query_value("reference_id")
            .map(str::to_owned)
            .or_else(|| {
                self.json()?
                    .get("reference_id")?
                    .as_str()
                    .map(str::to_owned)
            })
    }

    /// Which documented call this is, by method and path.
    pub fn call(&self) -> Option<UpstreamCall> {
        match self.method.as_str() {
            "GET" if self.path.ends_with(RESULT_PATH) => Some(UpstreamCall::Result),
            "POST" if self.path.ends_with(SUBMIT_PATH) => Some(UpstreamCall::Submit),
            _ => None,
        }
    }

    /// Whether this is a submit call.
    pub fn is_submit(&self) -> bool {
        self.call() == Some(UpstreamCall::Submit)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A submit's `image`, decoded as standard base64 with padding (the
    /// only form the gateway may send); `None` when it is not a string or
    /// not exactly that.
    pub fn submitted_image(&self) -> Option<Vec<u8>> {
        let json = self.json()?;
        let text = json.get("image")?.as_str()?;
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }
}

/// The jobs accepted submits started.
#[derive(Default)]
struct Jobs {
    /// Set: the result call of a job answers "not found" this long after
    /// its submit.
    finish_after: Option<Duration>,
    /// Reference ids of accepted submits, and when each was accepted.
    accepted: HashMap<String, Instant>,
}

#[derive(Default)]
struct State {
    /// Result-call scripts, by reference id.
    by_reference: Mutex<HashMap<String, Reply>>,
    default: Mutex<Option<Reply>>,
    /// Submit-call scripts, by reference id.
    submits: Mutex<HashMap<String, Reply>>,
    default_submit: Mutex<Option<Reply>>,
    jobs: Mutex<Jobs>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    /// Binds 127.0.0.1:0 and serves until dropped; unscripted result calls
    /// get the documented 404 until [`Self::otherwise`] says else, and
    /// unscripted submits are accepted.
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

    /// Answers result calls for `reference_id` with `reply` (for a job:
    /// once it has finished).
    pub fn on(&self, reference_id: &str, reply: Reply) {
        lock(&self.state.by_reference).insert(reference_id.to_owned(), reply);
    }

    /// Answers every result call without a specific script with `reply`.
    pub fn otherwise(&self, reply: Reply) {
        *lock(&self.state.default) = Some(reply);
    }

    /// Answers submit calls for `reference_id` with `reply`; a 2xx answer
    /// accepts the submit (and starts a job).
    pub fn on_submit(&self, reference_id: &str, reply: Reply) {
        lock(&self.state.submits).insert(reference_id.to_owned(), reply);
    }

    /// Answers every submit call without a specific script with `reply`.
    pub fn otherwise_submit(&self, reply: Reply) {
        *lock(&self.state.default_submit) = Some(reply);
    }

    /// From now on each accepted submit starts a job that is not found
    /// until `after` has passed, then answers its result call with the
    /// result script of its id, else [`Self::otherwise`]'s, else the
    /// vendor's sample success naming the id.
    pub fn jobs_finish_after(&self, after: Duration) {
        lock(&self.state.jobs).finish_after = Some(after);
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
        lock(&self.state.requests).clone()
    }

    /// The submit calls received so far, in order.
    pub fn submits(&self) -> Vec<Recorded> {
        self.of_call(UpstreamCall::Submit)
    }

    /// The result calls received so far, in order.
    pub fn results(&self) -> Vec<Recorded> {
        self.of_call(UpstreamCall::Result)
    }

    fn of_call(&self, call: UpstreamCall) -> Vec<Recorded> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.call() == Some(call))
            .cloned()
            .collect()
    }

    /// When each result call for `reference_id` arrived, in order.
    pub fn result_times(&self, reference_id: &str) -> Vec<Instant> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.call() == Some(UpstreamCall::Result))
            .filter(|r| r.reference_id().as_deref() == Some(reference_id))
            .map(|r| r.received)
            .collect()
    }

    /// Requests (of either call) received for `reference_id` so far.
    pub fn attempts(&self, reference_id: &str) -> usize {
        lock(&self.state.requests)
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
        wire::wait_for_close(&mut stream, state).await;
        return;
    }
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            r = wire::read_request(&mut stream, &mut buf) => r,
            _ = close_idle.changed() => None,
        };
        let Some(request) = request else { return };
        let reply = reply_for(state, &request);
        lock(&state.requests).push(request);
        let _busy = Busy::enter(state);
        if !wire::answer(&mut stream, state, reply).await {
            return;
        }
    }
}

/// The reply to `request`, resolved (a cycle or sequence has picked).
fn reply_for(state: &State, request: &Recorded) -> Reply {
    let id = request.reference_id();
    if request.is_submit() {
        return submit_reply(state, id.as_deref());
    }
    let scripted = || {
        id.as_ref()
            .and_then(|id| lock(&state.by_reference).get(id).cloned())
            .or_else(|| lock(&state.default).clone())
    };
    let job = {
        let jobs = lock(&state.jobs);
        jobs.finish_after
            .zip(id.as_ref().and_then(|id| jobs.accepted.get(id)))
            .map(|(after, at)| at.elapsed() >= after)
    };
    let reply = match job {
        Some(false) => Reply::not_found(),
        Some(true) => scripted().unwrap_or_else(|| {
            let mut body = sample_success();
            body["data"]["reference_id"] = Value::from(id.clone().unwrap_or_default());
            Reply::Json(200, body)
        }),
        None => scripted().unwrap_or_else(Reply::not_found),
    };
    reply.resolve()
}

/// A submit's reply: its script, else the documented acceptance (or
/// refusal of an id accepted before). A 2xx reply accepts the job.
fn submit_reply(state: &State, id: Option<&str>) -> Reply {
    let scripted = id
        .and_then(|id| lock(&state.submits).get(id).cloned())
        .or_else(|| lock(&state.default_submit).clone());
    let mut jobs = lock(&state.jobs);
    let reply = match scripted {
        Some(reply) => reply.resolve(),
        None => match id {
            Some(id) if jobs.accepted.contains_key(id) => Reply::reference_id_exists(),
            Some(id) => Reply::accepted(id),
            // The real one generates an id; the gateway always sends one.
            None => Reply::accepted("FAKE-GENERATED-ID"),
        },
    };
    if let (Some(id), Some(200..=299)) = (id, reply.status()) {
        jobs.accepted
            .entry(id.to_owned())
            .or_insert_with(Instant::now);
    }
    reply
}
