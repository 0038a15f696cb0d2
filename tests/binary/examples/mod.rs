//! The example clients in `examples/` (Python and Node.js) against the real
//! binary in sandbox mode: the contract works from other languages, rich
//! errors included.
//!
//! Each client is set up the way its README says, into git-ignored places:
//! the Python one gets a venv at `.tools/py-examples` (pinned
//! `examples/python/requirements.txt`) and stubs generated from `proto/` by
//! grpcio-tools into a temporary directory; the Node one gets `npm ci` in
//! `examples/node` (its committed `package-lock.json`) and loads `proto/` at
//! run time. Installs are redone only when the pins change. A missing
//! `python3`, `node` or `npm` fails the test: nothing is skipped.
//!
//! Both clients print one JSON object per call (success, rate limited, empty
//! id, submit and wait, a read mask with the checks); the assertions below are shared, and every request id a client
//! decoded is matched with the gateway's own log line for that call.
//!
//! [`node_connect`]: the second Node client, `connect-client.mjs` (Connect-ES
//! and the code protoc-gen-es generated into `examples/node/gen/`), over
//! each of its transports, and that generated code against the protos.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use crate::harness::{Gateway, run_to_exit};
use serde_json::{Value, json};

mod node_connect;

/// The Python example's virtual environment (`.tools/` is git-ignored).
const PY_VENV: &str = ".tools/py-examples";
/// Records what the venv was installed from, to redo it when that changes.
const PY_STAMP: &str = "installed-from.txt";
/// Records the lock file `node_modules` was installed from.
const NODE_STAMP: &str = "node_modules/.ktp-gateway-installed-lock.json";

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to completion (no time limit: installs can be slow on a busy
/// machine) and panics with its output unless it succeeds.
fn run_ok(mut cmd: Command, what: &str) {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "cannot {what}: {cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// `program --version`, or a panic saying the examples need it.
fn require(program: &str) -> String {
    let output = Command::new(program).arg("--version").output();
    match output {
        Ok(out) if out.status.success() => {
            let text = [out.stdout, out.stderr].concat();
            String::from_utf8_lossy(&text).trim().to_owned()
        }
        _ => panic!(
            "`{program}` is not runnable: the example clients in examples/ need python3 \
             (with venv and pip) and Node.js with npm on PATH"
        ),
    }
}

/// The venv's Python, installing the pinned requirements when needed.
fn python_env() -> PathBuf {
    let python3 = require("python3");
    let venv = repo().join(PY_VENV);
    let python = venv.join("bin/python");
    let requirements = repo().join("examples/python/requirements.txt");
    let wanted = format!(
        "{python3}\n{}",
        fs::read_to_string(&requirements).expect("read examples/python/requirements.txt")
    );
    let stamp = venv.join(PY_STAMP);
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return python;
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "venv", "--clear"]).arg(&venv);
    run_ok(cmd, "create the Python examples' venv");
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(&requirements);
    run_ok(cmd, "install examples/python/requirements.txt");
    fs::write(&stamp, wanted).expect("write the venv stamp");
    python
}

/// Generates the Python stubs of `proto/ktp/v1/ktp.proto` into `out`, as a
/// service team's build would. `google.type.Date` comes from
/// googleapis-common-protos, so only the contract itself is generated.
fn generate_python_stubs(python: &Path, out: &Path) {
    let mut cmd = Command::new(python);
    cmd.current_dir(repo())
        .args(["-m", "grpc_tools.protoc", "-I", "proto"])
        .arg(format!("--python_out={}", out.display()))
        .arg(format!("--grpc_python_out={}", out.display()))
        .arg("proto/ktp/v1/ktp.proto");
    run_ok(cmd, "generate the Python stubs with grpcio-tools");
}

/// `examples/node`, its `node_modules` installed. Every Node test calls it:
/// the first one installs, the others wait for it (two `npm ci` in one
/// directory at once would trip over each other).
fn node_env() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(install_node_env).clone()
}

/// `examples/node/node_modules`, installed with `npm ci` (devDependencies
/// too: buf and protoc-gen-es) when missing or older than the committed
/// lock file.
fn install_node_env() -> PathBuf {
    require("node");
    require("npm");
    let dir = repo().join("examples/node");
    let lock = fs::read_to_string(dir.join("package-lock.json"))
        .expect("read examples/node/package-lock.json");
    let stamp = dir.join(NODE_STAMP);
    if fs::read_to_string(&stamp).is_ok_and(|s| s == lock) {
        return dir;
    }
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir);
    run_ok(cmd, "install the Node example's dependencies (npm ci)");
    fs::write(&stamp, lock).expect("write the node_modules stamp");
    dir
}

/// Runs one example client against `gateway` and checks what it printed.
fn check_client(gateway: &mut Gateway, cmd: Command, name: &str) {
    let exited = run_to_exit(cmd);
    let output = exited.output();
    assert!(
        exited.status.success(),
        "the {name} example client failed ({})\n{output}",
        exited.status
    );
    let calls: Vec<Value> = exited
        .stdout
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{name} printed a non-JSON line ({e}): {line}\n{output}")
            })
        })
        .collect();
    assert_eq!(calls.len(), 5, "{name}: one line per call\n{output}");

    let expected = [
        json!({
            "reference_id": "REFERENCE_ID_KTP",
            "code": "OK",
            "full_name": "SITI CONTOH",
            "gender_value": "GENDER_FEMALE",
        }),
        json!({
            "reference_id": "REFERENCE_ID_ERROR_RATE_LIMITED",
            "code": "UNAVAILABLE",
            "reason": "UPSTREAM_RATE_LIMITED",
            "domain": "ktp-gateway",
            // Every error names the call's (valid) reference id.
            "metadata": {
                "upstream_http_status": "429",
                "reference_id": "REFERENCE_ID_ERROR_RATE_LIMITED",
            },
            "retry_delay_seconds": 2.0,
        }),
        json!({
            "reference_id": "",
            "code": "INVALID_ARGUMENT",
            "reason": "INVALID_REFERENCE_ID",
            "domain": "ktp-gateway",
            "metadata": {"constraint": "required"},
            "field_violations": ["reference_id"],
        }),
        json!({
            "call": "submit_and_wait",
            "code": "OK",
            "full_name": "SITI CONTOH",
        }),
        json!({
            "call": "read_mask_and_checks",
            "code": "OK",
            "fields": ["checks", "full_name", "reference_id"],
            "checks": {
                "nik_format": "CHECK_RESULT_PASS",
                "nik_birth_date": "CHECK_RESULT_PASS",
                "nik_gender": "CHECK_RESULT_FAIL",
                "nik_province": "CHECK_RESULT_PASS",
            },
        }),
    ];
    for (call, expected) in calls.iter().zip(&expected) {
        for (key, want) in expected.as_object().expect("an object") {
            let got = &call[key];
            // Python prints 2.0 and Node 2: compare numbers as numbers.
            let same = match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) => g == w,
                _ => got == want,
            };
            assert!(
                same,
                "{name}: {key} is {got}, expected {want}, in {call}\n{output}"
            );
        }
    }

    // The request id each client read (x-request-id on success, RequestInfo
    // on errors) names the gateway's log line of that very call.
    for call in &calls {
        let request_id = call["request_id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| panic!("{name}: no request id in {call}\n{output}"));
        let log = gateway.call_log(request_id);
        assert_eq!(log["grpc_code"], call["code"], "{name}: {log}");
    }
    // The submitted job is the one whose result came back (a UUID the
    // gateway generated, as the client sent none).
    let waited = &calls[3];
    assert_eq!(
        waited["reference_id"], waited["submitted_reference_id"],
        "{name}: {waited}"
    );
    let id = waited["reference_id"].as_str().unwrap_or_default();
    assert!(
        id.len() == 36
            && id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{name}: a lower-case UUID, got {id:?}"
    );
}

#[test]
fn python_client_calls_the_sandbox_and_decodes_rich_errors() {
    let python = python_env();
    let generated = tempfile::tempdir().expect("temporary directory");
    generate_python_stubs(&python, generated.path());

    let mut gateway = Gateway::sandbox(&[]);
    let mut cmd = Command::new(&python);
    cmd.arg(repo().join("examples/python/client.py"))
        .arg(gateway.addr.to_string())
        .env("PYTHONPATH", generated.path());
    check_client(&mut gateway, cmd, "Python");
}

#[test]
fn node_client_calls_the_sandbox_and_decodes_rich_errors() {
    let dir = node_env();

    let mut gateway = Gateway::sandbox(&[]);
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("client.js"))
        .arg(gateway.addr.to_string())
        .current_dir(&dir);
    check_client(&mut gateway, cmd, "Node");
}
