//! Every example of the error table (`ktp_testkit::error_table`, the data the
//! README's table is checked against) through the mapping: an upstream
//! answer through the body parser and the classifier, a gateway-side trigger
//! as the domain error it stands for; the rendered status must be the one
//! the example expects.

use std::time::{Duration, SystemTime};

use ktp_testkit::{
    check,
    error_table::{Body, Provoke, TABLE, Trigger},
};

use super::*;
use crate::{
    error::{MalformedRequest, Refusal},
    grpc::MAX_REQUEST_BYTES,
    reference_id::ReferenceId,
    upstream::{client::parse_retry_after, model::interpret},
};

const REFERENCE_ID: &str = "REF_TABLE";

/// The domain error a gateway-side trigger stands for.
fn provoked(what: Provoke) -> GatewayError {
    let refused = |kind| {
        GatewayError::Malformed(MalformedRequest {
            kind,
            message: "refused by the gRPC layer".into(),
        })
    };
    let invalid = |raw: String| match ReferenceId::parse(raw) {
        Err(why) => GatewayError::InvalidReferenceId(why),
        Ok(id) => panic!("{id:?} passed validation"),
    };
    match what {
        Provoke::ReferenceId(raw) => invalid(raw.to_owned()),
        Provoke::LongReferenceId(n) if n > MAX_REQUEST_BYTES => refused(Refusal::TooLarge),
        Provoke::LongReferenceId(n) => invalid("R".repeat(n)),
        Provoke::ReferenceIdBytes(_) | Provoke::WrongWireType => refused(Refusal::NotDecodable),
        Provoke::UnsupportedCompression => refused(Refusal::Other(Code::Unimplemented as i32)),
        Provoke::BearerTokenMissing => GatewayError::Unauthenticated(Unauthenticated::Missing),
        Provoke::BearerTokenInvalid => GatewayError::Unauthenticated(Unauthenticated::Invalid),
        Provoke::Overloaded => GatewayError::Overloaded { limit: 1 },
        Provoke::CallerDeadline => GatewayError::DeadlineExceeded,
        Provoke::CircuitOpen => GatewayError::Upstream(UpstreamError::CircuitOpen {
            retry_in: Duration::from_millis(7300),
        }),
        Provoke::UpstreamTimeout => GatewayError::Upstream(UpstreamError::Timeout {
            limit: Duration::from_secs(10),
            status: None,
        }),
        Provoke::ConnectionRefused | Provoke::ConnectionClosed => {
            GatewayError::Upstream(UpstreamError::Transport {
                status: None,
                detail: "connection refused".into(),
            })
        }
        Provoke::CutMidBody | Provoke::ResetMidBody => {
            GatewayError::Upstream(UpstreamError::Transport {
                status: Some(200),
                detail: "connection closed before the body ended".into(),
            })
        }
    }
}

#[test]
fn every_example_of_the_error_table_renders_as_it_expects() {
    let mut checked = 0;
    for entry in TABLE {
        for example in entry.examples {
            let case = format!("{} / {}", entry.name, example.name);
            let err = match example.trigger {
                // The body cap is the client's, enforced while reading.
                Trigger::Upstream(answer) if matches!(answer.body, Body::Filler { .. }) => continue,
                Trigger::Upstream(answer) => {
                    let retry_after = answer
                        .retry_after()
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let body = answer.body.to_bytes();
                    match interpret(answer.status, retry_after, &body) {
                        Ok(_) => {
                            assert_eq!(example.expect.code, "OK", "{case}");
                            checked += 1;
                            continue;
                        }
                        Err(e) => GatewayError::Upstream(e),
                    }
                }
                Trigger::Provoke(what) => provoked(what),
            };
            let status = render(&classify(&err), "req-table", Some(REFERENCE_ID));
            if let Err(why) = check::error_status(&status, &example.expect, REFERENCE_ID) {
                panic!("{case}: {why}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} examples checked");
}
