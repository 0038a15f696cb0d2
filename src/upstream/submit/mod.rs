//! The submit call, `POST {base}/ktp/id/extract-async`: its JSON body, built
//! once (the image base64-encoded straight into it, so a retry resends the
//! same bytes without a copy), one attempt of it as the innermost service of
//! its stack, and reading its answer.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header;
use serde::Deserialize;
use serde_json::Value;
use tower::Service;

use super::{
    BodyProblem, UpstreamClient, UpstreamError,
    attempt_span::{Peer, Target, Traced},
    client::AttemptFuture,
    model,
};
use crate::{image::Image, reference_id::ReferenceId, resilience::Call, trace::TraceContext};

/// The `error_code` of a submit whose reference id was used before.
pub const REFERENCE_ID_EXISTS: &str = "INVALID_PAYLOAD_REFERENCE_ID_EXISTS";

/// What the submit call sends. The image lives only inside `body`.
pub struct SubmitJob {
    /// The id the job is filed under; every attempt sends the same one.
    pub reference_id: ReferenceId,
    /// The JSON body, built once.
    body: Bytes,
    /// The request field the image came in (`image` or `image_url`).
    image_field: &'static str,
    /// The call's; each attempt's request carries its own (see
    /// `attempt_span`).
    pub trace: Option<TraceContext>,
}

/// The body holds the image (a photo of the card) or its URL, whose query
/// may carry a signature: only its size shows, in every log line and panic
/// message that prints a job or a call carrying one.
impl std::fmt::Debug for SubmitJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitJob")
            .field("reference_id", &self.reference_id)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("image_field", &self.image_field)
            .field("trace", &self.trace)
            .finish()
    }
}

impl Traced for SubmitJob {
    fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }
    fn target(peer: &Peer) -> &Target {
        &peer.submit
    }
}

impl SubmitJob {
    /// The job for `image`: consumes it, so its bytes are freed as soon as
    /// their base64 form exists.
    pub fn new(
        image: Image,
        validate_quality: bool,
        reference_id: ReferenceId,
        trace: Option<TraceContext>,
    ) -> Self {
        let image_field = image.field();
        let body = body(image, validate_quality, &reference_id);
        Self {
            reference_id,
            body,
            image_field,
            trace,
        }
    }

    /// The request field the image came in (`image` or `image_url`).
    pub fn image_field(&self) -> &'static str {
        self.image_field
    }
}

/// `{"image":…,"validate_quality":…,"reference_id":…}` in one allocation.
fn body(image: Image, validate_quality: bool, reference_id: &ReferenceId) -> Bytes {
    // Display of a JSON string escapes it and cannot fail.
    let id = Value::from(reference_id.as_str());
    let tail = format!(r#"","validate_quality":{validate_quality},"reference_id":{id}}}"#);
    match image {
        Image::File(bytes) => {
            let engine = &base64::engine::general_purpose::STANDARD;
            let encoded = base64::encoded_len(bytes.len(), true).unwrap_or(usize::MAX);
            let head = br#"{"image":""#;
            let mut out = Vec::with_capacity(head.len() + encoded + tail.len());
            out.extend_from_slice(head);
            let start = out.len();
            out.resize(start + encoded, 0);
            // The slice is exactly the encoded length, so this cannot fail.
            let written = engine.encode_slice(&bytes, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            drop(bytes);
            out.extend_from_slice(tail.as_bytes());
            Bytes::from(out)
        }
        Image::Url(url) => {
            let url = Value::from(url);
            // The tail starts by closing a string the URL's JSON form closes.
            Bytes::from(format!(r#"{{"image":{url}{}"#, &tail[1..]))
        }
    }
}

/// An accepted submit.
#[derive(Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The job's id, as the upstream confirmed it (`data.reference_id`), or
    /// as sent when it named none.
    pub reference_id: String,
    /// The upstream's message, as sent (`""` when none).
    pub message: String,
}

/// The upstream's message may echo the card holder: only its length shows.
impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted")
            .field("reference_id", &self.reference_id)
            .field("message", &super::model::TextLen(Some(&self.message)))
            .finish()
    }
}

impl Service<Call<SubmitJob, UpstreamError>> for UpstreamClient {
    type Response = Submitted;
    type Error = UpstreamError;
    type Future = AttemptFuture<Submitted>;

    /// Always ready: the slot layer outside has already found a connection slot.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call<SubmitJob, UpstreamError>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move {
            let op = call.op();
            let request = client
                .authorized(
                    client.http().post(client.submit_url().clone()),
                    call.outgoing_trace(),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(op.body.clone());
            let answer = client.exchange(request, interpret).await;
            accepted_before(answer, &call)
        })
    }
}

/// A retry that finds its id taken after an attempt whose outcome was lost
/// (a timeout, a connection dropped after sending): that attempt was
/// accepted, and this call succeeded.
fn accepted_before(
    answer: Result<Submitted, UpstreamError>,
    call: &Call<SubmitJob, UpstreamError>,
) -> Result<Submitted, UpstreamError> {
    match answer {
        Err(UpstreamError::Status {
            status: 400,
            error_code: Some(code),
            ..
        }) if code == REFERENCE_ID_EXISTS && call.earlier_outcome_unknown() => Ok(Submitted {
            reference_id: call.op().reference_id.as_str().to_owned(),
            message: String::new(),
        }),
        other => other.map(|mut s| {
            if s.reference_id.is_empty() {
                call.op()
                    .reference_id
                    .as_str()
                    .clone_into(&mut s.reference_id);
            }
            s
        }),
    }
}

/// The success envelope; anything else in it is ignored.
#[derive(Deserialize)]
struct Envelope {
    message: Option<String>,
    error_code: Option<String>,
    #[serde(default, deserialize_with = "model::object_only")]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    reference_id: Option<String>,
}

/// Reads a submit answer: an error status as for the result call; a 2xx
/// must be a JSON object whose `data`, when present and not `null`, is an
/// object too (an array is not read field by field), and a
/// `data.reference_id` it names must be an id the gateway could have sent
/// (else the body is unusable: a caller would read that id back).
pub fn interpret(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Submitted, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(model::error_status(status, retry_after, body));
    }
    let bad = |problem| UpstreamError::BadResponse { status, problem };
    let root: Value = serde_json::from_slice(body).map_err(|_| bad(BodyProblem::NotJson))?;
    if !root.is_object() {
        return Err(bad(BodyProblem::NotAnObject));
    }
    let envelope = Envelope::deserialize(root).map_err(|_| bad(BodyProblem::WrongShape))?;
    if let Some(code) = envelope.error_code.filter(|c| !c.trim().is_empty()) {
        let code = model::valid_error_code(code).ok_or_else(|| bad(BodyProblem::WrongShape))?;
        return Err(UpstreamError::JobFailed {
            status,
            code,
            image_quality: None,
        });
    }
    let reference_id = match envelope.data.and_then(|d| d.reference_id) {
        None => String::new(),
        Some(id) if id.is_empty() => id,
        Some(id) => ReferenceId::parse(id)
            .map_err(|_| bad(BodyProblem::WrongShape))?
            .as_str()
            .to_owned(),
    };
    Ok(Submitted {
        reference_id,
        message: envelope.message.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
