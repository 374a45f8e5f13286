//! The shape of the source tree, checked so that it stays the shape the README describes: AWS is
//! reached only through the gateway in `src/aws/`, and the top-level modules depend on each
//! other without cycles (`cli` composes; nothing depends back on it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SDK_CLIENT_FIELDS: [&str; 6] = ["cloudwatch", "sns", "sqs", "eventbridge", "emr", "ses"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without `//` comments (doc comments included), whitespace collapsed so that
/// a call chain broken over lines reads as one.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable source file");
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) is rare in code that names these clients; keeping
            // the part before it is enough for these checks.
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" .", ".")
        .replace(". ", ".")
}

#[test]
fn aws_sdk_clients_are_reached_only_through_the_gateway() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let gateway = src().join("aws");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&gateway)) {
        let code = code_of(file);
        for field in SDK_CLIENT_FIELDS {
            for receiver in [
                "aws",
                "clients",
                "self.aws",
                "ctx.aws",
                "state.aws",
                "shared.aws",
            ] {
                if code.contains(&format!("{receiver}.{field}.")) {
                    offenders.push(format!("{}: {receiver}.{field}", file.display()));
                }
            }
        }
        if code.contains("::Client::from_conf")
            || (code.contains("::Client::new(") && code.contains("aws_sdk_"))
        {
            offenders.push(format!("{}: builds an SDK client", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "AWS SDK calls belong in src/aws/ (add a typed operation there):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_gateway_check_sees_a_call_outside_the_gateway() {
    // The check above must not pass vacuously: it recognises a chain broken across lines.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "let q = aws\n    .sqs\n    .receive_message() // go\n    .send();",
    )
    .unwrap();
    assert!(code_of(&file).contains("aws.sqs."));
}

/// The top-level module a `crate::` path names, or a file's own module.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let code = code_of(file);
        let entry = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != module && modules.contains(&name) {
                entry.insert(name);
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_depend_on_each_other_without_cycles() {
    let graph = dependencies();
    assert!(
        graph["cli"].contains("controller"),
        "the scan sees `cli`'s dependencies"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" → "));
    }
    for (module, deps) in &graph {
        assert!(
            !deps.contains("cli"),
            "{module} depends on cli, which only composes the subcommands"
        );
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
