//! The submit call: its body, reading its answers, and a retry that finds
//! its own earlier attempt.

use base64::Engine as _;

use super::*;
use crate::resilience::Failure as _;

fn id(s: &str) -> ReferenceId {
    ReferenceId::parse(s.to_owned()).unwrap()
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).expect("the body is JSON")
}

#[test]
fn a_file_is_sent_as_standard_padded_base64_with_the_flags_and_id() {
    // 5 bytes: base64 needs padding.
    let image = Bytes::from_static(b"\xff\xd8\xff\x00\x01");
    let job = SubmitJob::new(Image::File(image.clone()), true, id("REF \"1\""), None);
    let body = json(&job.body);
    let sent = body["image"].as_str().unwrap();
    assert_eq!(sent, "/9j/AAE=");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(sent)
            .unwrap(),
        image
    );
    assert_eq!(body["validate_quality"], true);
    assert_eq!(body["reference_id"], "REF \"1\"");
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "no callback_url: {body}"
    );
    // One allocation of exactly the needed size.
    assert_eq!(job.body.len(), serde_json::to_vec(&body).unwrap().len());
}

#[test]
fn a_url_is_sent_as_given_json_escaped() {
    let url = "https://example.com/k.jpg?a=1&b=\"2\"";
    let job = SubmitJob::new(Image::Url(url.into()), false, id("R"), None);
    let body = json(&job.body);
    assert_eq!(body["image"], url);
    assert_eq!(body["validate_quality"], false);
    assert_eq!(body["reference_id"], "R");
}

#[test]
fn answers_give_the_confirmed_id_and_message() {
    let ok = interpret(
        200,
        None,
        br#"{"message":"accepted","data":{"reference_id":"UP-1"}}"#,
    )
    .unwrap();
    assert_eq!(
        ok,
        Submitted {
            reference_id: "UP-1".into(),
            message: "accepted".into()
        }
    );
    let bare = interpret(200, None, br#"{"data":{}}"#).unwrap();
    assert_eq!(bare.reference_id, "");
    assert_eq!(
        interpret(200, None, br#"{"message":null}"#)
            .unwrap()
            .message,
        ""
    );
}

#[test]
fn unusable_answers_and_error_statuses() {
    let problem = |body: &[u8]| match interpret(200, None, body) {
        Err(UpstreamError::BadResponse { problem, .. }) => problem,
        other => panic!("{other:?}"),
    };
    assert_eq!(problem(b"not json"), BodyProblem::NotJson);
    assert_eq!(problem(b"[1]"), BodyProblem::NotAnObject);
    assert_eq!(
        problem(br#"{"data":{"reference_id":5}}"#),
        BodyProblem::WrongShape
    );
    // An id the gateway would never send: a caller would read it back.
    assert_eq!(
        problem(br#"{"data":{"reference_id":"A\nB"}}"#),
        BodyProblem::WrongShape
    );
    assert_eq!(
        interpret(
            400,
            None,
            br#"{"error_code":"INVALID_PAYLOAD_REFERENCE_ID_EXISTS","message":"x"}"#
        ),
        Err(UpstreamError::Status {
            status: 400,
            error_code: Some(REFERENCE_ID_EXISTS.into()),
            retry_after: None
        })
    );
    assert!(matches!(
        interpret(200, None, br#"{"error_code":"KTP_NOT_DETECTED"}"#),
        Err(UpstreamError::JobFailed { .. })
    ));
}

fn exists() -> Result<Submitted, UpstreamError> {
    Err(UpstreamError::Status {
        status: 400,
        error_code: Some(REFERENCE_ID_EXISTS.into()),
        retry_after: None,
    })
}

fn call() -> Call<SubmitJob, UpstreamError> {
    Call::new(
        SubmitJob::new(
            Image::Url("https://e.com/k".into()),
            false,
            id("MINE"),
            None,
        ),
        None,
    )
}

#[test]
fn exists_is_success_only_after_an_attempt_whose_outcome_was_lost() {
    let first = call();
    assert_eq!(accepted_before(exists(), &first), exists());

    let mut after_503 = call();
    after_503.retry_after_failure(UpstreamError::Status {
        status: 503,
        error_code: None,
        retry_after: None,
    });
    assert_eq!(accepted_before(exists(), &after_503), exists());

    let mut after_reset = call();
    let reset = UpstreamError::Transport {
        status: None,
        detail: "connection reset".into(),
    };
    assert!(reset.outcome_unknown());
    after_reset.retry_after_failure(reset);
    assert_eq!(
        accepted_before(exists(), &after_reset),
        Ok(Submitted {
            reference_id: "MINE".into(),
            message: String::new()
        })
    );
}

#[test]
fn the_id_sent_stands_in_when_the_answer_names_none() {
    let got = accepted_before(
        Ok(Submitted {
            reference_id: String::new(),
            message: "ok".into(),
        }),
        &call(),
    );
    assert_eq!(got.unwrap().reference_id, "MINE");
}

#[test]
fn debug_of_an_accepted_submit_shows_no_upstream_text() {
    let ok = interpret(
        200,
        None,
        br#"{"message": "queued the card of SULISTYONO", "data": {"reference_id": "R-9"}}"#,
    )
    .unwrap();
    let shown = format!("{ok:?}");
    assert!(!shown.contains("SULISTYONO"), "{shown}");
    assert!(shown.contains("R-9"), "{shown}");
}

fn problem_of(body: &str) -> Result<BodyProblem, Result<Submitted, UpstreamError>> {
    match interpret(200, None, body.as_bytes()) {
        Err(UpstreamError::BadResponse { problem, .. }) => Ok(problem),
        other => Err(other),
    }
}

/// Derived struct deserializers take a JSON array too, field by field: the
/// property tests (`tests/props/submit.rs`) found `{"data":["A"]}` accepted
/// with `"A"` read as the job's id. `data` is an object, `null` or absent;
/// anything else is the wrong shape, with or without an error code.
#[test]
fn data_that_is_not_an_object_is_the_wrong_shape() {
    for body in [
        r#"{"data":["A"]}"#,
        r#"{"data":[null]}"#,
        r#"{"data":[""]}"#,
        r#"{"data":[]}"#,
        r#"{"data":[["A"]]}"#,
        r#"{"data":[{"reference_id":"A"}]}"#,
        r#"{"data":[["A"],"B"]}"#,
        r#"{"message":"accepted","data":["UP-1"]}"#,
        r#"{"error_code":"KTP_NOT_DETECTED","data":["A"]}"#,
        r#"{"data":"A"}"#,
        r#"{"data":1}"#,
        r#"{"data":true}"#,
    ] {
        assert_eq!(problem_of(body), Ok(BodyProblem::WrongShape), "{body}");
    }
    for body in [r#"{"data":null}"#, r#"{"message":"m"}"#, r#"{"data":{}}"#] {
        assert_eq!(
            interpret(200, None, body.as_bytes()).unwrap().reference_id,
            "",
            "{body}"
        );
    }
}

/// A job (and the resilience call carrying it, which a retry's debug line
/// or a panic message may print) shows the body's size, never the image's
/// bytes or a URL's query (a signed URL's signature).
#[test]
fn debug_never_prints_the_image_or_a_urls_query() {
    use crate::{image::Image, reference_id::ReferenceId, resilience::Call};
    let id = || ReferenceId::parse("DEBUG-1".to_owned()).unwrap();
    let png = ktp_testkit::images::valid();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let file = SubmitJob::new(Image::File(png.into()), false, id(), None);
    let url = "https://example.com/ktp.jpg?X-Amz-Signature=SECRETSIG".to_owned();
    let by_url = SubmitJob::new(Image::Url(url), true, id(), None);
    for job in [file, by_url] {
        let shown = format!("{job:?}");
        let call = format!("{:?}", Call::<_, UpstreamError>::new(job, None));
        for text in [shown, call] {
            assert!(text.contains("DEBUG-1") && text.contains("bytes"), "{text}");
            assert!(!text.contains(&b64[..40]), "image bytes in {text}");
            assert!(
                !text.contains("SECRETSIG") && !text.contains("example.com"),
                "{text}"
            );
        }
    }
}
