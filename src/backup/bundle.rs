//! The bundle on disk: a directory written under a `.partial` name (0700, files 0600), fsynced,
//! and renamed only when complete, so that a crash or a full disk never leaves a bundle that
//! looks whole.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Appended to a bundle's directory name while it is written (`menderproduction-3.7.11-20250101T120000Z.partial`);
/// a directory with it is never a bundle.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// The manifest's file name in a bundle: versions, images, counts and every file's size + sha256.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's own checksum file, `sha256sum` style, beside it.
pub const MANIFEST_SUM: &str = "manifest.json.sha256";
/// The database dump's file name: what `mongodump --archive --gzip` writes and `mongorestore
/// --archive --gzip` reads.
pub const ARCHIVE: &str = "mongo.archive.gz";

/// A bundle being written.
pub struct PartialBundle {
    /// The `.partial` directory being written.
    pub dir: PathBuf,
    /// The name it gets once complete (`<state-dir>/backups/<name>`).
    pub final_dir: PathBuf,
}

impl PartialBundle {
    /// Creates `<backups>/<name>.partial` (0700), and `backups` when missing.
    ///
    /// # Errors
    /// `AlreadyExists` when a partial bundle of that name is there (another run, or a crash's
    /// leftover); otherwise what the file system answers.
    pub fn create(backups: &Path, name: &str) -> io::Result<PartialBundle> {
        crate::util::private_dir(backups)?;
        let dir = backups.join(format!("{name}{PARTIAL_SUFFIX}"));
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(PartialBundle { dir, final_dir: backups.join(name) })
    }

    /// Where the bundle-relative path `rel` (`compose/prod.yml`) is written.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// fsyncs every file and directory, then renames the bundle to its final name.
    ///
    /// # Errors
    /// What the file system answers; the `.partial` directory is then left as it is.
    pub fn complete(self) -> io::Result<PathBuf> {
        sync_tree(&self.dir)?;
        fs::rename(&self.dir, &self.final_dir)?;
        if let Some(parent) = self.final_dir.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(self.final_dir)
    }

    /// Removes what was written (after a failure; frees the space a full disk needs back).
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Counts and hashes what passes through to the inner writer.
pub struct HashingWriter<W> {
    inner: W,
    state: Arc<Mutex<(Sha256, u64)>>,
}

/// The digest side of a [`HashingWriter`], readable after the writer moved elsewhere.
#[derive(Clone)]
pub struct HashHandle(Arc<Mutex<(Sha256, u64)>>);

impl<W> HashingWriter<W> {
    /// A writer passing bytes to `inner`, and the handle that reads their sha256 and count.
    pub fn new(inner: W) -> (HashingWriter<W>, HashHandle) {
        let state = Arc::new(Mutex::new((Sha256::new(), 0)));
        (HashingWriter { inner, state: state.clone() }, HashHandle(state))
    }

    /// The inner writer back (to finish a gzip stream, to sync a file).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl HashHandle {
    /// The sha256 (hex) and the number of bytes written so far.
    pub fn result(&self) -> (String, u64) {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (hex::encode(guard.0.clone().finalize()), guard.1)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.update(&buf[..n]);
        guard.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 (hex) and size in bytes of a file, streamed.
///
/// # Errors
/// The file cannot be opened or read.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}

/// Why a bundle name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Nothing by that path or name.
    #[error(
        "no bundle {0:?}: neither a directory with a manifest.json nor the name (or start of a name) of a bundle in {1}"
    )]
    NotFound(String, String),
    /// Several bundles start with it.
    #[error("{given:?} names {} bundles: {}", .matches.len(), .matches.join(", "))]
    Ambiguous {
        /// What was given.
        given: String,
        /// The bundles it could mean.
        matches: Vec<String>,
    },
}

impl From<ResolveError> for crate::exit::Failure {
    fn from(e: ResolveError) -> crate::exit::Failure {
        crate::exit::Failure::new(
            crate::exit::Exit::Usage,
            e,
            crate::exit::UNCHANGED_ALL,
            "give the bundle's directory, or a unique start of its name (`backup list` style names are in STATE_DIR/backups)",
        )
    }
}

/// A bundle by its directory, or by its name (or a unique start of it) in `backups`.
///
/// # Errors
/// No such bundle, or a prefix several bundles share.
pub fn resolve(backups: &Path, given: &str) -> Result<PathBuf, ResolveError> {
    // An empty name (an unset "$BUNDLE" in a script) is the start of every name: never a match.
    if given.trim().is_empty() {
        return Err(ResolveError::NotFound(given.into(), backups.display().to_string()));
    }
    let path = Path::new(given);
    if path.join(MANIFEST).exists() {
        return Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    }
    let mut matches: Vec<String> = fs::read_dir(backups)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(PARTIAL_SUFFIX) && n.starts_with(given))
        .filter(|n| backups.join(n).join(MANIFEST).exists())
        .collect();
    matches.sort();
    if let Some(exact) = matches.iter().find(|n| *n == given) {
        return Ok(backups.join(exact));
    }
    match matches.len() {
        0 => Err(ResolveError::NotFound(given.into(), backups.display().to_string())),
        1 => Ok(backups.join(&matches[0])),
        _ => Err(ResolveError::Ambiguous { given: given.into(), matches }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(backups: &Path, name: &str) {
        fs::create_dir_all(backups.join(name)).unwrap();
        fs::write(backups.join(name).join(MANIFEST), "{}").unwrap();
    }

    #[test]
    fn a_name_a_unique_prefix_or_a_path_and_never_an_empty_name() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        bundle(b, "prod-3.4.0-20261201T100000Z");
        bundle(b, "prod-3.6.5-20261202T100000Z");
        fs::create_dir_all(b.join("prod-3.6.5-20261203T100000Z.partial")).unwrap();
        assert_eq!(resolve(b, "prod-3.4").unwrap(), b.join("prod-3.4.0-20261201T100000Z"));
        assert_eq!(resolve(b, "prod-3.6.5").unwrap(), b.join("prod-3.6.5-20261202T100000Z"), "a partial is no bundle");
        let path = b.join("prod-3.4.0-20261201T100000Z");
        assert_eq!(resolve(b, &path.to_string_lossy()).unwrap(), path);
        assert!(matches!(resolve(b, "prod-"), Err(ResolveError::Ambiguous { .. })));
        assert!(matches!(resolve(b, "other"), Err(ResolveError::NotFound(..))));
        // An unset "$BUNDLE" in a script must not pick a bundle to restore.
        assert!(matches!(resolve(b, ""), Err(ResolveError::NotFound(..))));
        assert!(matches!(resolve(b, "  "), Err(ResolveError::NotFound(..))));
    }
}
