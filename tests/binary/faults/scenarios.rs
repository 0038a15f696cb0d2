//! The fault matrix: each scenario scripts one misbehaviour of the upstream
//! and names the README error-table example ([`error_table`]) whose answer
//! the caller must get; the faults and their attempt counts are the
//! matrix's own. [`run_matrix`]
//! drives every scenario, one after the other, through ONE gateway process,
//! and after each checks that it is still alive and panic-free, that its
//! memory and its upstream connections are back near their baseline (so
//! neither grows with the number of scenarios), and that a normal call right
//! after succeeds.
//!
//! Settings of the gateway under test, and why:
//! - `upstream.timeout` = 1 s: the hanging and slow scenarios end in 1 s
//!   instead of the default 10 s, still five times the 200 ms "late but in
//!   time" scenario.
//! - `upstream.breaker.failure_threshold` = 1000: the matrix sends dozens of
//!   transient failures in a row through one gateway on purpose (resets,
//!   503s, timeouts, each retried); with the default 5 the circuit would open
//!   and every later scenario would get `UPSTREAM_CIRCUIT_OPEN` instead of
//!   its own row. The breaker has its own tests (`tests/api/resilience.rs`).
//! - retries stay at their defaults (3 attempts, 50 ms base backoff): the
//!   flapping and 429 rows are about them, so attempts are asserted.
//! - coalescing stays on: every call uses its own reference id and the calls
//!   are sequential, so nothing is shared.
//! - `server.drain_delay` = 100 ms, so the final SIGTERM is quick.

use std::time::Duration;

use ktp_testkit::{
    card_holders::person,
    check,
    error_table::{self, Example},
    fake_upstream::{FakeUpstream, Reply},
};
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::subject::{API_KEY, APP_ID, Subject, eventually};

/// What the upstream does in a scenario.
pub(super) enum Fault {
    /// The scenario's reference id is answered with this.
    Reply(Reply),
    /// The scenario's call is a `SubmitKtp` of [`matrix_image`], whose
    /// submit call is answered with this.
    Submit(Reply),
    /// New connections are accepted and never answered (after the idle
    /// keep-alive connections were closed, so the call needs a new one).
    HangAfterAccept,
}

/// What the caller must get.
pub(super) enum Expect {
    /// OK with the card holder's fields.
    Person,
    /// A `SubmitKtp` accepted under the scenario's reference id.
    Submitted,
    /// OK with every KTP field empty (all `null` upstream).
    Blank,
    /// The answer of this example of the README error table: code, reason,
    /// domain, metadata, detail (the matrix's own fault may differ from the
    /// example's trigger; the answer may not).
    Error(&'static Example),
}

/// The answer of the error table's example `example` of entry `entry`.
fn row(entry: &str, example: &str) -> Expect {
    Expect::Error(error_table::example(entry, example))
}

/// One scenario of the matrix.
pub(super) struct Scenario {
    pub name: &'static str,
    pub fault: Fault,
    /// The caller's `grpc-timeout`, if any.
    pub deadline: Option<Duration>,
    /// Calls made (each with the same expectation).
    pub calls: usize,
    pub expect: Expect,
    /// Upstream requests each call must cause, when that is deterministic.
    pub attempts: Option<usize>,
    /// The gateway must close (abandon) each call's upstream request.
    pub abandons: bool,
    /// Generous bounds on each call's duration.
    pub min_elapsed: Duration,
    pub max_elapsed: Duration,
}

impl Scenario {
    fn new(name: &'static str, fault: Fault, expect: Expect) -> Self {
        Self {
            name,
            fault,
            deadline: None,
            calls: 1,
            expect,
            attempts: Some(1),
            abandons: false,
            min_elapsed: Duration::ZERO,
            max_elapsed: Duration::from_secs(5),
        }
    }
    fn reply(name: &'static str, reply: Reply, expect: Expect) -> Self {
        Self::new(name, Fault::Reply(reply), expect)
    }
    fn submit(name: &'static str, reply: Reply, expect: Expect) -> Self {
        Self::new(name, Fault::Submit(reply), expect)
    }
    fn attempts(mut self, n: Option<usize>) -> Self {
        self.attempts = n;
        self
    }
    fn abandons(mut self) -> Self {
        self.abandons = true;
        self
    }
    fn elapsed(mut self, min: Duration, max: Duration) -> Self {
        self.min_elapsed = min;
        self.max_elapsed = max;
        self
    }
}

/// In the image every submit scenario sends: a unique marker, so that a
/// scan of the output can tell whether the image leaked.
pub(super) const IMAGE_MARKER: &str = "FAULTS-IMAGE-MARKER-c41d";

/// The image the submit scenarios send: a 720×480 PNG, the marker, filler
/// up to 50 KB.
pub(super) fn matrix_image() -> Vec<u8> {
    let mut image = ktp_testkit::images::png(720, 480);
    image.extend_from_slice(IMAGE_MARKER.as_bytes());
    ktp_testkit::images::padded(image, 50_000)
}

/// How long the "slow" upstream takes: the call must end well before.
const SLOW_UPSTREAM: Duration = Duration::from_secs(5);
const MIB: usize = 1024 * 1024;

/// The settings the matrix runs with (see the module doc for why).
pub(super) const MATRIX_SETTINGS: &[(&str, &str)] = &[
    ("KTP_GATEWAY__UPSTREAM__TIMEOUT", "1s"),
    ("KTP_GATEWAY__UPSTREAM__BREAKER__FAILURE_THRESHOLD", "1000"),
    ("KTP_GATEWAY__SERVER__DRAIN_DELAY", "100ms"),
];

/// Every scenario, in the order they run.
pub(super) fn all() -> Vec<Scenario> {
    use person::*;
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let timeout = || row("upstream_timeout", "slower than upstream.timeout");
    let with_person = |mut extra: Value| {
        extra["data"] = person::data();
        extra
    };
    let mut nulls = person::data();
    for (_, v) in nulls.as_object_mut().expect("object").iter_mut() {
        *v = Value::Null;
    }
    let mut nik_as_number = person::data();
    nik_as_number["nik"] = json!(3_578_015_712_880_004_u64);
    let mut flag_as_string = person::data();
    flag_as_string["image_quality"]["blur"] = json!("yes");
    let deep_arrays = format!(
        r#"{{"data": {{"nik": "{NIK}", "x": {}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_objects = format!(
        r#"{{"data": {{"full_name": "{FULL_NAME}", "x": {}1{}}}}}"#,
        r#"{"a":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    let mut invalid_utf8 = format!(r#"{{"data": {{"full_name": "{FULL_NAME} "#).into_bytes();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3\x28\"}}");
    let truncated =
        format!(r#"{{"data": {{"nik": "{NIK}", "full_name": "{FULL_NAME}", "address": "#);
    let echoing_500 = json!({
        "error_code": "INTERNAL_SERVER_ERROR",
        "message": format!("extraction failed for {FULL_NAME} ({NIK}), born {DATE_OF_BIRTH}"),
    });
    let too_many = json!({"message": format!("slow down, {FULL_NAME}")});

    vec![
        Scenario::new("hang after accepting", Fault::HangAfterAccept, timeout())
            .attempts(None)
            .abandons()
            .elapsed(ms(900), secs(4)),
        Scenario::reply(
            "answer after 200 ms",
            Reply::delayed(ms(200), Reply::Json(200, person::success())),
            Expect::Person,
        )
        .elapsed(ms(200), secs(4)),
        Scenario::reply(
            "answer after 5 s, slower than upstream.timeout",
            Reply::delayed(SLOW_UPSTREAM, Reply::Json(200, person::success())),
            timeout(),
        )
        .abandons()
        .elapsed(ms(900), secs(4)),
        Scenario {
            deadline: Some(ms(300)),
            ..Scenario::reply(
                "300 ms caller deadline, 5 s upstream",
                Reply::delayed(SLOW_UPSTREAM, Reply::Json(200, person::success())),
                row("caller_deadline", "shorter than the upstream's answer"),
            )
            .abandons()
            .elapsed(ms(200), secs(2))
        },
        // Transport errors are retried: three resets, then the last error.
        Scenario::reply(
            "connection reset mid-body",
            Reply::ResetMidBody(truncated.clone().into_bytes()),
            row("transport", "reset mid-body"),
        )
        .attempts(Some(3)),
        Scenario::reply(
            "50 MB body, announced",
            Reply::Huge {
                status: 200,
                len: 50 * MIB,
                chunked: false,
            },
            row("bad_response", "2 MiB, announced"),
        ),
        Scenario::reply(
            "50 MB body, chunked",
            Reply::Huge {
                status: 200,
                len: 50 * MIB,
                chunked: true,
            },
            row("bad_response", "2 MiB, chunked"),
        ),
        // For an error status the status decides, whatever the body size.
        Scenario::reply(
            "503 with a 50 MB chunked body",
            Reply::Huge {
                status: 503,
                len: 50 * MIB,
                chunked: true,
            },
            row("upstream_5xx", "503, a 2 MiB chunked page"),
        )
        .attempts(Some(3)),
        Scenario::reply(
            "invalid JSON (truncated)",
            Reply::typed(200, "application/json", truncated),
            row("bad_response", "truncated JSON"),
        ),
        Scenario::reply(
            "wrong Content-Type, JSON body",
            Reply::typed(
                200,
                "text/html; charset=iso-8859-1",
                person::success().to_string(),
            ),
            Expect::Person,
        ),
        Scenario::reply(
            "wrong Content-Type, HTML body",
            Reply::typed(
                200,
                "text/html",
                format!("<html><body>{FULL_NAME} {NIK}</body></html>"),
            ),
            row("bad_response", "HTML"),
        ),
        Scenario::reply(
            "wrong JSON type: nik is a number",
            Reply::Json(200, json!({"data": nik_as_number})),
            row("bad_response", "nik is a number"),
        ),
        Scenario::reply(
            "wrong JSON type: data is an array",
            Reply::Json(200, json!({"data": [FULL_NAME, NIK]})),
            row("bad_response", "data is an array"),
        ),
        Scenario::reply(
            "wrong JSON type: a quality flag is a string",
            Reply::Json(200, json!({"data": flag_as_string})),
            row("bad_response", "a quality flag is a string"),
        ),
        Scenario::reply(
            "wrong JSON type: error_code is a number",
            Reply::Json(
                200,
                with_person(json!({"error_code": 3_578_015_712_880_004_u64})),
            ),
            row("bad_response", "error_code is a number"),
        ),
        Scenario::reply(
            "wrong JSON type: the body is an array",
            Reply::Json(200, json!([person::data()])),
            row("bad_response", "an array"),
        ),
        Scenario::reply(
            "nulls in every field",
            Reply::Json(
                200,
                json!({"message": null, "error_code": null, "status_code": null, "data": nulls}),
            ),
            Expect::Blank,
        ),
        Scenario::reply(
            "data is null",
            Reply::Json(200, json!({"message": FULL_NAME, "data": null})),
            row("bad_response", "data is null"),
        ),
        Scenario::reply(
            "deeply nested arrays (100,000 levels)",
            Reply::typed(200, "application/json", deep_arrays),
            row("bad_response", "nested too deep"),
        ),
        Scenario::reply(
            "deeply nested objects (50,000 levels)",
            Reply::typed(200, "application/json", deep_objects),
            row("bad_response", "nested too deep"),
        ),
        Scenario::reply(
            "invalid UTF-8",
            Reply::typed(200, "application/json", invalid_utf8),
            row("bad_response", "not UTF-8"),
        ),
        // Each call meets a 500 then a 200: the retry hides the flap.
        Scenario {
            calls: 3,
            ..Scenario::reply(
                "flapping between 500 and 200",
                Reply::cycle(vec![
                    Reply::Json(500, json!({"message": "Internal Server Error"})),
                    Reply::Json(200, person::success()),
                ]),
                Expect::Person,
            )
            .attempts(Some(2))
        },
        Scenario::reply(
            "500 whose body echoes personal data",
            Reply::Json(500, echoing_500),
            row("upstream_5xx", "500 with an error_code"),
        )
        .attempts(Some(3)),
        // A Retry-After beyond the 1 s backoff cap is not waited out but
        // passed to the caller.
        Scenario::reply(
            "429 with Retry-After: 2",
            Reply::raw(
                429,
                &[("Content-Type", "application/json"), ("Retry-After", "2")],
                too_many.to_string(),
            ),
            row("rate_limited", "Retry-After: 2"),
        ),
        Scenario::reply(
            "429 without Retry-After",
            Reply::Json(429, too_many),
            row("rate_limited", "no Retry-After"),
        )
        .attempts(Some(3)),
        // The 4xx rows, with bodies that echo personal data, so the trace-level
        // scan also covers them (401 is the gateway's only ERROR-level line).
        Scenario::reply(
            "400 invalid reference id, body echoing personal data",
            Reply::Json(
                400,
                with_person(json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID"})),
            ),
            row("invalid_payload_reference_id", "too long for the upstream"),
        ),
        Scenario::reply(
            "401 credentials refused, body echoing personal data",
            Reply::Json(401, with_person(json!({"message": "Authorization failed"}))),
            row("upstream_401", "no error_code"),
        ),
        Scenario::reply(
            "403 quota exhausted",
            Reply::Json(
                403,
                with_person(json!({"error_code": "INSUFFICIENT_QUOTA"})),
            ),
            row("insufficient_quota", "quota used up"),
        ),
        Scenario::reply(
            "404 reference id not found",
            Reply::Json(
                404,
                with_person(json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"})),
            ),
            row("not_found", "the documented answer"),
        ),
        Scenario::reply(
            "FAIL_ON_1 with the card holder's data",
            Reply::Json(
                200,
                json!({"error_code": "FAIL_ON_1", "message": "quality check failed",
                       "data": {"nik": NIK, "full_name": FULL_NAME,
                                "image_quality": {"blur": true, "dark": false}}}),
            ),
            row("job_fail_on_1", "two flags present"),
        ),
        // The submit call: a POST with the image, retried only when
        // transient, and always under the same reference id.
        Scenario::submit(
            "submit: connection reset without an answer",
            Reply::Reset,
            row("transport", "SubmitKtp: closed without an answer"),
        )
        .attempts(Some(3)),
        Scenario::submit(
            "submit: hang, slower than upstream.timeout",
            Reply::Hang,
            row(
                "upstream_timeout",
                "SubmitKtp: slower than upstream.timeout",
            ),
        )
        .abandons()
        .elapsed(ms(900), secs(4)),
        Scenario::submit(
            "submit: 503 whose body echoes personal data",
            Reply::Json(503, json!({"message": format!("busy with {FULL_NAME}")})),
            row("upstream_5xx", "SubmitKtp: 503, no body"),
        )
        .attempts(Some(3)),
        Scenario::submit(
            "submit: 200 that is not JSON",
            Reply::typed(
                200,
                "text/html",
                format!("<html>{FULL_NAME} accepted</html>"),
            ),
            row("bad_response", "SubmitKtp: HTML"),
        ),
        // The reset attempt may have been taken: it was, by this call.
        Scenario::submit(
            "submit: the id taken after a reset",
            Reply::sequence(vec![Reply::Reset, Reply::reference_id_exists()]),
            Expect::Submitted,
        )
        .attempts(Some(2)),
        // The 503 was an answer: nothing was taken, the id is someone else's.
        Scenario::submit(
            "submit: the id taken after a 503",
            Reply::sequence(vec![
                Reply::Json(503, json!({})),
                Reply::reference_id_exists(),
            ]),
            row("submit_exists", "SubmitKtp"),
        )
        .attempts(Some(2)),
    ]
}

/// How far above its baseline the gateway's RSS may be after a scenario.
const RSS_SLACK: u64 = 20 * 1024 * 1024;
/// Concurrent calls abandoned at once in the burst step.
const BURST: usize = 64;

/// What a matrix run leaves for further checks.
pub(super) struct MatrixRun {
    pub subject: Subject,
    pub upstream: FakeUpstream,
    /// Scenario names, for messages.
    pub ran: Vec<&'static str>,
    /// Resident memory after the warm-up, and the most seen after a
    /// scenario, in KiB.
    pub baseline_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// Upstream sockets allowed after a scenario, and the most seen.
    pub socket_limit: usize,
    pub peak_sockets: usize,
}

impl MatrixRun {
    /// One line for the test's output (`--nocapture`).
    pub(super) fn summary(&self) -> String {
        format!(
            "{} scenarios; RSS baseline {} KiB, peak after a scenario {} KiB; \
             upstream sockets peak {} (limit {})",
            self.ran.len(),
            self.baseline_rss_kib,
            self.peak_rss_kib,
            self.peak_sockets,
            self.socket_limit
        )
    }
}

/// Runs every scenario through one gateway started with `log_filter`,
/// asserting each one's row and the health checks after it.
pub(super) async fn run_matrix(log_filter: &str) -> MatrixRun {
    let upstream = FakeUpstream::start().await;
    upstream.otherwise(Reply::Json(200, person::success()));
    let mut subject = Subject::start(&upstream, log_filter, MATRIX_SETTINGS).await;

    for i in 0..3 {
        normal_call(&subject, &format!("WARMUP-{i}")).await;
    }
    let baseline_rss = subject.rss();
    // Sequential calls reuse one keep-alive connection; one more is allowed,
    // as the pool sometimes opens a second one when a request races the
    // return of the first. A connection leaked mid-request is caught exactly
    // by the fake upstream's busy count (see `after_fault`); this limit, far
    // below the 256 idle connections the pool may keep, catches idle ones
    // piling up with the number of scenarios.
    let socket_limit = subject.upstream_sockets().len().max(1) + 1;
    let mut ran = Vec::new();
    let mut peak_sockets = 0;
    let mut peak_rss = baseline_rss;
    let image = matrix_image();

    for (n, scenario) in all().into_iter().enumerate() {
        let id = format!("FAULT-{n:02}");
        let abandoned_before = upstream.abandoned();
        match &scenario.fault {
            Fault::Reply(reply) => upstream.on(&id, reply.clone()),
            Fault::Submit(reply) => upstream.on_submit(&id, reply.clone()),
            Fault::HangAfterAccept => {
                upstream.close_idle_connections();
                let drained = subject
                    .settle_upstream_sockets(0, Duration::from_secs(5))
                    .await;
                assert!(
                    drained.is_ok(),
                    "{}: pooled connections not closed: {drained:?}",
                    scenario.name
                );
                upstream.hang_on_accept(true);
            }
        }
        for call in 0..scenario.calls {
            let what = format!("{} (call {})", scenario.name, call + 1);
            let (result, elapsed) = match scenario.fault {
                Fault::Submit(_) => {
                    let (r, elapsed) = subject.submit(&id, &image, scenario.deadline).await;
                    (r.map(Answer::Submitted), elapsed)
                }
                _ => {
                    let (r, elapsed) = subject.call(&id, scenario.deadline).await;
                    (r.map(Answer::Card), elapsed)
                }
            };
            check(&what, &id, &scenario.expect, result);
            assert!(
                (scenario.min_elapsed..scenario.max_elapsed).contains(&elapsed),
                "{what}: took {elapsed:?}, expected {:?}..{:?}",
                scenario.min_elapsed,
                scenario.max_elapsed
            );
        }
        upstream.hang_on_accept(false);
        if let Some(per_call) = scenario.attempts {
            assert_eq!(
                upstream.attempts(&id),
                per_call * scenario.calls,
                "{}: upstream requests",
                scenario.name
            );
        }
        if scenario.abandons {
            let want = abandoned_before + scenario.calls;
            assert!(
                eventually(Duration::from_secs(3), || upstream.abandoned() >= want).await,
                "{}: the gateway did not cancel its upstream request ({} of {want} abandoned)",
                scenario.name,
                upstream.abandoned()
            );
        }
        after_fault(
            &mut subject,
            &upstream,
            scenario.name,
            n,
            baseline_rss,
            socket_limit,
        )
        .await;
        peak_sockets = peak_sockets.max(subject.upstream_sockets().len());
        peak_rss = peak_rss.max(subject.rss());
        ran.push(scenario.name);
    }

    burst_of_abandoned_calls(&subject, &upstream).await;
    after_fault(
        &mut subject,
        &upstream,
        "burst",
        99,
        baseline_rss,
        socket_limit,
    )
    .await;
    ran.push("burst of abandoned calls");
    peak_sockets = peak_sockets.max(subject.upstream_sockets().len());
    peak_rss = peak_rss.max(subject.rss());

    assert!(
        peak_sockets <= socket_limit,
        "upstream connections grew over the matrix: peak {peak_sockets} > {socket_limit}"
    );
    for r in upstream.requests() {
        assert_eq!(
            (r.header("app-id"), r.header("api-key")),
            (Some(APP_ID), Some(API_KEY)),
            "credentials on the wire"
        );
    }
    MatrixRun {
        subject,
        upstream,
        ran,
        baseline_rss_kib: baseline_rss / 1024,
        peak_rss_kib: peak_rss / 1024,
        socket_limit,
        peak_sockets,
    }
}

/// `BURST` concurrent calls against a hanging upstream, every upstream
/// request on its own connection: half without a deadline (the gateway's
/// 1 s `upstream.timeout` ends them: exactly `UPSTREAM_TIMEOUT`), half with a
/// 300 ms deadline (the callers go away). Every upstream request must be
/// cancelled and its connection closed.
async fn burst_of_abandoned_calls(subject: &Subject, upstream: &FakeUpstream) {
    let abandoned_before = upstream.abandoned();
    for i in 0..BURST {
        upstream.on(&format!("BURST-{i}"), Reply::Hang);
    }
    let deadline = |i: usize| (i % 2 == 1).then_some(Duration::from_millis(300));
    let calls: Vec<_> = (0..BURST)
        .map(|i| {
            let caller = subject.caller();
            tokio::spawn(async move { caller.call(&format!("BURST-{i}"), deadline(i)).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let (result, elapsed) = call.await.expect("burst call task");
        let what = format!("burst call {i}");
        assert!(elapsed < Duration::from_secs(4), "{what}: took {elapsed:?}");
        let id = format!("BURST-{i}");
        if deadline(i).is_none() {
            let timeout = row("upstream_timeout", "slower than upstream.timeout");
            check(&what, &id, &timeout, result.map(Answer::Card));
            continue;
        }
        // The gateway answers 30 ms before the caller's deadline. With 32
        // such calls at once (and, in the `secrets` run, every crate logging
        // at trace level on 2 shared cores) that margin is sometimes not
        // enough and the client's own timer ends the call first, which tonic
        // reports as CANCELLED "Timeout expired". Both mean "the deadline
        // ran out"; what this step proves is the cancellation upstream.
        match result {
            Err(s) if s.code() == Code::Cancelled && s.message() == "Timeout expired" => {}
            other => check(
                &what,
                &id,
                &row("caller_deadline", "shorter than the upstream's answer"),
                other.map(Answer::Card),
            ),
        }
    }
    let want = abandoned_before + BURST;
    assert!(
        eventually(Duration::from_secs(5), || upstream.abandoned() >= want).await,
        "burst: {} of {want} upstream requests cancelled",
        upstream.abandoned()
    );
}

/// The checks after every scenario: alive and panic-free, memory and
/// upstream connections back near the baseline, and a normal call works.
async fn after_fault(
    subject: &mut Subject,
    upstream: &FakeUpstream,
    name: &str,
    n: usize,
    baseline_rss: u64,
    socket_limit: usize,
) {
    subject.assert_alive_without_panic(name);
    normal_call(subject, &format!("NORMAL-{n:02}")).await;
    // Every request the gateway sent is over: answered, or given up and its
    // connection closed. A connection the gateway neither reads nor closes
    // stays busy here, even when the keep-alive slack below would hide it.
    assert!(
        eventually(Duration::from_secs(3), || upstream.busy_connections() == 0).await,
        "after {name}: {} upstream connections still busy",
        upstream.busy_connections()
    );
    let sockets = subject
        .settle_upstream_sockets(socket_limit, Duration::from_secs(3))
        .await;
    assert!(
        sockets.is_ok(),
        "after {name}: the gateway still holds upstream sockets (states) {sockets:?}, \
         more than {socket_limit}"
    );
    let rss = subject.rss();
    assert!(
        rss <= baseline_rss + RSS_SLACK,
        "after {name}: RSS {} KiB, baseline {} KiB",
        rss / 1024,
        baseline_rss / 1024
    );
}

/// A call the upstream answers normally must succeed with the card holder.
async fn normal_call(subject: &Subject, id: &str) {
    let (result, _) = subject.call(id, None).await;
    check(id, id, &Expect::Person, result.map(Answer::Card));
}

/// A successful answer of either RPC the matrix calls.
#[allow(
    clippy::large_enum_variant,
    reason = "one per call, checked and dropped at once"
)]
pub(super) enum Answer {
    /// `GetKtpResult`'s.
    Card(ktp_gateway::proto::GetKtpResultResponse),
    /// `SubmitKtp`'s.
    Submitted(ktp_gateway::proto::SubmitKtpResponse),
}

/// Asserts one call's result (for `reference_id`) against the expectation.
pub(super) fn check(
    what: &str,
    reference_id: &str,
    expect: &Expect,
    result: Result<Answer, Status>,
) {
    match (expect, result) {
        (Expect::Submitted, Ok(Answer::Submitted(r))) => {
            assert_eq!(r.reference_id, reference_id, "{what}");
        }
        (Expect::Person, Ok(Answer::Card(r))) => {
            assert_eq!(
                (r.nik.as_str(), r.full_name.as_str(), r.occupation.as_str()),
                (person::NIK, person::FULL_NAME, person::OCCUPATION),
                "{what}"
            );
        }
        (Expect::Blank, Ok(Answer::Card(r))) => {
            let fields = [&r.nik, &r.full_name, &r.address, &r.date_of_birth, &r.city];
            assert!(fields.iter().all(|f| f.is_empty()), "{what}: {fields:?}");
            assert_eq!(r.image_quality, None, "{what}");
        }
        (Expect::Error(want), Err(status)) => check_error(what, reference_id, want, &status),
        (_, Err(status)) => panic!("{what}: expected OK, got {status:?}"),
        (Expect::Error(want), Ok(_)) => {
            panic!("{what}: expected {}, got OK", want.name)
        }
        (_, Ok(_)) => panic!("{what}: the answer of another RPC"),
    }
}

/// The answer is the example's (code, reason, domain, metadata, detail,
/// `RequestInfo`), and shows no credential or personal value.
fn check_error(what: &str, reference_id: &str, want: &Example, status: &Status) {
    if let Err(problems) = check::error_status(status, &want.expect, reference_id) {
        panic!("{what}: not the answer of {:?}: {problems}", want.name);
    }
    let metadata = status
        .get_error_details()
        .error_info()
        .map(|i| i.metadata.clone());
    let shown = format!("{} {:?}", status.message(), metadata);
    for secret in [APP_ID, API_KEY].iter().chain(person::ALL) {
        assert!(
            !shown.contains(secret),
            "{what}: {secret:?} in the error: {shown}"
        );
    }
}
