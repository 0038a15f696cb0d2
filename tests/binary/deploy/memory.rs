//! The pod's memory limit holds the in-flight and wait caps the binary uses
//! in it.
//!
//! The binary derives `server.max_in_flight` and `wait.max_waiting`, when
//! they are not set, from the memory it may use
//! (`ktp_gateway::resilience::capacity`); in the pod that is the container's
//! `resources.limits.memory`. The caps the pod gets (set in the ConfigMap or
//! env, else derived for that limit), each times its measured memory per
//! call, plus the baseline and the submits' reserve, must fit under the
//! limit: else the kernel kills the pod before the gateway sheds.

use ktp_gateway::{
    config::Settings,
    resilience::capacity::{
        BASELINE_BYTES, PER_CALL_BYTES, PER_WAIT_BYTES, cap_for, memory_for, submit_reserve,
        waits_for,
    },
};
use serde_json::Value;

/// A Kubernetes memory quantity (`256Mi`, `1G`, `268435456`), in bytes.
pub(super) fn quantity_bytes(text: &str) -> Option<u64> {
    const UNITS: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| Some((text.strip_suffix(suffix)?, *unit)))
        .unwrap_or((text, 1));
    number.parse::<u64>().ok()?.checked_mul(unit)
}

/// Pushes a finding unless the container's memory limit holds its cap.
pub(super) fn memory_agrees(container: &Value, settings: &Settings, errors: &mut Vec<String>) {
    let limit = &container["resources"]["limits"]["memory"];
    let Some(text) = limit
        .as_str()
        .map(str::to_owned)
        .or_else(|| limit.as_u64().map(|n| n.to_string()))
    else {
        errors.push(
            "the container has no memory limit (resources.limits.memory): the in-flight cap \
             must be sized for one"
                .into(),
        );
        return;
    };
    let Some(limit_bytes) = quantity_bytes(&text) else {
        errors.push(format!(
            "the container's memory limit {text:?} is not a quantity"
        ));
        return;
    };
    let submits = submit_reserve(
        *settings.submit.max_in_flight,
        *settings.submit.max_image_bytes,
    );
    let (cap, source) = match settings.server.max_in_flight {
        Some(cap) => (*cap, "server.max_in_flight"),
        None => (cap_for(limit_bytes, submits), "derived from the limit"),
    };
    let (waits, waits_source) = match settings.wait.max_waiting {
        Some(waits) => (*waits, "wait.max_waiting"),
        None => (
            waits_for(limit_bytes, submits, cap),
            "derived from the limit",
        ),
    };
    let needed = memory_for(cap, waits, submits);
    if needed > limit_bytes {
        errors.push(format!(
            "the in-flight cap {cap} ({source}) and the wait cap {waits} ({waits_source}) \
             need {needed} bytes ({} KiB per call in flight, {} KiB per waiting call, a {} MiB \
             baseline and {submits} bytes for submits), more than the container's memory \
             limit {text} ({limit_bytes} bytes): the pod would be OOM-killed before it sheds",
            PER_CALL_BYTES / 1024,
            PER_WAIT_BYTES / 1024,
            BASELINE_BYTES >> 20
        ));
    }
}

/// What the base manifest must admit: 600 calls in flight beside the image
/// submits' reserve, and 5,000 waiting calls (issue "waiting at scale").
pub(super) const BASE_MIN_IN_FLIGHT: usize = 600;
/// See [`BASE_MIN_IN_FLIGHT`].
pub(super) const BASE_MIN_WAITING: usize = 5_000;

#[test]
fn quantities() {
    for (text, bytes) in [
        ("256Mi", Some(256 << 20)),
        ("1Gi", Some(1 << 30)),
        ("500Ki", Some(500 << 10)),
        ("256M", Some(256_000_000)),
        ("268435456", Some(268_435_456)),
        ("", None),
        ("Mi", None),
        ("1.5Gi", None),
        ("256MiB", None),
        ("-1Mi", None),
    ] {
        assert_eq!(quantity_bytes(text), bytes, "{text:?}");
    }
}
