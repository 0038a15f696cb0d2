//! Who calls and what they may see, with the real binary: the tokens file's
//! caller lines, the caller in the log line, the sandbox's cards that make
//! each consistency check fail.

use std::io::Write;

use ktp_gateway::proto::CheckResult;
use tempfile::NamedTempFile;

use ktp_testkit::card_holders::SANDBOX_PERSONAL_VALUES as PERSONAL_VALUES;

use crate::harness::{Gateway, assert_absent, ktp_request, run_gateway_to_exit};

fn tokens(text: &str) -> NamedTempFile {
    let mut f = NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn a_malformed_tokens_line_stops_the_start_naming_file_and_line_not_the_token() {
    let file = tokens(
        "# callers of ktp-gateway\n\
         good-token-1 caller=billing\n\
         SECRET-TOKEN-XYZ caler=typo fields=nik\n",
    );
    let path = file.path().to_str().unwrap();
    let out = run_gateway_to_exit(&["--sandbox"], &[("KTP_GATEWAY__AUTH__TOKENS_FILE", path)]);
    assert_eq!(out.status.code(), Some(2), "{}", out.output());
    assert!(out.stdout.is_empty(), "{}", out.output());
    let text = out.stderr.join("\n");
    for part in [
        "auth.tokens_file",
        "KTP_GATEWAY__AUTH__TOKENS_FILE",
        &format!("{path} line 3"),
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    for secret in ["SECRET-TOKEN-XYZ", "good-token-1", "typo"] {
        assert!(!text.contains(secret), "{secret:?} echoed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_line_names_the_caller_never_the_token() {
    let file = tokens("lite-token-1 caller=kyc-lite fields=nik,checks\nplain-token-2\n");
    let path = file.path().to_str().unwrap();
    let mut gateway = Gateway::sandbox(&[("KTP_GATEWAY__AUTH__TOKENS_FILE", path)]);
    let mut client = gateway.ktp().await;
    for (token, request_id) in [
        ("lite-token-1", "callers-1"),
        ("plain-token-2", "callers-2"),
    ] {
        let mut request = ktp_request("REFERENCE_ID_KTP", Some(request_id));
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let r = client.get_ktp_result(request).await.unwrap().into_inner();
        assert_eq!(r.full_name.is_empty(), token == "lite-token-1");
    }
    assert_eq!(gateway.call_log("callers-1")["caller"], "kyc-lite");
    assert_eq!(gateway.call_log("callers-2")["caller"], "");
    gateway.stop();
    let lines = gateway.process.stdout().to_vec();
    for secret in ["lite-token-1", "plain-token-2"] {
        assert_absent(&lines, secret, "a bearer token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_a_card_for_every_check_result() {
    use CheckResult::{Fail, NotChecked, Pass};
    let mut gateway = Gateway::sandbox(&[]);
    let mut client = gateway.ktp().await;
    for (id, want) in [
        ("REFERENCE_ID_KTP", [Pass, Pass, Pass, Pass]),
        (
            "REFERENCE_ID_KTP_NIK_BIRTH_DATE_MISMATCH",
            [Pass, Fail, Pass, Pass],
        ),
        (
            "REFERENCE_ID_KTP_NIK_GENDER_MISMATCH",
            [Pass, Pass, Fail, Pass],
        ),
        (
            "REFERENCE_ID_KTP_NIK_PROVINCE_MISMATCH",
            [Pass, Pass, Pass, Fail],
        ),
        (
            "REFERENCE_ID_KTP_NIK_MALFORMED",
            [Fail, NotChecked, NotChecked, NotChecked],
        ),
    ] {
        let r = client
            .get_ktp_result(ktp_request(id, None))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"))
            .into_inner();
        let c = r.checks.unwrap_or_else(|| panic!("{id}: no checks"));
        let got = [
            c.nik_format(),
            c.nik_birth_date(),
            c.nik_gender(),
            c.nik_province(),
        ];
        assert_eq!(got, want, "{id}");
    }
    gateway.stop();
    let lines = gateway.process.stdout().to_vec();
    for value in PERSONAL_VALUES
        .iter()
        .chain(&["32730165059O0002", "26-05-1990"])
    {
        assert_absent(&lines, value, "a personal value");
    }
}
