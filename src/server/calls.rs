//! The gRPC services as hyper serves them on each connection: tonic's
//! router, with the caller's `grpc-timeout` as a deadline, as tonic's own
//! server applied it. Unlike tonic's server it attaches no connect info
//! (peer address, client certificates) to requests: nothing reads them.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use hyper::{Request, Response, body::Incoming};
use tokio::time::Sleep;
use tonic::{Status, body::Body, service::Routes};
use tower::{ServiceExt, util::Oneshot};

use crate::call::metadata::caller_timeout;

/// Every service of the port, cloned into each connection.
#[derive(Clone)]
pub(super) struct Calls {
    routes: Routes,
}

impl Calls {
    pub(super) fn new(routes: Routes) -> Self {
        Self {
            routes: routes.prepare(),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Calls {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = WithDeadline<Oneshot<Routes, Request<Body>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let deadline = caller_timeout(request.headers()).map(tokio::time::sleep);
        WithDeadline {
            call: self.routes.clone().oneshot(request.map(Body::new)),
            deadline,
        }
    }
}

pin_project_lite::pin_project! {
    /// A call that ends at the caller's deadline: a handler still running
    /// then is dropped (its work cancelled) and the caller gets CANCELLED
    /// "Timeout expired", the answer tonic's server gave. The gateway's own
    /// handlers answer DEADLINE_EXCEEDED just before (`grpc::metadata`);
    /// this is the backstop for the rest (health, reflection).
    pub(super) struct WithDeadline<F> {
        #[pin]
        call: F,
        #[pin]
        deadline: Option<Sleep>,
    }
}

impl<F> Future for WithDeadline<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.call.poll(cx) {
            return Poll::Ready(answer);
        }
        match this.deadline.as_pin_mut().map(|d| d.poll(cx)) {
            Some(Poll::Ready(())) => {
                let (parts, ()) = Status::cancelled("Timeout expired")
                    .into_http::<()>()
                    .into_parts();
                Poll::Ready(Ok(Response::from_parts(parts, Body::empty())))
            }
            _ => Poll::Pending,
        }
    }
}
