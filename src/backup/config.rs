//! The compose configuration of the stack: every config and env file its labels name, every
//! bind-mounted file or directory (traefik configuration, certificates, keys), and the keys
//! directory of a production layout. Paths stay relative to the project directory; anything
//! outside it goes under `_external/` with its absolute path.

use std::io;
use std::path::{Path, PathBuf};

use crate::engine::container::ContainerInfo;
use crate::labels::LABEL_ENV_FILE;
use crate::snapshot::Stack;
use crate::util::{private_dir, private_file};

/// Where each source goes inside `compose/`.
pub fn sources(stack: &Stack, containers: &[ContainerInfo]) -> Vec<(PathBuf, PathBuf)> {
    let wd = PathBuf::from(stack.working_dir.clone().unwrap_or_default());
    let mut paths: Vec<PathBuf> = stack.config_files.iter().map(PathBuf::from).collect();
    for c in containers {
        if let Some(env) = c.label(LABEL_ENV_FILE) {
            paths.extend(env.split(',').filter(|s| !s.is_empty()).map(PathBuf::from));
        }
        paths.extend(c.mounts.iter().filter(|m| m.kind == "bind").filter_map(|m| m.source.as_ref().map(PathBuf::from)));
    }
    let referenced: Vec<PathBuf> = paths.iter().flat_map(|p| referenced_files(p)).collect();
    paths.extend(referenced);
    // Compose reads `.env` of the project directory for interpolation without any label saying so.
    for implicit in [wd.join(".env"), wd.join("production/keys-generated")] {
        if implicit.exists() {
            paths.push(implicit);
        }
    }
    let mut out: Vec<(PathBuf, PathBuf)> = paths
        .into_iter()
        .map(|p| {
            let rel = match p.strip_prefix(&wd) {
                Ok(r) if !wd.as_os_str().is_empty() => r.to_path_buf(),
                _ => Path::new("_external").join(p.strip_prefix("/").unwrap_or(&p)),
            };
            (p, rel)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Files a compose file names besides itself: `extends.file` (the integration's common.yml),
/// `env_file`, and the files of `configs` and `secrets`; relative to the file's directory.
fn referenced_files(compose_file: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(compose_file) else { return vec![] };
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else { return vec![] };
    let base = compose_file.parent().unwrap_or(Path::new("/"));
    let mut names: Vec<&str> = Vec::new();
    for svc in doc["services"].as_object().into_iter().flat_map(|s| s.values()) {
        names.extend(svc["extends"]["file"].as_str());
        match &svc["env_file"] {
            serde_json::Value::String(s) => names.push(s),
            serde_json::Value::Array(a) => {
                names.extend(a.iter().filter_map(|e| e.as_str().or_else(|| e["path"].as_str())));
            }
            _ => {}
        }
    }
    for section in ["configs", "secrets"] {
        names.extend(doc[section].as_object().into_iter().flat_map(|s| s.values()).filter_map(|v| v["file"].as_str()));
    }
    names.into_iter().filter(|n| !n.contains('$')).map(|n| lexical(&base.join(n))).collect()
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Copies the configuration into `dest`; returns the relative paths of the files copied.
///
/// # Errors
/// What the file system answers (an unreadable file, a full disk).
pub fn copy(stack: &Stack, containers: &[ContainerInfo], dest: &Path) -> io::Result<Vec<String>> {
    private_dir(dest)?;
    let mut copied = Vec::new();
    for (src, rel) in sources(stack, containers) {
        copy_tree(&src, &dest.join(&rel), &rel, &mut copied)?;
    }
    copied.sort();
    copied.dedup();
    Ok(copied)
}

fn copy_tree(src: &Path, dst: &Path, rel: &Path, copied: &mut Vec<String>) -> io::Result<()> {
    let meta = match std::fs::metadata(src) {
        Ok(m) => m,
        // A bind mount whose source vanished is reported in the snapshot, not fatal here.
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(src)? {
            let name = entry?.file_name();
            copy_tree(&src.join(&name), &dst.join(&name), &rel.join(&name), copied)?;
        }
    } else if meta.is_file() && !dst.exists() {
        let mut from = std::fs::File::open(src)?;
        let mut to = private_file(dst)?;
        io::copy(&mut from, &mut to)?;
        copied.push(rel.display().to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_compose_file_names_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let prod = dir.path().join("production/config/prod.yml");
        std::fs::create_dir_all(prod.parent().unwrap()).unwrap();
        std::fs::write(
            &prod,
            "services:\n  a:\n    extends: {file: ../../common.yml, service: base}\n    env_file: [./a.env, {path: b.env}]\n  b:\n    env_file: ${X}.env\nconfigs:\n  c: {file: ./c.conf}\n",
        )
        .unwrap();
        let mut found = referenced_files(&prod);
        found.sort();
        let c = dir.path().join("production/config");
        assert_eq!(found, [dir.path().join("common.yml"), c.join("a.env"), c.join("b.env"), c.join("c.conf")]);
    }
}
