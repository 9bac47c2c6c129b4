//! The compose configuration of the stack: every config and env file its labels name, every
//! bind-mounted file or directory (traefik configuration, certificates, keys), and the keys
//! directory of a production layout. Paths stay relative to the project directory; anything
//! outside it goes under `_external/` with its absolute path.

use std::io;
use std::path::{Path, PathBuf};

use super::bundle::{private_dir, private_file};
use crate::snapshot::container::LABEL_ENV_FILE;
use crate::snapshot::{ContainerInfo, Stack};

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
    let keys = wd.join("production/keys-generated");
    if keys.is_dir() {
        paths.push(keys);
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

/// Copies the configuration into `dest`; returns the relative paths of the files copied.
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
