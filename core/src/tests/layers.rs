//! The layer rule, checked on the source: each layer folder imports only
//! the layers listed before it in `LAYERS`, never one above, never through
//! the crate root, and no two modules import each other in a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom to top, as `lib.rs` declares them.
const LAYERS: [&str; 10] = [
    "wire",
    "security",
    "api",
    "transport",
    "connection",
    "graphics",
    "channels",
    "session",
    "record",
    "engine",
];

/// A module of the crate: its layer and, inside the layer, its file
/// (`None` for the layer's own `mod.rs`).
type Module = (String, Option<String>);

/// The modules a source file names through `crate::` paths, outside comments.
fn imports(source: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::b, c}`: every item of the group, on this line.
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    paths.push(segments(item.trim()));
                }
            } else {
                paths.push(segments(rest));
            }
        }
    }
    paths.retain(|path| !path.is_empty());
    paths
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|segment| {
            segment
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|segment| !segment.is_empty())
        .collect()
}

/// Finds what breaks the rule in `files` (the path under `src/` and the
/// source of each file): a layer importing one above it or the crate root,
/// and module-level import cycles.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let rank = |layer: &str| LAYERS.iter().position(|known| *known == layer);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (path, source) in files {
        let parts: Vec<&str> = path.trim_end_matches(".rs").split('/').collect();
        let Some(from_rank) = rank(parts[0]) else {
            continue;
        };
        let from: Module = (
            parts[0].to_owned(),
            parts
                .get(1)
                .filter(|file| **file != "mod")
                .map(|file| (*file).to_owned()),
        );
        for import in imports(source) {
            let Some(to_rank) = rank(&import[0]) else {
                problems.push(format!(
                    "{path} imports crate::{} through the crate root",
                    import[0]
                ));
                continue;
            };
            if to_rank > from_rank {
                problems.push(format!(
                    "{path} ({}) imports crate::{} from a layer above it",
                    parts[0],
                    import.join("::")
                ));
            }
            let to: Module = (import[0].clone(), import.get(1).cloned());
            // A file's own layer module (`mod.rs`) holds its child modules; naming
            // a child through it is not a dependency of the child on the parent.
            let to = if files.iter().any(|(other, _)| {
                Some(other.as_str())
                    == to
                        .1
                        .as_ref()
                        .map(|file| format!("{}/{file}.rs", to.0))
                        .as_deref()
            }) {
                to
            } else {
                (to.0, None)
            };
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Cycles: a depth-first search that meets a module on its own path.
    fn visit(
        module: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        problems: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|on_path| on_path == module) {
            let cycle: Vec<String> = path[start..]
                .iter()
                .chain([module])
                .map(|(layer, file)| match file {
                    Some(file) => format!("{layer}::{file}"),
                    None => layer.clone(),
                })
                .collect();
            problems.push(format!("import cycle: {}", cycle.join(" -> ")));
            return;
        }
        if !done.insert(module.clone()) {
            return;
        }
        path.push(module.clone());
        for next in edges.get(module).into_iter().flatten() {
            visit(next, edges, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        visit(module, &edges, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(root).expect("under src");
                out.push((
                    relative.to_string_lossy().replace('\\', "/"),
                    std::fs::read_to_string(&path).expect("readable source"),
                ));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    files
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let files = sources();
    for layer in LAYERS {
        assert!(
            files
                .iter()
                .any(|(path, _)| path.starts_with(&format!("{layer}/"))),
            "layer {layer} has no folder"
        );
    }
    let problems = violations(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_back_edge_or_a_cycle_is_caught() {
    let mut files = sources();
    // The layer check fails on an import from a layer above...
    let api_config = files
        .iter_mut()
        .find(|(path, _)| path == "api/config.rs")
        .expect("api/config.rs");
    api_config
        .1
        .push_str("\nuse crate::record::recorder::Recorder;\n");
    let problems = violations(&files);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("api/config.rs (api) imports crate::record")),
        "{problems:?}"
    );
    // ...through the crate root...
    let rooted = vec![("wire/x.rs".to_owned(), "use crate::Engine;".to_owned())];
    assert_eq!(violations(&rooted).len(), 1);
    // ...and on a cycle between two files of one layer.
    let cycle = vec![
        ("wire/a.rs".to_owned(), "use crate::wire::b::B;".to_owned()),
        ("wire/b.rs".to_owned(), "use crate::wire::a::A;".to_owned()),
    ];
    let problems = violations(&cycle);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("import cycle: wire::a -> wire::b -> wire::a")),
        "{problems:?}"
    );
    // Comments and doc links do not count.
    let comment = vec![(
        "wire/c.rs".to_owned(),
        "/// see [`Engine`](crate::Engine)".to_owned(),
    )];
    assert!(violations(&comment).is_empty());
}
