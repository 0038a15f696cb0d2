//! The `ktp.v1.KtpService` implementation: validate → call upstream within the
//! caller's deadline → convert, or map the error; each call is recorded by
//! [`CallObserver`].

use std::{sync::Arc, time::Instant};

use tonic::{Request, Response, Status, metadata::MetadataValue, service::Interceptor};
use tracing::Instrument;

use crate::{
    convert,
    error::GatewayError,
    mapping::{self, CallContext},
    observe::CallObserver,
    proto::{GetKtpResultRequest, GetKtpResultResponse, ktp_service_server::KtpService},
    reference_id::ReferenceId,
    request_meta::{self, REQUEST_ID_HEADER, TraceContext},
    resilience::overload::InFlightLimit,
    security::auth::BearerTokens,
    upstream::Upstream,
};

/// The RPC handler; cheap to clone (the upstream client shares its pool).
#[derive(Debug, Clone)]
pub struct KtpApi {
    upstream: Upstream,
    in_flight: InFlightLimit,
    observer: CallObserver,
}

impl KtpApi {
    pub fn new(upstream: Upstream, in_flight: InFlightLimit, observer: CallObserver) -> Self {
        Self {
            upstream,
            in_flight,
            observer,
        }
    }

    /// Admits the call under the in-flight cap and fetches its result; a
    /// caller that goes away meanwhile is still recorded.
    async fn admit_and_fetch(
        &self,
        reference_id: &ReferenceId,
        deadline: Option<tokio::time::Instant>,
        trace: Option<&TraceContext>,
        call: CallContext<'_>,
        started: Instant,
    ) -> Result<GetKtpResultResponse, GatewayError> {
        // Held until the answer is ready: the cap counts calls, not requests.
        let Some(_admitted) = self.in_flight.try_admit() else {
            return Err(GatewayError::Overloaded {
                limit: self.in_flight.limit(),
            });
        };
        let unanswered = Unanswered {
            observer: &self.observer,
            call,
            started,
        };
        let result = self.get_result(reference_id, deadline, trace).await;
        unanswered.answered();
        result
    }

    /// The call without its gRPC wrapping. Giving up at `deadline` drops the
    /// upstream request, which closes its connection.
    async fn get_result(
        &self,
        reference_id: &ReferenceId,
        deadline: Option<tokio::time::Instant>,
        trace: Option<&TraceContext>,
    ) -> Result<GetKtpResultResponse, GatewayError> {
        let fetch = self.upstream.fetch(reference_id, deadline, trace);
        let result = match deadline {
            Some(at) => tokio::time::timeout_at(at, fetch)
                .await
                .map_err(|_| GatewayError::DeadlineExceeded)?,
            None => fetch.await,
        }?;
        Ok(convert::to_response(result, reference_id))
    }
}

#[tonic::async_trait]
impl KtpService for KtpApi {
    async fn get_ktp_result(
        &self,
        request: Request<GetKtpResultRequest>,
    ) -> Result<Response<GetKtpResultResponse>, Status> {
        let started = tokio::time::Instant::now();
        let request_id = request_meta::request_id(request.metadata());
        let deadline = request_meta::caller_timeout(request.metadata())
            .map(|t| started + t.saturating_sub(request_meta::answer_margin(t)));
        let trace = request_meta::trace_context(request.metadata());
        let trace_id = trace.as_ref().map(TraceContext::trace_id);
        let raw = request.into_inner().reference_id;

        let (reference_id, result) = match ReferenceId::parse(raw) {
            Err(invalid) => (None, Err(invalid.into())),
            Ok(id) => {
                let call = CallContext {
                    request_id: &request_id,
                    reference_id: Some(id.as_str()),
                    trace_id,
                };
                let started = started.into_std();
                // Every line logged while the call runs carries its request id.
                // Those lines are all DEBUG or finer, so is the span: at the
                // default level it is never built (bench/README.md, change 9).
                let span = tracing::debug_span!("call", request_id = %request_id);
                let result = self
                    .admit_and_fetch(&id, deadline, trace.as_ref(), call, started)
                    .instrument(span)
                    .await;
                (Some(id), result)
            }
        };
        let call = CallContext {
            request_id: &request_id,
            reference_id: reference_id.as_ref().map(ReferenceId::as_str),
            trace_id,
        };
        match result {
            Ok(body) => {
                self.observer.succeeded(call, started.into_std());
                let mut response = Response::new(body);
                if let Ok(v) = MetadataValue::try_from(request_id.as_str()) {
                    response.metadata_mut().insert(REQUEST_ID_HEADER, v);
                }
                Ok(response)
            }
            Err(err) => {
                let row = mapping::classify(&err);
                self.observer.failed(call, started.into_std(), &row, &err);
                Err(mapping::render(&row, call))
            }
        }
    }
}

/// Checks bearer tokens before a call reaches [`KtpApi`] (a no-op when
/// `auth.tokens_file` is unset). A refused call gets its log line here.
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    tokens: Option<Arc<BearerTokens>>,
    observer: CallObserver,
}

impl AuthInterceptor {
    pub fn new(tokens: Option<BearerTokens>, observer: CallObserver) -> Self {
        Self {
            tokens: tokens.map(Arc::new),
            observer,
        }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(request);
        };
        let Err(why) = tokens.check(request.metadata()) else {
            return Ok(request);
        };
        let started = Instant::now();
        let request_id = request_meta::request_id(request.metadata());
        let call = CallContext {
            request_id: &request_id,
            ..Default::default()
        };
        let err = GatewayError::Unauthenticated(why);
        let row = mapping::classify(&err);
        self.observer.failed(call, started, &row, &err);
        Err(mapping::render(&row, call))
    }
}

/// Records the call as abandoned if the caller goes away (cancels,
/// disconnects, or its deadline passes in tonic first) while the upstream
/// call is pending: tonic then drops the handler, and without this the call
/// would leave no trace.
struct Unanswered<'a> {
    observer: &'a CallObserver,
    call: CallContext<'a>,
    started: Instant,
}

impl Unanswered<'_> {
    fn answered(self) {
        std::mem::forget(self);
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        self.observer.abandoned(self.call, self.started);
    }
}
