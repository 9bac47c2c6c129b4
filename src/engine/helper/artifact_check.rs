//! The data-plane check of the artifacts inside the helper: every artifact the deployments
//! database references (a sample of them) must have its object in the store with the size the
//! database records. The index can survive an upgrade or a restore while the bytes do not; a
//! device then fails its download long after the upgrade "worked".

use std::collections::HashMap;

use bson::{Document, doc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::s3::S3Bucket;
use crate::engine::store::ObjectStore;

/// What to check (the store's credentials in [`KEY_ENV`](super::KEY_ENV) and
/// [`SECRET_ENV`](super::SECRET_ENV)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactCheckJob {
    /// Connection string, from inside the network (`mongodb://mender-mongo:27017`).
    pub mongo_uri: String,
    /// The deployments database (`deployment_service`).
    pub db: String,
    /// The store's S3 endpoint as seen on the helper's networks (`http://minio:9000`); `None`:
    /// AWS's own.
    pub endpoint: Option<String>,
    /// The artifact bucket (`mender-artifact-storage`).
    pub bucket: String,
    /// The region to sign for.
    pub region: String,
    /// How many artifacts to check; `None`: every one.
    pub sample: Option<u64>,
    /// Chooses the sample: the artifacts whose sha256(seed ‖ id) is smallest, a different
    /// random sample for every seed.
    pub seed: String,
}

/// One artifact checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckedArtifact {
    /// The artifact's id (`images._id`), which is its object's key in the bucket
    /// (deployments@4.6.3:app/app.go `UploadImage`, single tenant).
    pub id: String,
    /// Its name (`meta_artifact.name`), for messages.
    pub name: Option<String>,
    /// The size `images.size` records, in bytes.
    pub recorded: Option<i64>,
    /// The object's size in the store, in bytes; `None`: no such object.
    pub found: Option<u64>,
}

/// What the check saw; `error` when it could not look.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactCheckResult {
    /// Artifacts the deployments database references.
    pub referenced: u64,
    /// The ones checked (the sample), whether or not they passed.
    pub checked: Vec<CheckedArtifact>,
    /// Why MongoDB or the store could not be read.
    pub error: Option<String>,
}

/// Runs `job`; a failure to read is in [`ArtifactCheckResult::error`].
pub async fn run(job: &ArtifactCheckJob) -> ArtifactCheckResult {
    match try_run(job).await {
        Ok(r) => r,
        Err(e) => ArtifactCheckResult { error: Some(e), ..Default::default() },
    }
}

async fn try_run(job: &ArtifactCheckJob) -> Result<ArtifactCheckResult, String> {
    let client = super::mongo::connect(&job.mongo_uri).await.map_err(|e| format!("MongoDB: {e}"))?;
    let images = client.database(&job.db).collection::<Document>("images");
    // Top-level fields only: FerretDB, the test bed's MongoDB, and old servers agree on those.
    let projection = doc! {"_id": 1, "size": 1, "meta_artifact": 1};
    let docs: Vec<Document> = images
        .find(doc! {})
        .projection(projection)
        .await
        .map_err(|e| format!("{}.images: {e}", job.db))?
        .try_collect()
        .await
        .map_err(|e| format!("{}.images: {e}", job.db))?;
    let referenced: Vec<CheckedArtifact> = docs
        .iter()
        .filter_map(|d| {
            Some(CheckedArtifact {
                id: d.get_str("_id").ok()?.to_string(),
                name: d.get_document("meta_artifact").ok().and_then(|m| m.get_str("name").ok()).map(str::to_string),
                recorded: d.get_i64("size").ok().or_else(|| d.get_i32("size").ok().map(i64::from)),
                found: None,
            })
        })
        .collect();
    let total = referenced.len() as u64;
    let mut checked = sample(referenced, job.sample, &job.seed);
    if !checked.is_empty() {
        let ep = super::artifacts::env_endpoint(job.endpoint.clone(), &job.region);
        // One listing, not a request per artifact: a bucket of a few thousand artifacts is a
        // few pages, and the same call answers "all".
        let listed = S3Bucket::new(&ep, &job.bucket).list(false).await.map_err(|e| e.to_string())?;
        let sizes: HashMap<String, u64> = listed.into_iter().map(|o| (o.key, o.size)).collect();
        for a in &mut checked {
            a.found = sizes.get(&a.id).copied();
        }
    }
    Ok(ArtifactCheckResult { referenced: total, checked, error: None })
}

/// At most `n` of `all` (every one for `None`), chosen by the smallest sha256(seed ‖ id): a
/// uniform random sample without a random-number dependency, reproducible from the seed.
fn sample(mut all: Vec<CheckedArtifact>, n: Option<u64>, seed: &str) -> Vec<CheckedArtifact> {
    let Some(n) = n else { return all };
    let rank = |id: &str| Sha256::new().chain_update(seed.as_bytes()).chain_update(id.as_bytes()).finalize();
    all.sort_by_cached_key(|a| rank(&a.id));
    all.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(id: &str) -> CheckedArtifact {
        CheckedArtifact { id: id.into(), name: None, recorded: Some(1), found: None }
    }

    #[test]
    fn a_sample_is_a_seeded_choice_of_n() {
        let all: Vec<CheckedArtifact> = (0..50).map(|i| art(&format!("a{i}"))).collect();
        assert_eq!(sample(all.clone(), None, "s").len(), 50);
        assert_eq!(sample(all.clone(), Some(80), "s").len(), 50);
        let a = sample(all.clone(), Some(5), "one");
        assert_eq!(a.len(), 5);
        assert_eq!(a, sample(all.clone(), Some(5), "one"), "the same seed, the same sample");
        assert_ne!(a, sample(all.clone(), Some(5), "two"), "another seed, another sample");
        assert!(sample(all, Some(0), "s").is_empty());
    }
}
