//! Command-line flags that answer without starting the server.

use crate::harness::run_gateway_to_exit;

#[test]
fn help_names_the_flags_and_exits_zero() {
    let out = run_gateway_to_exit(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.output());
    let help = out.stdout.join("\n");
    for flag in ["--config", "--sandbox", "--help", "--version"] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
    assert!(help.contains("Usage: ktp-gateway"), "{help}");
    assert!(out.stderr.is_empty(), "{}", out.output());
}

#[test]
fn version_prints_name_and_version() {
    let out = run_gateway_to_exit(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.output());
    assert_eq!(out.stdout, ["ktp-gateway 0.1.0"], "{}", out.output());
    assert!(out.stderr.is_empty(), "{}", out.output());
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run_gateway_to_exit(&["--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.output());
    assert!(out.stdout.is_empty(), "{}", out.output());
    assert!(
        out.stderr.join("\n").contains("--no-such-flag"),
        "{}",
        out.output()
    );
}
