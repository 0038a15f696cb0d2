//! The process-wide `tracing` subscriber: JSON lines on stdout by default
//! (what Kubernetes log collectors parse), or text for a terminal.

use std::{
    cell::Cell,
    io::{self, Write},
    sync::{Mutex, PoisonError},
};

use tracing::{Level, Metadata};
use tracing_subscriber::{
    EnvFilter,
    fmt::{MakeWriter, format::JsonFields},
};

use crate::config::{LogFormat, LogSettings};

mod json;

pub use json::JsonLines;

/// The subscriber could not be installed (the filter was validated with the
/// config, so in practice: a subscriber was already installed).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the log subscriber: {0}")]
pub struct TelemetryError(String);

/// Installs the global subscriber. Call once, from `main`.
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    let filter =
        EnvFilter::try_new(&*settings.filter).map_err(|e| TelemetryError(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stdout)
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
    result.map_err(|e| TelemetryError(e.to_string()))
}

/// Stdout, where the runtime's worker threads batch their INFO and finer
/// lines: written one by one, each line cost a `write` system call, a good
/// part of the logging cost of a call (`bench/README.md`).
///
/// Once [`worker_unparked`] has run on a thread, its INFO, DEBUG and TRACE
/// lines go to one process-wide buffer, written out when a worker runs out
/// of work ([`worker_parked`]), at 16 KiB, before the next line of any other
/// thread or level, and at exit ([`flush`]). Every other line is written at
/// once. Lines keep their order; only a busy worker's lines wait a little.
#[derive(Debug, Clone, Copy)]
struct Stdout;

/// Lines waiting to be written, oldest first.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
const BATCH_BYTES: usize = 16 * 1024;

thread_local! {
    static BATCHING: Cell<bool> = const { Cell::new(false) };
}

/// For the runtime's `on_thread_unpark`: this worker's routine lines may wait.
pub fn worker_unparked() {
    BATCHING.set(true);
}

/// For the runtime's `on_thread_park`: the worker is idle, write its lines.
pub fn worker_parked() {
    flush();
}

/// Writes out the lines still waiting (workers do when idle; `main` at exit).
pub fn flush() {
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    if !pending.is_empty() {
        let _ = write_out(&mut pending);
    }
}

fn write_out(pending: &mut Vec<u8>) -> io::Result<()> {
    #[expect(clippy::disallowed_methods, reason = "this writer is the one that may")]
    let written = io::stdout().lock().write_all(pending);
    pending.clear();
    written
}

/// One formatted line (tracing's fmt layer writes each line in one call).
struct Line {
    may_wait: bool,
}

impl<'a> MakeWriter<'a> for Stdout {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { may_wait: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            may_wait: *meta.level() > Level::WARN && BATCHING.get(),
        }
    }
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() && !self.may_wait {
            #[expect(clippy::disallowed_methods, reason = "this writer is the one that may")]
            return io::stdout().lock().write_all(buf);
        }
        pending.extend_from_slice(buf);
        if self.may_wait && pending.len() < BATCH_BYTES {
            return Ok(());
        }
        write_out(&mut pending)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
