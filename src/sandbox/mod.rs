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

pub mod magic;

use magic::{Canned, SLOW_DELAY};

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
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, in the vendor's shape.
    pub body: Value,
    /// `Retry-After` in seconds, for the 429.
    pub retry_after: Option<u64>,
    /// How long to wait before answering, so the timeout path can be tried.
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
    answer_for("REFERENCE_ID_ERROR_NOT_FOUND")
}

/// The canned answer for one reference id: its row of [`magic::MAGIC_IDS`],
/// else 400 `INVALID_SANDBOX_CODE`.
pub fn answer_for(reference_id: &str) -> Answer {
    let Some(canned) = magic::lookup(reference_id) else {
        return Answer::new(
            400,
            json!({ "message": "Invalid sandbox code", "error_code": "INVALID_SANDBOX_CODE" }),
        );
    };
    match canned {
        Canned::Card { flags, validated } => {
            let quality = json!({
                "blur": flags.contains('B'),
                "dark": flags.contains('D'),
                "flashlight": flags.contains('F'),
                "grayscale": flags.contains('G'),
            });
            if validated && !flags.is_empty() {
                return Answer::new(
                    200,
                    json!({ "data": { "image_quality": quality }, "error_code": "FAIL_ON_1", "message": "fail on quality" }),
                );
            }
            Answer::new(200, success(reference_id, quality))
        }
        Canned::Reply {
            status,
            error_code,
            message,
        } => {
            let mut body = json!({ "message": message });
            if let Some(code) = error_code {
                body["error_code"] = json!(code);
            }
            if status == 200 {
                body["data"] = json!({});
            }
            Answer::new(status, body)
        }
        Canned::RateLimited { retry_after } => Answer {
            retry_after: Some(retry_after),
            ..Answer::new(429, json!({ "message": "Too many requests" }))
        },
        Canned::Slow => Answer {
            delay: Some(SLOW_DELAY),
            ..Answer::new(200, success(reference_id, json!({})))
        },
    }
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
mod tests;
