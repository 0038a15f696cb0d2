//! The `ktp.v1.KtpService` RPCs. Each handler turns its request into a
//! domain call and returns a domain result; [`Call::answer`] applies the
//! caller's deadline and renders errors, and the call layer records it.

use tonic::{Request, Response, Status};

use super::call::Call;
use crate::{
    convert,
    error::GatewayError,
    proto::{GetKtpResultRequest, GetKtpResultResponse, ktp_service_server::KtpService},
    reference_id::ReferenceId,
    upstream::Upstream,
};

/// The RPC handlers; cheap to clone (the upstream client shares its pool).
#[derive(Debug, Clone)]
pub struct KtpApi {
    upstream: Upstream,
}

impl KtpApi {
    /// The handlers hold only the upstream: everything else about a call is
    /// the call layer's.
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }

    async fn get_ktp_result(
        &self,
        call: &Call,
        request: GetKtpResultRequest,
    ) -> Result<GetKtpResultResponse, GatewayError> {
        let id = ReferenceId::parse(request.reference_id)?;
        call.set_reference_id(id.as_str());
        let result = self
            .upstream
            .fetch(&id, call.deadline(), call.trace())
            .await?;
        Ok(convert::to_response(result, &id))
    }
}

#[tonic::async_trait]
impl KtpService for KtpApi {
    async fn get_ktp_result(
        &self,
        request: Request<GetKtpResultRequest>,
    ) -> Result<Response<GetKtpResultResponse>, Status> {
        let call = Call::of(&request);
        call.answer(self.get_ktp_result(&call, request.into_inner()))
            .await
    }
}
