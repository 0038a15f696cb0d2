//! The sandbox's canned answers.

use super::*;

/// The vendor's documented quality-flag suffixes (B blur, D dark, F
/// flashlight, G grayscale): an oracle independent of the magic-id table.
const FLAG_SUFFIXES: &[&str] = &["", "B", "D", "F", "G", "BD", "BF", "BG", "DG", "FG"];

fn flag(a: &Answer, name: &str) -> bool {
    a.body["data"]["image_quality"][name].as_bool().unwrap()
}

#[test]
fn every_vendor_magic_id_answers_its_documented_shape() {
    for flags in FLAG_SUFFIXES {
        let id = if flags.is_empty() {
            "REFERENCE_ID_KTP".to_owned()
        } else {
            format!("REFERENCE_ID_KTP_{flags}")
        };
        let a = answer_for(&id);
        assert_eq!(a.status, 200, "{id}");
        assert!(a.body.get("error_code").is_none(), "{id}");
        assert_eq!(a.body["data"]["nik"], "3273016505900002");
        for (letter, name) in [
            ('B', "blur"),
            ('D', "dark"),
            ('F', "flashlight"),
            ('G', "grayscale"),
        ] {
            assert_eq!(flag(&a, name), flags.contains(letter), "{id} {name}");
        }
        let v = answer_for(&format!("{id}_V"));
        if flags.is_empty() {
            assert!(v.body.get("error_code").is_none());
        } else {
            assert_eq!(v.body["error_code"], "FAIL_ON_1", "{id}_V");
            assert_eq!(v.status, 200);
        }
    }
}

#[test]
fn unknown_ids_answer_invalid_sandbox_code() {
    for id in [
        "x",
        "REFERENCE_ID_KTP_",
        "REFERENCE_ID_KTP_Z",
        "REFERENCE_ID_KTP_DB",
        "REFERENCE_ID_KTPB",
        "REFERENCE_ID_KTP_V_V",
    ] {
        let a = answer_for(id);
        assert_eq!(
            (a.status, a.body["error_code"].as_str()),
            (400, Some("INVALID_SANDBOX_CODE")),
            "{id}"
        );
    }
}

#[test]
fn error_magic_ids_are_all_answered() {
    for (id, status, code) in [
        (
            "REFERENCE_ID_ERROR_NOT_FOUND",
            404,
            Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"),
        ),
        (
            "REFERENCE_ID_ERROR_KTP_NOT_DETECTED",
            200,
            Some("KTP_NOT_DETECTED"),
        ),
        (
            "REFERENCE_ID_ERROR_JOB_FAILED",
            200,
            Some("INTERNAL_SERVER_ERROR"),
        ),
        (
            "REFERENCE_ID_ERROR_INVALID",
            400,
            Some("INVALID_PAYLOAD_REFERENCE_ID"),
        ),
        ("REFERENCE_ID_ERROR_UNAUTHORIZED", 401, None),
        ("REFERENCE_ID_ERROR_QUOTA", 403, Some("INSUFFICIENT_QUOTA")),
        ("REFERENCE_ID_ERROR_RATE_LIMITED", 429, None),
        ("REFERENCE_ID_ERROR_SERVER", 500, None),
        ("REFERENCE_ID_ERROR_SLOW", 200, None),
    ] {
        let a = answer_for(id);
        assert_eq!(a.status, status, "{id}");
        assert_eq!(a.body["error_code"].as_str(), code, "{id}");
    }
    assert_eq!(
        answer_for("REFERENCE_ID_ERROR_SLOW").delay,
        Some(magic::SLOW_DELAY)
    );
    assert_eq!(
        answer_for("REFERENCE_ID_ERROR_RATE_LIMITED").retry_after,
        Some(2)
    );
}

#[test]
fn reference_id_from_query_or_body() {
    let q: HashMap<_, _> = [("reference_id".to_owned(), "Q".to_owned())].into();
    assert_eq!(
        reference_id_of(&q, br#"{"reference_id": "B"}"#).as_deref(),
        Some("Q")
    );
    assert_eq!(
        reference_id_of(&HashMap::new(), br#"{"reference_id": "B"}"#).as_deref(),
        Some("B")
    );
    assert_eq!(reference_id_of(&HashMap::new(), b"not json"), None);
}

#[test]
fn every_magic_id_is_answered_and_listed_once() {
    let mut seen = std::collections::HashSet::new();
    for (id, _) in magic::MAGIC_IDS {
        assert!(seen.insert(*id), "{id} listed twice");
        assert_ne!(
            answer_for(id).body["error_code"].as_str(),
            Some("INVALID_SANDBOX_CODE"),
            "{id}"
        );
    }
}

mod submit {
    use std::time::Duration;

    use super::super::{
        answers::{canned_answer, submitted},
        jobs::{Jobs, Lookup},
        magic::Canned,
    };
    use serde_json::json;

    fn submit(jobs: &Jobs, body: serde_json::Value) -> (u16, serde_json::Value) {
        let a = submitted(jobs, body.to_string().as_bytes());
        (a.status, a.body)
    }

    fn code(answer: &(u16, serde_json::Value)) -> (u16, Option<&str>) {
        (answer.0, answer.1["error_code"].as_str())
    }

    #[test]
    fn payload_errors_are_the_vendors() {
        let jobs = Jobs::new(Duration::from_secs(2));
        for (body, want) in [
            (json!({}), "MISSING_PAYLOAD_IMAGE"),
            (json!({"image": ""}), "INVALID_PAYLOAD_IMAGE_MISSING"),
            (json!({"image": 5}), "INVALID_PAYLOAD_IMAGE_FORMAT"),
            (
                json!({"image": "AAAA", "reference_id": 7}),
                "INVALID_PAYLOAD_REFERENCE_ID",
            ),
            (
                json!({"image": "AAAA", "reference_id": "REFERENCE_ID_EXIST"}),
                "INVALID_PAYLOAD_REFERENCE_ID_EXISTS",
            ),
            (
                json!({"image": "AAAA", "reference_id": "REFERENCE_ID_TOO_LONG"}),
                "INVALID_PAYLOAD_REFERENCE_ID",
            ),
            (
                json!({"image": "AAAA", "reference_id": "REFERENCE_ID_TOO_SHORT"}),
                "INVALID_PAYLOAD_REFERENCE_ID",
            ),
            (
                json!({"image": "IMAGE_SIZE_EXCEED_LIMIT"}),
                "INVALID_PAYLOAD_IMAGE_SIZE",
            ),
        ] {
            assert_eq!(
                code(&submit(&jobs, body.clone())),
                (400, Some(want)),
                "{body}"
            );
        }
        let a = submitted(&jobs, b"not json");
        assert_eq!(a.body["error_code"], "INVALID_PAYLOAD");
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_is_not_found_until_its_time_then_answers() {
        let jobs = Jobs::new(Duration::from_secs(2));
        let (status, body) = submit(&jobs, json!({"image": "AAAA", "reference_id": "JOB-1"}));
        assert_eq!(
            (status, &body["data"]["reference_id"]),
            (200, &json!("JOB-1"))
        );
        assert_eq!(jobs.lookup("JOB-1"), Lookup::Processing);
        tokio::time::advance(Duration::from_millis(2001)).await;
        let Lookup::Done(canned) = jobs.lookup("JOB-1") else {
            panic!("finished by now")
        };
        assert_eq!(
            canned,
            Canned::Card {
                flags: "",
                validated: false
            }
        );
        assert_eq!(
            canned_answer("JOB-1", canned).body["data"]["reference_id"],
            "JOB-1"
        );
        // The id is taken now.
        let again = submit(&jobs, json!({"image": "AAAA", "reference_id": "JOB-1"}));
        assert_eq!(
            code(&again),
            (400, Some("INVALID_PAYLOAD_REFERENCE_ID_EXISTS"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_job_answers_follows_its_id_then_its_image() {
        let jobs = Jobs::new(Duration::from_millis(1));
        submit(
            &jobs,
            json!({"image": "AAAA", "reference_id": "REFERENCE_ID_KTP_B_V"}),
        );
        submit(
            &jobs,
            json!({"image": "KTP_BD", "validate_quality": true, "reference_id": "FLAGGED"}),
        );
        submit(
            &jobs,
            json!({"image": "NO_KTP_DETECTED", "reference_id": "NONE"}),
        );
        let (_, generated) = submit(&jobs, json!({"image": "AAAA"}));
        tokio::time::advance(Duration::from_millis(2)).await;
        let answer = |id: &str| match jobs.lookup(id) {
            Lookup::Done(c) => canned_answer(id, c),
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(
            answer("REFERENCE_ID_KTP_B_V").body["error_code"],
            "FAIL_ON_1"
        );
        assert_eq!(answer("FLAGGED").body["error_code"], "FAIL_ON_1");
        assert_eq!(answer("NONE").body["error_code"], "KTP_NOT_DETECTED");
        let id = generated["data"]["reference_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(answer(id).status, 200);
    }

    #[test]
    fn the_job_store_is_bounded() {
        let jobs = Jobs::new(Duration::from_secs(1));
        for n in 0..=super::super::jobs::MAX_JOBS {
            assert!(jobs.submit(&format!("J{n}"), Canned::Slow));
        }
        assert_eq!(jobs.lookup("J0"), Lookup::Unknown, "the oldest was dropped");
        assert_eq!(jobs.lookup("J1"), Lookup::Processing);
    }
}
