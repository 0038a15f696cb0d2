//! Every configuration error stops the binary before it binds a port (exit
//! code 2, nothing logged, one line naming the key and its env var): TLS
//! files that exist but cannot be used, a metrics address that cannot be
//! bound, and a `base_url` with credentials, which is never echoed.

use std::{io::Write, net::TcpListener};

use rcgen::{CertificateParams, KeyPair};
use tempfile::NamedTempFile;

use super::config_errors::{CREDENTIALS, assert_config_error};
use crate::harness::{assert_absent, env, run_gateway_to_exit};

const CERT_FILE: &str = "KTP_GATEWAY__SERVER__TLS__CERT_FILE";
const KEY_FILE: &str = "KTP_GATEWAY__SERVER__TLS__KEY_FILE";
const CLIENT_CA_FILE: &str = "KTP_GATEWAY__SERVER__TLS__CLIENT_CA_FILE";

fn file(contents: &str) -> NamedTempFile {
    let mut f = NamedTempFile::new().expect("temp file");
    f.write_all(contents.as_bytes()).expect("write");
    f
}

fn path(f: &NamedTempFile) -> String {
    f.path().to_str().expect("UTF-8 path").to_owned()
}

/// A self-signed certificate for localhost and its key, as PEM.
fn certified() -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

/// A loopback port that was free a moment ago: the gRPC address a run is
/// given, so that binding it cannot be what fails.
fn free_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Runs with credentials, a free gRPC port and `vars`; expects the config
/// error naming `key` (and its env var) and saying `why`.
fn assert_stops_before_listening(vars: &[(&str, &str)], key: &str, var: &str, why: &str) {
    let grpc = free_port();
    let mut all = CREDENTIALS.to_vec();
    all.push((env::GRPC_ADDR, &grpc));
    all.extend_from_slice(vars);
    let out = run_gateway_to_exit(&[], &all);
    assert_config_error(&out, &[&format!("invalid {key}"), var, why]);
}

/// The TLS variables of one case, the key at fault, its variable, and what
/// the error says.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);

/// TLS files that exist (so the old check passed) but that the server could
/// not use: each fails at load, naming its own key.
#[test]
fn unusable_tls_files_stop_the_binary_before_it_listens() {
    let (cert_pem, key_pem) = certified();
    let (other_cert_pem, other_key_pem) = certified();
    let cert = file(&cert_pem);
    let key = file(&key_pem);
    let not_pem = file("not a certificate\n");
    let broken_pem = file("-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n");
    let other_key = file(&other_key_pem);
    let a_cert_as_key = file(&other_cert_pem);
    let (cert, key, not_pem, broken_pem, other_key, a_cert_as_key) = (
        path(&cert),
        path(&key),
        path(&not_pem),
        path(&broken_pem),
        path(&other_key),
        path(&a_cert_as_key),
    );
    // Exists, but cannot be read as a file.
    let directory = tempfile::tempdir().expect("temp dir");
    let a_directory = directory.path().to_str().expect("UTF-8 path").to_owned();
    let cases: [Case<'_>; 7] = [
        (
            &[(CERT_FILE, &a_directory), (KEY_FILE, &key)],
            "server.tls.cert_file",
            CERT_FILE,
            "Is a directory",
        ),
        (
            &[(CERT_FILE, &not_pem), (KEY_FILE, &key)],
            "server.tls.cert_file",
            CERT_FILE,
            "holds no PEM certificate",
        ),
        (
            &[(CERT_FILE, &broken_pem), (KEY_FILE, &key)],
            "server.tls.cert_file",
            CERT_FILE,
            "is not valid PEM",
        ),
        (
            &[(CERT_FILE, &cert), (KEY_FILE, &a_cert_as_key)],
            "server.tls.key_file",
            KEY_FILE,
            "holds no PEM private key",
        ),
        (
            &[(CERT_FILE, &cert), (KEY_FILE, &other_key)],
            "server.tls.key_file",
            KEY_FILE,
            "is not the private key of the certificate",
        ),
        (
            &[
                (CERT_FILE, &cert),
                (KEY_FILE, &key),
                (CLIENT_CA_FILE, &not_pem),
            ],
            "server.tls.client_ca_file",
            CLIENT_CA_FILE,
            "holds no PEM certificate",
        ),
        (
            &[(CERT_FILE, &cert), (KEY_FILE, &key), (CLIENT_CA_FILE, &key)],
            "server.tls.client_ca_file",
            CLIENT_CA_FILE,
            "holds no PEM certificate",
        ),
    ];
    for (vars, key, var, why) in cases {
        assert_stops_before_listening(vars, key, var, why);
    }
}

/// The metrics port is bound before the gRPC port: when it cannot be bound
/// the start stops there, and with both addresses taken it is the metrics
/// address that is named (the gRPC port was never tried).
#[test]
fn an_unbindable_metrics_address_stops_the_binary_before_the_grpc_port() {
    let taken_metrics = TcpListener::bind("127.0.0.1:0").expect("bind");
    let metrics = taken_metrics.local_addr().expect("addr").to_string();
    let taken_grpc = TcpListener::bind("127.0.0.1:0").expect("bind");
    let grpc_taken = taken_grpc.local_addr().expect("addr").to_string();
    for grpc in [free_port(), grpc_taken] {
        let mut vars = CREDENTIALS.to_vec();
        vars.extend([
            (env::GRPC_ADDR, grpc.as_str()),
            (env::METRICS_ADDR, &metrics),
        ]);
        let out = run_gateway_to_exit(&[], &vars);
        let line = assert_config_error(
            &out,
            &["metrics.addr", "KTP_GATEWAY__METRICS__ADDR", &metrics],
        );
        assert!(!line.contains("server.grpc_addr"), "{line}");
    }
}

/// A gRPC address that cannot be bound is a configuration error too.
#[test]
fn an_unbindable_grpc_address_names_its_key() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let grpc = taken.local_addr().expect("addr").to_string();
    let mut vars = CREDENTIALS.to_vec();
    vars.push((env::GRPC_ADDR, &grpc));
    let out = run_gateway_to_exit(&[], &vars);
    assert_config_error(
        &out,
        &["server.grpc_addr", "KTP_GATEWAY__SERVER__GRPC_ADDR", &grpc],
    );
}

/// Credentials in `upstream.base_url` are refused without echoing them,
/// whichever other check the value would fail too.
#[test]
fn a_base_url_with_credentials_is_refused_without_echoing_it() {
    for url in [
        "https://user:pw-URLSECRET@api.example.com",
        // Also plain http to a remote host: refused for that too, and that
        // message quotes the value.
        "http://user:pw-URLSECRET@api.example.com",
        // Not a URL at all (the port is out of range): that message quotes
        // the value too.
        "https://user:pw-URLSECRET@api.example.com:99999",
        "ftp://user:pw-URLSECRET@api.example.com",
    ] {
        let mut vars = CREDENTIALS.to_vec();
        vars.push((env::BASE_URL, url));
        let out = run_gateway_to_exit(&[], &vars);
        assert_config_error(
            &out,
            &[
                "invalid upstream.base_url",
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
            ],
        );
        assert_absent(
            &out.stderr,
            "URLSECRET",
            "the password in upstream.base_url",
        );
        assert_absent(&out.stderr, "user:", "the user in upstream.base_url");
    }
}
