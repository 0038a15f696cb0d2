//! Configuration problems stop the binary before it listens, with exit code 2
//! and one line that names the key and its env var; secrets are never echoed,
//! may come from files, and never reach the output.

use std::io::Write;

use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{
    CALL_FINISHED, Exited, Gateway, LOG_TIMEOUT, assert_absent, env, ktp_request,
    run_gateway_to_exit,
};

/// A syntactically valid pair of credentials.
pub(super) const CREDENTIALS: [(&str, &str); 2] = [(env::APP_ID, "app-1"), (env::API_KEY, "key-1")];

/// A loopback port where nothing listens (9 is "discard").
const UNREACHABLE: &str = "http://127.0.0.1:9";

/// Exit code 2, nothing on stdout (so no log line, no "serving" line: the
/// binary never got as far as listening), and exactly one stderr line that
/// contains every one of `expected`. Returns that line.
pub(super) fn assert_config_error(out: &Exited, expected: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", out.output());
    assert!(
        out.stdout.is_empty(),
        "a config error must stop the binary before it logs or listens\n{}",
        out.output()
    );
    assert_eq!(
        out.stderr.len(),
        1,
        "expected one stderr line\n{}",
        out.output()
    );
    let line = out.stderr[0].clone();
    assert!(line.starts_with("ktp-gateway: "), "{line}");
    for part in expected {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    line
}

#[test]
fn missing_app_id_names_the_key_and_both_env_vars() {
    let out = run_gateway_to_exit(&[], &[]);
    let line = assert_config_error(
        &out,
        &[
            "missing upstream.app_id",
            "KTP_GATEWAY__UPSTREAM__APP_ID ",
            "KTP_GATEWAY__UPSTREAM__APP_ID_FILE",
            "--sandbox",
        ],
    );
    assert_eq!(
        line,
        "ktp-gateway: missing upstream.app_id: set KTP_GATEWAY__UPSTREAM__APP_ID or \
         KTP_GATEWAY__UPSTREAM__APP_ID_FILE (or run with --sandbox)"
    );
}

#[test]
fn missing_api_key_names_the_key_and_env_var() {
    let out = run_gateway_to_exit(&[], &[(env::APP_ID, "app-1")]);
    assert_config_error(
        &out,
        &["missing upstream.api_key", "KTP_GATEWAY__UPSTREAM__API_KEY"],
    );
}

#[test]
fn empty_secret_counts_as_missing() {
    let out = run_gateway_to_exit(&[], &[(env::APP_ID, "app-1"), (env::API_KEY, "")]);
    assert_config_error(
        &out,
        &["missing upstream.api_key", "KTP_GATEWAY__UPSTREAM__API_KEY"],
    );
}

#[test]
fn invalid_base_url_names_the_key_and_env_var() {
    let mut vars = CREDENTIALS.to_vec();
    vars.push((env::BASE_URL, "ftp://x"));
    let out = run_gateway_to_exit(&[], &vars);
    assert_config_error(
        &out,
        &[
            "upstream.base_url",
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "ftp://x",
        ],
    );
}

#[test]
fn other_invalid_values_name_their_key_and_env_var() {
    for (var, value, key) in [
        (env::GRPC_ADDR, "localhost", "server.grpc_addr"),
        (env::TIMEOUT, "0s", "upstream.timeout"),
        (env::LOG_FILTER, "info,[", "log.filter"),
    ] {
        let mut vars = CREDENTIALS.to_vec();
        vars.push((var, value));
        let out = run_gateway_to_exit(&[], &vars);
        assert_config_error(&out, &[key, var]);
    }
}

#[test]
fn malformed_values_name_the_key_and_env_var() {
    // Values the config layer cannot even parse into their type are invalid
    // values too: the line must still name the env var to fix.
    for (var, value, key) in [
        (env::TIMEOUT, "soon", "upstream.timeout"),
        (env::LOG_FORMAT, "xml", "log.format"),
        ("KTP_GATEWAY__SANDBOX", "maybe", "sandbox"),
    ] {
        let mut vars = CREDENTIALS.to_vec();
        vars.push((var, value));
        let out = run_gateway_to_exit(&[], &vars);
        assert_config_error(&out, &[key, var]);
    }
}

#[test]
fn a_wildcard_cors_origin_stops_the_start_naming_the_key_and_env_var() {
    const CORS: &str = "KTP_GATEWAY__SERVER__CORS_ALLOWED_ORIGINS";
    for origins in ["*", "https://console.example.com, *"] {
        let mut vars = CREDENTIALS.to_vec();
        vars.push((env::ALLOW_UNAUTHENTICATED, "true"));
        vars.push((CORS, origins));
        let out = run_gateway_to_exit(&[], &vars);
        assert_config_error(
            &out,
            &[
                "invalid server.cors_allowed_origins",
                CORS,
                "\"*\" is not allowed",
            ],
        );
    }
    // Listed origins start (the check refuses `*`, not the setting).
    let mut vars = CREDENTIALS.to_vec();
    vars.push((CORS, "https://console.example.com,http://localhost:5173"));
    vars.push(("KTP_GATEWAY__UPSTREAM__BASE_URL", "ftp://x"));
    let out = run_gateway_to_exit(&[], &vars);
    assert_config_error(&out, &["upstream.base_url"]);
}

#[test]
fn invalid_secret_is_not_echoed() {
    let out = run_gateway_to_exit(
        &[],
        &[
            (env::APP_ID, "bad value-SECRETXYZ"),
            (env::API_KEY, "key-1"),
        ],
    );
    assert_config_error(&out, &["upstream.app_id", "KTP_GATEWAY__UPSTREAM__APP_ID"]);
    assert_absent(&out.stderr, "SECRETXYZ", "the invalid secret");
    assert_absent(&out.stdout, "SECRETXYZ", "the invalid secret");
}

#[test]
fn invalid_secret_from_a_file_is_not_echoed() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "bad value-SECRETFROMFILE").expect("write");
    let path = file.path().to_str().expect("UTF-8 path").to_owned();
    let out = run_gateway_to_exit(&[], &[(env::APP_ID_FILE, &path), (env::API_KEY, "key-1")]);
    assert_config_error(&out, &["upstream.app_id"]);
    assert_absent(&out.stderr, "SECRETFROMFILE", "the invalid secret");
}

#[test]
fn unreadable_secret_file_names_the_file_key() {
    let out = run_gateway_to_exit(
        &[],
        &[
            (env::APP_ID_FILE, "/nonexistent/ktp-gateway/app-id"),
            (env::API_KEY, "key-1"),
        ],
    );
    assert_config_error(
        &out,
        &[
            "upstream.app_id_file",
            "KTP_GATEWAY__UPSTREAM__APP_ID_FILE",
            "/nonexistent/ktp-gateway/app-id",
        ],
    );
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = run_gateway_to_exit(&["--config", "/nonexistent/ktp-gateway.toml"], &CREDENTIALS);
    assert_config_error(&out, &["/nonexistent/ktp-gateway.toml"]);
}

#[test]
fn unknown_key_in_the_config_file_is_named() {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    writeln!(file, "[upstream]\nbase_ulr = \"http://typo\"").expect("write");
    let path = file.path().to_str().expect("UTF-8 path").to_owned();
    let out = run_gateway_to_exit(&["--config", &path], &CREDENTIALS);
    assert_config_error(&out, &["base_ulr"]);
}

#[test]
fn malformed_config_file_is_one_line_without_the_secret() {
    // An unterminated string: a TOML parser's error quotes the line, and
    // this line holds a credential.
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    writeln!(
        file,
        "[upstream]\napp_id = \"app-1\"\napi_key = \"key-TOMLSECRET"
    )
    .expect("write");
    let path = file.path().to_str().expect("UTF-8 path").to_owned();
    let out = run_gateway_to_exit(&["--config", &path], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.output());
    assert_absent(
        &out.stderr,
        "TOMLSECRET",
        "a credential from the config file",
    );
    assert_absent(
        &out.stdout,
        "TOMLSECRET",
        "a credential from the config file",
    );
    assert_config_error(&out, &["cannot parse config file", &path, "not valid TOML"]);
}

#[test]
fn config_file_can_turn_on_the_sandbox() {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    writeln!(file, "sandbox = true\n[server]\nshutdown_grace = \"3s\"").expect("write");
    let path = file.path().to_str().expect("UTF-8 path").to_owned();
    let mut gateway = Gateway::start(&["--config", &path], &[]);
    gateway
        .process
        .wait_for_log("warning about sandbox mode", LOG_TIMEOUT, |v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("SANDBOX MODE"))
        });
    let status = gateway.stop();
    assert_eq!(status.code(), Some(0), "{}", gateway.process.output());
}

/// Starts with the given credential settings against an unreachable
/// upstream, makes one call, stops, and checks the call's answer and that
/// none of `secrets` appears in any output.
async fn serve_unreachable_upstream(vars: &[(&str, &str)], secrets: &[&str]) {
    let mut all = vars.to_vec();
    all.push((env::BASE_URL, UNREACHABLE));
    let mut gateway = Gateway::start(&[], &all);
    assert!(
        !gateway
            .process
            .stdout()
            .iter()
            .any(|l| l.contains("SANDBOX MODE")),
        "{}",
        gateway.process.output()
    );

    let mut client = gateway.ktp().await;
    let status = client
        .get_ktp_result(ktp_request("REFERENCE_ID_KTP", Some("cli-unreachable-1")))
        .await
        .expect_err("nothing listens upstream");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "UPSTREAM_UNAVAILABLE", "{status:?}");
    assert_eq!(info.domain, "ktp-gateway");
    assert!(details.retry_info().is_some(), "{status:?}");
    assert_eq!(
        details.request_info().expect("RequestInfo").request_id,
        "cli-unreachable-1"
    );

    let log = gateway.call_log("cli-unreachable-1");
    assert_eq!(log["message"], CALL_FINISHED);
    assert_eq!(log["grpc_code"], "UNAVAILABLE", "{log}");
    assert_eq!(log["reason"], "UPSTREAM_UNAVAILABLE", "{log}");

    let exit = gateway.stop();
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.output());
    for secret in secrets {
        assert_absent(gateway.process.stdout(), secret, "a credential");
        assert_absent(gateway.process.stderr(), secret, "a credential");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_work_and_never_leak() {
    let mut app_id = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(app_id, "cli-app-id-FILESECRET1").expect("write");
    let mut api_key = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(api_key, "cli-api-key-FILESECRET2").expect("write");
    let app_id_path = app_id.path().to_str().expect("UTF-8 path").to_owned();
    let api_key_path = api_key.path().to_str().expect("UTF-8 path").to_owned();
    serve_unreachable_upstream(
        &[
            (env::APP_ID_FILE, &app_id_path),
            (env::API_KEY_FILE, &api_key_path),
        ],
        &["FILESECRET1", "FILESECRET2"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_env_never_leak() {
    serve_unreachable_upstream(
        &[
            (env::APP_ID, "cli-app-id-ENVSECRET1"),
            (env::API_KEY, "cli-api-key-ENVSECRET2"),
        ],
        &["ENVSECRET1", "ENVSECRET2"],
    )
    .await;
}

/// `upstream.ca_file` is read and parsed before anything listens: a file
/// that is missing or not PEM is a config error naming the key.
#[test]
fn an_unusable_upstream_ca_file_stops_the_binary_before_it_listens() {
    let mut not_pem = tempfile::NamedTempFile::new().unwrap();
    not_pem.write_all(b"not a certificate\n").unwrap();
    let not_pem = not_pem.path().to_str().unwrap().to_owned();
    for (path, why) in [
        ("/nonexistent/upstream-ca.pem", "cannot read"),
        (not_pem.as_str(), "holds no PEM certificate"),
    ] {
        let mut vars = CREDENTIALS.to_vec();
        vars.push(("KTP_GATEWAY__UPSTREAM__CA_FILE", path));
        let out = run_gateway_to_exit(&[], &vars);
        assert_config_error(
            &out,
            &[
                "invalid upstream.ca_file",
                "KTP_GATEWAY__UPSTREAM__CA_FILE",
                why,
            ],
        );
    }
}
