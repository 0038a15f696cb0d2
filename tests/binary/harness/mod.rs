//! The one child-process harness of the suites that run the compiled
//! binary: [`process`] for any child process, [`gateway`] for
//! `ktp-gateway` itself.

pub mod gateway;
pub mod process;

pub use gateway::*;
pub use process::*;
