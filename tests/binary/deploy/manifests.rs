//! Rendering the Kustomize overlays with the real `kubectl`, offline, into
//! JSON objects, and looking objects up in the rendering.
//!
//! There is no YAML crate here: `kubectl kustomize` renders YAML, and
//! `kubectl patch --local` with an empty merge patch turns it into JSON
//! unchanged (`--local` never contacts a cluster).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

/// The repository root (this crate's manifest directory).
pub(super) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$KUBECTL`, else `kubectl` on `PATH`; panics with a clear message when
/// neither runs (never skips: the agreement must be checked).
fn kubectl() -> PathBuf {
    let candidate = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let works = Command::new(&candidate)
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "kubectl is not runnable (tried {}): it renders deploy/overlays/*; install it \
         (it is on the build machine as /usr/bin/kubectl) or point KUBECTL at one",
        candidate.display()
    );
    candidate
}

/// Runs kubectl with `args` and `stdin`, returning stdout; panics on failure.
fn run_kubectl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(kubectl())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl {args:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    // Feed stdin from a thread so a large output cannot deadlock the pipes.
    let feeder = std::thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("wait for kubectl");
    feeder
        .join()
        .expect("stdin feeder")
        .expect("write kubectl stdin");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The objects of one rendered overlay.
#[derive(Debug, Clone)]
pub(super) struct Manifests {
    pub overlay: String,
    pub objects: Vec<Value>,
}

impl Manifests {
    /// Renders `deploy/overlays/<overlay>` exactly as `kubectl apply -k` would.
    pub(super) fn render(overlay: &str) -> Self {
        Self::render_dir(&format!("overlays/{overlay}"))
    }

    /// Renders `deploy/<dir>` (an overlay, or `base`).
    pub(super) fn render_dir(dir: &str) -> Self {
        let overlay = dir.strip_prefix("overlays/").unwrap_or(dir);
        let dir = repo_root().join("deploy").join(dir);
        let dir = dir.to_str().expect("UTF-8 path");
        let yaml = run_kubectl(&["kustomize", dir], b"");
        let json = run_kubectl(
            &[
                "patch", "--local", "-f", "-", "-o", "json", "--type", "merge", "-p", "{}",
            ],
            &yaml,
        );
        let objects = serde_json::Deserializer::from_slice(&json)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("kubectl printed something that is not JSON: {e}"));
        assert!(!objects.is_empty(), "{dir} rendered no objects");
        Self {
            overlay: overlay.to_owned(),
            objects,
        }
    }

    /// Every object of `kind`.
    pub(super) fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// The object of `kind` named `name`, if rendered.
    pub(super) fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The one object of `kind`; panics unless there is exactly one.
    pub(super) fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(
            all.len(),
            1,
            "deploy/overlays/{} must render exactly one {kind}",
            self.overlay
        );
        all[0]
    }

    /// The one object of `kind`, to change it (negative tests).
    pub(super) fn one_mut(&mut self, kind: &str) -> &mut Value {
        let mut all: Vec<_> = self
            .objects
            .iter_mut()
            .filter(|o| o["kind"] == kind)
            .collect();
        assert_eq!(all.len(), 1, "exactly one {kind} expected");
        all.pop().expect("one")
    }

    /// The object of `kind` that Kustomize generated as `name` (its name is
    /// `name` plus a content-hash suffix, or `name` itself).
    pub(super) fn generated(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && is_generated_name(&o["metadata"]["name"], name))
    }

    /// [`Self::generated`], to change it (the tests' own tokens).
    pub(super) fn generated_mut(&mut self, kind: &str, name: &str) -> Option<&mut Value> {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == kind && is_generated_name(&o["metadata"]["name"], name))
    }
}

/// Whether `actual` is `name` or `name-<hash>` (a Kustomize generator's
/// suffix: ten lowercase letters and digits).
pub(super) fn is_generated_name(actual: &Value, name: &str) -> bool {
    let Some(actual) = actual.as_str() else {
        return false;
    };
    actual == name
        || actual
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| {
                hash.len() == 10
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
}

/// Encodes standard base64 with padding (Secret `data`).
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(acc >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (Secret `data`), padding optional. Line breaks
/// are skipped, as Go's decoder (the API server's) skips them: Kustomize
/// wraps a long value (a generated Secret from a file) in lines.
pub(super) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text: String = text.chars().filter(|&c| c != '\n' && c != '\r').collect();
    let text = text.as_str();
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        if chunk.len() == 1 {
            return Err("truncated base64".into());
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| format!("not base64: byte {c:#04x}"))?;
            acc |= v << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// The Dockerfile facts the manifests depend on.
#[derive(Debug, Default)]
pub(super) struct Dockerfile {
    /// `EXPOSE` ports.
    pub exposed: Vec<u16>,
    /// `ENTRYPOINT` in exec form.
    pub entrypoint: Vec<String>,
    /// Numeric uid of the last `USER`.
    pub uid: Option<i64>,
}

impl Dockerfile {
    /// Reads `deploy/Dockerfile` (its final stage is what runs).
    pub(super) fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut facts = Self::default();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("EXPOSE ") {
                facts.exposed.extend(rest.split_whitespace().map(|p| {
                    p.trim_end_matches("/tcp")
                        .parse::<u16>()
                        .unwrap_or_else(|_| panic!("EXPOSE {p}: not a port"))
                }));
            } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
                facts.entrypoint = serde_json::from_str(rest)
                    .unwrap_or_else(|_| panic!("ENTRYPOINT must be in exec (JSON) form: {rest}"));
            } else if line.starts_with("FROM ") {
                // A new stage: only the last stage's facts count.
                facts = Self::default();
            } else if let Some(rest) = line.strip_prefix("USER ") {
                let user = rest.split(':').next().unwrap_or_default();
                facts.uid = user.parse().ok();
            }
        }
        facts
    }
}

#[test]
fn base64_encodes_what_it_decodes() {
    for text in [
        &b""[..],
        b"a",
        b"ab",
        b"abc",
        b"abcd",
        b"PLACEHOLDER\n\xff\x00",
    ] {
        let encoded = base64_encode(text);
        assert_eq!(encoded.len() % 4, 0, "{encoded}");
        assert_eq!(base64_decode(&encoded).unwrap(), text, "{encoded}");
    }
    assert_eq!(base64_encode(b"PLACEHOLDER"), "UExBQ0VIT0xERVI=");
}

#[test]
fn generated_names_carry_a_hash_suffix_or_none() {
    let name = |s: &str| Value::String(s.to_owned());
    assert!(is_generated_name(
        &name("ktp-gateway-tokens-bm65746642"),
        "ktp-gateway-tokens"
    ));
    assert!(is_generated_name(
        &name("ktp-gateway-tokens"),
        "ktp-gateway-tokens"
    ));
    assert!(!is_generated_name(
        &name("ktp-gateway-tokens-x"),
        "ktp-gateway-tokens"
    ));
    assert!(!is_generated_name(
        &name("ktp-gateway-upstream-bm65746642"),
        "ktp-gateway-tokens"
    ));
    assert!(!is_generated_name(
        &name("ktp-gateway-bm65746642"),
        "ktp-gateway-tokens"
    ));
}

#[test]
fn base64_decodes_padded_and_unpadded() {
    assert_eq!(base64_decode("UExBQ0VIT0xERVI=").unwrap(), b"PLACEHOLDER");
    assert_eq!(base64_decode("YWI").unwrap(), b"ab");
    assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert_eq!(
        base64_decode("UExBQ0\nVIT0xE\r\nRVI=\n").unwrap(),
        b"PLACEHOLDER"
    );
    assert!(base64_decode("a").is_err());
    assert!(base64_decode("a*bc").is_err());
}
