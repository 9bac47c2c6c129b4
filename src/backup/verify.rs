//! `verify`: a bundle counts only once it has been read back. Every file's size and sha256, the
//! archive parsed and compared with the manifest collection by collection, and with
//! `--restore-test` a real mongorestore into a throwaway container of the same mongo image,
//! compared by count and content digest. The result is recorded in the manifest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use serde::Serialize;

use super::bundle::{self, ARCHIVE, MANIFEST, MANIFEST_SUM};
use super::crypt::{BundleReader, CryptError};
use super::manifest::InventoryEntry;
use super::manifest::{FileEntry, Location, Manifest, ManifestError, Verification, compare_archive, compare_files};
use super::restore::{self, MongoTarget, RestoreError};
use crate::engine::docker::{self as dk, DockerError};
use crate::engine::helper::MongoQuery;
use crate::engine::sidecar::{MongoReadError, read_mongo, wait_mongo};
use crate::engine::store::INVENTORY;
use crate::progress::Progress;
use crate::util::{mongo_uri, now_rfc3339};
use mongo_archive::read_archive;

/// The result of `verify` on one bundle, as printed (and as `--json` gives it).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The bundle directory checked.
    pub bundle: PathBuf,
    /// Every check passed (and the record was written to the manifest).
    pub ok: bool,
    /// The checks made, in order: `files`, `archive`, `artifacts` (copies in the bundle),
    /// `restore-test` (only with a daemon, and only when the others passed).
    pub checks: Vec<String>,
    /// What failed, one line each (`mongo.archive.gz: sha256 differs (content changed)`).
    pub problems: Vec<String>,
    /// Seconds the restore test took (container start, mongorestore, comparison); `None` without one.
    pub restore_seconds: Option<f64>,
    /// What was checked, counted.
    pub counted: Counted,
    /// The bundle is age-encrypted (its checksums are of the ciphertext).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// What was not checked and why (an encrypted bundle verified without its identity: the
    /// checksums only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What `verify` read, counted: what the operator sees was covered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counted {
    /// Files of the bundle whose size and sha256 were checked (manifest files aside).
    pub files: usize,
    /// Their total size, in bytes.
    pub bytes: u64,
    /// Databases in the archive read back.
    pub databases: usize,
    /// Collections in the archive read back (namespaces, indexes' metadata aside).
    pub collections: usize,
    /// Documents in the archive read back.
    pub documents: u64,
    /// Artifact objects in the bundle's inventory (0 when the artifacts stay in the store).
    pub artifacts: usize,
}

/// Why `verify` could not check a bundle at all (a damaged bundle is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The directory has no `manifest.json`.
    #[error("{0} is not a backup bundle (no manifest.json)")]
    NotABundle(String),
    /// The manifest cannot be read or parsed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The bundle is encrypted and the identity is missing (for a restore test) or does not open
    /// it.
    #[error(transparent)]
    Identity(CryptError),
}

impl From<VerifyError> for crate::exit::Failure {
    fn from(e: VerifyError) -> crate::exit::Failure {
        if let VerifyError::Identity(c) = e {
            return c.into();
        }
        crate::exit::Failure::new(
            crate::exit::Exit::Usage,
            e,
            crate::exit::UNCHANGED_ALL,
            "give the directory of a bundle written by `backup`",
        )
    }
}

impl VerifyReport {
    /// What the operator is told about a bundle that failed.
    pub fn failure(&self) -> crate::exit::Failure {
        crate::exit::Failure::new(
            crate::exit::Exit::Precondition,
            format!("the bundle {} failed verification:\n    {}", self.bundle.display(), self.problems.join("\n    ")),
            "the bundle was not changed except for the verification record in its manifest",
            "do not rely on this bundle; take a new backup",
        )
    }
}

/// Checks a bundle: every file's size and sha256, the archive read back against the manifest,
/// the artifact inventory; with `restore_with`, a real restore into a throwaway mongo. The result
/// is recorded in the manifest. An encrypted bundle is decrypted with `identity` (an age identity
/// file); without one, only its checksums (of the ciphertext) are checked.
///
/// # Errors
/// Not a bundle, or a manifest that cannot be read; [`VerifyError::Identity`] for an identity that
/// does not open the bundle, or none with `restore_with`. A damaged bundle is an `Ok` report that
/// is not `ok`.
pub async fn verify(
    bundle_dir: &Path,
    identity: Option<&Path>,
    restore_with: Option<&Docker>,
    progress: &Progress,
) -> Result<VerifyReport, VerifyError> {
    if !bundle_dir.join(MANIFEST).exists() {
        return Err(VerifyError::NotABundle(bundle_dir.display().to_string()));
    }
    let mut report = VerifyReport {
        bundle: bundle_dir.to_path_buf(),
        ok: false,
        checks: vec![],
        problems: vec![],
        restore_seconds: None,
        counted: Counted::default(),
        encrypted: false,
        notes: vec![],
    };
    let mut manifest = match Manifest::load(bundle_dir) {
        Ok(m) => m,
        Err(ManifestError::Edited) => {
            report.problems.push("manifest.json: does not match manifest.json.sha256 (edited or damaged)".into());
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    report.encrypted = manifest.encryption.is_some();
    // The identity is tried before anything else: a wrong one is the operator's to fix, not a
    // damaged bundle.
    let reader = match BundleReader::open(bundle_dir, &manifest, identity) {
        Ok(r) => Some(r),
        Err(CryptError::NoIdentity { .. }) if restore_with.is_none() => {
            report.notes.push(
                "the bundle is encrypted and no identity was given: only the files' checksums (of the ciphertext) were checked; give --identity FILE to read the archive back".into(),
            );
            None
        }
        Err(e) if e.is_identity() => return Err(VerifyError::Identity(e)),
        Err(e) => {
            report.problems.push(e.to_string());
            None
        }
    };
    progress.step("files", "checking the size and sha256 of every file");
    report.checks.push("files".into());
    report.problems.extend(check_files(bundle_dir, &manifest.files));
    report.counted.files = manifest.files.len();
    report.counted.bytes = manifest.files.iter().map(|f| f.size).sum();
    if let Some(reader) = &reader {
        progress.step("archive", "reading the archive back");
        report.checks.push("archive".into());
        match reader
            .read(ARCHIVE)
            .map_err(|e| e.to_string())
            .and_then(|f| read_archive(std::io::BufReader::new(f)).map_err(|e| e.to_string()))
        {
            Ok(summary) => {
                let dbs: std::collections::BTreeSet<&str> =
                    summary.namespaces.keys().filter_map(|ns| ns.split('.').next()).collect();
                report.counted.databases = dbs.len();
                report.counted.collections = summary.namespaces.len();
                report.counted.documents = summary.namespaces.values().map(|n| n.documents).sum();
                report.problems.extend(compare_archive(&manifest, &summary));
            }
            Err(e) => report.problems.push(format!("{ARCHIVE}: {e}")),
        }
        if manifest.artifacts.location == Location::Bundle {
            report.checks.push("artifacts".into());
            match read_inventory(reader) {
                Ok(n) if n != manifest.artifacts.objects => report.problems.push(format!(
                    "artifacts/{INVENTORY}: {}, the manifest says {}",
                    crate::util::count(n, "object"),
                    manifest.artifacts.objects
                )),
                Ok(n) => report.counted.artifacts = n as usize,
                Err(e) => report.problems.push(format!("artifacts/{INVENTORY}: {e}")),
            }
        }
    }
    if let (Some(docker), Some(reader), true) = (restore_with, &reader, report.problems.is_empty()) {
        progress.step("restore-test", format!("restoring into a throwaway {}", manifest.mongo.image));
        report.checks.push("restore-test".into());
        let start = Instant::now();
        match reader.plain_dir(&[ARCHIVE]) {
            Ok(plain) => match restore_test(docker, plain.path(), &manifest, progress).await {
                Ok(p) => report.problems.extend(p),
                Err(e) => report.problems.push(format!("restore test: {e}")),
            },
            Err(e) => report.problems.push(format!("restore test: {e}")),
        }
        report.restore_seconds = Some(crate::util::secs(start.elapsed()));
    }
    report.ok = report.problems.is_empty();
    manifest.verifications.push(Verification {
        at: now_rfc3339(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        checks: report.checks.clone(),
        ok: report.ok,
        problems: report.problems.clone(),
    });
    // Only the record changes; the manifest stays consistent with its checksum file.
    if let Err(e) = manifest.save(bundle_dir) {
        report.problems.push(format!("cannot record the verification in the manifest: {e}"));
        report.ok = false;
    }
    Ok(report)
}

/// The number of objects the bundle's artifact inventory lists (each line checked to be an entry).
fn read_inventory(reader: &BundleReader) -> Result<u64, String> {
    let text = reader.read_all(&format!("artifacts/{INVENTORY}")).map_err(|e| e.to_string())?;
    let text = String::from_utf8(text).map_err(|e| e.to_string())?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<InventoryEntry>(line).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

fn check_files(dir: &Path, expected: &[FileEntry]) -> Vec<String> {
    let listed = match crate::util::list_files(dir) {
        Ok(l) => l,
        Err(e) => return vec![format!("cannot list the bundle: {e}")],
    };
    let mut actual = Vec::new();
    for rel in listed {
        let path = rel.to_string_lossy().into_owned();
        if path == MANIFEST || path == MANIFEST_SUM {
            continue;
        }
        match bundle::file_sha256(&dir.join(&rel)) {
            Ok((sha256, size)) => actual.push(FileEntry { path, size, sha256 }),
            Err(e) => return vec![format!("{path}: cannot read: {e}")],
        }
    }
    compare_files(expected, &actual)
}

/// Restores into a fresh container of the bundle's mongo image on an internal network, then
/// compares every collection's count and content digest with the archive's.
/// The throwaway mongo's name on its network.
const THROWAWAY: &str = "mongo";

/// Why a restore test could not run to its comparison.
#[derive(Debug, thiserror::Error)]
enum RestoreTestError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Mongo(#[from] MongoReadError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

async fn restore_test(
    docker: &Docker,
    bundle_dir: &Path,
    m: &Manifest,
    progress: &Progress,
) -> Result<Vec<String>, RestoreTestError> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let id = format!("mcu-verify-{}-{nanos:x}", std::process::id());
    let labels = dk::owner_labels();
    dk::create_network(docker, &id, true, labels.clone()).await?;
    let result = async {
        let cid = dk::run_detached(docker, &id, &m.mongo.image, &id, vec![THROWAWAY.into()], labels).await?;
        let outcome = async {
            wait_mongo(docker, &id, THROWAWAY, Duration::from_secs(60)).await?;
            let target = MongoTarget { image: &m.mongo.image, network: &id, host: THROWAWAY };
            let (read, _bar) = restore::archive_bar(progress, bundle_dir);
            restore::mongo(docker, bundle_dir, &target, m.mongo.ferretdb, read).await?;
            compare_restored(docker, &id, m).await
        }
        .await;
        dk::remove_container(docker, &cid).await;
        outcome
    }
    .await;
    dk::remove_network(docker, &id).await;
    result
}

async fn compare_restored(docker: &Docker, network: &str, m: &Manifest) -> Result<Vec<String>, RestoreTestError> {
    let q = MongoQuery { uri: mongo_uri(THROWAWAY), dbs: vec![], counts: true, all_dbs: true, digests: true };
    let report = read_mongo(docker, network, q).await?;
    let mut problems = Vec::new();
    for (ns, want) in m.archive.namespaces.iter().filter(|(_, n)| n.kind.is_empty()) {
        let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
        if ["admin", "config", "local"].contains(&db) {
            continue;
        }
        let got =
            report.databases.iter().find(|d| d.name == db).and_then(|d| d.collections.iter().find(|c| c.name == coll));
        match got {
            None if want.documents == 0 => {}
            None => problems.push(format!("collection {ns}: missing after the restore")),
            Some(c) if c.count != want.documents => problems.push(format!(
                "collection {ns}: {} after the restore, {} in the archive",
                crate::util::count(c.count, "document"),
                want.documents
            )),
            Some(c) if c.digest.as_deref() != Some(want.digest.as_str()) => {
                problems.push(format!("collection {ns}: content differs after the restore"))
            }
            Some(_) => {}
        }
    }
    Ok(problems)
}
