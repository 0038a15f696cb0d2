//! The process-wide `tracing` subscriber: JSON lines on stdout by default
//! (what Kubernetes log collectors parse), or text for a terminal; and the
//! OpenTelemetry span export ([`traces`]).
//!
//! Lines go through a queue bounded in bytes to a thread of their own
//! (`sink`): logging never waits for stdout, and a pipe that is not read
//! costs dropped lines ([`lines_dropped`], one WARN once it drains), not
//! stalled calls.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, fmt::format::JsonFields};

use crate::config::{LogFormat, LogSettings};

mod json;
mod sink;
pub mod traces;

pub use json::JsonLines;

/// The subscriber could not be installed (the filter was validated with the
/// config, so in practice: a subscriber was already installed).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the log subscriber: {0}")]
pub struct TelemetryError(String);

/// The one queue of the process's log lines.
static QUEUE: sink::Queue = sink::Queue::new(sink::QUEUE_BYTES);

/// Keep it until exit: dropping it writes the lines still queued, waiting
/// about a second at most (a stdout nobody reads must not hang the exit).
#[must_use = "dropping the guard stops the log thread"]
#[derive(Debug)]
pub struct LogGuard(#[expect(dead_code, reason = "held for its Drop")] WorkerGuard);

/// Installs the global subscriber and starts the log thread. Call once,
/// from `main`.
pub fn init(settings: &LogSettings) -> Result<LogGuard, TelemetryError> {
    let filter =
        EnvFilter::try_new(&*settings.filter).map_err(|e| TelemetryError(e.to_string()))?;
    #[expect(
        clippy::disallowed_methods,
        reason = "the log thread is stdout's writer"
    )]
    let (sink, guard) = sink::Sink::new(&QUEUE, std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_target(true);
    let result = match settings.format {
        // Each call runs in a `call` span holding its request id, so every
        // line of the call carries it (under "span").
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| TelemetryError(e.to_string()))?;
    Ok(LogGuard(guard))
}

/// Log lines dropped since start because stdout was not read fast enough
/// (`ktp_gateway_log_lines_dropped_total`).
pub fn lines_dropped() -> u64 {
    QUEUE.dropped()
}
