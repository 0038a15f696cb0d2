//! A call's state lives as long as the call, thousands of times over for
//! waiting calls (`bench/README.md`, "waiting calls").

use super::*;

/// Every call's `Call` lives as long as the call: with its reference
/// count, it fits jemalloc's 256-byte class.
#[test]
fn a_calls_state_fits_256_bytes() {
    let size = std::mem::size_of::<Call>() + 2 * std::mem::size_of::<usize>();
    assert!(size <= 256, "Arc<Call>: {size} bytes");
}
