//! The submit call's answer parser, `upstream::submit::interpret`: any
//! status, any `Retry-After`, any bytes (random, random JSON trees, bodies
//! shaped like the documented ones with random types). It never panics; an
//! error, run through `classify` as a submit's (`GatewayError::Submit`), is
//! a row the error table gives the submit call for that status, names no
//! body text, and a `BadRequest` is on the field the upstream's code names;
//! a success comes only from a 2xx and names the job the body named (a
//! valid reference id), else none (the gateway then names the id it sent).

use std::time::Duration;

use ktp_gateway::{
    error::GatewayError,
    reference_id::ReferenceId,
    status::{Detail, classify},
    upstream::{UpstreamError, submit::interpret},
};
use ktp_testkit::error_table::UpstreamCall;
use proptest::{collection, prelude::*};
use serde_json::{Map, Value};
use tonic::Code;

use super::{MARKER, body_bytes, config, documented, field_value, json_value, retry_after, text};

/// The codes the submit call documents, and some it does not.
const SUBMIT_CODES: &[&str] = &[
    "INVALID_PAYLOAD",
    "INVALID_PAYLOAD_IMAGE_MISSING",
    "MISSING_PAYLOAD_IMAGE",
    "INVALID_PAYLOAD_IMAGE_SIZE",
    "INVALID_PAYLOAD_IMAGE_FORMAT",
    "INVALID_PAYLOAD_CALLBACK_URL",
    "INVALID_PAYLOAD_REFERENCE_ID",
    "INVALID_PAYLOAD_REFERENCE_ID_EXISTS",
    "INVALID_PAYLOAD_QUALITY_VALIDATION_DEPENDENCY",
    "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
    "INSUFFICIENT_QUOTA",
    "INTERNAL_SERVER_ERROR",
    "INVALID_SANDBOX_CODE",
    "UNAUTHORIZED",
    "FAIL_ON_1",
];

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => prop::sample::select(vec![200u16, 201, 400, 400, 401, 403, 404, 429, 500, 503]),
        1 => 100u16..=599,
    ]
}

fn code_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SUBMIT_CODES).prop_map(str::to_owned),
        1 => "INVALID_PAYLOAD[A-Z_]{0,20}",
        1 => "[A-Za-z0-9_.-]{1,64}",
        1 => text(),
    ]
}

/// A reference id as an upstream might echo it: valid, blank, too long,
/// with control characters, or not a string.
fn echoed_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[A-Za-z0-9_-]{1,40}".prop_map(Value::from),
        1 => Just(Value::from("")),
        1 => Just(Value::from("   ")),
        1 => "[a-z]{129,140}".prop_map(Value::from),
        1 => "[a-z]{1,5}\n[a-z]{1,5}".prop_map(Value::from),
        1 => field_value(text().prop_map(Value::String)),
    ]
}

/// A body shaped like the submit call's, with random types and nulls.
fn submit_body() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        4 => prop::option::of(echoed_id()).prop_map(|id| {
            let mut m = Map::new();
            if let Some(id) = id {
                m.insert("reference_id".into(), id);
            }
            Value::Object(m)
        }),
        1 => json_value(),
    ];
    let error_code = prop_oneof![
        3 => code_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => json_value(),
    ];
    (
        prop::option::of(field_value(text().prop_map(Value::String))),
        prop::option::weighted(0.5, error_code),
        prop::option::weighted(0.7, data),
        collection::btree_map("[a-z_]{1,8}", json_value(), 0..3),
    )
        .prop_map(|(message, error_code, data, extra)| {
            let mut body: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [
                ("message", message),
                ("error_code", error_code),
                ("data", data),
            ] {
                if let Some(v) = v {
                    body.insert(k.to_owned(), v);
                }
            }
            Value::Object(body)
        })
}

/// The request field the README says a submit's 400 code names.
fn field_named_by(code: &str) -> &'static str {
    if code.contains("REFERENCE_ID") {
        "reference_id"
    } else if code.contains("QUALITY_VALIDATION") || code.contains("VALIDATE_QUALITY") {
        "validate_quality"
    } else {
        "image"
    }
}

/// The whole property for one answer of the submit call.
fn check_submit(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let err = match interpret(status, retry_after, body) {
        Ok(submitted) => {
            prop_assert!(
                (200..300).contains(&status),
                "accepted from HTTP {}",
                status
            );
            // Strict about types: `data` is an object, `null` or absent.
            let data = json.as_ref().and_then(|v| v.get("data"));
            prop_assert!(
                matches!(data, None | Some(Value::Null | Value::Object(_))),
                "accepted with data {:?}",
                data
            );
            let named = json.as_ref().and_then(|v| {
                v.get("data")?
                    .get("reference_id")?
                    .as_str()
                    .map(str::to_owned)
            });
            match named.filter(|n| !n.is_empty()) {
                Some(n) => {
                    prop_assert_eq!(&submitted.reference_id, &n);
                    prop_assert!(
                        ReferenceId::parse(n).is_ok(),
                        "an id the gateway could send"
                    );
                }
                None => prop_assert_eq!(submitted.reference_id.as_str(), ""),
            }
            let message = json
                .as_ref()
                .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            prop_assert_eq!(submitted.message, message);
            return Ok(());
        }
        Err(err) => err,
    };
    prop_assert!(
        matches!(
            err,
            UpstreamError::JobFailed { .. }
                | UpstreamError::Status { .. }
                | UpstreamError::BadResponse { .. }
        ),
        "a body alone produced {:?}",
        err
    );
    let error = GatewayError::Submit {
        error: err.clone(),
        image_field: "image",
    };
    let row = classify(&error);
    if let Err(why) = documented(UpstreamCall::Submit, status, retry_after, &row) {
        return Err(TestCaseError::fail(format!(
            "{why}: {row:?} from {error:?}"
        )));
    }
    let shown = format!("{} {} {:?}", row.message, row.reason, row.metadata);
    prop_assert!(!shown.contains(MARKER), "body text in the row: {}", shown);
    // The submit's own 400 rows.
    if let UpstreamError::Status {
        status: 400,
        error_code: Some(code),
        ..
    } = &err
    {
        if code == "INVALID_PAYLOAD_REFERENCE_ID_EXISTS" {
            prop_assert_eq!(row.code, Code::AlreadyExists);
            prop_assert_eq!(&row.detail, &Detail::ResourceExists);
        } else if code.starts_with("INVALID_PAYLOAD") || code == "MISSING_PAYLOAD_IMAGE" {
            prop_assert_eq!(row.code, Code::InvalidArgument);
            prop_assert_eq!(&row.reason, code);
            let on = match &row.detail {
                Detail::BadRequest { field, .. } => *field,
                other => return Err(TestCaseError::fail(format!("detail {other:?}"))),
            };
            prop_assert_eq!(on, field_named_by(code), "code {}", code);
        }
    }
    prop_assert!(
        row.code != Code::AlreadyExists || status == 400,
        "ALREADY_EXISTS from HTTP {}",
        status
    );
    Ok(())
}

/// Regressions the properties found, kept as plain tests (see `tests/props.rs`).
#[test]
fn regression_an_array_as_data_is_not_read_field_by_field() {
    // `{"data":["A"]}` was accepted, "A" read as the job's id.
    for body in [
        r#"{"data":["A"]}"#,
        r#"{"data":[["A"]]}"#,
        r#"{"data":[null]}"#,
    ] {
        check_submit(200, None, body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_submit_answers_map_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in collection::vec(any::<u8>(), 0..256),
    ) {
        check_submit(status, retry_after, &body)?;
    }

    #[test]
    fn arbitrary_json_submit_answers_map_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in body_bytes(json_value()),
    ) {
        check_submit(status, retry_after, &body)?;
    }

    #[test]
    fn shaped_submit_answers_map_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in body_bytes(submit_body()),
    ) {
        check_submit(status, retry_after, &body)?;
    }
}
