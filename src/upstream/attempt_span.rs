//! Each upstream attempt as a CLIENT span under its call's span (or its
//! wait), and the `traceparent` that names it to the upstream. Only what
//! identifies the request is recorded: method, path, the URL without its
//! query, host and port, the answer's status; never a header or a body.

use std::sync::Arc;

use opentelemetry::{
    KeyValue, StringValue,
    trace::{Span as _, SpanContext},
};
use opentelemetry_sdk::trace::Span;
use url::Url;

use super::{UpstreamError, client};
use crate::trace::{
    TraceContext,
    span::{self, key},
};

/// One kind of upstream request, as its spans name it.
#[derive(Debug, Clone)]
pub struct Target {
    name: &'static str,
    method: &'static str,
    /// Shared, so each span's attribute is a reference count, not a copy.
    full: StringValue,
    path: StringValue,
}

impl Target {
    fn new(base: &Url, name: &'static str, method: &'static str, path: &str) -> Self {
        let url = client::endpoint(base, path);
        Self {
            name,
            method,
            path: Arc::<str>::from(url.path()).into(),
            full: Arc::<str>::from(url.as_str()).into(),
        }
    }
}

/// The upstream as every attempt span names it.
#[derive(Debug, Clone)]
pub struct Peer {
    address: StringValue,
    port: i64,
    /// The result call's GET.
    pub(crate) result: Target,
    /// The submit's POST.
    pub(crate) submit: Target,
}

impl Peer {
    /// From `upstream.base_url` (credentials were refused at load; the
    /// endpoints drop any query).
    pub fn new(base: &Url) -> Self {
        Self {
            address: Arc::<str>::from(base.host_str().unwrap_or_default()).into(),
            port: base.port_or_known_default().map_or(0, i64::from),
            result: Target::new(
                base,
                "GET /ktp/id/extract-async/result",
                "GET",
                client::RESULT_PATH,
            ),
            submit: Target::new(
                base,
                "POST /ktp/id/extract-async",
                "POST",
                client::SUBMIT_PATH,
            ),
        }
    }
}

/// An operation whose attempts are traced.
pub trait Traced {
    /// The call's trace context.
    fn trace(&self) -> Option<&TraceContext>;
    /// Which request the operation makes.
    fn target(peer: &Peer) -> &Target;
    /// An attempt of it started as `span` (kept by a shared request, for the
    /// callers that share it to link to).
    fn attempted(&self, _span: &SpanContext) {}
}

/// Starts attempt `attempt` (0 for the first) of an operation traced as
/// `trace`: its span, and the context its request carries (the span's id
/// and sampling decision, the caller's `tracestate`). Without a span
/// (export off), the request carries the call's context as it came.
pub fn start<Op: Traced>(
    op: &Op,
    peer: &Peer,
    attempt: u32,
) -> (Option<Box<Span>>, Option<TraceContext>) {
    let trace = op.trace();
    let Some(parent) = trace.and_then(|t| t.span.as_ref()) else {
        return (None, trace.cloned());
    };
    let target = Op::target(peer);
    let (attempt_span, id) = parent.attempt(target.name, || {
        vec![
            KeyValue::new(key::HTTP_REQUEST_METHOD, target.method),
            KeyValue::new(key::URL_PATH, target.path.clone()),
            KeyValue::new(key::URL_FULL, target.full.clone()),
            KeyValue::new(key::SERVER_ADDRESS, peer.address.clone()),
            KeyValue::new(key::SERVER_PORT, peer.port),
            KeyValue::new(key::KTP_ATTEMPT, i64::from(attempt) + 1),
        ]
    });
    if attempt_span.is_some() {
        op.attempted(&id);
    }
    let outgoing = TraceContext {
        traceparent: span::traceparent(&id),
        tracestate: trace.and_then(|t| t.tracestate.clone()),
        span: None,
    };
    (attempt_span, Some(outgoing))
}

/// Ends an attempt's span with its answer. A job's own error is an answer
/// (the job failed, the request did not); any other error names its HTTP
/// status when one came back, else the attempt metric's outcome.
pub fn end<T>(mut attempt_span: Box<Span>, answer: &Result<T, UpstreamError>) {
    if attempt_span.is_recording() {
        let (status, error) = match answer {
            Ok(_) => (Some(200), None),
            Err(e @ UpstreamError::JobFailed { .. }) => (e.attempt_outcome().1, None),
            Err(e) => {
                let (outcome, status) = e.attempt_outcome();
                let error = status.map_or_else(|| outcome.as_str().to_owned(), |s| s.to_string());
                (status, Some(error))
            }
        };
        if let Some(status) = status {
            attempt_span.set_attribute(KeyValue::new(
                key::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
        }
        if let Some(error) = error {
            attempt_span.set_attribute(KeyValue::new(key::ERROR_TYPE, error));
            attempt_span.set_status(opentelemetry::trace::Status::error(""));
        }
    }
    attempt_span.end();
}
