//! Loading: precedence, defaults, and that every problem is one line naming
//! the key and its env var, never a secret.

use std::{collections::HashMap, io::Write, time::Duration};

use secrecy::ExposeSecret;

use super::*;

mod auth;
mod messages;
mod readme;

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load(Sources {
        env: env(pairs),
        ..Default::default()
    })
}

/// What a start outside the sandbox needs: credentials, and callers
/// authenticated or explicitly not.
const CREDS: [(&str, &str); 3] = [
    ("KTP_GATEWAY__UPSTREAM__APP_ID", "app-123"),
    ("KTP_GATEWAY__UPSTREAM__API_KEY", "key-456"),
    ("KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED", "true"),
];

#[test]
fn defaults_with_credentials() {
    let s = load_env(&CREDS).unwrap();
    assert_eq!(s.server.grpc_addr.to_string(), "0.0.0.0:50051");
    assert_eq!(*s.server.shutdown_grace, Duration::from_secs(20));
    assert_eq!(s.server.drain_delay, Duration::from_secs(1));
    assert_eq!(s.upstream.base_url.as_str(), "https://api.verihubs.com/");
    assert_eq!(*s.upstream.max_body_bytes, 1024 * 1024);
    assert_eq!(s.upstream.reference_id_in, ReferenceIdPlacement::Both);
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.upstream.app_id.expose_secret(), "app-123");
    assert!(!s.sandbox.enabled);
}

#[test]
fn env_overrides_file_overrides_defaults() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        file,
        "[server]\ngrpc_addr = \"127.0.0.1:6000\"\nshutdown_grace = \"5s\"\n\
         [upstream]\nbase_url = \"http://127.0.0.1:8080\"\ntimeout = \"750ms\"\nreference_id_in = \"query\"\n\
         [log]\nformat = \"text\""
    )
    .unwrap();
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__SERVER__GRPC_ADDR", "127.0.0.1:7000"));
    vars.push(("KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES", "2048"));
    let s = Settings::load(Sources {
        file: Some(file.path().to_owned()),
        env: env(&vars),
        sandbox: false,
    })
    .unwrap();
    assert_eq!(s.server.grpc_addr.to_string(), "127.0.0.1:7000");
    assert_eq!(*s.server.shutdown_grace, Duration::from_secs(5));
    assert_eq!(s.upstream.base_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(*s.upstream.timeout, Duration::from_millis(750));
    assert_eq!(s.upstream.reference_id_in, ReferenceIdPlacement::Query);
    assert_eq!(*s.upstream.max_body_bytes, 2048);
    assert_eq!(s.log.format, LogFormat::Text);
}

#[test]
fn missing_credentials_name_the_key_and_env_var() {
    let err = load_env(&[]).unwrap_err().to_string();
    assert!(err.contains("upstream.app_id"), "{err}");
    assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID"), "{err}");
    let err = load_env(&CREDS[..1]).unwrap_err().to_string();
    assert!(err.contains("KTP_GATEWAY__UPSTREAM__API_KEY"), "{err}");
}

#[test]
fn sandbox_needs_no_credentials() {
    let s = Settings::load(Sources {
        sandbox: true,
        env: env(&[]),
        ..Default::default()
    })
    .unwrap();
    assert!(s.sandbox.enabled);
    let s = load_env(&[("KTP_GATEWAY__SANDBOX", "true")]).unwrap();
    assert!(s.sandbox.enabled);
}

#[test]
fn secrets_from_files_are_trimmed() {
    let mut app = tempfile::NamedTempFile::new().unwrap();
    writeln!(app, "file-app-id").unwrap();
    let mut key = tempfile::NamedTempFile::new().unwrap();
    write!(key, "file-key\r\n").unwrap();
    let app_path = app.path().to_str().unwrap().to_owned();
    let key_path = key.path().to_str().unwrap().to_owned();
    let s = load_env(&[
        ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", &app_path),
        ("KTP_GATEWAY__UPSTREAM__API_KEY_FILE", &key_path),
        CREDS[2],
    ])
    .unwrap();
    assert_eq!(s.upstream.app_id.expose_secret(), "file-app-id");
    assert_eq!(s.upstream.api_key.expose_secret(), "file-key");
}

#[test]
fn bad_secrets_are_rejected_without_echoing_them() {
    let err = load_env(&[
        ("KTP_GATEWAY__UPSTREAM__APP_ID", "has space-SECRET"),
        ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");

    let err = load_env(&[
        ("KTP_GATEWAY__UPSTREAM__APP_ID", "a"),
        ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", "/nonexistent"),
        ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("not both"), "{err}");

    let err = load_env(&[
        ("KTP_GATEWAY__UPSTREAM__APP_ID_FILE", "/nonexistent/app"),
        ("KTP_GATEWAY__UPSTREAM__API_KEY", "k"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("KTP_GATEWAY__UPSTREAM__APP_ID_FILE"), "{err}");
}

#[test]
fn invalid_values_name_the_key_and_env_var() {
    for (var, value, key) in [
        (
            "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT",
            "99999999999",
            "server.max_in_flight",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__MAX_CONNECTIONS",
            "2305843009213693952",
            "upstream.max_connections",
        ),
        (
            "KTP_GATEWAY__SERVER__WORKER_THREADS",
            "1025",
            "server.worker_threads",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BREAKER__COOLDOWN",
            "300000000000y",
            "upstream.breaker.cooldown",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__MAX_BACKOFF",
            "400d",
            "upstream.retry.max_backoff",
        ),
        ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "2d", "upstream.timeout"),
        (
            "KTP_GATEWAY__SERVER__GRPC_ADDR",
            "localhost",
            "server.grpc_addr",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "ftp://x",
            "upstream.base_url",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "not a url",
            "upstream.base_url",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "https://u:p@host",
            "upstream.base_url",
        ),
        ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "0s", "upstream.timeout"),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "http://api.verihubs.com",
            "upstream.base_url",
        ),
        (
            "KTP_GATEWAY__SERVER__DRAIN_DELAY",
            "30s",
            "server.drain_delay",
        ),
        (
            "KTP_GATEWAY__SERVER__SHUTDOWN_GRACE",
            "0s",
            "server.shutdown_grace",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS",
            "0",
            "upstream.retry.max_attempts",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_RATIO",
            "1.5",
            "upstream.retry.budget_ratio",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BREAKER__FAILURE_THRESHOLD",
            "0",
            "upstream.breaker.failure_threshold",
        ),
        (
            "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT",
            "0",
            "server.max_in_flight",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
            "0",
            "upstream.max_body_bytes",
        ),
        ("KTP_GATEWAY__LOG__FILTER", "info,[", "log.filter"),
    ] {
        let mut vars = CREDS.to_vec();
        vars.push((var, value));
        let err = load_env(&vars).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains(var),
            "{var}={value}: {err}"
        );
    }
}

#[test]
fn malformed_types_and_unknown_keys_are_errors() {
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__UPSTREAM__TIMEOUT", "soon"));
    assert!(load_env(&vars).is_err());
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__UPSTREAM__BASE_ULR", "http://typo"));
    let err = load_env(&vars).unwrap_err().to_string();
    assert!(err.contains("base_ulr"), "{err}");
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__UPSTREAM__REFERENCE_ID_IN", "header"));
    assert!(load_env(&vars).is_err());
}

#[test]
fn type_errors_name_the_key_and_env_var() {
    for (var, value, key) in [
        ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "soon", "upstream.timeout"),
        ("KTP_GATEWAY__LOG__FORMAT", "xml", "log.format"),
        ("KTP_GATEWAY__SANDBOX", "maybe", "sandbox"),
        (
            "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
            "lots",
            "upstream.max_body_bytes",
        ),
    ] {
        let mut vars = CREDS.to_vec();
        vars.push((var, value));
        let err = load_env(&vars).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains(var),
            "{var}={value}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn toml_syntax_errors_never_quote_the_file() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(file, "[upstream]\napi_key = \"key-TOMLSECRET\nbase_url = 1").unwrap();
    let err = Settings::load(Sources {
        file: Some(file.path().to_owned()),
        env: env(&CREDS),
        sandbox: false,
    })
    .unwrap_err()
    .to_string();
    assert!(!err.contains("TOMLSECRET"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains(file.path().to_str().unwrap()), "{err}");
}

#[test]
fn debug_never_shows_secrets() {
    let s = load_env(&CREDS).unwrap();
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("app-123") && !shown.contains("key-456"),
        "{shown}"
    );
}

#[test]
fn tls_and_auth_settings_are_checked_at_load() {
    let cert = tempfile::NamedTempFile::new().unwrap();
    let cert_path = cert.path().to_str().unwrap().to_owned();
    for (pairs, key) in [
        (
            vec![("KTP_GATEWAY__SERVER__TLS__CERT_FILE", cert_path.as_str())],
            "server.tls.key_file",
        ),
        (
            vec![("KTP_GATEWAY__SERVER__TLS__KEY_FILE", cert_path.as_str())],
            "server.tls.cert_file",
        ),
        (
            vec![(
                "KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE",
                cert_path.as_str(),
            )],
            "server.tls.client_ca_file",
        ),
        (
            vec![
                ("KTP_GATEWAY__SERVER__TLS__CERT_FILE", cert_path.as_str()),
                ("KTP_GATEWAY__SERVER__TLS__KEY_FILE", "/nonexistent/key.pem"),
            ],
            "server.tls.key_file",
        ),
        (
            vec![("KTP_GATEWAY__AUTH__TOKENS_FILE", "/nonexistent/tokens")],
            "auth.tokens_file",
        ),
        (
            vec![("KTP_GATEWAY__AUTH__TOKENS_FILE", cert_path.as_str())],
            "auth.tokens_file",
        ),
        (
            vec![("KTP_GATEWAY__METRICS__ADDR", "nowhere")],
            "metrics.addr",
        ),
    ] {
        let mut vars = CREDS.to_vec();
        vars.extend(pairs);
        let err = load_env(&vars).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
    // A certificate and its key: parsed at load, and usable.
    let real = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (real_cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&real_cert, real.cert.pem()).unwrap();
    std::fs::write(&key, real.signing_key.serialize_pem()).unwrap();
    let (real_cert, key) = (real_cert.to_str().unwrap(), key.to_str().unwrap());
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__SERVER__TLS__CERT_FILE", real_cert));
    vars.push(("KTP_GATEWAY__SERVER__TLS__KEY_FILE", key));
    let s = load_env(&vars).unwrap();
    assert!(s.server.tls.settings().is_some() && s.auth.tokens().is_none() && s.server.reflection);
    assert_eq!(s.metrics.addr.to_string(), "0.0.0.0:9090");
}

#[test]
fn plain_http_is_for_loopback_only() {
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
        "https://api.verihubs.com",
    ] {
        let mut vars = CREDS.to_vec();
        vars.push(("KTP_GATEWAY__UPSTREAM__BASE_URL", ok));
        assert!(load_env(&vars).is_ok(), "{ok}");
    }
}

#[test]
fn env_names() {
    assert_eq!(
        env_name("server.grpc_addr"),
        "KTP_GATEWAY__SERVER__GRPC_ADDR"
    );
    assert_eq!(
        env_name("upstream.api_key_file"),
        "KTP_GATEWAY__UPSTREAM__API_KEY_FILE"
    );
}
