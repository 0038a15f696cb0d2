use std::{collections::HashMap, path::Path};

use super::*;

const GIB: u64 = 1024 * MIB;

#[test]
fn limit_to_cap() {
    for (limit, cap) in [
        (256 * MIB, 682),
        (512 * MIB, 1_410),
        (128 * MIB, 318),
        (GIB, 2_867),
        (32 * MIB, MIN_CAP),
        // Clamped below: a tiny pod still takes some calls.
        (20 * MIB, MIN_CAP),
        (16 * MIB, MIN_CAP),
        (0, MIN_CAP),
        // Clamped above: a big machine is not a reason for 200k sockets.
        (24 * GIB, MAX_CAP),
        (u64::MAX, MAX_CAP),
    ] {
        assert_eq!(cap_for(limit, 0), cap, "limit {limit}");
    }
    // The defaults keep 16 × 5,000,000 × 2 bytes for submits.
    let submits = submit_reserve(16, 5_000_000);
    assert_eq!(submits, 160_000_000);
    for (limit, cap, waits) in [
        (256 * MIB, 248, 1_681),
        (448 * MIB, 794, 5_368),
        (512 * MIB, 976, 6_597),
        (GIB, 2_433, 16_424),
        // Submits alone fill a small pod: the floors still hold.
        (128 * MIB, MIN_CAP, MIN_WAITS),
    ] {
        assert_eq!(cap_for(limit, submits), cap, "limit {limit}");
        assert_eq!(waits_for(limit, submits, cap), waits, "limit {limit}");
    }
    assert_eq!(FALLBACK_CAP, cap_for(448 * MIB, submits));
    assert_eq!(FALLBACK_WAITS, waits_for(448 * MIB, submits, FALLBACK_CAP));
    assert_eq!(submit_reserve(usize::MAX, usize::MAX), u64::MAX);
}

/// One budget: both derived caps together fit the limit, with the headroom
/// counted once.
#[test]
fn the_derived_caps_fit_their_limit() {
    let floors = MIN_CAP as u64 * PER_CALL_BYTES + MIN_WAITS as u64 * PER_WAIT_BYTES;
    for mib in [64, 100, 128, 256, 300, 384, 448, 512, 1024, 2048] {
        let limit = mib * MIB;
        let submits = submit_reserve(16, 5_000_000);
        for reserved in [0, submits] {
            if limit < BASELINE_BYTES + reserved + 2 * floors {
                continue;
            }
            let cap = cap_for(limit, reserved);
            let waits = waits_for(limit, reserved, cap);
            let used = memory_for(cap, waits, reserved);
            assert!(used <= limit, "{mib} MiB, reserve {reserved}");
            // Within one call of the budget: nothing left idle.
            let spare = budget(limit, reserved) - (used - BASELINE_BYTES - reserved);
            assert!(spare < PER_WAIT_BYTES, "{mib} MiB: {spare} bytes unused");
        }
    }
    assert_eq!(
        memory_for(794, 5_368, 160_000_000),
        16 * MIB + 160_000_000 + 794 * 72 * 1024 + 5_368 * 16 * 1024
    );
    assert_eq!(memory_for(usize::MAX, 0, 0), u64::MAX);
}

/// A cap set by hand takes its memory from the same budget: the other is
/// what is left.
#[test]
fn a_set_in_flight_cap_leaves_the_rest_to_waits() {
    let submits = submit_reserve(16, 5_000_000);
    let limit = 448 * MIB;
    assert!(waits_for(limit, submits, 100) > waits_for(limit, submits, 612));
    assert_eq!(waits_for(limit, submits, 100_000), MIN_WAITS);
}

#[test]
fn limit_files() {
    for (text, parsed) in [
        ("max\n", Some(None)),
        ("268435456\n", Some(Some(268_435_456))),
        ("9223372036854771712", Some(Some(9_223_372_036_854_771_712))),
        ("", None),
        ("-1", None),
        ("256M", None),
        ("max max", None),
    ] {
        assert_eq!(parse_limit(text), parsed, "{text:?}");
    }
}

#[test]
fn meminfo() {
    let text = "MemFree:  1000 kB\nMemTotal:       24731400 kB\nSwapTotal: 0 kB\n";
    assert_eq!(parse_mem_total(text), Some(24_731_400 * 1024));
    for bad in ["", "MemTotal: lots kB", "MemTotal: 12", "MemTotal: 12 MB"] {
        assert_eq!(parse_mem_total(bad), None, "{bad:?}");
    }
}

#[test]
fn own_cgroup_paths() {
    let v2 = "0::/kubepods.slice/pod1/cri-abc\n";
    assert_eq!(own_v2_path(v2), Some("/kubepods.slice/pod1/cri-abc"));
    assert_eq!(own_v1_memory_path(v2), None);
    let v1 = "5:devices:/\n4:memory:/process_api/d77\n3:cpu,cpuacct:/x\n0::/\n";
    assert_eq!(own_v1_memory_path(v1), Some("/process_api/d77"));
    assert_eq!(own_v2_path(v1), Some("/"));
    let merged = "7:cpuacct,memory:/a/b\n";
    assert_eq!(own_v1_memory_path(merged), Some("/a/b"));
    assert_eq!(own_v1_memory_path("7:memoryx:/a\n"), None);
}

/// A fake file system: (path, content).
type Files<'a> = &'a [(&'a str, &'a str)];

/// `memory_limit` over a fake file system.
fn limit_of(files: Files<'_>) -> Option<MemoryLimit> {
    let files: HashMap<&Path, String> = files
        .iter()
        .map(|(p, c)| (Path::new(*p), (*c).to_owned()))
        .collect();
    memory_limit(|p| files.get(p).cloned())
}

#[test]
fn where_the_limit_comes_from() {
    const MEMINFO: (&str, &str) = ("/proc/meminfo", "MemTotal: 8388608 kB\n"); // 8 GiB
    let v2 = |bytes: u64| MemoryLimit {
        bytes,
        source: LimitSource::CgroupV2,
    };
    let physical = MemoryLimit {
        bytes: 8 * GIB,
        source: LimitSource::PhysicalMemory,
    };
    let cases: &[(&str, Files<'_>, Option<MemoryLimit>)] = &[
        (
            "v2, own cgroup (no cgroup namespace)",
            &[
                ("/proc/self/cgroup", "0::/kubepods/pod1/c1\n"),
                ("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "268435456\n"),
                ("/sys/fs/cgroup/kubepods/memory.max", "max\n"),
                MEMINFO,
            ],
            Some(v2(256 * MIB)),
        ),
        (
            "v2, a parent's limit is lower",
            &[
                ("/proc/self/cgroup", "0::/kubepods/pod1/c1\n"),
                ("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n"),
                ("/sys/fs/cgroup/kubepods/pod1/memory.max", "134217728\n"),
                MEMINFO,
            ],
            Some(v2(128 * MIB)),
        ),
        (
            "v2, cgroup namespace: the root file is the container's",
            &[
                ("/proc/self/cgroup", "0::/\n"),
                ("/sys/fs/cgroup/memory.max", "268435456\n"),
                MEMINFO,
            ],
            Some(v2(256 * MIB)),
        ),
        (
            "v2 unlimited: physical memory",
            &[
                ("/proc/self/cgroup", "0::/\n"),
                ("/sys/fs/cgroup/memory.max", "max\n"),
                MEMINFO,
            ],
            Some(physical),
        ),
        (
            "v2 above physical memory: physical memory",
            &[
                ("/proc/self/cgroup", "0::/\n"),
                ("/sys/fs/cgroup/memory.max", "17179869184\n"),
                MEMINFO,
            ],
            Some(physical),
        ),
        (
            "v1, own memory cgroup",
            &[
                ("/proc/self/cgroup", "4:memory:/docker/abc\n0::/\n"),
                (
                    "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                    "536870912\n",
                ),
                (
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "9223372036854771712\n",
                ),
                MEMINFO,
            ],
            Some(MemoryLimit {
                bytes: 512 * MIB,
                source: LimitSource::CgroupV1,
            }),
        ),
        (
            "v1 unlimited (the huge number): physical memory",
            &[
                ("/proc/self/cgroup", "4:memory:/\n"),
                (
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "9223372036854771712\n",
                ),
                MEMINFO,
            ],
            Some(physical),
        ),
        (
            "an unreadable limit file is skipped",
            &[
                ("/proc/self/cgroup", "0::/\n"),
                ("/sys/fs/cgroup/memory.max", "garbage\n"),
                MEMINFO,
            ],
            Some(physical),
        ),
        ("no cgroup files", &[MEMINFO], Some(physical)),
        (
            "no meminfo: the cgroup limit alone",
            &[("/sys/fs/cgroup/memory.max", "268435456\n")],
            Some(v2(256 * MIB)),
        ),
        ("nothing readable", &[], None),
    ];
    for (name, files, expected) in cases {
        assert_eq!(limit_of(files), *expected, "{name}");
    }
}

#[test]
fn an_explicit_setting_wins() {
    assert_eq!(
        caps(Some(7), Some(9), 0),
        Caps {
            in_flight: 7,
            waiting: 9
        }
    );
}

#[test]
fn this_machine_gives_caps_in_bounds() {
    let reserve = submit_reserve(16, 5_000_000);
    let derived = caps(None, None, reserve);
    assert!(
        (MIN_CAP..=MAX_CAP).contains(&derived.in_flight),
        "{derived:?}"
    );
    assert!(
        (MIN_WAITS..=MAX_WAITS).contains(&derived.waiting),
        "{derived:?}"
    );
    // A set in-flight cap leaves the waits what it does not take.
    let set = caps(Some(MIN_CAP), None, reserve);
    assert!(set.waiting >= derived.waiting, "{set:?} {derived:?}");
}
