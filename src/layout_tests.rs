//! The crate's shape, checked from its sources: no file over 400 lines, no
//! import cycle between top-level modules, no tonic in the domain modules,
//! and the layout maps (crate doc, README) naming every module.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

const MAX_LINES: usize = 400;
/// Modules that model the domain and must not know the transport.
const TONIC_FREE: &[&str] = &["config", "error", "resilience", "upstream", "trace"];

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
fn modules() -> Vec<(String, String)> {
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

/// The top-level modules a file names through `crate::…`, including every
/// item of a `crate::{a::…, b, …}` group.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at brace depth zero of the group.
            let (mut depth, mut item_start) = (0usize, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.insert(ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m.chars().next().is_some_and(char::is_lowercase));
    found
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
fn top_level_modules_import_each_other_without_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in modules() {
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(crate_references(&text).into_iter().filter(|m| *m != module));
    }
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {:?}",
            cycle.unwrap_or_default()
        );
    }
}

#[test]
fn the_reference_scanner_sees_grouped_and_nested_imports() {
    let found = crate_references(
        "use crate::{\n    config::{A, B},\n    metrics::Metrics, proto,\n};\nlet x = crate::upstream::f();",
    );
    let want: BTreeSet<String> = ["config", "metrics", "proto", "upstream"]
        .map(String::from)
        .into();
    assert_eq!(found, want);
}

#[test]
fn domain_modules_know_nothing_of_tonic() {
    for (module, text) in modules() {
        if TONIC_FREE.contains(&module.as_str()) {
            assert!(!text.contains("tonic"), "{module} mentions tonic");
        }
    }
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
