//! A status as Connect's error answer: the JSON body
//! `{"code", "message", "details": [{"type", "value"}]}` with the HTTP
//! status Connect gives the code. Rendered from the gRPC status the error
//! table made (the one table), so every detail is there, in its order,
//! byte for byte.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use prost::Message;
use serde::Serialize;
use tonic::{Code, Status};

/// The JSON body of a Connect error.
#[derive(Debug, Serialize)]
pub struct ConnectError {
    /// Connect's name of the code (`not_found`).
    pub code: &'static str,
    /// The status message; left out when empty.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: String,
    /// The status details, in order; left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// One detail: its full message name and its protobuf bytes in base64,
/// unpadded (Connect's clients read either).
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// The detail's full name, `google.rpc.ErrorInfo`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its protobuf bytes, base64 without padding.
    pub value: String,
}

impl ConnectError {
    /// The Connect error of `status`. Details that do not decode as a
    /// `google.rpc.Status` (no status the gateway makes) are left out
    /// rather than failing the answer.
    pub fn of(status: &Status) -> Self {
        let details = tonic_types::pb::Status::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default()
            .into_iter()
            .map(|any| ErrorDetail {
                type_name: any
                    .type_url
                    .rsplit_once('/')
                    .map_or(any.type_url.as_str(), |(_, name)| name)
                    .to_owned(),
                value: STANDARD_NO_PAD.encode(&any.value),
            })
            .collect();
        Self {
            code: code_name(status.code()),
            message: status.message().to_owned(),
            details,
        }
    }
}

/// Connect's name of a code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        // An OK status is never an error; if one got here it is a bug.
        Code::Ok | Code::Unknown => "unknown",
        Code::Cancelled => "canceled",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status Connect answers a code with.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unauthenticated => 401,
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use prost_types::Any;

    use super::*;

    #[test]
    fn every_code_has_connects_name_and_http_status() {
        for (code, name, http) in [
            (Code::Cancelled, "canceled", 499),
            (Code::Unknown, "unknown", 500),
            (Code::InvalidArgument, "invalid_argument", 400),
            (Code::DeadlineExceeded, "deadline_exceeded", 504),
            (Code::NotFound, "not_found", 404),
            (Code::AlreadyExists, "already_exists", 409),
            (Code::PermissionDenied, "permission_denied", 403),
            (Code::ResourceExhausted, "resource_exhausted", 429),
            (Code::FailedPrecondition, "failed_precondition", 400),
            (Code::Aborted, "aborted", 409),
            (Code::OutOfRange, "out_of_range", 400),
            (Code::Unimplemented, "unimplemented", 501),
            (Code::Internal, "internal", 500),
            (Code::Unavailable, "unavailable", 503),
            (Code::DataLoss, "data_loss", 500),
            (Code::Unauthenticated, "unauthenticated", 401),
        ] {
            assert_eq!(code_name(code), name);
            assert_eq!(http_status(code), http, "{name}");
        }
    }

    #[test]
    fn details_keep_their_order_and_bytes_unpadded() {
        let details = tonic_types::pb::Status {
            code: Code::NotFound as i32,
            message: "no such job".to_owned(),
            details: vec![
                Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".to_owned(),
                    value: vec![1, 2, 3, 4],
                },
                Any {
                    type_url: "type.googleapis.com/google.rpc.RequestInfo".to_owned(),
                    value: vec![9],
                },
            ],
        };
        let status = Status::with_details(
            Code::NotFound,
            "no such job",
            details.encode_to_vec().into(),
        );
        let error = ConnectError::of(&status);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "not_found",
                "message": "no such job",
                "details": [
                    {"type": "google.rpc.ErrorInfo", "value": "AQIDBA"},
                    {"type": "google.rpc.RequestInfo", "value": "CQ"},
                ],
            })
        );
        // Unpadded, yet the bytes a padded reader gets too.
        assert_eq!(STANDARD.decode("AQIDBA==").unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn an_error_without_message_or_details_is_just_its_code() {
        let json = serde_json::to_value(ConnectError::of(&Status::unauthenticated(""))).unwrap();
        assert_eq!(json, serde_json::json!({"code": "unauthenticated"}));
    }
}
