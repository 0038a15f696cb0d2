//! The command line and the process: each test starts the real executable
//! (clean environment, ephemeral port, JSON logs) and checks it from the
//! outside, the way an operator or Kubernetes sees it.
//!
//! - [`flags`]: `--help` and `--version`.
//! - [`before_listening`]: TLS files that cannot be used, a metrics
//!   address that cannot be bound, a `base_url` with credentials (never
//!   echoed): each stops the start before any port is bound.
//! - [`config_errors`]: bad or missing configuration exits 2 with one line
//!   naming the key and its env var, before listening, never echoing a
//!   secret; secrets from files; credentials never reach the output.
//! - [`sandbox`]: `--sandbox` end to end with a tonic client: typed success
//!   fields, rich error details, request ids in metadata, details and the
//!   "call finished" log line, and no personal data in the logs.
//! - [`asynchronous`]: `SubmitKtp`, a waiting `GetKtpResult` and
//!   `ExtractKtp` against the sandbox's jobs; their log lines; no image
//!   bytes or URL query strings in the output.
//! - [`callers`]: the tokens file's caller lines (a malformed one stops the
//!   start, naming file and line, never the token), the caller in the log
//!   line, the sandbox's cards that fail each consistency check.
//! - [`shutdown`]: SIGTERM: health turns NOT_SERVING, the listener closes,
//!   the in-flight call still gets its answer, exit code 0; a stuck call is
//!   abandoned after `server.shutdown_grace`; a SIGTERM right after the
//!   "serving" line is handled too.
//! - [`blocking_shutdown`]: a DNS lookup that never returns (a preloaded
//!   `getaddrinfo`, built with `cc`) cannot hold the exit past
//!   `server.shutdown_grace`.
//! - [`in_flight_cap`]: `server.max_in_flight` unset is derived from the
//!   memory the process may use; the start log line "in-flight cap".
//! - [`grpcurl`]: reflection and calls through a real grpcurl 1.8.6 (from
//!   `scripts/test`, which exports `GRPCURL`).
//! - [`test_command`]: `scripts/test` honours `GRPCURL` and refuses a
//!   grpcurl other than 1.8.6.

mod asynchronous;
mod before_listening;
mod blocking_shutdown;
mod callers;
mod config_errors;
mod flags;
mod grpcurl;
mod in_flight_cap;
mod sandbox;
mod shutdown;
mod test_command;
