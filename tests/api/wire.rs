//! The protocols besides gRPC as the error table's examples speak them:
//! Connect JSON, Connect proto and gRPC-Web, with `curl` as the client,
//! over HTTP/1.1. Not HTTP/2: a call refused before its whole body was
//! sent (over a limit, shed, no image slot) ends its HTTP/2 stream with
//! RST_STREAM(NO_ERROR) after the answer, as RFC 9113 8.1 allows, and
//! curl 7.88 then fails with no answer at all, now and then (it depends on
//! how much of the body was out). `connect.rs` and `web.rs` call over
//! HTTP/2 where the answer follows the whole body. Each answer is read back
//! into the `tonic::Status` a gRPC client would have got, so that the
//! table's one verdict checks every protocol; what is the protocol's own
//! (Connect's HTTP status for the code, where gRPC-Web's status travels)
//! is checked here on the way.

use std::{net::SocketAddr, time::Duration};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ktp_gateway::proto::{
    ExtractKtpRequest, ExtractKtpResponse, GetKtpResultRequest, GetKtpResultResponse,
    SubmitKtpRequest, SubmitKtpResponse, extract_ktp_request, submit_ktp_request,
};
use prost::Message as _;
use serde_json::{Map, Value, json};
use tonic::{Code, Status, metadata::MetadataMap};

use crate::curl::{CurlAnswer, CurlRequest, Http};

/// A protocol a call can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Grpc,
    ConnectJson,
    ConnectProto,
    GrpcWeb,
}

/// A request of any RPC.
pub(crate) enum AnyRequest {
    /// Protobuf bytes as they are (not for JSON).
    Raw(Vec<u8>),
    /// JSON text as it is (only for JSON).
    Json(Vec<u8>),
    Get(GetKtpResultRequest),
    Submit(SubmitKtpRequest),
    Extract(ExtractKtpRequest),
}

impl AnyRequest {
    fn proto(&self) -> Vec<u8> {
        match self {
            Self::Raw(bytes) => bytes.clone(),
            Self::Json(_) => unreachable!("raw JSON has no protobuf"),
            Self::Get(m) => m.encode_to_vec(),
            Self::Submit(m) => m.encode_to_vec(),
            Self::Extract(m) => m.encode_to_vec(),
        }
    }

    /// Proto3 JSON, as a Connect client writes it (lowerCamelCase; the
    /// mask as its canonical string, paths as the table wrote them).
    fn json(&self) -> Vec<u8> {
        let mut object = Map::new();
        let mut put = |name: &str, value: Value| {
            object.insert(name.to_owned(), value);
        };
        let mask = |m: &Option<prost_types::FieldMask>| m.as_ref().map(|m| m.paths.join(","));
        let image = |bytes: &[u8]| Value::from(STANDARD.encode(bytes));
        match self {
            Self::Raw(_) => unreachable!("raw protobuf has no JSON"),
            Self::Json(text) => return text.clone(),
            Self::Get(m) => {
                put("referenceId", json!(m.reference_id));
                put("wait", json!(m.wait));
                if let Some(paths) = mask(&m.read_mask) {
                    put("readMask", json!(paths));
                }
            }
            Self::Submit(m) => {
                put("referenceId", json!(m.reference_id));
                put("validateQuality", json!(m.validate_quality));
                match &m.image_source {
                    Some(submit_ktp_request::ImageSource::Image(b)) => put("image", image(b)),
                    Some(submit_ktp_request::ImageSource::ImageUrl(u)) => put("imageUrl", json!(u)),
                    None => {}
                }
            }
            Self::Extract(m) => {
                put("referenceId", json!(m.reference_id));
                put("validateQuality", json!(m.validate_quality));
                match &m.image_source {
                    Some(extract_ktp_request::ImageSource::Image(b)) => put("image", image(b)),
                    Some(extract_ktp_request::ImageSource::ImageUrl(u)) => {
                        put("imageUrl", json!(u));
                    }
                    None => {}
                }
                if let Some(paths) = mask(&m.read_mask) {
                    put("readMask", json!(paths));
                }
            }
        }
        serde_json::to_vec(&object).expect("JSON")
    }

    /// Whether `body` is this RPC's answer in the codec.
    fn answer_decodes(&self, body: &[u8], json: bool) -> bool {
        if json {
            return serde_json::from_slice::<Map<String, Value>>(body).is_ok();
        }
        match self {
            Self::Raw(_) | Self::Json(_) | Self::Get(_) => {
                GetKtpResultResponse::decode(body).is_ok()
            }
            Self::Submit(_) => SubmitKtpResponse::decode(body).is_ok(),
            Self::Extract(_) => ExtractKtpResponse::decode(body).is_ok(),
        }
    }
}

/// Sends `request` to `path` over `wire` (not gRPC: the table's tonic
/// client does that) and reads the answer back as a gRPC client's result.
pub(crate) async fn send(
    wire: Wire,
    addr: SocketAddr,
    path: &str,
    request: AnyRequest,
    timeout: Option<Duration>,
    metadata: &[(&'static str, &'static str)],
) -> Result<(), Status> {
    let connect = matches!(wire, Wire::ConnectJson | Wire::ConnectProto);
    let (http, content_type, body) = match wire {
        Wire::ConnectJson => (Http::One, "application/json", request.json()),
        Wire::ConnectProto => (Http::One, "application/proto", request.proto()),
        Wire::GrpcWeb => {
            let mut framed = vec![0];
            let message = request.proto();
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            (Http::One, "application/grpc-web+proto", framed)
        }
        Wire::Grpc => unreachable!("gRPC calls go through tonic"),
    };
    let mut curl = CurlRequest {
        http,
        method: "POST",
        url: format!("http://{addr}{path}"),
        headers: vec![("content-type", content_type.to_owned())],
        body,
    };
    if connect {
        curl = curl.header("connect-protocol-version", "1");
    } else {
        curl = curl.header("x-grpc-web", "1");
    }
    if let Some(t) = timeout {
        curl = match connect {
            true => curl.header("connect-timeout-ms", &t.as_millis().to_string()),
            false => curl.header("grpc-timeout", &format!("{}m", t.as_millis())),
        };
    }
    for (name, value) in metadata {
        // gRPC's compression header has Connect's as its counterpart.
        let name = match (*name, connect) {
            ("grpc-encoding", true) => "content-encoding",
            (name, _) => name,
        };
        curl = curl.header(name, value);
    }
    let answer = curl.send().await;
    match connect {
        true => connect_result(&answer, &request, wire == Wire::ConnectJson),
        false => web_result(&answer),
    }
}

/// The HTTP status Connect's specification gives each code.
fn connect_http_status(code: Code) -> u16 {
    match code {
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unauthenticated => 401,
        _ => 500,
    }
}

/// The code of Connect's name for it.
fn connect_code(name: &str) -> Option<Code> {
    if name == "canceled" {
        return Some(Code::Cancelled);
    }
    (2..=16)
        .map(Code::from)
        .find(|c| format!("{c:?}").to_lowercase() == name.replace('_', ""))
}

/// A problem with the answer itself, as a status the verdict reports.
fn broken(why: String) -> Status {
    Status::new(Code::Unknown, format!("not a valid answer: {why}"))
}

fn connect_result(answer: &CurlAnswer, request: &AnyRequest, json: bool) -> Result<(), Status> {
    let request_id = answer.header("x-request-id").unwrap_or_default().to_owned();
    if answer.status == 200 {
        let wanted = if json {
            "application/json"
        } else {
            "application/proto"
        };
        if answer.header("content-type") != Some(wanted)
            || !request.answer_decodes(&answer.body, json)
        {
            return Err(broken(format!("a 200 that is not the answer: {answer:?}")));
        }
        return Ok(());
    }
    if answer.header("content-type") != Some("application/json") {
        return Err(broken(format!("an error that is not JSON: {answer:?}")));
    }
    let error: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| broken(format!("error body {e}: {answer:?}")))?;
    let name = error["code"].as_str().unwrap_or_default();
    let Some(code) = connect_code(name) else {
        return Err(broken(format!("unknown code {name:?}")));
    };
    if answer.status != connect_http_status(code) {
        return Err(broken(format!("HTTP {} for {name}", answer.status)));
    }
    let details = error["details"].as_array().cloned().unwrap_or_default();
    let mut anys = Vec::new();
    for detail in details {
        let (Some(kind), Some(value)) = (detail["type"].as_str(), detail["value"].as_str()) else {
            return Err(broken(format!("detail {detail}")));
        };
        if value.ends_with('=') {
            return Err(broken(format!("padded detail value {value}")));
        }
        anys.push(prost_types::Any {
            type_url: format!("type.googleapis.com/{kind}"),
            value: STANDARD_NO_PAD
                .decode(value)
                .map_err(|e| broken(format!("detail value {e}")))?,
        });
    }
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    let status = tonic_types::pb::Status {
        code: code as i32,
        message: message.clone(),
        details: anys,
    };
    let mut metadata = MetadataMap::new();
    if let Ok(id) = request_id.parse() {
        metadata.insert("x-request-id", id);
    }
    Err(Status::with_details_and_metadata(
        code,
        message,
        status.encode_to_vec().into(),
        metadata,
    ))
}

fn web_result(answer: &CurlAnswer) -> Result<(), Status> {
    if answer.status != 200 || answer.header("grpc-status").is_some() {
        return Err(broken(format!(
            "gRPC-Web's status belongs in the trailer frame: {answer:?}"
        )));
    }
    let body = answer.web();
    let Some(trailers) = body.trailers else {
        return Err(broken(format!("no trailer frame: {answer:?}")));
    };
    let Some(mut status) = Status::from_header_map(&trailers) else {
        return Err(broken(format!(
            "no grpc-status in the trailers: {answer:?}"
        )));
    };
    if status.code() == Code::Ok {
        return match body.messages.len() {
            1 => Ok(()),
            n => Err(broken(format!("{n} messages in an OK answer"))),
        };
    }
    if let Some(id) = answer.header("x-request-id").and_then(|v| v.parse().ok()) {
        status.metadata_mut().insert("x-request-id", id);
    }
    Err(status)
}

#[test]
fn connect_code_names_read_back() {
    assert_eq!(connect_code("canceled"), Some(Code::Cancelled));
    assert_eq!(
        connect_code("invalid_argument"),
        Some(Code::InvalidArgument)
    );
    assert_eq!(connect_code("unauthenticated"), Some(Code::Unauthenticated));
    assert_eq!(connect_code("data_loss"), Some(Code::DataLoss));
    assert_eq!(connect_code("ok"), None);
}
