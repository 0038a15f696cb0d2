//! What a call's metadata (its headers) tells the gateway: the request
//! id used to correlate logs and errors, the caller's deadline
//! (`grpc-timeout`, or Connect's `connect-timeout-ms`), and its W3C trace
//! context (`traceparent`, `tracestate`), which is passed on to the
//! upstream. Read once per call, by [`super::CallLayer`].

use std::time::Duration;

use tonic::codegen::http::HeaderMap;

use crate::trace::TraceContext;

pub(crate) use crate::status::REQUEST_ID_HEADER;
/// Longest caller-supplied request id that is kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's W3C trace context from `traceparent` / `tracestate`, if well formed.
pub(crate) fn trace_context(headers: &HeaderMap) -> Option<TraceContext> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header("traceparent")?, header("tracestate"))
}

/// The caller's `x-request-id` when it is short printable ASCII (safe to log
/// and echo), otherwise a fresh UUID v4.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn is_acceptable_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic())
}

/// The time the caller allows for this call, from `grpc-timeout`; `None` when
/// absent or malformed (tonic then applies no deadline either).
pub(crate) fn caller_timeout(headers: &HeaderMap) -> Option<Duration> {
    parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)
}

/// The time a Connect caller allows for this call, from
/// `connect-timeout-ms` (at most ten digits, as the protocol says); `None`
/// when absent or malformed, as for `grpc-timeout`.
pub(crate) fn connect_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("connect-timeout-ms")?.as_bytes();
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let millis: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(Duration::from_millis(millis))
}

/// Parses the gRPC-over-HTTP/2 `TimeoutValue TimeoutUnit` form: at most eight
/// ASCII digits followed by one of `H M S m u n`.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(unit_at);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How much earlier than the caller's deadline the gateway gives up, so that
/// its DEADLINE_EXCEEDED (with details) reaches the caller before the caller's
/// own timer fires: a tenth of the budget, at most 50 ms.
pub(crate) fn answer_margin(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeouts_are_up_to_ten_digits_of_milliseconds() {
        for (value, timeout) in [
            ("1500", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("9999999999", Some(Duration::from_millis(9_999_999_999))),
            ("10000000000", None),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("15S", None),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("connect-timeout-ms", value.parse().unwrap());
            assert_eq!(connect_timeout(&headers), timeout, "{value:?}");
        }
        assert_eq!(connect_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("300m"), Some(Duration::from_millis(300)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
    }

    #[test]
    fn grpc_timeout_rejects_malformed_values() {
        for bad in [
            "",
            "m",
            "100",
            "100x",
            "123456789m",
            "-1S",
            "1.5S",
            "१S",
            "S1",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_id_is_kept_when_safe_and_generated_otherwise() {
        let mut md = HeaderMap::new();
        md.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        assert_eq!(request_id(&md), "abc-123");

        md.insert(REQUEST_ID_HEADER, "has space".parse().unwrap());
        let generated = request_id(&md);
        assert_ne!(generated, "has space");
        assert!(uuid::Uuid::parse_str(&generated).is_ok());

        md.insert(REQUEST_ID_HEADER, "x".repeat(129).parse().unwrap());
        assert_eq!(request_id(&md).len(), 36);

        let fresh = request_id(&HeaderMap::new());
        assert_ne!(fresh, request_id(&HeaderMap::new()));
    }

    #[test]
    fn trace_context_is_kept_only_when_well_formed() {
        let mut md = HeaderMap::new();
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        md.insert("traceparent", good.parse().unwrap());
        md.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        let t = trace_context(&md).expect("valid");
        assert_eq!(t.traceparent, good);
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));

        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            md.insert("traceparent", bad.parse().unwrap());
            assert_eq!(trace_context(&md), None, "{bad}");
        }
        // A future version may carry more fields.
        md.insert(
            "traceparent",
            format!("01-{}-extra", &good[3..]).parse().unwrap(),
        );
        assert!(trace_context(&md).is_some());
        assert!(trace_context(&HeaderMap::new()).is_none());
    }

    #[test]
    fn margin_is_a_tenth_capped_at_50ms() {
        assert_eq!(
            answer_margin(Duration::from_millis(300)),
            Duration::from_millis(30)
        );
        assert_eq!(
            answer_margin(Duration::from_secs(10)),
            Duration::from_millis(50)
        );
    }
}
