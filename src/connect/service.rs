//! The Connect adapter of the use cases, where tonic's generated server
//! stands for gRPC: it reads the body (bounded by the call layer's
//! [`Limited`](crate::call::limit::Limited)), decodes the message, runs
//! its use case through [`Call::answer`] and encodes the answer. An error
//! leaves as the gRPC status the error table made; the edge
//! ([`super::Connect`]) renders it as Connect's error.

use std::{convert::Infallible, pin::Pin, sync::Arc, task::Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use prost::Message;
use serde::Serialize;
use tonic::{
    Code, Status,
    body::Body,
    codegen::http::{
        self, HeaderName, HeaderValue,
        header::{CONTENT_ENCODING, CONTENT_TYPE},
    },
};

use super::json::FromJson;
use crate::{
    call::{Call, MessageLimits, protocol::Codec},
    error::{GatewayError, MalformedRequest, Refusal},
    proto::KtpMethod,
    usecase::KtpApi,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// The use cases as Connect unary RPCs.
#[derive(Debug, Clone)]
pub struct ConnectApi {
    /// Shared: the router clones the service for every call, gRPC's too.
    api: Arc<KtpApi>,
    limits: MessageLimits,
}

impl ConnectApi {
    /// `api` behind Connect, its decoded messages held to `limits` (the
    /// call layer's: a JSON body is bounded there by its own, looser cap).
    pub fn new(api: KtpApi, limits: MessageLimits) -> Self {
        Self {
            api: Arc::new(api),
            limits,
        }
    }
}

impl<B> tower::Service<http::Request<B>> for ConnectApi
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Answer {
        let call = Call::of_http(&request);
        let codec = request
            .extensions()
            .get::<Codec>()
            .copied()
            .unwrap_or(Codec::Json);
        if let Err(refused) = check_headers(request.headers()) {
            return ready(call.fail(&refused).into_http());
        }
        let limit = self.limits.of(request.uri().path());
        let Some(method) = KtpMethod::of(request.uri().path()) else {
            let status = Status::unimplemented(format!(
                "no such method: {}",
                request.uri().path().chars().take(128).collect::<String>()
            ));
            return ready(status.into_http());
        };
        let api = Arc::clone(&self.api);
        let body = request.into_body();
        let input = Input { call, codec, limit };
        Box::pin(async move {
            Ok(match method {
                KtpMethod::GetKtpResult => {
                    input.answer(body, |c, r| api.get_ktp_result(c, r)).await
                }
                KtpMethod::SubmitKtp => input.answer(body, |c, r| api.submit_ktp(c, r)).await,
                KtpMethod::ExtractKtp => input.answer(body, |c, r| api.extract_ktp(c, r)).await,
            })
        })
    }
}

fn ready(response: http::Response<Body>) -> Answer {
    Box::pin(std::future::ready(Ok(response)))
}

/// Connect's version header, made once (a name given as text is parsed
/// at every lookup).
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("connect-protocol-version");

/// What Connect's headers may ask that the gateway does not serve.
fn check_headers(headers: &http::HeaderMap) -> Result<(), GatewayError> {
    if let Some(version) = headers.get(&PROTOCOL_VERSION)
        && version != "1"
    {
        return Err(refused(
            Code::InvalidArgument,
            "connect-protocol-version must be 1",
        ));
    }
    if let Some(encoding) = headers.get(CONTENT_ENCODING)
        && encoding != "identity"
    {
        return Err(refused(
            Code::Unimplemented,
            "request compression is not supported: send the body uncompressed",
        ));
    }
    Ok(())
}

fn refused(code: Code, message: &str) -> GatewayError {
    GatewayError::Malformed(MalformedRequest {
        kind: Refusal::Other(code as i32),
        message: message.to_owned(),
    })
}

/// A Connect call's input side.
struct Input {
    call: Arc<Call>,
    codec: Codec,
    /// The method's largest decoded message.
    limit: usize,
}

impl Input {
    /// Reads, decodes and answers: within the caller's deadline, with every
    /// failure (body, decoding, the use case's) rendered by the call.
    async fn answer<B, Req, Res, F, W>(self, body: B, work: F) -> http::Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
        Req: Message + Default + FromJson,
        Res: Message + Serialize,
        F: FnOnce(Arc<Call>, Req) -> W,
        W: Future<Output = Result<Res, GatewayError>>,
    {
        let call = Arc::clone(&self.call);
        let decoded = async {
            let bytes = read(body, &call).await?;
            let request = self.decode::<Req>(&bytes)?;
            drop(bytes);
            work(Arc::clone(&call), request).await
        };
        match Arc::clone(&self.call).answer(decoded).await {
            Ok(message) => self.encode(&message),
            Err(status) => status.into_http(),
        }
    }

    fn decode<Req: Message + Default + FromJson>(&self, bytes: &[u8]) -> Result<Req, GatewayError> {
        let request = match self.codec {
            Codec::Proto => Req::decode(bytes).map_err(|e| {
                GatewayError::Malformed(MalformedRequest {
                    kind: Refusal::NotDecodable,
                    message: format!("the request is not a valid protobuf message: {e}"),
                })
            })?,
            Codec::Json => Req::from_json(bytes)?,
        };
        // The limits hold the message, not its text: base64 in JSON is a
        // third longer than the image it carries.
        let size = request.encoded_len();
        if size > self.limit {
            return Err(GatewayError::Malformed(MalformedRequest {
                kind: Refusal::TooLarge,
                message: crate::call::limit::TooLarge {
                    size: size as u64,
                    limit: self.limit,
                }
                .to_string(),
            }));
        }
        Ok(request)
    }

    fn encode<Res: Message + Serialize>(&self, message: &Res) -> http::Response<Body> {
        let body = match self.codec {
            Codec::Proto => message.encode_to_vec(),
            // A card is about 900 bytes of JSON: one buffer, not four
            // doublings from serde_json's 128. Our own messages always
            // serialize; an empty object if not.
            Codec::Json => {
                let mut json = Vec::with_capacity(1024);
                match serde_json::to_writer(&mut json, message) {
                    Ok(()) => json,
                    Err(_) => b"{}".to_vec(),
                }
            }
        };
        let mut response =
            http::Response::new(Body::new(http_body_util::Full::new(Bytes::from(body))));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(self.codec.content_type()),
        );
        response
    }
}

/// The whole body; a cut body's error is the call layer's reason for the
/// cut (too large, too slow), any other a body that could not be read.
async fn read<B>(body: B, call: &Call) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    // One chunk, the usual small request, comes back without a copy.
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            let e: BoxError = e.into();
            Err(call.refused_body().unwrap_or_else(|| {
                GatewayError::Malformed(MalformedRequest {
                    kind: Refusal::NotDecodable,
                    message: format!("the request body could not be read: {e}"),
                })
            }))
        }
    }
}
