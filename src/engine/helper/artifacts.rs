//! Artifact copies inside the helper sidecar: the stack's own S3 store is only reachable on the
//! project network. The bundle directory is bind-mounted; credentials come in the environment.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::s3::{S3Bucket, S3Endpoint};
use crate::engine::store::{self, Copied, InventoryEntry};

/// Environment variable that carries the store's access key id into the helper (never on its
/// command line).
pub const KEY_ENV: &str = "MCU_S3_ACCESS_KEY";
/// Environment variable that carries the store's secret key into the helper.
pub const SECRET_ENV: &str = "MCU_S3_SECRET_KEY";

/// What the helper does with the artifact bucket.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactsOp {
    /// bucket → dir (objects + inventory)
    Backup,
    /// dir → bucket
    Restore,
    /// dir → bucket, and every object not in the dir's inventory deleted: the bucket as the copy
    Mirror,
    /// the bucket's current inventory (keys, sizes, sha256)
    Inventory,
    /// object count and bytes only
    Size,
}

/// An artifact job for the helper, sent in its request (credentials in [`KEY_ENV`] and
/// [`SECRET_ENV`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactsJob {
    /// What to do.
    pub op: ArtifactsOp,
    /// The store's S3 endpoint as seen on the project network (`http://minio:9000`).
    pub endpoint: String,
    /// The artifact bucket (`mender-artifact-storage`).
    pub bucket: String,
    /// The region to sign for (`us-east-1`).
    pub region: String,
    /// The directory inside the sidecar.
    pub dir: String,
}

/// What an artifact job produced; `error` set when it failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArtifactsResult {
    /// Objects and bytes copied (or counted, for [`ArtifactsOp::Size`]).
    pub copied: Option<Copied>,
    /// The bucket's objects, for [`ArtifactsOp::Inventory`].
    pub inventory: Option<Vec<InventoryEntry>>,
    /// Why the job failed (the store's error, as text).
    pub error: Option<String>,
}

/// The store at `url` (`None`: AWS's own), signed for `region` with the keys of the helper's
/// environment ([`KEY_ENV`], [`SECRET_ENV`]).
pub(super) fn env_endpoint(url: Option<String>, region: &str) -> S3Endpoint {
    S3Endpoint {
        url,
        region: region.to_string(),
        access_key: std::env::var(KEY_ENV).unwrap_or_default(),
        secret_key: std::env::var(SECRET_ENV).unwrap_or_default(),
    }
}

/// Runs a job against the bucket with the credentials of the helper's environment; a failure is
/// in [`ArtifactsResult::error`].
pub async fn run(job: &ArtifactsJob) -> ArtifactsResult {
    let ep = env_endpoint(Some(job.endpoint.clone()), &job.region);
    let bucket = S3Bucket::new(&ep, &job.bucket);
    let dir = Path::new(&job.dir);
    let r = match job.op {
        ArtifactsOp::Backup => store::to_dir(&bucket, dir).await.map(|c| (Some(c), None)),
        ArtifactsOp::Restore => store::from_dir(&bucket, dir).await.map(|c| (Some(c), None)),
        ArtifactsOp::Mirror => store::mirror_from_dir(&bucket, dir).await.map(|(c, _)| (Some(c), None)),
        ArtifactsOp::Inventory => store::inventory(&bucket).await.map(|i| (None, Some(i))),
        ArtifactsOp::Size => store::size(&bucket).await.map(|c| (Some(c), None)),
    };
    match r {
        Ok((copied, inventory)) => ArtifactsResult { copied, inventory, error: None },
        Err(e) => ArtifactsResult { error: Some(e.to_string()), ..Default::default() },
    }
}
