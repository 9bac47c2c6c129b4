//! An integration checkout that is a git clone (as Mender's install docs have operators make it:
//! `git clone -b <tag> …integration`, a local branch with prod.yml and keys committed), driven
//! through the git CLI: which tags it has, whether merging a tag would conflict (tried without
//! touching the work tree or any ref), the merge itself, and its undo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A failed git command.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be run.
    #[error("cannot run git in {dir}: {source}")]
    Spawn {
        /// The checkout.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the merge added could not be removed when undoing it.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// git ran and failed.
    #[error("git {args} in {dir} failed: {stderr}")]
    Failed {
        /// The checkout.
        dir: PathBuf,
        /// The arguments.
        args: String,
        /// What git said.
        stderr: String,
    },
}

/// A git work tree whose top level is the compose project directory.
#[derive(Debug, Clone)]
pub struct GitCheckout {
    dir: PathBuf,
}

/// What merging a tag would do, found without changing the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// The merge is clean.
    Clean {
        /// The commit it would make (unreferenced: garbage once git collects it).
        commit: String,
        /// The paths it changes, relative to the checkout.
        changed: Vec<String>,
    },
    /// The paths that would conflict.
    Conflicts(Vec<String>),
}

impl GitCheckout {
    /// The checkout at `dir`, when `dir` is the top level of a git work tree (and git runs).
    pub fn open(dir: &Path) -> Option<GitCheckout> {
        let c = GitCheckout { dir: dir.to_path_buf() };
        let top = c.text(&["rev-parse", "--show-toplevel"]).ok()?;
        let same = std::fs::canonicalize(top.trim()).ok()? == std::fs::canonicalize(dir).ok()?;
        same.then_some(c)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir).args(args).env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
        // A merge commit needs an identity; the operator's own when git has one.
        if !args.contains(&"config") && self.identity_missing() {
            cmd.env("GIT_AUTHOR_NAME", "mender-compose-upgrade")
                .env("GIT_AUTHOR_EMAIL", "mender-compose-upgrade@localhost")
                .env("GIT_COMMITTER_NAME", "mender-compose-upgrade")
                .env("GIT_COMMITTER_EMAIL", "mender-compose-upgrade@localhost");
        }
        cmd
    }

    fn identity_missing(&self) -> bool {
        let out = Command::new("git").current_dir(&self.dir).args(["config", "user.email"]).output();
        !out.is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    }

    fn run(&self, args: &[&str]) -> Result<Output, GitError> {
        self.command(args).output().map_err(|source| GitError::Spawn { dir: self.dir.clone(), source })
    }

    fn ok(&self, args: &[&str]) -> Result<Output, GitError> {
        let out = self.run(args)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(GitError::Failed {
                dir: self.dir.clone(),
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn text(&self, args: &[&str]) -> Result<String, GitError> {
        Ok(String::from_utf8_lossy(&self.ok(args)?.stdout).into_owned())
    }

    /// The commit HEAD is at.
    ///
    /// # Errors
    /// git fails (no commit yet).
    pub fn head(&self) -> Result<String, GitError> {
        Ok(self.text(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// The checked-out branch (`None` when HEAD is detached).
    pub fn branch(&self) -> Option<String> {
        self.text(&["symbolic-ref", "--short", "-q", "HEAD"])
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The commit tag `tag` points at, when the clone has the tag.
    pub fn tag_commit(&self, tag: &str) -> Option<String> {
        let rev = format!("refs/tags/{tag}^{{commit}}");
        self.text(&["rev-parse", "-q", "--verify", &rev]).ok().map(|s| s.trim().to_string())
    }

    /// Fetches `tag` from the clone's `origin`, giving up after `timeout` (an offline host).
    /// Whether the clone has the tag afterwards.
    pub fn fetch_tag(&self, tag: &str, timeout: Duration) -> bool {
        if self.tag_commit(tag).is_some() {
            return true;
        }
        if self.text(&["remote", "get-url", "origin"]).is_err() {
            return false;
        }
        let refspec = format!("refs/tags/{tag}:refs/tags/{tag}");
        let mut cmd = self.command(&["fetch", "--no-tags", "origin", &refspec]);
        let Ok(mut child) = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() else { return false };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        self.tag_commit(tag).is_some()
    }

    /// Whether `commit` is already part of HEAD's history (the tag was merged before).
    pub fn contains(&self, commit: &str) -> bool {
        self.run(&["merge-base", "--is-ancestor", commit, "HEAD"]).is_ok_and(|o| o.status.success())
    }

    /// Merging `tag` into `base` (a commit), tried in git's object store only: no ref, index or
    /// file of the checkout changes (`git merge-tree --write-tree`, git ≥ 2.38).
    ///
    /// # Errors
    /// git fails for another reason than a conflict.
    pub fn trial_merge(&self, base: &str, tag: &str) -> Result<Trial, GitError> {
        let tip = self.tag_commit(tag).ok_or_else(|| GitError::Failed {
            dir: self.dir.clone(),
            args: format!("rev-parse {tag}"),
            stderr: "no such tag".into(),
        })?;
        if self.run(&["merge-base", "--is-ancestor", &tip, base]).is_ok_and(|o| o.status.success()) {
            return Ok(Trial::Clean { commit: base.to_string(), changed: vec![] });
        }
        let out = self.run(&["merge-tree", "--write-tree", "--name-only", "--no-messages", base, &tip])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let tree = lines.next().unwrap_or_default().trim().to_string();
        match out.status.code() {
            Some(0) => {
                let message = format!("trial merge of {tag}");
                let commit = self.text(&["commit-tree", &tree, "-p", base, "-p", &tip, "-m", &message])?;
                let commit = commit.trim().to_string();
                let changed = self.text(&["diff", "--name-only", base, &commit])?;
                Ok(Trial::Clean { commit, changed: changed.lines().map(str::to_string).collect() })
            }
            Some(1) => Ok(Trial::Conflicts(lines.map(str::to_string).filter(|l| !l.is_empty()).collect())),
            _ => Err(GitError::Failed {
                dir: self.dir.clone(),
                args: format!("merge-tree --write-tree {base} {tag}"),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    /// Tracked files with changes not committed (work tree or index), relative to the checkout.
    ///
    /// # Errors
    /// git fails.
    pub fn modified(&self) -> Result<Vec<String>, GitError> {
        let text = self.text(&["status", "--porcelain", "--untracked-files=no"])?;
        Ok(text.lines().filter_map(|l| l.get(3..)).map(|p| p.rsplit(" -> ").next().unwrap_or(p).to_string()).collect())
    }

    /// `git merge --no-edit <tag>` on the checked-out branch.
    ///
    /// # Errors
    /// The merge fails (it is aborted, leaving the checkout as it was).
    pub fn merge(&self, tag: &str) -> Result<(), GitError> {
        let message = format!("Merge Mender Server {tag} (mender-compose-upgrade)");
        // --autostash: uncommitted edits (the tool's own, a MongoDB stage's new image and volume
        // name among them) are set aside for the merge and put back on top of it.
        let r = self.ok(&["merge", "--autostash", "--no-edit", "--no-ff", "-m", &message, &format!("refs/tags/{tag}")]);
        if r.is_err() {
            let _ = self.run(&["merge", "--abort"]);
        }
        r.map(|_| ())
    }

    /// The branch back to `before` (the commit a merge started from), and every file the merge
    /// changed back to its contents there; other files, and changes not committed to files the
    /// merge did not change, stay as they are.
    ///
    /// # Errors
    /// git fails, or a file cannot be removed.
    pub fn undo_merge(&self, before: &str) -> Result<(), GitError> {
        let merged = self.head()?;
        let changed = self.text(&["diff", "--name-only", before, &merged])?;
        self.ok(&["reset", "-q", "--mixed", before])?;
        for path in changed.lines().filter(|p| !p.is_empty()) {
            let existed = self.run(&["cat-file", "-e", &format!("{before}:{path}")])?.status.success();
            if existed {
                self.ok(&["checkout", before, "--", path])?;
            } else {
                std::fs::remove_file(self.dir.join(path))
                    .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                    .map_err(|source| GitError::Remove { path: self.dir.join(path), source })?;
            }
        }
        Ok(())
    }

    /// The contents of `path` at `rev` (a tag, a commit), when it has that file.
    pub fn show(&self, rev: &str, path: &Path) -> Option<String> {
        self.text(&["show", &format!("{rev}:{}", path.display())]).ok()
    }

    /// Whether the uncommitted edits of `path` (relative to the checkout) apply cleanly on top of
    /// its contents at `merged`: the three-way merge of HEAD's version, the work tree's and the
    /// merge's (`git merge-file`), as `git merge --autostash` puts the edits back after a merge.
    /// `false` when a version is missing or git fails.
    pub fn edits_survive(&self, merged: &str, path: &str) -> bool {
        let (Some(base), Some(theirs)) = (self.show("HEAD", Path::new(path)), self.show(merged, Path::new(path)))
        else {
            return false;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = std::env::temp_dir().join(format!("mcu-merge-{}-{nanos}", std::process::id()));
        let clean = std::fs::create_dir(&tmp).is_ok()
            && std::fs::write(tmp.join("base"), base).is_ok()
            && std::fs::write(tmp.join("merged"), theirs).is_ok()
            && self
                .run(&[
                    "merge-file",
                    "-p",
                    "--quiet",
                    &self.dir.join(path).to_string_lossy(),
                    &tmp.join("base").to_string_lossy(),
                    &tmp.join("merged").to_string_lossy(),
                ])
                .is_ok_and(|o| o.status.success());
        let _ = std::fs::remove_dir_all(&tmp);
        clean
    }

    /// `git describe --tags --abbrev=0`: what production/run passes to the GUI as its version.
    pub fn describe(&self) -> Option<String> {
        self.text(&["describe", "--tags", "--abbrev=0"]).ok().map(|s| s.trim().to_string())
    }

    /// Paths whose work-tree contents differ from HEAD (tracked and untracked), relative to the
    /// checkout.
    ///
    /// # Errors
    /// git fails.
    pub fn differs_from_head(&self) -> Result<Vec<String>, GitError> {
        let text = self.text(&["status", "--porcelain"])?;
        Ok(text.lines().filter_map(|l| l.get(3..)).map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    }

    /// A repository with tags 1.0 and 2.0 (file `base` changes), and a branch from 1.0 that
    /// commits `local`.
    fn repo() -> (tempfile::TempDir, GitCheckout) {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("base"), "one\n").unwrap();
        git(d, &["add", "base"]);
        git(d, &["commit", "-q", "-m", "1.0"]);
        git(d, &["tag", "1.0"]);
        std::fs::write(d.join("base"), "two\n").unwrap();
        git(d, &["commit", "-q", "-am", "2.0"]);
        git(d, &["tag", "2.0"]);
        git(d, &["checkout", "-q", "-b", "mine", "1.0"]);
        std::fs::write(d.join("local"), "my settings\n").unwrap();
        git(d, &["add", "local"]);
        git(d, &["commit", "-q", "-m", "mine"]);
        let c = GitCheckout::open(d).unwrap();
        (tmp, c)
    }

    #[test]
    fn a_clean_trial_changes_nothing_and_the_merge_keeps_local_commits() {
        let (tmp, c) = repo();
        let head = c.head().unwrap();
        match c.trial_merge(&head, "2.0").unwrap() {
            Trial::Clean { changed, .. } => assert_eq!(changed, ["base"]),
            t => panic!("{t:?}"),
        }
        assert_eq!(c.head().unwrap(), head, "the trial moved nothing");
        assert_eq!(std::fs::read_to_string(tmp.path().join("base")).unwrap(), "one\n");
        c.merge("2.0").unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join("base")).unwrap(), "two\n");
        assert!(tmp.path().join("local").exists());
        assert_eq!(c.describe().as_deref(), Some("2.0"));
        assert!(c.contains(&c.tag_commit("2.0").unwrap()));
        // The merge's files, and a change on top of one of them (what the rewrite does), go back.
        std::fs::write(tmp.path().join("base"), "two, edited\n").unwrap();
        c.undo_merge(&head).unwrap();
        assert_eq!(c.describe().as_deref(), Some("1.0"));
        assert_eq!(c.head().unwrap(), head);
        assert_eq!(std::fs::read_to_string(tmp.path().join("base")).unwrap(), "one\n");
        assert!(c.differs_from_head().unwrap().is_empty());
        assert!(!c.fetch_tag("9.9", Duration::from_secs(1)), "no origin, no tag");
    }

    #[test]
    fn a_conflicting_local_edit_is_found_by_the_trial() {
        let (tmp, c) = repo();
        std::fs::write(tmp.path().join("base"), "mine\n").unwrap();
        git(tmp.path(), &["commit", "-q", "-am", "edit base"]);
        let head = c.head().unwrap();
        assert_eq!(c.trial_merge(&head, "2.0").unwrap(), Trial::Conflicts(vec!["base".into()]));
        std::fs::write(tmp.path().join("base"), "uncommitted\n").unwrap();
        assert_eq!(c.modified().unwrap(), ["base"]);
        assert!(GitCheckout::open(&tmp.path().join("nope")).is_none());
    }
}
