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
    let (reporter, health) = parts();
    (reporter, HealthServer::new(health))
}

fn parts() -> (Reporter, Health) {
    let (tx, rx) = watch::channel(Phase::Serving);
    (Reporter(tx), Health(rx))
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

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;
    use tonic_health::pb::health_server::Health as _;

    use super::*;

    fn request(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: service.to_owned(),
        })
    }

    async fn check(health: &Health, service: &str) -> Result<ServingStatus, Status> {
        let answer = health.check(request(service)).await?.into_inner();
        Ok(answer.status())
    }

    #[tokio::test]
    async fn a_watcher_that_missed_the_drain_still_sees_not_serving_before_the_end() {
        let (reporter, health) = parts();
        let mut watch = health.watch(request("")).await.unwrap().into_inner();
        assert_eq!(
            watch.next().await.unwrap().unwrap().status(),
            ServingStatus::Serving
        );
        reporter.not_serving();
        reporter.close_watches();
        assert_eq!(
            watch.next().await.unwrap().unwrap().status(),
            ServingStatus::NotServing
        );
        assert!(watch.next().await.is_none());
        // Check keeps answering, for both names, until the server is gone.
        for service in ["", KTP_SERVICE_NAME] {
            assert_eq!(
                check(&health, service).await.unwrap(),
                ServingStatus::NotServing
            );
        }
        drop(reporter);
        assert_eq!(check(&health, "").await.unwrap(), ServingStatus::NotServing);
    }

    #[tokio::test]
    async fn a_watch_started_after_the_listener_closed_says_not_serving_and_ends() {
        let (reporter, health) = parts();
        reporter.close_watches();
        let watch = health.watch(request(KTP_SERVICE_NAME)).await.unwrap();
        let statuses: Vec<_> = watch.into_inner().collect().await;
        let statuses: Vec<_> = statuses.into_iter().map(|s| s.unwrap().status()).collect();
        assert_eq!(statuses, [ServingStatus::NotServing]);
    }

    #[tokio::test]
    async fn unknown_services_are_not_found() {
        let (_reporter, health) = parts();
        assert_eq!(
            check(&health, "nope.v1.Nope").await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        let watch = health.watch(request("nope.v1.Nope")).await;
        assert_eq!(watch.unwrap_err().code(), tonic::Code::NotFound);
    }
}
