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
use manifests::Manifests;

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
    let m = rendered("prod");
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
    let deployment = m.one("Deployment");
    assert!(deployment["spec"]["replicas"].as_i64() >= Some(2));
    assert!(m.one("HorizontalPodAutoscaler")["spec"]["minReplicas"].as_i64() >= Some(2));
    // The placeholders, never real credentials, are what the test ran with.
    for (key, value) in m.one("Secret")["data"].as_object().expect("Secret data") {
        let value = manifests::base64_decode(value.as_str().unwrap_or_default()).unwrap();
        assert!(
            value.starts_with(b"PLACEHOLDER"),
            "Secret key {key} is not a placeholder"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_agrees_with_the_binary_in_sandbox_mode() {
    let m = rendered("dev");
    let report = assert_agrees(check(&m).await);
    assert!(report.sandbox, "dev must use the embedded sandbox");
    assert_eq!(report.probes.len(), 3, "{report:#?}");
    assert!(
        m.all("Secret").is_empty(),
        "dev needs no credentials, so it renders no Secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_readiness_service_fails() {
    let mut m = rendered("prod");
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
    let mut m = rendered("prod");
    container(&mut m)["ports"][0]["name"] = json!("grpc-api");
    assert_disagrees(&m, "targetPort \"grpc\" is not a port of the container").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_probe_port_fails() {
    let mut m = rendered("prod");
    container(&mut m)["livenessProbe"]["grpc"]["port"] = json!(50052);
    assert_disagrees(&m, "livenessProbe targets port 50052").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_port_the_binary_does_not_listen_on_fails() {
    let mut m = rendered("prod");
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
    let mut m = rendered("prod");
    m.one_mut("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
        json!(20);
    assert_disagrees(&m, "terminationGracePeriodSeconds").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_file_fails() {
    let mut m = rendered("prod");
    let secret = m.one_mut("Secret");
    secret["data"]
        .as_object_mut()
        .expect("Secret data")
        .remove("api-key");
    assert_disagrees(&m, "the binary refuses this configuration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_probe_that_kills_draining_pods_fails() {
    let mut m = rendered("prod");
    container(&mut m)["livenessProbe"]["failureThreshold"] = json!(2);
    assert_disagrees(&m, "livenessProbe fails a draining pod").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_cap_the_memory_limit_cannot_hold_fails() {
    let mut m = rendered("prod");
    let env = container(&mut m)["env"]
        .as_array_mut()
        .expect("the container has env");
    env.push(json!({"name": "KTP_GATEWAY__SERVER__MAX_IN_FLIGHT", "value": "4096"}));
    assert_disagrees(&m, "the in-flight cap 4096 (server.max_in_flight) needs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_the_memory_limit_cannot_hold_fail() {
    // 64 images of 5,000,000 bytes keep 640 MB for submits: more than the
    // 256 MiB limit, so even the smallest cap cannot fit beside them.
    let mut m = rendered("prod");
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
    assert_disagrees(&m, "the in-flight cap 64 (derived from the limit) needs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_without_a_memory_limit_fails() {
    let mut m = rendered("prod");
    container(&mut m)["resources"]["limits"]
        .as_object_mut()
        .expect("resource limits")
        .remove("memory");
    assert_disagrees(&m, "the container has no memory limit").await;
}
