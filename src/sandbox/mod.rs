//! The embedded, offline look-alike of the vendor's sandbox.
//!
//! A real HTTP server on a loopback port, answering the submit and result
//! calls the way the vendor's sandbox does for its magic values (plus magic
//! ids of our own for every documented error), so that `--sandbox` exercises
//! the very same upstream client, parsing and error mapping as production.
//! A submit starts a job that is "processing" (the result call answers 404)
//! for a while, then answers its card. Answers are canned; the personal data
//! is fictional.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::DefaultBodyLimit,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{
    config::BaseUrl,
    upstream::client::{RESULT_PATH, SUBMIT_PATH},
};

mod answers;
mod jobs;
pub mod magic;

pub use answers::{Answer, answer_for};
use jobs::{Jobs, Lookup};

/// A running sandbox; stops when dropped.
#[derive(Debug)]
pub struct Sandbox {
    base_url: BaseUrl,
    task: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Starts the sandbox on an ephemeral loopback port; a submitted job
    /// answers its result after `processing_time`. It takes a submit of any
    /// image up to `max_image_bytes` (`submit.max_image_bytes`), as the
    /// gateway sends it: base64 inside a JSON body.
    pub async fn start(processing_time: Duration, max_image_bytes: usize) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(&format!("/{RESULT_PATH}"), get(result))
            .route(&format!("/{SUBMIT_PATH}"), post(submit))
            // axum's default (2 MiB) would refuse a photo of 1.5 MB.
            .layer(DefaultBodyLimit::max(max_submit_body(max_image_bytes)))
            .with_state(Arc::new(Jobs::new(processing_time)));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox upstream stopped");
            }
        });
        let base_url = format!("http://{addr}/")
            .parse()
            .map_err(|e| std::io::Error::other(format!("sandbox address {addr}: {e}")))?;
        Ok(Self { base_url, task })
    }

    /// Where the upstream client should send its requests.
    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The largest submit body the gateway sends: the image in base64 (with
/// padding), plus the JSON around it (the keys, an id of at most 128 bytes,
/// or instead of the image a URL of at most 2,048 bytes), with room to spare.
fn max_submit_body(max_image_bytes: usize) -> usize {
    base64::encoded_len(max_image_bytes, true)
        .unwrap_or(usize::MAX)
        .saturating_add(16 * 1024)
}

/// Both calls need the credentials headers, as the vendor's do.
fn authorized(headers: &HeaderMap) -> bool {
    let has = |name: &str| headers.get(name).is_some_and(|v| !v.is_empty());
    has("app-id") && has("api-key")
}

async fn result(
    State(jobs): State<Arc<Jobs>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let answer = if !authorized(&headers) {
        Answer::new(401, json!({ "message": "Authorization failed" }))
    } else {
        match reference_id_of(&query, &body) {
            None => answers::not_found(),
            Some(id) => match jobs.lookup(&id) {
                Lookup::Unknown => answer_for(&id),
                // A job that has not finished yet is not found, yet.
                Lookup::Processing => answers::not_found(),
                Lookup::Done(canned) => answers::canned_answer(&id, canned),
            },
        }
    };
    respond(answer).await
}

async fn submit(State(jobs): State<Arc<Jobs>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = if authorized(&headers) {
        answers::submitted(&jobs, &body)
    } else {
        Answer::new(401, json!({ "message": "Authorization failed" }))
    };
    respond(answer).await
}

async fn respond(answer: Answer) -> Response {
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body.to_string(),
    )
        .into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// The id from the query string or, failing that, the JSON body: the vendor's
/// docs and its one public client disagree on which, so accept both.
fn reference_id_of(query: &HashMap<String, String>, body: &[u8]) -> Option<String> {
    query.get("reference_id").cloned().or_else(|| {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.get("reference_id")?.as_str().map(str::to_owned)
    })
}

#[cfg(test)]
mod tests;
