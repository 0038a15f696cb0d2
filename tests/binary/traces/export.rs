//! How spans leave: sampled as configured, never at a call's expense, and
//! flushed at SIGTERM.

use std::time::{Duration, Instant};

use ktp_testkit::{
    card_holders::person,
    fake_upstream::{FakeUpstream, Reply},
    otlp::{FakeCollector, Mode},
};

use super::{
    CALLER_SPAN_ID, CALLER_TRACE_ID, call_log, client, request, sample, scrape, start, trace,
};
use crate::harness::EXIT_TIMEOUT;

const DROPPED: &str = "ktp_gateway_trace_spans_dropped_total";

/// A gateway whose every call succeeds upstream.
async fn answering() -> FakeUpstream {
    let upstream = FakeUpstream::start().await;
    upstream.otherwise(Reply::Json(200, person::success()));
    upstream
}

/// Waits until the page's `series` is above 0, or gives up after 20 s.
async fn dropped_above_zero(gateway: &mut crate::harness::Gateway, reason: &str) -> String {
    let series = format!("{DROPPED}{{reason=\"{reason}\"}}");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let page = scrape(gateway).await;
        if sample(&page, &series) > 0.0 || Instant::now() > until {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_follow_the_ratio_and_callers_their_own_decision() {
    let (upstream, collector) = (answering().await, FakeCollector::start().await);
    let mut gateway = start(
        &upstream,
        &collector,
        &[("KTP_GATEWAY__TRACE__SAMPLE_RATIO", "0")],
    )
    .await;
    let mut ktp = client(&gateway).await;
    for (id, sampled) in [
        ("root-1", None),
        ("unsampled-1", Some(false)),
        ("sampled-1", Some(true)),
    ] {
        assert!(
            ktp.get_ktp_result(request(id, false, sampled))
                .await
                .is_ok()
        );
    }
    // The sampled caller's spans arrive; by then the others would have too.
    let sampled = trace(&collector, CALLER_TRACE_ID, 2).await;
    assert_eq!(sampled.len(), 2, "{sampled:#?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = collector.spans();
    assert_eq!(
        all.len(),
        2,
        "only the sampled caller's call is exported: {all:#?}"
    );
    assert!(all.iter().all(|s| {
        s.attr("ktp.reference_id")
            .is_none_or(|id| id == "sampled-1")
    }));

    // Unsampled calls still log a trace id (a root's is new), never a span id.
    let root = call_log(&mut gateway, "root-1");
    let root_trace = root["trace_id"].as_str().expect("a root's trace id");
    assert!(
        root_trace.len() == 32 && root_trace != CALLER_TRACE_ID,
        "{root}"
    );
    assert!(root.get("span_id").is_none(), "{root}");
    let unsampled = call_log(&mut gateway, "unsampled-1");
    assert_eq!(unsampled["trace_id"], CALLER_TRACE_ID);
    assert!(unsampled.get("span_id").is_none(), "{unsampled}");
    // The upstream hears each decision, with the attempt's span id.
    let sent: Vec<String> = upstream
        .results()
        .iter()
        .filter_map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[0].starts_with(&format!("00-{root_trace}-")) && sent[0].ends_with("-00"));
    assert!(sent[1].starts_with(&format!("00-{CALLER_TRACE_ID}-")) && sent[1].ends_with("-00"));
    assert!(
        !sent[1].contains(CALLER_SPAN_ID),
        "the attempt's id, not the caller's"
    );
    assert!(sent[2].ends_with("-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_costs_spans_not_calls() {
    let upstream = answering().await;
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let (base, endpoint) = (upstream.base_url(), dead);
    let vars = super::vars(&base, &endpoint, &[]);
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous harness, multi-thread runtime"
    )]
    let mut gateway = tokio::task::block_in_place(|| crate::harness::Gateway::start(&[], &vars));
    let mut ktp = client(&gateway).await;
    for i in 0..20 {
        let answer = ktp
            .get_ktp_result(request(&format!("dead-{i}"), false, Some(true)))
            .await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    let page = dropped_above_zero(&mut gateway, "export_failed").await;
    assert!(
        sample(&page, &format!("{DROPPED}{{reason=\"export_failed\"}}")) > 0.0,
        "{page}"
    );
    assert_eq!(
        sample(&page, &format!("{DROPPED}{{reason=\"queue_full\"}}")),
        0.0
    );
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous harness, multi-thread runtime"
    )]
    tokio::task::block_in_place(|| {
        gateway
            .process
            .wait_for_log("saying export failed", EXIT_TIMEOUT, |v| {
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("span export failed"))
            })
    });
    assert!(gateway.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collector_fills_the_queue_and_the_rest_is_dropped_not_waited_for() {
    let (upstream, collector) = (answering().await, FakeCollector::start().await);
    collector.set_mode(Mode::Stall);
    let mut gateway = start(&upstream, &collector, &[]).await;
    let channel = gateway.channel().await;
    // Two spans a call: more than the 2,048 the queue holds, while the
    // first export hangs.
    let mut calls = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let mut ktp =
            ktp_gateway::proto::ktp_service_client::KtpServiceClient::new(channel.clone());
        calls.spawn(async move {
            for i in 0..100 {
                let id = format!("stalled-{worker}-{i}");
                let answer = ktp.get_ktp_result(request(&id, false, Some(true))).await;
                assert!(answer.is_ok(), "{answer:?}");
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.expect("every call answered");
    }
    let page = dropped_above_zero(&mut gateway, "queue_full").await;
    assert!(
        sample(&page, &format!("{DROPPED}{{reason=\"queue_full\"}}")) > 0.0,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_queued_at_sigterm_are_sent_before_exit() {
    let (upstream, collector) = (answering().await, FakeCollector::start().await);
    let mut gateway = start(&upstream, &collector, &[]).await;
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("flushed-1", false, Some(true)))
        .await;
    assert!(answer.is_ok());
    // At once: before the export's half-second batch delay is over.
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous harness, multi-thread runtime"
    )]
    let status = tokio::task::block_in_place(|| gateway.stop());
    assert!(status.success(), "{status:?}");
    let spans = collector.spans();
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.trace_id == CALLER_TRACE_ID)
            .count(),
        2,
        "the call's two spans were sent before the exit: {spans:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_other_otel_variable_changes_the_export() {
    let (upstream, collector) = (answering().await, FakeCollector::start().await);
    let extra = [
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-leaked=1"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-leaked-traces=1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_TRACES_SAMPLER", "always_off"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1"),
        ("OTEL_SDK_DISABLED", "true"),
    ];
    let gateway = start(&upstream, &collector, &extra).await;
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("otel-env-1", false, Some(true)))
        .await;
    assert!(answer.is_ok());
    let spans = trace(&collector, CALLER_TRACE_ID, 2).await;
    assert_eq!(
        spans.len(),
        2,
        "sampled and exported as configured: {spans:#?}"
    );
    assert!(
        spans.iter().all(|s| s.attributes.len() > 1),
        "no attribute limit of 1"
    );
    for export in collector.exports() {
        assert!(
            !export.keys().any(|k| k.starts_with("x-leaked")),
            "no header from the environment: {export:?}"
        );
        assert!(
            !export.contains_key("grpc-encoding"),
            "no compression: {export:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_the_callers_context_goes_upstream_unchanged() {
    let upstream = answering().await;
    let base = upstream.base_url();
    let vars = [
        (crate::harness::env::BASE_URL, base.as_str()),
        (crate::harness::env::APP_ID, "a"),
        (crate::harness::env::API_KEY, "k"),
    ];
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous harness, multi-thread runtime"
    )]
    let mut gateway = tokio::task::block_in_place(|| crate::harness::Gateway::start(&[], &vars));
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("off-1", false, Some(true)))
        .await;
    assert!(answer.is_ok());
    let sent = upstream.results();
    assert_eq!(
        sent[0].header("traceparent"),
        Some(format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01").as_str())
    );
    let line = call_log(&mut gateway, "off-1");
    assert_eq!(line["trace_id"], CALLER_TRACE_ID);
    assert!(line.get("span_id").is_none(), "no span of ours: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_collector_is_verified_against_the_platforms_roots() {
    let upstream = answering().await;
    let ca = ktp_testkit::pki::TestCa::new().expect("a test CA");
    let collector = FakeCollector::start_tls(&ca.leaf(&["localhost"]).expect("a leaf")).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_file = dir.path().join("roots.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    let ca_file = ca_file.to_str().expect("UTF-8 path").to_owned();

    // The test CA is no platform root: export fails, counted.
    let mut untrusted = start(&upstream, &collector, &[]).await;
    let answer = client(&untrusted)
        .await
        .get_ktp_result(request("tls-1", false, Some(true)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    let page = dropped_above_zero(&mut untrusted, "export_failed").await;
    assert!(
        sample(&page, &format!("{DROPPED}{{reason=\"export_failed\"}}")) > 0.0,
        "{page}"
    );
    assert!(collector.spans().is_empty());

    // The platform's roots are what the system says they are (here
    // SSL_CERT_FILE, as on a distroless image /etc/ssl/certs): trusted now.
    let trusted = start(
        &upstream,
        &collector,
        &[("SSL_CERT_FILE", ca_file.as_str())],
    )
    .await;
    let answer = client(&trusted)
        .await
        .get_ktp_result(request("tls-2", false, Some(true)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    let spans = trace(&collector, CALLER_TRACE_ID, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
}
