//! Who may call the gateway, and over what: optional TLS and mutual TLS on the
//! gRPC port ([`tls`]) and optional bearer-token authentication of callers
//! ([`auth`]). Both are off by default, for in-mesh use where the mesh does
//! this job.

pub mod auth;
pub mod tls;
