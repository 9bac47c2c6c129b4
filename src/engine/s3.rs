//! S3 clients for MinIO-style stores and external buckets: path-style addressing, a fixed
//! region, static credentials, and checksums only where S3 requires them (S3-compatible stores
//! reject the SDK's default CRC trailers).

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::{Builder, tls};
use futures_util::{StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::store::{Copied, InventoryEntry, Listed, ObjectStore, StoreError, Versioning, chain, write_inventory};

/// Where and how to reach an S3 API.
#[derive(Clone)]
pub struct S3Endpoint {
    /// e.g. `http://minio:9000`; `None` means AWS itself.
    pub url: Option<String>,
    /// The region (`us-east-1` for most S3-compatible stores).
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret key (never printed).
    pub secret_key: String,
}

impl std::fmt::Debug for S3Endpoint {
    // The keys never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint").field("url", &self.url).field("region", &self.region).finish_non_exhaustive()
    }
}

/// A client for `ep`: path-style, its region, static keys, checksums only where S3 requires them.
pub fn client(ep: &S3Endpoint) -> aws_sdk_s3::Client {
    // Plain-HTTP stores (inside a stack, emulators) need no roots; the helper image has none.
    let https = ep.url.as_deref().is_none_or(|u| u.starts_with("https://"));
    let trust = tls::TrustStore::empty().with_native_roots(https);
    let context = tls::TlsContext::builder().with_trust_store(trust).build().unwrap_or_default();
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    let mut cfg = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(ep.region.clone()))
        .credentials_provider(Credentials::new(&ep.access_key, &ep.secret_key, None, None, "mender-compose-upgrade"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(url) = &ep.url {
        cfg = cfg.endpoint_url(url);
    }
    aws_sdk_s3::Client::from_conf(cfg.build())
}

/// A bucket behind an S3 API.
pub struct S3Bucket {
    /// The client (endpoint, region, keys).
    pub client: aws_sdk_s3::Client,
    /// The bucket's name.
    pub bucket: String,
}

impl S3Bucket {
    /// The bucket `bucket` at `ep`.
    pub fn new(ep: &S3Endpoint, bucket: &str) -> S3Bucket {
        S3Bucket { client: client(ep), bucket: bucket.to_string() }
    }

    fn list_err(&self, e: impl std::error::Error) -> StoreError {
        StoreError::List { store: self.describe(), message: chain(&e) }
    }

    /// Server-side copies of every object into `dest/prefix/`, inventoried in `dir` under their own
    /// keys (the backup bucket is created when missing).
    ///
    /// # Errors
    /// A listing, a copy, or the inventory write.
    pub async fn copy_to_bucket(&self, dest: &str, prefix: &str, dir: &Path) -> Result<Copied, StoreError> {
        S3Bucket { client: self.client.clone(), bucket: dest.to_string() }.create().await?;
        let listed = self.list(false).await?;
        let entries: Vec<InventoryEntry> = futures_util::stream::iter(listed)
            .map(|o| async move {
                let target = if prefix.is_empty() { o.key.clone() } else { format!("{prefix}/{}", o.key) };
                // The copy source is `bucket/key`, the key URL-encoded with its slashes kept.
                let source = format!("{}/{}", self.bucket, utf8_percent_encode(&o.key, KEY));
                self.client
                    .copy_object()
                    .copy_source(source)
                    .bucket(dest)
                    .key(&target)
                    .send()
                    .await
                    .map_err(|e| StoreError::Object { op: "copy", key: o.key.clone(), message: chain(&e) })?;
                Ok::<_, StoreError>(InventoryEntry {
                    key: o.key,
                    size: o.size,
                    etag: o.etag,
                    version_id: None,
                    sha256: String::new(),
                })
            })
            .buffered(8)
            .try_collect()
            .await?;
        write_inventory(dir, &entries)
    }
}

/// What a key keeps unencoded in a copy source: RFC 3986 unreserved characters and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

#[async_trait]
impl ObjectStore for S3Bucket {
    fn describe(&self) -> String {
        format!("bucket {}", self.bucket)
    }

    async fn list(&self, versions: bool) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        if !versions {
            let mut pages = self.client.list_objects_v2().bucket(&self.bucket).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.list_err(e))?;
                for o in page.contents() {
                    if let Some(key) = o.key() {
                        out.push(Listed {
                            key: key.to_string(),
                            size: o.size().unwrap_or(0) as u64,
                            etag: o.e_tag().map(str::to_string),
                            version_id: None,
                        });
                    }
                }
            }
            return Ok(out);
        }
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .map_err(|e| self.list_err(e))?;
            for v in page.versions().iter().filter(|v| v.is_latest() == Some(true)) {
                out.push(Listed {
                    key: v.key().unwrap_or_default().to_string(),
                    size: v.size().unwrap_or(0) as u64,
                    etag: v.e_tag().map(str::to_string),
                    version_id: v.version_id().map(str::to_string),
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        Ok(out)
    }

    /// Some S3-compatible stores answer GetBucketVersioning with a body the SDK cannot read; then
    /// the object versions themselves tell (a version id other than "null" exists only where
    /// versioning was enabled).
    async fn versioning(&self) -> Result<Versioning, StoreError> {
        use aws_sdk_s3::types::BucketVersioningStatus;
        match self.client.get_bucket_versioning().bucket(&self.bucket).send().await {
            Ok(v) => Ok(match v.status() {
                Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
                Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
                _ => Versioning::Off,
            }),
            // Any failure other than a missing bucket or a refusal: look at the versions instead.
            Err(e) if !matches!(e.raw_response().map(|r| r.status().as_u16()), Some(403 | 404)) => {
                let versions = self
                    .client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .max_keys(100)
                    .send()
                    .await
                    .map_err(|e| self.list_err(e))?;
                let versioned = versions.versions().iter().any(|v| v.version_id().is_some_and(|id| id != "null"));
                Ok(if versioned { Versioning::Enabled } else { Versioning::Off })
            }
            Err(e) => Err(self.list_err(e)),
        }
    }

    async fn get(
        &self,
        key: &str,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(String, u64), StoreError> {
        let oerr = |message: String| StoreError::Object { op: "download", key: key.to_string(), message };
        let resp = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| oerr(chain(&e)))?;
        let mut body = resp.body;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| oerr(chain(&e)))? {
            h.update(&chunk);
            n += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| oerr(e.to_string()))?;
        }
        Ok((hex::encode(h.finalize()), n))
    }

    async fn put(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let oerr = |message: String| StoreError::Object { op: "upload", key: key.to_string(), message };
        let body = ByteStream::from_path(path).await.map_err(|e| oerr(chain(&e)))?;
        self.client.put_object().bucket(&self.bucket).key(key).body(body).send().await.map_err(|e| oerr(chain(&e)))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| StoreError::Object {
            op: "delete",
            key: key.to_string(),
            message: chain(&e),
        })?;
        Ok(())
    }

    async fn exists(&self) -> Result<bool, StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(false),
            Err(e) => Err(self.list_err(e)),
        }
    }

    async fn create(&self) -> Result<(), StoreError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_err() {
            self.client.create_bucket().bucket(&self.bucket).send().await.map_err(|e| self.list_err(e))?;
        }
        Ok(())
    }
}
