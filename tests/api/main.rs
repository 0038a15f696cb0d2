//! In-process integration tests: the real gateway server on an ephemeral
//! loopback port, a fake upstream on another, a generated tonic client.
//!
//! - `rows`: every row of the README error table, codes and details.
//! - `table`: every example of the error table as data
//!   ([`ktp_testkit::error_table`]), played through the fake upstream or
//!   provoked at the gateway.
//! - `request_shape`: what the gateway sends upstream (path, headers, query, body).
//! - `lifecycle`: health, reflection, deadlines and graceful shutdown.
//! - `submit`: `SubmitKtp`: local image checks, the request on the wire,
//!   generated and answered reference ids, taken ids, retries.
//! - `limits`: per-method message limits and `submit.max_in_flight`.
//! - `sandbox`: the embedded sandbox's magic ids do not affect each other.
//! - `saturation`: no upstream connection slot in time is OVERLOADED, not the upstream's fault.
//! - `upstream_tls`: HTTPS to the upstream: `upstream.ca_file`, names, ALPN h2, connect timeout.
//! - `wait`: `GetKtpResult` with `wait` against jobs that finish later.
//! - `extract`: `ExtractKtp`, and metrics per method.
//! - `fields`: `read_mask`, per-caller allowances, `rt_rw_value`, the checks.
//! - `web`: gRPC-Web through `curl` (HTTP/1.1 and HTTP/2, binary and text,
//!   TLS), errors in the trailer frame, CORS ([`curl`]: the client).
//! - `http1`: HTTP/1.1 connections' limits (head timeout, idle close, age).
//!
//! The fake upstream is [`ktp_testkit::fake_upstream`], shared with the
//! tests of the compiled binary.

mod connect;
mod connections;
mod curl;
mod extract;
mod fields;
mod helpers;
mod http1;
mod lifecycle;
mod limits;
mod metrics;
mod request_shape;
mod resilience;
mod rows;
mod sandbox;
mod saturation;
mod security;
mod submit;
mod table;
mod upstream_tls;
mod wait;
mod web;
mod wire;
