use super::*;

fn md(value: &str) -> Option<&str> {
    Some(value)
}

#[test]
fn parses_one_token_per_line_ignoring_blanks_and_comments() {
    let t = BearerTokens::parse("# service A\ntoken-a\n\n  token-b  \r\n")
        .unwrap()
        .unwrap();
    assert!(t.accepts("token-a") && t.accepts("token-b"));
    assert!(!t.accepts("token-c") && !t.accepts("") && !t.accepts("# service A"));
    assert!(
        BearerTokens::parse("# only a comment\n\n")
            .unwrap()
            .is_none()
    );
}

#[test]
fn checks_the_authorization_metadata() {
    let t = BearerTokens::parse("s3cret").unwrap().unwrap();
    assert_eq!(t.check(md("Bearer s3cret")), Ok(&Caller::ANYONE));
    assert_eq!(t.check(md("bearer s3cret")), Ok(&Caller::ANYONE));
    assert_eq!(t.check(None), Err(Unauthenticated::Missing));
    assert_eq!(t.check(md("Bearer wrong")), Err(Unauthenticated::Invalid));
    assert_eq!(t.check(md("Basic s3cret")), Err(Unauthenticated::Invalid));
    assert_eq!(t.check(md("s3cret")), Err(Unauthenticated::Invalid));
}

#[test]
fn debug_shows_no_token() {
    let t = BearerTokens::parse("visible-token").unwrap().unwrap();
    assert!(!format!("{t:?}").contains("visible-token"));
}

#[test]
fn a_line_may_name_its_caller_and_restrict_its_fields() {
    let t = BearerTokens::parse(
        "plain\n\
         # a comment\n\
         named caller=billing\n\
         restricted caller=kyc-lite fields=reference_id,nik,full_name,checks\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.check(md("Bearer plain")), Ok(&Caller::ANYONE));
    let named = t.check(md("Bearer named")).unwrap();
    assert_eq!((named.label(), named.allowed), ("billing", FieldSet::ALL));
    let restricted = t.check(md("Bearer restricted")).unwrap();
    assert_eq!(restricted.label(), "kyc-lite");
    let want = FieldSet::parse(["reference_id", "nik", "full_name", "checks"]).unwrap();
    assert_eq!(restricted.allowed, want);
    assert_eq!(Caller::ANYONE.label(), "unknown");
    let names: Vec<_> = t.caller_names().collect();
    assert_eq!(names, ["billing", "kyc-lite"]);
}

#[test]
fn a_malformed_line_is_named_by_number_without_its_token() {
    use tokens::LineError::*;
    for (text, line, want) in [
        ("ok\nSECRETTOKEN1 SECRETTOKEN2\n", 2, UnknownOption),
        ("SECRETTOKEN1 SECRETTOKEN2==\n", 1, UnknownOption),
        ("SECRETTOKEN1 role=admin\n", 1, UnknownOption),
        ("SECRETTOKEN1 caller=a caller=b\n", 1, Twice("caller")),
        (
            "SECRETTOKEN1 caller=a fields=nik fields=nik\n",
            1,
            Twice("fields"),
        ),
        ("\n\nSECRETTOKEN1 fields=nik\n", 3, FieldsWithoutCaller),
        ("SECRETTOKEN1 caller=\n", 1, CallerName),
        ("SECRETTOKEN1 caller=unknown\n", 1, CallerName),
        ("SECRETTOKEN1 caller=a/b\n", 1, CallerName),
        (
            &format!("SECRETTOKEN1 caller={}\n", "a".repeat(65)),
            1,
            CallerName,
        ),
        ("SECRETTOKEN1 caller=a fields=\n", 1, EmptyFields),
        ("SECRETTOKEN1 caller=a fields=nik,,state\n", 1, EmptyFields),
        (
            "SECRETTOKEN1 caller=a fields=nik,checks.nik_format\n",
            1,
            UnknownField("checks.nik_format".into()),
        ),
        (
            "SECRETTOKEN1\n# again\nSECRETTOKEN1 caller=b\n",
            3,
            Repeated { first: 1 },
        ),
        // An example file deployed as it is must not let anyone in.
        ("ok\nPLACEHOLDER-onboarding caller=a\n", 2, Placeholder),
        ("PLACEHOLDER\n", 1, Placeholder),
    ] {
        let got = BearerTokens::parse(text).map(|_| ()).unwrap_err();
        assert_eq!(got, (line, want.clone()), "{text:?}");
        assert!(!want.to_string().contains("SECRETTOKEN"), "{want}");
    }
}

#[test]
fn the_load_error_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ktp-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    std::fs::write(&path, "good\nSECRETTOKEN other\n").unwrap();
    let err = BearerTokens::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{} line 2: ", path.display())),
        "{err}"
    );
    assert!(
        !err.contains("SECRETTOKEN") && !err.contains("other"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
