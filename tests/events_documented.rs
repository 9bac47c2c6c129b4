//! Every NDJSON step name and notification kind the code emits is listed in docs/events.md, so
//! that what a script or a receiver can see is documented (no daemon needed).

use std::path::Path;

/// The string literal that starts `rest` after whitespace, or `None` when the argument is not
/// a literal (a name computed at run time could not be checked here).
fn literal(rest: &str) -> Option<&str> {
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

/// Every first argument of `call` (`.step(`, `.notify(`) in the Rust files under `dir`, with where.
fn names(dir: &Path, call: &str, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            names(&path, call, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            // rustfmt may break `progress\n    .step(`: a whitespace run before a `.` goes.
            let raw = std::fs::read_to_string(&path).unwrap();
            let mut text = String::with_capacity(raw.len());
            let mut pending = String::new();
            for c in raw.chars() {
                if c.is_whitespace() {
                    pending.push(c);
                } else {
                    if c != '.' {
                        text.push_str(&pending);
                    }
                    pending.clear();
                    text.push(c);
                }
            }
            for (at, _) in text.match_indices(call) {
                // The method's own definition (`fn step(&self, …`) is no call.
                if text[..at].ends_with("fn ") || text[..at].trim_end().ends_with("fn") {
                    continue;
                }
                let name = literal(&text[at + call.len()..]).unwrap_or_else(|| {
                    panic!(
                        "{}: {call} with a name that is not a literal: docs/events.md could not be checked",
                        path.display()
                    )
                });
                found.push((name.to_string(), path.display().to_string()));
            }
        }
    }
}

#[test]
fn every_step_and_notification_the_code_emits_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/events.md")).unwrap();
    let mut steps = Vec::new();
    names(&root.join("src"), "progress.step(", &mut steps);
    let mut kinds = Vec::new();
    names(&root.join("src"), "progress.notify(", &mut kinds);
    assert!(
        steps.len() >= 40 && kinds.len() >= 6,
        "the scan found {} steps and {} notifications",
        steps.len(),
        kinds.len()
    );
    let step_table = doc.split("## NDJSON: `result`").next().unwrap();
    let kind_table = doc.split("## Notifications").nth(1).expect("a Notifications section");
    let missing: Vec<String> = steps
        .iter()
        .filter(|(n, _)| !step_table.contains(&format!("| `{n}` |")))
        .chain(kinds.iter().filter(|(n, _)| !kind_table.contains(&format!("| `{n}` |"))))
        .map(|(n, at)| format!("{n} ({at})"))
        .collect();
    assert!(missing.is_empty(), "emitted but not in docs/events.md: {missing:?}");
}
