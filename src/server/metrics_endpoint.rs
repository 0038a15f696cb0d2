//! `GET /metrics` on its own port, apart from the gRPC one.

use tokio::net::TcpListener;

use crate::{metrics::Metrics, resilience::overload::InFlightLimit, upstream::Upstream};

/// `GET /metrics` on its own port. Gauges are refreshed at scrape time.
pub(super) struct MetricsEndpoint {
    pub(super) metrics: Metrics,
    pub(super) in_flight: InFlightLimit,
    pub(super) upstream: Upstream,
}

impl MetricsEndpoint {
    pub(super) async fn serve(self, listener: TcpListener) {
        let endpoint = std::sync::Arc::new(self);
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let endpoint = endpoint.clone();
                async move {
                    endpoint.metrics.refresh(
                        endpoint.in_flight.in_flight(),
                        endpoint.upstream.circuit_phase().into(),
                    );
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        endpoint.metrics.render(),
                    )
                }
            }),
        );
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    }
}
