//! Tests of the compiled `ktp-gateway` binary, run as a subprocess (clean
//! environment, ephemeral ports, JSON logs) and checked from the outside,
//! the way an operator, Kubernetes or a client in another language sees it.
//! One test binary, one module per area, so `cargo test --test binary
//! <area>::` runs one area:
//!
//! - [`cli`]: flags, configuration errors, `--sandbox` end to end, SIGTERM,
//!   grpcurl.
//! - [`deploy`]: the rendered Kubernetes manifests agree with the binary
//!   (probes run kubelet-style).
//! - [`observability`]: alert rules and dashboard against a live scrape,
//!   with promtool.
//! - [`examples`]: the Python and Node example clients (grpc-js, and
//!   Connect-ES over Connect and gRPC-Web) against the sandbox.
//! - [`faults`]: the fault-injection matrix (also at trace level, scanning
//!   the output for secrets).
//! - [`logs`]: a stdout nobody reads drops log lines (counted, one WARN)
//!   but never stalls calls or health checks.
//! - [`metrics_endpoint`]: the metrics port closes silent connections.
//! - [`traces`]: the OpenTelemetry spans at a fake OTLP collector.
//!
//! [`harness`] is the one child-process harness they share.

mod cli;
mod deploy;
mod examples;
mod faults;
mod harness;
mod logs;
mod metrics_endpoint;
mod observability;
mod traces;
