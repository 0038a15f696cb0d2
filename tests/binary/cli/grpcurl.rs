//! Reflection and calls through a real grpcurl (1.8.6 from `scripts/test`,
//! which speaks only reflection v1alpha): what an operator types.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::harness::{Exited, Gateway, run_to_exit};

/// A path for grpcurl: `$GRPCURL` (set by `scripts/test`), else `grpcurl`
/// on `PATH`. Panics, rather than skipping, when neither runs.
fn grpcurl() -> PathBuf {
    let candidate = std::env::var_os("GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("grpcurl"));
    let works = Command::new(&candidate)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "grpcurl not runnable (tried {}): run the tests with `scripts/test`, \
         which installs grpcurl 1.8.6 and exports GRPCURL",
        candidate.display()
    );
    candidate
}

/// Runs grpcurl against the gateway (plaintext, 10 s cap) with `args`.
fn run(gateway: &Gateway, args: &[&str]) -> Exited {
    let mut cmd = Command::new(grpcurl());
    cmd.args(["-plaintext", "-max-time", "10"]);
    let addr = gateway.addr.to_string();
    // Options go before the address, the method or symbol after it.
    let (options, rest) = match args.iter().position(|a| *a == "ADDR") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => panic!("args must hold ADDR: {args:?}"),
    };
    cmd.args(options).arg(&addr).args(rest);
    run_to_exit(cmd)
}

fn stdout(out: &Exited) -> String {
    out.stdout.join("\n")
}

fn assert_ok(out: &Exited, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "grpcurl {what} failed\n{}",
        out.output()
    );
}

#[test]
fn list_shows_all_services() {
    let gateway = Gateway::sandbox(&[]);
    let out = run(&gateway, &["ADDR", "list"]);
    assert_ok(&out, "list");
    for service in [
        "grpc.health.v1.Health",
        "ktp.v1.KtpService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            out.stdout.iter().any(|l| l == service),
            "{service} not listed\n{}",
            out.output()
        );
    }
}

#[test]
fn describe_shows_the_method_the_response_and_error_details() {
    let gateway = Gateway::sandbox(&[]);

    let out = run(
        &gateway,
        &["ADDR", "describe", "ktp.v1.KtpService.GetKtpResult"],
    );
    assert_ok(&out, "describe method");
    let text = stdout(&out);
    assert!(text.contains("is a method"), "{text}");
    assert!(
        text.contains("rpc GetKtpResult ( .ktp.v1.GetKtpResultRequest ) returns ( .ktp.v1.GetKtpResultResponse )"),
        "{text}"
    );

    let out = run(
        &gateway,
        &["ADDR", "describe", "ktp.v1.GetKtpResultResponse"],
    );
    assert_ok(&out, "describe message");
    let text = stdout(&out);
    assert!(text.contains("is a message"), "{text}");
    assert!(text.contains(".ktp.v1.Gender gender_value = 21;"), "{text}");
    assert!(
        text.contains(".google.type.Date date_of_birth_value = 26;"),
        "{text}"
    );

    for detail in [
        "google.rpc.ErrorInfo",
        "google.rpc.RequestInfo",
        "google.rpc.RetryInfo",
    ] {
        let out = run(&gateway, &["ADDR", "describe", detail]);
        assert_ok(&out, detail);
        let text = stdout(&out);
        assert!(text.contains(&format!("{detail} is a message")), "{text}");
    }
    let text = stdout(&run(
        &gateway,
        &["ADDR", "describe", "google.rpc.ErrorInfo"],
    ));
    assert!(text.contains("string reason = 1;"), "{text}");
}

#[test]
fn call_returns_camel_case_json_with_typed_values() {
    let gateway = Gateway::sandbox(&[]);
    let out = run(
        &gateway,
        &[
            "-d",
            r#"{"reference_id":"REFERENCE_ID_KTP"}"#,
            "ADDR",
            "ktp.v1.KtpService/GetKtpResult",
        ],
    );
    assert_ok(&out, "GetKtpResult");
    let text = stdout(&out);
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e})\n{}", out.output()));
    assert_eq!(json["fullName"], "SITI CONTOH", "{text}");
    assert_eq!(json["genderValue"], "GENDER_FEMALE", "{text}");
    assert_eq!(json["nik"], "3273016505900002", "{text}");
    assert_eq!(
        json["dateOfBirthValue"],
        serde_json::json!({ "year": 1990, "month": 5, "day": 25 }),
        "{text}"
    );
    assert!(text.contains(r#""fullName": "SITI CONTOH""#), "{text}");
    assert!(text.contains(r#""genderValue": "GENDER_FEMALE""#), "{text}");
}

#[test]
fn error_call_exits_non_zero_and_shows_the_error_info() {
    let gateway = Gateway::sandbox(&[]);
    let out = run(
        &gateway,
        &[
            "-d",
            r#"{"reference_id":"REFERENCE_ID_ERROR_NOT_FOUND"}"#,
            "ADDR",
            "ktp.v1.KtpService/GetKtpResult",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "{}", out.output());
    let all = format!("{}\n{}", out.stdout.join("\n"), out.stderr.join("\n"));
    assert!(all.contains("Code: NotFound"), "{all}");
    assert!(
        all.contains("Message: no KTP result under this reference id"),
        "{all}"
    );
    // grpcurl 1.8.6 prints each detail as one JSON object: `  1)<TAB>{...}`.
    let details: Vec<serde_json::Value> = all
        .lines()
        .filter_map(|l| serde_json::from_str(l.split_once(")\t")?.1).ok())
        .collect();
    let detail = |type_name: &str| {
        let type_url = format!("type.googleapis.com/google.rpc.{type_name}");
        details
            .iter()
            .find(|d| d["@type"] == type_url.as_str())
            .unwrap_or_else(|| panic!("no {type_name} detail\n{all}"))
    };
    let info = detail("ErrorInfo");
    assert_eq!(
        info["reason"], "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
        "{all}"
    );
    assert_eq!(info["domain"], "api.verihubs.com", "{all}");
    let request_id = detail("RequestInfo")["requestId"].as_str().unwrap_or("");
    assert_eq!(request_id.len(), 36, "a generated UUID\n{all}");
    assert_eq!(
        detail("ResourceInfo")["resourceName"],
        "REFERENCE_ID_ERROR_NOT_FOUND",
        "{all}"
    );
}

#[test]
fn a_read_mask_in_grpcurl_json_is_an_object_of_paths_and_the_checks_come_as_names() {
    let gateway = Gateway::sandbox(&[]);
    let out = run(
        &gateway,
        &[
            "-d",
            r#"{"reference_id":"REFERENCE_ID_KTP_NIK_GENDER_MISMATCH","read_mask":{"paths":["full_name","checks"]}}"#,
            "ADDR",
            "ktp.v1.KtpService/GetKtpResult",
        ],
    );
    assert_ok(&out, "GetKtpResult with a read mask");
    let text = stdout(&out);
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e})\n{}", out.output()));
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["checks", "fullName", "referenceId"], "{text}");
    assert_eq!(json["checks"]["nikGender"], "CHECK_RESULT_FAIL", "{text}");
    assert_eq!(json["checks"]["nikFormat"], "CHECK_RESULT_PASS", "{text}");
}

#[test]
fn health_check_reports_serving() {
    let gateway = Gateway::sandbox(&[]);
    for data in [None, Some(r#"{"service":"ktp.v1.KtpService"}"#)] {
        let mut args = Vec::new();
        if let Some(d) = data {
            args.extend(["-d", d]);
        }
        args.extend(["ADDR", "grpc.health.v1.Health/Check"]);
        let out = run(&gateway, &args);
        assert_ok(&out, "Health/Check");
        let json: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e})\n{}", out.output()));
        assert_eq!(json["status"], "SERVING", "{data:?}: {}", out.output());
    }
}

#[test]
fn describe_shows_the_asynchronous_rpcs() {
    let gateway = Gateway::sandbox(&[]);
    let out = run(&gateway, &["ADDR", "describe", "ktp.v1.KtpService"]);
    assert_ok(&out, "describe service");
    let text = stdout(&out);
    for rpc in [
        "rpc GetKtpResult ( .ktp.v1.GetKtpResultRequest ) returns ( .ktp.v1.GetKtpResultResponse );",
        "rpc SubmitKtp ( .ktp.v1.SubmitKtpRequest ) returns ( .ktp.v1.SubmitKtpResponse );",
        "rpc ExtractKtp ( .ktp.v1.ExtractKtpRequest ) returns ( .ktp.v1.ExtractKtpResponse );",
    ] {
        assert!(text.contains(rpc), "{rpc} not described\n{text}");
    }
    let out = run(
        &gateway,
        &["ADDR", "describe", "ktp.v1.GetKtpResultRequest"],
    );
    assert_ok(&out, "describe request");
    assert!(stdout(&out).contains("bool wait = 2;"), "{}", stdout(&out));
    let out = run(&gateway, &["ADDR", "describe", "ktp.v1.ExtractKtpRequest"]);
    assert_ok(&out, "describe request");
    let text = stdout(&out);
    for field in [
        "bytes image = 1;",
        "string image_url = 2;",
        "bool validate_quality = 3;",
    ] {
        assert!(text.contains(field), "{field}\n{text}");
    }
}

#[test]
fn extract_with_the_image_as_base64_in_the_json_returns_the_card() {
    use base64::Engine as _;
    let gateway = Gateway::sandbox(&[("KTP_GATEWAY__SANDBOX__PROCESSING_TIME", "300ms")]);
    let image = ktp_testkit::images::png(720, 480);
    let data = serde_json::json!({
        "image": base64::engine::general_purpose::STANDARD.encode(&image),
        "reference_id": "GRPCURL-EXTRACT-1",
    })
    .to_string();
    let out = run(
        &gateway,
        &["-d", &data, "ADDR", "ktp.v1.KtpService/ExtractKtp"],
    );
    assert_ok(&out, "ExtractKtp");
    let text = stdout(&out);
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e})\n{}", out.output()));
    assert_eq!(json["result"]["fullName"], "SITI CONTOH", "{text}");
    assert_eq!(json["result"]["referenceId"], "GRPCURL-EXTRACT-1", "{text}");

    // SubmitKtp, then GetKtpResult with wait, the way the README shows.
    let data = serde_json::json!({
        "image": base64::engine::general_purpose::STANDARD.encode(&image),
    })
    .to_string();
    let out = run(
        &gateway,
        &["-d", &data, "ADDR", "ktp.v1.KtpService/SubmitKtp"],
    );
    assert_ok(&out, "SubmitKtp");
    let submitted: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("grpcurl printed JSON");
    let id = submitted["referenceId"].as_str().expect("a generated id");
    assert_eq!(id.len(), 36, "{submitted}");
    let data = serde_json::json!({"reference_id": id, "wait": true}).to_string();
    let out = run(
        &gateway,
        &["-d", &data, "ADDR", "ktp.v1.KtpService/GetKtpResult"],
    );
    assert_ok(&out, "GetKtpResult with wait");
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["fullName"], "SITI CONTOH");
}
