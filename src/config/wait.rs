//! `[wait]`: how a call waits for a job that has not finished yet
//! (`GetKtpResult` with `wait`, `ExtractKtp`): polling that starts fast and
//! slows down, within a bound.

use serde::{Deserialize, Serialize};

use super::values::{Count, PositiveDuration, WaitDuration, known};

/// The wait section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitSettings {
    /// First pause between two polls of an unfinished job; each next pause
    /// is 1.5 times longer, up to `max_poll_interval`.
    pub poll_interval: PositiveDuration,
    /// Longest pause between two polls.
    pub max_poll_interval: PositiveDuration,
    /// Longest wait of one call when its caller sets no shorter deadline.
    pub max_wait: WaitDuration,
    /// Calls waiting for their job at once, process-wide; past it:
    /// RESOURCE_EXHAUSTED `OVERLOADED` (scope `waits`). A waiting call
    /// counts only here, not in `server.max_in_flight`. Unset: derived at
    /// start from the memory the process may use, from the same budget as
    /// `server.max_in_flight` (`resilience::capacity`).
    pub max_waiting: Option<Count>,
}

impl Default for WaitSettings {
    fn default() -> Self {
        Self {
            poll_interval: known::secs(1),
            max_poll_interval: known::secs(4),
            max_wait: known::wait_secs(30),
            max_waiting: None,
        }
    }
}
