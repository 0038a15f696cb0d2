//! The exact text of each kind of error, as operators and their runbooks
//! know it: a setting type's own check, the `config` crate's type errors,
//! rules between settings, and unknown keys all read the same way.

use super::{CREDS, load_env};

fn error(pairs: &[(&str, &str)]) -> String {
    let mut vars = CREDS.to_vec();
    vars.extend_from_slice(pairs);
    load_env(&vars).unwrap_err().to_string()
}

#[test]
fn each_kind_of_error_reads_as_before() {
    for (var, value, expected) in [
        (
            "KTP_GATEWAY__SERVER__SHUTDOWN_GRACE",
            "25h",
            "invalid server.shutdown_grace (set with KTP_GATEWAY__SERVER__SHUTDOWN_GRACE): \
             must be greater than zero and at most 24h",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__TIMEOUT",
            "soon",
            "invalid upstream.timeout (set with KTP_GATEWAY__UPSTREAM__TIMEOUT): \
             invalid value: string \"soon\", expected a duration",
        ),
        (
            "KTP_GATEWAY__SERVER__DRAIN_DELAY",
            "20s",
            "invalid server.drain_delay (set with KTP_GATEWAY__SERVER__DRAIN_DELAY): \
             must be shorter than server.shutdown_grace (it is part of it)",
        ),
        (
            "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT",
            "0",
            "invalid server.max_in_flight (set with KTP_GATEWAY__SERVER__MAX_IN_FLIGHT): \
             must be from 1 to 1000000",
        ),
        (
            "KTP_GATEWAY__SERVER__MAX_CONCURRENT_STREAMS",
            "4294967296",
            "invalid server.max_concurrent_streams (set with \
             KTP_GATEWAY__SERVER__MAX_CONCURRENT_STREAMS): expected an unsigned 32 bit \
             integer, found 64-bit unsigned integer `4294967296`",
        ),
        (
            "KTP_GATEWAY__SERVER__WORKER_THREADS",
            "1025",
            "invalid server.worker_threads (set with KTP_GATEWAY__SERVER__WORKER_THREADS): \
             must be from 0 (one per CPU) to 1024",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS",
            "11",
            "invalid upstream.retry.max_attempts (set with \
             KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS): must be from 1 (no retries) to 10",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
            "0",
            "invalid upstream.max_body_bytes (set with KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES): \
             must be from 1 to 67108864",
        ),
        (
            // A buffer sized from an upstream's Content-Length stays under
            // this bound.
            "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
            "67108865",
            "invalid upstream.max_body_bytes (set with KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES): \
             must be from 1 to 67108864",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES",
            "lots",
            "invalid upstream.max_body_bytes (set with KTP_GATEWAY__UPSTREAM__MAX_BODY_BYTES): \
             expected an integer, found string \"lots\"",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_RATIO",
            "1.5",
            "invalid upstream.retry.budget_ratio (set with \
             KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_RATIO): must be from 0 to 1",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_MIN_PER_SEC",
            "1000001",
            "invalid upstream.retry.budget_min_per_sec (set with \
             KTP_GATEWAY__UPSTREAM__RETRY__BUDGET_MIN_PER_SEC): must be from 0 to 1000000",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__RETRY__BASE_BACKOFF",
            "2s",
            "invalid upstream.retry.max_backoff (set with \
             KTP_GATEWAY__UPSTREAM__RETRY__MAX_BACKOFF): must be at least \
             upstream.retry.base_backoff",
        ),
        (
            "KTP_GATEWAY__METRICS__ADDR",
            "localhost",
            "invalid metrics.addr (set with KTP_GATEWAY__METRICS__ADDR): \
             \"localhost\" is not an IP:port address",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "not a url",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             \"not a url\" is not a URL: relative URL without a base",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "file:///x",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             \"file:///x\" must be an http:// or https:// URL with a host",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "http://0.0.0.0:1",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             \"http://0.0.0.0:1\" would send the API key unencrypted: use https:// \
             (http:// only for loopback hosts)",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "https://u@host",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             must not contain credentials; use upstream.app_id and upstream.api_key",
        ),
        // Credentials are refused before any check that would show the value.
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "http://user:pass-SECRET@api.example.com",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             must not contain credentials; use upstream.app_id and upstream.api_key",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__BASE_URL",
            "https://user:pass-SECRET@api.example.com:99999",
            "invalid upstream.base_url (set with KTP_GATEWAY__UPSTREAM__BASE_URL): \
             the value (not shown: it has an '@', which may be credentials) is not a URL: \
             invalid port number",
        ),
        (
            "KTP_GATEWAY__LOG__FILTER",
            "info,[",
            "invalid log.filter (set with KTP_GATEWAY__LOG__FILTER): \
             \"info,[\" is not a valid filter",
        ),
        (
            "KTP_GATEWAY__LOG__FORMAT",
            "xml",
            "invalid log.format (set with KTP_GATEWAY__LOG__FORMAT): \
             enum LogFormat does not have variant constructor xml",
        ),
        (
            "KTP_GATEWAY__SANDBOX",
            "maybe",
            "invalid sandbox (set with KTP_GATEWAY__SANDBOX): \
             expected a boolean, found string \"maybe\"",
        ),
        (
            "KTP_GATEWAY__AUTH__TOKENS_FILE",
            "/nonexistent/tokens",
            "invalid auth.tokens_file (set with KTP_GATEWAY__AUTH__TOKENS_FILE): \
             cannot read /nonexistent/tokens: No such file or directory (os error 2)",
        ),
        (
            "KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE",
            "/nonexistent/ca.pem",
            "invalid server.tls.client_ca_file (set with \
             KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE): mutual TLS needs \
             server.tls.cert_file and server.tls.key_file too",
        ),
        (
            "KTP_GATEWAY__SERVER__TLS__CERT_FILE",
            "/nonexistent/cert.pem",
            "invalid server.tls.key_file (set with KTP_GATEWAY__SERVER__TLS__KEY_FILE): \
             server.tls.cert_file is set, so this is required",
        ),
        (
            "KTP_GATEWAY__SERVER__TLS__NOPE",
            "1",
            "invalid server.tls (set with KTP_GATEWAY__SERVER__TLS): unknown field `nope`, \
             expected one of `cert_file`, `key_file`, `client_ca_file`",
        ),
        (
            "KTP_GATEWAY__NOPE",
            "1",
            "cannot load configuration: unknown field `nope`, expected one of `server`, \
             `upstream`, `log`, `metrics`, `auth`, `submit`, `wait`, `sandbox`, `trace`",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__APP_ID_FILE",
            "/nonexistent/app-id",
            "invalid upstream.app_id (set with KTP_GATEWAY__UPSTREAM__APP_ID): set either \
             KTP_GATEWAY__UPSTREAM__APP_ID or KTP_GATEWAY__UPSTREAM__APP_ID_FILE, not both",
        ),
        (
            "KTP_GATEWAY__UPSTREAM__API_KEY",
            "ünï",
            "invalid upstream.api_key (set with KTP_GATEWAY__UPSTREAM__API_KEY): \
             must be printable ASCII without spaces (the value is not shown)",
        ),
    ] {
        assert_eq!(error(&[(var, value)]), expected, "{var}={value}");
    }
}

#[test]
fn missing_and_unreadable_secrets_read_as_before() {
    assert_eq!(
        load_env(&CREDS[1..]).unwrap_err().to_string(),
        "missing upstream.app_id: set KTP_GATEWAY__UPSTREAM__APP_ID or \
         KTP_GATEWAY__UPSTREAM__APP_ID_FILE (or run with --sandbox)"
    );
    assert_eq!(
        load_env(&[
            CREDS[0],
            (
                "KTP_GATEWAY__UPSTREAM__API_KEY_FILE",
                "/nonexistent/api-key"
            ),
        ])
        .unwrap_err()
        .to_string(),
        "invalid upstream.api_key_file (set with KTP_GATEWAY__UPSTREAM__API_KEY_FILE): \
         cannot read /nonexistent/api-key: No such file or directory (os error 2)"
    );
}

/// `upstream.ca_file` is read and parsed at load: an unreadable file, one
/// that is not PEM or holds no certificate, or a broken certificate fails
/// before any port is bound, naming the key and its variable.
#[test]
fn an_unusable_upstream_ca_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca = rcgen::CertifiedIssuer::self_signed(
        {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p
        },
        rcgen::KeyPair::generate().unwrap(),
    )
    .unwrap();
    let good = write("ca.pem", &ca.pem());
    let cases = [
        (
            "/nonexistent/ca.pem".to_owned(),
            "cannot read /nonexistent/ca.pem",
        ),
        (
            write("text.pem", "not a certificate\n"),
            "holds no PEM certificate",
        ),
        (
            write(
                "key.pem",
                &rcgen::KeyPair::generate().unwrap().serialize_pem(),
            ),
            "holds no PEM certificate",
        ),
        (
            write(
                "broken.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            "unusable CA certificate",
        ),
        (
            write(
                "bad-base64.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
            "is not valid PEM",
        ),
    ];
    for (path, why) in cases {
        let err = error(&[("KTP_GATEWAY__UPSTREAM__CA_FILE", &path)]);
        assert!(
            err.starts_with("invalid upstream.ca_file (set with KTP_GATEWAY__UPSTREAM__CA_FILE): ")
                && err.contains(why),
            "{path}: {err}"
        );
    }
    let settings = load_env(&[
        CREDS[0],
        CREDS[1],
        CREDS[2],
        ("KTP_GATEWAY__UPSTREAM__CA_FILE", &good),
    ])
    .expect("a PEM CA loads");
    assert_eq!(
        settings.upstream.ca_file.as_deref(),
        Some(std::path::Path::new(&good))
    );
}
