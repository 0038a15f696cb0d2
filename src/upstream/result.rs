//! The result call, `GET {base}/ktp/id/extract-async/result`: its request
//! shape, and one attempt of it as the innermost service of the stack.

use std::task::{Context, Poll};

use reqwest::header;
use tower::Service;

use super::{KtpResult, UpstreamClient, UpstreamError, client::AttemptFuture, model};
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
    /// The caller's, passed on unchanged.
    pub trace: Option<TraceContext>,
}

/// Concurrent calls for one reference id share one request.
impl Keyed for FetchResult {
    type Key = str;
    fn key(&self) -> &str {
        self.reference_id.as_str()
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
        Box::pin(async move { client.fetch_result(call.op()).await })
    }
}

impl UpstreamClient {
    async fn fetch_result(&self, op: &FetchResult) -> Result<KtpResult, UpstreamError> {
        let placement = self.placement();
        let mut url = self.result_url().clone();
        if placement.in_query() {
            url.query_pairs_mut()
                .append_pair("reference_id", op.reference_id.as_str());
        }
        let mut request = self.authorized(self.http().get(url), op.trace.as_ref());
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
