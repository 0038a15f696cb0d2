//! Rows the gateway decides alone.

use super::*;

#[test]
fn row_local_validation_failure() {
    for why in [
        InvalidReferenceId::Empty,
        InvalidReferenceId::Blank,
        InvalidReferenceId::TooLong(200),
        InvalidReferenceId::ControlCharacter,
    ] {
        let err = GatewayError::InvalidReferenceId(why);
        assert_eq!(
            row(&err),
            (
                Code::InvalidArgument,
                "INVALID_REFERENCE_ID".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            classify(&err).detail,
            Detail::BadRequest {
                field: "reference_id",
                description: why.to_string()
            }
        );
        assert_eq!(meta(&err, "upstream_http_status"), None);
        assert_eq!(meta(&err, "constraint").as_deref(), Some(why.constraint()));
    }
}

#[test]
fn row_unauthenticated() {
    let err = GatewayError::Unauthenticated(Unauthenticated::Missing);
    assert_eq!(
        row(&err),
        (
            Code::Unauthenticated,
            "BEARER_TOKEN_MISSING".into(),
            GATEWAY_DOMAIN
        )
    );
    let err = GatewayError::Unauthenticated(Unauthenticated::Invalid);
    assert_eq!(
        row(&err),
        (
            Code::Unauthenticated,
            "BEARER_TOKEN_INVALID".into(),
            GATEWAY_DOMAIN
        )
    );
}

#[test]
fn row_overloaded() {
    use crate::error::Scope;
    for (scope, name, old_key) in [
        (Scope::Calls, "calls", true),
        (Scope::Submits, "submits", true),
        (Scope::Waits, "waits", false),
        (Scope::Upstream, "upstream", false),
    ] {
        let err = GatewayError::Overloaded { scope, limit: 64 };
        assert_eq!(
            row(&err),
            (Code::ResourceExhausted, "OVERLOADED".into(), GATEWAY_DOMAIN)
        );
        assert_eq!(meta(&err, "scope").as_deref(), Some(name));
        assert_eq!(meta(&err, "limit").as_deref(), Some("64"));
        let kept = meta(&err, "max_in_flight");
        assert_eq!(kept.as_deref(), old_key.then_some("64"), "{name}");
    }
}

#[test]
fn row_upstream_saturated() {
    let err = GatewayError::Upstream(UpstreamError::NoSlot { limit: 2 });
    assert_eq!(
        row(&err),
        (Code::ResourceExhausted, "OVERLOADED".into(), GATEWAY_DOMAIN)
    );
    assert_eq!(meta(&err, "limit").as_deref(), Some("2"));
    assert_eq!(meta(&err, "scope").as_deref(), Some("upstream"));
    assert_eq!(
        classify(&err).detail,
        Detail::None,
        "no RetryInfo: not UNAVAILABLE"
    );
}

/// A shared request that panicked or was aborted is the gateway's bug: not
/// UNAVAILABLE `UPSTREAM_UNAVAILABLE`, which says "retry as is" and blames
/// the upstream.
#[test]
fn row_shared_request_lost() {
    use crate::resilience::Failure;
    let err = GatewayError::Upstream(UpstreamError::flight_lost());
    assert_eq!(
        row(&err),
        (Code::Internal, "INTERNAL_ERROR".into(), GATEWAY_DOMAIN)
    );
}

#[test]
fn rows_for_requests_tonic_refused() {
    let refused = |code| refusal(&Status::new(code, "tonic's words"));
    for (tonic_code, code, reason) in [
        (Code::OutOfRange, Code::InvalidArgument, "REQUEST_TOO_LARGE"),
        (
            Code::Internal,
            Code::InvalidArgument,
            "REQUEST_NOT_DECODABLE",
        ),
        (Code::Unimplemented, Code::Unimplemented, "REQUEST_REFUSED"),
    ] {
        let err = refused(tonic_code);
        assert_eq!(row(&err), (code, reason.into(), GATEWAY_DOMAIN));
        assert_eq!(classify(&err).message, "tonic's words");
    }
}

#[test]
fn row_caller_deadline() {
    let err = GatewayError::DeadlineExceeded;
    assert_eq!(
        row(&err),
        (
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED".into(),
            GATEWAY_DOMAIN
        )
    );
    assert_eq!(classify(&err).detail, Detail::None);
}
