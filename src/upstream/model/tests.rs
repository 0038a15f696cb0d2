//! Hostile and ordinary bodies through both readings.

use std::time::Duration;

use super::{fast::usual_success, *};

const SAMPLE: &str = r#"{ "message": "success extract ktp data", "data": { "nik": "3506042602660001", "city": "KABUPATEN KEDIRI", "rt_rw": "002/003", "state": "PROVINSI JAWA TIMUR", "gender": "LAKI-LAKI", "address": "JL.AYYA DSN PURWOKERTO", "district": "NGADILUWIH", "religion": "ISLAM", "full_name": "SULISTYONO", "blood_type": "-", "occupation": "GURU", "nationality": "WNI", "date_of_birth": "26-02-1966", "marital_status": "KAWIN", "place_of_birth": "KEDIRI", "administrative_village": "PURWOKERTO", "image_quality": { "blur": false, "dark": false, "grayscale": false, "flashlight": false } } }"#;

fn ok(body: &str) -> KtpResult {
    interpret(200, None, body.as_bytes()).expect("should parse")
}

fn problem(status: u16, body: &[u8]) -> BodyProblem {
    match interpret(status, None, body) {
        Err(UpstreamError::BadResponse { problem, .. }) => problem,
        other => panic!("expected BadResponse, got {other:?}"),
    }
}

/// The one-pass reading takes only what the general one reads the same way.
#[test]
fn usual_success_agrees_with_the_general_path() {
    let taken = [
        SAMPLE,
        r#"{"data": {}}"#,
        r#"{"message": null, "error_code": "", "status_code": " ", "data": {"status_code": "1"}}"#,
        r#"{"error_code": null, "status_code": "2", "data": {"nik": "", "image_quality": null}}"#,
        r#" {"data": {"image_quality": {"blur": true, "dark": null}, "reference_id": "R"}} "#,
    ];
    for body in taken {
        let fast = usual_success(body.as_bytes()).expect(body);
        assert!(
            fast == read_2xx(200, body.as_bytes()).expect(body),
            "{body}"
        );
    }
    let left = [
        r#"{"data": {}, "extra": 1}"#,
        r#"{"data": {"new_field": 1}}"#,
        r#"{"data": {"image_quality": {"score": 0.3}}}"#,
        r#"{"data": {"nik": "1", "nik": "2"}}"#,
        r#"{"data": {}, "x": 1e400}"#,
        r#"{"data": null}"#,
        r#"{"message": "m"}"#,
        r#"{"data": [], "message": "m"}"#,
        r#"{"data": {"image_quality": [true, false, false, true]}}"#,
        r#"[null, null, null, {}]"#,
        r#"{"error_code": "FAIL_ON_1", "data": {}}"#,
        r#"{"data": {"nik": 5}}"#,
        r#"{"data": {}"#,
        "",
    ];
    for body in left {
        assert!(usual_success(body.as_bytes()).is_none(), "{body}");
    }
}

#[test]
fn documented_sample_parses_field_by_field() {
    let r = ok(SAMPLE);
    assert_eq!(r.message.as_deref(), Some("success extract ktp data"));
    assert_eq!(r.status_code, None);
    let d = &r.data;
    assert_eq!(d.nik.as_deref(), Some("3506042602660001"));
    assert_eq!(d.full_name.as_deref(), Some("SULISTYONO"));
    assert_eq!(d.place_of_birth.as_deref(), Some("KEDIRI"));
    assert_eq!(d.date_of_birth.as_deref(), Some("26-02-1966"));
    assert_eq!(d.gender.as_deref(), Some("LAKI-LAKI"));
    assert_eq!(d.blood_type.as_deref(), Some("-"));
    assert_eq!(d.address.as_deref(), Some("JL.AYYA DSN PURWOKERTO"));
    assert_eq!(d.rt_rw.as_deref(), Some("002/003"));
    assert_eq!(d.administrative_village.as_deref(), Some("PURWOKERTO"));
    assert_eq!(d.district.as_deref(), Some("NGADILUWIH"));
    assert_eq!(d.city.as_deref(), Some("KABUPATEN KEDIRI"));
    assert_eq!(d.state.as_deref(), Some("PROVINSI JAWA TIMUR"));
    assert_eq!(d.religion.as_deref(), Some("ISLAM"));
    assert_eq!(d.marital_status.as_deref(), Some("KAWIN"));
    assert_eq!(d.occupation.as_deref(), Some("GURU"));
    assert_eq!(d.nationality.as_deref(), Some("WNI"));
    let q = d.image_quality.expect("flags");
    assert_eq!(q.present().filter(|(_, v)| *v).count(), 0);
    assert_eq!(q.present().count(), 4);
}

#[test]
fn missing_null_empty_and_unknown_fields_are_accepted() {
    let r = ok(
        r#"{"data": {"nik": null, "full_name": "", "new_field": [1, {"x": 2}],
                    "image_quality": {"blur": null, "score": 0.3}}, "extra": true}"#,
    );
    assert_eq!(r.data.nik, None);
    assert_eq!(r.data.full_name.as_deref(), Some(""));
    assert_eq!(r.data.city, None);
    assert_eq!(r.data.image_quality, Some(ImageQualityFlags::default()));
    assert_eq!(ok(r#"{"data": {}}"#).data, KtpData::default());
}

#[test]
fn status_code_is_read_from_either_level_top_first() {
    assert_eq!(
        ok(r#"{"status_code": "1", "data": {}}"#)
            .status_code
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        ok(r#"{"data": {"status_code": "2"}}"#)
            .status_code
            .as_deref(),
        Some("2")
    );
    let both = ok(r#"{"status_code": "1", "data": {"status_code": "2"}}"#);
    assert_eq!(both.status_code.as_deref(), Some("1"));
    assert_eq!(ok(r#"{"status_code": null, "data": {}}"#).status_code, None);
}

#[test]
fn job_errors_are_read_from_the_top_level_of_a_200() {
    match interpret(
        200,
        None,
        br#"{"data": {}, "error_code": "KTP_NOT_DETECTED", "message": "ktp not detected"}"#,
    ) {
        Err(UpstreamError::JobFailed {
            code,
            status: 200,
            image_quality: None,
        }) => {
            assert_eq!(code, "KTP_NOT_DETECTED")
        }
        other => panic!("{other:?}"),
    }
    // An error_code nested in data is not a job error.
    let r = ok(r#"{"data": {"error_code": "FAIL_ON_1"}}"#);
    assert_eq!(r.data, KtpData::default());
}

#[test]
fn fail_on_1_carries_the_flags_that_are_present() {
    let body =
        br#"{"data": {"image_quality": {"blur": true, "dark": false}}, "error_code": "FAIL_ON_1"}"#;
    match interpret(200, None, body) {
        Err(UpstreamError::JobFailed {
            image_quality: Some(q),
            ..
        }) => {
            let flags: Vec<_> = q.present().collect();
            assert_eq!(flags, vec![("blur", true), ("dark", false)]);
        }
        other => panic!("{other:?}"),
    }
    // An array is not the flags object.
    let body =
        br#"{"data": {"image_quality": [true, true, true, true]}, "error_code": "FAIL_ON_1"}"#;
    assert!(matches!(
        interpret(200, None, body),
        Err(UpstreamError::JobFailed {
            image_quality: None,
            ..
        })
    ));
    // Malformed flags on an error answer do not hide the error.
    let body = br#"{"data": {"image_quality": "bad"}, "error_code": "FAIL_ON_1"}"#;
    assert!(matches!(
        interpret(200, None, body),
        Err(UpstreamError::JobFailed {
            image_quality: None,
            ..
        })
    ));
}

#[test]
fn empty_or_null_error_code_means_no_error() {
    assert!(interpret(200, None, br#"{"error_code": "", "data": {}}"#).is_ok());
    assert!(interpret(200, None, br#"{"error_code": null, "data": {}}"#).is_ok());
}

#[test]
fn hostile_success_bodies_are_bad_responses() {
    assert_eq!(problem(200, b""), BodyProblem::NotJson);
    assert_eq!(problem(200, b"<html>oops</html>"), BodyProblem::NotJson);
    assert_eq!(
        problem(200, b"{\"data\": {\"nik\": \"\xff\xfe\"}}"),
        BodyProblem::NotJson
    );
    assert_eq!(problem(200, b"{\"data\": {}"), BodyProblem::NotJson);
    assert_eq!(problem(200, b"[]"), BodyProblem::NotAnObject);
    assert_eq!(problem(200, b"\"data\""), BodyProblem::NotAnObject);
    assert_eq!(problem(200, b"null"), BodyProblem::NotAnObject);
    assert_eq!(
        problem(200, br#"{"data": {"nik": 3506042602660001}}"#),
        BodyProblem::WrongShape
    );
    assert_eq!(
        problem(200, br#"{"data": {"image_quality": {"blur": "yes"}}}"#),
        BodyProblem::WrongShape
    );
    assert_eq!(problem(200, br#"{"data": []}"#), BodyProblem::WrongShape);
    assert_eq!(
        problem(
            200,
            br#"{"data": {"image_quality": [true, false, false, true]}}"#
        ),
        BodyProblem::WrongShape
    );
    assert_eq!(
        problem(200, br#"{"message": 5, "data": {}}"#),
        BodyProblem::WrongShape
    );
    assert_eq!(
        problem(200, br#"{"error_code": 7, "data": {}}"#),
        BodyProblem::WrongShape
    );
    assert_eq!(problem(200, br#"{"message": "ok"}"#), BodyProblem::NoData);
    assert_eq!(problem(200, br#"{"data": null}"#), BodyProblem::NoData);
    let long = format!(r#"{{"error_code": "{}"}}"#, "A".repeat(65));
    assert_eq!(problem(200, long.as_bytes()), BodyProblem::WrongShape);
    assert_eq!(
        problem(200, br#"{"error_code": "BAD CODE\n"}"#),
        BodyProblem::WrongShape
    );
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        r#"{{"data": {{"x": {}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(problem(200, deep.as_bytes()), BodyProblem::NotJson);
    let deep_err = "[".repeat(100_000);
    assert!(matches!(
        interpret(500, None, deep_err.as_bytes()),
        Err(UpstreamError::Status {
            status: 500,
            error_code: None,
            ..
        })
    ));
}

#[test]
fn error_statuses_keep_code_and_retry_after() {
    let body = br#"{"message": "Reference ID not found", "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}"#;
    match interpret(404, Some(Duration::from_secs(2)), body) {
        Err(UpstreamError::Status {
            status: 404,
            error_code,
            retry_after,
        }) => {
            assert_eq!(
                error_code.as_deref(),
                Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")
            );
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_bodies_are_read_leniently() {
    let code = |status, body: &[u8]| match interpret(status, None, body) {
        Err(UpstreamError::Status { error_code, .. }) => error_code,
        other => panic!("{other:?}"),
    };
    assert_eq!(code(401, br#"{"message": "Authorization failed"}"#), None);
    assert_eq!(code(500, b"<html>Bad gateway</html>"), None);
    assert_eq!(code(500, b""), None);
    assert_eq!(code(500, br#"{"error_code": 42}"#), None);
    assert_eq!(code(403, br#"["INSUFFICIENT_QUOTA"]"#), None);
    assert_eq!(code(500, br#"{"error_code": ""}"#), None);
    assert_eq!(code(500, br#"{"error_code": "has space"}"#), None);
    assert_eq!(
        code(
            500,
            br#"{"message": {"nested": 1}, "error_code": "INTERNAL_SERVER_ERROR"}"#
        )
        .as_deref(),
        Some("INTERNAL_SERVER_ERROR")
    );
}

#[test]
fn debug_output_hides_personal_data() {
    let shown = format!("{:?}", ok(SAMPLE));
    for personal in [
        "3506042602660001",
        "SULISTYONO",
        "KEDIRI",
        "26-02-1966",
        "PURWOKERTO",
    ] {
        assert!(!shown.contains(personal), "{personal} leaked: {shown}");
    }
}

/// `Debug` may reach a log line: it must show no free text of the upstream
/// (`message` can echo the card holder) and no personal field.
#[test]
fn debug_shows_no_upstream_text_and_no_date_of_birth() {
    let body = r#"{"message": "extracted for SULISTYONO", "status_code": "BILLED for SULISTYONO", "data": {"full_name": "SULISTYONO", "date_of_birth": "26-02-1966", "reference_id": "R-1", "image_quality": {"blur": true}}}"#;
    for parsed in [
        ok(body),
        usual_success(body.as_bytes()).expect("the usual shape"),
    ] {
        let shown = format!("{parsed:?}");
        for private in ["SULISTYONO", "26-02-1966", "1966"] {
            assert!(!shown.contains(private), "{private} in {shown}");
        }
        assert!(shown.contains("R-1") && shown.contains("blur"), "{shown}");
    }
}
