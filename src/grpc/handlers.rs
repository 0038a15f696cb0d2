//! The gRPC adapter of the use cases: tonic decodes the request, the use
//! case answers through [`Call::answer`], and the answer goes back as a
//! tonic `Response` or `Status`. Nothing else happens here.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{Request, Response, Status};

use crate::{
    call::Call,
    proto::{
        ExtractKtpRequest, ExtractKtpResponse, GetKtpResultRequest, GetKtpResultResponse,
        SubmitKtpRequest, SubmitKtpResponse, ktp_service_server::KtpService,
    },
    usecase::KtpApi,
};

/// The use cases as tonic's generated server wants them.
#[derive(Debug, Clone)]
pub struct GrpcApi(pub KtpApi);

/// A handler's boxed future, as tonic's `async_trait` declares it.
type Handled<'a, T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send + 'a>>;

fn call_of<T>(request: &Request<T>) -> Arc<Call> {
    Call::in_extensions(request.extensions(), request.metadata().as_ref())
}

/// Written out instead of `#[tonic::async_trait]`, whose `async` block
/// would keep the whole request for the call's life besides the work: the
/// box holds [`Call::answer`]'s future and nothing else (a waiting call's
/// lives for seconds; `bench/README.md`, "waiting calls").
impl KtpService for GrpcApi {
    fn get_ktp_result<'a, 'b>(
        &'a self,
        request: Request<GetKtpResultRequest>,
    ) -> Handled<'b, GetKtpResultResponse>
    where
        'a: 'b,
        Self: 'b,
    {
        let call = call_of(&request);
        let work = self
            .0
            .get_ktp_result(Arc::clone(&call), request.into_inner());
        Box::pin(Respond {
            answer: call.answer(work),
        })
    }

    fn submit_ktp<'a, 'b>(
        &'a self,
        request: Request<SubmitKtpRequest>,
    ) -> Handled<'b, SubmitKtpResponse>
    where
        'a: 'b,
        Self: 'b,
    {
        let call = call_of(&request);
        let work = self.0.submit_ktp(Arc::clone(&call), request.into_inner());
        Box::pin(Respond {
            answer: call.answer(work),
        })
    }

    fn extract_ktp<'a, 'b>(
        &'a self,
        request: Request<ExtractKtpRequest>,
    ) -> Handled<'b, ExtractKtpResponse>
    where
        'a: 'b,
        Self: 'b,
    {
        let call = call_of(&request);
        let work = self.0.extract_ktp(Arc::clone(&call), request.into_inner());
        Box::pin(Respond {
            answer: call.answer(work),
        })
    }
}

pin_project_lite::pin_project! {
    /// An answer as a tonic `Response`: a named future, not an `async`
    /// block, which would hold the answer twice over.
    struct Respond<F> {
        #[pin]
        answer: F,
    }
}

impl<F, T> Future for Respond<F>
where
    F: Future<Output = Result<T, Status>>,
{
    type Output = Result<Response<T>, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().answer.poll(cx).map(|a| a.map(Response::new))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        resilience::overload::InFlightLimit,
        upstream::Upstream,
        usecase::{KtpApi, Limits},
    };

    fn api() -> GrpcApi {
        let settings = crate::config::Settings::default();
        let metrics = crate::metrics::Metrics::new().unwrap();
        let upstream = Upstream::new(&settings.upstream, &settings.wait, metrics).unwrap();
        GrpcApi(KtpApi::new(
            upstream,
            Limits {
                max_image_bytes: 1024,
                max_wait: Duration::from_secs(30),
                waiting: InFlightLimit::new(10),
            },
        ))
    }

    /// The boxed future tonic holds for a waiting call is sized by the wait,
    /// not by the request, a fetch or a submit (2.2-2.8 KiB before they were
    /// kept out of it; 536 bytes since the scheduler and the polls pass the
    /// wait's timer and shutdown signal on).
    #[tokio::test]
    async fn a_waiting_calls_future_holds_the_wait_and_little_else() {
        let api = api();
        let get = Request::new(GetKtpResultRequest {
            reference_id: "job".to_owned(),
            wait: true,
            read_mask: None,
        });
        let waiting = KtpService::get_ktp_result(&api, get);
        let size = std::mem::size_of_val(&*waiting);
        assert!(size <= 640, "GetKtpResult's future: {size} bytes");
        let extract = KtpService::extract_ktp(&api, Request::new(ExtractKtpRequest::default()));
        let size = std::mem::size_of_val(&*extract);
        assert!(size <= 1280, "ExtractKtp's future: {size} bytes");
    }
}
