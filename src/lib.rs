//! ktp-gateway: a typed gRPC front for the Verihubs KTP OCR API.
//!
//! # Layout
//! A call flows one way: proto contract → gRPC edge → domain handler →
//! upstream stack → upstream client; its domain result flows back through
//! the edge, which alone turns errors into statuses.
//!
//! - [`proto`]: the generated contract (`proto/ktp/v1/ktp.proto`), its
//!   descriptor set and the list of its RPCs.
//! - [`grpc`]: the gRPC edge, everything that knows tonic except the server
//!   wiring: the call layer ([`grpc::call`]: admission and shedding in
//!   `src/grpc/call/layer.rs`, the log line and metrics in
//!   `src/grpc/call/record.rs`, request id), per-method request size limits
//!   ([`grpc::limit`]), auth, metadata, the handlers, the error table
//!   ([`grpc::status`]), and gRPC-Web, translated in front of the call
//!   layer ([`grpc::web`]).
//! - [`error`]: the domain error of one call.
//! - [`reference_id`]: a newtype that can only hold a reference id worth sending upstream.
//! - [`image`]: a newtype that can only hold an image worth submitting (JPEG or PNG,
//!   size and resolution checked from the header).
//! - [`trace`]: a call's W3C trace context, passed on to the upstream, and
//!   the gateway's own OpenTelemetry spans ([`trace::span`]).
//! - [`convert`]: upstream KTP data → protobuf response, with the typed views,
//!   the consistency checks, and the clearing of fields outside a mask.
//! - [`nik`]: the NIK's rules and its checks against the other fields, with
//!   the province table.
//! - [`fields`]: the answer's field names as sets, shared by `read_mask` and
//!   the tokens file's per-caller allowances.
//! - [`upstream`]: the REST client: the resilience stack around one HTTP
//!   attempt, request shape, limits, lenient parsing. Nothing else knows HTTP.
//! - [`resilience`]: the policies the upstream stack is made of: backoff,
//!   circuit breaker, coalescing, in-flight limit, upstream connection slots.
//! - [`config`]: settings, layering (defaults → file → env), validation, secrets.
//! - [`security`]: bearer tokens and TLS files.
//! - [`metrics`]: the Prometheus registry (a leaf: it knows no other module).
//! - [`telemetry`]: the `tracing` subscriber (JSON or text lines on stdout,
//!   through a bounded queue and a thread of their own), and the span
//!   export to an OTLP collector ([`telemetry::traces`]).
//! - [`sandbox`]: the embedded, offline look-alike of the vendor's sandbox.
//! - [`server`]: wiring: our own accept loop (`src/server/serve.rs`: the
//!   connection cap; `src/server/lifetime.rs`: one connection's handshake
//!   timeout, age and GOAWAY; `src/server/http1.rs`: an HTTP/1.1
//!   connection's limits) with hyper serving tonic's router (the KTP
//!   service, health, reflection) over HTTP/2 and HTTP/1.1, CORS
//!   (`src/server/cors.rs`), the metrics endpoint, graceful shutdown.
//!
//! Dependencies between these modules form no cycle, and `config`, `error`,
//! `upstream`, `resilience` and `trace` never name tonic: both are checked by
//! a unit test that reads the sources (`src/layout_tests.rs`), as are the
//! 400-line limit per file and this map (every module named, every path
//! named exists).
#![forbid(unsafe_code)]

pub mod call;
pub mod config;
pub mod connect;
pub mod convert;
pub mod error;
pub mod fields;
pub mod grpc;
pub mod image;
pub mod metrics;
pub mod nik;
pub mod proto;
pub mod reference_id;
pub mod resilience;
pub mod sandbox;
pub mod security;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod trace;
pub mod upstream;
pub mod usecase;

#[cfg(test)]
mod layout_tests;

/// This service's name and version, as sent in `User-Agent` and shown by `--version`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));
