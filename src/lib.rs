//! ktp-gateway: a typed gRPC front for the Verihubs KTP OCR API.
//!
//! # Layout
//! A call flows one way: protocol edge → call path → the protocol's
//! adapter → use case → upstream stack → upstream client; its domain result
//! flows back the same way, and becomes a status in one place.
//!
//! - [`proto`]: the generated contract (`proto/ktp/v1/ktp.proto`), its
//!   descriptor set, its JSON (answers) and the list of its RPCs.
//! - [`call`]: the call path every protocol shares: admission and shedding
//!   (`src/call/layer.rs`), the log line and metrics
//!   (`src/call/record.rs`), auth and the image slots as gates, the
//!   request body's bounds, metadata, the protocol of a call.
//! - [`status`]: the error table: a domain error as a gRPC status with
//!   details, which every protocol renders.
//! - [`usecase`]: the RPCs' logic, protocol-neutral.
//! - [`grpc`]: the gRPC edge: tonic's generated server over the use cases,
//!   and gRPC-Web, translated in front of the call path.
//! - [`connect`]: the Connect edge (unary JSON and proto).
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
//! - [`server`]: wiring (`src/server/ktp.rs` puts the KTP service
//!   together): our own accept loop (`src/server/serve.rs`: the
//!   connection cap; `src/server/lifetime.rs`: one connection's handshake
//!   timeout, age and GOAWAY; `src/server/http1.rs`: an HTTP/1.1
//!   connection's limits) with hyper serving tonic's router (the KTP
//!   service, health, reflection) over HTTP/2 and HTTP/1.1, CORS
//!   (`src/server/cors.rs`), the metrics endpoint, graceful shutdown.
//!
//! Every import between these modules is an edge of the table in
//! `src/layout_tests/imports.rs` (the domain never reaches an edge or the
//! wiring; no cycles), and `config`, `error`, `upstream`, `resilience` and
//! `trace` never name tonic: both are checked by unit tests that read the
//! sources, as are the 400-line limit per file and this map (every module
//! named, every path named exists).
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
