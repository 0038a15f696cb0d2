//! The test command (`scripts/test`) runs the grpcurl the tests are written
//! for: `GRPCURL` names one to use, and any other version than 1.8.6 stops
//! the command before a test runs. `cargo` and `promtool` are stand-ins on
//! `PATH` here, so the command under test never runs the suite itself.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use crate::harness::run_to_exit;

/// Printed by the stand-in `cargo`: the command went on to the tests.
const RAN_THE_TESTS: &str = "STAND-IN CARGO RAN";

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Runs `scripts/test` with a grpcurl that says `version`, and stand-ins for
/// `cargo` and `promtool` first on `PATH`.
fn run_test_command(version: &str) -> crate::harness::Exited {
    let dir = tempfile::tempdir().expect("temp dir");
    let grpcurl = script(
        dir.path(),
        "grpcurl",
        &format!("echo 'grpcurl {version}' >&2"),
    );
    script(dir.path(), "cargo", &format!("echo '{RAN_THE_TESTS}'"));
    script(dir.path(), "promtool", "echo 'promtool, version 0.0.0'");
    let path = std::env::join_paths(std::iter::once(dir.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test"))
        .env("PATH", path)
        .env("GRPCURL", &grpcurl)
        .env_remove("PROMTOOL");
    let out = run_to_exit(cmd);
    drop(dir);
    out
}

#[test]
fn another_grpcurl_version_stops_the_test_command() {
    let out = run_test_command("v1.9.1");
    assert!(!out.status.success(), "{}", out.output());
    assert!(
        !out.stdout.iter().any(|l| l.contains(RAN_THE_TESTS)),
        "the tests ran with grpcurl 1.9.1\n{}",
        out.output()
    );
    let said = out.stderr.join("\n");
    for part in ["grpcurl v1.9.1", "1.8.6", "GRPCURL"] {
        assert!(
            said.contains(part),
            "{part:?} missing from:\n{}",
            out.output()
        );
    }
}

#[test]
fn the_grpcurl_named_by_grpcurl_is_used_when_it_is_1_8_6() {
    let out = run_test_command("v1.8.6");
    assert!(out.status.success(), "{}", out.output());
    assert!(
        out.stdout.iter().any(|l| l.contains(RAN_THE_TESTS)),
        "{}",
        out.output()
    );
    assert!(
        out.stdout.iter().any(|l| l.starts_with("grpcurl v1.8.6 (")),
        "the version it runs is shown\n{}",
        out.output()
    );
}
