//! The spans' way out: a bounded queue the SDK fills as spans end, and one
//! task on the gateway's own runtime that sends them to the collector in
//! batches (OTLP `TraceService/Export` over a tonic channel).
//!
//! Not the SDK's batch processor: it exports on a thread of its own, where
//! a tonic exporter has no runtime, and it drops spans without a count.
//! Here a full queue drops the span at once (`queue_full`) and a batch the
//! collector did not take is dropped whole (`export_failed`): a slow or dead
//! collector costs spans, never a call's time.

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_proto::{
    tonic::{
        self as proto,
        collector::trace::v1::{
            ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
        },
        trace::v1::{ResourceSpans, ScopeSpans},
    },
    transform::common::tonic::ResourceAttributesWithSchema,
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use crate::metrics::Metrics;

/// Spans queued at most; past it they are dropped (`queue_full`). About
/// 2 KiB each: a few MiB at worst.
pub(super) const QUEUE_SPANS: usize = 2048;
/// Spans sent in one export at most: enough to amortise a request, few
/// enough that its encoding buffer is not grown (copied) again and again.
const MAX_BATCH: usize = 128;
/// How long a partial batch waits for more spans before it is sent.
const BATCH_DELAY: Duration = Duration::from_millis(500);
/// How long one export may take (the issue's, and the SDK's default).
pub(super) const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SDK's end of the queue.
#[derive(Debug)]
pub(super) struct Enqueue {
    tx: mpsc::Sender<SpanData>,
    metrics: Metrics,
}

impl SpanProcessor for Enqueue {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Never waits: a full queue (or one whose task has stopped) drops.
        if self.tx.try_send(span).is_err() {
            self.metrics.record_spans_dropped("queue_full", 1);
        }
    }

    /// The flush that matters is async ([`Sender::flush`]), at shutdown.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The task's end: sends what is queued, and at shutdown what is left.
pub(super) struct Sender {
    rx: mpsc::Receiver<SpanData>,
    client: TraceServiceClient<Channel>,
    resource: ResourceAttributesWithSchema,
    metrics: Metrics,
    /// Turned true at shutdown: send what is queued now, then stop.
    stop: watch::Receiver<bool>,
    /// Whether the last export failed (one WARN per outage, not per batch).
    failing: bool,
}

/// The queue, as a processor for the SDK and a sender for the task.
pub(super) fn queue(
    channel: Channel,
    resource: &Resource,
    metrics: &Metrics,
    stop: watch::Receiver<bool>,
) -> (Enqueue, Sender) {
    let (tx, rx) = mpsc::channel(QUEUE_SPANS);
    let enqueue = Enqueue {
        tx,
        metrics: metrics.clone(),
    };
    let sender = Sender {
        rx,
        client: TraceServiceClient::new(channel),
        resource: resource.into(),
        metrics: metrics.clone(),
        stop,
        failing: false,
    };
    (enqueue, sender)
}

impl Sender {
    /// Sends batches until shutdown; then sends what is queued and returns.
    pub(super) async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let received = tokio::select! {
                n = self.rx.recv_many(&mut batch, MAX_BATCH) => Some(n),
                _ = self.stop.wait_for(|stop| *stop) => None,
            };
            if received == Some(0) {
                return;
            }
            let stopping = *self.stop.borrow();
            if !stopping && batch.len() < MAX_BATCH {
                // A moment for more spans, so that a quiet gateway sends
                // a batch a while rather than a request per span.
                tokio::select! {
                    () = tokio::time::sleep(BATCH_DELAY) => {}
                    _ = self.stop.wait_for(|stop| *stop) => {}
                }
                while batch.len() < MAX_BATCH
                    && let Ok(span) = self.rx.try_recv()
                {
                    batch.push(span);
                }
            }
            if !batch.is_empty() {
                self.export(std::mem::take(&mut batch)).await;
            }
            if *self.stop.borrow() {
                self.drain().await;
                return;
            }
        }
    }

    /// At shutdown: everything still queued, in batches.
    async fn drain(&mut self) {
        loop {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while batch.len() < MAX_BATCH
                && let Ok(span) = self.rx.try_recv()
            {
                batch.push(span);
            }
            if batch.is_empty() {
                return;
            }
            self.export(batch).await;
        }
    }

    /// The batch as one request: one resource, one scope (the gateway has
    /// one tracer), so no grouping (the transform's hashes every span's
    /// scope: a few percent of a sampled call's CPU).
    fn request(&self, batch: Vec<SpanData>) -> ExportTraceServiceRequest {
        let scope = batch
            .first()
            .map(|span| (&span.instrumentation_scope, None).into());
        let spans = batch.into_iter().map(Into::into).collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(proto::resource::v1::Resource {
                    attributes: self.resource.attributes.0.clone(),
                    dropped_attributes_count: 0,
                    entity_refs: Vec::new(),
                }),
                scope_spans: vec![ScopeSpans {
                    scope,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: self.resource.schema_url.clone().unwrap_or_default(),
            }],
        }
    }

    async fn export(&mut self, batch: Vec<SpanData>) {
        let spans = batch.len() as u64;
        let request = self.request(batch);
        let sent = tokio::time::timeout(EXPORT_TIMEOUT, self.client.export(request)).await;
        let error = match sent {
            Ok(Ok(_)) => None,
            Ok(Err(status)) => Some(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Some(format!("no answer within {EXPORT_TIMEOUT:?}")),
        };
        match error {
            None if self.failing => {
                self.failing = false;
                tracing::info!("span export works again");
            }
            None => {}
            Some(error) => {
                self.metrics.record_spans_dropped("export_failed", spans);
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(
                        error,
                        spans,
                        "span export failed; spans are dropped until the collector answers \
                         (ktp_gateway_trace_spans_dropped_total)"
                    );
                }
            }
        }
    }
}
