//! A directory tree copied exactly, inside the helper sidecar: a MongoDB data volume onto a new
//! volume before the next major starts on the copy (the original stays the rollback copy).
//! Modes, owners (the sidecar runs as root for this job), symbolic links and modification times
//! are kept; nothing is followed outside the tree.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use serde::{Deserialize, Serialize};

/// Copy `from` to `to` (paths inside the sidecar); `to` is emptied first, so a copy cut short is
/// simply done again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyJob {
    /// The source directory (mounted read-only).
    pub from: String,
    /// The target directory.
    pub to: String,
}

/// What was copied.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeCopied {
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Directories and symbolic links.
    pub others: u64,
}

/// Runs a [`CopyJob`].
///
/// # Errors
/// The first file that could not be read, written or given its owner, mode or time.
pub fn copy(job: &CopyJob) -> io::Result<TreeCopied> {
    let (from, to) = (Path::new(&job.from), Path::new(&job.to));
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(to)? {
        let p = entry?.path();
        if fs::symlink_metadata(&p)?.is_dir() { fs::remove_dir_all(&p)? } else { fs::remove_file(&p)? }
    }
    let mut done = TreeCopied::default();
    copy_dir(from, to, &mut done)?;
    keep_meta(&fs::symlink_metadata(from)?, to)?;
    Ok(done)
}

fn copy_dir(from: &Path, to: &Path, done: &mut TreeCopied) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
            done.others += 1;
        } else if kind.is_dir() {
            fs::create_dir(&dst)?;
            copy_dir(&src, &dst, done)?;
            done.others += 1;
        } else if kind.is_file() {
            done.bytes += fs::copy(&src, &dst)?;
            done.files += 1;
        } else {
            // Sockets and fifos (a mongod's lock socket) are not data.
            continue;
        }
        keep_meta(&meta, &dst)?;
    }
    Ok(())
}

/// Owner, mode and times of `meta` onto `path` (a link itself, not its target).
fn keep_meta(meta: &fs::Metadata, path: &Path) -> io::Result<()> {
    let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
    fchownat(None, path, Some(Uid::from_raw(meta.uid())), Some(Gid::from_raw(meta.gid())), nofollow)
        .map_err(io::Error::from)?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let at = |s: i64, ns: i64| TimeSpec::new(s, ns);
    utimensat(
        None,
        path,
        &at(meta.atime(), meta.atime_nsec()),
        &at(meta.mtime(), meta.mtime_nsec()),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_copied_with_modes_links_and_times_and_again_over_a_partial_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir_all(from.join("journal")).unwrap();
        fs::write(from.join("journal/WiredTigerLog.1"), b"log").unwrap();
        fs::write(from.join("collection-0.wt"), vec![7u8; 10_000]).unwrap();
        fs::set_permissions(from.join("collection-0.wt"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("collection-0.wt", from.join("link")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(to.join("left-from-a-cut-copy"), b"x").unwrap();
        let job = CopyJob { from: from.display().to_string(), to: to.display().to_string() };
        let done = copy(&job).unwrap();
        assert_eq!((done.files, done.bytes), (2, 10_003));
        assert!(!to.join("left-from-a-cut-copy").exists());
        assert_eq!(fs::read(to.join("collection-0.wt")).unwrap(), vec![7u8; 10_000]);
        assert_eq!(fs::metadata(to.join("collection-0.wt")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_link(to.join("link")).unwrap(), Path::new("collection-0.wt"));
        let mtime = |p: &Path| fs::metadata(p).unwrap().mtime();
        assert_eq!(mtime(&to.join("journal/WiredTigerLog.1")), mtime(&from.join("journal/WiredTigerLog.1")));
        assert_eq!(copy(&job).unwrap(), done, "a second copy is the same copy");
    }
}
