//! How the upgrade engine reaches a staging copy: like production, except that every compose call
//! runs on the isolated rendering of the copied files, rendered again each time (a hop rewrites
//! the files, and the next call must isolate the services it added too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::isolate::{self, OwnStore};
use super::{NOTES, PROJECT, RENDERED, Record};
use crate::backup::dump::{DumpError, DumpSource, Dumped};
use crate::backup::quiesce::QuiesceError;
use crate::backup::restore::{MongoTarget, RestoreError};
use crate::engine::compose::{Compose, ComposeError};
use crate::engine::helper::{Request, Response};
use crate::engine::sidecar::{Helper, SidecarError};
use crate::snapshot::observe::{ObserveError, Observed};
use crate::state::StoppedService;
use crate::upgrade::{Daemon, ProjectRecord, Runtime};
use crate::util::{Perm, walk, write_atomic};

/// The runtime of staging copies: [`Daemon`] with compose on the isolated rendering.
pub struct StagingRuntime<'a> {
    /// The real runtime underneath.
    pub daemon: Daemon<'a>,
}

/// The isolation inputs of a staging directory besides the rendered configuration: the bundle's
/// copies of host paths outside the project directory (kept under `project/_external/<absolute
/// path>`), and staging's own artifact store.
fn inputs(dir: &Path) -> (BTreeMap<PathBuf, PathBuf>, Option<OwnStore>) {
    let root = dir.join(PROJECT).join("_external");
    let copies = walk(&root)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.strip_prefix(&root).ok().map(|rel| (Path::new("/").join(rel), entry.clone())))
        .collect();
    (copies, Record::load(dir).ok().and_then(|r| r.own_store))
}

fn isolation_failed(project: &str, reason: impl ToString) -> ComposeError {
    ComposeError::Failed {
        command: format!("isolating the staging configuration of {project}"),
        code: -1,
        stderr: reason.to_string(),
    }
}

/// Renders the copied files with `docker compose config`, isolates the result and writes it
/// (0600: it holds production's secrets, like the bundle it came from) to the staging directory;
/// the isolation notes beside it.
///
/// # Errors
/// compose could not render the files, or the isolation refused them.
pub async fn render(compose: &Compose, project: &ProjectRecord, dir: &Path) -> Result<PathBuf, ComposeError> {
    let json = compose.run(&project.files(), &["config", "--format", "json"]).await?;
    let rendered: serde_json::Value = serde_json::from_str(&json).map_err(|e| isolation_failed(&project.name, e))?;
    let (external_copies, store) = inputs(dir);
    let spec = isolate::Spec {
        name: &project.name,
        project_dir: &project.working_dir,
        external_copies: &external_copies,
        store: store.as_ref(),
    };
    let isolated = isolate::isolate(&rendered, &spec).map_err(|e| isolation_failed(&project.name, e))?;
    let notes: Vec<&String> = isolated.dropped.iter().chain(&isolated.notes).collect();
    if let Ok(n) = serde_json::to_vec(&notes) {
        let _ = write_atomic(&dir.join(NOTES), &n, Perm::Private);
    }
    let text = serde_json::to_vec_pretty(&isolated.config).map_err(|e| isolation_failed(&project.name, e))?;
    let path = dir.join(RENDERED);
    write_atomic(&path, &text, Perm::Private).map_err(|e| isolation_failed(&project.name, e))?;
    Ok(path)
}

#[async_trait]
impl Helper for StagingRuntime<'_> {
    async fn helper(&self, network: &str, request: &Request) -> Result<Response, SidecarError> {
        self.daemon.helper(network, request).await
    }
}

#[async_trait]
impl Runtime for StagingRuntime<'_> {
    async fn compose(&self, project: &ProjectRecord, args: &[&str]) -> Result<String, ComposeError> {
        let dir = project
            .staging
            .as_deref()
            .ok_or_else(|| isolation_failed(&project.name, "the project is not a staging copy made by this tool"))?;
        let rendered = render(self.daemon.compose, project, dir).await?;
        let only = ProjectRecord { config_files: vec![rendered], env_files: vec![], ..project.clone() };
        self.daemon.compose(&only, args).await
    }

    async fn observe(&self, project: &str) -> Result<Observed, ObserveError> {
        self.daemon.observe(project).await
    }

    async fn stop(&self, services: &[StoppedService], grace: i32) -> Result<(), QuiesceError> {
        self.daemon.stop(services, grace).await
    }

    async fn start(&self, services: &[StoppedService]) -> Vec<String> {
        self.daemon.start(services).await
    }

    async fn dump(
        &self,
        source: &DumpSource<'_>,
        archive: PathBuf,
        written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Dumped, DumpError> {
        self.daemon.dump(source, archive, written).await
    }

    async fn copy_volume(
        &self,
        from: &str,
        to: &str,
    ) -> Result<crate::engine::helper::TreeCopied, crate::engine::sidecar::SidecarError> {
        self.daemon.copy_volume(from, to).await
    }

    async fn answers(&self) -> bool {
        self.daemon.answers().await
    }

    async fn smoke(&self, observed: &crate::snapshot::observe::Observed) -> crate::snapshot::smoke::SmokeReport {
        const STAGING_ARTIFACTS: &str = "a staging copy's artifacts are compared with the bundle's inventory when `staging up` uploads them, not sampled here";
        // The copy's own gateway, certificate and network: what observe found of the copy. Its
        // store holds the bundle's copies of the artifacts only when the bundle has them (not
        // with --skip-artifacts, a versioned external bucket or --artifacts-to s3://), and
        // `staging up` already compares what it uploaded with the bundle's inventory: no sample.
        let opts = crate::snapshot::smoke::SmokeOptions {
            artifact_sample: crate::snapshot::smoke::ArtifactSample::Count(0),
            ..self.daemon.smoke.clone()
        };
        let mut r = crate::snapshot::observe::smoke(self.daemon.docker, observed, &opts).await;
        r.notes.push(STAGING_ARTIFACTS.into());
        r
    }

    async fn restore(
        &self,
        dir: &Path,
        target: &MongoTarget<'_>,
        ferretdb: bool,
        read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<String, RestoreError> {
        self.daemon.restore(dir, target, ferretdb, read).await
    }
}
