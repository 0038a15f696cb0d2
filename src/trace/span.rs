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
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, SdkTracer, Span};

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
    /// The recorded span as the parent of its children; `None` when it is
    /// not sampled: then its children are not either, and need no SDK span
    /// at all, only an id to name to the upstream.
    cx: Option<Context>,
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
    /// (its sampling decision followed), else a root, sampled at `ratio`.
    /// The decision comes first: an unsampled call never reaches the SDK
    /// (only ids are made), and `attributes` are made only for a sampled one.
    pub fn server(
        tracer: &SdkTracer,
        name: &'static str,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        caller: Option<&TraceContext>,
        ratio: f64,
    ) -> Self {
        let parent = caller.and_then(remote_parent);
        let sampled = match &parent {
            Some(parent) => parent.is_sampled(),
            // A root's trace id is random, so a random draw decides alike.
            None => ratio >= 1.0 || (ratio > 0.0 && fastrand::f64() < ratio),
        };
        if !sampled {
            let ids = RandomIdGenerator::default();
            let id = SpanContext::new(
                parent
                    .as_ref()
                    .map_or_else(|| ids.new_trace_id(), SpanContext::trace_id),
                ids.new_span_id(),
                TraceFlags::default(),
                false,
                parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
            );
            return Self(Arc::new(Handle {
                cx: None,
                id,
                tracer: tracer.clone(),
                call: Arc::default(),
            }));
        }
        let parent = parent.map_or_else(Context::new, |sc| {
            Context::new().with_remote_span_context(sc)
        });
        let span = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &parent);
        Self::of(span, tracer.clone(), Arc::default(), attributes)
    }

    fn of(
        mut span: Span,
        tracer: SdkTracer,
        call: Arc<CallSpans>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let id = span.span_context().clone();
        let cx = span.is_recording().then(|| {
            span.set_attributes(attributes());
            Context::new().with_span(span)
        });
        Self(Arc::new(Handle {
            cx,
            id,
            tracer,
            call,
        }))
    }

    /// An INTERNAL child of this span (a call's `wait`), sharing its call.
    pub fn internal(&self, name: &'static str) -> Self {
        let call = Arc::clone(&self.0.call);
        let tracer = self.0.tracer.clone();
        match &self.0.cx {
            Some(cx) => {
                let builder = SpanBuilder::from_name(name).with_kind(SpanKind::Internal);
                let span = tracer.build_with_context(builder, cx);
                Self::of(span, tracer, call, Vec::new)
            }
            None => Self(Arc::new(Handle {
                cx: None,
                id: self.unsampled_child(),
                tracer,
                call,
            })),
        }
    }

    /// A CLIENT child for one upstream attempt, counted for the call: its
    /// span (boxed, it rides in the attempt's future) if sampled, and its
    /// identity. `attributes` are made only for a sampled span.
    pub fn attempt(
        &self,
        name: &'static str,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> (Option<Box<Span>>, SpanContext) {
        self.0.call.attempts.fetch_add(1, Ordering::Relaxed);
        let Some(cx) = &self.0.cx else {
            return (None, self.unsampled_child());
        };
        // A sampled parent's child is sampled (parent-based): its
        // attributes go in with it, not one by one after.
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes());
        let span = self.0.tracer.build_with_context(builder, cx);
        let id = span.span_context().clone();
        (Some(Box::new(span)), id)
    }

    /// A child of an unsampled span: not sampled either (parent-based), so
    /// only its id, made without the SDK.
    fn unsampled_child(&self) -> SpanContext {
        SpanContext::new(
            self.0.id.trace_id(),
            RandomIdGenerator::default().new_span_id(),
            TraceFlags::default(),
            false,
            self.0.id.trace_state().clone(),
        )
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
        self.0.cx.is_some()
    }

    /// Sets the attributes `attributes` makes, if the span is recorded.
    pub fn set_attributes(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = &self.0.cx {
            cx.span().set_attributes(attributes());
        }
    }

    /// Adds an event, if the span is recorded.
    pub fn add_event(&self, name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = &self.0.cx {
            cx.span().add_event(name, attributes());
        }
    }

    /// Links the span to `other` (the attempt a coalesced call shared).
    pub fn add_link(&self, other: SpanContext) {
        if let Some(cx) = &self.0.cx {
            cx.span().add_link(other, Vec::new());
        }
    }

    /// Marks the span failed (the semantic conventions' server errors).
    pub fn set_error(&self) {
        if let Some(cx) = &self.0.cx {
            cx.span().set_status(Status::error(""));
        }
    }

    /// Ends the span; later calls do nothing.
    pub fn end(&self) {
        if let Some(cx) = &self.0.cx {
            cx.span().end();
        }
    }
}

/// `traceparent` naming `span`: what the upstream is sent with export on.
/// Written digit by digit into a buffer: `format!` (and pushing chars one
/// by one) cost a good part of an unsampled call's budget for tracing.
pub fn traceparent(span: &SpanContext) -> String {
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex(&mut buf[3..35], &span.trace_id().to_bytes());
    hex(&mut buf[36..52], &span.span_id().to_bytes());
    hex(&mut buf[53..55], &[span.trace_flags().to_u8()]);
    // Only ASCII digits were written.
    std::str::from_utf8(&buf).map_or_else(|_| String::new(), str::to_owned)
}

fn hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
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
