//! The result call, `GET {base}/ktp/id/extract-async/result`: its request
//! shape, and one attempt of it as the innermost service of the stack.

use std::{
    sync::Mutex,
    task::{Context, Poll},
};

use opentelemetry::trace::SpanContext;

use reqwest::header;
use tower::Service;

use super::{
    KtpResult, UpstreamClient, UpstreamError,
    attempt_span::{Peer, Target, Traced},
    client::AttemptFuture,
    model,
};
use crate::{
    reference_id::ReferenceId,
    resilience::{Call, coalesce::Keyed},
    trace::TraceContext,
};

/// What the result call sends.
#[derive(Debug)]
pub struct FetchResult {
    /// The job whose result to fetch.
    pub reference_id: ReferenceId,
    /// The call's; each attempt's request carries its own (see
    /// `attempt_span`).
    pub trace: Option<TraceContext>,
    /// The span of its latest attempt, for the calls that share the request
    /// to link to.
    pub attempt: Mutex<Option<SpanContext>>,
}

impl FetchResult {
    /// The result call for `reference_id`, traced as `trace`.
    pub fn new(reference_id: ReferenceId, trace: Option<TraceContext>) -> Self {
        Self {
            reference_id,
            trace,
            attempt: Mutex::new(None),
        }
    }
}

impl Traced for FetchResult {
    fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }
    fn target(peer: &Peer) -> &Target {
        &peer.result
    }
    fn attempted(&self, span: &SpanContext) {
        *self.attempt.lock().unwrap_or_else(|p| p.into_inner()) = Some(span.clone());
    }
}

/// Concurrent calls for one reference id share one request.
impl Keyed for FetchResult {
    type Key = str;
    fn key(&self) -> &str {
        self.reference_id.as_str()
    }
    /// A call that shared `flight`'s request links to its attempt.
    fn shared(&self, flight: &Self) {
        let attempt = flight
            .attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (Some(span), Some(attempt)) =
            (self.trace.as_ref().and_then(|t| t.span.as_ref()), attempt)
        {
            span.add_link(attempt);
        }
    }
}

impl Service<Call<FetchResult, UpstreamError>> for UpstreamClient {
    type Response = KtpResult;
    type Error = UpstreamError;
    type Future = AttemptFuture<KtpResult>;

    /// Always ready: the slot layer outside has already found a connection slot.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call<FetchResult, UpstreamError>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.fetch_result(call.op(), call.outgoing_trace()).await })
    }
}

impl UpstreamClient {
    async fn fetch_result(
        &self,
        op: &FetchResult,
        trace: Option<&TraceContext>,
    ) -> Result<KtpResult, UpstreamError> {
        let placement = self.placement();
        let mut url = self.result_url().clone();
        if placement.in_query() {
            url.query_pairs_mut()
                .append_pair("reference_id", op.reference_id.as_str());
        }
        let mut request = self.authorized(self.http().get(url), trace);
        if placement.in_body() {
            // Display of a JSON string escapes it and cannot fail.
            let id = serde_json::Value::from(op.reference_id.as_str());
            let body = format!(r#"{{"reference_id":{id}}}"#);
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        self.exchange(request, model::interpret).await
    }
}
