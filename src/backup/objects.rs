//! Copying a bucket's objects to a directory and back, streamed, several at a time, with an
//! inventory (key, size, ETag, sha256). Used inside the helper sidecar for the stack's own store
//! and on the host for external buckets.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::bundle::private_file;
use super::manifest::InventoryEntry;

pub const INVENTORY: &str = "inventory.jsonl";
pub const OBJECTS: &str = "objects";
const PARALLEL: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("listing bucket {bucket} failed: {message}")]
    List { bucket: String, message: String },
    #[error("copying object {key} failed: {message}")]
    Object { key: String, message: String },
    #[error("writing {path} failed: {source}")]
    Write { path: String, source: std::io::Error },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Copied {
    pub objects: u64,
    pub bytes: u64,
}

/// Where an object's bytes live in the bundle: named by the hash of its key, so that no key
/// (slashes, `..`) can escape the directory.
pub fn object_file(key: &str) -> String {
    format!("{OBJECTS}/{}", hex::encode(Sha256::digest(key.as_bytes())))
}

fn sdk_err(e: impl std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Keys, sizes and ETags of every object (one listing, no reads).
async fn list(s3: &Client, bucket: &str) -> Result<Vec<(String, u64, Option<String>)>, ObjectsError> {
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ObjectsError::List { bucket: bucket.into(), message: sdk_err(e) })?;
        for o in page.contents() {
            if let Some(key) = o.key() {
                out.push((key.to_string(), o.size().unwrap_or(0) as u64, o.e_tag().map(str::to_string)));
            }
        }
    }
    Ok(out)
}

/// How many objects and bytes a bucket holds (for the free-space estimate).
pub async fn bucket_size(s3: &Client, bucket: &str) -> Result<Copied, ObjectsError> {
    let l = list(s3, bucket).await?;
    Ok(Copied { objects: l.len() as u64, bytes: l.iter().map(|o| o.1).sum() })
}

/// Every object of `bucket` into `dir/objects/`, and `dir/inventory.jsonl`.
pub async fn bucket_to_dir(s3: &Client, bucket: &str, dir: &Path) -> Result<Copied, ObjectsError> {
    let listed = list(s3, bucket).await?;
    let entries: Vec<InventoryEntry> = futures_util::stream::iter(listed)
        .map(|(key, size, etag)| download(s3, bucket, dir, key, size, etag))
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    write_inventory(dir, &entries)
}

async fn download(
    s3: &Client,
    bucket: &str,
    dir: &Path,
    key: String,
    size: u64,
    etag: Option<String>,
) -> Result<InventoryEntry, ObjectsError> {
    let oerr = |message: String| ObjectsError::Object { key: key.clone(), message };
    let resp = s3.get_object().bucket(bucket).key(&key).send().await.map_err(|e| oerr(sdk_err(e)))?;
    let path: PathBuf = dir.join(object_file(&key));
    let werr = |source| ObjectsError::Write { path: path.display().to_string(), source };
    let file = private_file(&path).map_err(werr)?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut body = resp.body;
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(|e| oerr(sdk_err(e)))? {
        h.update(&chunk);
        n += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(werr)?;
    }
    out.flush().await.map_err(werr)?;
    out.into_inner().sync_all().await.map_err(werr)?;
    if n != size {
        return Err(oerr(format!("read {n} bytes, the listing said {size}")));
    }
    Ok(InventoryEntry { key, size, etag, version_id: None, sha256: hex::encode(h.finalize()) })
}

/// Reads `dir/inventory.jsonl`.
pub fn read_inventory(dir: &Path) -> Result<Vec<InventoryEntry>, ObjectsError> {
    let path = dir.join(INVENTORY);
    let text = std::fs::read_to_string(&path)
        .map_err(|source| ObjectsError::Write { path: path.display().to_string(), source })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| ObjectsError::Write { path: path.display().to_string(), source: e.into() })
        })
        .collect()
}

/// Uploads every inventoried object from `dir` into `bucket` (created when missing).
pub async fn dir_to_bucket(s3: &Client, bucket: &str, dir: &Path) -> Result<Copied, ObjectsError> {
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ObjectsError::List { bucket: bucket.into(), message: sdk_err(e) })?;
    }
    let entries = read_inventory(dir)?;
    let copied = Copied { objects: entries.len() as u64, bytes: entries.iter().map(|e| e.size).sum() };
    futures_util::stream::iter(entries)
        .map(|e| async move {
            let path = dir.join(object_file(&e.key));
            let body = ByteStream::from_path(&path)
                .await
                .map_err(|err| ObjectsError::Object { key: e.key.clone(), message: sdk_err(err) })?;
            s3.put_object()
                .bucket(bucket)
                .key(&e.key)
                .body(body)
                .send()
                .await
                .map_err(|err| ObjectsError::Object { key: e.key.clone(), message: sdk_err(err) })?;
            Ok::<_, ObjectsError>(())
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(copied)
}

/// The keys, sizes and sha256 of a bucket's objects now (to compare a restore with its inventory).
pub async fn bucket_inventory(s3: &Client, bucket: &str) -> Result<Vec<InventoryEntry>, ObjectsError> {
    let tmp = std::env::temp_dir().join(format!("mcu-inv-{}-{}", std::process::id(), bucket));
    let _ = std::fs::remove_dir_all(&tmp);
    super::bundle::private_dir(&tmp)
        .map_err(|source| ObjectsError::Write { path: tmp.display().to_string(), source })?;
    let r = bucket_to_dir(s3, bucket, &tmp).await.and_then(|_| read_inventory(&tmp));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut v = r?;
    v.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(v)
}

/// Whether a bucket keeps versions. Some S3-compatible stores answer GetBucketVersioning with a
/// body the SDK cannot read; then the object versions themselves tell (a version id other than
/// "null" exists only where versioning was enabled).
pub async fn versioning(s3: &Client, bucket: &str) -> Result<super::artifacts::Versioning, ObjectsError> {
    use super::artifacts::Versioning;
    use aws_sdk_s3::types::BucketVersioningStatus;
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(match v.status() {
            Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        }),
        // Any failure other than a missing bucket or a refusal: look at the versions instead.
        Err(e) if !matches!(e.raw_response().map(|r| r.status().as_u16()), Some(403 | 404)) => {
            let versions = s3
                .list_object_versions()
                .bucket(bucket)
                .max_keys(100)
                .send()
                .await
                .map_err(|e| ObjectsError::List { bucket: bucket.into(), message: sdk_err(e) })?;
            let versioned = versions.versions().iter().any(|v| v.version_id().is_some_and(|id| id != "null"));
            Ok(if versioned { Versioning::Enabled } else { Versioning::Off })
        }
        Err(e) => Err(ObjectsError::List { bucket: bucket.into(), message: sdk_err(e) }),
    }
}

fn write_inventory(dir: &Path, entries: &[InventoryEntry]) -> Result<Copied, ObjectsError> {
    let inventory = dir.join(INVENTORY);
    let werr = |source| ObjectsError::Write { path: inventory.display().to_string(), source };
    let mut f = std::io::BufWriter::new(private_file(&inventory).map_err(werr)?);
    let mut copied = Copied::default();
    for e in entries {
        copied.objects += 1;
        copied.bytes += e.size;
        serde_json::to_writer(&mut f, e).map_err(|e| werr(e.into()))?;
        f.write_all(b"\n").map_err(werr)?;
    }
    f.into_inner().map_err(|e| werr(e.into_error()))?.sync_all().map_err(werr)?;
    Ok(copied)
}

/// The current version of every object of a versioned bucket: restoring means copying these
/// versions back over whatever is current then.
pub async fn record_versions(s3: &Client, bucket: &str, dir: &Path) -> Result<Copied, ObjectsError> {
    let mut entries = Vec::new();
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(|e| ObjectsError::List { bucket: bucket.into(), message: sdk_err(e) })?;
        for v in page.versions().iter().filter(|v| v.is_latest() == Some(true)) {
            entries.push(InventoryEntry {
                key: v.key().unwrap_or_default().to_string(),
                size: v.size().unwrap_or(0) as u64,
                etag: v.e_tag().map(str::to_string),
                version_id: v.version_id().map(str::to_string),
                sha256: String::new(),
            });
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    write_inventory(dir, &entries)
}

/// Server-side copies of every object into `dest/prefix/`, inventoried under their own keys.
pub async fn copy_to_bucket(
    s3: &Client,
    bucket: &str,
    dest: &str,
    prefix: &str,
    dir: &Path,
) -> Result<Copied, ObjectsError> {
    if s3.head_bucket().bucket(dest).send().await.is_err() {
        s3.create_bucket()
            .bucket(dest)
            .send()
            .await
            .map_err(|e| ObjectsError::List { bucket: dest.into(), message: sdk_err(e) })?;
    }
    let listed = list(s3, bucket).await?;
    let entries: Vec<InventoryEntry> = futures_util::stream::iter(listed)
        .map(|(key, size, etag)| async move {
            let target = if prefix.is_empty() { key.clone() } else { format!("{prefix}/{key}") };
            let source = format!("{bucket}/{}", urlencode(&key));
            s3.copy_object()
                .copy_source(source)
                .bucket(dest)
                .key(&target)
                .send()
                .await
                .map_err(|e| ObjectsError::Object { key: key.clone(), message: sdk_err(e) })?;
            Ok::<_, ObjectsError>(InventoryEntry { key, size, etag, version_id: None, sha256: String::new() })
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    write_inventory(dir, &entries)
}

fn urlencode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
