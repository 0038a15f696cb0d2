//! `[submit]`: what a submitted image may be, and how many may be held at
//! once (each holds the image and its base64 copy in memory).

use serde::{Deserialize, Serialize};

use super::values::{Count, MessageBytes, known};

/// The submit section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmitSettings {
    /// Largest image accepted, in bytes (the upstream's limit is 5 MB); the
    /// gRPC message limit of the submitting RPCs follows it.
    pub max_image_bytes: MessageBytes,
    /// Submits holding image bytes at once, process-wide; past it:
    /// RESOURCE_EXHAUSTED `OVERLOADED`. Bounds the memory images can take.
    pub max_in_flight: Count,
}

impl Default for SubmitSettings {
    fn default() -> Self {
        Self {
            max_image_bytes: known::valid(MessageBytes::new(5_000_000)),
            max_in_flight: known::valid(Count::new(16)),
        }
    }
}
