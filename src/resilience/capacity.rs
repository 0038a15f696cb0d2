//! The default `server.max_in_flight` and `wait.max_waiting`: derived at
//! start from the memory the process may use, so that shedding
//! (RESOURCE_EXHAUSTED `OVERLOADED`) starts well before the kernel's OOM
//! killer would end the pod.
//!
//! The rule (README, "Overload shedding"): the limit is the smaller of the
//! cgroup's memory limit (v2 `memory.max`, else v1 `memory.limit_in_bytes`,
//! of the process's own cgroup and its ancestors) and physical memory
//! (`MemTotal`). One budget, with the headroom taken once: (limit −
//! [`BASELINE_BYTES`] − the submits' reserve) ÷ [`HEADROOM_DIVISOR`]. Calls in
//! flight get [`IN_FLIGHT_SHARE`] of it at [`PER_CALL_BYTES`] each, clamped to
//! [`MIN_CAP`]..=[`MAX_CAP`]; waiting calls get what the in-flight cap leaves
//! of it at [`PER_WAIT_BYTES`] each, clamped to [`MIN_WAITS`]..=[`MAX_WAITS`].
//! The reserve ([`submit_reserve`]) keeps room for `submit.max_in_flight`
//! images of `submit.max_image_bytes` at once, which no other call may take.
//! Parsing is pure (and tested); reading files is a thin shell around it.

use std::path::{Path, PathBuf};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Memory the process holds before its first call (runtime, metrics, TLS
/// roots, log buffers): 8.7 MiB idle RSS measured (`bench/README.md`),
/// rounded up with a margin for the allocator's own growth.
pub const BASELINE_BYTES: u64 = 16 * MIB;

/// Memory one call in flight holds at the peak, on the costliest upstream
/// path, HTTPS with HTTP/1.1: the connection's hyper and rustls buffers, the
/// h2 stream, the call's futures. `bench/perf/run` against a 100 ms upstream
/// measured (peak RSS − idle RSS) ÷ in flight at 66-72 KiB there (1,000 and
/// 2,000 in flight, two runs), 55-61 KiB over plain HTTP/1.1 and 26-28 KiB
/// over HTTP/2 (`bench/README.md`, "2026-12-06: where the memory goes").
pub const PER_CALL_BYTES: u64 = 72 * KIB;

/// Memory one call holds while it waits for its job (`GetKtpResult` with
/// `wait`, `ExtractKtp` after its submit): its HTTP/2 stream, its futures, its
/// share of a poll; polls are paced (`wait.max_polls_in_flight`) through a
/// few upstream connections, so none is its own. `bench/load/run --waits`
/// measured 15.0 KiB at 3,000 waits arriving at once and 12.7 KiB at 10,000
/// (`bench/README.md`, "waiting calls"), rounded up.
pub const PER_WAIT_BYTES: u64 = 16 * KIB;

/// The part of the budget calls in flight may take, as a fraction
/// (numerator, denominator): waiting calls take the rest. Two fifths: a
/// 448 MiB pod admits over 600 calls in flight and over 5,000 waiting.
pub const IN_FLIGHT_SHARE: (u64, u64) = (2, 5);

/// Calls may take half of what is left after the baseline: the other half
/// absorbs allocator fragmentation, log bursts and the kernel's socket
/// buffers, which the cgroup also charges to the pod.
pub const HEADROOM_DIVISOR: u64 = 2;

/// Never fewer: below this a small pod would shed ordinary traffic.
pub const MIN_CAP: usize = 64;

/// Never more, however large the machine: beyond this one process holds
/// more sockets and upstream connections than is sensible to run.
pub const MAX_CAP: usize = 16_384;

/// Never fewer waiting calls: below this a small pod would refuse ordinary
/// waits.
pub const MIN_WAITS: usize = 64;

/// Never more waiting calls, however large the machine: each holds an
/// HTTP/2 stream of a client connection.
pub const MAX_WAITS: usize = 100_000;

/// Memory one image submit in flight holds, per byte of the image: its
/// base64 body (4/3) plus the gRPC receive buffer while the message arrives;
/// measured 1.92 at 16 in flight (`bench/README.md`, "Memory of image
/// submits"), rounded up.
pub const SUBMIT_BYTES_PER_IMAGE_BYTE: u64 = 2;

/// The caps when no memory figure could be read (not Linux): the ones
/// derived for a 448 MiB pod, the base manifest's limit, at the default
/// submit settings (16 images of 5,000,000 bytes).
pub const FALLBACK_CAP: usize = 794;
/// See [`FALLBACK_CAP`].
pub const FALLBACK_WAITS: usize = 5_368;

/// Where the memory limit came from (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// cgroup v2 `memory.max`.
    CgroupV2,
    /// cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// `MemTotal` of `/proc/meminfo`: no cgroup limit below it.
    PhysicalMemory,
}

impl LimitSource {
    /// The name in the start log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup v2 memory.max",
            Self::CgroupV1 => "cgroup v1 memory.limit_in_bytes",
            Self::PhysicalMemory => "MemTotal",
        }
    }
}

/// The memory the process may use, and where that figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Which file said so.
    pub source: LimitSource,
}

/// Memory kept for image submits: `submits` (`submit.max_in_flight`) images
/// of `max_image_bytes` (`submit.max_image_bytes`) held at once.
pub fn submit_reserve(submits: usize, max_image_bytes: usize) -> u64 {
    let submits = u64::try_from(submits).unwrap_or(u64::MAX);
    let image = u64::try_from(max_image_bytes).unwrap_or(u64::MAX);
    submits
        .saturating_mul(image)
        .saturating_mul(SUBMIT_BYTES_PER_IMAGE_BYTE)
}

/// What calls in flight and waiting calls share of `limit_bytes`, with
/// `reserved_bytes` kept for submits: the headroom taken once.
pub fn budget(limit_bytes: u64, reserved_bytes: u64) -> u64 {
    limit_bytes
        .saturating_sub(BASELINE_BYTES)
        .saturating_sub(reserved_bytes)
        / HEADROOM_DIVISOR
}

/// The in-flight cap for `limit_bytes` of memory with `reserved_bytes`
/// kept for submits, by the rule of this module.
pub fn cap_for(limit_bytes: u64, reserved_bytes: u64) -> usize {
    let (share, of) = IN_FLIGHT_SHARE;
    let calls = budget(limit_bytes, reserved_bytes) / of * share / PER_CALL_BYTES;
    usize::try_from(calls)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CAP, MAX_CAP)
}

/// The wait cap for `limit_bytes` of memory with `reserved_bytes` kept for
/// submits and `in_flight` calls in flight (derived or set): what they
/// leave of the budget.
pub fn waits_for(limit_bytes: u64, reserved_bytes: u64, in_flight: usize) -> usize {
    let calls = u64::try_from(in_flight)
        .unwrap_or(u64::MAX)
        .saturating_mul(PER_CALL_BYTES);
    let waits = budget(limit_bytes, reserved_bytes).saturating_sub(calls) / PER_WAIT_BYTES;
    usize::try_from(waits)
        .unwrap_or(usize::MAX)
        .clamp(MIN_WAITS, MAX_WAITS)
}

/// Memory `cap` calls in flight and `waits` waiting calls take at most by
/// the same figures: the baseline, the submits' reserve, and each cap times
/// its memory per call (for checking manifests).
pub fn memory_for(cap: usize, waits: usize, reserved_bytes: u64) -> u64 {
    let cap = u64::try_from(cap).unwrap_or(u64::MAX);
    let waits = u64::try_from(waits).unwrap_or(u64::MAX);
    BASELINE_BYTES
        .saturating_add(reserved_bytes)
        .saturating_add(cap.saturating_mul(PER_CALL_BYTES))
        .saturating_add(waits.saturating_mul(PER_WAIT_BYTES))
}

/// A cgroup limit file's content: `Some(None)` for "max" (no limit),
/// `Some(Some(bytes))` for a number, `None` for anything else.
pub fn parse_limit(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let rest = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut words = rest.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(KIB),
        _ => None,
    }
}

/// The process's cgroup v2 path from `/proc/self/cgroup` (the `0::` line).
pub fn own_v2_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The process's cgroup v1 path in the memory hierarchy, from
/// `/proc/self/cgroup` (the line whose controllers include `memory`).
pub fn own_v1_memory_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })
}

/// `file` in the cgroup directory `path` under `mount` and in every ancestor
/// up to the mount itself: a limit anywhere above applies too.
fn candidates(mount: &str, path: Option<&str>, file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dir = Path::new(path.unwrap_or("/"));
    loop {
        let relative = dir.strip_prefix("/").unwrap_or(dir);
        out.push(Path::new(mount).join(relative).join(file));
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    out
}

/// The smallest limit among the readable `files`: `None` when none could be
/// read, `Some(None)` when every readable one says "max".
fn smallest(files: &[PathBuf], read: &impl Fn(&Path) -> Option<String>) -> Option<Option<u64>> {
    let limits: Vec<Option<u64>> = files
        .iter()
        .filter_map(|f| read(f).as_deref().and_then(parse_limit))
        .collect();
    if limits.is_empty() {
        return None;
    }
    Some(limits.into_iter().flatten().min())
}

/// The memory the process may use, read through `read` (a file's content,
/// `None` when it cannot be read): the cgroup limit (v2, else v1) when it is
/// below physical memory, else physical memory. `None`: nothing readable.
pub fn memory_limit(read: impl Fn(&Path) -> Option<String>) -> Option<MemoryLimit> {
    let own = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
    let v2 = candidates("/sys/fs/cgroup", own_v2_path(&own), "memory.max");
    let cgroup = match smallest(&v2, &read) {
        Some(limit) => limit.map(|bytes| (bytes, LimitSource::CgroupV2)),
        None => {
            let v1 = candidates(
                "/sys/fs/cgroup/memory",
                own_v1_memory_path(&own),
                "memory.limit_in_bytes",
            );
            smallest(&v1, &read)
                .flatten()
                .map(|bytes| (bytes, LimitSource::CgroupV1))
        }
    };
    let physical = read(Path::new("/proc/meminfo")).and_then(|m| parse_mem_total(&m));
    match (cgroup, physical) {
        (Some((bytes, source)), Some(total)) if bytes < total => {
            Some(MemoryLimit { bytes, source })
        }
        (_, Some(total)) => Some(MemoryLimit {
            bytes: total,
            source: LimitSource::PhysicalMemory,
        }),
        (Some((bytes, source)), None) => Some(MemoryLimit { bytes, source }),
        (None, None) => None,
    }
}

/// The two caps of one process: calls in flight and waiting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// `server.max_in_flight`.
    pub in_flight: usize,
    /// `wait.max_waiting`.
    pub waiting: usize,
}

/// `server.max_in_flight` and `wait.max_waiting`: each setting when given,
/// else derived from this process's memory limit less `reserved_bytes` for
/// submits. Logs each cap and its inputs (INFO "in-flight cap", "wait cap").
pub fn caps(
    in_flight_setting: Option<usize>,
    waiting_setting: Option<usize>,
    reserved_bytes: u64,
) -> Caps {
    let limit = match (in_flight_setting, waiting_setting) {
        (Some(_), Some(_)) => None,
        _ => memory_limit(|path| std::fs::read_to_string(path).ok()),
    };
    let in_flight = match (in_flight_setting, limit) {
        (Some(cap), _) => {
            tracing::info!(
                max_in_flight = cap,
                source = "server.max_in_flight",
                "in-flight cap"
            );
            cap
        }
        (None, Some(limit)) => {
            let cap = cap_for(limit.bytes, reserved_bytes);
            tracing::info!(
                max_in_flight = cap,
                source = "derived",
                limit_source = limit.source.as_str(),
                limit_bytes = limit.bytes,
                per_call_bytes = PER_CALL_BYTES,
                baseline_bytes = BASELINE_BYTES,
                submit_reserve_bytes = reserved_bytes,
                "in-flight cap"
            );
            cap
        }
        (None, None) => {
            tracing::warn!(
                max_in_flight = FALLBACK_CAP,
                source = "fallback",
                "in-flight cap: the memory limit could not be read; set server.max_in_flight"
            );
            FALLBACK_CAP
        }
    };
    let waiting = match (waiting_setting, limit) {
        (Some(cap), _) => {
            tracing::info!(max_waiting = cap, source = "wait.max_waiting", "wait cap");
            cap
        }
        (None, Some(limit)) => {
            let cap = waits_for(limit.bytes, reserved_bytes, in_flight);
            tracing::info!(
                max_waiting = cap,
                source = "derived",
                limit_source = limit.source.as_str(),
                limit_bytes = limit.bytes,
                per_wait_bytes = PER_WAIT_BYTES,
                max_in_flight = in_flight,
                per_call_bytes = PER_CALL_BYTES,
                baseline_bytes = BASELINE_BYTES,
                submit_reserve_bytes = reserved_bytes,
                "wait cap"
            );
            cap
        }
        (None, None) => {
            tracing::warn!(
                max_waiting = FALLBACK_WAITS,
                source = "fallback",
                "wait cap: the memory limit could not be read; set wait.max_waiting"
            );
            FALLBACK_WAITS
        }
    };
    Caps { in_flight, waiting }
}

#[cfg(test)]
#[path = "capacity_tests.rs"]
mod tests;
