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
