//! The gRPC edge: everything that knows tonic, except the server wiring.
//!
//! A call flows through [`call::CallLayer`] (metadata, shedding, the one log
//! line and metrics, `x-request-id`), the gates of [`auth::layer`] (bearer
//! tokens) and [`call::ImageSlots`] (the image calls' slots), tonic's
//! generated server (decoding) and a handler in [`handlers`], which
//! returns a domain result; [`status`] renders domain errors as statuses.
//! A new RPC is a handler method: the layers give it everything else.
//!
//! - [`call`]: the layer that records every call, and [`call::Call`].
//! - [`auth`]: bearer-token authentication as a gate.
//! - [`handlers`]: the `ktp.v1.KtpService` RPCs.
//! - [`limit`]: the request body's bounds (per-method size, read time).
//! - [`metadata`]: request id, `grpc-timeout`, `traceparent` from the headers.
//! - [`status`]: the error table: domain error → gRPC status and details.
//! - [`web`]: gRPC-Web, translated to gRPC in front of the call layer.

use tower::ServiceBuilder;

use crate::{
    config::Settings, metrics::Metrics, proto::ktp_service_server::KtpServiceServer,
    resilience::overload::InFlightLimit, telemetry::traces::Tracer, upstream::Upstream,
};

pub mod auth;
pub mod call;
pub mod handlers;
pub mod limit;
pub mod metadata;
pub mod status;
pub mod web;

/// Largest request message accepted, but by the image-carrying methods: a
/// request is one short string.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The KTP service as the server mounts it: its handlers behind the call
/// and auth layers. The image-carrying RPCs take messages as large as an
/// image allows (and no larger), and a cap of their own on calls in flight,
/// which bounds the memory images hold.
pub fn ktp_service(
    upstream: Upstream,
    metrics: Metrics,
    (in_flight, waiting): (InFlightLimit, InFlightLimit),
    tracer: Tracer,
    settings: &Settings,
) -> call::Recorded<
    call::Gate<call::Gate<KtpServiceServer<handlers::KtpApi>, call::ImageSlots>, auth::Tokens>,
> {
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
    let limits = handlers::Limits {
        max_image_bytes: *settings.submit.max_image_bytes,
        max_wait: *settings.wait.max_wait,
        waiting,
    };
    let largest = calls.largest_message();
    // Outermost first: the call is recorded and bounded (in flight, size,
    // read time), then authenticated, then given its image slot.
    ServiceBuilder::new()
        .layer(calls)
        .layer(auth::layer(settings.auth.tokens().cloned()))
        .layer(slots)
        .service(
            KtpServiceServer::new(handlers::KtpApi::new(upstream, limits))
                .max_decoding_message_size(largest),
        )
}

/// Full name of the `SubmitKtp` RPC.
pub const SUBMIT_KTP: &str = "/ktp.v1.KtpService/SubmitKtp";
/// Full name of the `ExtractKtp` RPC.
pub const EXTRACT_KTP: &str = "/ktp.v1.KtpService/ExtractKtp";

/// The health-service name of the KTP API (readiness probes ask for it),
/// as generated from the proto.
pub use crate::proto::ktp_service_server::SERVICE_NAME as KTP_SERVICE_NAME;
