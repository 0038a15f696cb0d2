//! What an answer holds: `read_mask`, the caller's allowance from the tokens
//! file, `rt_rw_value` and the consistency checks, through the real server.

use std::io::Write;

use ktp_gateway::proto::{CheckResult, ExtractKtpRequest, GetKtpResultResponse};
use ktp_testkit::{card_holders::sample_success, fake_upstream::Reply};
use prost::Message;
use prost_types::FieldMask;
use serde_json::json;
use tempfile::NamedTempFile;
use tonic::{Code, Request};

use crate::helpers::{TestApp, expect_error, extract_request, tokens_file, valid_image};

const REF: &str = "REF-FIELDS-1";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// The field numbers the answer carries on the wire.
fn encoded_fields(r: &GetKtpResultResponse) -> Vec<u32> {
    let bytes = r.encode_to_vec();
    let mut buf = bytes.as_slice();
    let mut numbers = Vec::new();
    while !buf.is_empty() {
        let (number, wire) = prost::encoding::decode_key(&mut buf).unwrap();
        numbers.push(number);
        prost::encoding::skip_field(wire, number, &mut buf, Default::default()).unwrap();
    }
    numbers
}

fn tokens(text: &str) -> NamedTempFile {
    let mut f = NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn bearer<T>(token: &'static str) -> impl FnOnce(&mut Request<T>) {
    move |r| {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
}

async fn app_with_card() -> TestApp {
    let app = TestApp::spawn().await;
    app.upstream.on(REF, Reply::Json(200, sample_success()));
    app
}

#[tokio::test]
async fn without_a_mask_every_field_comes_with_rt_rw_and_checks_that_pass() {
    let app = app_with_card().await;
    let r = app.call(REF).await.unwrap().into_inner();
    assert_eq!(r.nik, "3506042602660001");
    assert_eq!(r.rt_rw_value.map(|v| (v.rt, v.rw)), Some((2, 3)));
    let c = r.checks.expect("checks");
    for (name, result) in [
        ("nik_format", c.nik_format()),
        ("nik_birth_date", c.nik_birth_date()),
        ("nik_gender", c.nik_gender()),
        ("nik_province", c.nik_province()),
    ] {
        assert_eq!(result, CheckResult::Pass, "{name}");
    }
}

#[tokio::test]
async fn a_mask_keeps_the_fields_named_and_the_reference_id() {
    let app = app_with_card().await;
    let r = app
        .call_with(REF, |r| r.get_mut().read_mask = mask(&["nik", "full_name"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(encoded_fields(&r), [1, 4, 5]);
    assert_eq!(
        (r.reference_id.as_str(), r.full_name.as_str()),
        (REF, "SULISTYONO")
    );

    // The checks are computed from the whole card, even with every field
    // they compare masked away.
    let r = app
        .call_with(REF, |r| r.get_mut().read_mask = mask(&["checks"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(encoded_fields(&r), [1, 28]);
    assert_eq!(r.checks.unwrap().nik_province(), CheckResult::Pass);

    // An empty mask is no mask.
    let r = app
        .call_with(REF, |r| r.get_mut().read_mask = mask(&[]))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.address.is_empty() && r.checks.is_some());
}

#[tokio::test]
async fn a_bad_mask_is_refused_before_the_upstream_is_called() {
    let app = app_with_card().await;
    for paths in [&["nik", "checks.nik_format"][..], &["fullName"], &["*"]] {
        let err = expect_error(
            app.call_with(REF, |r| r.get_mut().read_mask = mask(paths))
                .await,
        );
        assert_eq!(err.code, Code::InvalidArgument, "{paths:?}");
        assert_eq!(err.reason(), "INVALID_READ_MASK");
        assert_eq!(err.domain(), "ktp-gateway");
        assert_eq!(err.meta("path"), paths.last().copied());
    }
    assert_eq!(app.upstream.attempts(REF), 0);
}

#[tokio::test]
async fn extract_ktp_masks_its_result() {
    let app = TestApp::spawn().await;
    app.upstream
        .on_submit(REF, Reply::Json(200, json!({"message": "ok"})));
    app.upstream.on(REF, Reply::Json(200, sample_success()));
    let request = ExtractKtpRequest {
        read_mask: mask(&["gender_value", "checks"]),
        ..extract_request(valid_image(), REF)
    };
    let r = app.extract(request).await.unwrap().into_inner();
    let result = r.result.expect("result");
    assert_eq!(encoded_fields(&result), [1, 21, 28]);
}

#[tokio::test]
async fn a_restricted_caller_sees_only_its_fields_and_may_not_ask_for_more() {
    let file = tokens(
        "# kyc-lite may see the name and NIK only\n\
         lite-token caller=kyc-lite fields=nik,full_name,checks\n\
         full-token caller=backoffice\n\
         anonymous-token\n",
    );
    let app = TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(file.path())).await;
    app.upstream.on(REF, Reply::Json(200, sample_success()));

    let r = app
        .call_with(REF, bearer("lite-token"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(encoded_fields(&r), [1, 4, 5, 28]);

    let r = app
        .call_with(REF, |r| {
            bearer("lite-token")(r);
            r.get_mut().read_mask = mask(&["nik"]);
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(encoded_fields(&r), [1, 4]);

    let attempts = app.upstream.attempts(REF);
    let err = expect_error(
        app.call_with(REF, |r| {
            bearer("lite-token")(r);
            r.get_mut().read_mask = mask(&["nik", "address"]);
        })
        .await,
    );
    assert_eq!(err.code, Code::PermissionDenied);
    assert_eq!(err.reason(), "FIELD_NOT_ALLOWED");
    assert_eq!(err.meta("field"), Some("address"));
    assert_eq!(
        app.upstream.attempts(REF),
        attempts,
        "refused before the upstream"
    );

    for token in ["full-token", "anonymous-token"] {
        let r = app
            .call_with(REF, bearer(token))
            .await
            .unwrap()
            .into_inner();
        // Every field the vendor's sample fills (it sends no status_code).
        let every: Vec<u32> = (1..=28).filter(|n| *n != 3).collect();
        assert_eq!(encoded_fields(&r), every, "{token}");
    }

    // The caller's name (never the token) labels its calls; no name is "unknown".
    let page = app.scrape().await;
    let series = |caller: &str, code: &str| {
        format!(
            r#"ktp_gateway_caller_requests_total{{caller="{caller}",code="{code}",method="/ktp.v1.KtpService/GetKtpResult"}}"#
        )
    };
    for (caller, code, n) in [
        ("kyc-lite", "OK", 2),
        ("kyc-lite", "PERMISSION_DENIED", 1),
        ("backoffice", "OK", 1),
        ("unknown", "OK", 1),
    ] {
        let line = format!("{} {n}", series(caller, code));
        assert!(page.contains(&line), "missing {line}\n{page}");
    }
    assert!(!page.contains("lite-token") && !page.contains("full-token"));
}

#[tokio::test]
async fn check_results_are_counted_without_values() {
    let app = TestApp::spawn().await;
    let mut card = sample_success();
    // A woman's NIK (day + 40) on a card that says LAKI-LAKI.
    card["data"]["nik"] = json!("3506046602660001");
    app.upstream.on(REF, Reply::Json(200, card));
    let r = app.call(REF).await.unwrap().into_inner();
    let checks = r.checks.unwrap();
    assert_eq!(checks.nik_gender(), CheckResult::Fail);
    assert_eq!(checks.nik_birth_date(), CheckResult::Pass);
    let page = app.scrape().await;
    for line in [
        r#"ktp_gateway_checks_total{check="nik_gender",result="fail"} 1"#,
        r#"ktp_gateway_checks_total{check="nik_birth_date",result="pass"} 1"#,
        r#"ktp_gateway_checks_total{check="nik_format",result="pass"} 1"#,
        r#"ktp_gateway_checks_total{check="nik_province",result="pass"} 1"#,
    ] {
        assert!(page.contains(line), "missing {line}\n{page}");
    }
    assert!(!page.contains("3506046602660001"));
}
