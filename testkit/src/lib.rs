//! What ktp-gateway's tests share, as a crate rather than `#[path]`
//! includes: the in-process API tests, the tests of the compiled binary and
//! the gateway's own unit tests use the same pieces.
//!
//! - [`fake_upstream`]: a scriptable upstream on raw TCP that serves the
//!   result and the submit calls, runs jobs that finish after a delay, and
//!   can misbehave in every way the tests need.
//! - [`images`]: card images made on the spot (real PNGs, JPEG headers).
//! - [`card_holders`]: the fictional card holders the fake upstream and the
//!   sandbox return, and the personal values no output may contain.
//! - [`error_table`]: the README's error table as data, with examples; its
//!   own tests check it against README.md, row by row and cell by cell.
//! - [`check`]: whether a `tonic::Status` is the answer an example expects.
//! - [`pki`]: a throw-away CA and the leaf certificates it signs.
//! - [`otlp`]: a fake OpenTelemetry collector (OTLP/gRPC trace export).
//!
//! It never depends on `ktp-gateway` (the gateway's unit tests use it as a
//! dev-dependency), so nothing here needs the generated protobuf types: what
//! does stays in the test binaries. The table's own types are plain (no
//! tonic); only [`check`] knows `tonic::Status`.

pub mod card_holders;
pub mod check;
pub mod error_table;
pub mod fake_upstream;
pub mod images;
pub mod otlp;
pub mod pki;
