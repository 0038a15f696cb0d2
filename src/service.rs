//! The `ktp.v1.KtpService` implementation: validate → call upstream within the
//! caller's deadline → convert, or map the error; one log line per call.

use std::{sync::Arc, time::Instant};

use tonic::{Code, Request, Response, Status, metadata::MetadataValue, service::Interceptor};
use tracing::Level;

use crate::{
    convert,
    error::GatewayError,
    mapping::{self, CallContext},
    proto::{GetKtpResultRequest, GetKtpResultResponse, ktp_service_server::KtpService},
    reference_id::ReferenceId,
    request_meta::{self, REQUEST_ID_HEADER},
    resilience::overload::InFlightLimit,
    security::auth::BearerTokens,
    upstream::Upstream,
};

/// Full gRPC method name, as logged.
pub const GET_KTP_RESULT: &str = "/ktp.v1.KtpService/GetKtpResult";

/// The RPC handler; cheap to clone (the upstream client shares its pool).
#[derive(Debug, Clone)]
pub struct KtpApi {
    upstream: Upstream,
    in_flight: InFlightLimit,
}

impl KtpApi {
    pub fn new(upstream: Upstream, in_flight: InFlightLimit) -> Self {
        Self {
            upstream,
            in_flight,
        }
    }

    /// The call without its gRPC wrapping. Giving up at `deadline` drops the
    /// upstream request, which closes its connection.
    async fn get_result(
        &self,
        reference_id: &ReferenceId,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<GetKtpResultResponse, GatewayError> {
        let fetch = self.upstream.fetch(reference_id, deadline);
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
        let raw = request.into_inner().reference_id;

        let (reference_id, result) = match ReferenceId::parse(raw) {
            Err(invalid) => (None, Err(invalid.into())),
            Ok(id) => {
                // Held until the answer is ready: the cap counts calls, not requests.
                let result = match self.in_flight.try_admit() {
                    Some(_admitted) => {
                        let unanswered = Unanswered::new(&request_id, &id, started);
                        let result = self.get_result(&id, deadline).await;
                        unanswered.answered();
                        result
                    }
                    None => Err(GatewayError::Overloaded {
                        limit: self.in_flight.limit(),
                    }),
                };
                (Some(id), result)
            }
        };
        let call = CallContext {
            request_id: &request_id,
            reference_id: reference_id.as_ref().map(ReferenceId::as_str),
        };
        match result {
            Ok(body) => {
                log_call(call, started.into_std(), None);
                let mut response = Response::new(body);
                if let Ok(v) = MetadataValue::try_from(request_id.as_str()) {
                    response.metadata_mut().insert(REQUEST_ID_HEADER, v);
                }
                Ok(response)
            }
            Err(err) => {
                let row = mapping::classify(&err);
                log_call(call, started.into_std(), Some((&row, &err)));
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
}

impl AuthInterceptor {
    pub fn new(tokens: Option<BearerTokens>) -> Self {
        Self {
            tokens: tokens.map(Arc::new),
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
            reference_id: None,
        };
        let err = GatewayError::Unauthenticated(why);
        let row = mapping::classify(&err);
        log_call(call, started, Some((&row, &err)));
        Err(mapping::render(&row, call))
    }
}

/// Logs the call's line if the caller goes away (cancels, disconnects, or
/// its deadline passes in tonic first) while the upstream call is pending:
/// tonic then drops the handler, and without this the call would leave no
/// trace.
struct Unanswered<'a> {
    call: CallContext<'a>,
    started: tokio::time::Instant,
}

impl<'a> Unanswered<'a> {
    fn new(
        request_id: &'a str,
        reference_id: &'a ReferenceId,
        started: tokio::time::Instant,
    ) -> Self {
        let call = CallContext {
            request_id,
            reference_id: Some(reference_id.as_str()),
        };
        Self { call, started }
    }

    fn answered(self) {
        std::mem::forget(self);
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        let error = "the caller went away before the answer";
        log_line(
            Level::INFO,
            self.call,
            self.started.into_std(),
            Code::Cancelled,
            "",
            "",
            error,
        );
    }
}

/// The one log line of a call. Holds the reference id (not personal data) but
/// never KTP fields, bodies or credentials.
fn log_call(
    call: CallContext<'_>,
    started: Instant,
    failure: Option<(&mapping::Row, &GatewayError)>,
) {
    let row = failure.map(|(row, _)| row);
    let code = row.map_or(Code::Ok, |r| r.code);
    let level = match row {
        // The gateway's own credentials are wrong: someone must act.
        Some(r) if r.reason == mapping::reason::UPSTREAM_AUTH_FAILED => Level::ERROR,
        Some(r) if matches!(r.code, Code::Internal | Code::Unavailable | Code::Unknown) => {
            Level::WARN
        }
        _ => Level::INFO,
    };
    let reason = row.map_or("", |r| r.reason.as_str());
    let upstream_http_status = row
        .and_then(|r| {
            r.metadata
                .iter()
                .find(|(k, _)| *k == "upstream_http_status")
        })
        .map_or("", |(_, v)| v.as_str());
    let error = failure.map(|(_, err)| err.to_string()).unwrap_or_default();
    log_line(
        level,
        call,
        started,
        code,
        reason,
        upstream_http_status,
        &error,
    );
}

fn log_line(
    level: Level,
    call: CallContext<'_>,
    started: Instant,
    code: Code,
    reason: &str,
    upstream_http_status: &str,
    error: &str,
) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    macro_rules! emit {
        ($lvl:expr) => {
            tracing::event!(
                $lvl,
                method = GET_KTP_RESULT,
                grpc_code = mapping::code_name(code),
                duration_ms,
                request_id = call.request_id,
                reference_id = call.reference_id.unwrap_or(""),
                reason,
                upstream_http_status,
                error,
                "call finished"
            )
        };
    }
    match level {
        Level::ERROR => emit!(Level::ERROR),
        Level::WARN => emit!(Level::WARN),
        _ => emit!(Level::INFO),
    }
}
