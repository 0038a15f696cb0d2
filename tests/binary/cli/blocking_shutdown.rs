//! The process exits within `server.shutdown_grace` even when blocking work
//! hangs: a DNS lookup runs in a blocking task (the upstream client's
//! resolver calls `getaddrinfo`), and dropping the runtime would wait for it
//! forever. A tiny C library, compiled here with `cc` and preloaded into the
//! binary, makes `getaddrinfo` hang the way a resolver that never answers
//! does.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use tonic::Code;

use super::config_errors::CREDENTIALS;
use crate::harness::{Gateway, env, ktp_request};

/// `getaddrinfo` that never returns.
const HANGING_RESOLVER: &str = r#"
#include <unistd.h>
struct addrinfo;
int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
    (void)node; (void)service; (void)hints; (void)res;
    for (;;) sleep(3600);
    return -1;
}
"#;

/// How long the process may take to exit after SIGTERM: the 2 s grace plus
/// generous slack for a busy machine; without the fix it never exits.
const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// Compiles [`HANGING_RESOLVER`] into a shared library in `dir`.
fn hanging_resolver(dir: &Path) -> PathBuf {
    let source = dir.join("hang.c");
    let library = dir.join("libhang.so");
    std::fs::write(&source, HANGING_RESOLVER).expect("write hang.c");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run cc (a C compiler; see README, the test command): {e}")
        });
    assert!(status.success(), "cc failed to build the hanging resolver");
    library
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_dns_lookup_cannot_hold_the_exit_past_the_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let library = hanging_resolver(dir.path());
    let library = library.to_str().expect("UTF-8 path");
    let mut vars = CREDENTIALS.to_vec();
    vars.extend([
        // A host name, so the upstream request starts with a DNS lookup.
        (env::BASE_URL, "http://localhost:9"),
        (env::TIMEOUT, "300ms"),
        ("KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS", "1"),
        (env::SHUTDOWN_GRACE, "2s"),
        (env::DRAIN_DELAY, "100ms"),
        ("LD_PRELOAD", library),
    ]);
    let mut gateway = Gateway::start(&[], &vars);

    // The call gives up after upstream.timeout; its lookup hangs on.
    let status = gateway
        .ktp()
        .await
        .get_ktp_result(ktp_request("REFERENCE_ID_KTP", Some("cli-dns-1")))
        .await
        .expect_err("the upstream's name never resolves");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let log = gateway.call_log("cli-dns-1");
    assert_eq!(log["reason"], "UPSTREAM_TIMEOUT", "{log}");

    gateway.process.sigterm();
    let sigterm_at = Instant::now();
    let exit = gateway.process.try_wait_exit(EXIT_LIMIT);
    let took = sigterm_at.elapsed();
    let exit = exit.unwrap_or_else(|| {
        panic!(
            "still running {took:?} after SIGTERM with server.shutdown_grace = 2s: the hung \
             lookup held the exit (killed it)\n{}",
            gateway.process.output()
        )
    });
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.output());
    assert!(
        gateway
            .process
            .json_logs()
            .iter()
            .any(|v| v["message"] == "shutdown complete"),
        "the drain itself completed\n{}",
        gateway.process.output()
    );
}
