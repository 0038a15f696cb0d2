//! The gateway's own OpenTelemetry spans, built with the API directly: the
//! sampling decision comes as a span starts, so an unsampled call sets no
//! attribute and exports nothing. Only this module names attribute keys,
//! and it is given none but the values below: never a KTP field, an image,
//! a URL's query, a token or a credential.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use opentelemetry::{
    Context, KeyValue,
    trace::{
        Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _,
        TraceFlags, TraceId, TraceState, Tracer as _,
    },
};
use opentelemetry_sdk::trace::{SdkTracer, Span};

use super::TraceContext;

/// Attribute and event names, as the semantic conventions of the 1.2x
/// releases spell them (stock dashboards read these).
pub mod key {
    /// `grpc` for the gRPC port's calls.
    pub const RPC_SYSTEM: &str = "rpc.system";
    /// `ktp.v1.KtpService`.
    pub const RPC_SERVICE: &str = "rpc.service";
    /// The method's short name.
    pub const RPC_METHOD: &str = "rpc.method";
    /// The answer's numeric gRPC status code.
    pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
    /// `GET` or `POST`.
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// The upstream path.
    pub const URL_PATH: &str = "url.path";
    /// The upstream URL, never with its query.
    pub const URL_FULL: &str = "url.full";
    /// The upstream host.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The upstream port.
    pub const SERVER_PORT: &str = "server.port";
    /// The upstream's HTTP status.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// The failure's class: an HTTP status, or the upstream metric's outcome.
    pub const ERROR_TYPE: &str = "error.type";
    /// Which attempt of the call, 1 for the first.
    pub const KTP_ATTEMPT: &str = "ktp.attempt";
    /// The call's job.
    pub const KTP_REFERENCE_ID: &str = "ktp.reference_id";
    /// The caller's name (its token's line), never the token.
    pub const KTP_CALLER: &str = "ktp.caller";
    /// The error-table reason of a refusal.
    pub const KTP_REASON: &str = "ktp.reason";
    /// The event of a call refused before any upstream attempt.
    pub const KTP_REFUSED: &str = "ktp.refused";
}

/// A span other spans hang under: a call's SERVER span, or its `wait`.
/// One pointer, cheap to clone; every clone is the same span, ended once.
#[derive(Clone)]
pub struct SpanHandle(Arc<Handle>);

struct Handle {
    cx: Context,
    /// The span's identity, kept apart: reading it from `cx` locks the span.
    id: SpanContext,
    tracer: SdkTracer,
    call: Arc<CallSpans>,
}

/// What the spans of one call share.
#[derive(Debug, Default)]
struct CallSpans {
    /// Upstream attempts started for the call (its polls included).
    attempts: AtomicU32,
}

impl fmt::Debug for SpanHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanHandle")
            .field("context", self.span_context())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SpanHandle {
    fn eq(&self, other: &Self) -> bool {
        self.span_context() == other.span_context()
    }
}

impl Eq for SpanHandle {}

impl SpanHandle {
    /// A call's SERVER span, under the caller's context if it sent one
    /// (its sampling decision followed), else a root.
    pub fn server(
        tracer: &SdkTracer,
        name: &str,
        attributes: Vec<KeyValue>,
        caller: Option<&TraceContext>,
    ) -> Self {
        let parent = caller
            .and_then(remote_parent)
            .map_or_else(Context::new, |sc| {
                Context::new().with_remote_span_context(sc)
            });
        let span = SpanBuilder::from_name(name.to_owned())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        Self(Arc::new(Handle {
            id: span.span_context().clone(),
            cx: Context::new().with_span(span),
            tracer: tracer.clone(),
            call: Arc::default(),
        }))
    }

    /// An INTERNAL child of this span (a call's `wait`), sharing its call.
    pub fn internal(&self, name: &'static str) -> Self {
        let span = self.start(name, SpanKind::Internal, Vec::new());
        Self(Arc::new(Handle {
            id: span.span_context().clone(),
            cx: Context::new().with_span(span),
            tracer: self.0.tracer.clone(),
            call: Arc::clone(&self.0.call),
        }))
    }

    /// A CLIENT child for one upstream attempt, counted for the call.
    /// Boxed: it rides in the attempt's future, which is smaller without it.
    pub fn attempt(&self, name: &'static str, attributes: Vec<KeyValue>) -> Box<Span> {
        self.0.call.attempts.fetch_add(1, Ordering::Relaxed);
        Box::new(self.start(name, SpanKind::Client, attributes))
    }

    fn start(&self, name: &'static str, kind: SpanKind, attributes: Vec<KeyValue>) -> Span {
        // Attributes only for a sampled span: an unsampled one drops them.
        let builder = SpanBuilder::from_name(name).with_kind(kind);
        let span = self.0.tracer.build_with_context(builder, &self.0.cx);
        let mut span = span;
        if span.is_recording() {
            span.set_attributes(attributes);
        }
        span
    }

    /// Upstream attempts the call has started so far.
    pub fn attempts(&self) -> u32 {
        self.0.call.attempts.load(Ordering::Relaxed)
    }

    /// This span's identity (what its children and the logs name).
    pub fn span_context(&self) -> &SpanContext {
        &self.0.id
    }

    /// Whether the span is sampled (recorded and exported).
    pub fn is_sampled(&self) -> bool {
        self.span_context().is_sampled()
    }

    /// Sets attributes, if the span is recorded.
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        let span = self.0.cx.span();
        if span.is_recording() {
            span.set_attributes(attributes);
        }
    }

    /// Adds an event, if the span is recorded.
    pub fn add_event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        let span = self.0.cx.span();
        if span.is_recording() {
            span.add_event(name, attributes);
        }
    }

    /// Links the span to `other` (the attempt a coalesced call shared).
    pub fn add_link(&self, other: SpanContext) {
        let span = self.0.cx.span();
        if span.is_recording() {
            span.add_link(other, Vec::new());
        }
    }

    /// Marks the span failed (the semantic conventions' server errors).
    pub fn set_error(&self) {
        self.0.cx.span().set_status(Status::error(""));
    }

    /// Ends the span; later calls do nothing.
    pub fn end(&self) {
        self.0.cx.span().end();
    }
}

/// `traceparent` naming `span`: what the upstream is sent with export on.
pub fn traceparent(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

/// The caller's context as the parent of our SERVER span.
fn remote_parent(caller: &TraceContext) -> Option<SpanContext> {
    let mut fields = caller.traceparent.split('-').skip(1);
    let trace_id = TraceId::from_hex(fields.next()?).ok()?;
    let span_id = SpanId::from_hex(fields.next()?).ok()?;
    let flags = u8::from_str_radix(fields.next()?, 16).ok()?;
    let state = caller
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        state,
    ))
}

#[cfg(test)]
mod tests;
