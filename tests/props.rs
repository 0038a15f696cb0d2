//! Property tests of the two functions that take hostile input.
//!
//! Proves, for the upstream-body parser [`interpret`] (any status, any
//! `Retry-After`, any bytes: random bytes, random JSON trees, bodies shaped
//! like the real one with random types and `null`s, and broken variants of
//! them): it never panics, and its answer, run through [`classify`] and
//! [`render`], is always one of the README error-table rows for that HTTP
//! status in the error table (`ktp_testkit::error_table`, the data the
//! README's table is checked against), with its detail and metadata; reasons the upstream gave are
//! bounded tokens under `api.verihubs.com`; no row repeats body text; and a
//! well-typed success keeps every value verbatim.
//!
//! Proves, for the request validator [`ReferenceId::parse`]: an accepted id
//! satisfies every rule (1..=128 bytes, not blank, no control characters) and
//! is kept unchanged; a rejected one violates the rule its error names (the
//! first one, in the documented order), and maps to INVALID_ARGUMENT
//! `INVALID_REFERENCE_ID` with that rule as `constraint`.
//!
//! [`submit`]: the same for the submit call's answer parser
//! (`upstream::submit::interpret`), against the rows the table gives the
//! submit call. [`image`]: the image validator (`image::Image::parse`) never
//! panics and accepts exactly the images and URLs the rules allow.
//! [`fields`]: the NIK checks, `rt_rw`, answers cut to a field set and the
//! tokens file's parser.
//!
//! **Failures are not persisted.** Every block runs with [`config`], which
//! turns proptest's failure persistence off: by default proptest writes a
//! `*.proptest-regressions` file of seeds beside the source on a failure and
//! replays it on every later run, so a run of the test command would leave an
//! untracked file in the tree, and a seed means nothing once a strategy
//! changes. A case a property found is instead kept as a plain named test,
//! `regression_…`, beside the property (`submit::regression_…`,
//! `image::regression_…`), which names its input and runs on every run. A
//! failure prints its minimal input (`minimal failing input: …`): copy it into
//! such a test. [`no_test_run_writes_into_the_tree`] holds every block to
//! [`config`] and fails on any regressions file under `tests/`.

#[path = "props/fields.rs"]
mod fields;
#[path = "props/image.rs"]
mod image;
#[path = "props/submit.rs"]
mod submit;

use std::time::Duration;

use ktp_gateway::{
    convert,
    error::GatewayError,
    reference_id::{InvalidReferenceId, MAX_LEN, ReferenceId},
    status::{self as mapping, Detail, GATEWAY_DOMAIN, Row, UPSTREAM_DOMAIN, classify, render},
    upstream::{UpstreamError, model::interpret},
};
use ktp_testkit::error_table::{
    self as table, Delay, Entry, GrpcCode, Reason, TABLE, UpstreamCall,
};
use proptest::{collection, prelude::*};
use serde_json::{Map, Value, json};
use tonic::Code;
use tonic_types::StatusExt;

/// Marks generated text that stands for personal data or free-form body
/// text. It contains a space, so it can never be a valid error-code token:
/// if it shows up in a row, body text leaked into an error.
const MARKER: &str = "PII MARK";

/// The KTP fields of `data`, as the upstream names them.
const KTP_FIELDS: &[&str] = &[
    "nik",
    "full_name",
    "place_of_birth",
    "date_of_birth",
    "gender",
    "blood_type",
    "address",
    "rt_rw",
    "administrative_village",
    "district",
    "city",
    "state",
    "religion",
    "marital_status",
    "occupation",
    "nationality",
    "reference_id",
    "status_code",
];
const FLAGS: &[&str] = &["blur", "dark", "flashlight", "grayscale"];
const KNOWN_CODES: &[&str] = &[
    "FAIL_ON_1",
    "KTP_NOT_DETECTED",
    "INTERNAL_SERVER_ERROR",
    "INVALID_PAYLOAD_REFERENCE_ID",
    "INVALID_SANDBOX_CODE",
    "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
    "INSUFFICIENT_QUOTA",
];
const PROBLEMS: &[&str] = &[
    "not_json",
    "not_an_object",
    "wrong_shape",
    "no_data",
    "too_large",
];

/// The configuration of every `proptest!` block: `cases` cases (the
/// `PROPTEST_CASES` variable overrides it), failures not written anywhere
/// (see the crate doc).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// A test run writes nothing into the tree: every `proptest!` block takes
/// [`config`], and no `*.proptest-regressions` file is left under `tests/`.
#[test]
fn no_test_run_writes_into_the_tree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut sources = vec![root.join("props.rs")];
    let mut dirs = vec![root.clone()];
    let mut regressions = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(".proptest-regressions") {
                regressions.push(path);
            } else if path.starts_with(root.join("props")) {
                sources.push(path);
            }
        }
    }
    assert!(
        regressions.is_empty(),
        "keep a found case as a named regression test, not a seed file: {regressions:?}"
    );
    for source in sources {
        let text = std::fs::read_to_string(&source).expect("a readable source");
        let count = |wanted: &str| {
            text.lines()
                .filter(|l| l.trim().starts_with(wanted))
                .count()
        };
        assert_eq!(
            count("proptest! {"),
            count("#![proptest_config(config("),
            "{}: a proptest! block without `#![proptest_config(config(…))]` persists its failures",
            source.display()
        );
    }
}

// ---------------------------------------------------------------- strategies

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(vec![200u16, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503, 504]),
        1 => 100u16..=599,
    ]
}

fn retry_after() -> impl Strategy<Value = Option<Duration>> {
    prop::option::of((0u64..=3600).prop_map(Duration::from_secs))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Z0-9 ./-]{0,24}",
        any::<String>().prop_map(|s| format!("{MARKER} {s}")),
        Just(String::new()),
        Just("  ".to_owned()),
    ]
}

/// Strings that may or may not be acceptable error codes.
fn error_code_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KNOWN_CODES).prop_map(str::to_owned),
        "[A-Za-z0-9_.-]{1,64}",
        "[A-Za-z0-9_.-]{60,70}",
        text(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KTP_FIELDS).prop_map(str::to_owned),
        prop::sample::select(&["data", "error_code", "message", "image_quality"][..])
            .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// Any JSON tree.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a field that should be a string: mostly right, often not.
fn field_value(right: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![
        12 => right,
        2 => Just(Value::Null),
        1 => json_value(),
    ]
    .boxed()
}

/// `name: value` for a random subset of `names`.
fn some_fields(
    names: &'static [&'static str],
    value: impl Fn() -> BoxedStrategy<Value>,
) -> impl Strategy<Value = Map<String, Value>> {
    let per_field: Vec<_> = names
        .iter()
        .map(|n| prop::option::weighted(0.7, value()).prop_map(move |v| (*n, v)))
        .collect();
    per_field.prop_map(|fields| {
        fields
            .into_iter()
            .filter_map(|(n, v)| Some((n.to_owned(), v?)))
            .collect()
    })
}

/// A `data` object like the real one, with random types and nulls.
fn data_object() -> impl Strategy<Value = Value> {
    let flags = some_fields(FLAGS, || field_value(any::<bool>().prop_map(Value::Bool)));
    (
        some_fields(KTP_FIELDS, || field_value(text().prop_map(Value::String))),
        prop::option::weighted(
            0.6,
            prop_oneof![4 => flags.prop_map(Value::Object), 1 => json_value()],
        ),
    )
        .prop_map(|(mut fields, quality)| {
            if let Some(q) = quality {
                fields.insert("image_quality".into(), q);
            }
            Value::Object(fields)
        })
}

/// A whole body shaped like the upstream's, with random types and nulls.
fn shaped_body() -> impl Strategy<Value = Value> {
    let error_code = prop_oneof![
        3 => error_code_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => json_value(),
    ];
    let data = prop_oneof![4 => data_object(), 1 => json_value()];
    (
        prop::option::of(field_value(text().prop_map(Value::String))),
        prop::option::weighted(0.4, error_code),
        prop::option::of(field_value(text().prop_map(Value::String))),
        prop::option::weighted(0.85, data),
        collection::btree_map(key(), json_value(), 0..3),
    )
        .prop_map(|(message, error_code, status_code, data, extra)| {
            let mut body: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [
                ("message", message),
                ("error_code", error_code),
                ("status_code", status_code),
                ("data", data),
            ] {
                if let Some(v) = v {
                    body.insert(k.to_owned(), v);
                }
            }
            Value::Object(body)
        })
}

/// Serialized JSON, a quarter of it broken: truncated, or a byte replaced.
fn body_bytes(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (value, 0u8..8, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, how, at, byte)| {
        let mut bytes = serde_json::to_vec(&v).expect("serializable");
        match how {
            0 if !bytes.is_empty() => bytes.truncate(at.index(bytes.len())),
            1 if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            _ => {}
        }
        bytes
    })
}

// ------------------------------------------------------------------ oracle

fn meta<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.metadata
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn is_token(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `row` is what the error table (`ktp_testkit::error_table`, the
/// data the README table is checked against) allows for an answer of the
/// upstream `call` with this status. Of the entries that answer the status,
/// a row whose reason one of them names must be that entry's; any other
/// reason must be the upstream's own code where an entry passes codes
/// through. Code, domain and the kind of detail must be the entry's. `Err`
/// names what is off.
fn documented(
    call: UpstreamCall,
    status: u16,
    retry_after: Option<Duration>,
    row: &Row,
) -> Result<(), String> {
    let http = status.to_string();
    if meta(row, "upstream_http_status") != Some(http.as_str()) {
        return Err("upstream_http_status is not the status".into());
    }
    if row.domain == UPSTREAM_DOMAIN && !is_token(&row.reason) {
        return Err("upstream reason is not a bounded token".into());
    }
    // An unusable body names its problem; an unexpected status has none.
    if row.reason == mapping::reason::UPSTREAM_BAD_RESPONSE {
        let problem = meta(row, "problem");
        let ok = match status {
            200..=299 => problem.is_some_and(|p| PROBLEMS.contains(&p)),
            _ => problem.is_none(),
        };
        if !ok {
            return Err(format!("problem {problem:?} for HTTP {status}"));
        }
    }
    let entries: Vec<&Entry> = TABLE
        .iter()
        .filter(|e| e.answers_call(call, status))
        .collect();
    let names = |e: &Entry, reason: &str| match e.reason {
        Reason::Is(r, _) => r == reason,
        Reason::OneOf(rs, _) => rs.contains(&reason),
        Reason::UpstreamCodeElse(r) => r == reason,
        Reason::None | Reason::UpstreamCode => false,
    };
    let named: Vec<&&Entry> = entries.iter().filter(|e| names(e, &row.reason)).collect();
    let candidates: Vec<&&Entry> = if named.is_empty() {
        entries
            .iter()
            .filter(|e| matches!(e.reason, Reason::UpstreamCode | Reason::UpstreamCodeElse(_)))
            .collect()
    } else {
        named
    };
    let fits = |e: &Entry| -> bool {
        let code = match e.code {
            GrpcCode::Is(name) => name == mapping::code_name(row.code),
            GrpcCode::AsRefused => false,
        };
        let domain = match e.reason {
            Reason::Is(_, d) | Reason::OneOf(_, d) => d.as_str() == row.domain,
            Reason::UpstreamCode => row.domain == UPSTREAM_DOMAIN,
            Reason::UpstreamCodeElse(r) => {
                row.domain == UPSTREAM_DOMAIN || (row.domain == GATEWAY_DOMAIN && row.reason == r)
            }
            Reason::None => false,
        };
        let detail = match (e.detail, &row.detail) {
            (table::Detail::None, Detail::None)
            | (table::Detail::QuotaFailure, Detail::QuotaFailure) => true,
            (table::Detail::BadRequest { field }, Detail::BadRequest { field: f, .. }) => {
                field == *f
            }
            (table::Detail::ResourceInfo { .. }, Detail::ResourceInfo | Detail::ResourceExists) => {
                true
            }
            (table::Detail::BadRequestOneOf(fields), Detail::BadRequest { field: f, .. }) => {
                fields.contains(f)
            }
            (table::Detail::RetryInfo(Delay::RetryAfterElse(d)), Detail::RetryInfo(got)) => {
                *got == retry_after.unwrap_or(d)
            }
            (table::Detail::RetryInfo(Delay::Exactly(d)), Detail::RetryInfo(got)) => *got == d,
            _ => false,
        };
        code && domain && detail
    };
    if candidates.iter().any(|e| fits(e)) {
        Ok(())
    } else {
        let tried: Vec<&str> = candidates.iter().map(|e| e.name).collect();
        Err(format!(
            "not a documented row for HTTP {status} of the {call:?} call (entries {tried:?})"
        ))
    }
}

/// The whole property for one answer: no panic (the test would fail), a
/// documented row, no body text in it, and a status that renders with the
/// same `ErrorInfo`.
fn check_answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let requested = ReferenceId::parse("REF_PROPS".into()).expect("valid id");
    let err = match interpret(status, retry_after, body) {
        Ok(result) => {
            prop_assert!((200..300).contains(&status), "success from HTTP {}", status);
            convert::to_response(result, &requested);
            return Ok(());
        }
        Err(err) => err,
    };
    prop_assert!(
        matches!(
            err,
            UpstreamError::JobFailed { .. }
                | UpstreamError::Status { .. }
                | UpstreamError::BadResponse { .. }
        ),
        "a body alone produced {:?}",
        err
    );
    let gateway_error = GatewayError::Upstream(err);
    let row = classify(&gateway_error);
    if let Err(why) = documented(UpstreamCall::Result, status, retry_after, &row) {
        return Err(TestCaseError::fail(format!(
            "{why}: {row:?} from {gateway_error:?}"
        )));
    }
    let shown = format!("{} {} {:?}", row.message, row.reason, row.metadata);
    prop_assert!(!shown.contains(MARKER), "body text in the row: {}", shown);

    let rendered = render(&row, "req-props", Some(requested.as_str()));
    prop_assert_eq!(rendered.code(), row.code);
    let details = rendered.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    prop_assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        (row.reason.as_str(), row.domain)
    );
    Ok(())
}

// ------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_map_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in collection::vec(any::<u8>(), 0..256),
    ) {
        check_answer(status, retry_after, &body)?;
    }

    #[test]
    fn arbitrary_json_maps_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in body_bytes(json_value()),
    ) {
        check_answer(status, retry_after, &body)?;
    }

    #[test]
    fn shaped_bodies_with_random_types_map_to_a_documented_row(
        status in status(),
        retry_after in retry_after(),
        body in body_bytes(shaped_body()),
    ) {
        check_answer(status, retry_after, &body)?;
    }

    #[test]
    fn bodies_that_are_not_utf8_or_not_objects_are_bad_responses(
        body in prop_oneof![
            collection::vec(any::<u8>(), 1..64).prop_map(|mut b| { b.push(0xff); b }),
            json_value().prop_filter("not an object", |v| !v.is_object())
                .prop_map(|v| serde_json::to_vec(&v).expect("serializable")),
        ],
    ) {
        let expected = match serde_json::from_slice::<Value>(&body) {
            Err(_) => "not_json",
            Ok(_) => "not_an_object",
        };
        let row = classify(&GatewayError::Upstream(
            interpret(200, None, &body).expect_err("not a usable body"),
        ));
        prop_assert_eq!(row.reason.as_str(), mapping::reason::UPSTREAM_BAD_RESPONSE);
        prop_assert_eq!(meta(&row, "problem"), Some(expected));
    }

    #[test]
    fn well_typed_successes_keep_every_value_verbatim(
        fields in some_fields(KTP_FIELDS, || prop_oneof![
            text().prop_map(Value::String),
            Just(Value::Null),
        ].boxed()),
        message in prop::option::of(text()),
        no_error in prop::sample::select(vec![None, Some(Value::Null), Some(json!("")), Some(json!(" "))]),
    ) {
        let mut body = json!({"data": Value::Object(fields.clone())});
        if let Some(m) = &message {
            body["message"] = json!(m);
        }
        if let Some(e) = no_error {
            body["error_code"] = e;
        }
        let bytes = serde_json::to_vec(&body).expect("serializable");
        let result = interpret(200, None, &bytes).expect("a well-typed success");
        let requested = ReferenceId::parse("REF_PROPS".into()).expect("valid id");
        let response = convert::to_response(result, &requested);
        let got = |name: &str| -> &str {
            match name {
                "nik" => &response.nik,
                "full_name" => &response.full_name,
                "place_of_birth" => &response.place_of_birth,
                "date_of_birth" => &response.date_of_birth,
                "gender" => &response.gender,
                "blood_type" => &response.blood_type,
                "address" => &response.address,
                "rt_rw" => &response.rt_rw,
                "administrative_village" => &response.administrative_village,
                "district" => &response.district,
                "city" => &response.city,
                "state" => &response.state,
                "religion" => &response.religion,
                "marital_status" => &response.marital_status,
                "occupation" => &response.occupation,
                "nationality" => &response.nationality,
                _ => "",
            }
        };
        for name in KTP_FIELDS.iter().filter(|n| !matches!(**n, "reference_id" | "status_code")) {
            let sent = fields.get(*name).and_then(Value::as_str).unwrap_or("");
            prop_assert_eq!(got(name), sent, "field {}", name);
        }
        prop_assert_eq!(response.message.as_str(), message.as_deref().unwrap_or(""));
    }
}

/// Characters from every class the validator cares about.
fn reference_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => prop::char::range('!', '~'),
        2 => prop::sample::select(vec![' ', '\u{a0}', '\u{2003}', '\u{3000}', '\u{feff}']),
        1 => prop::sample::select(vec!['\n', '\t', '\r', '\0', '\u{7f}', '\u{85}', '\u{9f}', '\u{1b}']),
        1 => prop::sample::select(vec!['€', 'é', '漢', '🦀', '\u{200b}']),
        1 => any::<char>(),
    ];
    prop_oneof![
        collection::vec(c.clone(), 0..8).prop_map(String::from_iter),
        collection::vec(c, 100..140).prop_map(String::from_iter),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn reference_ids_are_accepted_unchanged_or_rejected_by_the_rule_they_break(
        raw in reference_text(),
    ) {
        let empty = raw.is_empty();
        let too_long = raw.len() > MAX_LEN;
        let control = raw.chars().any(char::is_control);
        let blank = raw.chars().all(char::is_whitespace);
        match ReferenceId::parse(raw.clone()) {
            Ok(id) => {
                prop_assert!(!empty && !too_long && !control && !blank);
                prop_assert_eq!(id.as_str(), raw.as_str());
            }
            Err(why) => {
                // The first broken rule, in the documented order.
                let expected = if empty {
                    InvalidReferenceId::Empty
                } else if too_long {
                    InvalidReferenceId::TooLong(raw.len())
                } else if control {
                    InvalidReferenceId::ControlCharacter
                } else {
                    prop_assert!(blank, "rejected {:?} as {:?} without a broken rule", raw, why);
                    InvalidReferenceId::Blank
                };
                prop_assert_eq!(why, expected);
                let row = classify(&GatewayError::InvalidReferenceId(why));
                prop_assert_eq!(
                    (row.code, row.reason.as_str(), row.domain),
                    (Code::InvalidArgument, mapping::reason::INVALID_REFERENCE_ID, GATEWAY_DOMAIN)
                );
                prop_assert_eq!(meta(&row, "constraint"), Some(why.constraint()));
                let on_reference_id = matches!(row.detail, Detail::BadRequest { field: "reference_id", .. });
                prop_assert!(on_reference_id);
            }
        }
    }
}
