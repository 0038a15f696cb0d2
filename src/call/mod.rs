//! The call path: the one tower layer every `ktp.v1.KtpService` call passes
//! through, whatever its protocol (gRPC, gRPC-Web, Connect), so that a use
//! case only computes its answer: [`CallLayer`] reads the call's
//! metadata once (request id, caller deadline, trace context), sheds the call
//! when `server.max_in_flight` are already in flight, and when the call ends
//! writes its one log line and metrics and echoes `x-request-id`, whether
//! the call succeeded, failed, was refused by tonic itself (too large, not
//! decodable) or was abandoned by its caller.
//!
//! Use cases see the call as a [`Call`] (from the request's extensions) and
//! return domain results through [`Call::answer`], the only place a
//! [`GatewayError`] becomes a status; the Connect edge renders that status
//! its own way. The log line holds method, code,
//! duration, request id, reference id, trace id and the caller's name, never
//! KTP fields, bodies or credentials.

use std::sync::{
    Arc, Mutex, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use tokio::time::Instant;
use tonic::{
    Code, Status,
    codegen::http::{self},
};
use tracing::Level;

use self::limit::Refused;
use crate::{
    error::{GatewayError, MalformedRequest, Refusal},
    metrics::Protocol,
    proto::KtpChecks,
    resilience::overload::InFlight,
    security::auth::Caller,
    status,
    telemetry::traces::Tracer,
    trace::TraceContext,
};

/// One call as the gateway sees it, shared by the layer and the handler.
#[derive(Debug)]
pub struct Call {
    /// Full gRPC method name (the metrics' `method` label); `""` for a call
    /// made without the layer, which is not recorded.
    method: &'static str,
    request_id: Box<str>,
    started: Instant,
    deadline: Option<Instant>,
    /// Boxed, as the failure: a waiting call's `Call` lives for seconds,
    /// and most calls carry no trace context.
    trace: Option<Box<TraceContext>>,
    /// The validated reference id, once the handler has one (for the log
    /// line and `ResourceInfo`).
    reference_id: OnceLock<String>,
    outcome: OnceLock<Outcome>,
    /// Set when the request body was cut: over its method's size limit,
    /// or not fully received within `server.request_read_timeout`.
    refused_body: Arc<OnceLock<Refused>>,
    /// The call waits for its job: timed apart from the others.
    waits: AtomicBool,
    /// The places the call holds, under one lock (one lock, not three:
    /// a waiting call's `Call` lives for seconds).
    held: Mutex<Held>,
    /// Who called, once auth knows (unset: auth is off, anyone).
    caller: OnceLock<Caller>,
    /// The answer's consistency checks, counted when the call ends.
    checks: OnceLock<KtpChecks>,
}

/// The places a call holds.
#[derive(Debug, Default)]
struct Held {
    /// The method's own slot, while the call holds what it bounds.
    slot: Option<InFlight>,
    /// Its place among `server.max_in_flight`, until it starts waiting.
    in_flight: Option<InFlight>,
    /// Its place among `wait.max_waiting`, once it waits.
    waiting: Option<InFlight>,
}

/// How the gateway's own code answered a call.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// Boxed: set only as a failed call ends, it would otherwise size
    /// every call's state for its whole life.
    Failed(Box<Failure>),
}

/// What the log line says about a failed call.
#[derive(Debug)]
struct Failure {
    level: Level,
    code: Code,
    reason: String,
    upstream_http_status: String,
    error: String,
}

impl Call {
    fn new(
        method: &'static str,
        protocol: Protocol,
        headers: &http::HeaderMap,
        tracer: &Tracer,
    ) -> Self {
        let started = Instant::now();
        let timeout = match protocol {
            Protocol::Connect => metadata::connect_timeout(headers),
            Protocol::Grpc | Protocol::GrpcWeb => metadata::caller_timeout(headers),
        };
        let deadline = timeout.map(|t| started + t.saturating_sub(metadata::answer_margin(t)));
        let rpc_system = match protocol {
            Protocol::Connect => "connect_rpc",
            Protocol::Grpc | Protocol::GrpcWeb => "grpc",
        };
        Self {
            method,
            request_id: metadata::request_id(headers).into_boxed_str(),
            started,
            deadline,
            trace: tracer
                .call(method, rpc_system, metadata::trace_context(headers))
                .map(Box::new),
            reference_id: OnceLock::new(),
            outcome: OnceLock::new(),
            refused_body: Arc::default(),
            waits: AtomicBool::new(false),
            held: Mutex::default(),
            caller: OnceLock::new(),
            checks: OnceLock::new(),
        }
    }

    /// The call a request belongs to.
    pub fn of_http<B>(request: &http::Request<B>) -> Arc<Self> {
        Self::in_extensions(request.extensions(), request.headers())
    }

    /// The call whose request has these extensions and headers. A request
    /// that did not come through [`CallLayer`] (a service built without
    /// it) gets a call of its own, which works but is not recorded.
    pub fn in_extensions(extensions: &http::Extensions, headers: &http::HeaderMap) -> Arc<Self> {
        extensions
            .get::<Arc<Self>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Self::new("", Protocol::Grpc, headers, &Tracer::off())))
    }

    /// The caller's deadline, less the margin that lets our answer arrive first.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The call's W3C trace context, passed on to the upstream: the
    /// caller's, or with export on, naming the call's SERVER span.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_deref()
    }

    /// Names the call's (validated) reference id in its log line and errors.
    pub fn set_reference_id(&self, id: &str) {
        let _ = self.reference_id.set(id.to_owned());
    }

    /// Names the caller (its token's line) for the log line, the metrics and
    /// the fields it may see.
    pub(super) fn set_caller(&self, caller: &Caller) {
        let _ = self.caller.set(caller.clone());
    }

    /// Who called: [`Caller::ANYONE`] when auth is off.
    pub fn caller(&self) -> &Caller {
        self.caller.get().unwrap_or(&Caller::ANYONE)
    }

    /// Why the request body was cut (too large, or too slow to arrive),
    /// as the error to answer, if it was.
    pub fn refused_body(&self) -> Option<GatewayError> {
        Some(match self.refused_body.get()? {
            Refused::TooLarge(too_large) => GatewayError::Malformed(MalformedRequest {
                kind: Refusal::TooLarge,
                message: too_large.to_string(),
            }),
            Refused::TimedOut(timed_out) => GatewayError::RequestReadTimeout {
                limit: timed_out.limit,
            },
        })
    }

    /// Keeps the answer's checks for the metrics (their counts, no values).
    pub fn set_checks(&self, checks: KtpChecks) {
        let _ = self.checks.set(checks);
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Plain values, valid even if a holder panicked.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the method's own slot (`submit.max_in_flight`) for the call.
    pub(super) fn hold_slot(&self, permit: InFlight) {
        self.held().slot = Some(permit);
    }

    /// Gives back the method's own slot (`submit.max_in_flight`) before the
    /// call ends: the image it bounds is gone, and a call that now only
    /// waits must not keep a submit out.
    pub fn release_slot(&self) {
        self.held().slot.take();
    }

    /// Keeps the call's place among `server.max_in_flight`.
    pub(super) fn hold_in_flight(&self, permit: InFlight) {
        self.held().in_flight = Some(permit);
    }

    /// Gives back every place the call holds, as it ends.
    pub(super) fn release_all(&self) {
        // Taken out before they drop, the lock released first.
        let held = std::mem::take(&mut *self.held());
        drop(held);
    }

    /// The call now waits for its job, holding `waiting` (its place among
    /// `wait.max_waiting`) until it ends: it gives back its place among
    /// `server.max_in_flight` (a waiting call is counted and priced apart),
    /// and its duration is the job's, so it is timed apart too.
    pub fn start_waiting(&self, waiting: InFlight) {
        let mut held = self.held();
        held.waiting = Some(waiting);
        let in_flight = held.in_flight.take();
        drop(held);
        drop(in_flight);
        self.waits.store(true, Ordering::Relaxed);
    }

    /// The one conversion from domain error to status: renders `err`'s row
    /// and keeps what the log line needs.
    pub fn fail(&self, err: &GatewayError) -> Status {
        let mut row = status::classify(err);
        // Once the call's id is valid (given, or generated before the first
        // attempt), every error names it: after a lost answer or a deadline
        // the upstream may hold the job, and the id may be one the caller
        // never saw. An invalid id is never set, so never echoed.
        if let Some(id) = self.reference_id.get()
            && !row.metadata.iter().any(|(k, _)| *k == status::REFERENCE_ID)
        {
            row.metadata.push((status::REFERENCE_ID, id.clone()));
        }
        let level = log_level(&row);
        let upstream_http_status = row
            .metadata
            .iter()
            .find(|(k, _)| *k == status::UPSTREAM_HTTP_STATUS)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rendered = status::render(
            &row,
            &self.request_id,
            self.reference_id.get().map(String::as_str),
        );
        let _ = self.outcome.set(Outcome::Failed(Box::new(Failure {
            level,
            code: row.code,
            reason: row.reason,
            upstream_http_status,
            error: err.to_string(),
        })));
        rendered
    }
}

/// The level of a failed call's log line.
fn log_level(row: &status::Row) -> Level {
    match row.code {
        // The gateway's own credentials are wrong, or it has a bug: someone
        // must act.
        _ if row.reason == status::reason::UPSTREAM_AUTH_FAILED
            || row.reason == status::reason::INTERNAL_ERROR =>
        {
            Level::ERROR
        }
        Code::Internal | Code::Unavailable | Code::Unknown => Level::WARN,
        _ => Level::INFO,
    }
}

mod answer;
pub mod auth;
mod gate;
mod layer;
pub mod limit;
pub mod metadata;
pub mod protocol;
mod record;
mod slots;

pub use answer::Answered;
pub use gate::{Admission, Gate, GateLayer, Gated};
pub use layer::{CallLayer, MessageLimits, Recorded};
pub use slots::ImageSlots;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{resilience::Failure, upstream::UpstreamError};

    fn level(err: UpstreamError) -> Level {
        log_level(&status::classify(&GatewayError::Upstream(err)))
    }

    /// A lost shared request is a bug of the gateway: ERROR, like refused
    /// credentials; the upstream's own failures are WARN.
    #[test]
    fn a_lost_shared_request_is_logged_at_error() {
        assert_eq!(level(UpstreamError::flight_lost()), Level::ERROR);
        let refused = UpstreamError::Status {
            status: 401,
            error_code: None,
            retry_after: None,
        };
        assert_eq!(level(refused), Level::ERROR);
        let down = UpstreamError::Transport {
            status: None,
            detail: String::new(),
        };
        assert_eq!(level(down), Level::WARN);
        assert_eq!(level(UpstreamError::NoSlot { limit: 1 }), Level::INFO);
    }
}
