//! The floors of the crate only point down: cli → stages → model → engine → leaves. Every
//! `crate::<module>` reference (in `use` lines and inline paths) is checked against the floor
//! list below; a module that is on no floor, a reference upwards, or one to a later module of the
//! same floor (which could close a cycle) fails the test. The pure leaves that could stand alone
//! are workspace crates (`crates/`), where the compiler enforces the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Floors from the bottom up; inside a floor, a module may use the ones listed before it.
const FLOORS: &[&[&str]] = &[
    // Helpers every floor uses; they import nothing else of the crate but each other.
    &["util", "labels", "exit", "progress", "interrupt"],
    // The only code that touches the world: Docker, compose, sidecars, object stores.
    &["engine"],
    // The model: pure facts and decisions, and the state directory.
    &["catalog", "plan", "state", "snapshot"],
    // The stages of the pipeline.
    &["backup", "upgrade", "staging"],
    // What the operator touches.
    &["report", "demo", "cli"],
];

fn position(module: &str) -> Option<(usize, usize)> {
    FLOORS.iter().enumerate().find_map(|(f, mods)| mods.iter().position(|m| *m == module).map(|i| (f, i)))
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

/// The top-level module a source file belongs to (`None` for the crate root and the binary).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// `crate::X` references outside comments.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            // `mender_compose_upgrade::crate` does not exist; a preceding identifier char means
            // another path (e.g. `some_crate::`).
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        // `use crate::{a, b}` names several modules at once.
        if let Some(group) = code.trim_start().strip_prefix("use crate::{") {
            for name in group.split([',', '}']).map(|s| s.trim().split("::").next().unwrap_or_default()) {
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// Every violation in the tree under `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = module_of(src, file) else { continue };
        let Some((floor, index)) = position(&module) else {
            problems.push(format!("{}: module {module} is on no floor of tests/layers.rs", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(&text).into_iter().filter(|t| *t != module) {
            match position(&target) {
                None => problems.push(format!("{}: uses crate::{target}, which is on no floor", file.display())),
                Some((f, i)) if f > floor || (f == floor && i > index) => problems.push(format!(
                    "{}: {module} (floor {floor}) uses crate::{target} (floor {f}): floors only point down",
                    file.display()
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[test]
fn floors_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(problems.is_empty(), "{} layering violations:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn an_upward_use_is_caught() {
    // A copy of a lower module that reaches up: the check must name it.
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("engine");
    std::fs::create_dir_all(&engine).unwrap();
    std::fs::write(engine.join("docker.rs"), "use crate::cli::Global;\nuse crate::util::secs;\n").unwrap();
    std::fs::write(dir.path().join("state.rs"), "use crate::{snapshot::Stack, util};\n").unwrap();
    std::fs::write(dir.path().join("newmod.rs"), "// a module nobody placed\n").unwrap();
    let problems = violations(dir.path());
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("engine (floor 1) uses crate::cli (floor 4)"), "{problems:?}");
    assert!(problems[1].contains("module newmod is on no floor"), "{problems:?}");
    assert!(problems[2].contains("state (floor 2) uses crate::snapshot (floor 2)"), "{problems:?}");
}
