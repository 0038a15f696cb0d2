//! What every `GetKtpResult` call leaves behind: exactly one log line and its
//! metrics, whether it succeeded, failed, was refused or was abandoned.
//!
//! The line holds the method, code, duration, request id and reference id
//! (not personal data) but never KTP fields, bodies or credentials.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tonic::{
    Code, Status,
    body::Body,
    codegen::{Service, http},
    metadata::MetadataMap,
    server::NamedService,
};
use tracing::Level;

use crate::{
    error::{GatewayError, MalformedRequest},
    mapping::{self, CallContext, Row},
    metrics::Metrics,
    request_meta::{self, REQUEST_ID_HEADER},
};

/// Full gRPC method name, as logged and as the metrics' `method` label.
pub const GET_KTP_RESULT: &str = "/ktp.v1.KtpService/GetKtpResult";

/// Records finished calls; cheap to clone.
#[derive(Debug, Clone)]
pub struct CallObserver {
    metrics: Metrics,
}

/// How a call ended, as logged.
struct Outcome<'a> {
    level: Level,
    code: Code,
    reason: &'a str,
    upstream_http_status: &'a str,
    error: &'a str,
}

impl CallObserver {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }

    pub fn succeeded(&self, call: CallContext<'_>, started: Instant) {
        let outcome = Outcome {
            level: Level::INFO,
            code: Code::Ok,
            reason: "",
            upstream_http_status: "",
            error: "",
        };
        self.record(call, started, &outcome);
    }

    pub fn failed(&self, call: CallContext<'_>, started: Instant, row: &Row, err: &GatewayError) {
        let level = match row.code {
            // The gateway's own credentials are wrong: someone must act.
            _ if row.reason == mapping::reason::UPSTREAM_AUTH_FAILED => Level::ERROR,
            Code::Internal | Code::Unavailable | Code::Unknown => Level::WARN,
            _ => Level::INFO,
        };
        let upstream_http_status = row
            .metadata
            .iter()
            .find(|(k, _)| *k == "upstream_http_status")
            .map_or("", |(_, v)| v.as_str());
        let error = err.to_string();
        let outcome = Outcome {
            level,
            code: row.code,
            reason: &row.reason,
            upstream_http_status,
            error: &error,
        };
        self.record(call, started, &outcome);
    }

    /// The caller went away (cancelled, disconnected, or tonic's own deadline
    /// fired) before the answer.
    pub fn abandoned(&self, call: CallContext<'_>, started: Instant) {
        let outcome = Outcome {
            level: Level::INFO,
            code: Code::Cancelled,
            reason: "",
            upstream_http_status: "",
            error: "the caller went away before the answer",
        };
        self.record(call, started, &outcome);
    }

    fn record(&self, call: CallContext<'_>, started: Instant, o: &Outcome<'_>) {
        let elapsed = started.elapsed();
        self.metrics
            .record_call(GET_KTP_RESULT, mapping::code_name(o.code), elapsed);
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(
                    $lvl,
                    method = GET_KTP_RESULT,
                    grpc_code = mapping::code_name(o.code),
                    duration_ms,
                    request_id = call.request_id,
                    reference_id = call.reference_id.unwrap_or(""),
                    trace_id = call.trace_id.unwrap_or(""),
                    reason = o.reason,
                    upstream_http_status = o.upstream_http_status,
                    error = o.error,
                    "call finished"
                )
            };
        }
        match o.level {
            Level::ERROR => emit!(Level::ERROR),
            Level::WARN => emit!(Level::WARN),
            _ => emit!(Level::INFO),
        }
    }
}

/// Wraps the KTP service so that a call tonic refuses itself, before the
/// gateway's code runs (a request message over the size limit, not protobuf,
/// not UTF-8), still gets what every call gets: its log line, its metrics, a
/// request id and `ErrorInfo` (reasons `REQUEST_TOO_LARGE`,
/// `REQUEST_NOT_DECODABLE`, `REQUEST_REFUSED`). Every answer of the gateway's
/// own code carries `x-request-id`; an error answer without it is tonic's.
#[derive(Debug, Clone)]
pub struct ObserveRefusals<S> {
    inner: S,
    observer: CallObserver,
}

impl<S> ObserveRefusals<S> {
    pub fn new(inner: S, observer: CallObserver) -> Self {
        Self { inner, observer }
    }
}

impl<S: NamedService> NamedService for ObserveRefusals<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for ObserveRefusals<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != GET_KTP_RESULT {
            return Box::pin(self.inner.call(request));
        }
        let started = Instant::now();
        let caller_request_id = request.headers().get(REQUEST_ID_HEADER).cloned();
        let observer = self.observer.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if response.headers().contains_key(REQUEST_ID_HEADER) {
                return Ok(response);
            }
            let Some(status) =
                Status::from_header_map(response.headers()).filter(|s| s.code() != Code::Ok)
            else {
                return Ok(response);
            };
            let mut metadata = MetadataMap::new();
            if let Some(value) = caller_request_id {
                metadata.as_mut().insert(REQUEST_ID_HEADER, value);
            }
            let request_id = request_meta::request_id(&metadata);
            let call = CallContext {
                request_id: &request_id,
                ..Default::default()
            };
            let err = GatewayError::Malformed(MalformedRequest {
                code: status.code(),
                message: status.message().to_owned(),
            });
            let row = mapping::classify(&err);
            observer.failed(call, started, &row, &err);
            Ok(mapping::render(&row, call).into_http())
        })
    }
}
