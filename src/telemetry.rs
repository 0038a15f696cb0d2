//! The process-wide `tracing` subscriber: JSON lines on stdout by default
//! (what Kubernetes log collectors parse), or text for a terminal.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// The subscriber could not be installed (the filter was validated with the
/// config, so in practice: a subscriber was already installed).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the log subscriber: {0}")]
pub struct TelemetryError(String);

/// Installs the global subscriber. Call once, from `main`.
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| TelemetryError(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_target(true);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // Each call runs in a `call` span holding its request id, so every
            // line of the call carries it (under "span").
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| TelemetryError(e.to_string()))
}
