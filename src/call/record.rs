//! The one log line and the metrics of a call.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tonic::{
    Code, Status,
    body::Body,
    codegen::http::{self, HeaderValue},
};
use tracing::Level;

use super::{Call, Outcome};
use crate::{
    call::metadata::REQUEST_ID_HEADER,
    metrics::{CallLabels, Metrics, Protocol},
    proto::CheckResult,
    status::{code_name, refusal},
    trace::{
        TraceContext,
        span::{SpanHandle, key},
    },
};
use opentelemetry::KeyValue;

/// Writes the call's log line and metrics exactly once: when the answer is
/// ready, or, if the caller goes away first (cancels, disconnects, or
/// tonic's own deadline fires), when the call is dropped.
pub(super) struct Recorder {
    pub(super) metrics: Metrics,
    pub(super) call: Arc<Call>,
    /// What the caller spoke: the call's metrics are labelled with it.
    pub(super) protocol: Protocol,
    pub(super) answered: bool,
}

impl Recorder {
    pub(super) fn finish(mut self, response: http::Response<Body>) -> http::Response<Body> {
        self.answered = true;
        self.call.release_all();
        let mut response = match self.call.outcome.get() {
            Some(_) => response,
            None => match Status::from_header_map(response.headers()) {
                // tonic answered without running our code: it refused the
                // request message itself. Its codes (OUT_OF_RANGE, INTERNAL)
                // would blame the server; give it the gateway's row instead.
                Some(refused) if refused.code() != Code::Ok => {
                    let err = self
                        .call
                        .refused_body()
                        .unwrap_or_else(|| refusal(&refused));
                    self.call.fail(&err).into_http()
                }
                _ => {
                    let _ = self.call.outcome.set(Outcome::Ok);
                    response
                }
            },
        };
        if !response.headers().contains_key(REQUEST_ID_HEADER)
            && let Ok(v) = HeaderValue::try_from(&*self.call.request_id)
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
        let caller = call.caller();
        let labels = CallLabels {
            caller: caller.label(),
            method: call.method,
            code: code_name(code),
            protocol: self.protocol,
        };
        self.metrics
            .record_call(labels, elapsed, call.waits.load(Ordering::Relaxed));
        if let Some(checks) = call.checks.get() {
            for (check, result) in [
                ("nik_format", checks.nik_format()),
                ("nik_birth_date", checks.nik_birth_date()),
                ("nik_gender", checks.nik_gender()),
                ("nik_province", checks.nik_province()),
            ] {
                self.metrics.record_check(check, check_result(result));
            }
        }
        let reference_id = call.reference_id.get().map_or("", String::as_str);
        let trace = call.trace.as_deref();
        if let Some(span) = trace.and_then(|t| t.span.as_ref()) {
            end_span(span, code, reference_id, caller.name.as_deref(), reason);
        }
        let duration_ms = millis(elapsed);
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(
                    $lvl,
                    method = call.method,
                    protocol = self.protocol.as_str(),
                    grpc_code = code_name(code),
                    duration_ms,
                    request_id = &*call.request_id,
                    reference_id,
                    trace_id = trace.map(TraceContext::trace_id),
                    span_id = trace.map(TraceContext::span_id).filter(|id| !id.is_empty()),
                    caller = caller.name.as_deref().unwrap_or(""),
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
            self.call.release_all();
            self.record();
        }
    }
}

/// Ends the call's SERVER span with what its log line says (no KTP field).
/// A call refused before any upstream attempt (shed, breaker open, no
/// connection slot) says so in an event.
fn end_span(span: &SpanHandle, code: Code, reference_id: &str, caller: Option<&str>, reason: &str) {
    if !span.is_sampled() {
        return;
    }
    span.set_attributes(|| {
        let mut attributes = vec![KeyValue::new(key::RPC_GRPC_STATUS_CODE, code as i64)];
        if !reference_id.is_empty() {
            attributes.push(KeyValue::new(
                key::KTP_REFERENCE_ID,
                reference_id.to_owned(),
            ));
        }
        if let Some(caller) = caller {
            attributes.push(KeyValue::new(key::KTP_CALLER, caller.to_owned()));
        }
        attributes
    });
    if REFUSALS.contains(&reason) && span.attempts() == 0 {
        span.add_event(key::KTP_REFUSED, || {
            vec![KeyValue::new(key::KTP_REASON, reason.to_owned())]
        });
    }
    // The semantic conventions' server errors; the others are the caller's.
    if matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.set_error();
    }
    span.end();
}

/// The reasons of a call the gateway refused to pass on (error table).
const REFUSALS: &[&str] = &["OVERLOADED", "UPSTREAM_CIRCUIT_OPEN"];

/// `elapsed` in milliseconds to the microsecond: `0.468`, not the raw float
/// `0.46848700000000004` (a whole number of microseconds over 1,000 is the
/// double nearest that decimal, which is what gets printed).
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

/// A check result as a metric label.
fn check_result(result: CheckResult) -> &'static str {
    match result {
        CheckResult::Pass => "pass",
        CheckResult::Fail => "fail",
        CheckResult::NotChecked => "not_checked",
        CheckResult::Unspecified => "unspecified",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::millis;

    #[test]
    fn durations_are_logged_to_the_microsecond() {
        for (nanos, text) in [
            (468_487, "0.468"),
            (104_801_261, "104.801"),
            (1_000_000, "1"),
            (999, "0"),
            (12_345_678_901, "12345.678"),
        ] {
            assert_eq!(millis(Duration::from_nanos(nanos)).to_string(), text);
        }
    }
}
