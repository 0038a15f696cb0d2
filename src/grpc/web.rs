//! gRPC-Web (`application/grpc-web`, `+proto`, and the base64 text mode
//! `application/grpc-web-text`), over HTTP/1.1 and HTTP/2, translated to
//! gRPC in front of the call layer: auth, allowances, shedding, request
//! ids, the log line and the metrics see a gRPC call and apply unchanged.
//!
//! The translation is the standard `tonic-web` crate's. Two things are
//! ours: plain gRPC over HTTP/2 goes straight to the service (no
//! translation, not even a look at the body: gRPC pays one header compare
//! per call), and an error answered trailers-only (the status in the
//! response headers, as tonic answers a refused call) gets its
//! `grpc-status`, `grpc-message` and `grpc-status-details-bin` moved to
//! trailers, which gRPC-Web sends as the body's trailer frame: browsers'
//! clients read the status there, and `grpc-status-details-bin` (every
//! detail of the error) would otherwise need a CORS exposure per header.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use tonic::{
    body::Body,
    codegen::http::{
        self, HeaderMap, Version,
        header::{ACCEPT, CONTENT_TYPE},
    },
    server::NamedService,
};
use tower::{Layer, Service};

use crate::call::protocol::{CallerContentType, is_grpc_family, is_grpc_web};

/// Serves `inner` (a gRPC service) to gRPC and gRPC-Web callers alike.
///
/// It holds the one service, and wraps it in tonic-web only for a call
/// that needs it: the router clones the service for every call, so a second
/// copy held for gRPC-Web would double that clone's cost (every `Arc` of the
/// call stack) on every gRPC call too.
#[derive(Debug, Clone)]
pub struct GrpcWeb<S> {
    inner: S,
}

impl<S> GrpcWeb<S> {
    /// `inner`, also reachable through gRPC-Web.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for GrpcWeb<S> {
    const NAME: &'static str = S::NAME;
}

type WebFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for GrpcWeb<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, tonic_web::ResponseFuture<WebFuture>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let content_type = request.headers().get(CONTENT_TYPE);
        let web = content_type.is_some_and(|ct| is_grpc_web(ct.as_bytes()));
        // Plain gRPC, and Connect (any other content type) over either
        // version, go straight on.
        if !web && (request.version() == Version::HTTP_2 || !is_grpc_family(content_type)) {
            return Either::Grpc {
                future: self.inner.call(request),
            };
        }
        // gRPC-Web; or gRPC over HTTP/1.1, which tonic-web refuses (400)
        // before any call exists: gRPC itself needs HTTP/2.
        if let Some(content_type) = content_type.filter(|_| web).cloned() {
            // tonic-web picks the answer's mode from `Accept` alone; a text
            // request whose caller named no gRPC-Web type there (`curl`'s
            // `*/*`) gets a text answer, as it would expect.
            let accepts_web = request
                .headers()
                .get(ACCEPT)
                .is_some_and(|a| is_grpc_web(a.as_bytes()));
            if !accepts_web
                && content_type
                    .as_bytes()
                    .starts_with(b"application/grpc-web-text")
            {
                request.headers_mut().insert(ACCEPT, content_type.clone());
            }
            request
                .extensions_mut()
                .insert(CallerContentType(content_type));
        }
        // The service polled ready goes into tonic-web; a clone stays.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let mut web = tonic_web::GrpcWebLayer::new().layer(StatusInTrailers(ready));
        Either::Web {
            future: web.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of either path (each variant holds its path's future).
    #[project = EitherProj]
    #[allow(missing_docs)]
    pub enum Either<G, W> {
        /// Plain gRPC, untouched.
        Grpc { #[pin] future: G },
        /// Translated from and to gRPC-Web.
        Web { #[pin] future: W },
    }
}

impl<G, W> Future for Either<G, W>
where
    G: Future<Output = Result<http::Response<Body>, Infallible>>,
    W: Future<Output = Result<http::Response<Body>, Infallible>>,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Grpc { future } => future.poll(cx),
            EitherProj::Web { future } => future.poll(cx),
        }
    }
}

/// The gRPC service as gRPC-Web reaches it: a trailers-only answer's
/// status moves to trailers (see the module doc).
#[derive(Debug, Clone)]
pub struct StatusInTrailers<S>(S);

/// The headers that carry a gRPC status.
const STATUS_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

impl<S> Service<http::Request<Body>> for StatusInTrailers<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = WebFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move { Ok(status_in_trailers(answer.await?)) })
    }
}

/// `response` with its status headers, if any, as trailers of an empty body.
fn status_in_trailers(mut response: http::Response<Body>) -> http::Response<Body> {
    if !response.headers().contains_key(STATUS_HEADERS[0]) {
        return response;
    }
    let mut trailers = HeaderMap::new();
    for name in STATUS_HEADERS {
        if let Some(value) = response.headers_mut().remove(name) {
            trailers.insert(name, value);
        }
    }
    // Trailers-only: the body is empty, so nothing is lost by replacing it.
    *response.body_mut() = Body::new(TrailersOnly(Some(trailers)));
    response
}

/// A body of no data and these trailers.
struct TrailersOnly(Option<HeaderMap>);

impl http_body::Body for TrailersOnly {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|t| Ok(http_body::Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tonic::{Code, Status, codegen::http::HeaderValue};

    use super::*;

    #[tokio::test]
    async fn a_trailers_only_status_moves_to_the_trailers_whole() {
        let status = Status::with_details(
            Code::NotFound,
            "no such job",
            Bytes::from_static(b"\x08\x05details"),
        );
        let mut response = status.into_http::<Body>();
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("r-1"));
        let before: Vec<_> = STATUS_HEADERS
            .iter()
            .map(|h| response.headers().get(*h).cloned())
            .collect();
        assert!(before.iter().all(Option::is_some), "{before:?}");

        let moved = status_in_trailers(response);
        assert!(
            STATUS_HEADERS
                .iter()
                .all(|h| !moved.headers().contains_key(*h))
        );
        assert_eq!(moved.headers()["x-request-id"], "r-1");
        let collected = moved.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let after: Vec<_> = STATUS_HEADERS
            .iter()
            .map(|h| trailers.get(*h).cloned())
            .collect();
        assert_eq!(after, before);
        let round_trip = Status::from_header_map(&trailers).unwrap();
        assert_eq!(round_trip.code(), Code::NotFound);
        assert_eq!(round_trip.details(), b"\x08\x05details");
    }

    #[test]
    fn an_answer_with_a_body_is_left_alone() {
        let response = http::Response::new(Body::empty());
        let kept = status_in_trailers(response);
        assert!(kept.headers().is_empty());
    }
}
