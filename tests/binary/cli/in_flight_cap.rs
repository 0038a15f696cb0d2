//! The in-flight and wait caps at start: derived from the memory the process
//! may use when `server.max_in_flight` / `wait.max_waiting` are not set, and
//! logged with their inputs.

use ktp_gateway::resilience::capacity::{
    BASELINE_BYTES, MAX_CAP, MIN_CAP, PER_CALL_BYTES, PER_WAIT_BYTES, cap_for, memory_limit,
    submit_reserve, waits_for,
};
use serde_json::Value;

use crate::harness::{Gateway, LOG_TIMEOUT};

const CAP_MESSAGE: &str = "in-flight cap";

fn cap_line(gateway: &mut Gateway) -> Value {
    gateway
        .process
        .wait_for_log("with the in-flight cap", LOG_TIMEOUT, |v| {
            v["message"] == CAP_MESSAGE
        })
}

#[test]
fn an_unset_cap_is_derived_from_memory_and_logged() {
    let mut gateway = Gateway::sandbox(&[]);
    let line = cap_line(&mut gateway);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["source"], "derived", "{line}");
    assert_eq!(
        line["per_call_bytes"].as_u64(),
        Some(PER_CALL_BYTES),
        "{line}"
    );
    assert_eq!(
        line["baseline_bytes"].as_u64(),
        Some(BASELINE_BYTES),
        "{line}"
    );
    let limit = line["limit_bytes"].as_u64().expect("limit_bytes");
    let cap = line["max_in_flight"].as_u64().expect("max_in_flight");
    // The default submit settings: 16 images of 5,000,000 bytes.
    let submits = submit_reserve(16, 5_000_000);
    assert_eq!(
        line["submit_reserve_bytes"].as_u64(),
        Some(submits),
        "{line}"
    );
    assert_eq!(cap, cap_for(limit, submits) as u64, "{line}");
    assert!((MIN_CAP as u64..=MAX_CAP as u64).contains(&cap), "{line}");
    // What this test process reads in the same place (same machine, same
    // cgroup) is what the binary logged.
    let here = memory_limit(|p| std::fs::read_to_string(p).ok()).expect("Linux memory figures");
    assert_eq!(limit, here.bytes, "{line}");
    assert_eq!(line["limit_source"], here.source.as_str(), "{line}");
    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
}

#[test]
fn a_set_cap_wins_and_is_logged() {
    let mut gateway = Gateway::sandbox(&[("KTP_GATEWAY__SERVER__MAX_IN_FLIGHT", "37")]);
    let line = cap_line(&mut gateway);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["max_in_flight"].as_u64(), Some(37), "{line}");
    assert_eq!(line["source"], "server.max_in_flight", "{line}");
    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
}

fn wait_cap_line(gateway: &mut Gateway) -> Value {
    gateway
        .process
        .wait_for_log("with the wait cap", LOG_TIMEOUT, |v| {
            v["message"] == "wait cap"
        })
}

/// The wait cap comes from the same budget: derived from what the in-flight
/// cap (here set by hand) leaves, logged with its inputs.
#[test]
fn an_unset_wait_cap_is_derived_from_what_the_in_flight_cap_leaves() {
    let mut gateway = Gateway::sandbox(&[("KTP_GATEWAY__SERVER__MAX_IN_FLIGHT", "37")]);
    let line = wait_cap_line(&mut gateway);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["source"], "derived", "{line}");
    assert_eq!(line["max_in_flight"].as_u64(), Some(37), "{line}");
    assert_eq!(
        line["per_wait_bytes"].as_u64(),
        Some(PER_WAIT_BYTES),
        "{line}"
    );
    let limit = line["limit_bytes"].as_u64().expect("limit_bytes");
    let submits = submit_reserve(16, 5_000_000);
    let expected = waits_for(limit, submits, 37) as u64;
    assert_eq!(line["max_waiting"].as_u64(), Some(expected), "{line}");
    assert_eq!(
        gateway.stop().code(),
        Some(0),
        "{}",
        gateway.process.output()
    );

    let mut gateway = Gateway::sandbox(&[("KTP_GATEWAY__WAIT__MAX_WAITING", "4321")]);
    let line = wait_cap_line(&mut gateway);
    assert_eq!(line["max_waiting"].as_u64(), Some(4321), "{line}");
    assert_eq!(line["source"], "wait.max_waiting", "{line}");
    assert_eq!(gateway.stop().code(), Some(0));
}
