//! Prometheus metrics, served on their own port (`metrics.addr`, `/metrics`)
//! in the classic text format that Prometheus and `promtool` read.
//!
//! Labels have bounded values only: gRPC method and code, a caller name from
//! the tokens file, a check and its result, an upstream outcome name and
//! HTTP status, a breaker state. Never a reference id, request id or
//! any personal value.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric of the process, in its own registry (so tests can run many
/// gateways in one process). One pointer: every call's recorder holds a
/// clone for the call's life (a waiting call's for seconds), which as the
/// metrics themselves was 19 reference counts and 152 bytes.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Registered>);

impl std::ops::Deref for Metrics {
    type Target = Registered;

    fn deref(&self) -> &Registered {
        &self.0
    }
}

/// The metrics themselves, shared by every [`Metrics`].
#[derive(Debug)]
pub struct Registered {
    registry: Registry,
    grpc_requests: IntCounterVec,
    grpc_duration: HistogramVec,
    grpc_wait_duration: HistogramVec,
    grpc_in_flight: IntGauge,
    grpc_waiting: IntGauge,
    wait_polls: IntCounterVec,
    job_processing: Histogram,
    grpc_connections_open: IntGauge,
    grpc_connections_closed: IntCounterVec,
    caller_requests: IntCounterVec,
    checks: IntCounterVec,
    upstream_requests: IntCounterVec,
    upstream_duration: Histogram,
    upstream_retries: IntCounter,
    coalesced: IntCounter,
    circuit_state: IntGaugeVec,
    log_lines_dropped: IntCounter,
    trace_spans_dropped: IntCounterVec,
    /// Held while the log counter catches up with the process's total, so
    /// two scrapes at once cannot both add the same drops.
    log_lines_catch_up: Arc<Mutex<()>>,
}

/// The labels of one answered call.
#[derive(Debug, Clone, Copy)]
pub struct CallLabels<'a> {
    /// The tokens file's `caller=` name, `unknown` when none.
    pub caller: &'a str,
    /// The full method name (`/ktp.v1.KtpService/GetKtpResult`).
    pub method: &'a str,
    /// The canonical upper-case gRPC code name (`NOT_FOUND`).
    pub code: &'a str,
    /// The protocol the call came in by.
    pub protocol: Protocol,
}

/// The metrics could not be encoded (a collector produced a family the text
/// format cannot hold): the scrape must fail loudly, not look empty.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the metrics: {0}")]
pub struct EncodeError(#[from] prometheus::Error);

mod buckets;
mod labels;

use buckets::{JOB_BUCKETS, LATENCY_BUCKETS, WAIT_BUCKETS};
pub use labels::{AttemptOutcome, CircuitState, ConnectionEnd, Protocol};

impl Metrics {
    /// Registers every metric. Fails only on a name clash, i.e. a bug here.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let grpc_requests = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_grpc_requests_total",
                "KtpService calls answered, by method, status code and protocol (grpc, grpc_web, connect).",
            ),
            &["method", "code", "protocol"],
        )?;
        let grpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "ktp_gateway_grpc_request_duration_seconds",
                "Time to answer a KtpService call, by method and protocol.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "protocol"],
        )?;
        let grpc_wait_duration = HistogramVec::new(
            HistogramOpts::new(
                "ktp_gateway_grpc_wait_duration_seconds",
                "Time to answer a gRPC call that waits for its job (GetKtpResult with wait, ExtractKtp).",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["method"],
        )?;
        let grpc_in_flight = IntGauge::new(
            "ktp_gateway_grpc_requests_in_flight",
            "KtpService calls being answered now and not waiting for their job (at most server.max_in_flight).",
        )?;
        let grpc_waiting = IntGauge::new(
            "ktp_gateway_grpc_requests_waiting",
            "KtpService calls waiting for their job now (at most wait.max_waiting).",
        )?;
        let wait_polls = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_wait_polls_total",
                "Upstream result calls made by waits (one per shared poll), by what they found: not_ready, finished, error.",
            ),
            &["outcome"],
        )?;
        let job_processing = Histogram::with_opts(
            HistogramOpts::new(
                "ktp_gateway_job_processing_seconds",
                "How long the vendor took to finish the jobs this process submitted: the middle of the interval between the last poll that found a job unfinished and the first that found it finished, from the submit's answer.",
            )
            .buckets(JOB_BUCKETS.to_vec()),
        )?;
        let grpc_connections_open = IntGauge::new(
            "ktp_gateway_grpc_connections_open",
            "Client connections of the gRPC port open now (at most server.max_connections).",
        )?;
        let grpc_connections_closed = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_grpc_connections_closed_total",
                "Client connections of the gRPC port closed, by reason: client, handshake (failed or timed out), age (server.max_connection_age), shutdown, idle (HTTP/1.1 keep-alive).",
            ),
            &["reason"],
        )?;
        for end in ConnectionEnd::ALL {
            grpc_connections_closed.with_label_values(&[end.as_str()]);
        }
        let caller_requests = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_caller_requests_total",
                "gRPC calls answered, by caller (the tokens file's `caller=` names, else \"unknown\"), method and status code.",
            ),
            &["caller", "method", "code"],
        )?;
        let checks = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_checks_total",
                "Consistency checks of answered cards, by check and result.",
            ),
            &["check", "result"],
        )?;
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_upstream_requests_total",
                "Upstream attempts, by outcome and HTTP status (\"\" when there was no HTTP answer).",
            ),
            &["outcome", "http_status"],
        )?;
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "ktp_gateway_upstream_request_duration_seconds",
                "Time of one upstream attempt.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let upstream_retries = IntCounter::new(
            "ktp_gateway_upstream_retries_total",
            "Upstream attempts that were retries.",
        )?;
        let coalesced = IntCounter::new(
            "ktp_gateway_coalesced_requests_total",
            "Calls that shared an upstream request already in flight for the same reference id.",
        )?;
        let circuit_state = IntGaugeVec::new(
            Opts::new(
                "ktp_gateway_upstream_circuit_state",
                "Upstream circuit breaker state: 1 for the current state, 0 for the others.",
            ),
            &["state"],
        )?;
        let log_lines_dropped = IntCounter::new(
            "ktp_gateway_log_lines_dropped_total",
            "Log lines dropped because stdout was not read fast enough (the log queue was full).",
        )?;
        let trace_spans_dropped = IntCounterVec::new(
            Opts::new(
                "ktp_gateway_trace_spans_dropped_total",
                "Spans not exported: the export queue was full, or the collector did not take their batch.",
            ),
            &["reason"],
        )?;
        for reason in ["queue_full", "export_failed"] {
            trace_spans_dropped.with_label_values(&[reason]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new(
                "ktp_gateway_build_info",
                "Build of the running gateway; always 1.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry.register(Box::new(grpc_requests.clone()))?;
        registry.register(Box::new(grpc_duration.clone()))?;
        registry.register(Box::new(grpc_wait_duration.clone()))?;
        registry.register(Box::new(grpc_in_flight.clone()))?;
        registry.register(Box::new(grpc_waiting.clone()))?;
        registry.register(Box::new(wait_polls.clone()))?;
        registry.register(Box::new(job_processing.clone()))?;
        registry.register(Box::new(grpc_connections_open.clone()))?;
        registry.register(Box::new(grpc_connections_closed.clone()))?;
        registry.register(Box::new(caller_requests.clone()))?;
        registry.register(Box::new(checks.clone()))?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(coalesced.clone()))?;
        registry.register(Box::new(circuit_state.clone()))?;
        registry.register(Box::new(log_lines_dropped.clone()))?;
        registry.register(Box::new(trace_spans_dropped.clone()))?;
        registry.register(Box::new(build_info))?;
        let metrics = Self(Arc::new(Registered {
            registry,
            grpc_requests,
            grpc_duration,
            grpc_wait_duration,
            grpc_in_flight,
            grpc_waiting,
            wait_polls,
            job_processing,
            grpc_connections_open,
            grpc_connections_closed,
            caller_requests,
            checks,
            upstream_requests,
            upstream_duration,
            upstream_retries,
            coalesced,
            circuit_state,
            log_lines_dropped,
            trace_spans_dropped,
            log_lines_catch_up: Arc::default(),
        }));
        metrics.set_circuit_state(CircuitState::Closed);
        Ok(metrics)
    }

    /// One answered call; `code` is the canonical upper-case gRPC name
    /// whatever the protocol. A call that waited for its job is timed
    /// apart: its seconds are the job's, and would drown the latency of
    /// every other call. The caller's count is a metric of its own, so the
    /// per-method series stay as they were for dashboards that sum them.
    pub fn record_call(&self, call: CallLabels<'_>, duration: Duration, waited: bool) {
        let CallLabels {
            caller,
            method,
            code,
            protocol,
        } = call;
        let protocol = protocol.as_str();
        self.grpc_requests
            .with_label_values(&[method, code, protocol])
            .inc();
        self.caller_requests
            .with_label_values(&[caller, method, code])
            .inc();
        if waited {
            self.grpc_wait_duration.with_label_values(&[method])
        } else {
            self.grpc_duration.with_label_values(&[method, protocol])
        }
        .observe(duration.as_secs_f64());
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.grpc_connections_open.inc();
    }

    /// A client connection closed, for `end`.
    pub fn connection_closed(&self, end: ConnectionEnd) {
        self.grpc_connections_open.dec();
        self.grpc_connections_closed
            .with_label_values(&[end.as_str()])
            .inc();
    }

    /// One consistency check's result (`pass`, `fail`, `not_checked`).
    pub fn record_check(&self, check: &str, result: &str) {
        self.checks.with_label_values(&[check, result]).inc();
    }

    /// One upstream attempt.
    pub fn record_attempt(
        &self,
        outcome: AttemptOutcome,
        http_status: Option<u16>,
        duration: Duration,
    ) {
        let status = http_status.map(|s| s.to_string()).unwrap_or_default();
        self.upstream_requests
            .with_label_values(&[outcome.as_str(), &status])
            .inc();
        self.upstream_duration.observe(duration.as_secs_f64());
    }

    /// One more upstream attempt than the call's first: the retry budget's
    /// effect is visible next to the attempt count.
    pub fn record_retry(&self) {
        self.upstream_retries.inc();
    }

    /// A wait's poll found its job `outcome` (`not_ready`, `finished`, `error`).
    pub fn record_wait_poll(&self, outcome: &str) {
        self.wait_polls.with_label_values(&[outcome]).inc();
    }

    /// A job this process submitted took about `estimate` to finish.
    pub fn record_job_processing(&self, estimate: Duration) {
        self.job_processing.observe(estimate.as_secs_f64());
    }

    /// A call that shared another's upstream request instead of making one.
    pub fn record_coalesced(&self) {
        self.coalesced.inc();
    }

    /// `spans` not exported, for `reason` (`queue_full`, `export_failed`).
    pub fn record_spans_dropped(&self, reason: &'static str, spans: u64) {
        self.trace_spans_dropped
            .with_label_values(&[reason])
            .inc_by(spans);
    }

    /// Values read at scrape time rather than kept up to date on every call.
    /// `log_lines_dropped` is the process's total so far (the log sink is
    /// process-wide, this registry is not).
    pub fn refresh(
        &self,
        (in_flight, waiting): (usize, usize),
        circuit: CircuitState,
        log_lines_dropped: u64,
    ) {
        self.grpc_in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.grpc_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.set_circuit_state(circuit);
        let _one_at_a_time = self
            .log_lines_catch_up
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let counted = self.log_lines_dropped.get();
        if log_lines_dropped > counted {
            self.log_lines_dropped.inc_by(log_lines_dropped - counted);
        }
    }

    fn set_circuit_state(&self, phase: CircuitState) {
        for (state, p) in [
            ("closed", CircuitState::Closed),
            ("open", CircuitState::Open),
            ("half_open", CircuitState::HalfOpen),
        ] {
            self.circuit_state
                .with_label_values(&[state])
                .set(i64::from(phase == p));
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(TextEncoder::new().encode_to_string(&self.registry.gather())?)
    }

    /// [`Self::encode`] for tests that read the page.
    #[cfg(test)]
    pub(crate) fn render(&self) -> String {
        self.encode().unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
pub(crate) mod tests;
