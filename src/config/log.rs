//! `[log]`: what is logged, and in which format.

use serde::{Deserialize, Serialize};

use super::values::{LogFilter, known};

/// `[log]`: the log lines are the gateway's record of every call, so their
/// format and level are settings like any other, not `RUST_LOG`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// JSON for the cluster's log collector, text for a terminal.
    pub format: LogFormat,
    /// Which lines are written (`RUST_LOG` itself is not read, so the
    /// settings alone decide).
    pub filter: LogFilter,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: known::parse("info"),
        }
    }
}

/// JSON lines for log collectors, or human-readable text for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line (the default: what collectors parse).
    #[default]
    Json,
    /// `tracing`'s human-readable lines, for a terminal.
    Text,
}
