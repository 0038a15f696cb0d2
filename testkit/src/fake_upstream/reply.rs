//! What the fake upstream does with one request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::Value;

use crate::error_table::{Answer, Body};

/// What the fake upstream does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with this status (`Content-Type: application/json`).
    Json(u16, Value),
    /// Exact status, headers and body bytes (a `Content-Length` is added
    /// unless the headers frame the body themselves).
    Raw {
        /// The HTTP status.
        status: u16,
        /// Header names and values, in order.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Waits, then gives the inner reply; if the gateway closes the
    /// connection meanwhile, counts an abandoned request and stops.
    Delayed(Duration, Box<Reply>),
    /// Reads the request and never answers, until the gateway goes away.
    Hang,
    /// A 200 head announcing 1000 bytes, the start of a JSON body, then a
    /// clean close.
    CutMidBody,
    /// A 200 head announcing 1000 bytes, the first part of a body holding
    /// personal data, then a TCP reset (`SO_LINGER` 0).
    ResetMidBody(Vec<u8>),
    /// Closes the connection without answering.
    Close,
    /// Resets the connection (`SO_LINGER` 0) without answering.
    Reset,
    /// A body of `len` bytes, streamed in 64 KiB pieces, announced with
    /// `Content-Length` or sent chunked.
    Huge {
        /// The HTTP status.
        status: u16,
        /// Bytes in the body (spaces).
        len: usize,
        /// `Transfer-Encoding: chunked` instead of `Content-Length`.
        chunked: bool,
    },
    /// Each request for the id gets the next reply of the list, round and
    /// round (a flapping upstream).
    Cycle(Arc<Vec<Reply>>, Arc<AtomicUsize>),
    /// Each request for the id gets the next reply of the list, and every
    /// request after the last gets the last (one script per attempt).
    Sequence(Arc<Vec<Reply>>, Arc<AtomicUsize>),
}

impl Reply {
    /// Raw bytes with a `Content-Type` of the caller's choosing.
    pub fn typed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::raw(status, &[("Content-Type", content_type)], body)
    }

    /// Exact status, headers and body bytes.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
        }
    }

    /// Each request for the id gets the next of `replies`, round and round.
    pub fn cycle(replies: Vec<Reply>) -> Self {
        Self::Cycle(Arc::new(replies), Arc::new(AtomicUsize::new(0)))
    }

    /// The first request gets `replies[0]`, the second `replies[1]`, …, and
    /// every one after the last the last.
    pub fn sequence(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "a sequence of no replies");
        Self::Sequence(Arc::new(replies), Arc::new(AtomicUsize::new(0)))
    }

    /// `then`, after `pause`.
    pub fn delayed(pause: Duration, then: Reply) -> Self {
        Self::Delayed(pause, Box::new(then))
    }

    /// The upstream's documented refusal of a reference id used before.
    pub fn reference_id_exists() -> Self {
        Self::Json(
            400,
            serde_json::json!({"message": "reference_id already exists",
                               "error_code": "INVALID_PAYLOAD_REFERENCE_ID_EXISTS"}),
        )
    }

    /// The result call's documented "no such job (yet)".
    pub fn not_found() -> Self {
        Self::Json(
            404,
            serde_json::json!({"message": "Reference ID not found",
                               "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
        )
    }

    /// The submit call's documented success, naming `reference_id`.
    pub fn accepted(reference_id: &str) -> Self {
        Self::Json(
            200,
            serde_json::json!({"message": "success", "data": {"reference_id": reference_id}}),
        )
    }

    /// This request's reply: a cycle or sequence picks its next one, here
    /// and in a delayed reply.
    pub(super) fn resolve(self) -> Self {
        match self {
            Self::Cycle(replies, next) => {
                let i = next.fetch_add(1, Ordering::SeqCst) % replies.len();
                replies[i].clone().resolve()
            }
            Self::Sequence(replies, next) => {
                let i = next.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
                replies[i].clone().resolve()
            }
            Self::Delayed(pause, then) => Self::Delayed(pause, Box::new(then.resolve())),
            other => other,
        }
    }

    /// The HTTP status the reply answers with in the end, if it answers.
    pub(super) fn status(&self) -> Option<u16> {
        match self {
            Self::Json(status, _) | Self::Raw { status, .. } | Self::Huge { status, .. } => {
                Some(*status)
            }
            Self::Delayed(_, then) => then.status(),
            Self::CutMidBody | Self::ResetMidBody(_) => Some(200),
            _ => None,
        }
    }
}

impl From<&Answer> for Reply {
    /// Plays an answer of the error table. A [`Body::Filler`] is streamed
    /// as [`Reply::Huge`], which sends no other headers: such answers must
    /// have none.
    fn from(answer: &Answer) -> Self {
        let status = answer.status;
        match answer.body {
            Body::Json(text) => {
                let mut headers = vec![("Content-Type", "application/json")];
                headers.extend_from_slice(answer.headers);
                Self::raw(status, &headers, text)
            }
            Body::Bytes(bytes) => Self::raw(status, answer.headers, bytes),
            Body::Filler { len, chunked } => {
                assert!(
                    answer.headers.is_empty(),
                    "a filler body is sent without other headers"
                );
                Self::Huge {
                    status,
                    len,
                    chunked,
                }
            }
        }
    }
}
