//! The table against README.md (both ways, cell by cell), and against
//! itself: every example agrees with its entry's rule.

use std::collections::HashSet;

use super::*;

/// The README's error table: its header, then its rows, as cells.
fn readme_table() -> (Vec<String>, Vec<Vec<String>>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let text = std::fs::read_to_string(path).expect("read README.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Error mapping\n"))
        .expect("README.md has a section \"## Error mapping\"");
    let mut rows = section.lines().filter(|l| l.starts_with('|')).map(|l| {
        l.trim()
            .trim_start_matches('|')
            .trim_end_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect::<Vec<_>>()
    });
    let header = rows.next().expect("a table in \"## Error mapping\"");
    let separator = rows.next().expect("a separator line");
    assert!(
        separator.iter().all(|c| c.starts_with("---")),
        "{separator:?}"
    );
    (header, rows.collect())
}

fn cells(e: &Entry) -> [&'static str; 4] {
    let c = e.readme;
    [c.answer, c.code, c.reason, c.detail]
}

#[test]
fn the_readme_table_and_the_data_agree_row_by_row_and_cell_by_cell() {
    let (header, rows) = readme_table();
    assert_eq!(
        header,
        [
            "upstream answer",
            "gRPC code",
            "ErrorInfo.reason (domain)",
            "extra detail"
        ],
        "the README table's columns changed: adapt `Cells` first"
    );
    let mut problems = Vec::new();
    for row in &rows {
        if row.len() != 4 {
            problems.push(format!("README row without 4 cells: {row:?}"));
            continue;
        }
        match TABLE.iter().find(|e| e.readme.answer == row[0]) {
            None => problems.push(format!(
                "README row {:?} is not in the error table data",
                row[0]
            )),
            Some(e) => {
                let names = ["gRPC code", "reason", "extra detail"];
                for ((name, ours), theirs) in names.iter().zip(&cells(e)[1..]).zip(&row[1..]) {
                    if ours != theirs {
                        problems.push(format!(
                            "{}: {name} cell differs\n  README: {theirs}\n  data:   {ours}",
                            e.name
                        ));
                    }
                }
            }
        }
    }
    for e in TABLE {
        if !rows
            .iter()
            .any(|r| r.first().map(String::as_str) == Some(e.readme.answer))
        {
            problems.push(format!(
                "entry {} ({:?}) is not a README row",
                e.name, e.readme.answer
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let readme_order: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let data_order: Vec<&str> = TABLE.iter().map(|e| e.readme.answer).collect();
    assert_eq!(readme_order, data_order, "same rows, another order");
}

#[test]
fn names_are_unique_and_every_entry_has_an_example() {
    let mut entries = HashSet::new();
    for e in TABLE {
        assert!(entries.insert(e.name), "entry name {} twice", e.name);
        assert!(!e.examples.is_empty(), "{} has no example", e.name);
        let mut examples = HashSet::new();
        for x in e.examples {
            assert!(
                examples.insert(x.name),
                "{}: example {} twice",
                e.name,
                x.name
            );
        }
    }
    assert_eq!(entry("not_found").name, "not_found");
    assert_eq!(example("rate_limited", "no Retry-After").expect.attempts, 3);
}

/// The `error_code` string of a JSON body, if it has one that is not empty.
fn error_code(answer: &Answer) -> Option<String> {
    let Body::Json(text) = answer.body else {
        return None;
    };
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("error_code")?
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// The request field an upstream's 400 code names, as the README's submit
/// row says: `reference_id`, `validate_quality`, else `image`.
fn field_named_by(code: &str) -> &'static str {
    if code.contains("REFERENCE_ID") {
        "reference_id"
    } else if code.contains("QUALITY_VALIDATION") || code.contains("VALIDATE_QUALITY") {
        "validate_quality"
    } else {
        "image"
    }
}

/// Whether the example's RPC can meet its trigger at all.
fn playable(rpc: Rpc, trigger: &Trigger) -> Result<(), String> {
    let ok = match trigger {
        Trigger::Upstream(_) => rpc != Rpc::SubmitKtp,
        Trigger::Submit(_) | Trigger::SubmitAfterLostAttempt(_) => rpc.carries_image(),
        Trigger::Provoke(p) => match p {
            Provoke::ReferenceIdBytes(_)
            | Provoke::WrongWireType
            | Provoke::WaitEnds
            | Provoke::JsonUnknownMember(_)
            | Provoke::JsonWrongKind(_) => rpc == Rpc::GetKtpResult,
            Provoke::Image(_) | Provoke::ImageCallsOverloaded | Provoke::OversizedImageMessage => {
                rpc.carries_image()
            }
            Provoke::ResultNotReady => rpc == Rpc::ExtractKtp,
            // SubmitKtp answers no card, so it has no read mask.
            Provoke::ReadMask(_) | Provoke::FieldNotAllowed => rpc != Rpc::SubmitKtp,
            _ => true,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{rpc:?} cannot meet {trigger:?}"))
    }
}

/// The README: every error of the submit call, and every error of
/// `ExtractKtp` after its submit succeeded, carries the job's reference id;
/// an error before anything was sent names none.
fn names_the_job(x: &Example, failure: &Failure) -> Result<(), String> {
    // SubmitKtp's errors of the submit call name the job too; that is
    // checked by tests/api/submit.rs, not stated by every example.
    if x.rpc != Rpc::ExtractKtp {
        return Ok(());
    }
    let from_the_upstream = match x.trigger {
        Trigger::Submit(_) | Trigger::SubmitAfterLostAttempt(_) => true,
        Trigger::Upstream(_) => x.rpc == Rpc::ExtractKtp,
        Trigger::Provoke(p) => matches!(
            p,
            Provoke::ResultNotReady
                | Provoke::ShutdownWhileWaiting
                | Provoke::UpstreamSaturated
                | Provoke::CircuitOpen
                | Provoke::UpstreamTimeout
                | Provoke::ConnectionRefused
                | Provoke::ConnectionClosed
                | Provoke::CutMidBody
                | Provoke::ResetMidBody
        ),
    };
    let want = if from_the_upstream {
        Meta::ReferenceId
    } else {
        Meta::Absent
    };
    let says = failure.metadata.iter().find(|(k, _)| *k == "reference_id");
    match says {
        Some((_, m)) if *m == want => Ok(()),
        _ => Err(format!(
            "an error of {:?} must expect reference_id {want:?} in its metadata",
            x.rpc
        )),
    }
}

/// What one example should show, by its entry's rule; `Err` says why not.
fn agrees(e: &Entry, x: &Example) -> Result<(), String> {
    let expect = x.expect;
    if code_number(expect.code).is_none() {
        return Err(format!(
            "{:?} is not a canonical gRPC code name",
            expect.code
        ));
    }
    playable(x.rpc, &x.trigger)?;
    let answer = match x.trigger.answer() {
        Some((call, a)) if !e.statuses_of(call).is_empty() => {
            if !e.answers_call(call, a.status) {
                return Err(format!(
                    "HTTP {} of the {call:?} call is not one of {:?}",
                    a.status,
                    e.statuses_of(call)
                ));
            }
            Some(a)
        }
        None if e.statuses.is_empty() && e.submit_statuses.is_empty() => None,
        _ => {
            return Err(
                "an HTTP answer of a call the entry has no statuses for, or a provoked \
                 example of an entry with statuses"
                    .into(),
            );
        }
    };
    // The one documented exception to a row's code: a submit whose id is
    // taken, answering a retry after a lost attempt, was the caller's own.
    let lost_then_taken =
        matches!(x.trigger, Trigger::SubmitAfterLostAttempt(_)) && e.name == "submit_exists";
    if lost_then_taken {
        return match expect.error {
            None => Ok(()),
            Some(_) => Err("the id taken after a lost attempt is OK".into()),
        };
    }
    match (e.code, expect.code) {
        (GrpcCode::Is(want), got) if want != got => {
            return Err(format!("code {got}, entry {want}"));
        }
        (GrpcCode::AsRefused, "OK") => return Err("a refusal is never OK".into()),
        _ => {}
    }
    let Some(failure) = expect.error else {
        return match (e.reason, expect.code) {
            (Reason::None, "OK") => Ok(()),
            _ => Err("no error details for an error entry".into()),
        };
    };
    names_the_job(x, &failure)?;
    let got = (failure.reason, failure.domain);
    let code = answer.and_then(|a| error_code(&a));
    let reason_ok = match e.reason {
        Reason::None => false,
        Reason::Is(r, d) => got == (r, d),
        Reason::OneOf(rs, d) => rs.contains(&got.0) && got.1 == d,
        Reason::UpstreamCode => code.as_deref() == Some(got.0) && got.1 == Domain::Upstream,
        Reason::UpstreamCodeElse(fallback) => match code.as_deref() {
            Some(c) => got == (c, Domain::Upstream),
            None => got == (fallback, Domain::Gateway),
        },
    };
    if !reason_ok {
        return Err(format!("reason {got:?} breaks the entry's {:?}", e.reason));
    }
    let detail_ok = match (e.detail, failure.detail) {
        (
            Detail::RetryInfo(Delay::RetryAfterElse(default)),
            Detail::RetryInfo(Delay::Exactly(d)),
        ) => {
            let header = answer.and_then(|a| a.retry_after());
            let asked = header.and_then(|h| h.parse::<u64>().ok());
            d == asked.map_or(default, |s| Duration::from_secs(s.min(3600)))
        }
        (Detail::BadRequestOneOf(fields), Detail::BadRequest { field }) => {
            let named = match (x.trigger, code.as_deref()) {
                (Trigger::Provoke(Provoke::Image(case)), _) => {
                    let url = matches!(case, ImageCase::Url(_) | ImageCase::LongUrl(_));
                    if url { "image_url" } else { "image" }
                }
                (
                    Trigger::Provoke(
                        Provoke::JsonUnknownMember(member) | Provoke::JsonWrongKind(member),
                    ),
                    _,
                ) => member,
                (_, Some(c)) => field_named_by(c),
                _ => "",
            };
            fields.contains(&field) && field == named
        }
        (want, got) => want == got,
    };
    if !detail_ok {
        return Err(format!("detail {:?}, entry {:?}", failure.detail, e.detail));
    }
    if let Some(a) = answer {
        let http = a.status.to_string();
        let says = failure
            .metadata
            .iter()
            .find(|(k, _)| *k == "upstream_http_status");
        if !matches!(says, Some((_, Meta::Is(s))) if *s == http) {
            return Err("an HTTP answer must expect its upstream_http_status".into());
        }
    }
    Ok(())
}

#[test]
fn every_example_follows_its_entrys_rule() {
    let mut problems = Vec::new();
    for e in TABLE {
        for x in e.examples {
            if let Err(why) = agrees(e, x) {
                problems.push(format!("{} / {}: {why}", e.name, x.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn json_bodies_are_json_unless_they_are_the_point() {
    for e in TABLE {
        for x in e.examples {
            let Some((
                _,
                Answer {
                    body: Body::Json(text),
                    ..
                },
            )) = x.trigger.answer()
            else {
                continue;
            };
            let not_json = x
                .expect
                .error
                .is_some_and(|f| f.metadata.contains(&("problem", Meta::Is("not_json"))));
            let parses = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert!(parses != not_json, "{} / {}: {text}", e.name, x.name);
        }
    }
}

#[test]
fn other_means_every_status_no_entry_names() {
    let bad = entry("bad_response");
    for status in [100, 302, 418, 501, 599] {
        assert!(bad.answers(status), "{status}");
    }
    for status in [401, 403, 429, 500, 502, 503, 504] {
        assert!(!bad.answers(status), "{status}");
        assert!(TABLE.iter().any(|e| e.answers(status)), "{status}");
    }
    assert!(bad.answers(200) && bad.answers(400) && bad.answers(404));
    assert!(entry("ok").answers(204) && !entry("ok").answers(300));
}

#[test]
fn the_submit_call_has_statuses_of_its_own() {
    use UpstreamCall::{Result, Submit};
    let bad = entry("bad_response");
    for status in [302, 404, 418, 501] {
        assert!(bad.answers_call(Submit, status), "{status}");
    }
    assert!(!entry("not_found").answers_call(Submit, 404));
    assert!(entry("not_found").answers_call(Result, 404));
    for name in ["submit_exists", "submit_invalid_payload"] {
        assert!(entry(name).answers_call(Submit, 400), "{name}");
        assert!(!entry(name).answers_call(Result, 400), "{name}");
    }
    assert!(!entry("invalid_payload_reference_id").answers_call(Submit, 400));
    for status in [401, 403, 429, 500, 503] {
        assert!(!bad.answers_call(Submit, status), "{status}");
        assert!(
            TABLE.iter().any(|e| e.answers_call(Submit, status)),
            "{status}"
        );
    }
}

#[test]
fn every_rpc_has_examples() {
    for rpc in [Rpc::GetKtpResult, Rpc::SubmitKtp, Rpc::ExtractKtp] {
        let n = TABLE
            .iter()
            .flat_map(|e| e.examples)
            .filter(|x| x.rpc == rpc)
            .count();
        assert!(n >= 10, "{rpc:?}: {n} examples");
    }
}
