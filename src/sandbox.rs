//! The embedded, offline look-alike of the vendor's sandbox.
//!
//! A real HTTP server on a loopback port, answering the result call the way
//! the vendor's sandbox does for its magic reference ids (plus magic ids of
//! our own for every documented error), so that `--sandbox` exercises the very
//! same upstream client, parsing and error mapping as production. Its answers
//! are canned and its personal data is fictional.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::Query,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::{config::BaseUrl, upstream::client::RESULT_PATH};

/// How long `REFERENCE_ID_ERROR_SLOW` makes the caller wait: longer than any
/// sensible `upstream.timeout`, so it shows the timeout path.
pub const SLOW_DELAY: Duration = Duration::from_secs(60);

/// The magic reference ids of our own, beside the vendor's `REFERENCE_ID_KTP…`.
pub const ERROR_MAGIC_IDS: &[(&str, &str)] = &[
    (
        "REFERENCE_ID_ERROR_NOT_FOUND",
        "404 INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
    ),
    (
        "REFERENCE_ID_ERROR_KTP_NOT_DETECTED",
        "200 with error_code KTP_NOT_DETECTED",
    ),
    (
        "REFERENCE_ID_ERROR_JOB_FAILED",
        "200 with error_code INTERNAL_SERVER_ERROR",
    ),
    (
        "REFERENCE_ID_ERROR_INVALID",
        "400 INVALID_PAYLOAD_REFERENCE_ID",
    ),
    (
        "REFERENCE_ID_ERROR_UNAUTHORIZED",
        "401 Authorization failed",
    ),
    ("REFERENCE_ID_ERROR_QUOTA", "403 INSUFFICIENT_QUOTA"),
    ("REFERENCE_ID_ERROR_RATE_LIMITED", "429 with Retry-After: 2"),
    ("REFERENCE_ID_ERROR_SERVER", "500 Internal server error"),
    (
        "REFERENCE_ID_ERROR_SLOW",
        "200 after 60 s, so the upstream timeout fires first",
    ),
];

/// The quality-flag suffixes the vendor's sandbox knows (B = blur, D = dark,
/// F = flashlight, G = grayscale).
const FLAG_SUFFIXES: &[&str] = &["", "B", "D", "F", "G", "BD", "BF", "BG", "DG", "FG"];

/// A running sandbox; stops when dropped.
#[derive(Debug)]
pub struct Sandbox {
    base_url: BaseUrl,
    task: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Starts the sandbox on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route(&format!("/{RESULT_PATH}"), get(result));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox upstream stopped");
            }
        });
        let base_url = format!("http://{addr}/")
            .parse()
            .map_err(|e| std::io::Error::other(format!("sandbox address {addr}: {e}")))?;
        Ok(Self { base_url, task })
    }

    /// Where the upstream client should send its requests.
    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One canned answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
    pub delay: Option<Duration>,
}

impl Answer {
    fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            delay: None,
        }
    }
}

async fn result(
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let has = |name: &str| headers.get(name).is_some_and(|v| !v.is_empty());
    let answer = if !(has("app-id") && has("api-key")) {
        Answer::new(401, json!({ "message": "Authorization failed" }))
    } else {
        match reference_id_of(&query, &body) {
            Some(id) => answer_for(&id),
            None => not_found(),
        }
    };
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body.to_string(),
    )
        .into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// The id from the query string or, failing that, the JSON body: the vendor's
/// docs and its one public client disagree on which, so accept both.
fn reference_id_of(query: &HashMap<String, String>, body: &[u8]) -> Option<String> {
    query.get("reference_id").cloned().or_else(|| {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.get("reference_id")?.as_str().map(str::to_owned)
    })
}

fn not_found() -> Answer {
    Answer::new(
        404,
        json!({ "message": "Reference ID not found", "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND" }),
    )
}

/// The canned answer for one reference id.
pub fn answer_for(reference_id: &str) -> Answer {
    if let Some(answer) = error_answer(reference_id) {
        return answer;
    }
    let Some(rest) = reference_id.strip_prefix("REFERENCE_ID_KTP") else {
        return invalid_sandbox_code();
    };
    let (flags, validate) = match rest.strip_suffix("_V") {
        Some(flags) => (flags, true),
        None => (rest, false),
    };
    let flags = match flags.strip_prefix('_') {
        Some(f) if !f.is_empty() => f,
        None if flags.is_empty() => "",
        _ => return invalid_sandbox_code(),
    };
    if !FLAG_SUFFIXES.contains(&flags) {
        return invalid_sandbox_code();
    }
    let quality = json!({
        "blur": flags.contains('B'),
        "dark": flags.contains('D'),
        "flashlight": flags.contains('F'),
        "grayscale": flags.contains('G'),
    });
    if validate && !flags.is_empty() {
        return Answer::new(
            200,
            json!({ "data": { "image_quality": quality }, "error_code": "FAIL_ON_1", "message": "fail on quality" }),
        );
    }
    Answer::new(200, success(reference_id, quality))
}

fn error_answer(reference_id: &str) -> Option<Answer> {
    let answer = match reference_id {
        "REFERENCE_ID_ERROR_NOT_FOUND" => not_found(),
        "REFERENCE_ID_ERROR_KTP_NOT_DETECTED" => Answer::new(
            200,
            json!({ "data": {}, "error_code": "KTP_NOT_DETECTED", "message": "ktp not detected" }),
        ),
        "REFERENCE_ID_ERROR_JOB_FAILED" => Answer::new(
            200,
            json!({ "data": {}, "error_code": "INTERNAL_SERVER_ERROR", "message": "internal server error" }),
        ),
        "REFERENCE_ID_ERROR_INVALID" => Answer::new(
            400,
            json!({ "message": "reference_id is too short/too long", "error_code": "INVALID_PAYLOAD_REFERENCE_ID" }),
        ),
        "REFERENCE_ID_ERROR_UNAUTHORIZED" => {
            Answer::new(401, json!({ "message": "Authorization failed" }))
        }
        "REFERENCE_ID_ERROR_QUOTA" => Answer::new(
            403,
            json!({ "message": "Insufficient quota", "error_code": "INSUFFICIENT_QUOTA" }),
        ),
        "REFERENCE_ID_ERROR_RATE_LIMITED" => Answer {
            retry_after: Some(2),
            ..Answer::new(429, json!({ "message": "Too many requests" }))
        },
        "REFERENCE_ID_ERROR_SERVER" => {
            Answer::new(500, json!({ "message": "Internal server error" }))
        }
        "REFERENCE_ID_ERROR_SLOW" => Answer {
            delay: Some(SLOW_DELAY),
            ..Answer::new(200, success(reference_id, json!({})))
        },
        _ => return None,
    };
    Some(answer)
}

fn invalid_sandbox_code() -> Answer {
    Answer::new(
        400,
        json!({ "message": "Invalid sandbox code", "error_code": "INVALID_SANDBOX_CODE" }),
    )
}

/// A fictional card holder ("CONTOH" means "example").
fn success(reference_id: &str, quality: Value) -> Value {
    json!({
        "message": "success extract ktp data",
        "data": {
            "reference_id": reference_id,
            "nik": "3273016505900002",
            "full_name": "SITI CONTOH",
            "place_of_birth": "BANDUNG",
            "date_of_birth": "25-05-1990",
            "gender": "PEREMPUAN",
            "blood_type": "O",
            "address": "JL. CONTOH NO. 1",
            "rt_rw": "001/002",
            "administrative_village": "CITARUM",
            "district": "BANDUNG WETAN",
            "city": "KOTA BANDUNG",
            "state": "PROVINSI JAWA BARAT",
            "religion": "ISLAM",
            "marital_status": "BELUM KAWIN",
            "occupation": "KARYAWAN SWASTA",
            "nationality": "WNI",
            "image_quality": quality,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (id, what) in ERROR_MAGIC_IDS {
            let a = answer_for(id);
            let status: u16 = what[..3].parse().unwrap();
            assert_eq!(a.status, status, "{id}");
        }
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
}
