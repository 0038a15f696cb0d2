//! The one tower layer every `ktp.v1.KtpService` call passes through, so that
//! a handler only computes its answer: [`CallLayer`] reads the call's
//! metadata once (request id, caller deadline, trace context), sheds the call
//! when `server.max_in_flight` are already in flight, and when the call ends
//! writes its one log line and metrics and echoes `x-request-id`, whether
//! the call succeeded, failed, was refused by tonic itself (too large, not
//! decodable) or was abandoned by its caller.
//!
//! Handlers see the call as a [`Call`] (from the request's extensions) and
//! return domain results through [`Call::answer`], the only place a
//! [`GatewayError`] becomes a status. The log line holds method, code,
//! duration, request id, reference id and trace id, never KTP fields, bodies
//! or credentials.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use tokio::time::Instant;
use tonic::{
    Code, Request, Response, Status,
    body::Body,
    codegen::{
        Service,
        http::{self, HeaderValue},
    },
    server::NamedService,
};
use tower::Layer;
use tracing::{Instrument, Level};

use super::{
    metadata::{self, REQUEST_ID_HEADER},
    status::{self, code_name, reason},
};
use crate::{
    error::{GatewayError, MalformedRequest, Refusal},
    metrics::Metrics,
    proto::KTP_METHODS,
    resilience::overload::InFlightLimit,
    trace::TraceContext,
};

/// One call as the gateway sees it, shared by the layer and the handler.
#[derive(Debug)]
pub struct Call {
    /// Full gRPC method name (the metrics' `method` label); `""` for a call
    /// made without the layer, which is not recorded.
    method: &'static str,
    request_id: String,
    started: Instant,
    deadline: Option<Instant>,
    trace: Option<TraceContext>,
    /// The validated reference id, once the handler has one (for the log
    /// line and `ResourceInfo`).
    reference_id: OnceLock<String>,
    outcome: OnceLock<Outcome>,
}

/// How the gateway's own code answered a call.
#[derive(Debug)]
enum Outcome {
    Ok,
    Failed(Failure),
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
    fn new(method: &'static str, headers: &http::HeaderMap) -> Self {
        let started = Instant::now();
        let deadline = metadata::caller_timeout(headers)
            .map(|t| started + t.saturating_sub(metadata::answer_margin(t)));
        Self {
            method,
            request_id: metadata::request_id(headers),
            started,
            deadline,
            trace: metadata::trace_context(headers),
            reference_id: OnceLock::new(),
            outcome: OnceLock::new(),
        }
    }

    /// The call a request belongs to. A request that did not come through
    /// [`CallLayer`] (a service built without it) gets a call of its own,
    /// which works but is not recorded.
    pub fn of<T>(request: &Request<T>) -> Arc<Self> {
        Self::in_extensions(request.extensions(), request.metadata().as_ref())
    }

    /// [`Call::of`] for a request not yet decoded (tower layers).
    pub(super) fn of_http<B>(request: &http::Request<B>) -> Arc<Self> {
        Self::in_extensions(request.extensions(), request.headers())
    }

    fn in_extensions(extensions: &http::Extensions, headers: &http::HeaderMap) -> Arc<Self> {
        extensions
            .get::<Arc<Self>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Self::new("", headers)))
    }

    /// The caller's deadline, less the margin that lets our answer arrive first.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The caller's W3C trace context, passed on to the upstream.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// Names the call's (validated) reference id in its log line and errors.
    pub fn set_reference_id(&self, id: &str) {
        let _ = self.reference_id.set(id.to_owned());
    }

    /// Runs the handler's work within the caller's deadline and answers:
    /// `Ok` as is, an error as its error-table row. Giving up at the
    /// deadline drops the work, and with it any upstream request.
    pub async fn answer<T>(
        &self,
        work: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<Response<T>, Status> {
        let result = match self.deadline {
            Some(at) => tokio::time::timeout_at(at, work)
                .await
                .unwrap_or(Err(GatewayError::DeadlineExceeded)),
            None => work.await,
        };
        match result {
            Ok(message) => {
                let _ = self.outcome.set(Outcome::Ok);
                Ok(Response::new(message))
            }
            Err(err) => Err(self.fail(&err)),
        }
    }

    /// The one conversion from domain error to status: renders `err`'s row
    /// and keeps what the log line needs.
    pub(super) fn fail(&self, err: &GatewayError) -> Status {
        let row = status::classify(err);
        let level = match row.code {
            // The gateway's own credentials are wrong: someone must act.
            _ if row.reason == reason::UPSTREAM_AUTH_FAILED => Level::ERROR,
            Code::Internal | Code::Unavailable | Code::Unknown => Level::WARN,
            _ => Level::INFO,
        };
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
        let _ = self.outcome.set(Outcome::Failed(Failure {
            level,
            code: row.code,
            reason: row.reason,
            upstream_http_status,
            error: err.to_string(),
        }));
        rendered
    }
}

/// Records every call of the service it wraps; see the module doc.
#[derive(Debug, Clone)]
pub struct CallLayer {
    metrics: Metrics,
    in_flight: InFlightLimit,
}

impl CallLayer {
    /// One registry and one in-flight limit per server, shared by every
    /// connection's copy of the layer.
    pub fn new(metrics: Metrics, in_flight: InFlightLimit) -> Self {
        Self { metrics, in_flight }
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CallLayer`] makes.
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    layer: CallLayer,
}

impl<S: NamedService> NamedService for Recorded<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for Recorded<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Only our own methods are recorded: the label set stays bounded.
        let Some(method) = KTP_METHODS.iter().find(|m| **m == request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        let call = Arc::new(Call::new(method, request.headers()));
        let recorder = Recorder {
            metrics: self.layer.metrics.clone(),
            call: Arc::clone(&call),
            answered: false,
        };
        // Held until the answer is ready: the cap counts calls, not requests.
        let Some(admitted) = self.layer.in_flight.try_admit() else {
            let status = call.fail(&GatewayError::Overloaded {
                limit: self.layer.in_flight.limit(),
            });
            return Box::pin(std::future::ready(Ok(recorder.finish(status.into_http()))));
        };
        request.extensions_mut().insert(call);
        // Every line logged while the call runs carries its request id.
        // Those lines are all DEBUG or finer, so is the span: at the default
        // level it is never built (bench/README.md, change 9).
        let span = tracing::debug_span!("call", request_id = %recorder.call.request_id);
        let answer = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = answer.await?;
            drop(admitted);
            Ok(recorder.finish(response))
        })
    }
}

/// Writes the call's log line and metrics exactly once: when the answer is
/// ready, or, if the caller goes away first (cancels, disconnects, or
/// tonic's own deadline fires), when the call is dropped.
struct Recorder {
    metrics: Metrics,
    call: Arc<Call>,
    answered: bool,
}

impl Recorder {
    fn finish(mut self, response: http::Response<Body>) -> http::Response<Body> {
        self.answered = true;
        let mut response = match self.call.outcome.get() {
            Some(_) => response,
            None => match Status::from_header_map(response.headers()) {
                // tonic answered without running our code: it refused the
                // request message itself. Its codes (OUT_OF_RANGE, INTERNAL)
                // would blame the server; give it the gateway's row instead.
                Some(refused) if refused.code() != Code::Ok => {
                    self.call.fail(&refusal(&refused)).into_http()
                }
                _ => {
                    let _ = self.call.outcome.set(Outcome::Ok);
                    response
                }
            },
        };
        if !response.headers().contains_key(REQUEST_ID_HEADER)
            && let Ok(v) = HeaderValue::try_from(self.call.request_id.as_str())
        {
            response.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        self.record();
        response
    }

    fn record(&self) {
        let call = &*self.call;
        let (level, code, reason, upstream_http_status, error) = match call.outcome.get() {
            Some(Outcome::Ok) => (Level::INFO, Code::Ok, "", "", ""),
            Some(Outcome::Failed(f)) => (
                f.level,
                f.code,
                f.reason.as_str(),
                f.upstream_http_status.as_str(),
                f.error.as_str(),
            ),
            None => (
                Level::INFO,
                Code::Cancelled,
                "",
                "",
                "the caller went away before the answer",
            ),
        };
        let elapsed = call.started.elapsed();
        self.metrics
            .record_call(call.method, code_name(code), elapsed);
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(
                    $lvl,
                    method = call.method,
                    grpc_code = code_name(code),
                    duration_ms,
                    request_id = call.request_id.as_str(),
                    reference_id = call.reference_id.get().map_or("", String::as_str),
                    trace_id = call.trace.as_ref().map_or("", TraceContext::trace_id),
                    reason,
                    upstream_http_status,
                    error,
                    "call finished"
                )
            };
        }
        match level {
            Level::ERROR => emit!(Level::ERROR),
            Level::WARN => emit!(Level::WARN),
            _ => emit!(Level::INFO),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.answered {
            self.record();
        }
    }
}

/// A status tonic produced itself, as the domain error it stands for.
pub(super) fn refusal(status: &Status) -> GatewayError {
    let kind = match status.code() {
        Code::OutOfRange => Refusal::TooLarge,
        Code::Internal => Refusal::NotDecodable,
        code => Refusal::Other(code as i32),
    };
    GatewayError::Malformed(MalformedRequest {
        kind,
        message: status.message().to_owned(),
    })
}
