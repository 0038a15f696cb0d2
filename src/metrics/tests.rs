//! The registry's page, and a registry whose page cannot be encoded.

use super::*;

/// These metrics plus a collector whose family has no name, which the
/// text format refuses: a real way for encoding to fail.
pub(crate) fn unencodable() -> Metrics {
    use prometheus::core::{Collector, Desc};
    struct Nameless(Vec<Desc>);
    impl Collector for Nameless {
        fn desc(&self) -> Vec<&Desc> {
            self.0.iter().collect()
        }
        fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
            let mut family = IntCounter::new("nameless", "A family that loses its name.")
                .map(|c| c.collect())
                .unwrap_or_default();
            family.iter_mut().for_each(|f| f.set_name(String::new()));
            family
        }
    }
    let metrics = Metrics::new().unwrap_or_else(|e| panic!("{e}"));
    let desc = IntCounter::new("nameless", "A family that loses its name.")
        .map(|c| c.desc().into_iter().cloned().collect())
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = metrics.registry.register(Box::new(Nameless(desc))) {
        panic!("{e}");
    }
    metrics
}

#[test]
fn renders_every_metric_with_bounded_labels() {
    let m = Metrics::new().unwrap();
    let labels = |caller, method, code, protocol| CallLabels {
        caller,
        method,
        code,
        protocol,
    };
    m.record_call(
        labels(
            "kyc-lite",
            "/ktp.v1.KtpService/GetKtpResult",
            "NOT_FOUND",
            Protocol::GrpcWeb,
        ),
        Duration::from_millis(12),
        false,
    );
    m.record_call(
        labels(
            "unknown",
            "/ktp.v1.KtpService/ExtractKtp",
            "OK",
            Protocol::Grpc,
        ),
        Duration::from_secs(3),
        true,
    );
    m.record_attempt(
        AttemptOutcome::HttpError,
        Some(404),
        Duration::from_millis(10),
    );
    m.record_attempt(
        AttemptOutcome::TransportError,
        None,
        Duration::from_millis(1),
    );
    m.record_retry();
    m.record_coalesced();
    m.record_check("nik_gender", "fail");
    m.refresh((3, 11), CircuitState::Open, 5);
    m.refresh((3, 11), CircuitState::Open, 7);
    let text = m.render();
    for line in [
        r#"ktp_gateway_grpc_requests_total{code="NOT_FOUND",method="/ktp.v1.KtpService/GetKtpResult",protocol="grpc_web"} 1"#,
        r#"ktp_gateway_grpc_requests_total{code="OK",method="/ktp.v1.KtpService/ExtractKtp",protocol="grpc"} 1"#,
        r#"ktp_gateway_grpc_request_duration_seconds_count{method="/ktp.v1.KtpService/GetKtpResult",protocol="grpc_web"} 1"#,
        r#"ktp_gateway_upstream_requests_total{http_status="404",outcome="http_error"} 1"#,
        r#"ktp_gateway_upstream_requests_total{http_status="",outcome="transport_error"} 1"#,
        r#"ktp_gateway_caller_requests_total{caller="kyc-lite",code="NOT_FOUND",method="/ktp.v1.KtpService/GetKtpResult"} 1"#,
        r#"ktp_gateway_checks_total{check="nik_gender",result="fail"} 1"#,
        "ktp_gateway_upstream_retries_total 1",
        "ktp_gateway_coalesced_requests_total 1",
        "ktp_gateway_grpc_requests_in_flight 3",
        "ktp_gateway_grpc_requests_waiting 11",
        "ktp_gateway_log_lines_dropped_total 7",
        r#"ktp_gateway_upstream_circuit_state{state="open"} 1"#,
        r#"ktp_gateway_upstream_circuit_state{state="closed"} 0"#,
        concat!(
            r#"ktp_gateway_build_info{version=""#,
            env!("CARGO_PKG_VERSION"),
            r#""} 1"#
        ),
        "# TYPE ktp_gateway_grpc_request_duration_seconds histogram",
        r#"ktp_gateway_grpc_wait_duration_seconds_count{method="/ktp.v1.KtpService/ExtractKtp"} 1"#,
        "# TYPE ktp_gateway_upstream_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}

#[test]
fn an_unencodable_family_is_an_error_not_an_empty_page() {
    let error = crate::metrics::tests::unencodable()
        .encode()
        .err()
        .map(|e| e.to_string());
    assert!(
        error.as_ref().is_some_and(|e| e.contains("no name")),
        "{error:?}"
    );
}
