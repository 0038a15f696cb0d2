//! [`CallLayer`]: admission, per-method message limits and the body's read
//! time, and handing each call to its [`Recorder`].

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};
use tower::Layer;
use tracing::Instrument;

use super::{Call, record::Recorder};
use crate::{
    call::{
        limit::{Limited, ReadBy},
        protocol::{Codec, protocol_of},
    },
    error::{GatewayError, Scope},
    metrics::Metrics,
    proto::KTP_METHODS,
    resilience::overload::InFlightLimit,
    telemetry::traces::Tracer,
};

/// Records every call of the service it wraps; see the module doc.
#[derive(Debug, Clone)]
pub struct CallLayer {
    metrics: Metrics,
    in_flight: InFlightLimit,
    /// Each method's largest request message.
    limits: MessageLimits,
    /// `server.request_read_timeout`: a call's request message must have
    /// arrived this long after its headers.
    read_timeout: Duration,
    /// Starts each call's SERVER span (off: none).
    tracer: Tracer,
}

impl CallLayer {
    /// Every method: calls in flight capped by `in_flight`, request
    /// messages by `max_message_bytes` (unless [`Self::method`] says else)
    /// and their arrival by `read_timeout` after the headers.
    pub fn new(
        metrics: Metrics,
        in_flight: InFlightLimit,
        max_message_bytes: usize,
        read_timeout: Duration,
    ) -> Self {
        Self {
            metrics,
            in_flight,
            limits: MessageLimits {
                default: max_message_bytes,
                methods: Arc::default(),
            },
            read_timeout,
            tracer: Tracer::off(),
        }
    }

    /// Each call gets a SERVER span from `tracer`.
    pub fn traced(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// `method` (a full name, `/ktp.v1.KtpService/SubmitKtp`) takes
    /// messages up to `max_message_bytes`.
    pub fn method(mut self, method: &'static str, max_message_bytes: usize) -> Self {
        Arc::make_mut(&mut self.limits.methods).push((method, max_message_bytes));
        self
    }

    /// Each method's largest request message, as this layer holds them.
    pub fn limits(&self) -> &MessageLimits {
        &self.limits
    }
}

/// Each method's largest request message (decoded: what a Connect JSON
/// body carries in base64 counts as its bytes).
#[derive(Debug, Clone)]
pub struct MessageLimits {
    default: usize,
    /// Methods whose largest message differs from the default.
    methods: Arc<Vec<(&'static str, usize)>>,
}

impl MessageLimits {
    /// The largest request message of `method` (a full name).
    pub fn of(&self, method: &str) -> usize {
        self.methods
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(self.default, |(_, bytes)| *bytes)
    }

    /// The largest message any method takes: tonic's own limit.
    pub fn largest(&self) -> usize {
        self.methods
            .iter()
            .map(|(_, bytes)| *bytes)
            .fold(self.default, usize::max)
    }
}

/// The most a Connect JSON body may hold for a message of `limit` bytes:
/// base64 makes bytes a third longer, and an encoder that escapes `/`
/// (PHP's does) longer still. The decoded message is held to `limit`.
fn json_body_limit(limit: usize) -> usize {
    limit.saturating_mul(2).saturating_add(64 * 1024)
}

impl<S> Layer<S> for CallLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CallLayer`] makes.
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    layer: CallLayer,
}

impl<S: NamedService> NamedService for Recorded<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for Recorded<S>
where
    S: Service<http::Request<Limited<B>>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Only our own methods are recorded: the label set stays bounded.
        let Some(method) = KTP_METHODS.iter().find(|m| **m == request.uri().path()) else {
            let unlimited = request.map(|b| Limited::new(b, usize::MAX, None, Arc::default()));
            return Box::pin(self.inner.call(unlimited));
        };
        let protocol = protocol_of(request.extensions(), request.headers());
        let call = Arc::new(Call::new(
            method,
            protocol,
            request.headers(),
            &self.layer.tracer,
        ));
        let recorder = Recorder {
            metrics: self.layer.metrics.clone(),
            call: Arc::clone(&call),
            protocol,
            answered: false,
        };
        let Some(admitted) = self.layer.in_flight.try_admit() else {
            let status = call.fail(&GatewayError::Overloaded {
                scope: Scope::Calls,
                limit: self.layer.in_flight.limit(),
            });
            return Box::pin(std::future::ready(Ok(recorder.finish(status.into_http()))));
        };
        // Held until the answer is ready or the call starts waiting: the
        // cap counts calls, not requests, and not the waits.
        call.hold_in_flight(admitted);
        let max_message_bytes = self.layer.limits.of(method);
        let read_by = ReadBy {
            at: call.started + self.layer.read_timeout,
            limit: self.layer.read_timeout,
        };
        let refused = Arc::clone(&call.refused_body);
        request.extensions_mut().insert(call);
        // A Connect body is the message itself, unframed (JSON: its text).
        // Marked by the Connect edge, which answered 415 to any other type.
        let codec = request.extensions().get::<Codec>().copied();
        let request = request.map(|b| match codec {
            None => Limited::new(b, max_message_bytes, Some(read_by), refused),
            Some(Codec::Proto) => Limited::whole(b, max_message_bytes, Some(read_by), refused),
            Some(Codec::Json) => Limited::whole(
                b,
                json_body_limit(max_message_bytes),
                Some(read_by),
                refused,
            ),
        });
        // Every line logged while the call runs carries its request id.
        // Those lines are all DEBUG or finer, so is the span: at the default
        // level it is never built (bench/README.md, change 9).
        let span = tracing::debug_span!("call", request_id = %recorder.call.request_id);
        let answer = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = answer.await?;
            Ok(recorder.finish(response))
        })
    }
}
