//! The crate's shape, checked from its sources: no file over 400 lines, no
//! import cycle between top-level modules, no tonic in the domain modules,
//! the layout maps (crate doc, README) naming every module and naming no
//! path that does not exist, and the test command running every test binary.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

mod imports;

const MAX_LINES: usize = 400;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(top-level module, file text)` for every file of the library.
pub(super) fn modules() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src()).ok()?.to_path_buf();
            let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
            let module = first.trim_end_matches(".rs").to_owned();
            if matches!(module.as_str(), "lib" | "main" | "layout_tests") {
                return None;
            }
            let text = fs::read_to_string(&path).expect("readable source");
            // Code only: a doc link is not an import.
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            Some((module, code.join("\n")))
        })
        .collect()
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<_> = files
        .iter()
        .map(|p| (p, fs::read_to_string(p).expect("readable").lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_layout_maps_name_every_module() {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let readme = fs::read_to_string(src().join("../README.md")).expect("README.md");
    let top: BTreeSet<String> = modules().into_iter().map(|(m, _)| m).collect();
    for module in &top {
        assert!(
            lib.contains(&format!("[`{module}`]")),
            "crate doc layout misses {module}"
        );
        let file = format!("src/{module}.rs");
        let dir = format!("src/{module}/");
        assert!(
            readme.contains(&file) || readme.contains(&dir),
            "README layout misses {module}"
        );
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A word that names a file or folder: `src/grpc/`, `call/layer.rs`,
/// `Cargo.toml`. Not `/metrics`, `JPEG/PNG`, `SIGTERM/SIGINT`, `HTTP/1.1`
/// or `google.type.Date`.
fn path_like(word: &str) -> bool {
    const EXTENSIONS: &[&str] = &[".rs", ".toml", ".proto", ".md", ".yaml", ".json", ".sh"];
    let segments_ok = word.split('/').enumerate().all(|(i, seg)| {
        // Only the last segment may be empty (a folder's trailing slash).
        (!seg.is_empty() || i == word.split('/').count() - 1)
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    let named = word.ends_with('/') || EXTENSIONS.iter().any(|e| word.ends_with(e));
    !word.starts_with('/') && word.len() > 1 && segments_ok && named
}

/// The words of `text` that name paths, stripped of the punctuation around them.
fn path_words(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| "()[],;:`'\"".contains(c)))
        .filter(|w| path_like(w))
        .collect()
}

/// The README's layout block: its lines, from `## Layout` to the end of its
/// first code block.
fn readme_layout(readme: &str) -> Vec<&str> {
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a ## Layout section");
    section
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect()
}

/// Every path the layout block names, as `(path it resolves to, the name as
/// written, the entry it was named under)`. An entry is the first column of
/// a line (one path, or several separated by `, `); a continuation line,
/// indented, belongs to the entry above. A path in an entry's description
/// is relative to the entry's folder (`src/grpc/` … `call/layer.rs`), or
/// else to the repository's root.
fn layout_paths(layout: &[&str]) -> Vec<(Vec<PathBuf>, String, String)> {
    let root = root();
    let mut out = Vec::new();
    let mut base = root.clone();
    let mut entry = String::new();
    for line in layout {
        let description = if line.starts_with(char::is_whitespace) {
            *line
        } else {
            let (first, rest) = line.split_once("  ").unwrap_or((line, ""));
            entry = first.trim().to_owned();
            let entries: Vec<&str> = entry.split(", ").map(str::trim).collect();
            for e in &entries {
                out.push((vec![root.join(e)], (*e).to_owned(), entry.clone()));
            }
            base = match entries.first() {
                Some(e) if e.ends_with('/') => root.join(e),
                Some(e) => root
                    .join(e)
                    .parent()
                    .map_or(root.clone(), Path::to_path_buf),
                None => root.clone(),
            };
            rest
        };
        for word in path_words(description) {
            out.push((
                vec![base.join(word), root.join(word)],
                word.to_owned(),
                entry.clone(),
            ));
        }
    }
    out
}

fn missing_layout_paths(readme: &str) -> Vec<String> {
    layout_paths(&readme_layout(readme))
        .into_iter()
        .filter(|(candidates, _, _)| !candidates.iter().any(|p| p.exists()))
        .map(|(_, word, entry)| format!("{word} (under {entry})"))
        .collect()
}

#[test]
fn every_path_the_readme_layout_names_exists() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let named = layout_paths(&readme_layout(&readme));
    assert!(
        named.len() > 40,
        "the layout block was not found: {named:?}"
    );
    let missing = missing_layout_paths(&readme);
    assert!(
        missing.is_empty(),
        "the README layout names paths that do not exist: {missing:?}"
    );
}

#[test]
fn every_path_the_crate_doc_names_exists() {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&str> = path_words(&doc)
        .into_iter()
        .filter(|w| !root().join(w).exists() && !src().join(w).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the crate doc names paths that do not exist: {missing:?}"
    );
}

#[test]
fn the_path_scanner_reads_entries_descriptions_and_not_prose() {
    let layout = [
        "src/call/                  the call path: layer.rs (admission), gone.rs, protocol.rs",
        "                           more: auth.rs; SIGTERM/SIGINT, JPEG/PNG, /metrics, HTTP/1.1",
        "examples/python, examples/node   clients; `Cargo.toml`, grpc.health.v1",
    ];
    let words: Vec<(String, String)> = layout_paths(&layout)
        .into_iter()
        .map(|(_, w, e)| (w, e))
        .collect();
    let names: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        names,
        [
            "src/call/",
            "layer.rs",
            "gone.rs",
            "protocol.rs",
            "auth.rs",
            "examples/python",
            "examples/node",
            "Cargo.toml"
        ]
    );
    let readme = format!("x\n## Layout\n\n```\n{}\n```\n", layout.join("\n"));
    assert_eq!(missing_layout_paths(&readme), ["gone.rs (under src/call/)"]);
}

/// `scripts/test` runs every test binary and reports every failure (cargo's
/// `--no-fail-fast`: by default cargo stops at the first failing binary and
/// skips the rest, the testkit's and the doc-tests among them), passes its
/// arguments on, and still exits non-zero when a test failed. `cargo`,
/// `grpcurl` and `promtool` are stand-ins here, so the suite does not run
/// itself.
#[test]
fn the_test_command_runs_every_test_binary_and_fails_when_one_fails() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let stand_in = |name: &str, body: &str| {
        let path = dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write a stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let grpcurl = stand_in("grpcurl", "echo 'grpcurl v1.8.6' >&2");
    stand_in("promtool", "echo 'promtool, version 0.0.0'");
    stand_in("cargo", "echo \"cargo $*\"; exit 101");
    let path = std::env::join_paths(std::iter::once(dir.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let out = std::process::Command::new("bash")
        .arg(root().join("scripts/test"))
        .arg("--test")
        .arg("props")
        .env("PATH", path)
        .env("GRPCURL", grpcurl)
        .env_remove("PROMTOOL")
        .output()
        .expect("bash runs scripts/test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ran = stdout
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .unwrap_or_else(|| {
            panic!(
                "cargo test never ran: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let args: Vec<&str> = ran.split_whitespace().collect();
    assert!(args.contains(&"--no-fail-fast"), "{ran}");
    assert!(ran.ends_with("--test props"), "arguments passed on: {ran}");
    assert_eq!(
        out.status.code(),
        Some(101),
        "a failed test fails the command"
    );
}
