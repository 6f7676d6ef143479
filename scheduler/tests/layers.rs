//! The scheduler's layers, as its source says them: a lower layer never
//! imports an upper one, the engine imports no I/O, and no module is
//! joined from another file with `#[path]`. Read from the source text, so
//! a new import that breaks a rule fails here with its file and line.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The layers, lowest first, and what each may not name.
const RULES: &[(&str, &[&str])] = &[
    // The model is the floor: jobs, specs, states and rules.
    (
        "model",
        &[
            "placement",
            "engine",
            "store",
            "mesos",
            "runner",
            "api",
            "auth",
            "cli",
            "config",
            "metrics",
        ],
    ),
    // Placement sees the model's demands and its own host views.
    (
        "placement",
        &[
            "engine", "store", "mesos", "runner", "api", "auth", "cli", "config", "metrics",
        ],
    ),
    // The engine decides; the store's types are its inputs (a snapshot, a
    // commit's error), but no socket, clock source, API or driver.
    (
        "engine",
        &["mesos", "runner", "api", "auth", "cli", "config", "metrics"],
    ),
    // The store persists the model's changes and knows nothing above.
    (
        "store",
        &[
            "engine", "mesos", "runner", "api", "auth", "cli", "config", "metrics",
        ],
    ),
    // Who a request comes from; what it may do is the model's rule and
    // the engine's decision, so nothing here reaches above the model.
    (
        "auth",
        &[
            "placement",
            "engine",
            "store",
            "mesos",
            "runner",
            "api",
            "cli",
            "config",
            "metrics",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Lines of `file` that name `crate::<module>` (in `use` or a path).
fn naming(file: &Path, module: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let needle = format!("crate::{module}");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.match_indices(&needle).any(|(at, _)| {
                let next = code[at + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|(n, line)| format!("{}:{}: {}", file.display(), n + 1, line.trim()))
        .collect()
}

#[test]
fn no_layer_imports_one_above_it() {
    let mut broken = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        sources(&src().join(layer), &mut files);
        assert!(!files.is_empty(), "layer {layer} has no source");
        for file in &files {
            for module in *forbidden {
                broken.extend(naming(file, module));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports across layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_engine_reads_no_clock_and_opens_no_socket() {
    let mut files = Vec::new();
    sources(&src().join("engine"), &mut files);
    let io = [
        "Instant::now",
        "SystemTime::now",
        "tokio::",
        "std::net",
        "std::fs",
        "rusqlite",
        "rand::",
    ];
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        // Tests beside the code may read the clock for a base instant.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            if io.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "I/O in the engine:\n{}", found.join("\n"));
}

#[test]
fn no_module_is_joined_from_another_file_with_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in [
        "proto",
        "scheduler",
        "executor",
        "agent-sim",
        "bench",
        "tests",
    ] {
        for dir in ["src", "tests"] {
            let dir = root.join(krate).join(dir);
            if dir.is_dir() {
                sources(&dir, &mut files);
            }
        }
    }
    let joined: Vec<_> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.trim_start().starts_with("#[path"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(joined.is_empty(), "#[path] in: {joined:?}");
}
