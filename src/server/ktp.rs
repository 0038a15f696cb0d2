//! The KTP service as the server mounts it: the use cases behind the one
//! call path (call layer, auth, image slots), with a protocol edge at
//! its end: tonic's generated server for gRPC (and gRPC-Web, translated
//! in front), [`ConnectApi`] for Connect.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};
use tower::ServiceBuilder;

use crate::{
    call::{self, auth, limit::Limited, protocol::Codec},
    config::Settings,
    connect::ConnectApi,
    grpc::handlers::GrpcApi,
    metrics::Metrics,
    proto::{MAX_REQUEST_BYTES, ktp_service_server::KtpServiceServer},
    resilience::overload::InFlightLimit,
    telemetry::traces::Tracer,
    upstream::Upstream,
    usecase::{KtpApi, Limits},
};

/// Full name of the `SubmitKtp` RPC.
pub const SUBMIT_KTP: &str = "/ktp.v1.KtpService/SubmitKtp";
/// Full name of the `ExtractKtp` RPC.
pub const EXTRACT_KTP: &str = "/ktp.v1.KtpService/ExtractKtp";

/// The service [`ktp_service`] makes.
pub type KtpService = call::Recorded<call::Gate<call::Gate<Edges, call::ImageSlots>, auth::Tokens>>;

/// The KTP service: its use cases behind the call and auth layers. The
/// image-carrying RPCs take messages as large as an image allows (and no
/// larger), and a cap of their own on calls in flight, which bounds the
/// memory images hold.
pub fn ktp_service(
    upstream: Upstream,
    metrics: Metrics,
    (in_flight, waiting): (InFlightLimit, InFlightLimit),
    tracer: Tracer,
    settings: &Settings,
) -> KtpService {
    let image_message = *settings.submit.max_image_bytes + MAX_REQUEST_BYTES;
    let calls = call::CallLayer::new(
        metrics,
        in_flight,
        MAX_REQUEST_BYTES,
        *settings.server.request_read_timeout,
    )
    .method(SUBMIT_KTP, image_message)
    .method(EXTRACT_KTP, image_message)
    .traced(tracer);
    // One cap for both image RPCs: it bounds the memory images hold.
    let image_slots = InFlightLimit::new(*settings.submit.max_in_flight);
    let slots = call::GateLayer::new(call::ImageSlots::new(vec![
        (SUBMIT_KTP, image_slots.clone()),
        (EXTRACT_KTP, image_slots),
    ]));
    let api = KtpApi::new(
        upstream,
        Limits {
            max_image_bytes: *settings.submit.max_image_bytes,
            max_wait: *settings.wait.max_wait,
            waiting,
        },
    );
    let edges = Edges {
        grpc: KtpServiceServer::new(GrpcApi(api.clone()))
            .max_decoding_message_size(calls.limits().largest()),
        connect: ConnectApi::new(api, calls.limits().clone()),
    };
    // Outermost first: the call is recorded and bounded (in flight, size,
    // read time), then authenticated, then given its image slot.
    ServiceBuilder::new()
        .layer(calls)
        .layer(auth::layer(settings.auth.tokens().cloned()))
        .layer(slots)
        .service(edges)
}

/// The end of the call path: the protocol's adapter of the use cases.
#[derive(Debug, Clone)]
pub struct Edges {
    grpc: KtpServiceServer<GrpcApi>,
    connect: ConnectApi,
}

impl NamedService for Edges {
    const NAME: &'static str = crate::grpc::KTP_SERVICE_NAME;
}

type BoxAnswer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<B> Service<http::Request<Limited<B>>> for Edges
where
    KtpServiceServer<GrpcApi>: Service<
            http::Request<Limited<B>>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future = BoxAnswer,
        >,
    ConnectApi: Service<
            http::Request<Limited<B>>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future = BoxAnswer,
        >,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxAnswer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.grpc.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Limited<B>>) -> BoxAnswer {
        // The Connect edge marked its calls with their codec.
        match request.extensions().get::<Codec>() {
            Some(_) => self.connect.call(request),
            None => self.grpc.call(request),
        }
    }
}
