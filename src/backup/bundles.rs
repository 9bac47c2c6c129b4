//! The bundles of a backups directory as `backup list` shows them and `backup prune` judges them:
//! read from their manifests and the disk, and removed safely. The keep decision itself is
//! [`super::prune`], pure.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use semver::Version;
use serde::Serialize;

use super::bundle::{MANIFEST, PARTIAL_SUFFIX};
use super::manifest::Manifest;
use super::prune::{BundleFacts, Holder, KeepReason, Need, Policy, PolicyError, decide, needs};
use crate::state::{LockError, StateDir};

/// How a bundle was proven, from the records in its manifest (what `verify`, `staging up` and
/// `rehearse` add).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Proof {
    /// When its files' sizes and sha256 (and the archive read back) last verified (RFC 3339).
    pub checksums: Option<String>,
    /// When a restore (a throwaway mongo, or a staging copy) last proved it (RFC 3339): what
    /// `upgrade` and `rehearse` require of the bundle they start from.
    pub restore_test: Option<String>,
    /// The staging copies it was restored into and compared with.
    pub staging: Vec<String>,
    /// The releases a rehearsal from it upgraded staging to successfully.
    pub rehearsals: Vec<Version>,
    /// The newest verification failed: do not rely on the bundle.
    pub last_verification_failed: bool,
}

impl Proof {
    /// The proof a manifest records.
    pub fn of(m: &Manifest) -> Proof {
        let ok = || m.verifications.iter().filter(|v| v.ok);
        let last_with =
            |check: &str| ok().filter(|v| v.checks.iter().any(|c| c == check)).map(|v| v.at.clone()).next_back();
        let staging: BTreeSet<String> =
            ok().flat_map(|v| v.checks.iter().filter_map(|c| c.strip_prefix("staging:").map(str::to_string))).collect();
        let rehearsals: BTreeSet<Version> = m.rehearsals.iter().filter(|r| r.ok).map(|r| r.to.clone()).collect();
        Proof {
            checksums: last_with("files"),
            // As `upgrade` decides it (Manifest::restore_tested): any successful restore test.
            restore_test: if m.restore_tested() { last_with("restore-test") } else { None },
            staging: staging.into_iter().collect(),
            rehearsals: rehearsals.into_iter().collect(),
            last_verification_failed: m.verifications.last().is_some_and(|v| !v.ok),
        }
    }

    /// One line: `checksums, restore test, staging p-staging, rehearsal → 3.7.11`; `none`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.last_verification_failed {
            parts.push("LAST VERIFY FAILED".to_string());
        }
        if self.checksums.is_some() {
            parts.push("checksums".into());
        }
        if self.restore_test.is_some() {
            parts.push("restore test".into());
        }
        if !self.staging.is_empty() {
            parts.push(format!("staging {}", self.staging.join(", ")));
        }
        if !self.rehearsals.is_empty() {
            let to: Vec<String> = self.rehearsals.iter().map(ToString::to_string).collect();
            parts.push(format!("rehearsal → {}", to.join(", ")));
        }
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }
}

/// One bundle of the backups directory.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// Its directory name.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// Its compose project (`None` when the manifest cannot be read).
    pub project: Option<String>,
    /// The Mender release it is of.
    pub release: Option<Version>,
    /// When it was completed (RFC 3339, the manifest's).
    pub created: Option<String>,
    /// Seconds since then (`None` when unknown).
    pub age_secs: Option<u64>,
    /// Bytes of its files on disk (symbolic links are counted as links, never followed).
    pub size_bytes: u64,
    /// How it was proven.
    pub proof: Proof,
    /// What outside still needs it (journals, staging copies).
    pub needed_by: Vec<Need>,
    /// Why its manifest cannot be read.
    pub problem: Option<String>,
    /// The stack identity key (prune's per-stack group); not shown.
    #[serde(skip)]
    pub stack: String,
    /// The parsed creation time.
    #[serde(skip)]
    pub created_at: Option<SystemTime>,
}

impl Listed {
    /// The facts prune decides on.
    pub fn facts(&self) -> BundleFacts {
        BundleFacts {
            name: self.name.clone(),
            created: self.created_at,
            project: self.project.clone().unwrap_or_default(),
            stack: self.stack.clone(),
            restore_tested: self.proof.restore_test.is_some(),
            needed_by: self.needed_by.clone(),
            unreadable: self.problem.clone(),
        }
    }
}

/// Every bundle directly in `backups`, oldest first (by creation time, then name). Skipped: what is
/// not a directory (symbolic links included — a link is never a bundle here, so nothing is read or
/// removed through one), `.partial` directories (bundles being written), and directories without a
/// manifest. `holders` are the journals and staging records whose text may name a bundle.
///
/// # Errors
/// The directory exists but cannot be read; a missing one has no bundles.
pub fn scan(backups: &Path, holders: &[Holder], now: SystemTime) -> io::Result<Vec<Listed>> {
    let entries = match fs::read_dir(backups) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // DirEntry::file_type does not follow links.
        if !entry.file_type()?.is_dir() || name.ends_with(PARTIAL_SUFFIX) || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if fs::symlink_metadata(path.join(MANIFEST)).is_err() {
            continue;
        }
        out.push(listed(&path, name, holders, now));
    }
    out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(out)
}

fn listed(path: &Path, name: String, holders: &[Holder], now: SystemTime) -> Listed {
    let size_bytes = size_on_disk(path);
    match Manifest::load(path) {
        Ok(m) => {
            let created_at = humantime::parse_rfc3339(&m.created).ok();
            let stack = m.stack.as_ref().map(|s| serde_json::to_string(&s.databases).unwrap_or_default());
            Listed {
                needed_by: needs(&name, &m.project, holders),
                name,
                path: path.to_path_buf(),
                project: Some(m.project.clone()),
                release: m.mender_version.clone(),
                created: Some(m.created.clone()),
                age_secs: created_at.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs()),
                size_bytes,
                proof: Proof::of(&m),
                problem: None,
                stack: stack.unwrap_or_default(),
                created_at,
            }
        }
        Err(e) => Listed {
            // Its project is unknown: only what names it by name protects it (it is kept anyway).
            needed_by: needs(&name, "", holders),
            name,
            path: path.to_path_buf(),
            project: None,
            release: None,
            created: None,
            age_secs: None,
            size_bytes,
            proof: Proof::default(),
            problem: Some(e.to_string()),
            stack: String::new(),
            created_at: None,
        },
    }
}

/// The newest readable bundle of `project` taken of the live stack (`live`), with its manifest:
/// what `status` compares the signing keys against. `None` when there is none.
pub fn newest_of(backups: &Path, project: &str, live: &super::manifest::StackIdentity) -> Option<(String, Manifest)> {
    let listed = scan(backups, &[], SystemTime::now()).ok()?;
    listed.into_iter().rev().filter(|l| l.project.as_deref() == Some(project)).find_map(|l| {
        let m = Manifest::load(&l.path).ok()?;
        live.differs_from(m.stack.as_ref()).is_none().then_some((l.name, m))
    })
}

/// Bytes of the regular files below `dir`, links not followed (unreadable parts count 0).
fn size_on_disk(dir: &Path) -> u64 {
    crate::util::walk(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Why a bundle could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The name is not a plain directory name in the backups directory.
    #[error("{0:?} is not a bundle name in the backups directory")]
    BadName(String),
    /// It is no longer a directory there (a link, or gone).
    #[error("{0} is not a directory any more (a symbolic link, or removed meanwhile); left as it is")]
    NotADirectory(String),
    /// Renaming it out of the bundles' namespace failed; nothing was removed.
    #[error("cannot set {0} aside for removal: {1}; nothing of it was removed")]
    SetAside(String, io::Error),
    /// Removing its files failed part way; what is left is no bundle any more (`.partial`).
    #[error("removing {0} failed: {1}; what is left is in {2} and is no bundle any more: remove it by hand")]
    Remove(String, io::Error, String),
}

/// Removes the bundle `name` from `backups`. It is first renamed to `NAME.partial`, which no
/// reader takes for a bundle (a directory with that suffix is never one), so that a removal that
/// fails half way never leaves something that looks whole; then its tree is removed without
/// following symbolic links (`std::fs::remove_dir_all` removes a link, never what it points to).
///
/// # Errors
/// [`RemoveError`]: a name that is not a plain entry of `backups`, one that is not a directory,
/// or what the file system answers.
pub fn remove(backups: &Path, name: &str) -> Result<(), RemoveError> {
    let plain = Path::new(name).file_name().is_some_and(|n| n == name) && !name.ends_with(PARTIAL_SUFFIX);
    if !plain || name == "." || name == ".." {
        return Err(RemoveError::BadName(name.into()));
    }
    let path = backups.join(name);
    if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
        return Err(RemoveError::NotADirectory(path.display().to_string()));
    }
    let aside = backups.join(format!("{name}{PARTIAL_SUFFIX}"));
    fs::rename(&path, &aside).map_err(|e| RemoveError::SetAside(path.display().to_string(), e))?;
    // The rename is made durable before the files go: a crash then leaves a `.partial`, not a
    // bundle with files missing.
    if let Ok(d) = fs::File::open(backups) {
        let _ = d.sync_all();
    }
    fs::remove_dir_all(&aside).map_err(|e| RemoveError::Remove(name.into(), e, aside.display().to_string()))
}

/// What `backup prune` did (or, with `--dry-run`, would do) with one bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Kept: see the reasons.
    Keep,
    /// No rule keeps it; `--dry-run` left it in place.
    WouldRemove,
    /// Removed.
    Removed,
    /// No rule keeps it, but removing it failed (see the error).
    Failed,
}

/// One bundle in `backup prune`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct PruneEntry {
    /// The bundle as `backup list` shows it.
    #[serde(flatten)]
    pub bundle: Listed,
    /// What was done.
    pub action: Action,
    /// Why it is kept (empty for a bundle no rule keeps).
    pub reasons: Vec<KeepReason>,
    /// The reasons in words, as the text output prints them.
    pub why: Vec<String>,
    /// Why its removal failed.
    pub error: Option<String>,
}

/// `backup prune`'s result: every bundle with its action, and the totals.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Nothing was removed (`--dry-run`).
    pub dry_run: bool,
    /// The rules applied.
    pub policy: Policy,
    /// The backups directory.
    pub backups: PathBuf,
    /// Every bundle, oldest first.
    pub bundles: Vec<PruneEntry>,
    /// Bundles kept.
    pub kept: usize,
    /// Bundles removed (with `--dry-run`: that would be).
    pub removed: usize,
    /// Bundles whose removal failed.
    pub failed: usize,
    /// Bytes freed (with `--dry-run`: that would be).
    pub freed_bytes: u64,
}

/// Why `backup prune` did not run.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The policy has no rule.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The backups directory cannot be read (its path, then the error).
    #[error("cannot read the backups directory {0}: {1}")]
    Read(String, io::Error),
}

impl From<PruneError> for crate::exit::Failure {
    fn from(e: PruneError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        match e {
            PruneError::Policy(PolicyError::NoRule) => Failure::new(
                Exit::Usage,
                e,
                "everything: no bundle was removed",
                "add a keep rule: --keep-last N (the newest N bundles of each project) and/or --keep-within DURATION (e.g. 30d: the bundles taken within 30 days of each project's newest); --dry-run shows what they would remove",
            ),
            PruneError::Read(..) => Failure::new(
                Exit::Precondition,
                e,
                "everything: no bundle was removed",
                "check the state directory (--state-dir) and its permissions",
            ),
        }
    }
}

/// `backup prune`: takes the lock of every project with bundles (a project whose lock another run
/// holds keeps all its bundles), reads what the journals and the staging records (`staging`:
/// name and text, see `staging::record_texts`) name, applies `policy`, and — unless `dry_run` —
/// removes the bundles no rule keeps, one by one: a removal that fails is reported and the rest
/// goes on. With `only`, the bundles of that project alone are judged (and reported); others are
/// left as they are.
///
/// # Errors
/// [`PruneError`] before anything is removed: no rule, or an unreadable backups directory.
pub fn prune(
    state: &StateDir,
    staging: &[(String, String)],
    policy: &Policy,
    only: Option<&str>,
    dry_run: bool,
    now: SystemTime,
) -> Result<PruneReport, PruneError> {
    // Refused before anything is read (decide refuses too: this keeps the order obvious).
    decide(&[], policy)?;
    let backups = state.backups();
    let read_err = |e| PruneError::Read(backups.display().to_string(), e);
    let mut listed = scan(&backups, &[], now).map_err(read_err)?;
    if let Some(p) = only {
        listed.retain(|l| l.project.as_deref() == Some(p));
    }
    let projects: BTreeSet<String> = listed.iter().filter_map(|l| l.project.clone()).collect();
    // Locks first, then what names the bundles: a run that holds a lock is seen as holding it, and a
    // journal written before its lock was released is read after.
    let mut locks = Vec::new();
    let mut locked: Vec<(String, String)> = Vec::new();
    for p in &projects {
        match state.lock(p, "backup prune") {
            Ok(l) => locks.push(l),
            Err(LockError::Held { owner, .. }) => locked.push((
                p.clone(),
                format!("`{}`, pid {} on {}, started {}", owner.command, owner.pid, owner.host, owner.started),
            )),
            Err(e @ LockError::Io(..)) => locked.push((p.clone(), format!("its lock cannot be taken: {e}"))),
        }
    }
    let holders = holders(state, staging);
    for l in &mut listed {
        l.needed_by = needs(&l.name, l.project.as_deref().unwrap_or_default(), &holders);
        for (p, holder) in &locked {
            if l.project.as_ref() == Some(p) {
                l.needed_by.push(Need::Locked { holder: holder.clone() });
            }
        }
    }
    let facts: Vec<BundleFacts> = listed.iter().map(Listed::facts).collect();
    let decisions = decide(&facts, policy)?;
    let mut report = PruneReport {
        dry_run,
        policy: *policy,
        backups: backups.clone(),
        bundles: vec![],
        kept: 0,
        removed: 0,
        failed: 0,
        freed_bytes: 0,
    };
    for (bundle, d) in listed.into_iter().zip(decisions) {
        let (action, error) = if d.keep {
            report.kept += 1;
            (Action::Keep, None)
        } else if dry_run {
            report.removed += 1;
            report.freed_bytes += bundle.size_bytes;
            (Action::WouldRemove, None)
        } else {
            match remove(&backups, &bundle.name) {
                Ok(()) => {
                    report.removed += 1;
                    report.freed_bytes += bundle.size_bytes;
                    (Action::Removed, None)
                }
                Err(e) => {
                    report.failed += 1;
                    (Action::Failed, Some(e.to_string()))
                }
            }
        };
        let why = d.reasons.iter().map(ToString::to_string).collect();
        report.bundles.push(PruneEntry { bundle, action, reasons: d.reasons, why, error });
    }
    drop(locks);
    Ok(report)
}

/// The journals and staging records whose text may name a bundle.
pub fn holders(state: &StateDir, staging: &[(String, String)]) -> Vec<Holder> {
    let mut out: Vec<Holder> =
        state.journal_texts().into_iter().map(|(project, text)| Holder::Journal { project, text }).collect();
    out.extend(staging.iter().map(|(name, text)| Holder::Staging { name: name.clone(), text: text.clone() }));
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn removal_never_follows_links_out_of_the_backups_dir() {
        let root = tempfile::tempdir().unwrap();
        let backups = root.path().join("backups");
        let outside = root.path().join("outside");
        fs::create_dir_all(backups.join("b1/compose")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("precious"), "keep me").unwrap();
        fs::write(backups.join("b1/compose/x.yml"), "x").unwrap();
        // A link inside a bundle, and a link that is itself an entry of the backups dir.
        symlink(&outside, backups.join("b1/compose/link")).unwrap();
        symlink(&outside, backups.join("b2")).unwrap();
        assert!(matches!(remove(&backups, "b2"), Err(RemoveError::NotADirectory(_))));
        remove(&backups, "b1").unwrap();
        assert!(!backups.join("b1").exists() && !backups.join("b1.partial").exists());
        assert_eq!(fs::read_to_string(outside.join("precious")).unwrap(), "keep me");
        assert!(fs::symlink_metadata(backups.join("b2")).is_ok(), "the link entry is left as it is");
        for bad in ["../outside", "..", "a/b", "b1.partial", ""] {
            assert!(matches!(remove(&backups, bad), Err(RemoveError::BadName(_))), "{bad}");
        }
        assert!(outside.join("precious").exists());
    }
}
