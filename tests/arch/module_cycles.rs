//! Imports flow one way (issue 16, item 3; issue 27, item 4): parse every `crate::`, `super::` and
//! `self::` path in `src/` (outside test code), build the module dependency graph, and fail when it
//! has a cycle that is not one of the few commented exceptions below, or when a module imports one
//! of a layer above its own (the layer table below, drawn in docs/architecture.md).
//!
//! A module using its own ancestor or descendant is not an edge: a child naming items its parent
//! re-exports, and a parent naming its children, is how Rust modules are meant to nest. Only edges
//! between unrelated modules count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles we could not break yet, each as the sorted list of its modules, with the reason.
/// Keep this list short: a new entry needs a reason a reviewer accepts.
const ALLOWED_CYCLES: &[&[&str]] = &[];

/// The layers, top first, each with the module paths it holds: a module may import modules of its
/// own layer and of any layer below it, never of a layer above. A module belongs to the layer of
/// the longest path listed here that is its own path or an ancestor's (so a file can sit in a
/// lower layer than its directory); every module must belong to one. Keep this table and
/// docs/architecture.md ("Layers") the same.
const LAYERS: &[(&str, &[&str])] = &[
    // argv to one mode to an exit code: nothing imports the dispatcher.
    ("cli", &["cli"]),
    // Role mode and the offline commands, and what each platform expects. One layer: role mode
    // runs the drop-in's preparation and the image-stamp check, and the platforms' hooks run the
    // start-up pipeline. `cli::mode` (how argv is read: pure) sits here because the drop-in asks
    // it whether PID 1 runs a command, without importing the dispatcher.
    ("startup", &["startup", "platform", "cli::mode"]),
    ("status", &["status"]),
    // `status::wire` is the status API's vocabulary (pure serde types on the error and signal
    // tables only): the log ring stores its `LogLine`s and the supervisor tags output with its
    // `Stream`, so it sits below the status server, at the supervision layer.
    ("supervision", &["supervision", "status::wire"]),
    ("render", &["render"]),
    ("resources", &["resources"]),
    ("config", &["config"]),
    ("sys", &["sys"]),
    // The vocabulary every layer shares; the crate root itself only declares modules.
    (
        "vocabulary",
        &["", "error", "output", "process_end", "signal_names"],
    ),
];

type Module = Vec<String>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test source file with the module path it defines.
fn source_files() -> Vec<(Module, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src_dir()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src_dir()).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            let last = parts.last().cloned().unwrap_or_default();
            if last == "tests" || last == "main" {
                continue; // test-only modules and the binary's entry point
            }
            if last == "mod" || last == "lib" {
                parts.pop();
            }
            out.push((parts, path));
        }
    }
    out
}

/// The file's text without comments and without its trailing `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    let text = text.get(..cut).unwrap_or(text);
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => line.get(..i).unwrap_or(""),
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand the path (or use tree) that starts at `rest` into full segment lists (`prefix` first).
fn expand(prefix: &[String], rest: &str, out: &mut Vec<Module>) -> usize {
    let mut segs = prefix.to_vec();
    let bytes: Vec<char> = rest.chars().collect();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            // A group: each comma-separated member is its own tree under `segs`.
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_whitespace() || bytes[i] == ',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == '}' {
                    return i + 1;
                }
                let tail: String = bytes[i..].iter().collect();
                i += expand(&segs, &tail, out).max(1);
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let ident: String = bytes[start..i].iter().collect();
        if !ident.is_empty() && ident != "self" {
            segs.push(ident);
        }
        if i + 1 < bytes.len() && bytes[i] == ':' && bytes[i + 1] == ':' {
            i += 2;
            continue;
        }
        out.push(segs);
        return i;
    }
}

/// The module a path names: its longest prefix that is a known module.
fn resolve(path: &[String], modules: &BTreeSet<Module>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

fn edges(modules: &BTreeSet<Module>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in source_files() {
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = code_of(&text);
        // `super` of a file module is its parent; `self` is the module itself.
        let parent: Module = module[..module.len().saturating_sub(1)].to_vec();
        let mut paths = Vec::new();
        for (anchor, base) in [
            ("crate::", Vec::new()),
            ("super::", parent),
            ("self::", module.clone()),
        ] {
            let mut from = 0;
            while let Some(pos) = code[from..].find(anchor) {
                let at = from + pos;
                from = at + anchor.len();
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| is_ident(c) || c == ':') {
                    continue; // `$crate::`, `super::super::` handled by the first match
                }
                let mut base = base.clone();
                let mut tail = &code[from..];
                while let Some(t) = tail.strip_prefix("super::") {
                    base.pop();
                    tail = t;
                }
                expand(&base, tail, &mut paths);
            }
        }
        let entry = graph.entry(module.clone()).or_default();
        for path in paths {
            let target = resolve(&path, modules);
            let related = target.starts_with(&module) || module.starts_with(&target);
            if !related {
                entry.insert(target);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let Some((w, _)) = graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(name(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

fn module_set() -> BTreeSet<Module> {
    let mut set: BTreeSet<Module> = source_files().into_iter().map(|(m, _)| m).collect();
    set.insert(Vec::new());
    set
}

#[test]
fn the_module_graph_has_no_new_cycles() {
    let graph = edges(&module_set());
    let found = cycles(&graph);
    let allowed: Vec<Vec<String>> = ALLOWED_CYCLES
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<String> = found
        .iter()
        .filter(|c| !allowed.contains(c))
        .map(|c| {
            let members: BTreeSet<&String> = c.iter().collect();
            let detail: Vec<String> = c
                .iter()
                .map(|m| {
                    let key: Module = if m == "crate" {
                        Vec::new()
                    } else {
                        m.split("::").map(String::from).collect()
                    };
                    let to: Vec<String> = graph[&key]
                        .iter()
                        .map(name)
                        .filter(|t| members.contains(t))
                        .collect();
                    format!("  {m} -> {}", to.join(", "))
                })
                .collect();
            format!("cycle {:?}:\n{}", c, detail.join("\n"))
        })
        .collect();
    assert!(
        new.is_empty(),
        "module cycles (imports must flow one way):\n{}",
        new.join("\n")
    );
}

/// The module's layer: its index in [`LAYERS`] (0 = top) and the layer's name, from the longest
/// listed path that is the module or an ancestor of it.
fn layer_of(module: &Module) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(rank, (layer, paths))| paths.iter().map(move |p| (rank, *layer, *p)))
        .filter_map(|(rank, layer, path)| {
            let parts: Module = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            module
                .starts_with(&parts)
                .then_some((parts.len(), rank, layer))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, rank, layer)| (rank, layer))
}

/// Every import of a module in a layer above the importer's, and every module with no layer.
fn layer_violations(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let mut out = Vec::new();
    for (from, targets) in graph {
        let Some((from_rank, from_layer)) = layer_of(from) else {
            out.push(format!(
                "{} belongs to no layer: add it to LAYERS in tests/arch (and docs/architecture.md)",
                name(from)
            ));
            continue;
        };
        for to in targets {
            let Some((to_rank, to_layer)) = layer_of(to) else {
                continue; // reported as the importer of its own imports, or a path that is no module
            };
            if to_rank < from_rank {
                out.push(format!(
                    "{} (layer {from_layer}) imports {} (layer {to_layer}), a layer above it",
                    name(from),
                    name(to)
                ));
            }
        }
    }
    out
}

#[test]
fn imports_flow_down_the_layers() {
    let violations = layer_violations(&edges(&module_set()));
    assert!(
        violations.is_empty(),
        "imports must flow down the layers (tests/arch LAYERS, docs/architecture.md):\n{}",
        violations.join("\n")
    );
}

/// The layer check itself: an upward import is named with both modules, a downward one and one
/// within a layer pass, and a longer listed path (`status::wire`) wins over its directory.
#[test]
fn the_layer_check_refuses_an_upward_import() {
    let module = |path: &str| -> Module { path.split("::").map(String::from).collect() };
    let graph: BTreeMap<Module, BTreeSet<Module>> = [
        (module("config::units"), [module("startup::node")].into()),
        (module("startup::node"), [module("platform::dropin")].into()),
        (
            module("supervision::logs"),
            [module("status::wire"), module("sys::procfs")].into(),
        ),
        (module("status::wire"), [module("status::backend")].into()),
    ]
    .into_iter()
    .collect();
    let found = layer_violations(&graph);
    assert_eq!(
        found,
        [
            "config::units (layer config) imports startup::node (layer startup), a layer above it",
            "status::wire (layer supervision) imports status::backend (layer status), a layer above it",
        ],
        "{found:#?}"
    );
}

/// The checker itself: it must see `use crate::` trees, `super::` and inline paths, or a cycle could
/// hide from it.
#[test]
fn the_checker_sees_use_trees_and_inline_paths() {
    let modules: BTreeSet<Module> = [
        vec![],
        vec!["a".into()],
        vec!["a".into(), "b".into()],
        vec!["c".into()],
    ]
    .into_iter()
    .collect();
    let mut paths = Vec::new();
    expand(&[], "{a::b::{X, Y}, c::Z};", &mut paths);
    let targets: BTreeSet<Module> = paths.iter().map(|p| resolve(p, &modules)).collect();
    assert!(
        targets.contains(&vec!["a".to_string(), "b".to_string()]),
        "{targets:?}"
    );
    assert!(targets.contains(&vec!["c".to_string()]), "{targets:?}");
    let code = code_of("use crate::c::Z; // crate::a::gone\nfn f() { crate::a::b::g(); }\n#[cfg(test)]\nmod tests {\n use crate::a::T;\n}\n");
    assert!(
        code.contains("crate::c::Z") && code.contains("crate::a::b::g"),
        "{code}"
    );
    assert!(
        !code.contains("gone") && !code.contains("crate::a::T"),
        "{code}"
    );
}
