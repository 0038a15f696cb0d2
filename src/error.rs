//! The domain error of one call. It knows nothing of gRPC: the gRPC edge
//! turns it into a status in exactly one place ([`crate::status`]:
//! `classify` picks the error-table row, `render` builds the status).

use std::time::Duration;

use crate::{
    image::InvalidImage, reference_id::InvalidReferenceId, security::auth::Unauthenticated,
    upstream::UpstreamError,
};

/// Everything that can make a call fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// Rejected before any upstream call.
    #[error(transparent)]
    InvalidReferenceId(#[from] InvalidReferenceId),
    /// Rejected before any upstream call: no image worth submitting.
    #[error(transparent)]
    InvalidImage(#[from] InvalidImage),
    /// Rejected before any upstream call: a `read_mask` path that is no
    /// top-level answer field.
    #[error("the read mask names `{path}`, which is not a field of GetKtpResultResponse")]
    InvalidReadMask {
        /// The path, cut to [`SHOWN_PATH_BYTES`].
        path: String,
    },
    /// Rejected before any upstream call: a `read_mask` path outside what
    /// the caller's token allows.
    #[error("the caller's token does not allow the field `{field}`")]
    FieldNotAllowed {
        /// The field's name.
        field: &'static str,
    },
    /// The upstream call failed or answered an error.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The submit call failed or was refused; its 400s blame the request,
    /// unlike the result call's.
    #[error("the upstream did not take the job: {error}")]
    Submit {
        /// What the submit call answered.
        error: UpstreamError,
        /// The request field that carried the image (`image` or
        /// `image_url`), which an upstream refusal of the image names.
        image_field: &'static str,
    },
    /// A wait ended with the job still not found: the last such answer.
    #[error("{error} (after waiting {} ms)", waited.as_millis())]
    NotFoundAfterWait {
        /// The upstream's last "not found".
        error: UpstreamError,
        /// How long the call waited.
        waited: Duration,
    },
    /// `wait.max_wait` ended a wait in which no poll had answered (an
    /// upstream slower than the wait): the job may well be there, so not
    /// the caller's deadline, and not the upstream's "not found".
    #[error("no poll answered within the wait of {} ms", waited.as_millis())]
    NoAnswerInWait {
        /// How long the call waited.
        waited: Duration,
    },
    /// The job was submitted, but its result was not ready when the wait
    /// ended; it is not lost, and can be read later.
    #[error("the job's result was not ready after {} ms", waited.as_millis())]
    ResultNotReady {
        /// How long the call waited.
        waited: Duration,
    },
    /// An error concerning a job the caller may not know the id of (it may
    /// have been generated): every submit error (the upstream may have taken
    /// the job even so) and every error of `ExtractKtp` after its submit.
    /// The caller needs the id to read the result, or to resubmit under it.
    #[error("{error}")]
    ForJob {
        /// The job's reference id.
        reference_id: String,
        /// What went wrong.
        error: Box<GatewayError>,
    },
    /// The server is shutting down and ended the call's wait: a waiting
    /// call must not hold the pod for its job, which is not lost.
    #[error("the gateway is shutting down; the job is not lost: {}", if *retry_as_is { "retry the call as is" } else { "resume with GetKtpResult (wait = true) on its reference id" })]
    ShuttingDown {
        /// The same call again (on another pod) is safe: a
        /// `GetKtpResult(wait = true)`. Not for `ExtractKtp`, which would
        /// submit the image again.
        retry_as_is: bool,
    },
    /// The caller's `grpc-timeout` ran out before the upstream answered; the
    /// upstream request was dropped.
    #[error("the caller's deadline ran out before the upstream answered")]
    DeadlineExceeded,
    /// `auth.tokens_file` is set and the call's bearer token is missing or wrong.
    #[error(transparent)]
    Unauthenticated(#[from] Unauthenticated),
    /// The request message did not fully arrive within
    /// `server.request_read_timeout` of its headers; the call was ended
    /// and what it held freed.
    #[error("the request message did not fully arrive within {} ms of its headers", limit.as_millis())]
    RequestReadTimeout {
        /// `server.request_read_timeout`.
        limit: Duration,
    },
    /// One of the gateway's own bounds was reached; shed at once.
    #[error("the gateway is at its limit of {limit} {}", scope.what())]
    Overloaded {
        /// Which bound.
        scope: Scope,
        /// Its value, for the caller's `ErrorInfo`.
        limit: usize,
    },
    /// The gRPC layer refused the request message before the call's own
    /// code ran (over the size limit, not protobuf, not UTF-8).
    #[error(transparent)]
    Malformed(#[from] MalformedRequest),
    /// A Connect JSON request's field has a value of the wrong kind.
    #[error("the request's JSON field {field} {problem}")]
    InvalidJsonField {
        /// The field, by its proto name.
        field: &'static str,
        /// What is wrong with it; never the value.
        problem: String,
    },
    /// A Connect JSON request has a member the message has no field for.
    /// Its name goes back to the caller in `BadRequest`, not into the log
    /// line: it is the caller's text.
    #[error("the request's JSON has a field the message does not have")]
    UnknownJsonField {
        /// The member's name, as the caller wrote it.
        name: String,
    },
}

/// Which of the gateway's bounds refused a call (`OVERLOADED`'s `scope`), so
/// that a caller and an operator can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `server.max_in_flight`: calls in flight.
    Calls,
    /// `submit.max_in_flight`: image-carrying calls in flight.
    Submits,
    /// `wait.max_waiting`: calls waiting for their job.
    Waits,
    /// `upstream.max_connections`: an upstream connection slot.
    Upstream,
}

impl Scope {
    /// The `scope` metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calls => "calls",
            Self::Submits => "submits",
            Self::Waits => "waits",
            Self::Upstream => "upstream",
        }
    }

    /// What the bound counts, for messages.
    fn what(self) -> &'static str {
        match self {
            Self::Calls => "calls in flight",
            Self::Submits => "image-carrying calls in flight",
            Self::Waits => "calls waiting for their job",
            Self::Upstream => "upstream connections in use",
        }
    }
}

/// How much of a caller's bad `read_mask` path an error repeats: enough to
/// recognise it, not an echo of a large message.
pub const SHOWN_PATH_BYTES: usize = 64;

impl GatewayError {
    /// [`GatewayError::InvalidReadMask`] for `path`, cut to
    /// [`SHOWN_PATH_BYTES`] on a character boundary.
    pub fn invalid_read_mask(path: &str) -> Self {
        let mut end = path.len().min(SHOWN_PATH_BYTES);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        Self::InvalidReadMask {
            path: path[..end].to_owned(),
        }
    }
}

/// A request message the gRPC layer refused itself, in its words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the request message was refused: {message}")]
pub struct MalformedRequest {
    /// What was wrong with it.
    pub kind: Refusal,
    /// The gRPC layer's own description (no message content).
    pub message: String,
}

/// Why the gRPC layer refused a request message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than the message size limit.
    TooLarge,
    /// Not valid protobuf, or a string field that is not UTF-8.
    NotDecodable,
    /// Anything else (an unsupported compression, say), with the gRPC status
    /// code number the layer answered, which the caller keeps getting.
    Other(i32),
}
