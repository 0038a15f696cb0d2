//! `--sandbox`: the embedded look-alike of the vendor's sandbox behind the
//! real server. Its magic ids each answer their own answer, whatever other
//! ids answered before.

use tonic::Code;

use crate::helpers::{TestApp, expect_error};

/// Two calls to the 5xx magic id used to open the circuit breaker for every
/// id for 10 s (issue 10, point 9).
#[tokio::test]
async fn a_simulated_upstream_failure_does_not_make_other_magic_ids_fail() {
    let app = TestApp::spawn_with(|s| s.sandbox.enabled = true).await;
    for _ in 0..4 {
        let e = expect_error(app.call("REFERENCE_ID_ERROR_SERVER").await);
        assert_eq!(
            (e.code, e.reason()),
            (Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
            "the 5xx id answers its own answer every time"
        );
    }
    let card = app
        .call("REFERENCE_ID_KTP")
        .await
        .expect("a good magic id still answers")
        .into_inner();
    assert_eq!(card.full_name, "SITI CONTOH");
}
