//! One interface for every place artifacts live — the stack's own S3 store (reached from inside
//! the helper sidecar), an external S3 bucket, an Azure Blob container — and the copies made over
//! it: a store into a directory (objects named by the sha256 of their key, with an inventory of
//! key, size, ETag and sha256) and back, streamed, several objects at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::util::private_file;

/// The inventory of a copy, one JSON object per line.
pub const INVENTORY: &str = "inventory.jsonl";
/// The directory of a copy's objects.
pub const OBJECTS: &str = "objects";
/// Objects copied at once.
const PARALLEL: usize = 8;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Listing the bucket or container.
    #[error("listing {store} failed: {message}")]
    List {
        /// `bucket NAME` or `Azure container NAME`.
        store: String,
        /// The service's answer.
        message: String,
    },
    /// Reading, writing or copying one object.
    #[error("{op} of object {key} failed: {message}")]
    Object {
        /// `download`, `upload`, `copy`.
        op: &'static str,
        /// The object's key.
        key: String,
        /// The service's answer.
        message: String,
    },
    /// An object whose bytes do not match the listing.
    #[error("object {key}: read {got} bytes, the listing said {want}")]
    Size {
        /// The object's key.
        key: String,
        /// Bytes read.
        got: u64,
        /// Bytes listed.
        want: u64,
    },
    /// A local file of the copy.
    #[error("writing {path} failed: {source}")]
    Write {
        /// The file.
        path: String,
        /// The file system's answer.
        source: std::io::Error,
    },
    /// The store's settings (endpoint, keys) are unusable.
    #[error("the storage settings are incomplete or invalid: {0}")]
    Settings(String),
}

impl StoreError {
    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Write { path: path.display().to_string(), source }
    }
}

/// Whether a bucket or container keeps earlier versions of its objects.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Versioning {
    /// Every overwrite and delete keeps the version before: the versions are a backup.
    Enabled,
    /// Was enabled, then suspended: new writes keep no versions.
    Suspended,
    /// Never enabled.
    Off,
}

impl std::fmt::Display for Versioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Versioning::Enabled => "enabled",
            Versioning::Suspended => "suspended",
            Versioning::Off => "off",
        })
    }
}

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// The store's ETag.
    pub etag: Option<String>,
    /// The current version's id, when versions were listed and the store keeps them.
    pub version_id: Option<String>,
}

/// One object: a line of a bundle's `artifacts/inventory.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InventoryEntry {
    /// Its key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// The store's ETag.
    pub etag: Option<String>,
    /// The version recorded (a versioned store's backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// sha256 of the bytes, hex; empty when only the version was recorded.
    pub sha256: String,
}

/// How much a copy moved.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Copied {
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Copied {
    fn of<'a>(sizes: impl Iterator<Item = &'a u64>) -> Copied {
        sizes.fold(Copied::default(), |c, s| Copied { objects: c.objects + 1, bytes: c.bytes + s })
    }
}

/// A bucket or container.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `bucket NAME` or `Azure container NAME`, for messages.
    fn describe(&self) -> String;
    /// Every object; with `versions`, each key's current version and its id.
    async fn list(&self, versions: bool) -> Result<Vec<Listed>, StoreError>;
    /// Whether the store keeps versions.
    async fn versioning(&self) -> Result<Versioning, StoreError>;
    /// Streams an object into `out`, hashing it; returns its sha256 (hex) and bytes.
    async fn get(
        &self,
        key: &str,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(String, u64), StoreError>;
    /// Uploads `path` as `key`.
    async fn put(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// Creates the bucket or container when it does not exist.
    async fn create(&self) -> Result<(), StoreError>;
    /// Whether the bucket or container exists (`false` only when the store says it does not).
    ///
    /// # Errors
    /// Any other answer: refused credentials, an unreachable endpoint.
    async fn exists(&self) -> Result<bool, StoreError>;
    /// Deletes the object `key` (the current version; a versioned store keeps the others).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Where an object's bytes live in a copy: named by the hash of its key, so that no key
/// (slashes, `..`) can escape the directory.
pub fn object_file(key: &str) -> String {
    format!("{OBJECTS}/{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// How many objects and bytes a store holds (one listing, no reads).
///
/// # Errors
/// The listing failed.
pub async fn size(store: &dyn ObjectStore) -> Result<Copied, StoreError> {
    let listed = store.list(false).await?;
    Ok(Copied::of(listed.iter().map(|o| &o.size)))
}

/// Every object of `store` into `dir/objects/` (mode 0600, each fsynced, its size checked against
/// the listing), and `dir/inventory.jsonl`.
///
/// # Errors
/// A listing, a download, a size that differs from the listing, or a local write.
pub async fn to_dir(store: &dyn ObjectStore, dir: &Path) -> Result<Copied, StoreError> {
    let listed = store.list(false).await?;
    let entries: Vec<InventoryEntry> =
        futures_util::stream::iter(listed).map(|o| download(store, dir, o)).buffered(PARALLEL).try_collect().await?;
    write_inventory(dir, &entries)
}

async fn download(store: &dyn ObjectStore, dir: &Path, o: Listed) -> Result<InventoryEntry, StoreError> {
    let path: PathBuf = dir.join(object_file(&o.key));
    let file = private_file(&path).map_err(StoreError::write(&path))?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let (sha256, got) = store.get(&o.key, &mut out).await?;
    use tokio::io::AsyncWriteExt;
    out.flush().await.map_err(StoreError::write(&path))?;
    out.into_inner().sync_all().await.map_err(StoreError::write(&path))?;
    if got != o.size {
        return Err(StoreError::Size { key: o.key, got, want: o.size });
    }
    Ok(InventoryEntry { key: o.key, size: got, etag: o.etag, version_id: None, sha256 })
}

/// Uploads every inventoried object of `dir` into `store` (created when missing).
///
/// # Errors
/// The inventory cannot be read, or an upload failed.
pub async fn from_dir(store: &dyn ObjectStore, dir: &Path) -> Result<Copied, StoreError> {
    store.create().await?;
    let entries = read_inventory(dir)?;
    futures_util::stream::iter(&entries)
        .map(|e| async move { store.put(&e.key, &dir.join(object_file(&e.key))).await })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Copied::of(entries.iter().map(|e| &e.size)))
}

/// Makes `store` hold exactly the inventoried objects of `dir`: uploads them, then deletes every
/// other object. Returns what it uploaded and how many it deleted.
///
/// # Errors
/// As [`from_dir`], or a listing or delete that failed.
pub async fn mirror_from_dir(store: &dyn ObjectStore, dir: &Path) -> Result<(Copied, u64), StoreError> {
    let copied = from_dir(store, dir).await?;
    let keep: std::collections::BTreeSet<String> = read_inventory(dir)?.into_iter().map(|e| e.key).collect();
    let extra: Vec<String> =
        store.list(false).await?.into_iter().map(|o| o.key).filter(|k| !keep.contains(k)).collect();
    for key in &extra {
        store.delete(key).await?;
    }
    Ok((copied, extra.len() as u64))
}

/// The current version of every object of a versioned store: restoring means copying these
/// versions back over whatever is current then.
///
/// # Errors
/// The listing or the inventory write.
pub async fn record_versions(store: &dyn ObjectStore, dir: &Path) -> Result<Copied, StoreError> {
    let entries: Vec<InventoryEntry> = store
        .list(true)
        .await?
        .into_iter()
        .map(|o| InventoryEntry {
            key: o.key,
            size: o.size,
            etag: o.etag,
            version_id: o.version_id,
            sha256: String::new(),
        })
        .collect();
    write_inventory(dir, &entries)
}

/// The keys, sizes and sha256 of a store's objects now, sorted by key (to compare a restore with
/// its inventory). Reads every object once, through a temporary directory.
///
/// # Errors
/// As [`to_dir`].
pub async fn inventory(store: &dyn ObjectStore) -> Result<Vec<InventoryEntry>, StoreError> {
    let tmp = std::env::temp_dir().join(format!("mcu-inv-{}-{:x}", std::process::id(), rand_suffix()));
    let r = to_dir(store, &tmp).await.and_then(|_| read_inventory(&tmp));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut v = r?;
    v.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(v)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Reads `dir/inventory.jsonl`.
///
/// # Errors
/// A missing or unreadable file, or a line that is not an entry.
pub fn read_inventory(dir: &Path) -> Result<Vec<InventoryEntry>, StoreError> {
    let path = dir.join(INVENTORY);
    let text = std::fs::read_to_string(&path).map_err(StoreError::write(&path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| StoreError::write(&path)(e.into())))
        .collect()
}

/// Writes `dir/inventory.jsonl` (0600, fsynced); returns what it lists.
///
/// # Errors
/// The file cannot be written.
pub fn write_inventory(dir: &Path, entries: &[InventoryEntry]) -> Result<Copied, StoreError> {
    let path = dir.join(INVENTORY);
    let mut f = std::io::BufWriter::new(private_file(&path).map_err(StoreError::write(&path))?);
    for e in entries {
        serde_json::to_writer(&mut f, e).map_err(|e| StoreError::write(&path)(e.into()))?;
        f.write_all(b"\n").map_err(StoreError::write(&path))?;
    }
    f.into_inner()
        .map_err(|e| StoreError::write(&path)(e.into_error()))?
        .sync_all()
        .map_err(StoreError::write(&path))?;
    Ok(Copied::of(entries.iter().map(|e| &e.size)))
}

/// A message with every cause of `e`, as SDK errors hide the useful part in their sources.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
