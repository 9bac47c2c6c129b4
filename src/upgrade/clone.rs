//! A project directory that is a git clone of mendersoftware/integration (Mender's install docs
//! have operators `git clone -b <tag>` it and commit prod.yml and keys to a local branch): each
//! hop merges its release's tag into that branch, as Mender's upgrade docs do by hand (`git fetch
//! origin --tags`, `git merge <tag>`), so that `git describe` (which production/run passes to the
//! GUI), a later `git pull` and what runs agree. Without the tag (an offline host, a mirror
//! without tags) the tool writes the files as for any checkout, and says the clone now differs
//! from its HEAD.

use std::path::Path;
use std::time::Duration;

use super::ProjectRecord;
use super::error::{PreflightError, StepError};
use crate::engine::git::{GitCheckout, Trial};
use crate::plan::Plan;

/// How long a `git fetch` of a missing tag may take (an offline host gives up here).
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The commit the branch was at before the hop's merge, in the hop directory: what a rollback
/// resets the branch to.
const HEAD_BEFORE: &str = "git-head-before";

/// The project's clone, if its directory is one.
pub fn open(project: &ProjectRecord) -> Option<GitCheckout> {
    GitCheckout::open(&project.working_dir)
}

/// Before any downtime: which hops merge a tag, and whether every merge is clean (tried without
/// touching the clone). Fetches tags the clone lacks when the host is online. Returns what the
/// confirmation says.
///
/// # Errors
/// A merge that would conflict, or local changes not committed that a merge would conflict with.
pub fn check(project: &ProjectRecord, plan: &Plan) -> Result<Vec<String>, PreflightError> {
    let Some(git) = open(project) else { return Ok(vec![]) };
    let branch = git.branch().unwrap_or_else(|| "a detached HEAD".into());
    let mut notes = Vec::new();
    let Ok(mut base) = git.head() else { return Ok(vec![]) };
    let modified = git.modified().unwrap_or_default();
    for h in &plan.hops {
        let tag = h.to.to_string();
        if !git.fetch_tag(&tag, FETCH_TIMEOUT) {
            notes.push(format!(
                "git: the clone has no tag {tag} (and could not fetch it): hop {} → {tag} writes the files itself, \
                 and the clone will differ from its HEAD afterwards (`git status` shows it)",
                h.from
            ));
            continue;
        }
        let refuse = |why: String| PreflightError::CloneConflict { tag: tag.clone(), why };
        match git.trial_merge(&base, &tag).map_err(|e| refuse(e.to_string()))? {
            Trial::Conflicts(paths) => {
                return Err(refuse(format!(
                    "merging it into {branch} conflicts in {}; merge it by hand (`git merge {tag}`), commit, and run the upgrade again",
                    paths.join(", ")
                )));
            }
            Trial::Clean { commit, changed } => {
                // Uncommitted edits the merge can carry (a MongoDB stage's image and volume name,
                // an operator's line the tag does not touch) are put back on top of it.
                let touched: Vec<&String> =
                    changed.iter().filter(|p| modified.contains(p) && !git.edits_survive(&commit, p)).collect();
                if !touched.is_empty() {
                    return Err(refuse(format!(
                        "the merge conflicts with changes not committed in {}; commit (or undo) them first",
                        touched.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
                notes.push(format!(
                    "git: hop {} → {tag} merges tag {tag} into {branch} ({} {}; your commits, prod.yml and keys stay)",
                    h.from,
                    crate::util::count_len(changed.len(), "file"),
                    if changed.len() == 1 { "changes" } else { "change" }
                ));
                base = commit;
            }
        }
    }
    Ok(notes)
}

/// Whether the hop to `tag` takes its base files from the clone's tag (merged, or to be merged).
pub fn merges(project: &ProjectRecord, tag: &str) -> bool {
    open(project).is_some_and(|g| g.tag_commit(tag).is_some())
}

/// The hop's merge of its tag (once: a resumed hop finds it done). Records the commit before it in
/// the hop directory `dir`. Returns what to report.
///
/// # Errors
/// The merge failed (it is aborted; nothing changed).
pub fn merge(project: &ProjectRecord, dir: &Path, tag: &str) -> Result<Option<String>, StepError> {
    let Some(git) = open(project) else { return Ok(None) };
    let Some(tip) = git.tag_commit(tag) else {
        return Ok(Some(format!(
            "git: no tag {tag} in the clone: the files are written by the tool; the clone now differs from its HEAD \
             (`git status`; `git fetch origin --tags && git merge {tag}` brings it in line later)"
        )));
    };
    if git.contains(&tip) {
        return Ok(None);
    }
    let head = git.head().map_err(StepError::git)?;
    let record = dir.join(HEAD_BEFORE);
    if !record.exists() {
        crate::util::write_atomic(&record, head.as_bytes(), crate::util::Perm::Private)
            .map_err(StepError::file(format!("writing {}", record.display())))?;
    }
    git.merge(tag).map_err(StepError::git)?;
    Ok(Some(format!("git: merged tag {tag}; `git describe` now says {}", git.describe().unwrap_or_default())))
}

/// Undoes the hop's merge (the branch and the files it changed go back; the caller puts back the
/// saved files): true when there was one.
///
/// # Errors
/// git refuses the reset.
pub fn undo(project: &ProjectRecord, dir: &Path) -> Result<bool, StepError> {
    let Ok(head) = std::fs::read_to_string(dir.join(HEAD_BEFORE)) else { return Ok(false) };
    let Some(git) = open(project) else { return Ok(false) };
    if git.head().is_ok_and(|h| h == head.trim()) {
        return Ok(true);
    }
    git.undo_merge(head.trim()).map_err(StepError::git)?;
    Ok(true)
}
