//! In-process integration tests: the real gateway server on an ephemeral
//! loopback port, a fake upstream on another, a generated tonic client.
//!
//! - `rows`: every row of the README error table, codes and details.
//! - `request_shape`: what the gateway sends upstream (path, headers, query, body).
//! - `lifecycle`: health, reflection, deadlines and graceful shutdown.

#[path = "../shared/fake_upstream.rs"]
mod fake_upstream;
mod helpers;
mod lifecycle;
mod metrics;
mod request_shape;
mod resilience;
mod rows;
mod security;
