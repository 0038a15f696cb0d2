//! The README's configuration table is the list of settings: each row's key
//! loads from its environment variable and from a file and takes effect, its
//! default is the built-in one, and every setting the code declares (read
//! from the declarations, by serialising the defaults) has a row.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{CREDS, env};
use crate::config::{Settings, Sources, env_name};

const README: &str = include_str!("../../../README.md");

/// One row of the table: key, default and environment variable columns.
struct Row {
    key: String,
    default: String,
    env: String,
}

fn rows() -> Vec<Row> {
    let section = README
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<Row> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let unquote = |c: &str| c.trim_matches('`').to_owned();
            Row {
                key: unquote(cells[1]),
                default: unquote(cells[2]),
                env: unquote(cells[3]),
            }
        })
        .collect();
    assert!(rows.len() > 10, "no configuration table found");
    rows
}

/// Dotted key → value of every leaf of `v`.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(fields) => {
            for (name, v) in fields {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

fn flat(settings: &Settings) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(settings).unwrap(), &mut out);
    out
}

/// Readable files for the keys that name one.
struct Files {
    _dir: tempfile::TempDir,
    /// A real certificate and its key: the TLS files are parsed at load.
    cert: String,
    key: String,
    /// A real CA certificate: `upstream.ca_file` is parsed at load.
    ca: String,
    tokens: String,
    app_id: String,
    api_key: String,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Self {
            cert: write("cert.pem", &cert.pem()),
            key: write("key.pem", &key.serialize_pem()),
            ca: write("ca.pem", &test_ca_pem()),
            tokens: write("tokens", "# accepted\ntoken-1\n"),
            app_id: write("app-id", "file-app-id\n"),
            api_key: write("api-key", "file-api-key\n"),
            _dir: dir,
        }
    }
}

/// A self-signed CA certificate, PEM.
fn test_ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem()
}

/// A valid value other than the default for `key`, and settings it needs
/// beside it. Derived from the default where the type allows.
fn sample(key: &str, default: &Value, files: &Files) -> (Value, Vec<(String, String)>) {
    let tls = |k: &str, path: &str| (env_name(&format!("server.tls.{k}")), path.to_owned());
    let s = |v: &str| Value::String(v.to_owned());
    match key {
        "upstream.base_url" => (s("http://127.0.0.1:8080/"), vec![]),
        "upstream.reference_id_in" => (s("query"), vec![]),
        "log.format" => (s("text"), vec![]),
        "log.filter" => (s("debug,ktp_gateway=trace"), vec![]),
        "upstream.app_id" => (s("sample-app-id"), vec![]),
        "upstream.api_key" => (s("sample-api-key"), vec![]),
        "upstream.app_id_file" => (s(&files.app_id), vec![]),
        "upstream.api_key_file" => (s(&files.api_key), vec![]),
        "auth.tokens_file" => (s(&files.tokens), vec![]),
        "upstream.ca_file" => (s(&files.ca), vec![]),
        "server.max_in_flight" => (Value::from(100), vec![]),
        "wait.max_waiting" => (Value::from(3000), vec![]),
        "wait.first_poll" => (Value::from("2s 500ms"), vec![]),
        "trace.otlp_endpoint" => (s("http://127.0.0.1:4317"), vec![]),
        "server.cors_allowed_origins" => (
            Value::from(vec!["https://console.example.com", "http://localhost:5173"]),
            vec![],
        ),
        "server.tls.cert_file" => (s(&files.cert), vec![tls("key_file", &files.key)]),
        "server.tls.key_file" => (s(&files.key), vec![tls("cert_file", &files.cert)]),
        "server.tls.client_ca_file" => (
            s(&files.ca),
            vec![tls("cert_file", &files.cert), tls("key_file", &files.key)],
        ),
        _ => (derived(key, default), vec![]),
    }
}

fn derived(key: &str, default: &Value) -> Value {
    match default {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) if n.is_u64() => Value::from(n.as_u64().unwrap() + 1),
        Value::Number(n) => Value::from(n.as_f64().unwrap() / 2.0),
        Value::String(text) => {
            if let Ok(d) = humantime_serde::deserialize::<Duration, _>(default) {
                humantime_serde::serialize(&(d * 2), serde_json::value::Serializer).unwrap()
            } else if let Ok(mut addr) = text.parse::<std::net::SocketAddr>() {
                addr.set_port(addr.port() + 1);
                Value::String(addr.to_string())
            } else {
                panic!("{key}: add a sample value for {default}")
            }
        }
        other => panic!("{key}: add a sample value for {other}"),
    }
}

fn as_env(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // A list setting's variable holds its items comma-separated.
        Value::Array(items) => items.iter().map(as_env).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A TOML file setting `key` to `v` (JSON quoting is valid TOML for these).
fn toml_file(dir: &Path, key: &str, v: &Value) -> std::path::PathBuf {
    let text = match key.rsplit_once('.') {
        Some((table, name)) => format!("[{table}]\n{name} = {v}\n"),
        None => format!("{key} = {v}\n"),
    };
    let path = dir.join("settings.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Loaded with `key` set to `v`, and what `key` then holds.
fn effect(settings: &Settings, key: &str) -> Value {
    let secret = |s: &dyn ExposeSecret<str>| Value::String(s.expose_secret().to_owned());
    match key {
        "upstream.app_id" => secret(&settings.upstream.app_id),
        "upstream.api_key" => secret(&settings.upstream.api_key),
        _ => flat(settings)[key].clone(),
    }
}

fn default_matches(cell: &str, v: &Value) -> bool {
    match v {
        Value::Null => cell.starts_with('–'),
        Value::Array(items) => items.is_empty() && cell.starts_with('–'),
        Value::String(s) => {
            let duration = |t: &str| humantime_serde::deserialize::<Duration, _>(Value::from(t));
            s == cell
                || s.strip_suffix('/') == Some(cell)
                || duration(s).is_ok_and(|d| duration(cell).is_ok_and(|c| c == d))
        }
        Value::Number(n) => cell.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => cell == b.to_string(),
        _ => false,
    }
}

#[test]
fn every_row_loads_from_env_and_file_and_takes_effect() {
    let files = Files::new();
    let defaults = flat(&Settings::default());
    for row in rows() {
        let key = row.key.as_str();
        assert_eq!(row.env, env_name(key), "env var column of {key}");
        let default = defaults
            .get(key)
            .unwrap_or_else(|| panic!("README row {key} is no setting"));
        assert!(
            default_matches(&row.default, default),
            "{key}: README default {:?}, built-in {default}",
            row.default
        );
        let (value, mut vars) = sample(key, default, &files);
        assert_ne!(&value, default, "{key}: sample must not be the default");
        // Credentials unless the key sets one of them itself.
        let value_key = key.strip_suffix("_file").unwrap_or(key);
        vars.extend(
            CREDS
                .iter()
                .filter(|(var, _)| *var != env_name(value_key))
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let pairs = |extra: Option<(String, String)>| {
            let mut all = vars.clone();
            all.extend(extra);
            env(&all
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>())
        };

        let from_env = Settings::load(Sources {
            env: pairs(Some((row.env.clone(), as_env(&value)))),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{key} from env: {e}"));
        assert_eq!(effect(&from_env, key), value, "{key} from env");

        let dir = tempfile::tempdir().unwrap();
        let from_file = Settings::load(Sources {
            file: Some(toml_file(dir.path(), key, &value)),
            env: pairs(None),
            sandbox: false,
        })
        .unwrap_or_else(|e| panic!("{key} from a file: {e}"));
        assert_eq!(effect(&from_file, key), value, "{key} from a file");
    }
}

#[test]
fn secrets_from_their_files_take_effect() {
    let files = Files::new();
    let s = Settings::load(Sources {
        env: env(&[
            (&env_name("upstream.app_id_file"), &files.app_id),
            (&env_name("upstream.api_key_file"), &files.api_key),
            CREDS[2],
        ]),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.upstream.app_id.expose_secret(), "file-app-id");
    assert_eq!(s.upstream.api_key.expose_secret(), "file-api-key");
}

#[test]
fn every_setting_the_code_declares_has_a_row() {
    let documented: BTreeSet<String> = rows().into_iter().map(|r| r.key).collect();
    let declared: BTreeSet<String> = flat(&Settings::default()).into_keys().collect();
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "settings without a README row: {undocumented:?}; README rows that are no setting: {unknown:?}"
    );
}

#[test]
fn the_defaults_pass_their_own_checks() {
    // Serialised and loaded back through every setting's check.
    let defaults = flat(&Settings::default());
    let dir = tempfile::tempdir().unwrap();
    let mut tables: BTreeMap<&str, String> = BTreeMap::new();
    for (key, v) in defaults.iter().filter(|(_, v)| !v.is_null()) {
        let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
        let lines = tables.entry(table).or_default();
        lines.push_str(&format!("{name} = {v}\n"));
    }
    let text: String = tables
        .iter()
        .map(|(table, lines)| match *table {
            "" => lines.clone(),
            _ => format!("[{table}]\n{lines}"),
        })
        .collect();
    let path = dir.path().join("defaults.toml");
    std::fs::write(&path, &text).unwrap();
    let loaded = Settings::load(Sources {
        file: Some(path),
        env: env(&CREDS),
        sandbox: false,
    })
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut expected = defaults;
    // The one value CREDS sets that is not a default: the auth opt-out.
    expected.insert("auth.allow_unauthenticated".to_owned(), true.into());
    assert_eq!(flat(&loaded), expected);
}
