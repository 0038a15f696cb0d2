//! The binary's OpenTelemetry spans, as a collector receives them: a fake
//! OTLP collector (`ktp_testkit::otlp`), the fake upstream and the real
//! binary, export at `trace.sample_ratio = 1` unless a test says else.
//!
//! - [`spans`]: the tree, names and attributes of a plain call, a retried
//!   one, a coalesced pair, a wait with its polls and errors; the upstream's
//!   `traceparent`; the log line's ids; the scan for personal data and
//!   secrets across every span.
//! - [`export`]: sampling, the collector down or stalled (calls unaffected,
//!   drops counted), the flush at SIGTERM, no other `OTEL_*` variable read.

mod export;
mod spans;

use std::time::Duration;

use ktp_gateway::proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient};
use ktp_testkit::{
    fake_upstream::FakeUpstream,
    otlp::{Collected, FakeCollector},
};
use serde_json::Value;
use tonic::transport::Channel;

use crate::harness::{Gateway, SERVING_MESSAGE, START_TIMEOUT, env};

/// Credentials the gateway is given: never on a span.
const APP_ID: &str = "traces-app-id-4471aa";
const API_KEY: &str = "traces-api-key-99e0c1";

/// A caller's sampled trace.
const CALLER_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN_ID: &str = "b7ad6b7169203331";

/// The env of a traced gateway: the fake upstream, the collector, every
/// span sampled, and the resource's two variables.
fn vars<'a>(
    upstream: &'a str,
    collector: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        (env::BASE_URL, upstream),
        (env::APP_ID, APP_ID),
        (env::API_KEY, API_KEY),
        ("KTP_GATEWAY__TRACE__OTLP_ENDPOINT", collector),
        ("KTP_GATEWAY__TRACE__SAMPLE_RATIO", "1"),
        ("OTEL_SERVICE_NAME", "ktp-gateway-under-test"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "k8s.pod.name=ktp-gateway-7d9f-abcde,k8s.namespace.name=identity",
        ),
        (env::SHUTDOWN_GRACE, "5s"),
        (env::DRAIN_DELAY, "0s"),
    ];
    vars.extend_from_slice(extra);
    vars
}

/// A gateway exporting to `collector`, on `upstream`.
async fn start(
    upstream: &FakeUpstream,
    collector: &FakeCollector,
    extra: &[(&str, &str)],
) -> Gateway {
    let (base, endpoint) = (upstream.base_url(), collector.endpoint());
    let vars = vars(&base, &endpoint, extra);
    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
    tokio::task::block_in_place(|| Gateway::start(&[], &vars))
}

/// A `GetKtpResult` request, with a `traceparent` when `sampled` is `Some`.
fn request(
    reference_id: &str,
    wait: bool,
    sampled: Option<bool>,
) -> tonic::Request<GetKtpResultRequest> {
    let mut request = tonic::Request::new(GetKtpResultRequest {
        read_mask: None,
        reference_id: reference_id.to_owned(),
        wait,
    });
    if let Some(sampled) = sampled {
        let flags = if sampled { "01" } else { "00" };
        let value = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-{flags}");
        request
            .metadata_mut()
            .insert("traceparent", value.parse().expect("ASCII"));
    }
    request.metadata_mut().insert(
        "x-request-id",
        format!("req-{reference_id}").parse().expect("ASCII"),
    );
    request
}

async fn client(gateway: &Gateway) -> KtpServiceClient<Channel> {
    gateway.ktp().await
}

/// The "call finished" line of the call for `reference_id`.
fn call_log(gateway: &mut Gateway, reference_id: &str) -> Value {
    #[expect(
        clippy::disallowed_methods,
        reason = "the harness is synchronous; the test runtime is multi-threaded"
    )]
    tokio::task::block_in_place(|| gateway.call_log(&format!("req-{reference_id}")))
}

/// The metrics endpoint's page.
async fn scrape(gateway: &mut Gateway) -> String {
    #[expect(
        clippy::disallowed_methods,
        reason = "the harness is synchronous; the test runtime is multi-threaded"
    )]
    let serving = tokio::task::block_in_place(|| {
        gateway.process.wait_for_log("serving", START_TIMEOUT, |v| {
            v["message"] == SERVING_MESSAGE
        })
    });
    let addr = serving["metrics_addr"]
        .as_str()
        .expect("metrics address")
        .to_owned();
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body")
}

/// The value of the series that starts with `series ` on the page.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

/// The spans of the trace `trace_id`, waiting until `count` have arrived.
async fn trace(collector: &FakeCollector, trace_id: &str, count: usize) -> Vec<Collected> {
    let of_trace = |spans: &[Collected]| -> Vec<Collected> {
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    };
    let spans = collector
        .spans_when(Duration::from_secs(15), |spans| {
            of_trace(spans).len() >= count
        })
        .await;
    of_trace(&spans)
}

/// The one span named `name` among `spans`.
fn one<'a>(spans: &'a [Collected], name: &str) -> &'a Collected {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} span expected in {spans:#?}");
    found[0]
}
