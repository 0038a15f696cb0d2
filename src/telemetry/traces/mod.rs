//! OpenTelemetry traces: the tracer that starts each call's SERVER span
//! ([`Tracer`]), and the export to an OTLP collector ([`Export`]), off
//! unless `trace.otlp_endpoint` is set. The spans themselves are
//! `crate::trace::span`'s.
//!
//! Sampling is parent-based: a caller's `traceparent` decides for its call,
//! roots are sampled at `trace.sample_ratio`. Besides the `trace.*` keys,
//! only `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read.

mod export;

use std::time::Duration;

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_sdk::{
    Resource,
    trace::{RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider, SpanLimits},
};
use percent_encoding::percent_decode_str;
use tokio::{sync::watch, task::JoinHandle};
use tonic::transport::{ClientTlsConfig, Endpoint};

use crate::{
    config::TraceSettings,
    metrics::Metrics,
    trace::{
        TraceContext,
        span::{SpanHandle, key},
    },
};

/// The service name when `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) does not say.
pub const DEFAULT_SERVICE_NAME: &str = "ktp-gateway";

/// The gRPC service every SERVER span names.
const SERVICE: &str = "ktp.v1.KtpService";

/// Starts calls' SERVER spans; off, it starts none. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tracer {
    tracer: Option<SdkTracer>,
    /// `trace.sample_ratio`, for roots.
    ratio: f64,
}

/// Span export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot export spans to trace.otlp_endpoint: {0}")]
pub struct TraceError(String);

impl Tracer {
    /// Starts no span: calls keep the caller's context as it came.
    pub fn off() -> Self {
        Self::default()
    }

    /// The context of a call to `method` (`/ktp.v1.KtpService/GetKtpResult`)
    /// that came with `caller`'s: with export on, the call's SERVER span
    /// under it (or a root); off, `caller` as it is.
    pub fn call(
        &self,
        method: &'static str,
        rpc_system: &'static str,
        caller: Option<TraceContext>,
    ) -> Option<TraceContext> {
        let Some(tracer) = &self.tracer else {
            return caller;
        };
        let name = method.trim_start_matches('/');
        let short = name.rsplit('/').next().unwrap_or(name);
        let attributes = || {
            vec![
                KeyValue::new(key::RPC_SYSTEM, rpc_system),
                KeyValue::new(key::RPC_SERVICE, SERVICE),
                KeyValue::new(key::RPC_METHOD, short),
            ]
        };
        let span = SpanHandle::server(tracer, name, attributes, caller.as_ref(), self.ratio);
        Some(TraceContext::with_span(caller.as_ref(), span))
    }
}

/// The running export; flush it at shutdown.
#[derive(Debug)]
pub struct Export {
    provider: SdkTracerProvider,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The tracer and, with `trace.otlp_endpoint` set, its export. Call within
/// the runtime: the export is a task on it.
pub fn start(
    settings: &TraceSettings,
    metrics: &Metrics,
) -> Result<(Tracer, Option<Export>), TraceError> {
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok((Tracer::off(), None));
    };
    let mut channel = Endpoint::from_shared(endpoint.as_str().to_owned())
        .map_err(|e| TraceError(e.to_string()))?
        .connect_timeout(export::EXPORT_TIMEOUT)
        .timeout(export::EXPORT_TIMEOUT);
    if endpoint.is_https() {
        channel = channel
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| TraceError(e.to_string()))?;
    }
    let resource = resource(
        std::env::var("OTEL_SERVICE_NAME").ok().as_deref(),
        std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok().as_deref(),
    );
    let (stop, stopped) = watch::channel(false);
    let (enqueue, sender) = export::queue(channel.connect_lazy(), &resource, metrics, stopped);
    // Every knob set here: the SDK's defaults would read OTEL_TRACES_SAMPLER
    // and OTEL_SPAN_*_LIMIT from the environment. The sampling decision is
    // made before a span reaches the SDK (`SpanHandle::server`: the caller's,
    // else `trace.sample_ratio`), so that an unsampled call costs no SDK
    // work; the SDK only follows it.
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_id_generator(RandomIdGenerator::default())
        .with_span_limits(SpanLimits::default())
        .with_resource(resource)
        .with_span_processor(enqueue)
        .build();
    let tracer = provider.tracer("ktp-gateway");
    let task = tokio::spawn(sender.run());
    tracing::info!(
        endpoint = endpoint.as_str(),
        sample_ratio = *settings.sample_ratio,
        "exporting spans"
    );
    let export = Export {
        provider,
        stop,
        task,
    };
    Ok((
        Tracer {
            tracer: Some(tracer),
            ratio: *settings.sample_ratio,
        },
        Some(export),
    ))
}

impl Export {
    /// Sends the spans still queued, within `within` (what is left of
    /// `server.shutdown_grace`); what cannot be sent by then is lost.
    pub async fn flush(self, within: Duration) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(within, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                within_ms = within.as_millis() as u64,
                "spans not all exported before the grace period ended"
            );
        }
        drop(self.provider);
    }
}

/// The spans' resource: `service.name` from `OTEL_SERVICE_NAME`, else from
/// `OTEL_RESOURCE_ATTRIBUTES`, else [`DEFAULT_SERVICE_NAME`]; the other
/// attributes of `OTEL_RESOURCE_ATTRIBUTES` (the Deployment's pod and
/// namespace); `service.version`. A malformed pair is skipped, as the SDKs do.
fn resource(service_name: Option<&str>, attributes: Option<&str>) -> Resource {
    let pairs: Vec<(String, String)> = attributes
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            let value = percent_decode_str(value.trim()).decode_utf8().ok()?;
            (!key.is_empty()).then(|| (key.to_owned(), value.into_owned()))
        })
        .collect();
    let name = service_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            pairs
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.as_str())
        })
        .unwrap_or(DEFAULT_SERVICE_NAME)
        .to_owned();
    Resource::builder_empty()
        .with_attributes(
            pairs
                .into_iter()
                .filter(|(k, _)| k != "service.name")
                .map(|(k, v)| KeyValue::new(k, v)),
        )
        .with_service_name(name)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use opentelemetry::Key;

    use super::resource;

    fn get(service: Option<&str>, attributes: Option<&str>, key: &'static str) -> Option<String> {
        resource(service, attributes)
            .get(&Key::from_static_str(key))
            .map(|v| v.to_string())
    }

    #[test]
    fn the_service_name_comes_from_otel_service_name_then_the_attributes_then_the_default() {
        assert_eq!(
            get(None, None, "service.name").as_deref(),
            Some("ktp-gateway")
        );
        assert_eq!(
            get(Some(" "), None, "service.name").as_deref(),
            Some("ktp-gateway")
        );
        let attributes = Some("service.name=from-attrs,k8s.pod.name=pod-1");
        assert_eq!(
            get(None, attributes, "service.name").as_deref(),
            Some("from-attrs")
        );
        assert_eq!(
            get(Some("named"), attributes, "service.name").as_deref(),
            Some("named")
        );
    }

    #[test]
    fn attributes_are_decoded_and_malformed_pairs_skipped() {
        let attributes = Some("k8s.pod.name=pod%2D1, k8s.namespace.name = ns ,broken,=x,empty=");
        assert_eq!(
            get(None, attributes, "k8s.pod.name").as_deref(),
            Some("pod-1")
        );
        assert_eq!(
            get(None, attributes, "k8s.namespace.name").as_deref(),
            Some("ns")
        );
        assert_eq!(get(None, attributes, "empty").as_deref(), Some(""));
        assert_eq!(get(None, attributes, "broken"), None);
        assert!(get(None, None, "service.version").is_some());
    }
}
