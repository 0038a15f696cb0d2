//! The dashboard and alert rules in `deploy/observability/` against the real
//! binary: `promtool check rules` and `promtool test rules` pass, a live
//! scrape passes `promtool check metrics`, and every metric a rule or a
//! panel names is one the binary really exports.
//!
//! `promtool` comes from Debian's `prometheus` package; the test command
//! (`scripts/test`) provides it and exports `PROMTOOL`.

use std::{
    collections::BTreeSet,
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::harness::{Gateway, LOG_TIMEOUT, SERVING_MESSAGE, ktp_request};

const RULES: &str = "deploy/observability/alerts.yml";
const RULE_TESTS: &str = "deploy/observability/alerts_test.yml";
const DASHBOARD: &str = "deploy/observability/dashboard.json";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `PROMTOOL`, else `promtool` on PATH; fails (not skips) without one.
fn promtool() -> PathBuf {
    let candidate =
        std::env::var_os("PROMTOOL").map_or_else(|| PathBuf::from("promtool"), PathBuf::from);
    match Command::new(&candidate).arg("--version").output() {
        Ok(out) if out.status.success() => candidate,
        _ => panic!(
            "promtool not found (tried {}): run `scripts/test`, which installs it from Debian's \
             `prometheus` package, or set PROMTOOL",
            candidate.display()
        ),
    }
}

fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(repo("deploy/observability"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every `ktp_gateway_*` name mentioned in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("ktp_gateway_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Family names (`# TYPE` lines) and sample names present in a scrape.
fn exported(scrape: &str) -> BTreeSet<String> {
    let samples = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned);
    families(scrape).into_iter().chain(samples).collect()
}

/// Family names alone (`# TYPE` lines): a histogram is one, not three.
fn families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Names used by rules or panels that the scrape lacks.
fn missing(used: &BTreeSet<String>, exported: &BTreeSet<String>) -> Vec<String> {
    used.iter()
        .filter(|n| !exported.contains(*n))
        .cloned()
        .collect()
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_fire_each_alert() {
    let (ok, out) = run_promtool(&["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = run_promtool(&["test", "rules", "alerts_test.yml"], None);
    assert!(ok, "promtool test rules:\n{out}");
    // Every alert has a test that expects it to fire.
    let rules = std::fs::read_to_string(repo(RULES)).unwrap();
    let tests = std::fs::read_to_string(repo(RULE_TESTS)).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let fires = tests
            .split("- eval_time:")
            .any(|t| t.contains(&format!("alertname: {alert}\n")) && t.contains("exp_alerts:"));
        assert!(fires, "no promtool test makes {alert} fire");
    }
}

#[test]
fn the_comparison_catches_a_metric_the_binary_does_not_export() {
    let scrape = "# TYPE ktp_gateway_a counter\nktp_gateway_a{x=\"1\"} 1\nktp_gateway_b_bucket{le=\"1\"} 0\n";
    let used = metric_names("rate(ktp_gateway_a[5m]) / ktp_gateway_b_bucket + ktp_gateway_renamed");
    assert_eq!(
        missing(&used, &exported(scrape)),
        vec!["ktp_gateway_renamed".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_panels_name_only_metrics_a_live_scrape_has() {
    let mut gateway = Gateway::sandbox(&[]);
    let serving = gateway
        .process
        .wait_for_log("serving line", LOG_TIMEOUT, |v| {
            v["message"] == SERVING_MESSAGE
        });
    let metrics_addr = serving["metrics_addr"]
        .as_str()
        .expect("metrics_addr in the serving line")
        .to_owned();

    // Calls that touch every label family: success, caller error, retried
    // 5xx, rate limiting, a waiting call, coalesced calls.
    let mut client = gateway.ktp().await;
    for id in [
        "REFERENCE_ID_KTP",
        "REFERENCE_ID_ERROR_NOT_FOUND",
        "REFERENCE_ID_ERROR_SERVER",
        "REFERENCE_ID_ERROR_RATE_LIMITED",
    ] {
        let _ = client.get_ktp_result(ktp_request(id, None)).await;
    }
    // A call that waits for its job, timed apart from the others.
    let mut waiting = ktp_request("REFERENCE_ID_KTP", None);
    waiting.get_mut().wait = true;
    let _ = client.get_ktp_result(waiting).await;
    let concurrent: Vec<_> = (0..4)
        .map(|_| {
            let mut c = client.clone();
            tokio::spawn(async move {
                c.get_ktp_result(ktp_request("REFERENCE_ID_KTP_B", None))
                    .await
            })
        })
        .collect();
    for c in concurrent {
        let _ = c.await;
    }

    let scrape = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    let (ok, out) = run_promtool(&["check", "metrics"], Some(&scrape));
    assert!(
        ok,
        "promtool check metrics:\n{out}\n--- scrape ---\n{scrape}"
    );

    let exported = exported(&scrape);
    for file in [RULES, DASHBOARD] {
        let used = metric_names(&std::fs::read_to_string(repo(file)).unwrap());
        assert!(!used.is_empty(), "{file} names no metric");
        let missing = missing(&used, &exported);
        assert!(
            missing.is_empty(),
            "{file} names metrics the binary does not export: {missing:?}"
        );
    }
    // And the other way round: every family the binary exports has a panel,
    // so a new metric does not ship invisible to the on-call engineer.
    let shown = metric_names(&std::fs::read_to_string(repo(DASHBOARD)).unwrap());
    let unshown = unshown(&families(&scrape), &shown);
    assert!(
        unshown.is_empty(),
        "{DASHBOARD} has no panel for {unshown:?}"
    );
    assert!(
        !scrape.contains("REFERENCE_ID"),
        "a reference id leaked into a label"
    );
    gateway.stop();
}

/// The `ktp_gateway_*` families no panel names (a histogram counts as shown
/// through its `_bucket`, `_sum` or `_count` series).
fn unshown(families: &BTreeSet<String>, shown: &BTreeSet<String>) -> Vec<String> {
    families
        .iter()
        .filter(|family| family.starts_with("ktp_gateway_"))
        .filter(|family| {
            !["", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| shown.contains(&format!("{family}{suffix}")))
        })
        .cloned()
        .collect()
}

#[test]
fn a_family_without_a_panel_is_caught() {
    let scrape = "# TYPE ktp_gateway_h histogram\nktp_gateway_h_bucket{le=\"1\"} 0\nktp_gateway_h_sum 0\nktp_gateway_h_count 0\n# TYPE ktp_gateway_c counter\nktp_gateway_c 1\n";
    let families = families(scrape);
    let shown = metric_names("histogram_quantile(0.5, rate(ktp_gateway_h_bucket[5m]))");
    assert_eq!(unshown(&families, &shown), vec!["ktp_gateway_c".to_owned()]);
    let shown = metric_names("rate(ktp_gateway_h_count[5m]) + ktp_gateway_c");
    assert!(unshown(&families, &shown).is_empty());
}
