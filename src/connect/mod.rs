//! The Connect edge: Connect's unary protocol (version 1) on the gRPC
//! port, over HTTP/1.1 and HTTP/2, for every `ktp.v1.KtpService` RPC.
//!
//! A request that is not gRPC's or gRPC-Web's content type is Connect's:
//! [`Connect`] refuses what Connect has no call for (another HTTP method:
//! 405; another content type: 415), marks the request with its [`Codec`],
//! and passes it on through the one call path (call layer, auth, slots).
//! There [`ConnectApi`] stands where tonic's generated server stands for
//! gRPC: it decodes the message and runs its use case. On the way back, a
//! failed call's gRPC status (made by the error table, wherever the call
//! was refused) becomes Connect's error JSON and HTTP status ([`error`]).
//!
//! - [`error`]: a status as Connect's error answer.
//! - `json`: requests from proto3 JSON (answers are `pbjson`'s).
//! - `service`: [`ConnectApi`], the adapter of the use cases.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use tonic::{
    Status,
    body::Body,
    codegen::http::{
        self, HeaderValue, Method, StatusCode,
        header::{ALLOW, CONTENT_TYPE},
    },
    server::NamedService,
};
use tower::Service;

use crate::call::protocol::{Codec, is_grpc_family};

pub mod error;
mod json;
mod service;

pub use service::ConnectApi;

/// Serves `inner` (the KTP service's call path) to Connect callers too.
#[derive(Debug, Clone)]
pub struct Connect<S> {
    inner: S,
}

impl<S> Connect<S> {
    /// `inner`, also reachable through Connect.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for Connect<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Connect<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let content_type = request.headers().get(CONTENT_TYPE);
        // gRPC (gRPC-Web arrives translated) pays this one compare.
        if is_grpc_family(content_type) {
            return Answer::Grpc {
                future: self.inner.call(request),
            };
        }
        if request.method() != Method::POST {
            let mut refused = plain(StatusCode::METHOD_NOT_ALLOWED);
            refused
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return Answer::Refused {
                response: Some(refused),
            };
        }
        let Some(codec) = content_type.and_then(|ct| Codec::of(ct.as_bytes())) else {
            let mut refused = plain(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            refused.headers_mut().insert(
                "accept-post",
                HeaderValue::from_static("application/json, application/proto"),
            );
            return Answer::Refused {
                response: Some(refused),
            };
        };
        request.extensions_mut().insert(codec);
        Answer::Connect {
            future: self.inner.call(request),
        }
    }
}

/// An HTTP refusal with no body: there is no call to answer yet.
fn plain(status: StatusCode) -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

pin_project_lite::pin_project! {
    /// What [`Connect`] answers.
    #[project = AnswerProj]
    #[allow(missing_docs)]
    pub enum Answer<F> {
        /// gRPC's answer, untouched.
        Grpc { #[pin] future: F },
        /// A Connect call's answer, its error (if any) rendered Connect's way.
        Connect { #[pin] future: F },
        /// Refused before any call; an `Option` so that the first poll takes it.
        Refused { response: Option<http::Response<Body>> },
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<Body>, Infallible>>,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnswerProj::Grpc { future } => future.poll(cx),
            AnswerProj::Connect { future } => future.poll(cx).map(|r| r.map(connect_error)),
            AnswerProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}

/// A failed call's answer (its status in the headers, trailers-only, as
/// every refusal of the call path is made) as Connect's error: the status
/// Connect gives its code and the error JSON. Any other answer is the
/// call's message, as [`ConnectApi`] encoded it.
fn connect_error(mut response: http::Response<Body>) -> http::Response<Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() == tonic::Code::Ok {
        return response;
    }
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        response.headers_mut().remove(name);
    }
    let error = error::ConnectError::of(&status);
    // A struct of strings: serializing it cannot fail.
    let body = serde_json::to_vec(&error).unwrap_or_default();
    *response.status_mut() = StatusCode::from_u16(error::http_status(status.code()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *response.body_mut() = Body::new(http_body_util::Full::new(Bytes::from(body)));
    response
}
