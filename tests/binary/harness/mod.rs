//! The one child-process harness of the suites that run the compiled
//! binary: [`process`] for any child process, [`gateway`] for
//! `ktp-gateway` itself.

pub(crate) mod gateway;
pub(crate) mod process;

pub(crate) use gateway::*;
pub(crate) use process::*;
