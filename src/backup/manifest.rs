//! `manifest.json`: what a bundle holds and how it was proven. The comparisons `verify` makes are
//! pure functions here, tested on data.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bundle::{MANIFEST, MANIFEST_SUM};
pub use crate::engine::store::InventoryEntry;
use crate::engine::store::Versioning;
use mongo_archive::{ArchiveSummary, Namespace};

/// The manifest format this tool writes (`format` in `manifest.json`); raised when a field changes
/// meaning.
pub const FORMAT: u32 = 1;

/// The content of `manifest.json`: what the bundle holds (versions, images, databases, files,
/// artifacts) and every verification and rehearsal made with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`] at the time of writing.
    pub format: u32,
    /// The mender-compose-upgrade version that took the backup.
    pub tool_version: String,
    /// When the bundle was completed (RFC 3339, UTC).
    pub created: String,
    /// The compose project the backup was taken from (`menderproduction`).
    pub project: String,
    /// The Mender release the stack ran (`3.7.11`); `None` when the images matched no release of the
    /// catalog.
    pub mender_version: Option<Version>,
    /// Every container of the project with the image it ran.
    pub services: Vec<ServiceImage>,
    /// The MongoDB server the dump was read from.
    pub mongo: MongoInfo,
    /// Per database, as the driver read it with the writers stopped.
    pub databases: Vec<DatabaseInfo>,
    /// What the archive holds, read back from the stream as it was written.
    pub archive: ArchiveSummary,
    /// Size and sha256 of every file of the bundle except the manifest and its checksum.
    pub files: Vec<FileEntry>,
    /// The artifact copy (or why there is none).
    pub artifacts: ArtifactsInfo,
    /// Every `verify` of the bundle, oldest first.
    #[serde(default)]
    pub verifications: Vec<Verification>,
    /// Rehearsals of upgrades on a staging copy restored from this bundle.
    #[serde(default)]
    pub rehearsals: Vec<RehearsalRecord>,
    /// The stack the bundle was taken of, to tell it from a stack recreated under the same project
    /// name (bundles of version 0.1 have none).
    #[serde(default)]
    pub stack: Option<StackIdentity>,
    /// Seconds the writers were stopped while the bundle was taken.
    #[serde(default)]
    pub writers_stopped_secs: Option<f64>,
    /// Set when every file but the manifest and its checksum is age-encrypted (and to whom);
    /// `files[].sha256` is then of the ciphertext. Absent for a plain bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::crypt::Encryption>,
    /// The sha256 of deviceauth's and useradm's signing keys when the bundle was taken
    /// ([`crate::snapshot::keys`]): `status` and the gates name a key that differs. Absent in
    /// bundles of earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<crate::snapshot::keys::KeyDigest>,
}

/// Which stack a bundle is of: when each of its databases was born (its first `migration_info`
/// entry). A stack destroyed and brought up again under the same project has the same database
/// names but new births; an upgrade, a rollback or a restore of the same data keeps them.
/// (Docker's volume creation times cannot serve: a local volume reports a new one whenever its
/// top directory changes.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackIdentity {
    /// Database name → when it was born (RFC 3339).
    pub databases: BTreeMap<String, String>,
}

impl StackIdentity {
    /// Why a bundle recorded as `recorded` is not of this (live) stack; `None` when it is.
    pub fn differs_from(&self, recorded: Option<&StackIdentity>) -> Option<String> {
        let Some(recorded) = recorded else {
            return Some("taken by an older version, which did not record where its data came from".into());
        };
        if recorded.databases.is_empty() {
            return Some("it records no database births to compare".into());
        }
        for (db, born) in &recorded.databases {
            match self.databases.get(db) {
                None => return Some(format!("its database {db} is gone")),
                Some(now) if now != born => {
                    return Some(format!("database {db} was created anew ({now}; the bundle's was born {born})"));
                }
                Some(_) => {}
            }
        }
        None
    }
}

/// What a rehearsal proved, kept in the bundle's manifest and shown by `upgrade`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RehearsalRecord {
    /// When it ended (RFC 3339).
    pub at: String,
    /// The release the staging copy was upgraded to.
    pub to: Version,
    /// Whether every hop passed its gates on staging.
    pub ok: bool,
    /// Seconds the production services are expected to be down for all hops.
    pub estimate_secs: f64,
    /// Per hop (`3.4.0 → 3.6.5`), its seconds on staging.
    pub hops: Vec<(String, f64)>,
    /// What failed on staging.
    pub failure: Option<String>,
}

/// A compose service's image when the bundle was taken, to bring the same bits back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceImage {
    /// Compose service name (`mender-deployments`).
    pub service: String,
    /// The image reference the container was created from (`mendersoftware/deployments:mender-3.7.11`).
    pub image: String,
    /// The local image id (`sha256:…`).
    pub image_id: String,
    /// The image's registry digests (`mendersoftware/deployments@sha256:…`); empty for an image built
    /// or loaded locally.
    pub repo_digests: Vec<String>,
}

/// The stack's MongoDB when the bundle was taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MongoInfo {
    /// Compose service name (`mongo`).
    pub service: String,
    /// The image the dump and a restore test run (`mongo:4.4`): mongodump and mongorestore of that
    /// server.
    pub image: String,
    /// The server's `buildInfo` version (`4.4.29`).
    pub server_version: Option<String>,
    /// The server's featureCompatibilityVersion (`4.4`).
    pub fcv: Option<String>,
    /// The server is FerretDB (the test bed's stand-in), not mongod.
    pub ferretdb: bool,
}

/// One database's state with the writers stopped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Database name (`deployment_service`, `useradm`, …).
    pub name: String,
    /// Newest version in its `migration_info` collection (`1.2.11`); `None` for a database Mender did
    /// not migrate.
    pub migration: Option<String>,
    /// Document count per collection, exact: the documents of the collection in the dump (bundles
    /// taken by earlier versions counted on the server just before the dump).
    pub collections: BTreeMap<String, u64>,
}

/// The databases of a dump as the manifest records them: each database of the archive but MongoDB's
/// own (`admin`, `config`, `local`), its collections' document counts as the archive holds them
/// (views left out: they hold no documents), and the newest `migration_info` version `observed`
/// on the live stack (which the stopped writers cannot change).
pub fn databases_from_archive(archive: &ArchiveSummary, observed: &[crate::snapshot::DbState]) -> Vec<DatabaseInfo> {
    let mut dbs: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for (ns, n) in archive.namespaces.iter().filter(|(_, n)| n.kind != "view") {
        let Some((db, coll)) = ns.split_once('.') else { continue };
        if ["admin", "config", "local"].contains(&db) {
            continue;
        }
        dbs.entry(db).or_default().insert(coll.to_string(), n.documents);
    }
    dbs.into_iter()
        .map(|(name, collections)| DatabaseInfo {
            name: name.to_string(),
            migration: observed.iter().find(|d| d.name == name).and_then(|d| d.migration.clone()),
            collections,
        })
        .collect()
}

/// A file of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the bundle directory (`mongo.archive.gz`, `compose/prod.yml`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content sha256, hex.
    pub sha256: String,
}

/// Where the stack kept its artifacts when the bundle was taken.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactsKind {
    /// An S3 store inside the stack, on a Docker volume.
    Volume,
    /// An S3 bucket outside the stack.
    S3,
    /// An Azure Blob container.
    Azure,
    /// Not backed up (`--skip-artifacts`).
    #[default]
    Skipped,
}

/// Where a bundle's copies of the artifacts are: in `manifest.json` as `bundle`, `versioning`,
/// `none`, or `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(into = "String", try_from = "String")]
pub enum Location {
    /// In the bundle: `artifacts/objects/` and `artifacts/inventory.jsonl`.
    Bundle,
    /// The bucket keeps versions; the inventory records the current version of every object.
    Versioning,
    /// Server-side copies in another bucket.
    Bucket {
        /// The backup bucket.
        bucket: String,
        /// The key prefix inside it (may be empty).
        prefix: String,
    },
    /// No copies.
    #[default]
    None,
}

impl From<Location> for String {
    fn from(l: Location) -> String {
        l.to_string()
    }
}

impl TryFrom<String> for Location {
    type Error = String;

    fn try_from(s: String) -> Result<Location, String> {
        match s.as_str() {
            "bundle" => Ok(Location::Bundle),
            "versioning" => Ok(Location::Versioning),
            "none" => Ok(Location::None),
            other => match other.strip_prefix("s3://") {
                Some(rest) => {
                    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                    Ok(Location::Bucket { bucket: bucket.into(), prefix: prefix.into() })
                }
                None => Err(format!("unknown artifacts location {other:?}")),
            },
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Bundle => f.write_str("bundle"),
            Location::Versioning => f.write_str("versioning"),
            Location::None => f.write_str("none"),
            Location::Bucket { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The artifacts part of a bundle: what was copied or recorded, and where.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactsInfo {
    /// Where the stack keeps them.
    pub kind: ArtifactsKind,
    /// The bucket or container.
    pub bucket: Option<String>,
    /// Objects copied or recorded.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Where the copies are.
    pub location: Location,
    /// The store's versioning when the bundle was taken (external stores).
    pub versioning: Option<Versioning>,
    /// Why there are no copies.
    pub note: Option<String>,
}

/// One `verify` (or staging restore) of the bundle and its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verification {
    /// When it ended (RFC 3339).
    pub at: String,
    /// The mender-compose-upgrade version that ran it.
    pub tool_version: String,
    /// What was checked: `files`, `archive`, `artifacts`, `restore-test`, `staging:<name>`.
    pub checks: Vec<String>,
    /// Every check passed.
    pub ok: bool,
    /// What failed, one line each, in the operator's terms.
    pub problems: Vec<String>,
}

impl Manifest {
    /// Writes the manifest and its checksum file (which makes an edited manifest detectable),
    /// each atomically with mode 0600.
    ///
    /// # Errors
    /// What the file system answers.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        write_private(&dir.join(MANIFEST), &text)?;
        let sum = format!("{}  {MANIFEST}\n", hex::encode(Sha256::digest(&text)));
        write_private(&dir.join(MANIFEST_SUM), sum.as_bytes())
    }

    /// Whether a restore test (a throwaway mongo, or a staging copy) proved the bundle.
    pub fn restore_tested(&self) -> bool {
        self.verifications.iter().any(|v| v.ok && v.checks.iter().any(|c| c == "restore-test"))
    }

    /// The newest successful rehearsal of an upgrade to `to` from this bundle.
    pub fn proven_rehearsal(&self, to: &Version) -> Option<RehearsalRecord> {
        self.rehearsals.iter().rev().find(|r| r.ok && &r.to == to).cloned()
    }

    /// Reads the manifest of the bundle in `dir`.
    ///
    /// # Errors
    /// [`ManifestError::Read`] for a missing file, [`ManifestError::Edited`] when the manifest does
    /// not match its checksum file, [`ManifestError::Parse`] for a manifest of another shape.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read(dir.join(MANIFEST))
            .map_err(|e| ManifestError::Read(dir.join(MANIFEST).display().to_string(), e))?;
        let sum = std::fs::read_to_string(dir.join(MANIFEST_SUM))
            .map_err(|e| ManifestError::Read(dir.join(MANIFEST_SUM).display().to_string(), e))?;
        let expected = sum.split_whitespace().next().unwrap_or_default();
        if hex::encode(Sha256::digest(&text)) != expected {
            return Err(ManifestError::Edited);
        }
        serde_json::from_slice(&text).map_err(|e| ManifestError::Parse(e.to_string()))
    }
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    crate::util::write_atomic(path, data, crate::util::Perm::Private)
}

/// Why a bundle's manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// `manifest.json` or its checksum file cannot be read (path, then the error).
    #[error("cannot read {0}: {1}")]
    Read(String, io::Error),
    /// The manifest does not match its checksum file.
    #[error("manifest.json does not match manifest.json.sha256: the manifest was edited or damaged")]
    Edited,
    /// The manifest is not valid JSON of this format.
    #[error("manifest.json is not a manifest: {0}")]
    Parse(String),
}

/// Files whose size or sha256 differ from the manifest, or that are missing or unlisted.
pub fn compare_files(expected: &[FileEntry], actual: &[FileEntry]) -> Vec<String> {
    let have: BTreeMap<&str, &FileEntry> = actual.iter().map(|f| (f.path.as_str(), f)).collect();
    let want: BTreeMap<&str, &FileEntry> = expected.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut problems = Vec::new();
    for (path, e) in &want {
        match have.get(path) {
            None => problems.push(format!("{path}: missing")),
            Some(a) if a.size != e.size => problems.push(format!("{path}: size {} instead of {}", a.size, e.size)),
            Some(a) if a.sha256 != e.sha256 => problems.push(format!("{path}: sha256 differs (content changed)")),
            Some(_) => {}
        }
    }
    for path in have.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("{path}: not listed in the manifest"));
    }
    problems
}

/// Namespaces of the archive as read now against the manifest's record of the archive and the
/// driver's counts at backup time.
pub fn compare_archive(m: &Manifest, read: &ArchiveSummary) -> Vec<String> {
    let mut problems = Vec::new();
    for (ns, want) in &m.archive.namespaces {
        match read.namespaces.get(ns) {
            None => problems.push(format!("collection {ns}: missing from the archive")),
            Some(got) if got.documents != want.documents => problems.push(format!(
                "collection {ns}: {} in the archive, the manifest says {}",
                crate::util::count(got.documents, "document"),
                want.documents
            )),
            Some(got) if got.digest != want.digest => {
                problems.push(format!("collection {ns}: content digest differs from the manifest"))
            }
            Some(_) => {}
        }
    }
    for ns in read.namespaces.keys().filter(|ns| !m.archive.namespaces.contains_key(*ns)) {
        problems.push(format!("collection {ns}: in the archive but not in the manifest"));
    }
    for db in &m.databases {
        for (coll, count) in &db.collections {
            let ns = format!("{}.{coll}", db.name);
            let in_archive = read.namespaces.get(&ns).map(|n: &Namespace| n.documents);
            if in_archive.is_some_and(|n| n != *count) {
                problems.push(format!(
                    "collection {ns}: {} in the archive, the database had {count}",
                    crate::util::count(in_archive.unwrap_or(0), "document")
                ));
            } else if in_archive.is_none() {
                problems.push(format!(
                    "collection {ns}: the database had it ({}) but the archive does not",
                    crate::util::count(*count, "document")
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ns(docs: u64, digest: &str) -> Namespace {
        Namespace { documents: docs, bytes: docs * 10, digest: digest.into(), kind: String::new() }
    }

    #[test]
    fn the_manifest_counts_come_from_the_archive() {
        let mut archive = ArchiveSummary::default();
        archive.namespaces.insert("useradm.users".into(), ns(2, "a"));
        archive.namespaces.insert("useradm.migration_info".into(), ns(3, "m"));
        archive.namespaces.insert("deviceauth.devices".into(), ns(5, "b"));
        archive.namespaces.insert("admin.system.version".into(), ns(1, "v"));
        archive.namespaces.insert("deviceauth.a_view".into(), Namespace { kind: "view".into(), ..ns(0, "") });
        let observed = vec![crate::snapshot::DbState {
            name: "useradm".into(),
            services: vec![],
            exists: true,
            migration: Some("2.0.1".into()),
            expected: None,
            status: crate::snapshot::SchemaStatus::Unknown,
            size_bytes: None,
            born: None,
        }];
        let dbs = databases_from_archive(&archive, &observed);
        let names: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["deviceauth", "useradm"], "MongoDB's own databases are not Mender's data");
        assert_eq!(dbs[0].collections, BTreeMap::from([("devices".to_string(), 5)]), "a view holds no documents");
        assert_eq!(dbs[0].migration, None);
        assert_eq!(dbs[1].collections["users"], 2);
        assert_eq!(dbs[1].migration.as_deref(), Some("2.0.1"));
        let m = Manifest { databases: dbs, archive: archive.clone(), ..manifest() };
        assert!(compare_archive(&m, &archive).is_empty());
    }

    pub(crate) fn manifest() -> Manifest {
        let mut archive = ArchiveSummary::default();
        archive.namespaces.insert("useradm.users".into(), ns(2, "a"));
        archive.namespaces.insert("deviceauth.devices".into(), ns(5, "b"));
        Manifest {
            format: FORMAT,
            tool_version: "0".into(),
            created: "now".into(),
            project: "p".into(),
            mender_version: None,
            services: vec![],
            mongo: MongoInfo::default(),
            databases: vec![DatabaseInfo {
                name: "useradm".into(),
                migration: Some("2.0.1".into()),
                collections: BTreeMap::from([("users".into(), 2)]),
            }],
            archive,
            files: vec![],
            artifacts: ArtifactsInfo::default(),
            verifications: vec![],
            rehearsals: vec![],
            stack: None,
            writers_stopped_secs: None,
            encryption: None,
            keys: vec![],
        }
    }

    #[test]
    fn archive_differences_name_the_collection() {
        let m = manifest();
        assert!(compare_archive(&m, &m.archive.clone()).is_empty());
        let mut read = m.archive.clone();
        read.namespaces.get_mut("deviceauth.devices").unwrap().documents = 4;
        read.namespaces.remove("useradm.users");
        let p = compare_archive(&m, &read);
        assert!(p.iter().any(|x| x.starts_with("collection deviceauth.devices: 4 documents")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("useradm.users: missing")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("the database had it (2 documents)")), "{p:?}");
    }

    #[test]
    fn file_differences_name_the_file() {
        let f = |p: &str, s: u64, h: &str| FileEntry { path: p.into(), size: s, sha256: h.into() };
        let want = vec![f("mongo.archive.gz", 10, "x"), f("compose/a.yml", 3, "y"), f("snapshot.json", 1, "z")];
        let have = vec![f("mongo.archive.gz", 10, "X"), f("compose/a.yml", 2, "y"), f("extra", 1, "e")];
        let p = compare_files(&want, &have);
        assert_eq!(
            p,
            [
                "compose/a.yml: size 2 instead of 3",
                "mongo.archive.gz: sha256 differs (content changed)",
                "snapshot.json: missing",
                "extra: not listed in the manifest"
            ]
        );
    }

    #[test]
    fn a_database_born_again_makes_another_stack() {
        let id = |pairs: &[(&str, &str)]| StackIdentity {
            databases: pairs.iter().map(|(d, b)| (d.to_string(), b.to_string())).collect(),
        };
        let then = id(&[("useradm", "2026-11-01T10:00:00Z")]);
        let same = id(&[("deviceauth", "x"), ("useradm", "2026-11-01T10:00:00Z")]);
        assert_eq!(same.differs_from(Some(&then)), None, "a database added since does not matter");
        let again = id(&[("useradm", "2026-12-01T09:00:00Z")]);
        assert!(again.differs_from(Some(&then)).unwrap().contains("useradm was created anew"));
        assert!(StackIdentity::default().differs_from(Some(&then)).unwrap().contains("is gone"));
        assert!(same.differs_from(None).unwrap().contains("older version"));
        assert!(same.differs_from(Some(&StackIdentity::default())).is_some());
    }

    #[test]
    fn edited_manifest_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest();
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        let text = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap().replace("\"2.0.1\"", "\"2.0.3\"");
        std::fs::write(dir.path().join(MANIFEST), text).unwrap();
        assert!(matches!(Manifest::load(dir.path()), Err(ManifestError::Edited)));
    }
}
