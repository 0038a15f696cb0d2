//! ktp-gateway: a typed gRPC front for the Verihubs KTP OCR result API.
//!
//! # Layout
//! Data flows one way: request → [`service`] → [`upstream`] → [`mapping`] → response.
//!
//! - [`proto`]: the generated contract (`proto/ktp/v1/ktp.proto`) and its descriptor set.
//! - [`service`]: the `KtpService` RPC: validate, call upstream, convert or map the error.
//! - [`reference_id`]: a newtype that can only hold a reference id worth sending upstream.
//! - [`request_meta`]: what a call's metadata tells us: request id and caller deadline.
//! - [`upstream`]: the REST client (request shape, limits, lenient response parsing).
//!   Nothing outside it knows about HTTP.
//! - [`convert`]: upstream KTP data → protobuf response, with the typed views.
//! - [`error`]: the domain error of one call.
//! - [`mapping`]: the error table: domain error → gRPC status and details, in one
//!   function. Nothing else below [`service`] knows about gRPC.
//! - [`config`]: settings, layering (defaults → file → env), validation, secrets.
//! - [`telemetry`]: the `tracing` subscriber (JSON or text lines on stdout).
//! - [`sandbox`]: the embedded, offline look-alike of the vendor's sandbox.
//! - [`server`]: wiring: tonic server, health, reflection, graceful shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod convert;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod proto;
pub mod reference_id;
pub mod resilience;
pub mod sandbox;
pub mod security;
pub mod server;
pub mod telemetry;
pub mod trace;
pub mod upstream;

/// This service's name and version, as sent in `User-Agent` and shown by `--version`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));
