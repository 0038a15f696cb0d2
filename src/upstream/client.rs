//! The pooled HTTP client and what every upstream request shares: the
//! credentials, the per-attempt timeout and the body cap (the connection
//! cap is a layer outside the attempt: `crate::resilience::slots`).
//! Each kind of call builds its own request on it ([`super::result`]).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use reqwest::{
    RequestBuilder, Url,
    header::{self, HeaderMap, HeaderName, HeaderValue},
};
use secrecy::ExposeSecret;

use super::{BodyProblem, UpstreamError};
use crate::{
    config::{ReferenceIdPlacement, UpstreamSettings},
    trace::TraceContext,
};

/// Path of the result call, below `upstream.base_url`.
pub const RESULT_PATH: &str = "ktp/id/extract-async/result";
/// Path of the submit call, below `upstream.base_url`.
pub const SUBMIT_PATH: &str = "ktp/id/extract-async";
/// Longest `Retry-After` honoured; a larger value is clamped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// One attempt's answer, the future of every call's innermost service.
/// Boxed: the one allocation the stack makes per attempt, since an `async`
/// body has no name to put in `Service::Future`.
pub type AttemptFuture<T> = Pin<Box<dyn Future<Output = Result<T, UpstreamError>> + Send>>;

/// Could not build the client from valid settings (for example no TLS roots).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The TLS or HTTP setup failed.
    #[error("could not build the upstream HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// `upstream.ca_file` was checked at load, but is unusable now.
    #[error("could not read upstream.ca_file {path}: {why}")]
    CaFile {
        /// The file, as configured.
        path: String,
        /// What went wrong.
        why: String,
    },
}

/// One per process: clones share the connection pool (and are cheap, as
/// every call clones the upstream stack).
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    result_url: Url,
    submit_url: Url,
    app_id: HeaderValue,
    api_key: HeaderValue,
    placement: ReferenceIdPlacement,
    timeout: Duration,
    max_body_bytes: usize,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("result_url", &self.inner.result_url.as_str())
            .field("placement", &self.inner.placement)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Builds the client. The settings were validated when loaded, so only
    /// the TLS/back-end setup can still fail here.
    pub fn new(settings: &UpstreamSettings) -> Result<Self, BuildError> {
        let mut defaults = HeaderMap::new();
        defaults.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &settings.ca_file {
            builder = builder.tls_certs_merge(extra_roots(path)?);
        }
        let http = builder
            .user_agent(crate::USER_AGENT)
            .default_headers(defaults)
            .connect_timeout(*settings.connect_timeout)
            .pool_idle_timeout(*settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .tcp_nodelay(true)
            // Redirects would carry our API key to wherever they point.
            .redirect(reqwest::redirect::Policy::none())
            // Retries are ours (src/resilience: budget, backoff, deadline). Left
            // on, reqwest's own policy would also copy every request so it
            // could replay it.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(BuildError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                result_url: endpoint(&settings.base_url, RESULT_PATH),
                submit_url: endpoint(&settings.base_url, SUBMIT_PATH),
                app_id: secret_header(settings.app_id.expose_secret()),
                api_key: secret_header(settings.api_key.expose_secret()),
                placement: settings.reference_id_in,
                timeout: *settings.timeout,
                max_body_bytes: *settings.max_body_bytes,
            }),
        })
    }

    /// The pooled HTTP client, to build requests on.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `{base}/ktp/id/extract-async/result`.
    pub(super) fn result_url(&self) -> &Url {
        &self.inner.result_url
    }

    /// `{base}/ktp/id/extract-async`.
    pub(super) fn submit_url(&self) -> &Url {
        &self.inner.submit_url
    }

    /// Where the reference id goes in the result call.
    pub(super) fn placement(&self) -> ReferenceIdPlacement {
        self.inner.placement
    }

    /// `request` with the credentials and the caller's trace context.
    pub(super) fn authorized(
        &self,
        mut request: RequestBuilder,
        trace: Option<&TraceContext>,
    ) -> RequestBuilder {
        request = request
            .header("App-ID", self.inner.app_id.clone())
            .header("API-Key", self.inner.api_key.clone());
        if let Some(trace) = trace {
            // Names made once: parsing them per request showed in the
            // instruction counts.
            const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
            const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
            request = request.header(TRACEPARENT, trace.traceparent.as_str());
            if let Some(state) = &trace.tracestate {
                request = request.header(TRACESTATE, state.as_str());
            }
        }
        request
    }

    /// One attempt: sends `request` and reads the answer with `read` (given
    /// the status, `Retry-After` and body), all within `upstream.timeout`,
    /// which is the upstream's own time: the attempt already holds its
    /// connection slot. Dropping the future aborts the request.
    pub(super) async fn exchange<T>(
        &self,
        request: RequestBuilder,
        read: impl FnOnce(u16, Option<Duration>, &[u8]) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let mut status = None;
        let timeout = self.inner.timeout;
        let attempt = tokio::time::timeout(timeout, self.send(request, read, &mut status)).await;
        attempt.unwrap_or(Err(UpstreamError::Timeout {
            limit: timeout,
            status,
        }))
    }

    /// Sets `status` as soon as the response head arrives, so that a failure
    /// while reading the body still reports the HTTP status.
    async fn send<T>(
        &self,
        request: RequestBuilder,
        read: impl FnOnce(u16, Option<Duration>, &[u8]) -> Result<T, UpstreamError>,
        status: &mut Option<u16>,
    ) -> Result<T, UpstreamError> {
        let response = request.send().await.map_err(|e| transport_error(e, None))?;
        let code = response.status().as_u16();
        *status = Some(code);
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v.to_str().ok()?, SystemTime::now()));
        let limit = self.inner.max_body_bytes;
        let body = match read_capped(response, limit).await {
            Ok(body) => body,
            // For an error status the status decides; its oversized page
            // (a proxy's HTML, say) must not turn a 503 into a bad response.
            Err(ReadError::TooLarge) if !(200..300).contains(&code) => Vec::new(),
            Err(ReadError::TooLarge) => {
                return Err(UpstreamError::BadResponse {
                    status: code,
                    problem: BodyProblem::TooLarge { limit },
                });
            }
            Err(ReadError::Transport(e)) => return Err(transport_error(e, Some(code))),
        };
        read(code, retry_after, &body)
    }
}

/// The certificates of `upstream.ca_file`, trusted besides the platform's
/// roots (a private CA, an egress proxy that re-signs TLS).
fn extra_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, BuildError> {
    let failed = |why: String| BuildError::CaFile {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))
}

/// `{base}/{path}`, whether or not `base` ends in `/` or already has a path
/// prefix.
pub(super) fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}/{path}"));
    url.set_query(None);
    url
}

/// Config validation guarantees credentials are visible ASCII, so this cannot
/// fail; marking them sensitive keeps them out of HPACK tables and `Debug`.
fn secret_header(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body, giving up as soon as it exceeds `limit`: a hostile
/// upstream cannot make the gateway buffer more than that.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    let announced = response.content_length();
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let capacity = announced.map_or(8 * 1024, |len| len as usize).min(limit);
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error chain, without the URL (it holds the reference id) and never a body.
fn transport_error(err: reqwest::Error, status: Option<u16>) -> UpstreamError {
    let err = err.without_url();
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    UpstreamError::Transport { status, detail }
}

/// `Retry-After` as delay-seconds or an HTTP-date, clamped to [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_url_joins_any_base() {
        for (base, want) in [
            (
                "https://api.verihubs.com",
                "https://api.verihubs.com/ktp/id/extract-async/result",
            ),
            (
                "https://api.verihubs.com/",
                "https://api.verihubs.com/ktp/id/extract-async/result",
            ),
            (
                "http://127.0.0.1:8080/v2/",
                "http://127.0.0.1:8080/v2/ktp/id/extract-async/result",
            ),
            ("http://h/p?x=1", "http://h/p/ktp/id/extract-async/result"),
        ] {
            let base: Url = base.parse().unwrap();
            assert_eq!(endpoint(&base, RESULT_PATH).as_str(), want);
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn sensitive_headers_hide_in_debug() {
        let v = secret_header("super-secret-key");
        assert!(!format!("{v:?}").contains("super-secret-key"));
    }
}
