//! Test catalogs: a copy of compose-templates/ with releases changed (broken images, made-up
//! patch releases), for the rollback and rehearsal tests.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{REGISTRY, docker_ok, file};

/// A copy of the catalog in which `edit` changes releases.yaml (and lines.yaml).
pub fn catalog_copy(edit: impl Fn(&mut Value, &mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose-templates");
    assert!(
        Command::new("cp").arg("-a").arg(format!("{}/.", src.display())).arg(dir.path()).status().unwrap().success()
    );
    let rel = dir.path().join("catalog/releases.yaml");
    let lines = dir.path().join("catalog/lines.yaml");
    let mut r: Value = serde_yaml_ng(&file(&rel));
    let mut l: Value = serde_yaml_ng(&file(&lines));
    edit(&mut r, &mut l);
    // JSON is YAML: the catalog loader reads it as it is.
    std::fs::write(&rel, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    std::fs::write(&lines, serde_json::to_string_pretty(&l).unwrap()).unwrap();
    dir
}

fn serde_yaml_ng(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("the catalog is YAML")
}

pub fn release<'a>(r: &'a mut Value, v: &str) -> &'a mut Value {
    r["releases"].as_array_mut().unwrap().iter_mut().find(|x| x["version"] == v).unwrap()
}

/// Adds patch release `to` of line 3.6: the images of `like` retagged as mender-`to`, with
/// `broken` services on their -broken stand-ins. The tags are the daemon's, shared by the test
/// binaries that run at once: each binary uses a `to` of its own (upgrade 3.6.90, crash_matrix
/// 3.6.91, smoke 3.6.92); `scripts/test` removes them at the end.
pub fn add_patch(r: &mut Value, l: &mut Value, like: &str, to: &str, broken: &[&str]) {
    let mut rel = release(r, like).clone();
    rel["version"] = to.into();
    for (name, svc) in rel["services"].as_object_mut().unwrap() {
        let image = svc["image"].as_str().unwrap().to_string();
        if let Some(repo) = image.strip_suffix(&format!(":mender-{like}")) {
            let new = format!("{repo}:mender-{to}");
            let source = if broken.contains(&name.as_str()) {
                format!("{REGISTRY}/{image}-broken")
            } else {
                format!("{REGISTRY}/{image}")
            };
            docker_ok(&["tag", &source, &format!("{REGISTRY}/{new}")]);
            svc["image"] = new.into();
        }
    }
    rel["templates"] = false.into();
    r["releases"].as_array_mut().unwrap().push(rel);
    let line = l["lines"].as_array_mut().unwrap().iter_mut().find(|x| x["line"] == "3.6").unwrap();
    line["tags"].as_array_mut().unwrap().push(to.into());
    line["stop"] = to.into();
}

pub fn catalog_arg(dir: &tempfile::TempDir) -> String {
    dir.path().to_string_lossy().into_owned()
}
