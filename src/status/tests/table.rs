//! Every example of the error table (`ktp_testkit::error_table`, the data the
//! README's table is checked against) through the mapping: an upstream
//! answer through its call's body parser (result or submit) and the
//! classifier, a gateway-side trigger as the domain error it stands for (a
//! local image failure through the image parser itself); the rendered status
//! must be the one the example expects. What needs the retry machinery (a
//! submit answered after a lost attempt) is played by `tests/api/table.rs`.

use std::time::{Duration, SystemTime};

use ktp_testkit::{
    check,
    error_table::{Answer, Body, ImageCase, Provoke, Rpc, TABLE, Trigger},
    images::ImageSource,
};

use super::*;
use crate::{
    error::{MalformedRequest, Refusal},
    image::{Image, ImageInput},
    proto::MAX_REQUEST_BYTES,
    reference_id::ReferenceId,
    upstream::{client::parse_retry_after, model::interpret, submit},
};

/// `submit.max_image_bytes`'s default, which the examples assume.
const MAX_IMAGE_BYTES: usize = 5_000_000;

const REFERENCE_ID: &str = "REF_TABLE";

/// The domain error a gateway-side trigger stands for, on `rpc`.
fn provoked(rpc: Rpc, what: Provoke) -> GatewayError {
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
    // The upstream's failures of an image RPC are its submit call's, which
    // name the job.
    let upstream = |e: UpstreamError| {
        if rpc.carries_image() {
            for_job(GatewayError::Submit {
                error: e,
                image_field: "image",
            })
        } else {
            GatewayError::Upstream(e)
        }
    };
    let not_found = || UpstreamError::Status {
        status: 404,
        error_code: Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND".into()),
        retry_after: None,
    };
    match what {
        Provoke::ReferenceId(raw) => invalid(raw.to_owned()),
        Provoke::LongReferenceId(n) if n > MAX_REQUEST_BYTES => refused(Refusal::TooLarge),
        Provoke::LongReferenceId(n) => invalid("R".repeat(n)),
        Provoke::ReferenceIdBytes(_) | Provoke::WrongWireType => refused(Refusal::NotDecodable),
        Provoke::UnsupportedCompression => refused(Refusal::Other(Code::Unimplemented as i32)),
        Provoke::JsonUnknownMember(name) => GatewayError::UnknownJsonField {
            name: name.to_owned(),
        },
        Provoke::JsonWrongKind(field) => GatewayError::InvalidJsonField {
            field,
            problem: "must be true or false".to_owned(),
        },
        Provoke::BearerTokenMissing => GatewayError::Unauthenticated(Unauthenticated::Missing),
        Provoke::BearerTokenInvalid => GatewayError::Unauthenticated(Unauthenticated::Invalid),
        Provoke::Overloaded => GatewayError::Overloaded {
            scope: crate::error::Scope::Calls,
            limit: 1,
        },
        Provoke::ImageCallsOverloaded => GatewayError::Overloaded {
            scope: crate::error::Scope::Submits,
            limit: 1,
        },
        Provoke::UpstreamSaturated => upstream(UpstreamError::NoSlot { limit: 1 }),
        Provoke::SharedRequestLost => upstream(UpstreamError::FlightLost),
        Provoke::CallerDeadline => GatewayError::DeadlineExceeded,
        Provoke::CircuitOpen => upstream(UpstreamError::CircuitOpen {
            retry_in: Duration::from_millis(7300),
        }),
        Provoke::UpstreamTimeout => upstream(UpstreamError::Timeout {
            limit: Duration::from_secs(10),
            status: None,
        }),
        Provoke::ConnectionRefused | Provoke::ConnectionClosed => {
            upstream(UpstreamError::Transport {
                status: None,
                detail: "connection refused".into(),
            })
        }
        Provoke::CutMidBody | Provoke::ResetMidBody => upstream(UpstreamError::Transport {
            status: Some(200),
            detail: "connection closed before the body ended".into(),
        }),
        Provoke::Image(case) => {
            let input = match case.source(MAX_IMAGE_BYTES) {
                ImageSource::None => None,
                ImageSource::File(b) => Some(ImageInput::File(b.into())),
                ImageSource::Url(u) => Some(ImageInput::Url(u)),
            };
            match Image::parse(input, MAX_IMAGE_BYTES) {
                Err(why) => GatewayError::InvalidImage(why),
                Ok(image) => panic!("{case:?} passed validation as {image:?}"),
            }
        }
        Provoke::OversizedImageMessage => {
            const { assert!(ImageCase::OVER_MESSAGE_LIMIT > MAX_IMAGE_BYTES + MAX_REQUEST_BYTES) };
            refused(Refusal::TooLarge)
        }
        Provoke::ReadMask(paths) => {
            let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
            match crate::fields::visible(&paths, crate::fields::FieldSet::ALL) {
                Err(crate::fields::MaskError::Unknown(path)) => {
                    after_valid_id(rpc, GatewayError::invalid_read_mask(path))
                }
                other => panic!("{paths:?} is a valid read mask: {other:?}"),
            }
        }
        Provoke::FieldNotAllowed => {
            let allowed = crate::fields::FieldSet::parse(["nik", "full_name"]).unwrap();
            match crate::fields::visible(&["address".to_owned()], allowed) {
                Err(crate::fields::MaskError::NotAllowed(field)) => after_valid_id(
                    rpc,
                    GatewayError::FieldNotAllowed {
                        field: field.name(),
                    },
                ),
                other => panic!("address is allowed: {other:?}"),
            }
        }
        Provoke::WaitEnds => GatewayError::NotFoundAfterWait {
            error: not_found(),
            waited: Duration::from_millis(1200),
        },
        Provoke::ShutdownWhileWaiting => match rpc {
            Rpc::ExtractKtp => for_job(GatewayError::ShuttingDown { retry_as_is: false }),
            _ => for_job(GatewayError::ShuttingDown { retry_as_is: true }),
        },
        Provoke::StalledBody => GatewayError::RequestReadTimeout {
            limit: Duration::from_millis(300),
        },
        Provoke::NoAnswerInWait => GatewayError::NoAnswerInWait {
            waited: Duration::from_millis(300),
        },
        Provoke::ResultNotReady => GatewayError::ForJob {
            reference_id: REFERENCE_ID.into(),
            error: Box::new(GatewayError::ResultNotReady {
                waited: Duration::from_millis(1200),
            }),
        },
    }
}

/// `GetKtpResult` checks its id before its mask, and the call names a valid
/// id on every error (`grpc::call`); `ExtractKtp` checks its mask first.
fn after_valid_id(rpc: Rpc, error: GatewayError) -> GatewayError {
    match rpc {
        Rpc::GetKtpResult => for_job(error),
        _ => error,
    }
}

/// `error`, naming the job it concerns.
fn for_job(error: GatewayError) -> GatewayError {
    GatewayError::ForJob {
        reference_id: REFERENCE_ID.into(),
        error: Box::new(error),
    }
}

/// The domain error (if any) of an answer of `call` to `rpc`.
fn answered(rpc: Rpc, trigger: Trigger, answer: Answer) -> Option<GatewayError> {
    let retry_after = answer
        .retry_after()
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = answer.body.to_bytes();
    let err = match trigger {
        Trigger::Submit(_) => GatewayError::Submit {
            error: submit::interpret(answer.status, retry_after, &body).err()?,
            image_field: "image",
        },
        _ => GatewayError::Upstream(interpret(answer.status, retry_after, &body).err()?),
    };
    // A job's error, after its submit, or the submit's own: the caller
    // needs its id.
    Some(match (rpc, trigger) {
        (Rpc::ExtractKtp, Trigger::Upstream(_)) | (_, Trigger::Submit(_)) => for_job(err),
        _ => err,
    })
}

#[test]
fn every_example_of_the_error_table_renders_as_it_expects() {
    let mut checked = 0;
    for entry in TABLE {
        for example in entry.examples {
            let case = format!("{} / {}", entry.name, example.name);
            let err = match example.trigger {
                // The body cap is the client's, enforced while reading.
                Trigger::Upstream(answer) | Trigger::Submit(answer)
                    if matches!(answer.body, Body::Filler { .. }) =>
                {
                    continue;
                }
                // Needs the retry machinery: tests/api/table.rs plays it.
                Trigger::SubmitAfterLostAttempt(_) => continue,
                Trigger::Upstream(answer) | Trigger::Submit(answer) => {
                    match answered(example.rpc, example.trigger, answer) {
                        Some(err) => err,
                        None => {
                            assert_eq!(example.expect.code, "OK", "{case}");
                            checked += 1;
                            continue;
                        }
                    }
                }
                Trigger::Provoke(what) => provoked(example.rpc, what),
            };
            let status = render(&classify(&err), "req-table", Some(REFERENCE_ID));
            if let Err(why) = check::error_status(&status, &example.expect, REFERENCE_ID) {
                panic!("{case}: {why}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 120, "only {checked} examples checked");
}
