//! The comparison: do the rendered manifests and the real binary agree?
//!
//! [`check`] reads the rendered Deployment (ports, probes, env, args, mounted
//! ConfigMap and Secret files, preStop, grace period), checks it against the
//! other objects (Services, NetworkPolicy, HPA, PDB) and `deploy/Dockerfile`,
//! resolves the configuration with the binary's own loader
//! ([`ktp_gateway::config::Settings::load`]), then starts the binary with
//! exactly that configuration and probes it the way the kubelet does.
//!
//! Mapping from the pod to this machine, the only liberties taken:
//! - Every `volumeMount` is materialised under a temporary directory `ROOT`:
//!   a file the pod sees at `/etc/ktp-gateway/config.toml` is written to
//!   `ROOT/etc/ktp-gateway/config.toml`, and every occurrence of a mount path
//!   in the container's args, env values and mounted ConfigMap files is
//!   rewritten the same way (Secret values are written verbatim).
//! - The listen addresses keep their configured IP, but their port becomes 0
//!   (an ephemeral port; never a fixed one): `KTP_GATEWAY__SERVER__GRPC_ADDR`
//!   (and `KTP_GATEWAY__METRICS__ADDR`, when the binary knows that key) is
//!   added to the environment. The configured port is checked against the
//!   manifests before, from the binary's own resolution of the configuration;
//!   a probe that targets the configured gRPC port is then sent to the
//!   ephemeral port the binary announces in its "ktp-gateway serving" log
//!   line. A probe on any other port fails.
//! - Metrics are not required (the probes are gRPC only): the container port
//!   `metrics` is compared with `metrics.addr` as configured (default
//!   `0.0.0.0:9090`); only when the binary announces a metrics listener
//!   (`metrics_addr` in its "serving" line) is the pod's `prometheus.io/path`
//!   scraped there, and it must answer 200.
//! - The env is built as the kubelet builds it: a `valueFrom.fieldRef` to
//!   `metadata.name` or `metadata.namespace` (the downward API) gets
//!   [`POD_NAME`] or the Deployment's namespace (`default` when it has
//!   none), and `$(VAR)` in a `value` is expanded from the variables listed
//!   *before* it (`$$` is a literal `$`). A reference the kubelet would leave
//!   unexpanded (its variable undefined, or listed after it) is a finding:
//!   the pod would see `$(VAR)` literally. Other `valueFrom` sources are not
//!   reproduced (mount files instead).
//! - With `trace.otlp_endpoint` set, the NetworkPolicy must let out TCP to
//!   the endpoint's port, and the binary must say it exports spans to that
//!   endpoint (its `exporting spans` line): export connects lazily, so no
//!   collector is needed to start.
//! - The kubelet's preStop sleep is not waited out: SIGTERM is sent at once,
//!   and the time from SIGTERM to exit must fit what is left of
//!   `terminationGracePeriodSeconds` after the sleep.
//!
//! Once the probes pass, one `ktp.v1.KtpService` call (a `GetKtpResult`
//! with an empty reference id, which the service refuses as
//! INVALID_ARGUMENT before any upstream request) checks authentication as
//! configured: with a tokens file, the call without a token must get
//! UNAUTHENTICATED and the call with the first token of the mounted file must
//! reach the service; without one, the call without a token must reach it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use ktp_gateway::{
    config::{LogFormat, Settings, Sources},
    proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient},
};
use serde_json::Value;
use tempfile::TempDir;
use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::manifests::{Dockerfile, Manifests, base64_decode, repo_root};
use crate::harness::{BIN, EXIT_TIMEOUT, Process, SERVING_MESSAGE, env};

/// The container that runs the gateway.
pub(super) const CONTAINER: &str = "ktp-gateway";
/// Container port names the Services and docs refer to.
pub(super) const GRPC_PORT: &str = "grpc";
pub(super) const METRICS_PORT: &str = "metrics";
/// `metrics.addr`'s documented default (README): `0.0.0.0:9090`.
const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9090";
/// `appProtocol` values that tell proxies the port speaks gRPC (h2c).
const GRPC_APP_PROTOCOLS: &[&str] = &["kubernetes.io/h2c", "grpc"];
const GRPC_ADDR_ENV: &str = env::GRPC_ADDR;
const METRICS_ADDR_ENV: &str = env::METRICS_ADDR;
/// Longest wait for that line on a busy machine; whether the start fitted
/// the startupProbe's budget is checked separately.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after SIGTERM readiness may still pass.
const UNREADY_TIMEOUT: Duration = Duration::from_secs(5);
/// The pod name the downward API's `metadata.name` gives here (a
/// Deployment's pods are `<deployment>-<template hash>-<suffix>`).
pub(super) const POD_NAME: &str = "ktp-gateway-5d8f9c7b6-x2k9q";
/// The binary's INFO line when span export is on (src/telemetry/traces).
const EXPORTING_SPANS_MESSAGE: &str = "exporting spans";

/// What a successful check saw.
#[derive(Debug)]
pub(super) struct Report {
    pub sandbox: bool,
    pub upstream: String,
    pub configured_grpc_port: u16,
    pub ephemeral_grpc_port: u16,
    /// `kind service=… : SERVING` for each probe run.
    pub probes: Vec<String>,
    pub startup_time: Duration,
    pub shutdown_time: Duration,
    /// What a scrape of the metrics path gave, when the binary announced a
    /// metrics listener (`None`: it announced none, nothing was required).
    pub metrics_scrape: Option<String>,
    /// `auth.tokens_file` as the binary resolved it (a path under the temp
    /// root), `None` when calls need no token.
    pub tokens_file: Option<PathBuf>,
    /// What each `KtpService` call of the authentication check got.
    pub calls: Vec<String>,
    /// `trace.otlp_endpoint` as the binary resolved it (`None`: no export).
    pub trace_endpoint: Option<String>,
    /// The container's env as the kubelet would pass it (downward API
    /// values filled in, `$(VAR)` expanded).
    pub env: BTreeMap<String, String>,
}

/// A native gRPC probe of the container.
#[derive(Debug, Clone)]
struct Probe {
    kind: &'static str,
    port: i64,
    service: String,
    initial_delay: Duration,
    timeout: Duration,
    period: Duration,
    failure_threshold: u32,
}

/// The Deployment's pod, as far as the agreement needs it.
struct Pod<'a> {
    template_labels: BTreeMap<String, String>,
    spec: &'a Value,
    container: &'a Value,
    /// (name, containerPort)
    ports: Vec<(String, i64)>,
    probes: Vec<Probe>,
    pre_stop_sleep: Duration,
    grace: Duration,
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn secs(v: &Value, default: i64) -> Duration {
    Duration::from_secs(v.as_u64().unwrap_or(default as u64))
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `selector` (matchLabels form) selects pods labelled `pod`.
fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

impl<'a> Pod<'a> {
    fn read(m: &'a Manifests, errors: &mut Vec<String>) -> Option<Self> {
        let deployment = m.one("Deployment");
        let template = &deployment["spec"]["template"];
        let spec = &template["spec"];
        let template_labels = labels(&template["metadata"]["labels"]);
        let selector = labels(&deployment["spec"]["selector"]["matchLabels"]);
        if !selects(&selector, &template_labels) {
            errors.push("the Deployment's selector does not match its pod template".into());
        }
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        let Some(index) = containers.iter().position(|c| c["name"] == CONTAINER) else {
            errors.push(format!(
                "the Deployment has no container named {CONTAINER:?}"
            ));
            return None;
        };
        let container = &spec["containers"][index];
        let ports = container["ports"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap_or_default().to_owned(),
                            int(&p["containerPort"]).unwrap_or(-1),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut probes = Vec::new();
        for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let p = &container[kind];
            if p.is_null() {
                errors.push(format!("the container has no {kind}"));
                continue;
            }
            let grpc = &p["grpc"];
            if grpc.is_null() {
                errors.push(format!("{kind} is not a native gRPC probe"));
                continue;
            }
            probes.push(Probe {
                kind,
                port: int(&grpc["port"]).unwrap_or(-1),
                service: grpc["service"].as_str().unwrap_or_default().to_owned(),
                initial_delay: secs(&p["initialDelaySeconds"], 0),
                timeout: secs(&p["timeoutSeconds"], 1),
                period: secs(&p["periodSeconds"], 10),
                failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3) as u32,
            });
        }
        let pre_stop = &container["lifecycle"]["preStop"];
        let pre_stop_sleep = if pre_stop["sleep"].is_object() {
            secs(&pre_stop["sleep"]["seconds"], 0)
        } else {
            errors.push(
                "preStop must be the native `sleep` action (the distroless image has no \
                 shell for an exec hook)"
                    .into(),
            );
            Duration::ZERO
        };
        Some(Self {
            template_labels,
            spec,
            container,
            ports,
            probes,
            pre_stop_sleep,
            grace: secs(&spec["terminationGracePeriodSeconds"], 30),
        })
    }

    fn port(&self, name: &str) -> Option<i64> {
        self.ports.iter().find(|(n, _)| n == name).map(|&(_, p)| p)
    }

    fn has_port_number(&self, number: i64) -> bool {
        self.ports.iter().any(|&(_, p)| p == number)
    }

    /// A Service or NetworkPolicy port (name or number) → container port.
    fn resolve(&self, port: &Value) -> Option<i64> {
        match port {
            Value::String(name) => self.port(name),
            Value::Number(n) => n.as_i64().filter(|&p| self.has_port_number(p)),
            _ => None,
        }
    }
}

/// Services, HPA, PDB: each must reach the Deployment's pods and ports.
fn objects_agree(m: &Manifests, pod: &Pod<'_>, errors: &mut Vec<String>) {
    let services = m.all("Service");
    if services.is_empty() {
        errors.push("no Service is rendered".into());
    }
    let mut grpc_services = 0;
    for svc in services {
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        if !selects(&labels(&svc["spec"]["selector"]), &pod.template_labels) {
            errors.push(format!(
                "Service {name}: its selector does not select the pods"
            ));
        }
        for port in svc["spec"]["ports"].as_array().into_iter().flatten() {
            let target = if port["targetPort"].is_null() {
                &port["port"]
            } else {
                &port["targetPort"]
            };
            match pod.resolve(target) {
                None => errors.push(format!(
                    "Service {name} port {}: targetPort {target} is not a port of the container",
                    port["name"]
                )),
                Some(p) if Some(p) == pod.port(GRPC_PORT) => {
                    grpc_services += 1;
                    let proto = port["appProtocol"].as_str().unwrap_or_default();
                    if !GRPC_APP_PROTOCOLS.contains(&proto) {
                        errors.push(format!(
                            "Service {name}: the gRPC port has appProtocol {proto:?}, \
                             expected one of {GRPC_APP_PROTOCOLS:?}"
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }
    if grpc_services == 0 {
        errors.push(format!(
            "no Service port reaches the container port {GRPC_PORT:?}"
        ));
    }
    let annotations = &m.one("Deployment")["spec"]["template"]["metadata"]["annotations"];
    if !annotations["prometheus.io/port"].is_null() {
        let port = annotations["prometheus.io/port"]
            .as_str()
            .and_then(|p| p.parse().ok());
        if port.is_none() || port != pod.port(METRICS_PORT) {
            errors.push(format!(
                "the prometheus.io/port annotation {} is not the container port {METRICS_PORT:?}",
                annotations["prometheus.io/port"]
            ));
        }
    }
    let deployment = m.one("Deployment")["metadata"]["name"].clone();
    for hpa in m.all("HorizontalPodAutoscaler") {
        if hpa["spec"]["scaleTargetRef"]["name"] != deployment {
            errors.push("the HorizontalPodAutoscaler scales another Deployment".into());
        }
    }
    for pdb in m.all("PodDisruptionBudget") {
        if !selects(
            &labels(&pdb["spec"]["selector"]["matchLabels"]),
            &pod.template_labels,
        ) {
            errors.push("the PodDisruptionBudget does not select the pods".into());
        }
    }
}

/// The NetworkPolicy admits exactly the container's ports and lets out DNS,
/// the upstream's port and, with span export on, the collector's port.
fn network_policy_agrees(
    m: &Manifests,
    pod: &Pod<'_>,
    upstream_port: Option<u16>,
    trace_port: Option<u16>,
    errors: &mut Vec<String>,
) {
    let policies: Vec<_> = m
        .all("NetworkPolicy")
        .into_iter()
        .filter(|p| {
            selects(
                &labels(&p["spec"]["podSelector"]["matchLabels"]),
                &pod.template_labels,
            )
        })
        .collect();
    let [policy] = policies[..] else {
        errors.push(format!(
            "expected one NetworkPolicy selecting the pods, found {}",
            policies.len()
        ));
        return;
    };
    let mut ingress = BTreeSet::new();
    for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
        let Some(ports) = rule["ports"].as_array() else {
            errors.push("a NetworkPolicy ingress rule admits every port".into());
            continue;
        };
        for p in ports {
            match pod.resolve(&p["port"]) {
                Some(n) => {
                    ingress.insert(n);
                }
                None => errors.push(format!(
                    "NetworkPolicy ingress port {} is not a port of the container",
                    p["port"]
                )),
            }
        }
    }
    let declared: BTreeSet<i64> = pod.ports.iter().map(|&(_, p)| p).collect();
    if ingress != declared {
        errors.push(format!(
            "NetworkPolicy ingress admits ports {ingress:?}, the container declares {declared:?}"
        ));
    }
    let mut egress = BTreeSet::new();
    for rule in policy["spec"]["egress"].as_array().into_iter().flatten() {
        for p in rule["ports"].as_array().into_iter().flatten() {
            egress.insert((
                p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                p["port"].as_i64().unwrap_or(-1),
            ));
        }
    }
    let mut needed = vec![("UDP".to_owned(), 53)];
    if let Some(port) = upstream_port {
        needed.push(("TCP".to_owned(), i64::from(port)));
    }
    for (proto, port) in needed {
        if !egress.contains(&(proto.clone(), port)) {
            errors.push(format!(
                "NetworkPolicy egress does not allow {proto} port {port}"
            ));
        }
    }
    if let Some(port) = trace_port
        && !egress.contains(&("TCP".to_owned(), i64::from(port)))
    {
        errors.push(format!(
            "NetworkPolicy egress does not allow TCP port {port}, the port of \
             trace.otlp_endpoint (the collector): spans would never leave the pod"
        ));
    }
}

/// The image runs what the container spec expects.
fn dockerfile_agrees(pod: &Pod<'_>, errors: &mut Vec<String>) {
    let image = Dockerfile::read(&repo_root().join("deploy/Dockerfile"));
    let exposed: BTreeSet<i64> = image.exposed.iter().map(|&p| i64::from(p)).collect();
    let declared: BTreeSet<i64> = pod.ports.iter().map(|&(_, p)| p).collect();
    if exposed != declared {
        errors.push(format!(
            "the Dockerfile EXPOSEs {exposed:?}, the container declares {declared:?}"
        ));
    }
    if image.entrypoint.len() != 1 {
        errors.push("the Dockerfile ENTRYPOINT must be the binary alone".into());
    }
    if !pod.container["command"].is_null() {
        errors.push(
            "the container overrides the image ENTRYPOINT with `command`; pass flags in `args`"
                .into(),
        );
    }
    let uid = pod.container["securityContext"]["runAsUser"]
        .as_i64()
        .or_else(|| pod.spec["securityContext"]["runAsUser"].as_i64());
    if uid.is_some() && uid != image.uid {
        errors.push(format!(
            "runAsUser {uid:?} differs from the Dockerfile USER {:?}",
            image.uid
        ));
    }
}

/// Rewrites every mount path in `text` that starts a path (at the start or
/// after a quote, `=`, `:`, `,` or white space, and ending there or at `/`)
/// into `root` + the mount path.
fn rewrite(text: &str, mounts: &[String], root: &str) -> String {
    let starts = |c: u8| matches!(c, b'"' | b'\'' | b'=' | b':' | b',' | b' ' | b'\t' | b'\n');
    let ends = |c: Option<&u8>| {
        matches!(
            c,
            None | Some(b'/' | b'"' | b'\'' | b',' | b' ' | b'\t' | b'\n')
        )
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'scan: while i < text.len() {
        if i == 0 || starts(bytes[i - 1]) {
            for mount in mounts {
                if text[i..].starts_with(mount.as_str()) && ends(bytes.get(i + mount.len())) {
                    out.push_str(root);
                    out.push_str(mount);
                    i += mount.len();
                    continue 'scan;
                }
            }
        }
        let c = text[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `$(VAR)` references in an env `value` expanded as the kubelet does, from
/// `defined` (the variables listed before it): `$$` is a literal `$`, and a
/// reference to an undefined variable stays as written. Returns the value
/// and the names of the references left unexpanded.
fn expand(value: &str, defined: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(value.len());
    let mut unresolved = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after
            .strip_prefix('(')
            .and_then(|r| Some(&r[..r.find(')')?]))
        {
            match defined.get(reference) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str(&format!("$({reference})"));
                    unresolved.push(reference.to_owned());
                }
            }
            rest = &after[reference.len() + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, unresolved)
}

/// The container's process, recreated under a temporary root.
struct Launch {
    _dir: TempDir,
    root: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    config_file: Option<PathBuf>,
    sandbox_flag: bool,
}

impl Launch {
    fn prepare(m: &Manifests, pod: &Pod<'_>) -> Result<Self, Vec<String>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let root_str = root.to_str().expect("UTF-8 temp dir").to_owned();
        let mut errors = Vec::new();
        let mounts_json = pod.container["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut mounts: Vec<String> = mounts_json
            .iter()
            .filter_map(|mnt| mnt["mountPath"].as_str().map(str::to_owned))
            .collect();
        // Longest first, so a nested mount wins over its parent.
        mounts.sort_by_key(|mp| std::cmp::Reverse(mp.len()));

        let volumes = pod.spec["volumes"].as_array().cloned().unwrap_or_default();
        for mnt in &mounts_json {
            let mount_path = mnt["mountPath"].as_str().unwrap_or_default();
            let name = mnt["name"].as_str().unwrap_or_default();
            let Some(volume) = volumes.iter().find(|v| v["name"] == name) else {
                errors.push(format!("volumeMount {name:?}: no such volume"));
                continue;
            };
            let files = match volume_files(m, volume, mounts.as_slice(), &root_str) {
                Ok(files) => files,
                Err(e) => {
                    errors.push(format!("volume {name:?}: {e}"));
                    continue;
                }
            };
            let target = root.join(mount_path.trim_start_matches('/'));
            match mnt["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => match files.get(sub) {
                    Some(content) => write_file(&target, content),
                    None => errors.push(format!("volumeMount {name:?}: no item {sub:?}")),
                },
                None => {
                    std::fs::create_dir_all(&target).expect("create mount dir");
                    for (path, content) in &files {
                        write_file(&target.join(path), content);
                    }
                }
            }
        }

        let mut env = BTreeMap::new();
        if !pod.container["envFrom"].is_null() {
            errors.push("envFrom is not supported by this test; list env entries".into());
        }
        let namespace = m.one("Deployment")["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        for e in pod.container["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or_default().to_owned();
            if !e["valueFrom"].is_null() {
                let field = &e["valueFrom"]["fieldRef"]["fieldPath"];
                let value = match field.as_str() {
                    Some("metadata.name") => POD_NAME,
                    Some("metadata.namespace") => namespace,
                    _ => {
                        errors.push(format!(
                            "env {name}: only valueFrom.fieldRef to metadata.name or \
                             metadata.namespace is reproduced by this test (mount files \
                             instead of other sources)"
                        ));
                        continue;
                    }
                };
                env.insert(name, value.to_owned());
                continue;
            }
            let value = rewrite(e["value"].as_str().unwrap_or_default(), &mounts, &root_str);
            let (value, unresolved) = expand(&value, &env);
            for reference in unresolved {
                errors.push(format!(
                    "env {name} refers to $({reference}), which no variable listed before it \
                     defines: the kubelet expands only earlier variables, so the pod would see \
                     \"$({reference})\" literally"
                ));
            }
            env.insert(name, value);
        }
        let args: Vec<String> = pod.container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| rewrite(a.as_str().unwrap_or_default(), &mounts, &root_str))
            .collect();
        // The flags the binary takes (src/main.rs), parsed as clap does.
        let mut config_file = None;
        let mut sandbox_flag = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--config" {
                config_file = it.next().map(PathBuf::from);
            } else if let Some(file) = arg.strip_prefix("--config=") {
                config_file = Some(PathBuf::from(file));
            } else if arg == "--sandbox" {
                sandbox_flag = true;
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            _dir: dir,
            root,
            args,
            env,
            config_file,
            sandbox_flag,
        })
    }

    /// The settings the binary resolves from `env` (+ `extra`), with its own
    /// loader: defaults → `--config` file → environment.
    fn settings(&self, extra: &[(&str, String)]) -> Result<Settings, String> {
        let mut env: HashMap<String, String> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        #[allow(clippy::needless_update)] // Sources may gain fields.
        let sources = Sources {
            file: self.config_file.clone(),
            env: Some(env),
            sandbox: self.sandbox_flag,
            ..Default::default()
        };
        Settings::load(sources).map_err(|e| e.to_string())
    }

    /// The container's process on this machine: its args and env, the
    /// listen ports made ephemeral (`grpc_ip` kept), a clean environment.
    fn command(&self, grpc_ip: IpAddr) -> Command {
        let mut overrides = vec![(GRPC_ADDR_ENV, SocketAddr::new(grpc_ip, 0).to_string())];
        let metrics_ip = self
            .metrics_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let metrics_override = (METRICS_ADDR_ENV, SocketAddr::new(metrics_ip, 0).to_string());
        // A binary without metrics.addr would reject the key: add it unless
        // it alone turns an accepted configuration into a refused one.
        if self
            .settings(std::slice::from_ref(&metrics_override))
            .is_ok()
            || self.settings(&[]).is_err()
        {
            overrides.push(metrics_override);
        }
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .envs(&self.env)
            .envs(overrides.iter().map(|(k, v)| (*k, v.as_str())))
            .args(&self.args)
            .current_dir(&self.root);
        cmd
    }

    /// `metrics.addr` as configured (file, then env), else its default.
    /// Read with the `config` crate as the binary layers it, so that this
    /// holds whether or not the binary already serves metrics.
    fn metrics_addr(&self) -> Result<SocketAddr, String> {
        let mut builder = config::Config::builder();
        if let Some(file) = &self.config_file {
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        let env: HashMap<String, String> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let built = builder
            .add_source(
                config::Environment::with_prefix("KTP_GATEWAY")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| e.to_string())?;
        let addr = built
            .get_string("metrics.addr")
            .unwrap_or_else(|_| DEFAULT_METRICS_ADDR.to_owned());
        addr.parse()
            .map_err(|_| format!("metrics.addr {addr:?} is not IP:port"))
    }
}

/// How a start of the container's process ended when it ended by itself.
#[derive(Debug)]
pub(super) struct Exit {
    pub code: Option<i32>,
    /// stdout and stderr.
    pub output: String,
    /// The temporary root the pod's mounts were written under: a path the pod
    /// sees as `/x` is `root/x` here.
    pub root: PathBuf,
}

/// Starts the container's process exactly as [`check`] does (mounts under a
/// temporary root, ephemeral ports) and waits for it to exit by itself: for
/// renderings the binary must refuse. `Err` when the pod cannot even be
/// recreated, or when the process was still running after [`EXIT_TIMEOUT`]
/// (killed then).
pub(super) fn run_until_exit(m: &Manifests) -> Result<Exit, Vec<String>> {
    let mut errors = Vec::new();
    let Some(pod) = Pod::read(m, &mut errors) else {
        return Err(errors);
    };
    let launch = Launch::prepare(m, &pod)?;
    let mut process = Process::spawn(launch.command(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
    let status = tokio::task::block_in_place(|| process.try_wait_exit(EXIT_TIMEOUT));
    let output = process.output();
    match status {
        Some(status) => Ok(Exit {
            code: status.code(),
            output,
            root: launch.root.clone(),
        }),
        None => Err(vec![format!(
            "the binary was still running {EXIT_TIMEOUT:?} after its start (killed):\n{output}"
        )]),
    }
}

/// `auth.tokens_file` as the binary resolved it, `None` when unset.
fn tokens_file(settings: &Settings) -> Option<PathBuf> {
    let auth = serde_json::to_value(&settings.auth).ok()?;
    auth["tokens_file"].as_str().map(PathBuf::from)
}

/// The first token of a tokens file (the first word of its first line that
/// is neither blank nor a `#` comment).
fn first_token(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?
        .split_whitespace()
        .next()
}

/// One `GetKtpResult` with an empty reference id (INVALID_ARGUMENT from the
/// service, no upstream request), with `authorization: Bearer <token>` when
/// `token` is given; the status code it got.
async fn ktp_call(target: SocketAddr, token: Option<&str>) -> Result<Code, String> {
    let timeout = Duration::from_secs(5);
    let channel = Endpoint::from_shared(format!("http://{target}"))
        .expect("valid endpoint")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut request = tonic::Request::new(GetKtpResultRequest {
        read_mask: None,
        reference_id: String::new(),
        wait: false,
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token is not valid ASCII metadata".to_owned())?;
        request.metadata_mut().insert("authorization", value);
    }
    match KtpServiceClient::new(channel).get_ktp_result(request).await {
        Ok(_) => Ok(Code::Ok),
        Err(status) => Ok(status.code()),
    }
}

/// Calls need a token exactly when a tokens file is configured, and the
/// file's first token is accepted. Each call's outcome goes to `calls`.
async fn auth_agrees(
    target: SocketAddr,
    tokens_file: Option<&Path>,
    calls: &mut Vec<String>,
) -> Result<(), String> {
    let reached = Code::InvalidArgument;
    let without = ktp_call(target, None).await?;
    calls.push(format!("GetKtpResult without a token: {without:?}"));
    let Some(file) = tokens_file else {
        return if without == reached {
            Ok(())
        } else {
            Err(format!(
                "no tokens file is configured, but a KtpService call without a token got \
                 {without:?}, not {reached:?}"
            ))
        };
    };
    if without != Code::Unauthenticated {
        return Err(format!(
            "auth.tokens_file is set ({}), but a KtpService call without a token got \
             {without:?}, not Unauthenticated",
            file.display()
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read the mounted tokens file {}: {e}",
            file.display()
        )
    })?;
    let token = first_token(&text)
        .ok_or_else(|| format!("the mounted tokens file {} holds no token", file.display()))?;
    let with = ktp_call(target, Some(token)).await?;
    calls.push(format!(
        "GetKtpResult with the first token of the tokens file: {with:?}"
    ));
    if with != reached {
        return Err(format!(
            "a KtpService call with the first token of {} got {with:?}, not {reached:?} \
             (the service's answer to an empty reference id)",
            file.display()
        ));
    }
    Ok(())
}

fn write_file(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dir");
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The files a volume shows in its mount: relative path → content.
fn volume_files(
    m: &Manifests,
    volume: &Value,
    mounts: &[String],
    root: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let (kind, name, optional, items, is_secret) = if !volume["configMap"].is_null() {
        let v = &volume["configMap"];
        ("ConfigMap", &v["name"], &v["optional"], &v["items"], false)
    } else if !volume["secret"].is_null() {
        let v = &volume["secret"];
        (
            "Secret",
            &v["secretName"],
            &v["optional"],
            &v["items"],
            true,
        )
    } else if !volume["emptyDir"].is_null() {
        return Ok(BTreeMap::new());
    } else {
        return Err("only configMap, secret and emptyDir volumes are reproduced".into());
    };
    let name = name.as_str().unwrap_or_default();
    let Some(object) = m.get(kind, name) else {
        return if optional == &Value::Bool(true) {
            Ok(BTreeMap::new())
        } else {
            Err(format!("{kind} {name} is not in the rendering"))
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        let text = value.as_str().unwrap_or_default();
        let bytes = if is_secret {
            base64_decode(text).map_err(|e| format!("{kind} {name} key {key}: {e}"))?
        } else {
            // Config files may name mounted paths: rewrite them too.
            rewrite(text, mounts, root).into_bytes()
        };
        data.insert(key.clone(), bytes);
    }
    if let Some(items) = items.as_array() {
        let mut files = BTreeMap::new();
        for item in items {
            let key = item["key"].as_str().unwrap_or_default();
            let path = item["path"].as_str().unwrap_or(key);
            let content = data
                .get(key)
                .ok_or_else(|| format!("{kind} {name} has no key {key:?}"))?;
            files.insert(path.to_owned(), content.clone());
        }
        Ok(files)
    } else {
        Ok(data)
    }
}

/// The status code of a plain HTTP/1.1 `GET path` (as a Prometheus scrape).
fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(5);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&head);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3)?.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 answer: {head:?}"))
}

/// One kubelet-style gRPC probe: a new connection, `Health/Check` for
/// `service`, success only on SERVING, all within the probe's timeout.
async fn grpc_probe(addr: SocketAddr, service: &str, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("valid endpoint")
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(format!("status {other:?}")),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

/// Runs one probe against the binary, kubelet style: up to
/// `failure_threshold` attempts, `period` apart, for the startup probe;
/// once for the others (a healthy, started pod must pass at once).
async fn run_probe(probe: &Probe, target: SocketAddr) -> Result<(), String> {
    let attempts = if probe.kind == "startupProbe" {
        probe.failure_threshold.max(1)
    } else {
        1
    };
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(probe.period).await;
        }
        match grpc_probe(target, &probe.service, probe.timeout).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "{} (gRPC port {}, service {:?}) failed: {last}",
        probe.kind, probe.port, probe.service
    ))
}

/// The whole comparison for one rendering. `Ok` with what was seen, or every
/// disagreement found.
pub(super) async fn check(m: &Manifests) -> Result<Report, Vec<String>> {
    let mut errors = Vec::new();
    let Some(pod) = Pod::read(m, &mut errors) else {
        return Err(errors);
    };
    let grpc_port = pod.port(GRPC_PORT);
    if grpc_port.is_none() {
        errors.push(format!("the container has no port named {GRPC_PORT:?}"));
    }
    if pod.port(METRICS_PORT).is_none() {
        errors.push(format!("the container has no port named {METRICS_PORT:?}"));
    }
    objects_agree(m, &pod, &mut errors);
    dockerfile_agrees(&pod, &mut errors);
    let launch = match Launch::prepare(m, &pod) {
        Ok(launch) => launch,
        Err(mut e) => {
            errors.append(&mut e);
            return Err(errors);
        }
    };

    // The configuration as the binary resolves it.
    let settings = match launch.settings(&[]) {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("the binary refuses this configuration: {e}"));
            return Err(errors);
        }
    };
    let listen = *settings.server.grpc_addr;
    if !listen.ip().is_unspecified() {
        errors.push(format!(
            "server.grpc_addr is {listen}: the kubelet and the Services reach the pod IP, \
             so it must listen on all addresses (0.0.0.0 or [::])"
        ));
    }
    if let Some(port) = grpc_port
        && port != i64::from(listen.port())
    {
        errors.push(format!(
            "the container port {GRPC_PORT:?} is {port}, but the binary listens on {listen}"
        ));
    }
    for probe in &pod.probes {
        if probe.port != i64::from(listen.port()) {
            errors.push(format!(
                "{} targets port {}, but the binary serves gRPC on {}",
                probe.kind,
                probe.port,
                listen.port()
            ));
        }
        if !pod.has_port_number(probe.port) {
            errors.push(format!(
                "{} targets port {}, which the container does not declare",
                probe.kind, probe.port
            ));
        }
    }
    match launch.metrics_addr() {
        Ok(addr) => {
            if pod.port(METRICS_PORT) != Some(i64::from(addr.port())) {
                errors.push(format!(
                    "the container port {METRICS_PORT:?} is {:?}, but metrics.addr is {addr}",
                    pod.port(METRICS_PORT)
                ));
            }
        }
        Err(e) => errors.push(e),
    }
    if settings.log.format != LogFormat::Json {
        errors
            .push("log.format must be json: the cluster's log collector parses JSON lines".into());
    }
    let budget = pod.pre_stop_sleep + *settings.server.shutdown_grace;
    if pod.grace <= budget {
        errors.push(format!(
            "terminationGracePeriodSeconds ({:?}) must exceed the preStop sleep ({:?}) plus \
             server.shutdown_grace ({:?})",
            pod.grace, pod.pre_stop_sleep, settings.server.shutdown_grace
        ));
    }
    // Health "" is NOT_SERVING from SIGTERM on: liveness must not count a
    // draining pod as dead before it has had its whole grace.
    for probe in pod.probes.iter().filter(|p| p.kind == "livenessProbe") {
        let to_fail = probe.period * probe.failure_threshold.saturating_sub(1);
        if to_fail <= *settings.server.shutdown_grace {
            errors.push(format!(
                "livenessProbe fails a draining pod after {to_fail:?}, within \
                 server.shutdown_grace ({:?}): raise periodSeconds × (failureThreshold − 1)",
                settings.server.shutdown_grace
            ));
        }
    }
    super::memory::memory_agrees(pod.container, &settings, &mut errors);
    let upstream_port = (!settings.sandbox.enabled)
        .then(|| settings.upstream.base_url.port_or_known_default())
        .flatten();
    let trace_endpoint = settings
        .trace
        .otlp_endpoint
        .as_ref()
        .map(|e| e.as_str().to_owned());
    let trace_port = trace_endpoint.as_deref().and_then(|e| {
        reqwest::Url::parse(e)
            .ok()
            .and_then(|u| u.port_or_known_default())
    });
    network_policy_agrees(m, &pod, upstream_port, trace_port, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    // Start it: the container's args and env, ports made ephemeral.
    let tokens_file = tokens_file(&settings);
    let started = Instant::now();
    let mut process = Process::spawn(launch.command(listen.ip()));
    let serving = process
        .try_wait_for_log("announcing the address", START_TIMEOUT, |v| {
            v["message"] == SERVING_MESSAGE
        })
        .map_err(|e| vec![format!("the binary did not start serving: {e}")])?;
    let startup_time = started.elapsed();
    let ephemeral: SocketAddr = serving["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| vec![format!("serving line without IP:port addr: {serving}")])?;
    let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ephemeral.port());

    let mut report = Report {
        sandbox: settings.sandbox.enabled,
        upstream: settings.upstream.base_url.to_string(),
        configured_grpc_port: listen.port(),
        ephemeral_grpc_port: ephemeral.port(),
        probes: Vec::new(),
        startup_time,
        shutdown_time: Duration::ZERO,
        metrics_scrape: None,
        tokens_file: tokens_file.clone(),
        calls: Vec::new(),
        trace_endpoint: trace_endpoint.clone(),
        env: launch.env.clone(),
    };
    // Export on: the binary says so, naming the endpoint (it connects
    // lazily, so it serves without a collector).
    if let Some(endpoint) = &trace_endpoint {
        let exporting = process
            .json_logs()
            .into_iter()
            .find(|v| v["message"] == EXPORTING_SPANS_MESSAGE);
        match exporting {
            Some(line) if line["endpoint"] == endpoint.as_str() => {}
            Some(line) => errors.push(format!(
                "trace.otlp_endpoint is {endpoint}, but the binary exports spans to {}",
                line["endpoint"]
            )),
            None => errors.push(format!(
                "trace.otlp_endpoint is {endpoint}, but the binary logged no \
                 {EXPORTING_SPANS_MESSAGE:?} line before serving"
            )),
        }
    }
    // Not required (the probes are gRPC only), but when the binary announces
    // a metrics listener, the scrape path the pod advertises must answer.
    if let Some(addr) = serving["metrics_addr"]
        .as_str()
        .and_then(|a| a.parse::<SocketAddr>().ok())
    {
        let path = m.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
            ["prometheus.io/path"]
            .as_str()
            .unwrap_or("/metrics")
            .to_owned();
        let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
        #[expect(
            clippy::disallowed_methods,
            reason = "a multi-thread test runtime, around the synchronous process harness"
        )]
        match tokio::task::block_in_place(|| http_status(target, &path)) {
            Ok(200) => {
                report.metrics_scrape = Some(format!("GET {path} on {target}: 200"));
            }
            Ok(status) => errors.push(format!("GET {path} on the metrics port answered {status}")),
            Err(e) => errors.push(format!("GET {path} on the metrics port failed: {e}")),
        }
    }
    // Kubelet order: startup first; liveness and readiness once it passed.
    for probe in &pod.probes {
        if probe.kind == "startupProbe" {
            let allowed = probe.initial_delay + probe.period * probe.failure_threshold;
            if startup_time > allowed {
                errors.push(format!(
                    "the binary took {startup_time:?} to serve, more than the startupProbe \
                     allows ({allowed:?})"
                ));
            }
        }
        match run_probe(probe, target).await {
            Ok(()) => report.probes.push(format!(
                "{} port {}→{} service {:?}: SERVING",
                probe.kind,
                probe.port,
                target.port(),
                probe.service
            )),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty()
        && let Err(e) = auth_agrees(target, tokens_file.as_deref(), &mut report.calls).await
    {
        errors.push(e);
    }
    if !errors.is_empty() {
        errors.push(process.output());
        return Err(errors);
    }

    // Stop it as the kubelet does (preStop sleep, then SIGTERM): readiness
    // must fail soon, and the exit (0) must fit the rest of the grace period.
    let readiness = pod.probes.iter().find(|p| p.kind == "readinessProbe");
    process.sigterm();
    let sigterm_at = Instant::now();
    if let Some(readiness) = readiness {
        let mut unready = false;
        while sigterm_at.elapsed() < UNREADY_TIMEOUT {
            if grpc_probe(target, &readiness.service, readiness.timeout)
                .await
                .is_err()
            {
                unready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !unready {
            errors.push(format!(
                "readinessProbe still passes {UNREADY_TIMEOUT:?} after SIGTERM"
            ));
        }
    }
    let left = pod.grace.saturating_sub(pod.pre_stop_sleep);
    #[expect(
        clippy::disallowed_methods,
        reason = "a multi-thread test runtime, around the synchronous process harness"
    )]
    let exit = tokio::task::block_in_place(|| process.try_wait_exit(left));
    report.shutdown_time = sigterm_at.elapsed();
    match exit {
        Some(status) if status.success() => {}
        Some(status) => errors.push(format!("exit after SIGTERM was {status}, not 0")),
        None => errors.push(format!(
            "no exit within {left:?} of SIGTERM (terminationGracePeriodSeconds minus preStop): \
             the kubelet would SIGKILL it"
        )),
    }
    if !errors.is_empty() {
        errors.push(process.output());
        return Err(errors);
    }
    Ok(report)
}

#[test]
fn rewrite_maps_mount_paths_only_where_a_path_starts() {
    let mounts = vec!["/var/run/secrets/x".to_owned(), "/etc/app".to_owned()];
    let r = |s: &str| rewrite(s, &mounts, "/tmp/R");
    assert_eq!(r("/etc/app/config.toml"), "/tmp/R/etc/app/config.toml");
    assert_eq!(r("/etc/app"), "/tmp/R/etc/app");
    assert_eq!(
        r("file = \"/var/run/secrets/x/key\""),
        "file = \"/tmp/R/var/run/secrets/x/key\""
    );
    assert_eq!(r("--config=/etc/app/c"), "--config=/tmp/R/etc/app/c");
    assert_eq!(r("/etc/application"), "/etc/application");
    assert_eq!(r("x/etc/app"), "x/etc/app");
    assert_eq!(r("https://api.example.com"), "https://api.example.com");
}

#[test]
fn expand_follows_the_kubelet() {
    let defined: BTreeMap<String, String> = [("A", "a"), ("B", "b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let e = |s: &str| expand(s, &defined);
    assert_eq!(e("x=$(A),y=$(B)"), ("x=a,y=b".to_owned(), vec![]));
    assert_eq!(e("$$(A) $$ $x $"), ("$(A) $ $x $".to_owned(), vec![]));
    assert_eq!(e("$(C)-$(A)"), ("$(C)-a".to_owned(), vec!["C".to_owned()]));
    assert_eq!(e("$(A"), ("$(A".to_owned(), vec![]));
    assert_eq!(e("plain"), ("plain".to_owned(), vec![]));
}
