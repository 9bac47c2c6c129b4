//! The state directory: one lock and one journal per project, and the backups. The lock names its
//! owner (pid, host, start time, command) so that a second run is refused with who holds it; the
//! journal records what a run changed (services it stopped, steps it took), fsynced before the
//! change, so that a crash can be repaired by the next run.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::util::{Perm, hostname, now_rfc3339, private_dir, write_atomic};

/// The tool's state directory (`--state-dir`): `locks/`, `journal/`, `backups/`, `staging/`,
/// `upgrades/`, `reports/`.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// Its path: `--state-dir`, else `$XDG_STATE_HOME/mender-compose-upgrade` (or
    /// `~/.local/state/…`).
    pub root: PathBuf,
}

/// Who holds a lock or writes a journal: enough to tell whether it still runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Host name (`/proc/sys/kernel/hostname`): liveness is decidable only on the same host.
    pub host: String,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The command it runs (`backup`, `upgrade`, `staging up`).
    pub command: String,
}

/// Why the project's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds the lock.
    #[error("another run holds the lock of project {project}: `{}` (pid {} on {}, started {})", owner.command, owner.pid, owner.host, owner.started)]
    Held {
        /// The compose project whose lock it is.
        project: String,
        /// Who holds it.
        owner: Owner,
    },
    /// The lock file could not be created, written or removed (its path, then the error).
    #[error("cannot use the state directory {0}: {1}")]
    Io(String, io::Error),
}

impl Owner {
    /// The owner record of this process for `command`.
    pub fn me(command: &str) -> Owner {
        Owner { pid: std::process::id(), host: hostname(), started: now_rfc3339(), command: command.to_string() }
    }

    /// Whether the owner process is gone (only decidable on the same host).
    pub fn is_dead(&self) -> bool {
        self.host == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    /// Who holds it (this process).
    pub owner: Owner,
    /// The owner of a lock this run took over from a dead process.
    pub took_over: Option<Owner>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a file was last written more than a minute ago.
fn is_old(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(60))
}

impl From<LockError> for crate::exit::Failure {
    /// Both are refusals before anything is done (exit 3): a live owner, or a state directory
    /// that cannot be written (not a directory, a read-only mount, no permission).
    fn from(e: LockError) -> crate::exit::Failure {
        let next = match &e {
            LockError::Held { .. } => "wait for that run to finish, or run `recover` if its process is gone",
            LockError::Io(..) => "give a state directory this user can write with --state-dir, or fix that one",
        };
        crate::exit::Failure::new(crate::exit::Exit::Precondition, e, crate::exit::UNCHANGED_ALL, next)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |e| LockError::Io(path.display().to_string(), e)
}

impl StateDir {
    /// The state directory at `root` (nothing is created until used).
    pub fn new(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    /// Where backup bundles go by default (`<state-dir>/backups`).
    pub fn backups(&self) -> PathBuf {
        self.root.join("backups")
    }

    fn lock_path(&self, project: &str) -> PathBuf {
        self.root.join("locks").join(format!("{project}.lock"))
    }

    fn journal_path(&self, project: &str) -> PathBuf {
        self.root.join("journal").join(format!("{project}.json"))
    }

    fn history_path(&self, project: &str) -> PathBuf {
        self.root.join("history").join(format!("{project}.jsonl"))
    }

    /// Appends one record to the project's history (one JSON document per line, fsynced).
    ///
    /// # Errors
    /// What the file system answers.
    pub fn append_history(&self, project: &str, record: &impl Serialize) -> io::Result<()> {
        let path = self.history_path(project);
        if let Some(dir) = path.parent() {
            private_dir(dir)?;
        }
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&path)?;
        f.write_all(&line)?;
        f.sync_all()
    }

    /// The project's history, oldest first; lines that do not read as `T` are skipped.
    pub fn history<T: DeserializeOwned>(&self, project: &str) -> Vec<T> {
        std::fs::read_to_string(self.history_path(project))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Takes the project's lock. A lock whose owner died (same host, pid gone) is taken over and
    /// reported in `took_over`; a live owner is refused.
    ///
    /// # Errors
    /// [`LockError::Held`] for a live owner; [`LockError::Io`] when the lock file cannot be handled.
    pub fn lock(&self, project: &str, command: &str) -> Result<Lock, LockError> {
        let path = self.lock_path(project);
        if let Some(parent) = path.parent() {
            private_dir(parent).map_err(io_err(&path))?;
        }
        let me = Owner::me(command);
        let mut took_over = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(mut f) => {
                    f.write_all(&serde_json::to_vec_pretty(&me).unwrap_or_default()).map_err(io_err(&path))?;
                    f.sync_all().map_err(io_err(&path))?;
                    return Ok(Lock { path, owner: me, took_over });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = match self.lock_owner(project) {
                        Some(o) => o,
                        // Another run created it and has not written its owner yet; only a file
                        // left unwritten for long (a crash right after creating it) is garbage.
                        None if !is_old(&path) => {
                            let unknown =
                                Owner { pid: 0, host: hostname(), started: "just now".into(), command: "?".into() };
                            return Err(LockError::Held { project: project.to_string(), owner: unknown });
                        }
                        None => Owner { pid: 0, host: hostname(), started: "?".into(), command: "?".into() },
                    };
                    if !owner.is_dead() {
                        return Err(LockError::Held { project: project.to_string(), owner });
                    }
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                    took_over = Some(owner);
                }
                Err(e) => return Err(LockError::Io(path.display().to_string(), e)),
            }
        }
        Err(LockError::Io(path.display().to_string(), io::Error::other("the lock changed hands while taking it")))
    }

    /// Removes a lock whose owner died; returns that owner.
    pub fn release_dead_lock(&self, project: &str) -> Option<Owner> {
        let owner = self.lock_owner(project).filter(Owner::is_dead)?;
        std::fs::remove_file(self.lock_path(project)).ok()?;
        Some(owner)
    }

    /// The owner recorded in the project's lock file; `None` without a readable lock.
    pub fn lock_owner(&self, project: &str) -> Option<Owner> {
        serde_json::from_slice(&std::fs::read(self.lock_path(project)).ok()?).ok()
    }

    /// The project's journal, its payload read as `P` (a run that left none, or whose journal
    /// cannot be read as `P`: `None`).
    pub fn journal<P: DeserializeOwned>(&self, project: &str) -> Option<Journal<P>> {
        serde_json::from_slice(&std::fs::read(self.journal_path(project)).ok()?).ok()
    }

    /// Writes the journal durably (temp file, fsync, rename, fsync of the directory), mode 0600.
    ///
    /// # Errors
    /// What the file system answers; the previous journal is then still in place.
    pub fn write_journal<P: Serialize>(&self, project: &str, j: &Journal<P>) -> io::Result<()> {
        write_atomic(&self.journal_path(project), &serde_json::to_vec_pretty(j)?, Perm::Private)
    }

    /// The interrupted upgrade of `project`, if its journal is one — or a journal that cannot be
    /// read at all, which is treated the same way: only `resume`, `rollback` or a confirmed
    /// `recover --abandon` may end it, and nothing else may start services, take a bundle or
    /// change files meanwhile.
    pub fn pending_upgrade(&self, project: &str) -> Option<UpgradePending> {
        let path = self.journal_path(project);
        let bytes = std::fs::read(&path).ok()?;
        let pending =
            |owner: Option<Box<Owner>>| UpgradePending { project: project.to_string(), path: path.clone(), owner };
        match serde_json::from_slice::<Journal>(&bytes) {
            // Only a backup's journal is repaired by the next run; an upgrade's, a rollback's or a
            // restore's waits for its own verb.
            Ok(j) if j.operation != "backup" || j.payload.is_some() => Some(pending(Some(Box::new(j.owner)))),
            Ok(_) => None,
            Err(_) => Some(pending(None)),
        }
    }

    /// Fails with [`UpgradePending`] while `project` has an interrupted upgrade.
    ///
    /// # Errors
    /// The pending upgrade.
    pub fn refuse_if_upgrade_pending(&self, project: &str) -> Result<(), UpgradePending> {
        self.pending_upgrade(project).map_or(Ok(()), Err)
    }

    /// Every journal in the state directory: its project (the file's stem) and its text, `None`
    /// when the file exists but cannot be read. For readers that only look for what a journal
    /// names (`backup prune`), whatever the journal's operation or shape.
    pub fn journal_texts(&self) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = std::fs::read_dir(self.root.join("journal"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let project = name.strip_suffix(".json")?.to_string();
                Some((project, std::fs::read(e.path()).ok().map(|b| String::from_utf8_lossy(&b).into_owned())))
            })
            .collect();
        out.sort();
        out
    }

    /// Removes the project's journal (its run is over, or was repaired).
    pub fn clear_journal(&self, project: &str) -> io::Result<()> {
        match std::fs::remove_file(self.journal_path(project)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The operation name of an upgrade's journal.
pub const UPGRADE: &str = "upgrade";

/// An interrupted upgrade: its journal holds the only record of which services it stopped, which
/// step it was in and where its rollback point is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", describe_pending(.project, .path, .owner.as_deref()))]
pub struct UpgradePending {
    /// The project.
    pub project: String,
    /// The journal file.
    pub path: PathBuf,
    /// Who ran it (`None`: the journal cannot be read).
    pub owner: Option<Box<Owner>>,
}

fn describe_pending(project: &str, path: &Path, owner: Option<&Owner>) -> String {
    match owner {
        Some(o) => format!(
            "an upgrade of {project} (pid {} on {}, started {}) was interrupted; its journal {} holds where it stopped and its rollback point",
            o.pid,
            o.host,
            o.started,
            path.display()
        ),
        None => format!("the journal {} of {project} cannot be read: an interrupted run may be in it", path.display()),
    }
}

impl From<UpgradePending> for crate::exit::Failure {
    fn from(e: UpgradePending) -> crate::exit::Failure {
        let p = e.project.clone();
        crate::exit::Failure::new(
            crate::exit::Exit::Precondition,
            e,
            "everything: no service was started or stopped, no bundle was taken, no file was changed",
            format!(
                "`mender-compose-upgrade -p {p} resume` continues the upgrade, `mender-compose-upgrade -p {p} rollback` goes back to the release before its hop; `status` shows where it stopped"
            ),
        )
    }
}

/// What a run is doing to a project, durable before each change. `P` is what the operation
/// keeps besides (an upgrade: where it is and what undoes its hop); readers that do not know the
/// operation read it as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Journal<P = serde_json::Value> {
    /// `backup`, `upgrade`, …
    pub operation: String,
    /// The run that writes it.
    pub owner: Owner,
    /// Containers this run stopped and must start again.
    pub stopped: Vec<StoppedService>,
    /// A bundle being written (a `.partial` directory).
    pub partial: Option<PathBuf>,
    /// What the run did, in order.
    pub steps: Vec<JournalEntry>,
    /// The operation's own state. The key is `upgrade` in the file: journals of version 0.1 name
    /// it so, and an upgrade is the one operation that has one.
    #[serde(default = "Option::default", rename = "upgrade")]
    pub payload: Option<P>,
}

/// A container a run stopped and must start again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoppedService {
    /// Compose service name.
    pub service: String,
    /// Container name (`menderproduction-mender-deployments-1`).
    pub container: String,
    /// Stop order: wave 0 (the gateway and GUI, so no new requests come in) before wave 1.
    #[serde(default)]
    pub wave: u8,
}

/// One line of a journal's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JournalEntry {
    /// RFC 3339 UTC.
    pub at: String,
    /// What was done.
    pub step: String,
}

impl<P> Journal<P> {
    /// An empty journal of `operation` run by `owner`.
    pub fn new(operation: &str, owner: &Owner) -> Journal<P> {
        Journal {
            operation: operation.into(),
            owner: owner.clone(),
            stopped: vec![],
            partial: None,
            steps: vec![],
            payload: None,
        }
    }

    /// Adds a line to the history (written with the next [`StateDir::write_journal`]).
    pub fn step(&mut self, step: &str) {
        self.steps.push(JournalEntry { at: now_rfc3339(), step: step.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_owner_and_dead_owner_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().to_path_buf());
        let held = s.lock("p", "backup").unwrap();
        match s.lock("p", "upgrade") {
            Err(LockError::Held { owner, .. }) => assert_eq!(owner.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        std::mem::forget(held);
        // A lock left by a process that no longer exists.
        let dead = Owner { pid: 999_999_999, host: hostname(), started: "then".into(), command: "backup".into() };
        std::fs::write(s.lock_path("p"), serde_json::to_vec(&dead).unwrap()).unwrap();
        let lock = s.lock("p", "backup").unwrap();
        assert_eq!(lock.took_over, Some(dead));
        drop(lock);
        assert!(s.lock_owner("p").is_none(), "dropping releases");
    }

    #[test]
    fn journal_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().to_path_buf());
        let mut j: Journal = Journal::new("backup", &Owner::me("backup"));
        j.stopped.push(StoppedService { service: "mender-useradm".into(), container: "abc".into(), wave: 1 });
        j.step("stopped writers");
        s.write_journal("p", &j).unwrap();
        assert_eq!(s.journal("p"), Some(j));
        s.clear_journal("p").unwrap();
        assert!(s.journal::<serde_json::Value>("p").is_none());
        s.clear_journal("p").unwrap();
    }
}
