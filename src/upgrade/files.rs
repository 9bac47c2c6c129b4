//! The project files a hop changes: which they are, the copies saved before the hop (its rollback
//! point for the configuration), and putting them back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::StepError;
use super::rewrite::{ProjectFile, Rewrite};
use super::{ProjectRecord, UpgradeState};
use crate::catalog::{LoadedCatalog, Release};
use crate::util::{Perm, write_atomic};

/// The directory of hop `index` (0-based) of a run: its dump, saved files and rewrite.
pub fn hop_dir(st: &UpgradeState, index: usize) -> PathBuf {
    st.run_dir.join(format!("hop-{}", index + 1))
}

const SAVED: &str = "compose-before";
const COMPLETE: &str = ".complete";
/// The rewrite a hop applied (`Rewrite` as JSON), for the rollback to undo exactly those edits.
pub const REWRITE: &str = "rewrite.json";

/// A project file relative to its directory (compose labels name them absolute).
pub fn relative(project: &ProjectRecord, path: &Path) -> PathBuf {
    path.strip_prefix(&project.working_dir).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

/// The file as it is now (`contents: None` when it does not exist).
pub fn read(project: &ProjectRecord, rel: &Path) -> ProjectFile {
    ProjectFile { path: rel.to_path_buf(), contents: std::fs::read_to_string(project.working_dir.join(rel)).ok() }
}

/// The files a hop to `to` may change: the compose files, and every file of its templates.
pub fn touched(catalog: &LoadedCatalog, project: &ProjectRecord, to: &Release) -> Vec<PathBuf> {
    let mut set: BTreeSet<PathBuf> = project.config_files.iter().map(|p| relative(project, p)).collect();
    if let Ok(ts) = catalog.template_files(&to.version) {
        if ts.iter().any(|t| t.contents.contains(super::rewrite::PRESIGN_VAR)) {
            set.insert(PathBuf::from(super::rewrite::ENV_FILE));
        }
        set.extend(ts.into_iter().map(|t| t.path));
    }
    set.into_iter().collect()
}

/// Copies of `files` as they are before the hop, into the hop directory; taken once (a resumed
/// rewrite keeps the first copies).
///
/// # Errors
/// A file that cannot be copied.
pub fn save_before(project: &ProjectRecord, dir: &Path, files: &[PathBuf]) -> Result<(), StepError> {
    let saved = dir.join(SAVED);
    if saved.join(COMPLETE).exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&saved);
    for rel in files {
        let src = project.working_dir.join(rel);
        if src.exists() {
            let dst = saved.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap_or(&saved))
                .map_err(StepError::file(format!("creating {}", saved.display())))?;
            std::fs::copy(&src, &dst).map_err(StepError::file(format!("saving {}", src.display())))?;
        }
    }
    std::fs::write(saved.join(COMPLETE), b"").map_err(StepError::file(format!("marking {} complete", saved.display())))
}

/// The files as they were before the hop, from the saved copies.
pub fn before(dir: &Path, files: &[PathBuf]) -> Vec<ProjectFile> {
    files
        .iter()
        .map(|rel| ProjectFile { path: rel.clone(), contents: std::fs::read_to_string(dir.join(SAVED).join(rel)).ok() })
        .collect()
}

/// Puts back the files the hop's rewrite changed (and removes the ones it created).
///
/// # Errors
/// A file that cannot be written.
pub fn restore(project: &ProjectRecord, dir: &Path) -> Result<(), StepError> {
    let saved = dir.join(SAVED);
    if !saved.join(COMPLETE).exists() {
        return Ok(());
    }
    // A git clone whose branch merged the hop's tag: the branch goes back, and every saved file
    // with it (the merge changed more files than the rewrite's edits).
    if super::clone::undo(project, dir)? {
        return restore_all(project, &saved);
    }
    let rewrite: Option<Rewrite> = std::fs::read(dir.join(REWRITE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    for e in rewrite.map(|r| r.edits).unwrap_or_default() {
        let target = project.working_dir.join(&e.path);
        match std::fs::read(saved.join(&e.path)) {
            Ok(bytes) => write_atomic(&target, &bytes, Perm::Keep)
                .map_err(StepError::file(format!("restoring {}", e.path.display())))?,
            Err(_) => {
                let _ = std::fs::remove_file(&target);
            }
        }
    }
    Ok(())
}

/// Every saved copy back in place.
fn restore_all(project: &ProjectRecord, saved: &Path) -> Result<(), StepError> {
    let mut stack = vec![saved.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(StepError::file(format!("reading {}", d.display())))?;
        for entry in entries {
            let path = entry.map_err(StepError::file(format!("reading {}", d.display())))?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(saved) else { continue };
            if rel == Path::new(COMPLETE) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(StepError::file(format!("reading {}", path.display())))?;
            write_atomic(&project.working_dir.join(rel), &bytes, Perm::Keep)
                .map_err(StepError::file(format!("restoring {}", rel.display())))?;
        }
    }
    Ok(())
}

/// The commands that finish a rollback, for the hop whose directory is `dir`. `wiped`: the
/// rollback had begun restoring the pre-hop dump, so the databases are empty or half back and no
/// Mender service may start on them (it would take them for a fresh install) until `rollback`
/// has restored the whole dump again; otherwise the saved files are put back and started first.
pub fn recovery_commands(project: &ProjectRecord, dir: &Path, wiped: bool) -> Vec<String> {
    let files: Vec<String> = project.config_files.iter().map(|f| format!("-f {}", f.display())).collect();
    let rollback = format!(
        "mender-compose-upgrade -p {} rollback    # restores {}/mongo.archive.gz if a migration ran",
        project.name,
        dir.display()
    );
    let status = format!("mender-compose-upgrade -p {} status --require-healthy", project.name);
    if wiped {
        return vec![
            "# the databases were emptied to restore the pre-hop dump: start no Mender service before it is back"
                .into(),
            format!(
                "mender-compose-upgrade -p {} rollback    # restores {}/mongo.archive.gz again, then starts the services",
                project.name,
                dir.display()
            ),
            status,
        ];
    }
    vec![
        format!("cp -a {}/{SAVED}/. {}/", dir.display(), project.working_dir.display()),
        format!(
            "docker compose -p {} --project-directory {} {} up -d",
            project.name,
            project.working_dir.display(),
            files.join(" ")
        ),
        rollback,
        status,
    ]
}
