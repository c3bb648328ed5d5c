//! The module layering of `control-plane/src`, read from the source: dependencies point down
//! (api → domains → store traits; the store backends and the settings tree depend on the domains,
//! never the reverse) and no top-level modules import each other in a circle.
//!
//! An import is any `crate::X` path (in `use` or inline) or `super::…::X` reaching the crate root,
//! outside comments and strings, in code that is not test-only: `#[cfg(test)]` items and modules,
//! and the `testing` helpers (`cfg(feature = "testing")`), are left out, because a domain's tests
//! run it against the real backends on purpose. Paths inside attribute strings
//! (`#[serde(with = "crate::seconds")]`) are not read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The domains: they own their records, store traits and settings and know nothing above them.
const DOMAINS: &[&str] = &["telemetry", "presence", "ota", "routing", "ingest", "broker"];
/// What no domain may import.
const ABOVE_THE_DOMAINS: &[&str] = &["store", "api", "settings"];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_cycle_among_top_level_modules() {
    let graph = graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}\n{}", cycle.join(" → "), describe(&graph));
    }
}

#[test]
fn domains_do_not_import_the_store_the_api_or_the_settings() {
    let graph = graph();
    let mut wrong = Vec::new();
    for domain in DOMAINS {
        for target in graph.get(*domain).into_iter().flatten() {
            if ABOVE_THE_DOMAINS.contains(&target.as_str()) {
                wrong.push(format!("{domain} imports crate::{target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), describe(&graph));
}

#[test]
fn ingest_and_presence_do_not_import_the_settings() {
    let graph = graph();
    for domain in ["ingest", "presence"] {
        assert!(
            !graph[domain].contains("settings"),
            "{domain} imports crate::settings: it owns its own settings type, and settings composes it"
        );
    }
}

/// The scan sees what is there, so the tests above cannot pass on an empty graph.
#[test]
fn the_graph_is_read_from_the_source() {
    let graph = graph();
    for module in DOMAINS.iter().chain(ABOVE_THE_DOMAINS) {
        assert!(graph.contains_key(*module), "module {module} not found: {graph:?}");
    }
    for (from, to) in [
        ("settings", "ingest"),
        ("settings", "routing"),
        ("store", "ota"),
        ("store", "telemetry"),
        ("api", "routing"),
        ("ingest", "telemetry"),
    ] {
        assert!(graph[from].contains(to), "expected {from} → {to}\n{}", describe(&graph));
    }
}

// --- the scanner ---------------------------------------------------------------------------------

#[test]
fn scanner_reads_paths_groups_and_super() {
    let text = "use crate::{metrics::Metrics, store::{self, Store}};\n\
                fn f() { crate::telemetry::x(); let s = \"crate::api\"; } // crate::settings\n\
                /* crate::routing */ use super::ota::Ota;\n";
    let found = imports(text, 1);
    assert_eq!(found, set(&["metrics", "store", "telemetry", "ota"]));
    // From a file one level down, `super::` is its own module; two levels reach the root.
    assert_eq!(
        imports("use super::limit; use super::super::audit::X;", 2),
        set(&["audit"])
    );
}

#[test]
fn scanner_leaves_out_test_code() {
    let text = "use crate::metrics::M;\n\
                #[cfg(test)]\nmod tests {\n    use crate::store::testing::x;\n    fn f() { if a { } }\n}\n\
                #[cfg(test)]\n#[allow(clippy::unwrap_used)]\nfn helper() { crate::api::y(); }\n\
                #[cfg(any(test, feature = \"testing\"))]\npub mod testing;\n\
                #[cfg(not(test))]\nuse crate::audit::A;\n\
                fn lifetimes<'a>(c: char) -> bool { c == '{' }\nuse crate::telemetry::T;\n";
    let (code, test_children) = strip_test_code(&strip_comments_and_strings(text));
    assert_eq!(imports_in(&code, 1), set(&["metrics", "audit", "telemetry"]));
    assert_eq!(test_children, ["testing"]);
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level module → the top-level modules its non-test code imports.
fn graph() -> Graph {
    let src = src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let (lib_code, _) = strip_test_code(&strip_comments_and_strings(&lib));
    let modules = declared_modules(&lib_code);
    assert!(modules.len() >= 10, "modules of lib.rs: {modules:?}");
    let mut graph = Graph::new();
    for module in &modules {
        let mut found = BTreeSet::new();
        let mut files = vec![(src.join(format!("{module}.rs")), src.join(module), 1)];
        while let Some((file, dir, depth)) = files.pop() {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let (code, test_children) = strip_test_code(&strip_comments_and_strings(&text));
            found.extend(imports_in(&code, depth));
            for child in declared_modules(&code) {
                if test_children.contains(&child) {
                    continue;
                }
                let flat = dir.join(format!("{child}.rs"));
                let nested = dir.join(&child).join("mod.rs");
                let file = if flat.exists() { flat } else { nested };
                files.push((file, dir.join(&child), depth + 1));
            }
        }
        found.retain(|m| m != module && modules.contains(m));
        graph.insert(module.clone(), found);
    }
    graph
}

fn describe(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(from, to)| format!("  {from} → {}", to.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
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
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// `mod x;` declarations (not inline modules).
fn declared_modules(code: &str) -> Vec<String> {
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ';'))
        .collect();
    words
        .windows(2)
        .filter(|w| w[0] == "mod" && w[1].ends_with(';'))
        .map(|w| w[1].trim_end_matches(';').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

fn imports(text: &str, depth: usize) -> BTreeSet<String> {
    imports_in(&strip_test_code(&strip_comments_and_strings(text)).0, depth)
}

/// Top-level names reached by `crate::` paths, and by `super::` chains at least `depth` long
/// (the depth of the file's module below the crate root).
fn imports_in(code: &str, depth: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !is_ident(bytes[i - 1]);
        let rest = &code[i..];
        let after = if boundary && rest.starts_with("crate::") {
            Some(i + "crate::".len())
        } else if boundary && rest.starts_with("super::") {
            let mut j = i;
            let mut n = 0;
            while code[j..].starts_with("super::") {
                j += "super::".len();
                n += 1;
            }
            if n >= depth { Some(j) } else { None }
        } else {
            None
        };
        match after {
            Some(j) => {
                out.extend(path_heads(&code[j..]));
                i = j;
            }
            None => i += 1,
        }
    }
    out
}

/// `store::X` → `store`; `{a::b, c::{d, e}}` → `a`, `c`.
fn path_heads(text: &str) -> Vec<String> {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut heads = Vec::new();
        let mut depth = 0;
        let mut expect_head = true;
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => expect_head = true,
                c if expect_head && depth == 0 && (c.is_alphabetic() || c == '_') => {
                    let name: String = group[k..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    heads.push(name);
                    expect_head = false;
                }
                _ => {}
            }
        }
        heads
    } else {
        let name: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() { Vec::new() } else { vec![name] }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Comments and the contents of string and char literals become spaces (so `"crate::api"` and
/// `'{'` count for nothing). `cfg` attributes keep their string arguments (`"testing"`).
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while j < chars.len() && chars[j..].iter().take(close.len()).ne(close.iter()) {
                j += 1;
            }
            out.push_str("\"\"");
            i = j + close.len();
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            let literal: String = chars[start..i.min(chars.len())].iter().collect();
            // Keep the one string that matters for test-only code.
            out.push_str(if literal == "\"testing\"" {
                "\"testing\""
            } else {
                "\"\""
            });
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Removes items under a test-only `cfg` attribute; returns the code left and the names of
/// test-only `mod x;` declarations (whose files are test-only as a whole).
fn strip_test_code(code: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(code.len());
    let mut test_children = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(") {
        out.push_str(&rest[..at]);
        let attr_end = at + matching(&rest[at + 1..], '[', ']') + 2;
        let attr = &rest[at..attr_end];
        if !is_test_only(attr) {
            out.push_str(attr);
            rest = &rest[attr_end..];
            continue;
        }
        // Skip any further attributes, then the item: to its `;` or through its braces.
        let mut item = attr_end;
        loop {
            let trimmed = rest[item..].trim_start();
            item = rest.len() - trimmed.len();
            if trimmed.starts_with("#[") {
                item += matching(&trimmed[1..], '[', ']') + 2;
            } else {
                break;
            }
        }
        let body = &rest[item..];
        let semi = body.find(';').unwrap_or(body.len());
        let brace = body.find('{').unwrap_or(body.len());
        let end = if semi < brace {
            let decl = &body[..semi];
            let words: Vec<&str> = decl.split_whitespace().collect();
            if let Some(name) = words
                .iter()
                .position(|w| *w == "mod")
                .and_then(|pos| words.get(pos + 1))
            {
                test_children.push((*name).to_owned());
            }
            semi + 1
        } else if brace < body.len() {
            brace + matching(&body[brace..], '{', '}') + 1
        } else {
            body.len()
        };
        rest = &body[end.min(body.len())..];
    }
    out.push_str(rest);
    (out, test_children)
}

fn is_test_only(attr: &str) -> bool {
    let words: Vec<&str> = attr.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    let mentions_test = words.contains(&"test") || attr.contains("\"testing\"");
    mentions_test && !attr.contains("not(") && attr.starts_with("#[cfg(")
}

/// Index of the bracket closing the one `text` starts with.
fn matching(text: &str, open: char, close: char) -> usize {
    let mut depth = 0usize;
    for (k, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    text.len().saturating_sub(1)
}
