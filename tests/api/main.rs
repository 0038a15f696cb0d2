//! In-process integration tests: the real gateway server on an ephemeral
//! loopback port, a fake upstream on another, a generated tonic client.
//!
//! - `rows`: every row of the README error table, codes and details.
//! - `table`: every example of the error table as data
//!   ([`ktp_testkit::error_table`]), played through the fake upstream or
//!   provoked at the gateway.
//! - `request_shape`: what the gateway sends upstream (path, headers, query, body).
//! - `lifecycle`: health, reflection, deadlines and graceful shutdown.
//!
//! The fake upstream is [`ktp_testkit::fake_upstream`], shared with the
//! tests of the compiled binary.

mod helpers;
mod lifecycle;
mod metrics;
mod request_shape;
mod resilience;
mod rows;
mod security;
mod table;
