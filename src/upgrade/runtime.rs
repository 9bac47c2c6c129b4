//! The seam between the hop and rollback orchestration and the world, like docker compose's
//! `api.Service`: everything a hop does to a stack goes through [`Runtime`], so that its decisions
//! are unit-tested against a fake (`tests.rs`) while the real-daemon tests stay the proof.
//! [`Daemon`] is the real one for a production project; staging wraps it to run compose on its
//! isolated rendering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

// tokio's clock, so that tests with paused time run the waits at once.
use tokio::time::Instant;

use async_trait::async_trait;
use bollard::Docker;
use semver::Version;

use super::gates::{self, parse_hashes};
use super::{Ctx, ProjectRecord};
use crate::backup::dump::{self, DumpError, DumpSource, Dumped};
use crate::backup::quiesce::{self, QuiesceError};
use crate::backup::restore::{self, MongoTarget, RestoreError};
use crate::catalog::Catalog;
use crate::engine::compose::{Compose, ComposeError};
use crate::engine::helper::{MongoQuery, MongoReport, Request, Response, TreeCopied};
pub use crate::engine::sidecar::{Helper, MongoReadError, wait_mongo};
use crate::engine::sidecar::{SidecarError, read_mongo, run_helper};
use crate::snapshot::observe::{ObserveError, Observed, Options, observe_full};
use crate::state::StoppedService;
use crate::util::mongo_uri;

/// What a hop and its rollback do to a stack.
#[async_trait]
pub trait Runtime: Helper {
    /// `docker compose ARGS` on the project's files; its stdout.
    async fn compose(&self, project: &ProjectRecord, args: &[&str]) -> Result<String, ComposeError>;
    /// The project's containers and what the helper reads of them (health, MongoDB).
    async fn observe(&self, project: &str) -> Result<Observed, ObserveError>;
    /// Stops the containers in their waves, each waiting at most `grace` seconds.
    async fn stop(&self, services: &[StoppedService], grace: i32) -> Result<(), QuiesceError>;
    /// Starts the containers again (even when some fail); the failures, one line each.
    async fn start(&self, services: &[StoppedService]) -> Vec<String>;
    /// `mongodump --archive` from `source` into the gzip file `archive`.
    async fn dump(&self, source: &DumpSource<'_>, archive: PathBuf) -> Result<Dumped, DumpError>;
    /// `mongorestore` of the archive in `dir` into `target`, every database dropped first; the
    /// tail of mongorestore's log.
    async fn restore(&self, dir: &Path, target: &MongoTarget<'_>, ferretdb: bool) -> Result<String, RestoreError>;
    /// Copies Docker volume `from` onto `to` (created when missing, emptied first), `from`
    /// mounted read-only.
    async fn copy_volume(&self, from: &str, to: &str) -> Result<TreeCopied, SidecarError>;
}

/// The real runtime: the Docker daemon and the compose CLI, on the files the project record names.
pub struct Daemon<'a> {
    /// The daemon.
    pub docker: &'a Docker,
    /// The compose v2 found on this host.
    pub compose: &'a Compose,
    /// To recognise the release the containers run.
    pub catalog: &'a Catalog,
    /// The registry prefix of the catalog's images (a mirror, or `testbed.local`).
    pub registry: Option<&'a str>,
}

#[async_trait]
impl Helper for Daemon<'_> {
    async fn helper(&self, network: &str, request: &Request) -> Result<Response, SidecarError> {
        run_helper(self.docker, network, request).await
    }
}

#[async_trait]
impl Runtime for Daemon<'_> {
    async fn compose(&self, project: &ProjectRecord, args: &[&str]) -> Result<String, ComposeError> {
        self.compose.run(&project.files(), args).await
    }

    async fn observe(&self, project: &str) -> Result<Observed, ObserveError> {
        let opts = Options { project: Some(project), registry: self.registry, counts: false };
        observe_full(self.docker, self.catalog, &opts).await
    }

    async fn stop(&self, services: &[StoppedService], grace: i32) -> Result<(), QuiesceError> {
        quiesce::stop_all(self.docker, services, grace).await
    }

    async fn start(&self, services: &[StoppedService]) -> Vec<String> {
        quiesce::start(self.docker, services).await
    }

    async fn dump(&self, source: &DumpSource<'_>, archive: PathBuf) -> Result<Dumped, DumpError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        dump::dump(self.docker, source, archive, threads, Default::default(), None).await
    }

    async fn restore(&self, dir: &Path, target: &MongoTarget<'_>, ferretdb: bool) -> Result<String, RestoreError> {
        restore::mongo(self.docker, dir, target, ferretdb).await
    }

    async fn copy_volume(&self, from: &str, to: &str) -> Result<TreeCopied, SidecarError> {
        crate::engine::sidecar::copy_volume(self.docker, from, to).await
    }
}

/// Each database's newest `migration_info` version (`None`: the database has none).
///
/// # Errors
/// The helper failed, or MongoDB did not answer.
pub async fn migrations(
    rt: &dyn Runtime,
    network: &str,
    host: &str,
) -> Result<BTreeMap<String, Option<String>>, MongoReadError> {
    let report = mongo_report(rt, network, host, false).await?;
    Ok(report.databases.into_iter().map(|d| (d.name, d.migration)).collect())
}

/// Every database's report (and with `counts`, every collection's count).
///
/// # Errors
/// The helper failed, or MongoDB did not answer.
pub async fn mongo_report(
    rt: &dyn Runtime,
    network: &str,
    host: &str,
    counts: bool,
) -> Result<MongoReport, MongoReadError> {
    read_mongo(rt, network, MongoQuery { uri: mongo_uri(host), dbs: vec![], counts, all_dbs: true, digests: false })
        .await
}

/// Waits until the gates pass twice in a row with unchanged restart counts (a container that
/// crash-loops can look healthy for a moment), or `timeout` passes.
///
/// # Errors
/// The failures of the last evaluation (never empty).
pub async fn wait_gates(
    ctx: &Ctx<'_>,
    project: &ProjectRecord,
    target: &Version,
    timeout: Duration,
) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut previous: Option<Vec<(String, i64)>> = None;
    loop {
        let failures = match ctx.runtime.observe(&project.name).await {
            Err(e) => vec![e.to_string()],
            Ok(o) => {
                let hashes = match ctx.runtime.compose(project, &["config", "--hash", "*"]).await {
                    Ok(out) => parse_hashes(&out),
                    Err(e) => return Err(vec![e.to_string()]),
                };
                let r = gates::evaluate(&o.stack, target, &o.containers, &hashes);
                let restarts: Vec<(String, i64)> =
                    o.containers.iter().map(|c| (c.name.clone(), c.restart_count)).collect();
                if r.passed && previous.as_ref() == Some(&restarts) {
                    return Ok(());
                }
                previous = r.passed.then_some(restarts);
                r.failures
            }
        };
        if Instant::now() > deadline {
            return Err(if failures.is_empty() { vec!["the stack did not stay healthy".into()] } else { failures });
        }
        tracing::debug!(
            "gates of {target}: {}",
            if failures.is_empty() { "passed once".into() } else { failures.join("; ") }
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
