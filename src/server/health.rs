//! `grpc.health.v1.Health` for the whole server ("") and `ktp.v1.KtpService`,
//! following the shutdown sequence: SERVING, then NOT_SERVING from the signal
//! until the process exits, with `Watch` streams ended (status OK) once the
//! listener closes.
//!
//! tonic-health's reporter cannot do both: its only way to end `Watch`
//! streams is to forget the service, after which `Check` answers NOT_FOUND
//! and a probe reads "unknown service" instead of "going away".

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::sync::watch;
use tokio_stream::{Stream, wrappers::WatchStream};
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::HealthServer,
};

use crate::grpc::KTP_SERVICE_NAME;

/// Where the server is in its life, as health reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking calls.
    Serving,
    /// Shutting down, still answering (the drain delay).
    Draining,
    /// The listener is closed: `Watch` streams end, `Check` still says
    /// NOT_SERVING.
    Closed,
}

impl Phase {
    fn status(self) -> ServingStatus {
        match self {
            Self::Serving => ServingStatus::Serving,
            Self::Draining | Self::Closed => ServingStatus::NotServing,
        }
    }
}

/// The server's side of health: moves it through the phases.
#[derive(Debug)]
pub(super) struct Reporter(watch::Sender<Phase>);

impl Reporter {
    /// Health turns NOT_SERVING; `Watch` streams say so and stay open.
    pub(super) fn not_serving(&self) {
        self.0.send_replace(Phase::Draining);
    }

    /// The listener is closed: `Watch` streams end with OK, so that a
    /// watcher cannot hold the drain; `Check` keeps answering NOT_SERVING.
    pub(super) fn close_watches(&self) {
        self.0.send_replace(Phase::Closed);
    }
}

/// A reporter (SERVING) and the service it drives.
pub(super) fn service() -> (Reporter, HealthServer<Health>) {
    let (tx, rx) = watch::channel(Phase::Serving);
    (Reporter(tx), HealthServer::new(Health(rx)))
}

/// The gRPC service; it knows "" (the whole server) and `ktp.v1.KtpService`.
#[derive(Debug)]
pub(super) struct Health(watch::Receiver<Phase>);

fn known(request: &Request<HealthCheckRequest>) -> Result<(), Status> {
    match request.get_ref().service.as_str() {
        "" | KTP_SERVICE_NAME => Ok(()),
        _ => Err(Status::not_found("service not registered")),
    }
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        known(&request)?;
        let phase = *self.0.borrow();
        Ok(Response::new(answer(phase.status())))
    }

    type WatchStream = Statuses;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        known(&request)?;
        Ok(Response::new(Statuses {
            phases: WatchStream::new(self.0.clone()),
            sent: None,
            ended: false,
        }))
    }
}

/// A `Watch` stream: the current status, then each change; it ends after
/// NOT_SERVING once the listener closes (or when the server is gone).
pub(super) struct Statuses {
    phases: WatchStream<Phase>,
    /// The last status sent, so a watcher sees each status once, and
    /// NOT_SERVING before the end even if it missed the draining phase.
    sent: Option<ServingStatus>,
    /// The listener closed: the stream ends after its last status.
    ended: bool,
}

impl std::fmt::Debug for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statuses")
            .field("sent", &self.sent)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Stream for Statuses {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let Some(phase) = ready!(Pin::new(&mut self.phases).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            self.ended = phase == Phase::Closed;
            let status = phase.status();
            if self.sent != Some(status) {
                self.sent = Some(status);
                return Poll::Ready(Some(Ok(answer(status))));
            }
        }
    }
}
