use std::sync::{Arc, Mutex};

use opentelemetry::{
    Context, KeyValue,
    trace::{Span as _, SpanKind, TraceId, TracerProvider as _},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor},
};

use super::{SpanHandle, key, traceparent};
use crate::trace::TraceContext;

/// Keeps every ended span.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_start(&self, _: &mut Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A tracer as production builds it: the decision is `SpanHandle::server`'s.
fn tracer() -> (SdkTracer, Collect, SdkTracerProvider) {
    let collect = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_span_processor(collect.clone())
        .build();
    (provider.tracer("test"), collect, provider)
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn caller(flags: &str) -> TraceContext {
    TraceContext::parse(
        &format!("00-{CALLER_TRACE}-00f067aa0ba902b7-{flags}"),
        Some("vendor=abc"),
    )
    .unwrap()
}

#[test]
fn a_sampled_caller_is_followed_at_ratio_0_and_keeps_its_trace_id() {
    let (tracer, collect, _provider) = tracer();
    let server = SpanHandle::server(
        &tracer,
        "ktp.v1.KtpService/GetKtpResult",
        Vec::new,
        Some(&caller("01")),
        0.0,
    );
    assert!(server.is_sampled());
    assert_eq!(server.span_context().trace_id().to_string(), CALLER_TRACE);
    let (attempt, id) = server.attempt("GET /x", || vec![KeyValue::new(key::KTP_ATTEMPT, 1)]);
    assert_eq!(attempt.as_ref().map(|a| a.span_context().clone()), Some(id));
    drop(attempt);
    server.end();
    let spans = collect.0.lock().unwrap();
    assert_eq!(spans.len(), 2);
    let (attempt, server_data) = (&spans[0], &spans[1]);
    assert_eq!(server_data.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(server_data.parent_span_is_remote);
    assert_eq!(server_data.span_kind, SpanKind::Server);
    assert_eq!(attempt.parent_span_id, server_data.span_context.span_id());
    assert_eq!(attempt.span_kind, SpanKind::Client);
    assert_eq!(attempt.attributes, [KeyValue::new(key::KTP_ATTEMPT, 1)]);
    assert_eq!(server.attempts(), 1);
}

#[test]
fn an_unsampled_caller_is_followed_at_ratio_1() {
    let (tracer, collect, _provider) = tracer();
    let server = SpanHandle::server(&tracer, "m", Vec::new, Some(&caller("00")), 1.0);
    assert!(!server.is_sampled());
    let (attempt, id) = server.attempt("GET /x", || unreachable!("no attributes unsampled"));
    assert!(attempt.is_none());
    assert_eq!(id.trace_id().to_string(), CALLER_TRACE);
    assert!(!id.is_sampled());
    assert_ne!(id.span_id(), server.span_context().span_id());
    let wait = server.internal("wait");
    assert!(!wait.is_sampled());
    assert_eq!(wait.span_context().trace_id().to_string(), CALLER_TRACE);
    server.end();
    assert!(collect.0.lock().unwrap().is_empty());
    // Still counted: the refusal event depends on it, sampled or not.
    assert_eq!(server.attempts(), 1);
}

#[test]
fn roots_get_a_trace_id_sampled_or_not() {
    for (ratio, sampled) in [(0.0, false), (1.0, true)] {
        let (tracer, collect, _provider) = tracer();
        let server = SpanHandle::server(&tracer, "m", Vec::new, None, ratio);
        assert_ne!(server.span_context().trace_id(), TraceId::INVALID);
        assert_eq!(server.is_sampled(), sampled);
        server.end();
        server.end();
        assert_eq!(
            collect.0.lock().unwrap().len(),
            usize::from(sampled),
            "ended once"
        );
    }
}

#[test]
fn the_context_names_the_span_and_keeps_the_callers_tracestate() {
    let (tracer, _collect, _provider) = tracer();
    let caller = caller("01");
    let server = SpanHandle::server(&tracer, "m", Vec::new, Some(&caller), 0.0);
    let call = TraceContext::with_span(Some(&caller), server.clone());
    let id = server.span_context();
    assert_eq!(
        call.traceparent,
        format!("00-{CALLER_TRACE}-{}-01", id.span_id())
    );
    assert_eq!(call.traceparent, traceparent(id));
    assert_eq!(call.tracestate.as_deref(), Some("vendor=abc"));
    assert_eq!(call.trace_id(), CALLER_TRACE);
    assert_eq!(call.span_id(), id.span_id().to_string());
    let wait = call.under(server.internal("wait"));
    assert_eq!(wait.trace_id(), CALLER_TRACE);
    assert_ne!(wait.traceparent, call.traceparent);
}

#[test]
fn an_unsampled_call_logs_its_trace_id_but_no_span_id() {
    let (tracer, _collect, _provider) = tracer();
    let server = SpanHandle::server(&tracer, "m", Vec::new, None, 0.0);
    let call = TraceContext::with_span(None, server);
    assert_eq!(call.trace_id().len(), 32);
    assert_eq!(call.span_id(), "");
    assert!(call.traceparent.ends_with("-00"));
}

#[test]
fn roots_are_sampled_at_the_ratio() {
    let (tracer, collect, _provider) = tracer();
    let sampled = (0..4000)
        .filter(|_| {
            let server = SpanHandle::server(&tracer, "m", Vec::new, None, 0.25);
            server.end();
            server.is_sampled()
        })
        .count();
    // 1,000 expected; the bounds are 8 standard deviations (27) wide.
    assert!((780..=1220).contains(&sampled), "{sampled} of 4000");
    assert_eq!(collect.0.lock().unwrap().len(), sampled);
}
