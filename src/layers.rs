//! The crate's layers point one way: a test reads every module's source, collects the
//! top-level modules it names through `crate::` paths (test code and comments aside),
//! and finds no cycle between them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules each top-level module names, from the files under `src`.
fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path.strip_prefix(src).unwrap().to_string_lossy().into_owned();
        let test_only = ["tests.rs", "testing.rs", "layers.rs"];
        if !relative.ends_with(".rs")
            || ["lib.rs", "main.rs"].contains(&relative.as_str())
            || test_only.iter().any(|t| relative.ends_with(t))
        {
            continue;
        }
        let top = relative.split(['/', '.']).next().unwrap().to_owned();
        let code = without_tests(&std::fs::read_to_string(&path).unwrap());
        let named = graph.entry(top.clone()).or_default();
        named.extend(crate_paths(&code).into_iter().filter(|m| *m != top));
    }
    graph
}

/// The source without comments and without `#[cfg(test)]` modules.
fn without_tests(source: &str) -> String {
    let mut out = String::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let Some(item) = lines.next() else { break };
            if item.trim_end().ends_with('{') {
                let mut depth = 1i32;
                for inner in lines.by_ref() {
                    depth += inner.matches('{').count() as i32 - inner.matches('}').count() as i32;
                    if depth <= 0 {
                        break;
                    }
                }
            }
            continue;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The modules named by `crate::name` and `use crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    out.insert(ident(item.trim()));
                }
            }
            None => {
                out.insert(ident(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// A cycle through `start`, if any: the modules along it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![next.clone()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let graph = dependencies(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 10, "modules read: {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import cycle: {}\n{graph:#?}", cycle.join(" -> "));
        }
    }
    // The leaves import nothing from the crate.
    for leaf in ["vocab", "clock", "calendar"] {
        assert_eq!(graph[leaf], BTreeSet::new(), "{leaf} imports from the crate");
    }
}

#[test]
fn the_scanner_sees_what_a_cycle_is_made_of() {
    let code = without_tests(
        "use crate::{a, b::c};\n// crate::commented\nfn f() { crate::d::g(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::e;\n}\n",
    );
    let named: Vec<_> = crate_paths(&code).into_iter().collect();
    assert_eq!(named, ["a", "b", "d"]);
    let graph = BTreeMap::from([
        ("x".to_owned(), BTreeSet::from(["y".to_owned()])),
        ("y".to_owned(), BTreeSet::from(["x".to_owned()])),
    ]);
    assert_eq!(cycle_from(&graph, "x").unwrap(), ["x", "y", "x"]);
}
