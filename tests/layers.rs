//! The broker's layers (ARCHITECTURE.md, "Layers") use only the layers below them: no
//! module of `src/` names a module of its own layer or one above it, so there is no
//! import loop among server, handlers, routing and the shard state. Read from the
//! sources: every `crate::<module>` a file mentions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules of the crate, lowest layer first; a module may use those of lower
/// rank only. Modules on one line share a rank and may not use each other.
const LAYERS: &[&[&str]] = &[
    &["model", "futures", "stop", "protocol"],
    &["security"],
    &["config"],
    &["storage"],
    &["metadata"],
    &["partition"],
    &["groups", "transactions"],
    &["shard"],
    &["routing"],
    &["handlers", "placement"],
    &["server", "cli"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::`.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            group
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ]
        };
        used.extend(
            names
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(String::from),
        );
    }
    used
}

#[test]
fn each_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let own = rank(&module)
            .unwrap_or_else(|| panic!("src/{module} is not in LAYERS: give it a layer"));
        checked += 1;
        let text = std::fs::read_to_string(&file).unwrap();
        for used in used_modules(&text) {
            if used == module {
                continue;
            }
            match rank(&used) {
                Some(r) if r < own => {}
                _ => violations.push(format!("src/{} uses crate::{used}", relative.display())),
            }
        }
    }
    assert!(checked > 50, "read the sources ({checked} files)");
    assert!(
        violations.is_empty(),
        "layer violations (a module may use only lower layers):\n{}",
        violations.join("\n")
    );
}

#[test]
fn grouped_imports_are_read_too() {
    let used = used_modules(
        "use crate::{shard::ShardState, routing::Router};\nx = crate::model::Offset(1);",
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["model", "routing", "shard"]
    );
}
