//! The label values the metrics take: each an enum, so that no label can
//! hold anything but these bounded names.

/// Why a client connection of the gRPC port closed, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The client closed it (or it broke).
    Client,
    /// TLS or the HTTP/2 preface failed or took longer than
    /// `server.handshake_timeout`.
    Handshake,
    /// It reached `server.max_connection_age`: GOAWAY, then closed.
    Age,
    /// The server shut down.
    Shutdown,
    /// An HTTP/1.1 connection sent no request for
    /// `server.keepalive_interval` + `server.keepalive_timeout` after its
    /// last answer (HTTP/2 has PINGs instead).
    Idle,
}

impl ConnectionEnd {
    pub(super) const ALL: [Self; 5] = [
        Self::Client,
        Self::Handshake,
        Self::Age,
        Self::Shutdown,
        Self::Idle,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Handshake => "handshake",
            Self::Age => "age",
            Self::Shutdown => "shutdown",
            Self::Idle => "idle",
        }
    }
}

/// The protocol a call came in by, as the `protocol` label of the call
/// metrics: the same call path serves them all, and this tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// gRPC-Web (binary or text), over HTTP/1.1 or HTTP/2.
    GrpcWeb,
    /// The Connect protocol (unary; JSON or proto), over HTTP/1.1 or HTTP/2.
    Connect,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc_web",
            Self::Connect => "connect",
        }
    }
}

/// How an upstream attempt ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx with data.
    Success,
    /// 2xx with a job `error_code`.
    JobError,
    /// A non-2xx status.
    HttpError,
    /// No complete answer within `upstream.timeout`.
    Timeout,
    /// Connection refused, reset, TLS failure.
    TransportError,
    /// An unusable body.
    BadResponse,
}

impl AttemptOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::JobError => "job_error",
            Self::HttpError => "http_error",
            Self::Timeout => "timeout",
            Self::TransportError => "transport_error",
            Self::BadResponse => "bad_response",
        }
    }
}

/// The circuit breaker's state, as the `state` label of
/// `ktp_gateway_upstream_circuit_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe is out; its outcome closes or reopens the circuit.
    HalfOpen,
}
