//! The start's rule on callers: authenticated (tokens, mutual TLS) or
//! explicitly not, outside the sandbox; example tokens refuse the start.

use std::io::Write;

use secrecy::ExposeSecret;

use super::{CREDS, env, load_env};
use crate::config::{ConfigError, Secret, Settings, Sources};

/// National-ID data is served to no one by default: outside the sandbox a
/// start needs tokens, mutual TLS or the explicit opt-out.
#[test]
fn callers_must_be_authenticated_or_explicitly_not() {
    let creds = &CREDS[..2];
    let err = load_env(creds).unwrap_err().to_string();
    for named in [
        "auth.tokens_file",
        "KTP_GATEWAY__AUTH__TOKENS_FILE",
        "server.tls.client_ca_file",
        "auth.allow_unauthenticated",
        "KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED",
    ] {
        assert!(err.contains(named), "{named} not in: {err}");
    }
    assert!(!err.contains('\n'), "one line: {err}");

    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    writeln!(tokens, "a-real-token caller=onboarding").unwrap();
    let path = tokens.path().to_str().unwrap();
    let mut vars = creds.to_vec();
    vars.push(("KTP_GATEWAY__AUTH__TOKENS_FILE", path));
    assert!(load_env(&vars).unwrap().auth.tokens().is_some());
    // Both: the tokens apply.
    vars.push(("KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED", "true"));
    assert!(load_env(&vars).unwrap().auth.tokens().is_some());

    let sandbox = Settings::load(Sources {
        env: env(&[]),
        sandbox: true,
        ..Default::default()
    });
    assert!(sandbox.is_ok(), "--sandbox needs no auth");
}

/// An example tokens file deployed as it is refuses the start, naming the
/// file and line, never the token.
#[test]
fn a_placeholder_token_refuses_the_start() {
    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        tokens,
        "# example\nPLACEHOLDER-onboarding-token caller=onboarding"
    )
    .unwrap();
    let path = tokens.path().to_str().unwrap();
    let mut vars = CREDS.to_vec();
    vars.push(("KTP_GATEWAY__AUTH__TOKENS_FILE", path));
    let err = load_env(&vars).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid auth.tokens_file (set with KTP_GATEWAY__AUTH__TOKENS_FILE)"),
        "{err}"
    );
    assert!(err.contains(&format!("{path} line 2")), "{err}");
    assert!(!err.contains("onboarding-token"), "{err}");
}

#[test]
fn settings_built_in_code_are_checked_as_loaded_ones() {
    let mut s = Settings::default();
    s.upstream.app_id = Secret::new("app");
    s.upstream.api_key = Secret::new("key");
    assert!(matches!(
        s.clone().checked(),
        Err(ConfigError::Unauthenticated)
    ));
    s.auth.allow_unauthenticated = true;
    assert_eq!(s.checked().unwrap().upstream.api_key.expose_secret(), "key");
}
