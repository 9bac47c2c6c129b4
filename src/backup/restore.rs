//! Restoring a bundle (a library for `verify --restore-test`, staging and rollback): the archive
//! into a given mongo through real `mongorestore --archive --gzip --drop` in a sidecar of the same
//! image, and the artifacts into a given store.

use std::path::Path;

use bollard::Docker;

use super::bundle::ARCHIVE;
use crate::engine::helper::{ArtifactsJob, ArtifactsOp, Request};
use crate::engine::sidecar::{SidecarError, SidecarSpec, helper_artifacts, run_collect, run_helper};
use crate::engine::store::Copied;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("mongorestore failed (exit {code}): {stderr}")]
    Mongorestore { code: i64, stderr: String },
    #[error("emptying the databases before the restore failed: {0}")]
    Wipe(String),
    #[error("restoring the artifacts failed: {0}")]
    Artifacts(String),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
}

/// A mongo to restore into: its image (for the tools), network and host name.
pub struct MongoTarget<'a> {
    pub image: &'a str,
    pub network: &'a str,
    pub host: &'a str,
}

/// The databases exactly as in the bundle: every database but the server's own is dropped first
/// (`--drop` alone would leave collections a migration created), then `mongorestore --drop`.
/// Index restore is skipped on FerretDB, which rejects the `ns` option mongorestore sends with
/// every index; a real mongod gets its indexes.
pub async fn mongo(
    docker: &Docker,
    bundle: &Path,
    target: &MongoTarget<'_>,
    ferretdb: bool,
) -> Result<String, RestoreError> {
    let uri = crate::util::mongo_uri(target.host);
    let r = run_helper(docker, target.network, &Request { wipe: Some(uri.clone()), ..Default::default() }).await?;
    if let Some(Err(e)) = r.wiped {
        return Err(RestoreError::Wipe(e));
    }
    let mut cmd = vec![
        "mongorestore".to_string(),
        format!("--uri={uri}"),
        format!("--archive=/bundle/{ARCHIVE}"),
        "--gzip".into(),
        "--drop".into(),
        "--stopOnError".into(),
    ];
    if ferretdb {
        cmd.push("--noIndexRestore".into());
    }
    let spec = SidecarSpec {
        image: target.image.to_string(),
        cmd,
        network: Some(target.network.to_string()),
        binds: vec![format!("{}:/bundle:ro", bundle.display())],
        ..Default::default()
    };
    let (_, outcome) = run_collect(docker, &spec).await?;
    let tail: Vec<&str> = outcome.stderr.trim().lines().collect();
    let tail = tail[tail.len().saturating_sub(5)..].join("\n");
    if outcome.exit_code != 0 {
        return Err(RestoreError::Mongorestore { code: outcome.exit_code, stderr: tail });
    }
    Ok(tail)
}

/// Where an in-stack S3 store is, from inside its network.
pub struct StoreTarget<'a> {
    pub network: &'a str,
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// Uploads the bundle's artifact copies into the store (through the helper on its network); with
/// `exact`, also deletes every object the bundle does not have, so that the store holds exactly
/// the bundle's objects.
///
/// # Errors
/// The helper failed, or reported the store's error.
pub async fn artifacts(
    docker: &Docker,
    bundle: &Path,
    t: &StoreTarget<'_>,
    exact: bool,
) -> Result<Copied, RestoreError> {
    let job = ArtifactsJob {
        op: if exact { ArtifactsOp::Mirror } else { ArtifactsOp::Restore },
        endpoint: t.endpoint.into(),
        bucket: t.bucket.into(),
        region: t.region.into(),
        dir: "/in".into(),
    };
    let bind = format!("{}:/in:ro", bundle.join("artifacts").display());
    let r = helper_artifacts(docker, t.network, job, (t.access_key, t.secret_key), Some(bind)).await?;
    Ok(r.copied.unwrap_or_default())
}
