//! `--sandbox` end to end through a tonic client: the canned answers arrive
//! as typed responses and rich errors, request ids correlate metadata,
//! error details and logs, and no personal value is ever logged.

use std::time::Duration;

use ktp_gateway::proto::{BloodType, Gender, MaritalStatus, Nationality, Religion};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use ktp_testkit::card_holders::SANDBOX_PERSONAL_VALUES as PERSONAL_VALUES;

use crate::harness::{
    CALL_FINISHED, Gateway, LOG_TIMEOUT, assert_absent, health_status, ktp_request,
};

const METHOD: &str = "/ktp.v1.KtpService/GetKtpResult";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_warns_and_reports_serving() {
    let mut gateway = Gateway::sandbox(&[]);
    let warning = gateway
        .process
        .wait_for_log("warning about sandbox mode", LOG_TIMEOUT, |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("SANDBOX MODE"))
        });
    assert_eq!(warning["level"], "WARN", "{warning}");

    let mut health = gateway.health().await;
    for service in ["", "ktp.v1.KtpService"] {
        let status = health_status(&mut health, service)
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e:?}"));
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health_status(&mut health, "no.such.Service")
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
    // Every stdout line is a JSON object with a level and a message.
    for line in gateway.process.json_logs() {
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_has_every_field_and_the_typed_values() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let response = client
        .get_ktp_result(ktp_request("REFERENCE_ID_KTP", Some("cli-success-1")))
        .await
        .expect("REFERENCE_ID_KTP succeeds");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("cli-success-1")
    );
    let r = response.into_inner();
    assert_eq!(r.reference_id, "REFERENCE_ID_KTP");
    assert_eq!(r.message, "success extract ktp data");
    assert_eq!(r.full_name, "SITI CONTOH");
    assert_eq!(r.nik, "3273016505900002");
    assert_eq!(r.place_of_birth, "BANDUNG");
    assert_eq!(r.date_of_birth, "25-05-1990");
    assert_eq!(r.gender, "PEREMPUAN");
    assert_eq!(r.address, "JL. CONTOH NO. 1");
    assert_eq!(r.rt_rw, "001/002");
    assert_eq!(r.city, "KOTA BANDUNG");
    assert_eq!(r.state, "PROVINSI JAWA BARAT");
    assert_eq!(r.gender_value(), Gender::Female);
    assert_eq!(r.blood_type_value(), BloodType::O);
    assert_eq!(r.religion_value(), Religion::Islam);
    assert_eq!(r.marital_status_value(), MaritalStatus::Single);
    assert_eq!(r.nationality_value(), Nationality::Indonesian);
    let dob = r.date_of_birth_value.expect("date_of_birth_value");
    assert_eq!((dob.year, dob.month, dob.day), (1990, 5, 25));
    let quality = r.image_quality.expect("image_quality");
    assert!(!quality.blur && !quality.dark && !quality.flashlight && !quality.grayscale);

    let log = gateway.call_log("cli-success-1");
    assert_eq!(log["method"], METHOD, "{log}");
    assert_eq!(log["grpc_code"], "OK", "{log}");
    assert_eq!(log["protocol"], "grpc", "{log}");
    assert_eq!(log["reference_id"], "REFERENCE_ID_KTP", "{log}");
    assert_eq!(log["reason"], "", "{log}");
    assert_eq!(log["level"], "INFO", "{log}");
    assert!(
        log["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{log}"
    );

    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
    assert_no_personal_values(&gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_flags_are_reported() {
    let gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let r = client
        .get_ktp_result(ktp_request("REFERENCE_ID_KTP_BD", None))
        .await
        .expect("REFERENCE_ID_KTP_BD succeeds")
        .into_inner();
    let q = r.image_quality.expect("image_quality");
    assert_eq!(
        (q.blur, q.dark, q.flashlight, q.grayscale),
        (true, true, false, false)
    );
    assert_eq!(r.reference_id, "REFERENCE_ID_KTP_BD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_their_code_reason_and_detail() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let mut call = async |id: &str| {
        client
            .get_ktp_result(ktp_request(id, Some(&format!("cli-{id}"))))
            .await
            .expect_err(id)
    };

    let s = call("REFERENCE_ID_KTP_B_V").await;
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let info = s
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(info.reason, "FAIL_ON_1");
    assert_eq!(info.domain, "api.verihubs.com");
    assert_eq!(info.metadata.get("blur").map(String::as_str), Some("true"));
    assert_eq!(info.metadata.get("dark").map(String::as_str), Some("false"));

    let s = call("REFERENCE_ID_ERROR_NOT_FOUND").await;
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let d = s.get_error_details();
    let info = d.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND");
    assert_eq!(info.domain, "api.verihubs.com");
    assert_eq!(
        d.resource_info().expect("ResourceInfo").resource_name,
        "REFERENCE_ID_ERROR_NOT_FOUND"
    );

    let s = call("REFERENCE_ID_ERROR_RATE_LIMITED").await;
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    let d = s.get_error_details();
    assert_eq!(
        d.error_info().expect("ErrorInfo").reason,
        "UPSTREAM_RATE_LIMITED"
    );
    assert_eq!(
        d.retry_info().expect("RetryInfo").retry_delay,
        Some(Duration::from_secs(2))
    );

    let s = call("REFERENCE_ID_NO_SUCH_CODE").await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let d = s.get_error_details();
    assert_eq!(
        d.error_info().expect("ErrorInfo").reason,
        "INVALID_SANDBOX_CODE"
    );
    assert!(d.bad_request().is_some(), "{s:?}");

    let s = call("").await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let info = s
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_REFERENCE_ID");
    assert_eq!(info.domain, "ktp-gateway");

    for (id, code, reason) in [
        ("REFERENCE_ID_KTP_B_V", "FAILED_PRECONDITION", "FAIL_ON_1"),
        (
            "REFERENCE_ID_ERROR_NOT_FOUND",
            "NOT_FOUND",
            "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
        ),
        (
            "REFERENCE_ID_ERROR_RATE_LIMITED",
            "UNAVAILABLE",
            "UPSTREAM_RATE_LIMITED",
        ),
        (
            "REFERENCE_ID_NO_SUCH_CODE",
            "INVALID_ARGUMENT",
            "INVALID_SANDBOX_CODE",
        ),
    ] {
        let log = gateway.call_log(&format!("cli-{id}"));
        assert_eq!(
            (&log["grpc_code"], &log["reason"], &log["reference_id"]),
            (&code.into(), &reason.into(), &id.into()),
            "{log}"
        );
    }
    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_request_id_is_in_metadata_details_and_log() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let s = client
        .get_ktp_result(ktp_request("REFERENCE_ID_ERROR_NOT_FOUND", None))
        .await
        .expect_err("not found");
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let request_id = s
        .get_error_details()
        .request_info()
        .expect("RequestInfo")
        .request_id
        .clone();
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert_eq!(request_id.matches('-').count(), 4, "a UUID: {request_id}");
    assert_eq!(
        s.metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id.as_str())
    );
    let log = gateway.call_log(&request_id);
    assert_eq!(log["grpc_code"], "NOT_FOUND", "{log}");
    assert_eq!(
        log["reason"], "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
        "{log}"
    );
    assert_eq!(log["reference_id"], "REFERENCE_ID_ERROR_NOT_FOUND", "{log}");
    assert_eq!(log["method"], METHOD, "{log}");

    // A second call without an id gets a different one.
    let s = client
        .get_ktp_result(ktp_request("REFERENCE_ID_ERROR_NOT_FOUND", None))
        .await
        .expect_err("not found");
    let second = s
        .get_error_details()
        .request_info()
        .expect("RequestInfo")
        .request_id
        .clone();
    assert_ne!(second, request_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_request_id_is_replaced() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let too_long = "r".repeat(129);
    let response = client
        .get_ktp_result(ktp_request("REFERENCE_ID_KTP", Some(&too_long)))
        .await
        .expect("success");
    let echoed = response
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id")
        .to_owned();
    assert_eq!(
        echoed.len(),
        36,
        "a generated UUID, not the caller's: {echoed}"
    );
    let log = gateway.call_log(&echoed);
    assert_eq!(log["grpc_code"], "OK", "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_hold_personal_values() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    for id in [
        "REFERENCE_ID_KTP",
        "REFERENCE_ID_KTP_BDG",
        "REFERENCE_ID_KTP_V",
        "REFERENCE_ID_KTP_B_V",
        "REFERENCE_ID_ERROR_NOT_FOUND",
    ] {
        let _ = client
            .get_ktp_result(ktp_request(id, Some(&format!("cli-pii-{id}"))))
            .await;
        gateway.call_log(&format!("cli-pii-{id}"));
    }
    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
    let finished = gateway
        .process
        .json_logs()
        .into_iter()
        .filter(|v| v["message"] == CALL_FINISHED)
        .count();
    assert_eq!(finished, 5, "{}", gateway.process.output());
    assert_no_personal_values(&gateway);
}

fn assert_no_personal_values(gateway: &Gateway) {
    for value in PERSONAL_VALUES {
        assert_absent(gateway.process.stdout(), value, "personal value");
        assert_absent(gateway.process.stderr(), value, "personal value");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_logged_at_error_level() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    let status = client
        .get_ktp_result(ktp_request(
            "REFERENCE_ID_ERROR_UNAUTHORIZED",
            Some("cli-401"),
        ))
        .await
        .expect_err("401 upstream");
    assert_eq!(status.code(), Code::Internal);
    let line = gateway.call_log("cli-401");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["reason"], "UPSTREAM_AUTH_FAILED", "{line}");
    assert_eq!(line["upstream_http_status"], "401", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_caller_abandons_still_gets_its_log_line() {
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    // The sandbox answers this id after 60 s; the caller gives up first.
    let call = tokio::spawn(async move {
        client
            .get_ktp_result(ktp_request("REFERENCE_ID_ERROR_SLOW", Some("cli-gone-1")))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.abort();
    let line = gateway.call_log("cli-gone-1");
    assert_eq!(line["grpc_code"], "CANCELLED", "{line}");
    assert_eq!(line["reference_id"], "REFERENCE_ID_ERROR_SLOW", "{line}");
    assert_eq!(line["method"], METHOD, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_call_carries_its_request_id() {
    let mut gateway = Gateway::sandbox(&[(crate::harness::env::LOG_FILTER, "debug")]);
    let mut client = gateway.ktp().await;
    // A 500 from the sandbox is retried: the retries log lines of their own.
    let _ = client
        .get_ktp_result(ktp_request(
            "REFERENCE_ID_ERROR_SERVER",
            Some("cli-lines-1"),
        ))
        .await;
    gateway.call_log("cli-lines-1");
    let logs = gateway.process.json_logs();
    let retries: Vec<_> = logs
        .iter()
        .filter(|l| l["message"] == "retrying upstream")
        .collect();
    assert_eq!(retries.len(), 2, "two retries logged");
    for line in retries {
        assert_eq!(line["span"]["request_id"], "cli-lines-1", "{line}");
    }
}
