//! The gRPC edge: everything that knows tonic, except the server wiring.
//!
//! A call flows through [`call::CallLayer`] (metadata, shedding, the one log
//! line and metrics, `x-request-id`), [`auth::AuthLayer`] (bearer tokens),
//! tonic's generated server (decoding) and a handler in [`handlers`], which
//! returns a domain result; [`status`] renders domain errors as statuses.
//! A new RPC is a handler method: the layers give it everything else.
//!
//! - [`call`]: the layer that records every call, and [`call::Call`].
//! - [`auth`]: bearer-token authentication as a layer.
//! - [`handlers`]: the `ktp.v1.KtpService` RPCs.
//! - [`metadata`]: request id, `grpc-timeout`, `traceparent` from the headers.
//! - [`status`]: the error table: domain error → gRPC status and details.

use tower::ServiceBuilder;

use crate::{
    metrics::Metrics, proto::ktp_service_server::KtpServiceServer,
    resilience::overload::InFlightLimit, security::auth::BearerTokens, upstream::Upstream,
};

pub mod auth;
pub mod call;
pub mod handlers;
pub mod metadata;
pub mod status;

/// Largest request message accepted: a request is one short string.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The KTP service as the server mounts it: its handlers behind the call
/// and auth layers.
pub fn ktp_service(
    upstream: Upstream,
    metrics: Metrics,
    in_flight: InFlightLimit,
    tokens: Option<BearerTokens>,
) -> call::Recorded<auth::Authenticated<KtpServiceServer<handlers::KtpApi>>> {
    ServiceBuilder::new()
        .layer(call::CallLayer::new(metrics, in_flight))
        .layer(auth::AuthLayer::new(tokens))
        .service(
            KtpServiceServer::new(handlers::KtpApi::new(upstream))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
}

/// The health-service name of the KTP API (readiness probes ask for it),
/// as generated from the proto.
pub use crate::proto::ktp_service_server::SERVICE_NAME as KTP_SERVICE_NAME;
