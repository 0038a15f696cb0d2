//! Requests from Connect JSON: both names of a field, both shapes of a
//! read mask, and errors that name the field but never echo a value.

use super::*;
use crate::status::{Detail, classify};

fn get(json: &str) -> Result<GetKtpResultRequest, GatewayError> {
    GetKtpResultRequest::from_json(json.as_bytes())
}

fn paths(request: &GetKtpResultRequest) -> Vec<&str> {
    request
        .read_mask
        .as_ref()
        .map(|m| m.paths.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn fields_are_read_by_json_or_proto_name() {
    let by_json = get(r#"{"referenceId":"job-1","wait":true}"#).unwrap();
    let by_proto = get(r#"{"reference_id":"job-1","wait":true}"#).unwrap();
    assert_eq!(by_json, by_proto);
    assert_eq!(by_json.reference_id, "job-1");
    assert!(by_json.wait);
    let empty = get("{}").unwrap();
    assert_eq!(empty, GetKtpResultRequest::default());
    let nulls = get(r#"{"referenceId":null,"wait":null,"readMask":null}"#).unwrap();
    assert_eq!(nulls, GetKtpResultRequest::default());
}

#[test]
fn a_read_mask_is_a_string_or_a_paths_object_and_keeps_unknown_paths_as_written() {
    let canonical = get(r#"{"readMask":"fullName,nik,checks"}"#).unwrap();
    assert_eq!(paths(&canonical), ["full_name", "nik", "checks"]);
    let object = get(r#"{"read_mask":{"paths":["full_name","dateOfBirth"]}}"#).unwrap();
    assert_eq!(paths(&object), ["full_name", "date_of_birth"]);
    let unknown = get(r#"{"readMask":"fullName,shoeSize"}"#).unwrap();
    assert_eq!(paths(&unknown), ["full_name", "shoeSize"]);
    let none = get(r#"{"readMask":""}"#).unwrap();
    assert_eq!(paths(&none), Vec::<&str>::new());
    assert!(none.read_mask.is_some());
    for bad in [
        r#"{"readMask":5}"#,
        r#"{"readMask":{"paths":"nik"}}"#,
        r#"{"readMask":{"paths":[1]}}"#,
        r#"{"readMask":{"paths":[],"extra":1}}"#,
    ] {
        let err = get(bad).unwrap_err();
        assert!(
            matches!(
                err,
                GatewayError::InvalidJsonField {
                    field: "read_mask",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn an_unknown_member_is_a_bad_request_naming_it() {
    let err = get(r#"{"referenceId":"job","shoeSize":44}"#).unwrap_err();
    let row = classify(&err);
    assert_eq!(row.code, tonic::Code::InvalidArgument);
    assert_eq!(
        row.detail,
        Detail::UnknownField {
            name: "shoeSize".to_owned()
        }
    );
    // The name goes to the caller, not into the log line.
    assert!(!err.to_string().contains("shoeSize"), "{err}");
}

#[test]
fn errors_name_the_field_and_never_the_value() {
    for (json, field) in [
        (r#"{"referenceId":3174012345678901}"#, "reference_id"),
        (r#"{"wait":"SITI CONTOH"}"#, "wait"),
        (r#"{"referenceId":"a","reference_id":"b"}"#, "reference_id"),
    ] {
        let err = get(json).unwrap_err();
        let GatewayError::InvalidJsonField { field: f, .. } = &err else {
            panic!("{json}: {err:?}");
        };
        assert_eq!(*f, field, "{json}");
        let text = format!("{err} {:?}", classify(&err));
        for value in ["3174012345678901", "SITI", "\"a\"", "\"b\""] {
            assert!(!text.contains(value), "{json}: {text}");
        }
    }
    for json in [
        "",
        "[1]",
        "\"3174012345678901\"",
        "{\"referenceId\":",
        "nul",
    ] {
        let err = get(json).unwrap_err();
        assert!(
            matches!(&err, GatewayError::Malformed(m) if m.kind == Refusal::NotDecodable),
            "{json}: {err:?}"
        );
        assert!(!err.to_string().contains("3174012345678901"), "{err}");
    }
}

#[test]
fn an_image_is_base64_of_either_alphabet_padded_or_not() {
    use submit_ktp_request::ImageSource;
    for encoded in ["/+/+AA==", "/+/+AA", "_-_-AA==", "_-_-AA"] {
        let json = format!(r#"{{"image":"{encoded}","validateQuality":true}}"#);
        let request = SubmitKtpRequest::from_json(json.as_bytes()).unwrap();
        assert!(
            request.image_source
                == Some(ImageSource::Image(Bytes::from_static(&[
                    0xff, 0xef, 0xfe, 0
                ]))),
            "{encoded}"
        );
        assert!(request.validate_quality);
    }
    let err = SubmitKtpRequest::from_json(br#"{"image":"not base64!"}"#).unwrap_err();
    assert!(matches!(
        err,
        GatewayError::InvalidJsonField { field: "image", .. }
    ));
}

#[test]
fn an_image_source_is_one_of_image_or_url() {
    use extract_ktp_request::ImageSource;
    let request =
        ExtractKtpRequest::from_json(br#"{"image_url":"https://x.test/k.png","readMask":"nik"}"#)
            .unwrap();
    assert!(request.image_source == Some(ImageSource::ImageUrl("https://x.test/k.png".to_owned())));
    assert_eq!(request.read_mask.unwrap().paths, ["nik"]);
    let both = ExtractKtpRequest::from_json(br#"{"image":"AA","imageUrl":"https://x.test"}"#);
    assert!(matches!(
        both,
        Err(GatewayError::InvalidJsonField { field: "image", .. })
    ));
    let none = ExtractKtpRequest::from_json(b"{}").unwrap();
    assert!(none.image_source.is_none());
}
