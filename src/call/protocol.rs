//! Which protocol a call came in by, from the content type its caller
//! sent: the call layer labels metrics and spans with it and reads the
//! protocol's own deadline header, and the Connect edge its codec.

use tonic::codegen::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};

use crate::metrics::Protocol;

/// The content type the caller sent, kept in the request's extensions
/// when the gRPC-Web translation replaces it with `application/grpc`.
#[derive(Debug, Clone)]
pub struct CallerContentType(pub HeaderValue);

/// How a Connect call's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `application/json`: proto3 canonical JSON.
    Json,
    /// `application/proto`: the protobuf bytes.
    Proto,
}

impl Codec {
    /// The codec a Connect unary content type names, if it is one we serve.
    /// JSON may name its charset, which must be UTF-8 (RFC 8259).
    pub fn of(content_type: &[u8]) -> Option<Self> {
        match content_type {
            b"application/proto" => Some(Self::Proto),
            b"application/json" => Some(Self::Json),
            other => {
                let (base, params) = std::str::from_utf8(other).ok()?.split_once(';')?;
                let charset = params.trim().strip_prefix("charset=")?.trim_matches('"');
                (base.trim() == "application/json" && charset.eq_ignore_ascii_case("utf-8"))
                    .then_some(Self::Json)
            }
        }
    }

    /// The content type of an answer in this codec.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        }
    }
}

/// Whether a content type is gRPC's or gRPC-Web's (anything else on a
/// KTP path is spoken to by the Connect edge).
pub fn is_grpc_family(content_type: Option<&HeaderValue>) -> bool {
    content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// The content types of gRPC-Web, as `tonic-web` accepts them.
pub fn is_grpc_web(content_type: &[u8]) -> bool {
    matches!(
        content_type,
        b"application/grpc-web"
            | b"application/grpc-web+proto"
            | b"application/grpc-web-text"
            | b"application/grpc-web-text+proto"
    )
}

/// The protocol a request speaks, from the content type its caller sent
/// (kept aside by the gRPC-Web translation, else the request's own).
/// No content type at all is gRPC, as tonic takes it.
pub fn protocol_of(extensions: &tonic::codegen::http::Extensions, headers: &HeaderMap) -> Protocol {
    let sent = extensions
        .get::<CallerContentType>()
        .map(|c| &c.0)
        .or_else(|| headers.get(CONTENT_TYPE));
    match sent {
        None => Protocol::Grpc,
        Some(ct) if is_grpc_web(ct.as_bytes()) => Protocol::GrpcWeb,
        Some(ct) if is_grpc_family(Some(ct)) => Protocol::Grpc,
        Some(_) => Protocol::Connect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_read_from_the_content_type() {
        for (content_type, protocol) in [
            (Some("application/grpc"), Protocol::Grpc),
            (Some("application/grpc+proto"), Protocol::Grpc),
            (None, Protocol::Grpc),
            (Some("application/grpc-web"), Protocol::GrpcWeb),
            (Some("application/grpc-web+proto"), Protocol::GrpcWeb),
            (Some("application/grpc-web-text"), Protocol::GrpcWeb),
            (Some("application/grpc-web-text+proto"), Protocol::GrpcWeb),
            (Some("application/json"), Protocol::Connect),
            (Some("application/proto"), Protocol::Connect),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(ct) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            let extensions = tonic::codegen::http::Extensions::new();
            assert_eq!(
                protocol_of(&extensions, &headers),
                protocol,
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn connect_codecs_are_json_with_or_without_utf8_and_proto() {
        for (ct, codec) in [
            ("application/json", Some(Codec::Json)),
            ("application/json; charset=utf-8", Some(Codec::Json)),
            ("application/json;charset=UTF-8", Some(Codec::Json)),
            ("application/json; charset=\"utf-8\"", Some(Codec::Json)),
            ("application/json; charset=latin1", None),
            ("application/proto", Some(Codec::Proto)),
            ("application/protobuf", None),
            ("text/plain", None),
            ("application/grpc", None),
        ] {
            assert_eq!(Codec::of(ct.as_bytes()), codec, "{ct}");
        }
    }
}
