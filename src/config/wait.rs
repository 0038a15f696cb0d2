//! `[wait]`: how a call waits for a job that has not finished yet
//! (`GetKtpResult` with `wait`, `ExtractKtp`): polling that starts fast and
//! slows down, within a bound.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

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
    /// Polls (upstream result calls made by waits) in flight at once,
    /// process-wide: the waits' own traffic is paced, so a burst of waits
    /// never opens a connection per poll (each upstream HTTP/1.1
    /// connection holds about 27 KiB). A poll past it waits its turn.
    pub max_polls_in_flight: Count,
    /// When a wait on a job this process submitted makes its first poll,
    /// counted from the submit's answer: `auto` (from how long the vendor
    /// took for recent jobs) or a fixed duration (`0s`: at once).
    pub first_poll: FirstPoll,
}

/// `wait.first_poll`: `auto`, or a duration like `2500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPoll {
    /// From what was learnt of recent jobs (at once until a job has been
    /// seen finished).
    Auto,
    /// This long after the submit's answer (never after the wait's end).
    After(Duration),
}

impl FromStr for FirstPoll {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "auto" {
            return Ok(Self::Auto);
        }
        let delay = humantime_serde::re::humantime::parse_duration(text)
            .map_err(|_| "must be `auto` or a duration such as `2500ms` (`0s`: at once)")?;
        if delay > Duration::from_secs(600) {
            return Err("must be `auto` or a duration of at most 10m".to_owned());
        }
        Ok(Self::After(delay))
    }
}

impl fmt::Display for FirstPoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::After(delay) => write!(
                f,
                "{}",
                humantime_serde::re::humantime::format_duration(*delay)
            ),
        }
    }
}

impl<'de> Deserialize<'de> for FirstPoll {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

impl Serialize for FirstPoll {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Default for WaitSettings {
    fn default() -> Self {
        Self {
            poll_interval: known::secs(1),
            max_poll_interval: known::secs(4),
            max_wait: known::wait_secs(30),
            max_waiting: None,
            max_polls_in_flight: known::valid(Count::new(64)),
            first_poll: FirstPoll::Auto,
        }
    }
}
