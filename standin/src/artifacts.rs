//! Artifact storage as deployments uses it: an S3 bucket (created at start, like the real service
//! does) holding one object per uploaded artifact, keyed by the image id.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use bson::doc;
use mender_compose_upgrade::engine::s3::{S3Endpoint, client};
use mongodb::Database;
use sha2::{Digest, Sha256};

pub struct Storage {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
}

/// The deployments storage settings from the environment (`DEPLOYMENTS_AWS_*`), unless Azure is used.
pub fn from_env() -> Option<Storage> {
    storage(false)
}

/// The store as devices and users reach it: at `DEPLOYMENTS_AWS_EXTERNAL_URI` when set (the
/// address deployments presigns links for), else where deployments itself reaches it.
pub fn external() -> Option<Storage> {
    storage(true)
}

fn storage(external: bool) -> Option<Storage> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if env("DEPLOYMENTS_STORAGE_DEFAULT").as_deref() == Some("azure") {
        return None;
    }
    let ep = S3Endpoint {
        url: external.then(|| env("DEPLOYMENTS_AWS_EXTERNAL_URI")).flatten().or_else(|| env("DEPLOYMENTS_AWS_URI")),
        region: env("DEPLOYMENTS_AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        access_key: env("DEPLOYMENTS_AWS_AUTH_KEY")?,
        secret_key: env("DEPLOYMENTS_AWS_AUTH_SECRET")?,
    };
    Some(Storage {
        s3: client(&ep),
        bucket: env("DEPLOYMENTS_STORAGE_BUCKET").unwrap_or_else(|| "mender-artifact-storage".into()),
    })
}

impl Storage {
    /// HeadBucket, then CreateBucket, retried while the store starts.
    pub async fn ensure_bucket(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if self.s3.head_bucket().bucket(&self.bucket).send().await.is_ok() {
                return Ok(());
            }
            match self.s3.create_bucket().bucket(&self.bucket).send().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(anyhow::Error::new(e).context(format!("cannot create bucket {}", self.bucket)));
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    pub async fn put(&self, key: &str, size: usize) -> Result<()> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/vnd.mender-artifact")
            .body(ByteStream::from(content(key, size)))
            .send()
            .await
            .with_context(|| format!("upload of artifact {key}"))?;
        Ok(())
    }
}

/// Deterministic bytes for an artifact (a SHA-256 chain seeded by its key).
pub fn content(key: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut block = Sha256::digest(key.as_bytes());
    while out.len() < size {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(size);
    out
}

pub fn image_doc(id: &str, i: u64, size: usize) -> bson::Document {
    doc! {
        "_id": id,
        "meta": {"description": format!("release {i}")},
        "meta_artifact": {"name": format!("release-{i}"), "device_types_compatible": ["raspberrypi4"], "signed": false},
        "size": size as i64,
        "modified": bson::DateTime::now(),
    }
}

/// Two small uploaded artifacts on a fresh install.
pub async fn ensure_samples(db: &Database) -> Result<()> {
    let Some(storage) = from_env() else {
        return Ok(());
    };
    storage.ensure_bucket().await?;
    let images = db.collection::<bson::Document>("images");
    for i in 0..2u64 {
        let id = format!("a0000000-0000-4000-8000-{i:012x}");
        storage.put(&id, 4096).await?;
        images.insert_one(image_doc(&id, i, 4096)).await?;
    }
    Ok(())
}
