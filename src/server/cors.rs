//! CORS for browser callers of `ktp.v1.KtpService` (gRPC-Web), allowed by
//! origin (`server.cors_allowed_origins`).
//!
//! A preflight (`OPTIONS`) from an allowed origin is answered here (204)
//! allowing `POST` and exactly the request headers gRPC-Web and Connect
//! browser clients send, for 7,200 s; an answer to an allowed origin
//! exposes the headers such a client reads. Any other origin gets no CORS
//! header at all (its preflight: 403), so its browser lets no page read an
//! answer. Every answer to an allowed origin says `Vary: Origin`.
//!
//! Not tower-http's `CorsLayer`: it writes `Vary` and, on preflights, the
//! allowed methods, headers and max-age for any origin, listed or not, and
//! answers every `OPTIONS`; and it builds a header map for every request,
//! gRPC calls included, which never carry an `Origin`. Here a request
//! without one costs a header lookup.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use hyper::{
    Method, Request, Response, StatusCode,
    header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderValue, ORIGIN, VARY,
    },
};
use tonic::{body::Body, server::NamedService};
use tower::Service;

/// The request headers a preflight allows: what Connect and gRPC-Web
/// browser clients send, bearer token and request id included.
const ALLOW_HEADERS: &str = "content-type, connect-protocol-version, connect-timeout-ms, \
                             x-grpc-web, x-user-agent, grpc-timeout, authorization, x-request-id";
/// The answer headers a browser client may read: the status (gRPC-Web
/// reads it from the headers of a trailers-only answer) and the request id.
const EXPOSE_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE_SECS: &str = "7200";

/// `inner` with CORS for `origins`.
#[derive(Debug, Clone)]
pub(super) struct Cors<S> {
    inner: S,
    /// Each as browsers send it in `Origin`.
    origins: Arc<[HeaderValue]>,
}

impl<S> Cors<S> {
    /// `origins` as `config::CorsOrigins` holds them (ASCII origins).
    pub(super) fn new(origins: &[String], inner: S) -> Self {
        let origins = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Self { inner, origins }
    }

    /// The request's origin, if it is one of ours.
    fn allowed<B>(&self, request: &Request<B>) -> Option<HeaderValue> {
        let origin = request.headers().get(ORIGIN)?;
        self.origins.contains(origin).then(|| origin.clone())
    }
}

impl<S: NamedService> NamedService for Cors<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Cors<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // No origin allowed (the default): nothing to look up.
        let origin = match self.origins.is_empty() {
            true => None,
            false => self.allowed(&request),
        };
        if request.method() == Method::OPTIONS {
            return CorsFuture::Answered {
                response: Some(preflight(origin)),
            };
        }
        CorsFuture::Called {
            future: self.inner.call(request),
            origin,
        }
    }
}

/// The answer to a preflight from `origin` (`None`: not an allowed one).
fn preflight(origin: Option<HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    let Some(origin) = origin else {
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    };
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE_SECS),
    );
    headers.append(VARY, HeaderValue::from_static("Origin"));
    response
}

pin_project_lite::pin_project! {
    /// A preflight's answer, or the call's with the CORS headers its
    /// origin gets.
    #[project = CorsProj]
    pub(super) enum CorsFuture<F> {
        Answered { response: Option<Response<Body>> },
        Called { #[pin] future: F, origin: Option<HeaderValue> },
    }
}

impl<F> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsProj::Answered { response } => Poll::Ready(Ok(response.take().unwrap_or_default())),
            CorsProj::Called { future, origin } => {
                let Poll::Ready(Ok(mut response)) = future.poll(cx) else {
                    return Poll::Pending;
                };
                if let Some(origin) = origin.take() {
                    let headers = response.headers_mut();
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    headers.insert(
                        ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static(EXPOSE_HEADERS),
                    );
                    headers.append(VARY, HeaderValue::from_static("Origin"));
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
