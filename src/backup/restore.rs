//! Restoring a bundle (a library for `verify --restore-test`, staging and rollback): the archive
//! into a given mongo through real `mongorestore --archive --gzip --drop` in a sidecar of the same
//! image, and the artifacts into a given store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;

use super::bundle::ARCHIVE;
use crate::engine::helper::{ArtifactsJob, ArtifactsOp, Request};
use crate::engine::sidecar::{SidecarError, SidecarSpec, helper_artifacts, run_collect, run_helper, unique_name};
use crate::engine::store::Copied;

/// Why a restore failed; the target may be partly restored (a throwaway or staging copy, or a
/// rollback that reports it).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// mongorestore exited non-zero.
    #[error("mongorestore failed (exit {code}): {stderr}")]
    Mongorestore {
        /// mongorestore's exit code.
        code: i64,
        /// The last 5 lines of its stderr.
        stderr: String,
    },
    /// Dropping the target's databases before the restore failed (the driver's error).
    #[error("emptying the databases before the restore failed: {0}")]
    Wipe(String),
    /// The helper could not upload the artifact copies (its error, or no answer).
    #[error("restoring the artifacts failed: {0}")]
    Artifacts(String),
    /// The helper or mongorestore sidecar could not run.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
}

/// A mongo to restore into: its image (for the tools), network and host name.
pub struct MongoTarget<'a> {
    /// The mongo image whose mongorestore matches the server (`mongo:4.4`).
    pub image: &'a str,
    /// The Docker network where `host` resolves.
    pub network: &'a str,
    /// The mongo's host name on that network (a compose service or container name); port 27017.
    pub host: &'a str,
}

/// The databases exactly as in the bundle: every database but the server's own is dropped first
/// (`--drop` alone would leave collections a migration created), then `mongorestore --drop`.
/// Index restore is skipped on FerretDB, which rejects the `ns` option mongorestore sends with
/// every index; a real mongod gets its indexes. `read` follows how far mongorestore has read the
/// archive (bytes of the file, from `/proc`; stays 0 where that is not readable). Returns the last
/// 5 lines of mongorestore's stderr (its summary: documents restored, failures).
///
/// # Errors
/// [`RestoreError::Wipe`], [`RestoreError::Mongorestore`] or [`RestoreError::Sidecar`].
pub async fn mongo(
    docker: &Docker,
    bundle: &Path,
    target: &MongoTarget<'_>,
    ferretdb: bool,
    read: Arc<AtomicU64>,
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
    let name = unique_name("mcu-sidecar");
    let spec = SidecarSpec {
        image: target.image.to_string(),
        cmd,
        network: Some(target.network.to_string()),
        binds: vec![format!("{}:/bundle:ro", bundle.display())],
        name: Some(name.clone()),
        ..Default::default()
    };
    // mongorestore reads the file itself (the bundle is bind-mounted): its progress is its offset
    // in the archive, read from /proc while it runs.
    let (d, path) = (docker.clone(), format!("/bundle/{ARCHIVE}"));
    let watcher = tokio::spawn(async move {
        loop {
            if let Some(n) = crate::engine::host::container_file_offset(&d, &name, &path).await {
                read.store(n, Ordering::Relaxed);
                // Test-only: killed while mongorestore runs, the databases wiped and partly back.
                if n > 0 && crate::interrupt::fault("during:restore") {
                    crate::interrupt::kill_now();
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let ran = run_collect(docker, &spec).await;
    watcher.abort();
    let (_, outcome) = ran?;
    let tail: Vec<&str> = outcome.stderr.trim().lines().collect();
    let tail = tail[tail.len().saturating_sub(5)..].join("\n");
    if outcome.exit_code != 0 {
        return Err(RestoreError::Mongorestore { code: outcome.exit_code, stderr: tail });
    }
    Ok(tail)
}

/// The counter [`mongo`] fills, and the bar that shows it against the size of `bundle`'s archive
/// (on a terminal only; the bar goes when the tracker drops).
pub fn archive_bar(progress: &crate::progress::Progress, bundle: &Path) -> (Arc<AtomicU64>, crate::progress::Tracker) {
    let read = Arc::new(AtomicU64::new(0));
    let total = std::fs::metadata(bundle.join(ARCHIVE)).ok().map(|m| m.len());
    let bar = progress.track_bytes("restoring", read.clone(), total);
    (read, bar)
}

/// Where an in-stack S3 store is, from inside its network.
pub struct StoreTarget<'a> {
    /// The Docker network where the store's endpoint resolves.
    pub network: &'a str,
    /// The store's S3 endpoint as seen from that network (`http://minio:9000`).
    pub endpoint: &'a str,
    /// The artifact bucket (`mender-artifact-storage`).
    pub bucket: &'a str,
    /// The region to sign for (`us-east-1`).
    pub region: &'a str,
    /// Access key id of the store.
    pub access_key: &'a str,
    /// Secret key of the store (passed to the helper in its environment, never printed).
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
