//! A call's W3C trace context (`traceparent`, `tracestate`), validated so
//! that only well-formed values reach logs and the upstream request, and,
//! when spans are exported, the gateway's span it continues ([`span`]).
//! Plain strings in, so the upstream client needs no gRPC types to pass it on.

pub mod span;

use span::SpanHandle;

/// A well-formed trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `version-traceid-parentid-flags`, as the caller sent it (trimmed), or
    /// naming the call's own span when it has one.
    pub traceparent: String,
    /// Passed on only when it is printable ASCII of a sane length.
    pub tracestate: Option<String>,
    /// The gateway's span the call's upstream work belongs to (its SERVER
    /// span, or its `wait`), when spans are exported: each attempt is its
    /// child and the upstream is sent the attempt's id.
    pub span: Option<SpanHandle>,
}

/// Longest `tracestate` passed on (the W3C limit is 512 bytes).
const MAX_TRACESTATE_LEN: usize = 512;

impl TraceContext {
    /// The context, if `traceparent` is well formed:
    /// `version-traceid-parentid-flags` in lower-case hex, version not `ff`,
    /// ids not all zero (W3C Trace Context). A malformed `tracestate` is
    /// dropped alone.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim();
        if !is_valid_traceparent(traceparent) {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_TRACESTATE_LEN
                    && v.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_owned);
        Some(Self {
            traceparent: traceparent.to_owned(),
            tracestate,
            span: None,
        })
    }

    /// The context of a call whose SERVER span is `span`: the caller's
    /// `tracestate` kept, the trace id the span's (the caller's, or a new
    /// root's).
    pub fn with_span(caller: Option<&Self>, span: SpanHandle) -> Self {
        Self {
            traceparent: span::traceparent(span.span_context()),
            tracestate: caller.and_then(|c| c.tracestate.clone()),
            span: Some(span),
        }
    }

    /// The same context with its upstream work under `span` (a `wait`).
    pub fn under(&self, span: SpanHandle) -> Self {
        Self {
            traceparent: span::traceparent(span.span_context()),
            tracestate: self.tracestate.clone(),
            span: Some(span),
        }
    }

    /// The 32-hex-digit trace id, for logs.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or("")
    }

    /// The 16-hex-digit id of the call's own span, for logs: only when the
    /// span is sampled (an unsampled one is in no backend to join).
    pub fn span_id(&self) -> &str {
        match &self.span {
            Some(span) if span.is_sampled() => self.traceparent.get(36..52).unwrap_or(""),
            _ => "",
        }
    }
}

fn is_valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    match parts.as_slice() {
        [version, trace_id, parent_id, flags, ..] => {
            hex(version, 2)
                && *version != "ff"
                // Version 00 has exactly four fields; later versions may add more.
                && (parts.len() == 4 || *version != "00")
                && hex(trace_id, 32)
                && nonzero(trace_id)
                && hex(parent_id, 16)
                && nonzero(parent_id)
                && hex(flags, 2)
        }
        _ => false,
    }
}
