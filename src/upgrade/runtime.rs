//! The seam between the hop and rollback orchestration and the world, like docker compose's
//! `api.Service`: everything a hop does to a stack goes through [`Runtime`], so that its decisions
//! are unit-tested against a fake (`tests.rs`) while the real-daemon tests stay the proof.
//! [`Daemon`] is the real one for a production project; staging wraps it to run compose on its
//! isolated rendering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
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
use crate::snapshot::keys::{self, KeyDigest};
use crate::snapshot::observe::{ObserveError, Observed, Options, observe_full};
use crate::snapshot::smoke::SmokeReport;
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
    /// `mongodump --archive` from `source` into the gzip file `archive`; `written` counts the raw
    /// archive bytes as they pass (for the progress bar).
    async fn dump(
        &self,
        source: &DumpSource<'_>,
        archive: PathBuf,
        written: Arc<AtomicU64>,
    ) -> Result<Dumped, DumpError>;
    /// `mongorestore` of the archive in `dir` into `target`, every database dropped first; the
    /// tail of mongorestore's log. `read` follows the bytes of the archive read so far.
    async fn restore(
        &self,
        dir: &Path,
        target: &MongoTarget<'_>,
        ferretdb: bool,
        read: Arc<AtomicU64>,
    ) -> Result<String, RestoreError>;
    /// Copies Docker volume `from` onto `to` (created when missing, emptied first), `from`
    /// mounted read-only.
    async fn copy_volume(&self, from: &str, to: &str) -> Result<TreeCopied, SidecarError>;
    /// Whether the Docker daemon answers a ping within [`PING_TIMEOUT`]. A hop whose daemon went
    /// away is not rolled back (nothing could be): it keeps its journal for `resume` or `rollback`.
    async fn answers(&self) -> bool;
    /// The smoke check through the stack's API gateway ([`crate::snapshot::smoke`]): what a
    /// device and a person get. A verdict, never an error.
    async fn smoke(&self, observed: &Observed) -> SmokeReport;
}

/// How long [`Runtime::answers`] waits for the daemon's ping.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// What the smoke check does beyond its fixed requests (`--artifact-sample`, `--smoke-user`).
    pub smoke: crate::snapshot::smoke::SmokeOptions,
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

    async fn dump(
        &self,
        source: &DumpSource<'_>,
        archive: PathBuf,
        written: Arc<AtomicU64>,
    ) -> Result<Dumped, DumpError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        dump::dump(self.docker, source, archive, threads, written, None).await
    }

    async fn restore(
        &self,
        dir: &Path,
        target: &MongoTarget<'_>,
        ferretdb: bool,
        read: Arc<AtomicU64>,
    ) -> Result<String, RestoreError> {
        restore::mongo(self.docker, dir, target, ferretdb, read).await
    }

    async fn copy_volume(&self, from: &str, to: &str) -> Result<TreeCopied, SidecarError> {
        crate::engine::sidecar::copy_volume(self.docker, from, to).await
    }

    async fn answers(&self) -> bool {
        matches!(tokio::time::timeout(PING_TIMEOUT, self.docker.ping()).await, Ok(Ok(_)))
    }

    async fn smoke(&self, observed: &Observed) -> SmokeReport {
        crate::snapshot::observe::smoke(self.docker, observed, &self.smoke).await
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

/// [`Runtime::restore`] with a bar of the archive read (its size is the total) on a terminal.
///
/// # Errors
/// As [`Runtime::restore`].
pub async fn restore_shown(
    ctx: &Ctx<'_>,
    dir: &Path,
    target: &MongoTarget<'_>,
    ferretdb: bool,
) -> Result<String, RestoreError> {
    let (read, _bar) = restore::archive_bar(ctx.progress, dir);
    ctx.runtime.restore(dir, target, ferretdb, read).await
}

/// [`Runtime::dump`] with a bar of the bytes dumped (`estimate`: the databases' size, bytes).
///
/// # Errors
/// As [`Runtime::dump`].
pub async fn dump_shown(
    ctx: &Ctx<'_>,
    source: &DumpSource<'_>,
    archive: PathBuf,
    estimate: Option<u64>,
) -> Result<Dumped, DumpError> {
    let written = Arc::new(AtomicU64::new(0));
    let _bar = ctx.progress.track_bytes("dumping", written.clone(), estimate);
    ctx.runtime.dump(source, archive, written).await
}

/// `docker compose up …` (any compose command, in fact) that tells what it waits for: `up` waits
/// for the dependencies' healthchecks (the store's first takes ~60 s), so every 5 s the
/// project's containers that are not yet running and healthy are named on the progress display
/// ("mender-mongo-1: health starting, 35 s").
///
/// # Errors
/// As [`Runtime::compose`].
pub async fn compose_shown(ctx: &Ctx<'_>, project: &ProjectRecord, args: &[&str]) -> Result<String, ComposeError> {
    let run = ctx.runtime.compose(project, args);
    tokio::pin!(run);
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(5), Duration::from_secs(5));
    loop {
        tokio::select! {
            r = &mut run => {
                ctx.progress.waiting("", start.elapsed());
                return r;
            }
            _ = tick.tick() => {
                if let Ok(o) = ctx.runtime.observe(&project.name).await {
                    ctx.progress.waiting(&waiting_for(&o.containers), start.elapsed());
                }
            }
        }
    }
}

/// What a starting project still waits for: each container that is not running, restarting or
/// not yet healthy, with its state; empty when none.
pub fn waiting_for(containers: &[crate::engine::container::ContainerInfo]) -> String {
    let pending: Vec<String> = containers
        .iter()
        .filter_map(|c| {
            let state = if c.restarting {
                "restarting".to_string()
            } else if !c.running {
                c.state.clone()
            } else {
                match c.health.as_deref() {
                    Some("healthy") | None => return None,
                    Some(h) => format!("health {h}"),
                }
            };
            Some(format!("{}: {state}", c.name))
        })
        .collect();
    if pending.is_empty() {
        return String::new();
    }
    format!("waiting for {}", pending.join(", "))
}

/// How long the smoke check may fail while every gate passes before that is the hop's verdict
/// (a gateway that answers its healthcheck has loaded its file-provider routes within seconds).
pub const SMOKE_VERDICT: Duration = Duration::from_secs(30);

/// Waits until the gates, and then the smoke check through the gateway, pass twice in a row with
/// unchanged restart counts (a container that crash-loops can look healthy for a moment), or
/// `timeout` passes, or the smoke check keeps failing for [`SMOKE_VERDICT`] while the gates pass.
/// A signing key that is not the one of `keys` (the bundle's record; empty: not checked) fails
/// at once ([`keys::changed`]).
///
/// # Errors
/// The failures of the last evaluation (never empty).
pub async fn wait_gates(
    ctx: &Ctx<'_>,
    project: &ProjectRecord,
    target: &Version,
    timeout: Duration,
    keys: &[KeyDigest],
) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut previous: Option<Vec<(String, i64)>> = None;
    // Since when the gates pass but the smoke check fails: a route the new release does not have
    // stays missing, so that is a verdict after a grace, not after the whole hop timeout.
    let mut smoke_failing_since: Option<Instant> = None;
    // The containers (id, restart count) when the smoke check last passed: the confirming poll
    // that follows (the same containers, none restarted) does not run it again, so each hop pays
    // one smoke check (two sidecars, the bucket listed) instead of one per poll.
    let mut smoke_passed_at: Option<Vec<(String, i64)>> = None;
    loop {
        let failures = match ctx.runtime.observe(&project.name).await {
            // A daemon that went away is not a stack still starting: no point waiting for it.
            Err(e) if !ctx.runtime.answers().await => {
                return Err(vec![format!("the Docker daemon does not answer: {e}")]);
            }
            Err(e) => vec![e.to_string()],
            Ok(o) => {
                let hashes = match ctx.runtime.compose(project, &["config", "--hash", "*"]).await {
                    Ok(out) => parse_hashes(&out),
                    Err(e) => return Err(vec![e.to_string()]),
                };
                let r = gates::evaluate(&o.stack, target, &o.containers, &hashes);
                let (mut passed, mut failures) = (r.passed, r.failures);
                // Another signing key is no state that passes: the hop mounted it.
                let changed =
                    keys::changed(keys, &keys::digests(&o.containers), "the backup this upgrade started from");
                if !changed.is_empty() {
                    return Err(changed
                        .into_iter()
                        .map(|c| format!("{c} (upgrade --accept-new-keys keeps a hop that changes it on purpose)"))
                        .collect());
                }
                // Through the gateway only once every service answers on its own: before that
                // the smoke check would only repeat what the gates say.
                let restarts: Vec<(String, i64)> =
                    o.containers.iter().map(|c| (c.name.clone(), c.restart_count)).collect();
                let running: Vec<(String, i64)> =
                    o.containers.iter().map(|c| (c.id.clone(), c.restart_count)).collect();
                if passed && smoke_passed_at.as_ref() != Some(&running) {
                    let smoke = ctx.runtime.smoke(&o).await;
                    if smoke.passed {
                        smoke_failing_since = None;
                        smoke_passed_at = Some(running);
                    } else {
                        smoke_passed_at = None;
                        passed = false;
                        failures.extend(smoke.failures());
                        let since = *smoke_failing_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= SMOKE_VERDICT {
                            return Err(failures);
                        }
                    }
                } else if !passed {
                    smoke_failing_since = None;
                    smoke_passed_at = None;
                }
                if passed && previous.as_ref() == Some(&restarts) {
                    return Ok(());
                }
                previous = passed.then_some(restarts);
                failures
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

#[cfg(test)]
mod tests {
    use crate::engine::container::ContainerInfo;

    fn container(name: &str, state: &str, health: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            state: state.into(),
            running: state == "running",
            restarting: state == "restarting",
            health: health.map(str::to_string),
            ..Default::default()
        }
    }

    /// `compose up`'s heartbeat names what is not ready yet, and nothing once all is.
    #[test]
    fn waiting_for_names_the_containers_not_yet_ready() {
        let cs = [
            container("demo-mongo-1", "running", Some("starting")),
            container("demo-useradm-1", "created", None),
            container("demo-gui-1", "running", None),
            container("demo-deviceauth-1", "restarting", None),
            container("demo-minio-1", "running", Some("healthy")),
        ];
        assert_eq!(
            super::waiting_for(&cs),
            "waiting for demo-mongo-1: health starting, demo-useradm-1: created, demo-deviceauth-1: restarting"
        );
        let ready = [container("demo-gui-1", "running", None), container("demo-minio-1", "running", Some("healthy"))];
        assert_eq!(super::waiting_for(&ready), "");
    }
}
