//! The Connect-ES example client (`examples/node/connect-client.mjs`)
//! against the real binary in sandbox mode, once per way it can talk:
//! Connect with JSON over HTTP/1.1, Connect with binary protobuf over
//! HTTP/2 cleartext, and gRPC-Web over each. The output is checked by the
//! same [`check_client`] as the other examples (same keys, same values), and
//! the gateway's metrics must have counted every call under the protocol
//! the flags name: a client that quietly fell back to another protocol
//! fails.
//!
//! The client imports code that protoc-gen-es generated into
//! `examples/node/gen/`, committed; the last test regenerates it with the
//! pinned buf and protoc-gen-es into a temporary directory and compares.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use super::{check_client, node_env, run_ok};
use crate::harness::{Gateway, SERVING_MESSAGE, START_TIMEOUT};

/// KtpService calls one run of the client makes: five printed results, and
/// submit-and-wait is two calls.
const CALLS_PER_RUN: f64 = 6.0;

/// Runs the client with `flags` against a fresh sandbox gateway, checks its
/// output, then that the gateway counted its calls under `protocol` only.
fn check_connect_client(flags: &[&str], protocol: &str) {
    let dir = node_env();
    let mut gateway = Gateway::sandbox(&[]);
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("connect-client.mjs"))
        .args(flags)
        .arg(gateway.addr.to_string())
        .current_dir(&dir)
        // The sandbox needs no token; the address is the argument.
        .env_remove("KTP_GATEWAY_TOKEN")
        .env_remove("KTP_GATEWAY_ADDR");
    let name = format!("Node Connect-ES ({})", flags.join(" "));
    check_client(&mut gateway, cmd, &name);

    let counted = calls_by_protocol(&mut gateway);
    assert_eq!(
        counted,
        BTreeMap::from([(protocol.to_owned(), CALLS_PER_RUN)]),
        "{name}: the gateway's ktp_gateway_grpc_requests_total by protocol"
    );
}

/// `ktp_gateway_grpc_requests_total` summed by its `protocol` label, from a
/// scrape of the gateway's metrics port.
fn calls_by_protocol(gateway: &mut Gateway) -> BTreeMap<String, f64> {
    let serving = gateway.process.wait_for_log("serving", START_TIMEOUT, |v| {
        v["message"] == SERVING_MESSAGE
    });
    let addr = serving["metrics_addr"]
        .as_str()
        .expect("metrics_addr in the serving line")
        .to_owned();
    let page = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the scrape")
        .block_on(async {
            reqwest::get(format!("http://{addr}/metrics"))
                .await?
                .error_for_status()?
                .text()
                .await
        })
        .unwrap_or_else(|e| panic!("cannot scrape http://{addr}/metrics: {e}"));

    let mut counted = BTreeMap::new();
    for line in page.lines() {
        let Some(series) = line.strip_prefix("ktp_gateway_grpc_requests_total{") else {
            continue;
        };
        let (labels, value) = series
            .rsplit_once("} ")
            .unwrap_or_else(|| panic!("a series line: {line}"));
        let protocol = labels
            .split(',')
            .find_map(|l| l.strip_prefix("protocol=\""))
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no protocol label: {line}"));
        let value: f64 = value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {line}"));
        *counted.entry(protocol.to_owned()).or_default() += value;
    }
    counted
}

#[test]
fn connect_client_over_connect_json_on_http1() {
    check_connect_client(&["--transport", "connect", "--http", "1.1"], "connect");
}

#[test]
fn connect_client_over_connect_binary_on_http2() {
    check_connect_client(
        &["--transport", "connect", "--binary", "--http", "2"],
        "connect",
    );
}

#[test]
fn connect_client_over_grpc_web_on_http1() {
    check_connect_client(&["--transport", "grpc-web", "--http", "1.1"], "grpc_web");
}

#[test]
fn connect_client_over_grpc_web_on_http2() {
    check_connect_client(&["--transport", "grpc-web", "--http", "2"], "grpc_web");
}

/// The files under `dir`, by path relative to it, with their bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes =
                    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                let relative = path.strip_prefix(root).expect("under the root");
                out.insert(relative.to_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn connect_client_generated_code_is_up_to_date() {
    let dir = node_env();
    let out = tempfile::tempdir().expect("temporary directory");
    // buf.gen.yaml's `out: gen`, under the temporary directory instead of
    // the tree: nothing is written into examples/node.
    let mut cmd = Command::new("npm");
    cmd.args(["run", "--silent", "generate", "--", "--output"])
        .arg(out.path())
        .current_dir(&dir);
    run_ok(cmd, "generate the Connect client's code (npm run generate)");

    let generated = files(&out.path().join("gen"));
    let mut committed = files(&dir.join("gen"));
    // Not generated: it makes the generated .js files ES modules.
    committed.remove(Path::new("package.json"));
    let names = |files: &BTreeMap<PathBuf, Vec<u8>>| files.keys().cloned().collect::<Vec<_>>();
    assert!(
        !generated.is_empty(),
        "npm run generate wrote nothing into {}",
        out.path().display()
    );
    assert_eq!(
        names(&committed),
        names(&generated),
        "examples/node/gen/ has other files than `npm run generate` makes: \
         run it in examples/node, remove the stale ones and commit gen/"
    );
    for (path, bytes) in &generated {
        assert!(
            committed[path] == *bytes,
            "examples/node/gen/{} is not what `npm run generate` makes of today's protos: \
             run it in examples/node and commit gen/",
            path.display()
        );
    }
}
