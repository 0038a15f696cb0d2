//! The Kubernetes manifests in `deploy/` and the binary agree.
//!
//! Each overlay is rendered with the real `kubectl kustomize` (offline), and
//! [`agreement::check`] compares the rendered Deployment with the other
//! objects, `deploy/Dockerfile` and the binary's own reading of the
//! configuration, then starts the real `ktp-gateway` with exactly the
//! container's args, env, ConfigMap and Secret files, and runs the startup,
//! readiness and liveness probes the way the kubelet does (a gRPC
//! `Health/Check` against the probe's port and `service`, SERVING or fail),
//! then SIGTERM: readiness must fail, and the exit (0) must come within the
//! grace period. How the pod maps onto this machine (temp root, ephemeral
//! ports) is described in [`agreement`].
//!
//! The negative tests feed mutated renderings through the same comparison:
//! a renamed port or health service, a moved probe or listener, a grace
//! period too short, must each make it fail.
//!
//! The prod overlay's tokens Secret holds `PLACEHOLDER` tokens, which the
//! binary refuses: started as rendered it must exit 2 naming the tokens
//! file; every other prod test first puts [`TEST_TOKENS`] in their place
//! ([`runnable`]), as an operator's real Secret would.
//!
//! - [`manifests`]: rendering to JSON, lookups, base64, the Dockerfile.
//! - [`agreement`]: the comparison (the binary runs under
//!   [`crate::harness::Process`]).
//! - [`memory`]: the container's memory limit holds the in-flight cap the
//!   binary derives for it (or is given).

mod agreement;
mod manifests;
mod memory;

use std::sync::OnceLock;

use serde_json::{Value, json};

use agreement::check;
use manifests::{Manifests, base64_decode, base64_encode};

/// The prod overlay's callers' tokens: the Secret (generated, so its
/// rendered name carries a hash suffix), its key, where it is mounted, the
/// file the binary is pointed at, and the variable that points it there.
const TOKENS_SECRET: &str = "ktp-gateway-tokens";
const TOKENS_KEY: &str = "tokens";
const TOKENS_MOUNT: &str = "/var/run/secrets/ktp-gateway-tokens";
const TOKENS_FILE: &str = "/var/run/secrets/ktp-gateway-tokens/tokens";
const TOKENS_FILE_ENV: &str = "KTP_GATEWAY__AUTH__TOKENS_FILE";
/// What the tests put in the tokens Secret in place of the placeholders.
const TEST_TOKENS: &str =
    "# the deploy tests' own token\nktp-deploy-test-7f3a9c2e5b8d4160 caller=deploy-test\n";
/// Span export: the variable the tracing component sets (and the endpoint
/// it sets it to), and the resource attributes the base gives every pod.
const TRACE_ENDPOINT_ENV: &str = "KTP_GATEWAY__TRACE__OTLP_ENDPOINT";
const TRACE_ENDPOINT: &str = "http://otel-collector.observability.svc:4317";
const RESOURCE_ATTRIBUTES_ENV: &str = "OTEL_RESOURCE_ATTRIBUTES";
const RESOURCE_ATTRIBUTES: &str = "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)";

/// Renders an overlay once per test binary.
fn rendered(overlay: &'static str) -> Manifests {
    static PROD: OnceLock<Manifests> = OnceLock::new();
    static DEV: OnceLock<Manifests> = OnceLock::new();
    let cell = match overlay {
        "prod" => &PROD,
        "dev" => &DEV,
        other => panic!("unknown overlay {other}"),
    };
    cell.get_or_init(|| Manifests::render(overlay)).clone()
}

/// `m` with [`TEST_TOKENS`] in the tokens Secret instead of its placeholders.
fn with_test_tokens(mut m: Manifests) -> Manifests {
    let secret = m
        .generated_mut("Secret", TOKENS_SECRET)
        .unwrap_or_else(|| panic!("deploy/overlays/prod renders no Secret {TOKENS_SECRET}"));
    secret["data"][TOKENS_KEY] = json!(base64_encode(TEST_TOKENS.as_bytes()));
    m
}

/// The rendering as an operator runs it: prod with real (test) tokens.
fn runnable(overlay: &'static str) -> Manifests {
    match overlay {
        "prod" => with_test_tokens(rendered("prod")),
        other => rendered(other),
    }
}

/// The decoded value of `key` in the generated Secret `name`.
fn secret_value(m: &Manifests, name: &str, key: &str) -> String {
    let secret = m
        .generated("Secret", name)
        .unwrap_or_else(|| panic!("deploy/overlays/{} renders no Secret {name}", m.overlay));
    let data = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("Secret {name} has no key {key:?}"));
    String::from_utf8(base64_decode(data).expect("base64")).expect("UTF-8")
}

fn container_of(m: &Manifests) -> &Value {
    m.one("Deployment")["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == agreement::CONTAINER)
        .expect("the gateway container")
}

fn container(m: &mut Manifests) -> &mut Value {
    let containers = m.one_mut("Deployment")["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers");
    containers
        .iter_mut()
        .find(|c| c["name"] == agreement::CONTAINER)
        .expect("the gateway container")
}

/// The comparison must fail, and one of its findings must mention `needle`.
async fn assert_disagrees(m: &Manifests, needle: &str) {
    match check(m).await {
        Ok(report) => panic!("a mutated rendering passed (expected {needle:?}): {report:#?}"),
        Err(errors) => assert!(
            errors.iter().any(|e| e.contains(needle)),
            "expected a finding mentioning {needle:?}, got:\n{}",
            errors.join("\n")
        ),
    }
}

fn assert_agrees(result: Result<agreement::Report, Vec<String>>) -> agreement::Report {
    result.unwrap_or_else(|errors| {
        panic!(
            "the manifests and the binary disagree:\n{}",
            errors.join("\n")
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_overlay_agrees_with_the_binary() {
    let m = runnable("prod");
    let report = assert_agrees(check(&m).await);
    assert!(!report.sandbox, "prod must call the real upstream");
    assert!(
        report.upstream.starts_with("https://api.verihubs.com"),
        "prod upstream is {}",
        report.upstream
    );
    assert_eq!(report.probes.len(), 3, "{report:#?}");
    assert_eq!(report.configured_grpc_port, 50051);
    assert_ne!(report.ephemeral_grpc_port, 0);
    eprintln!(
        "probes: {:#?}\nmetrics: {:?}\nserving after {:?}, exited {:?} after SIGTERM",
        report.probes, report.metrics_scrape, report.startup_time, report.shutdown_time
    );
    // The tokens file the binary read is the mounted one, and it admitted a
    // KtpService call with a token of it only.
    let tokens_file = report.tokens_file.as_ref().expect("prod needs tokens");
    assert!(
        tokens_file.ends_with(TOKENS_FILE.trim_start_matches('/')),
        "the binary read the tokens from {}",
        tokens_file.display()
    );
    assert_eq!(
        report.calls,
        [
            "GetKtpResult without a token: Unauthenticated",
            "GetKtpResult with the first token of the tokens file: InvalidArgument",
        ],
        "{report:#?}"
    );
    eprintln!("calls: {:#?}", report.calls);
    // Span export on (deploy/components/tracing), to the collector, with
    // the pod and namespace as the kubelet fills them in.
    assert_eq!(report.trace_endpoint.as_deref(), Some(TRACE_ENDPOINT));
    assert_eq!(
        report.env[RESOURCE_ATTRIBUTES_ENV],
        format!(
            "k8s.pod.name={},k8s.namespace.name=ktp-gateway",
            agreement::POD_NAME
        )
    );
    let deployment = m.one("Deployment");
    assert!(deployment["spec"]["replicas"].as_i64() >= Some(2));
    assert!(m.one("HorizontalPodAutoscaler")["spec"]["minReplicas"].as_i64() >= Some(2));
    // As committed, every Secret holds placeholders, never real credentials
    // or tokens (the tokens file: every token line).
    let committed = rendered("prod");
    for secret in committed.all("Secret") {
        let name = secret["metadata"]["name"].as_str().unwrap_or_default();
        for (key, value) in secret["data"].as_object().expect("Secret data") {
            let value =
                String::from_utf8(base64_decode(value.as_str().unwrap_or_default()).unwrap())
                    .expect("UTF-8");
            let tokens_file =
                manifests::is_generated_name(&secret["metadata"]["name"], TOKENS_SECRET);
            let values: Vec<&str> = if tokens_file {
                value
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect()
            } else {
                vec![value.as_str()]
            };
            assert!(!values.is_empty(), "Secret {name} key {key} is empty");
            for v in values {
                assert!(
                    v.starts_with("PLACEHOLDER"),
                    "Secret {name} key {key} holds a value that is not a placeholder"
                );
            }
        }
    }
}

#[test]
fn prod_overlay_mounts_the_tokens_file_from_its_secret() {
    let m = rendered("prod");
    let c = container_of(&m);
    let env: Vec<&Value> = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == TOKENS_FILE_ENV)
        .collect();
    assert_eq!(env.len(), 1, "one {TOKENS_FILE_ENV} in the container's env");
    assert_eq!(env[0]["value"], TOKENS_FILE, "{TOKENS_FILE_ENV}");
    let mounts: Vec<&Value> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["mountPath"] == TOKENS_MOUNT)
        .collect();
    assert_eq!(mounts.len(), 1, "one volumeMount at {TOKENS_MOUNT}");
    assert_eq!(mounts[0]["readOnly"], true, "the tokens mount is read-only");
    assert!(
        mounts[0]["subPath"].is_null(),
        "the whole Secret is mounted"
    );
    let volume = m.one("Deployment")["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mounts[0]["name"])
        .expect("the tokens mount's volume");
    let secret_name = &volume["secret"]["secretName"];
    assert!(
        manifests::is_generated_name(secret_name, TOKENS_SECRET),
        "the tokens volume mounts Secret {secret_name}, not {TOKENS_SECRET}"
    );
    assert!(
        volume["secret"]["items"].is_null(),
        "the Secret's keys are its file names"
    );
    let secret = m
        .generated("Secret", TOKENS_SECRET)
        .expect("the tokens Secret is rendered");
    assert_eq!(secret["metadata"]["name"], *secret_name);
    let keys: Vec<&String> = secret["data"].as_object().expect("data").keys().collect();
    assert_eq!(keys, [TOKENS_KEY], "the tokens Secret's keys");
    // The example says what its placeholders do.
    let example = secret_value(&m, TOKENS_SECRET, TOKENS_KEY);
    assert!(
        example.contains("refuses the start"),
        "the example tokens file says that its placeholders refuse the start:\n{example}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_overlay_as_committed_refuses_to_start_on_its_placeholder_tokens() {
    let m = rendered("prod");
    let exit = agreement::run_until_exit(&m).unwrap_or_else(|e| {
        panic!(
            "the binary must refuse the placeholder tokens:\n{}",
            e.join("\n")
        )
    });
    let file = exit.root.join(TOKENS_FILE.trim_start_matches('/'));
    let file = file.to_str().expect("UTF-8 path");
    assert_eq!(exit.code, Some(2), "exit status\n{}", exit.output);
    assert!(
        exit.output.contains(&format!("{file} line 1")),
        "the refusal names the tokens file ({file}) and the line\n{}",
        exit.output
    );
    assert!(exit.output.contains("PLACEHOLDER"), "{}", exit.output);
    let example = secret_value(&m, TOKENS_SECRET, TOKENS_KEY);
    for token in example
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(
            !exit.output.contains(token),
            "the refusal shows a token\n{}",
            exit.output
        );
    }
    assert!(
        !exit.output.contains(crate::harness::SERVING_MESSAGE),
        "it served\n{}",
        exit.output
    );
    // And the comparison says so.
    assert_disagrees(&m, "the binary refuses this configuration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_agrees_with_the_binary_in_sandbox_mode() {
    let m = rendered("dev");
    let report = assert_agrees(check(&m).await);
    assert!(report.sandbox, "dev must use the embedded sandbox");
    assert_eq!(report.probes.len(), 3, "{report:#?}");
    assert_eq!(report.tokens_file, None, "the sandbox needs no tokens");
    assert_eq!(report.trace_endpoint, None, "dev exports no spans");
    assert_eq!(
        report.env[RESOURCE_ATTRIBUTES_ENV],
        format!(
            "k8s.pod.name={},k8s.namespace.name=ktp-gateway-dev",
            agreement::POD_NAME
        )
    );
    assert_eq!(
        report.calls,
        ["GetKtpResult without a token: InvalidArgument"],
        "{report:#?}"
    );
    assert!(
        container_of(&m)["env"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| !e["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("KTP_GATEWAY__AUTH__")),
        "dev sets no auth"
    );
    assert!(
        m.all("Secret").is_empty(),
        "dev needs no credentials, so it renders no Secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_readiness_service_fails() {
    let mut m = runnable("prod");
    container(&mut m)["readinessProbe"]["grpc"]["service"] = json!("ktp.v1.KtpServiceV2");
    assert_disagrees(
        &m,
        "readinessProbe (gRPC port 50051, service \"ktp.v1.KtpServiceV2\") failed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_liveness_service_fails() {
    let mut m = rendered("dev");
    container(&mut m)["livenessProbe"]["grpc"]["service"] = json!("ktp.v1.Unknown");
    assert_disagrees(&m, "livenessProbe").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_container_port_fails() {
    let mut m = runnable("prod");
    container(&mut m)["ports"][0]["name"] = json!("grpc-api");
    assert_disagrees(&m, "targetPort \"grpc\" is not a port of the container").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_probe_port_fails() {
    let mut m = runnable("prod");
    container(&mut m)["livenessProbe"]["grpc"]["port"] = json!(50052);
    assert_disagrees(&m, "livenessProbe targets port 50052").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_port_the_binary_does_not_listen_on_fails() {
    let mut m = runnable("prod");
    let config = m.one_mut("ConfigMap");
    let toml = config["data"]["config.toml"]
        .as_str()
        .expect("config.toml")
        .to_owned();
    assert!(toml.contains("0.0.0.0:50051"));
    config["data"]["config.toml"] = json!(toml.replace("0.0.0.0:50051", "0.0.0.0:50052"));
    assert_disagrees(&m, "but the binary listens on 0.0.0.0:50052").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_period_shorter_than_the_drain_fails() {
    let mut m = runnable("prod");
    m.one_mut("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
        json!(20);
    assert_disagrees(&m, "terminationGracePeriodSeconds").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_file_fails() {
    let mut m = runnable("prod");
    let secret = m
        .generated_mut("Secret", "ktp-gateway-upstream")
        .expect("the upstream Secret");
    secret["data"]
        .as_object_mut()
        .expect("Secret data")
        .remove("api-key");
    assert_disagrees(&m, "the binary refuses this configuration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_secret_without_the_tokens_key_fails() {
    let mut m = runnable("prod");
    let secret = m
        .generated_mut("Secret", TOKENS_SECRET)
        .expect("the tokens Secret");
    let data = secret["data"].as_object_mut().expect("Secret data");
    let value = data.remove(TOKENS_KEY).expect("key tokens");
    data.insert("callers".into(), value);
    assert_disagrees(&m, "the binary refuses this configuration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_without_the_tokens_file_fails() {
    // Safe by default: outside the sandbox, no tokens (nor mutual TLS, nor
    // the explicit opt-out) means no start.
    let mut m = runnable("prod");
    container(&mut m)["env"]
        .as_array_mut()
        .expect("env")
        .retain(|e| e["name"] != TOKENS_FILE_ENV);
    assert_disagrees(&m, "callers are not authenticated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_base_renders_alone_and_leaves_auth_to_the_overlays() {
    // Not applied alone (deploy/README.md, "Base"): it has neither upstream
    // credentials nor callers' authentication, so its pod refuses to start.
    let m = Manifests::render_dir("base");
    let c = container_of(&m);
    assert!(
        c["env"].as_array().into_iter().flatten().all(|e| !e["name"]
            .as_str()
            .unwrap_or_default()
            .starts_with("KTP_GATEWAY__AUTH__")),
        "the base sets no auth: each overlay chooses"
    );
    assert!(m.all("Secret").is_empty(), "the base renders no Secret");
    assert_disagrees(&m, "the binary refuses this configuration").await;
}

/// The env entry `name` of the gateway container, and its index.
fn env_entry<'a>(m: &'a Manifests, name: &str) -> Option<(usize, &'a Value)> {
    container_of(m)["env"]
        .as_array()?
        .iter()
        .enumerate()
        .find(|(_, e)| e["name"] == name)
}

#[test]
fn the_base_names_the_pod_in_the_spans_resource_and_exports_nothing() {
    for m in [
        Manifests::render_dir("base"),
        rendered("dev"),
        rendered("prod"),
    ] {
        let overlay = &m.overlay;
        let field = |name: &str| {
            let (index, entry) =
                env_entry(&m, name).unwrap_or_else(|| panic!("{overlay}: no env {name}"));
            (index, entry["valueFrom"]["fieldRef"]["fieldPath"].clone())
        };
        let (pod_at, pod) = field("POD_NAME");
        let (namespace_at, namespace) = field("POD_NAMESPACE");
        assert_eq!(pod, "metadata.name", "{overlay}: POD_NAME");
        assert_eq!(namespace, "metadata.namespace", "{overlay}: POD_NAMESPACE");
        let (attributes_at, attributes) = env_entry(&m, RESOURCE_ATTRIBUTES_ENV)
            .unwrap_or_else(|| panic!("{overlay}: no env {RESOURCE_ATTRIBUTES_ENV}"));
        assert_eq!(attributes["value"], RESOURCE_ATTRIBUTES, "{overlay}");
        assert!(
            pod_at < attributes_at && namespace_at < attributes_at,
            "{overlay}: {RESOURCE_ATTRIBUTES_ENV} must come after the variables it names \
             (the kubelet expands only earlier ones)"
        );
    }
    // Export is each overlay's choice: off in the base and in dev.
    for m in [Manifests::render_dir("base"), rendered("dev")] {
        assert!(
            env_entry(&m, TRACE_ENDPOINT_ENV).is_none(),
            "{}: no {TRACE_ENDPOINT_ENV}",
            m.overlay
        );
        let egress = &m.one("NetworkPolicy")["spec"]["egress"];
        assert!(
            egress
                .as_array()
                .into_iter()
                .flatten()
                .all(|rule| rule["to"].is_null()),
            "{}: no egress rule to a collector: {egress:#?}",
            m.overlay
        );
    }
}

#[test]
fn the_tracing_component_lets_out_the_endpoints_port_to_the_collector_only() {
    let m = rendered("prod");
    let (_, endpoint) = env_entry(&m, TRACE_ENDPOINT_ENV)
        .unwrap_or_else(|| panic!("prod (deploy/components/tracing) sets {TRACE_ENDPOINT_ENV}"));
    let endpoint = endpoint["value"].as_str().expect("a literal endpoint");
    assert_eq!(endpoint, TRACE_ENDPOINT);
    let port = reqwest::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .expect("an endpoint with a port");
    let rules = m.one("NetworkPolicy")["spec"]["egress"]
        .as_array()
        .expect("egress rules")
        .clone();
    // The base's rules are kept (a strategic merge would have replaced them).
    for port in [53, 443] {
        assert!(
            rules.iter().any(|r| r["to"].is_null()
                && r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == port))),
            "the base's egress to port {port} is kept: {rules:#?}"
        );
    }
    let to_collector: Vec<&Value> = rules.iter().filter(|r| !r["to"].is_null()).collect();
    assert_eq!(
        to_collector.len(),
        1,
        "one egress rule to the collector: {rules:#?}"
    );
    assert_eq!(
        to_collector[0]["ports"],
        json!([{"port": port, "protocol": "TCP"}]),
        "the collector rule lets out the endpoint's port ({endpoint}) alone"
    );
    assert_eq!(
        to_collector[0]["to"],
        json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "opentelemetry-collector"}},
        }]),
        "to the collector's pods in its namespace (one `to` element: both selectors must match)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_endpoint_on_a_port_the_network_policy_keeps_closed_fails() {
    let mut m = runnable("prod");
    for e in container(&mut m)["env"].as_array_mut().expect("env") {
        if e["name"] == TRACE_ENDPOINT_ENV {
            e["value"] = json!("http://otel-collector.observability.svc:4318");
        }
    }
    assert_disagrees(
        &m,
        "NetworkPolicy egress does not allow TCP port 4318, the port of trace.otlp_endpoint",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_attributes_listed_before_the_pod_variables_fail() {
    // The kubelet expands $(POD_NAME) only from variables listed before it.
    let mut m = runnable("prod");
    let env = container(&mut m)["env"].as_array_mut().expect("env");
    let at = env
        .iter()
        .position(|e| e["name"] == RESOURCE_ATTRIBUTES_ENV)
        .expect("OTEL_RESOURCE_ATTRIBUTES");
    let entry = env.remove(at);
    env.insert(0, entry);
    assert_disagrees(
        &m,
        "env OTEL_RESOURCE_ATTRIBUTES refers to $(POD_NAME), which no variable listed before it",
    )
    .await;
}

/// The NetworkPolicy: two ingress rules, one per port; gRPC from pods
/// labelled `ktp-gateway-client: "true"` in any namespace, metrics from the
/// `monitoring` namespace.
fn assert_network_policy(m: &Manifests) {
    let policy = m.one("NetworkPolicy");
    let rules = policy["spec"]["ingress"].as_array().expect("ingress rules");
    assert_eq!(rules.len(), 2, "one ingress rule per port: {rules:#?}");
    let rule_for = |port: i64| {
        let matching: Vec<&Value> = rules
            .iter()
            .filter(|r| {
                r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == port))
            })
            .collect();
        assert_eq!(matching.len(), 1, "one ingress rule admits port {port}");
        let rule = matching[0];
        assert_eq!(
            rule["ports"],
            json!([{"port": port, "protocol": "TCP"}]),
            "the rule for port {port} admits it alone"
        );
        rule
    };
    assert_eq!(
        rule_for(50051)["from"],
        json!([{
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"ktp-gateway-client": "true"}},
        }]),
        "gRPC: one `from` element, labelled pods in any namespace (deploy/overlays/{})",
        m.overlay
    );
    assert_eq!(
        rule_for(9090)["from"],
        json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        }]),
        "metrics: from the monitoring namespace only (deploy/overlays/{})",
        m.overlay
    );
}

#[test]
fn the_network_policy_admits_labelled_clients_and_monitoring_only() {
    for overlay in ["prod", "dev"] {
        assert_network_policy(&rendered(overlay));
    }
    assert_network_policy(&Manifests::render_dir("base"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_probe_that_kills_draining_pods_fails() {
    let mut m = runnable("prod");
    container(&mut m)["livenessProbe"]["failureThreshold"] = json!(2);
    assert_disagrees(&m, "livenessProbe fails a draining pod").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_cap_the_memory_limit_cannot_hold_fails() {
    let mut m = runnable("prod");
    let env = container(&mut m)["env"]
        .as_array_mut()
        .expect("the container has env");
    env.push(json!({"name": "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT", "value": "4096"}));
    assert_disagrees(
        &m,
        "the in-flight cap 4096 (server.max_in_flight) and the wait cap",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_the_memory_limit_cannot_hold_fail() {
    // 64 images of 5,000,000 bytes keep 640 MB for submits: more than the
    // 448 MiB limit, so even the smallest caps cannot fit beside them.
    let mut m = runnable("prod");
    let env = container(&mut m)["env"]
        .as_array_mut()
        .expect("the container has env");
    env.push(json!({"name": "KTP_GATEWAY__SUBMIT__MAX_IN_FLIGHT", "value": "64"}));
    assert_disagrees(&m, "and 640000000 bytes for submits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_below_the_smallest_cap_fails() {
    let mut m = rendered("dev");
    container(&mut m)["resources"]["limits"]["memory"] = json!("16Mi");
    assert_disagrees(
        &m,
        "the in-flight cap 64 (derived from the limit) and the wait cap 64",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_without_a_memory_limit_fails() {
    let mut m = runnable("prod");
    container(&mut m)["resources"]["limits"]
        .as_object_mut()
        .expect("resource limits")
        .remove("memory");
    assert_disagrees(&m, "the container has no memory limit").await;
}

/// The production pod's memory limit admits what the issue asks of it: at
/// least 600 calls in flight and 5,000 waiting calls, with the image
/// submits' reserve kept, from one budget.
#[test]
fn the_prod_limit_admits_600_calls_in_flight_and_5000_waits() {
    use ktp_gateway::resilience::capacity::{cap_for, submit_reserve, waits_for};
    let mut m = rendered("prod");
    let limit = container(&mut m)["resources"]["limits"]["memory"]
        .as_str()
        .and_then(memory::quantity_bytes)
        .expect("a memory limit");
    let submits = submit_reserve(16, 5_000_000);
    let in_flight = cap_for(limit, submits);
    let waits = waits_for(limit, submits, in_flight);
    assert!(
        in_flight >= memory::BASE_MIN_IN_FLIGHT && waits >= memory::BASE_MIN_WAITING,
        "{limit} bytes admit {in_flight} calls in flight and {waits} waits"
    );
}
