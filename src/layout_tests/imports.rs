//! The direction of every import between top-level modules, against a
//! table of allowed edges: the domain never reaches a protocol edge or the
//! wiring, the edges never reach each other, and nothing forms a cycle.

use std::collections::{BTreeMap, BTreeSet};

use super::modules;

/// Modules that model the domain and must not know the transport.
const TONIC_FREE: &[&str] = &["config", "error", "resilience", "upstream", "trace"];

/// The protocol edges: adapters of the use cases, each to its protocol.
const EDGES: &[&str] = &["grpc", "connect"];
/// The wiring: it alone may know every module.
const WIRING: &[&str] = &["server"];

/// Every top-level module and the modules it may import (`crate::…`, in
/// code or tests). A new import is a decision: add it here, or don't.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("image", &[]),
    ("metrics", &[]),
    ("nik", &[]),
    ("proto", &[]),
    ("reference_id", &[]),
    ("trace", &[]),
    // The domain, and what it needs of the platform.
    ("fields", &["proto"]),
    ("security", &["fields"]),
    ("config", &["security"]),
    ("resilience", &["config", "metrics", "trace"]),
    (
        "upstream",
        &[
            "config",
            "image",
            "metrics",
            "reference_id",
            "resilience",
            "trace",
        ],
    ),
    ("error", &["image", "reference_id", "security", "upstream"]),
    (
        "convert",
        &[
            "fields",
            "image",
            "nik",
            "proto",
            "reference_id",
            "upstream",
        ],
    ),
    ("sandbox", &["config", "upstream"]),
    ("telemetry", &["config", "metrics", "trace"]),
    // The error table, the call path every protocol shares, the use cases.
    (
        "status",
        &[
            "error",
            "fields",
            "image",
            "proto",
            "reference_id",
            "resilience",
            "security",
            "upstream",
        ],
    ),
    (
        "call",
        &[
            "error",
            "metrics",
            "proto",
            "resilience",
            "security",
            "status",
            "telemetry",
            "trace",
            "upstream",
        ],
    ),
    (
        "usecase",
        &[
            "call",
            "convert",
            "error",
            "fields",
            "image",
            "proto",
            "reference_id",
            "resilience",
            "upstream",
        ],
    ),
    // The edges (grpc's tests build the use cases from settings).
    (
        "grpc",
        &[
            "call",
            "config",
            "metrics",
            "proto",
            "resilience",
            "upstream",
            "usecase",
        ],
    ),
    (
        "connect",
        &["call", "error", "fields", "proto", "status", "usecase"],
    ),
    // The wiring.
    (
        "server",
        &[
            "call",
            "config",
            "connect",
            "grpc",
            "metrics",
            "proto",
            "resilience",
            "sandbox",
            "security",
            "telemetry",
            "trace",
            "upstream",
            "usecase",
        ],
    ),
];

fn allowed(module: &str) -> Option<&'static [&'static str]> {
    ALLOWED.iter().find(|(m, _)| *m == module).map(|(_, a)| *a)
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
fn every_import_is_an_allowed_edge() {
    let mut unlisted = BTreeSet::new();
    let mut disallowed = BTreeSet::new();
    for (module, text) in modules() {
        let Some(may) = allowed(&module) else {
            unlisted.insert(module);
            continue;
        };
        for used in crate_references(&text) {
            if used != module && !may.contains(&used.as_str()) {
                disallowed.insert(format!("{module} -> {used}"));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "modules without a row in ALLOWED: {unlisted:?}"
    );
    assert!(
        disallowed.is_empty(),
        "imports not in ALLOWED: {disallowed:?}"
    );
}

#[test]
fn the_table_keeps_the_domain_off_the_edges_and_the_edges_apart() {
    let table: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    assert_eq!(table.len(), ALLOWED.len(), "a module has two rows");
    for (module, may) in &table {
        for target in *may {
            assert!(
                table.contains_key(target),
                "{module} -> {target}: no such module"
            );
            assert!(
                !WIRING.contains(target),
                "{module} -> {target}: only main knows the wiring"
            );
            if !WIRING.contains(module) {
                assert!(
                    !EDGES.contains(target),
                    "{module} -> {target}: an edge is reached only by the wiring"
                );
            }
        }
    }
}
