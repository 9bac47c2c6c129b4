//! Small helpers every floor uses: private directories and files, one atomic write, durations as
//! reports print them, time stamps, tree walks and the MongoDB address of a compose service.
//! Nothing else of the crate is imported here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Creates `dir` and its missing parents with mode 0700 (existing ones keep their mode).
///
/// # Errors
/// What the file system answers (permission, read-only mount, full disk).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// A new file with mode 0600, never world-readable even for a moment; its directory is created
/// (0700) when missing.
///
/// # Errors
/// `AlreadyExists` when the file exists; otherwise what the file system answers.
pub fn private_file(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// The mode a file written by [`write_atomic`] gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// 0600: journals, manifests, anything holding secrets.
    Private,
    /// The mode the file had; 0644 for a new file (an operator's compose files).
    Keep,
}

/// Replaces `path` with `data` so that a crash leaves either the old or the new contents: a
/// temporary file beside it, fsynced, renamed over it, and the directory fsynced. The directory is
/// created (0700) when missing.
///
/// # Errors
/// What the file system answers; the temporary file is removed on failure.
pub fn write_atomic(path: &Path, data: &[u8], perm: Perm) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    private_dir(dir)?;
    let mode = match perm {
        Perm::Private => 0o600,
        Perm::Keep => fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.mcu-tmp"));
    let written = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        // The umask does not apply to an explicit chmod.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// `bytes` random bytes from the kernel (/dev/urandom), hex-encoded: a secret to generate once.
///
/// # Errors
/// /dev/urandom cannot be read.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Seconds rounded to a tenth, as reports and timings print them.
pub fn secs(d: Duration) -> f64 {
    round_tenth(d.as_secs_f64())
}

/// A number of seconds rounded to a tenth.
pub fn round_tenth(s: f64) -> f64 {
    (s * 10.0).round() / 10.0
}

/// `n` and the noun, plural unless `n` is 1: `1 hop`, `2 hops`, `0 copies` (a consonant and `y`
/// become `ies`). For the regular nouns the reports count; write an irregular one out.
pub fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.strip_suffix('y').filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']));
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None => format!("{n} {noun}s"),
    }
}

/// [`count`] of a collection's length (`usize` has no `Into<u128>`).
pub fn count_len(n: usize, noun: &str) -> String {
    // usize is at most 64 bits on every target Rust supports.
    count(n as u64, noun)
}

/// `word` with its indefinite article: `an upgrade`, `a backup`. By the first letter, which is
/// right for the words the tool prints (operations, mount types), not for every English word.
pub fn a(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    format!("{article} {word}")
}

/// A size in bytes for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB` (IEC units, one
/// decimal), so that a small bundle is not `0 MiB`.
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// Now, as RFC 3339 UTC to the second (`2026-11-27T10:15:00Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Now, for names of bundles, runs and reports (`20261127T101500Z`).
pub fn now_stamp() -> String {
    now_rfc3339().replace(['-', ':'], "")
}

/// This host's name (`/proc/sys/kernel/hostname`; `localhost` when unreadable).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// Every regular file below `dir`, as paths relative to it, sorted. Symbolic links are not
/// followed.
///
/// # Errors
/// A directory that cannot be read.
pub fn list_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in walk(dir)? {
        if fs::symlink_metadata(&path)?.is_file() {
            out.push(path.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(path));
        }
    }
    out.sort();
    Ok(out)
}

/// Every entry below `dir` (files and directories, depth first, absolute when `dir` is).
///
/// # Errors
/// A directory that cannot be read; a missing `dir` is an empty walk.
pub fn walk(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        out.push(path.clone());
        if entry.file_type()?.is_dir() {
            out.extend(walk(&path)?);
        }
    }
    Ok(out)
}

/// The connection string of a MongoDB reached by its compose service name (or network alias) on
/// the default port.
pub fn mongo_uri(host: &str) -> String {
    format!("mongodb://{host}:27017")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_or_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/prod.yml");
        write_atomic(&p, b"one", Perm::Keep).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two", Perm::Keep).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        let q = dir.path().join("journal.json");
        write_atomic(&q, b"{}", Perm::Private).unwrap();
        assert_eq!(fs::metadata(&q).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(list_files(dir.path()).unwrap(), [PathBuf::from("a/prod.yml"), PathBuf::from("journal.json")]);
    }

    #[test]
    fn counts_sizes_and_articles_read_as_english() {
        assert_eq!(count(1u8, "hop"), "1 hop");
        assert_eq!(count(0u8, "hop"), "0 hops");
        assert_eq!(count(3u64, "problem"), "3 problems");
        assert_eq!(count(1u64, "copy"), "1 copy");
        assert_eq!(count(2u64, "copy"), "2 copies");
        assert_eq!(count(2u64, "key"), "2 keys");
        assert_eq!(count_len(1, "service"), "1 service");
        assert_eq!(a("upgrade"), "an upgrade");
        assert_eq!(a("backup"), "a backup");
        assert_eq!(a("rollback"), "a rollback");
        assert_eq!(size(0), "0 B");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(700 * 1024), "700.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 300 * 1024), "5.3 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn seconds_round_to_a_tenth() {
        assert_eq!(secs(Duration::from_millis(1249)), 1.2);
        assert_eq!(round_tenth(0.05), 0.1);
        assert_eq!(mongo_uri("mender-mongo"), "mongodb://mender-mongo:27017");
    }
}
