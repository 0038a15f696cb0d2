//! A fake OpenTelemetry collector: the collector's gRPC
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export`, from the
//! published OpenTelemetry protos, on a loopback port. It keeps every span
//! it is sent (flattened into [`Collected`] for assertions) and the
//! metadata of every export, and can refuse or stall exports on demand.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    Request, Response, Status,
    transport::{Identity, ServerTlsConfig, server::TcpIncoming},
};

use crate::pki::Leaf;

/// How the collector answers an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keeps the spans and answers OK.
    Accept,
    /// Answers UNAVAILABLE, keeping nothing.
    Refuse,
    /// Never answers.
    Stall,
    /// Counts the spans and answers OK, keeping none (a sink for benches).
    Count,
}

/// One span as the collector received it; ids in lower-case hex.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The span's name.
    pub name: String,
    /// `SPAN_KIND_SERVER` and so on, as the proto names the kind.
    pub kind: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root.
    pub parent_span_id: String,
    /// Every attribute, its value as text (`"GET"`, `200`, `true`).
    pub attributes: BTreeMap<String, String>,
    /// Each event's name and attributes.
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// Each link's (trace id, span id).
    pub links: Vec<(String, String)>,
    /// `STATUS_CODE_ERROR` and so on.
    pub status: String,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
}

impl Collected {
    /// An attribute's value as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Debug)]
struct State {
    mode: Mode,
    spans: Vec<Collected>,
    /// Each export's request metadata (lower-case names).
    exports: Vec<BTreeMap<String, String>>,
    /// Spans received in exports answered OK.
    counted: usize,
}

#[derive(Debug, Clone)]
struct Service(Arc<Mutex<State>>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let metadata = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| {
                let value = v.to_str().unwrap_or("<binary>").to_owned();
                (k.as_str().to_owned(), value)
            })
            .collect();
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let mode = {
            let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if state.mode != Mode::Count {
                state.exports.push(metadata);
            }
            state.mode
        };
        match mode {
            Mode::Accept | Mode::Count => {}
            Mode::Refuse => return Err(Status::unavailable("refused by the fake collector")),
            Mode::Stall => std::future::pending::<()>().await,
        }
        let collected = match mode {
            Mode::Count => Vec::new(),
            _ => flatten(request.into_inner()),
        };
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.counted += spans;
        state.spans.extend(collected);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The running collector; dropping it stops it.
#[derive(Debug)]
pub struct FakeCollector {
    addr: SocketAddr,
    tls: bool,
    state: Arc<Mutex<State>>,
    _stop: oneshot::Sender<()>,
}

impl FakeCollector {
    /// Starts on an ephemeral loopback port, accepting.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().expect("an address")).await
    }

    /// Starts on `addr`, accepting.
    pub async fn start_at(addr: SocketAddr) -> Self {
        Self::serve(addr, None).await
    }

    /// Starts on an ephemeral loopback port over TLS with `leaf` (its
    /// endpoint is then `https://localhost:<port>`).
    pub async fn start_tls(leaf: &Leaf) -> Self {
        Self::serve("127.0.0.1:0".parse().expect("an address"), Some(leaf)).await
    }

    async fn serve(addr: SocketAddr, tls: Option<&Leaf>) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the fake collector");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Accept,
            spans: Vec::new(),
            exports: Vec::new(),
            counted: 0,
        }));
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(Service(Arc::clone(&state)));
        let mut server = tonic::transport::Server::builder();
        if let Some(leaf) = tls {
            let identity = Identity::from_pem(&leaf.cert_pem, &leaf.key_pem);
            server = server
                .tls_config(ServerTlsConfig::new().identity(identity))
                .expect("the leaf is a usable identity");
        }
        let tls = tls.is_some();
        tokio::spawn(async move {
            let _ = server
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            tls,
            state,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>` (`https://localhost:<port>` over TLS), for
    /// `trace.otlp_endpoint`.
    pub fn endpoint(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}", self.addr.port()),
            false => format!("http://{}", self.addr),
        }
    }

    /// How later exports are answered.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Every span kept so far.
    pub fn spans(&self) -> Vec<Collected> {
        self.lock().spans.clone()
    }

    /// Spans received in exports answered OK (kept or only counted).
    pub fn counted(&self) -> usize {
        self.lock().counted
    }

    /// Each export's request metadata, in order.
    pub fn exports(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().exports.clone()
    }

    /// The spans kept once `done` holds of them, or whatever there is after
    /// `within` (the caller's assertions then say what is missing).
    pub async fn spans_when(
        &self,
        within: Duration,
        done: impl Fn(&[Collected]) -> bool,
    ) -> Vec<Collected> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() >= until {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Collected> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let kind = span.kind().as_str_name().to_owned();
                let status = span
                    .status
                    .as_ref()
                    .map(|s| s.code().as_str_name().to_owned())
                    .unwrap_or_default();
                out.push(Collected {
                    name: span.name,
                    kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| (e.name.clone(), attributes(&e.attributes)))
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    status,
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
