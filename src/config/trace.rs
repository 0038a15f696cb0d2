//! `[trace]`: OpenTelemetry span export (OTLP over gRPC). Off unless an
//! endpoint is set: nothing is built, sampled or sent then.

use std::str::FromStr;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::values::{InvalidValue, Ratio, known};

/// The trace section. These keys are the one way to configure export: no
/// `OTEL_*` variable is read but `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` (what the spans' resource says).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceSettings {
    /// The collector's OTLP/gRPC endpoint (`http://otel-collector:4317`);
    /// unset: no export.
    pub otlp_endpoint: Option<OtlpEndpoint>,
    /// Share of root calls (no sampled `traceparent` from the caller)
    /// sampled. Parent-based: a caller's sampling decision is always
    /// followed, so one trace is never half exported.
    pub sample_ratio: Ratio,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: known::valid(Ratio::new(0.1)),
        }
    }
}

/// An OTLP/gRPC endpoint: `http://` or `https://` with a host and nothing
/// after it but an optional port (gRPC has its own path). Plain http is
/// allowed anywhere: spans carry no secret (see the README's "Tracing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpEndpoint(Url);

impl OtlpEndpoint {
    /// The URL, without a trailing slash (`http://collector:4317`).
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// Whether export goes over TLS (verified against the platform's roots).
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

impl FromStr for OtlpEndpoint {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        let url: Url = raw
            .parse()
            .map_err(|e| InvalidValue::new(format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(InvalidValue::new(format!(
                "{raw:?} must be an http:// or https:// URL with a host"
            )));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(InvalidValue::new(format!(
                "{raw:?} must be scheme://host[:port] only (OTLP/gRPC has its own path)"
            )));
        }
        Ok(Self(url))
    }
}

impl Serialize for OtlpEndpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OtlpEndpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::OtlpEndpoint;

    #[test]
    fn endpoints_are_scheme_host_and_port_only() {
        for good in [
            "http://otel-collector:4317",
            "https://collector.example.com",
            "http://127.0.0.1:4317/",
        ] {
            let endpoint: OtlpEndpoint = good.parse().unwrap();
            assert!(!endpoint.as_str().ends_with('/'), "{good}");
        }
        for bad in [
            "otel-collector:4317",
            "grpc://collector:4317",
            "http://collector:4317/v1/traces",
            "http://user:pw@collector:4317",
            "http://collector:4317?x=1",
            "",
        ] {
            assert!(bad.parse::<OtlpEndpoint>().is_err(), "{bad}");
        }
    }
}
