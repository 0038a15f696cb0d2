//! Fault injection against the real `ktp-gateway` binary: a scripted fake
//! upstream (raw TCP, in this test) misbehaves in every way the resilience
//! issue lists, and the compiled gateway, run as a subprocess, must map each
//! fault to its README error-table row without panicking, leaking memory or
//! upstream connections, or printing a credential, a personal value or a
//! submitted image. Faults hit the result call (`GetKtpResult`) and the
//! submit call (`SubmitKtp`).
//!
//! - [`matrix`]: every scenario through one gateway at the default log level:
//!   exact code, reason, domain, metadata, `RetryInfo` and upstream attempts;
//!   after each: alive, no panic, RSS and upstream sockets back near the
//!   baseline, a normal call succeeds.
//! - [`secrets`]: the same matrix at `trace` level; no line of stdout or
//!   stderr contains the App-ID, the API key or any value of the KTP the
//!   fake upstream returned.
//!
//! [`scenarios`] is the matrix itself, [`subject`] the gateway process seen
//! from outside (calls, `/proc`). The fake upstream
//! ([`ktp_testkit::fake_upstream`]) is the one `tests/api` uses, and each
//! scenario's expected answer is an example of the error table
//! ([`ktp_testkit::error_table`]).

mod matrix;
mod scenarios;
mod secrets;
mod subject;
