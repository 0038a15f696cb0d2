//! The gRPC edge: tonic's generated server over the use cases
//! ([`handlers`]), and gRPC-Web translated to gRPC in front of the call
//! path ([`web`]). The call path itself (`call`), the use cases
//! (`usecase`) and the error table (`status`) know no protocol.

pub mod handlers;
pub mod web;

/// The health-service name of the KTP API (readiness probes ask for it),
/// as generated from the proto.
pub use crate::proto::ktp_service_server::SERVICE_NAME as KTP_SERVICE_NAME;
