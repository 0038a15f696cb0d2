//! What every `GetKtpResult` call leaves behind: exactly one log line and its
//! metrics, whether it succeeded, failed, was refused or was abandoned.
//!
//! The line holds the method, code, duration, request id and reference id
//! (not personal data) but never KTP fields, bodies or credentials.

use std::time::Instant;

use tonic::Code;
use tracing::Level;

use crate::{
    error::GatewayError,
    mapping::{self, CallContext, Row},
    metrics::Metrics,
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
        self.metrics.record_call(GET_KTP_RESULT, o.code, elapsed);
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
