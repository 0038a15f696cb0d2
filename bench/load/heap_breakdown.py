#!/usr/bin/env python3
"""The gateway's heap at its peak, by owner: what `bench/load/heap` prints.

Reads heaptrack's folded stacks of the bytes live at the peak
(`heaptrack_print --flamegraph-cost-type peak -F FILE`), puts every stack in
one bucket by the frames it holds (first rule that matches), and prints each
bucket in MiB, per waiting call (÷ the waits in flight) and, for the
upstream connections' buckets, per connection (÷ the most open at once).

    heap_breakdown.py FOLDED WAITS CONNECTIONS [--sites]

`--sites` also lists every allocation site of at least 16 bytes per wait,
with the last frames of its stack, to see what a bucket holds.
"""

import re
import sys

# Prefixes of the bucket names: the part of the gateway that owns them.
GROUPS = {
    "S": "gRPC side of each call (h2, hyper, tonic, the call layer, the handler)",
    "W": "the wait (upstream/wait: the shared poll)",
    "G": "upstream GETs queued or in flight",
    "U": "upstream HTTP/1.1 connections",
    "L": "logging",
    "O": "other",
}


def demangle(frame):
    """heaptrack's legacy-mangled Rust symbol, readable."""
    for a, b in (
        ("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("..", "::"), ("$C$", ","),
        ("$u7b$", "{"), ("$u7d$", "}"), ("$RF$", "&"), ("$BP$", "*"),
        ("$u5b$", "["), ("$u5d$", "]"),
    ):
        frame = frame.replace(a, b)
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    frame = re.sub(r" \([^)]*\.rs\)$", "", frame)
    # Generic arguments out, `<T as Trait>` kept.
    for _ in range(8):
        frame = re.sub(
            r"<([^<>]*)>",
            lambda m: ("{" + m.group(1) + "}") if " as " in m.group(1) else "",
            frame,
        )
    return frame


def load(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if n.isdigit():
                rows.append((int(n), [demangle(x) for x in stack.split(";")]))
    rows.sort(key=lambda r: -r[0])
    return rows


def classify(frames):
    """The bucket of one stack (outermost frame first)."""
    j = " ; ".join(frames)
    if "tokio::runtime::task::core::Cell::new" in j:
        if "Polls::join" in j:
            return "W poll task (tokio task running Polls::run: its whole future)"
        if "hyper::proto::h2::server" in j:
            return "S hyper's task per h2 stream (H2Stream)"
        if "connect_to" in j or "Exec::execute" in j:
            return "U connection task (hyper HTTP/1.1 dispatcher)"
        if "Coalesce" in j:
            return "G coalescing: task per shared request"
        return "O other tasks"
    if "telemetry" in j or "tracing_appender" in j:
        return "L log queue and lines"
    if "Polls::join" in j:
        if "watch::channel" in j:
            return "W watch channel of the latest answer (Option<Answer>)"
        if "hashbrown" in j:
            return "W map of polls by id"
        return "W Poll (Arc) and its key"
    if "Polls::run" in j and "Coalesce" not in j and "UpstreamClient" not in j:
        return "W poll task, other (per-GET Call, span)"
    if "hyper::client::dispatch::channel" in j:
        return "U request channel into the connection (tokio mpsc block)"
    if "WriteBuf::new" in j or "Buffered::new" in j:
        return "U write buffer (8 KiB)"
    if "hyper::proto::h1" in j and ("poll_read_from_io" in j or "BytesMut" in j):
        return "U read buffer"
    if any(k in j for k in ("connect_to", "reqwest::connect", "PollEvented",
                            "registration_set", "one_connection_for")):
        return "U connector, socket registration, pool"
    if "hyper::proto::h1" in j:
        return "U other HTTP/1.1 state"
    if "Coalesce::join" in j and "watch::channel" in j:
        return "G coalescing: channel per shared request"
    if "UpstreamClient" in j or "reqwest" in j or "hyper_util::client" in j:
        return "G the request: reqwest/hyper futures, headers, URL"
    if "Coalesce" in j:
        return "G coalescing, other (the shared request's future, waiting for a slot)"
    if "KtpServiceServer as tower_service::Service}::call" in j and "Box::pin" in j \
            and "Grpc::unary" not in j:
        return "S tonic's boxed future per call (KtpServiceServer::call)"
    if "KtpApi as" in j and "Box::pin" in j:
        return "S the handler's boxed future (KtpService for KtpApi)"
    if "Recorded" in j and "Box::pin" in j:
        return "S call layer futures (Recorded, Gated)"
    if "Recorded" in j or "Call::new" in j or "ktp_gateway::grpc" in j:
        return "S call state (Arc<Call>, request id)"
    if "Recv::recv_data" in j or "Deque::push_back" in j:
        return "S h2 receive queue (slab of frames, its high-water mark)"
    if "h2::" in j:
        return "S h2 stream state (store)"
    if "tonic" in j:
        return "S tonic, other"
    return "O other (start-up, runtime, metrics)"


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    rows = load(argv[1])
    waits, connections = float(argv[2]), max(float(argv[3]), 1.0)
    buckets = {}
    for size, frames in rows:
        key = classify(frames)
        buckets[key] = buckets.get(key, 0) + size
    total = sum(buckets.values())
    print(f"heap at its peak: {total / 1048576:.1f} MiB; per wait: ÷ {waits:.0f} waits; "
          f"per connection: ÷ {connections:.0f} upstream connections")
    print(f"{'MiB':>7} | {'KiB/wait':>8} | {'KiB/conn':>8} | what")
    for group, title in GROUPS.items():
        items = sorted(((k, v) for k, v in buckets.items() if k[0] == group),
                       key=lambda kv: -kv[1])
        if not items:
            continue
        sub = sum(v for _, v in items)
        conn = f"{sub / 1024 / connections:8.2f}" if group == "U" else " " * 8
        print(f"{sub / 1048576:7.2f} | {sub / 1024 / waits:8.2f} | {conn} | {title}")
        for k, v in items:
            conn = f"{v / 1024 / connections:8.2f}" if group == "U" else " " * 8
            print(f"{v / 1048576:7.2f} | {v / 1024 / waits:8.2f} | {conn} |   {k[2:]}")
    if "--sites" in argv:
        print("\nallocation sites, bytes per wait at the peak:")
        for size, frames in rows:
            if size / waits < 16:
                break
            keep = [f[:100] for f in frames if re.search(
                r"(hyper|h2::|tonic|ktp_gateway|reqwest|tokio::sync|tokio::task::spawn|"
                r"slab|hashbrown|Box::pin|Arc::new)", f)]
            print(f"{size / waits:8.0f} B  {classify(frames)[:44]:44} :: "
                  + " > ".join(keep[-4:]))


if __name__ == "__main__":
    main(sys.argv)
