//! `backup`: a full bundle of the running stack — the MongoDB dump (mongodump archive format,
//! gzip), the artifacts, the compose configuration and keys, a snapshot of what ran, and a
//! manifest that `verify` proves the bundle against. Writers are stopped for a consistent dump
//! and always started again.

pub mod artifacts;
pub mod bundle;
pub mod bundles;
mod config;
pub mod copy;
pub mod crypt;
pub mod dump;
pub mod manifest;
pub mod prune;
pub mod quiesce;
pub mod restore;
pub mod verify;

use std::collections::HashMap;

use indexmap::IndexMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::engine::azure::AzureError;
use crate::engine::container::ContainerInfo;
use crate::engine::docker::{self as dk, DockerError};
use crate::engine::helper::{ArtifactsJob, ArtifactsOp};
use crate::engine::host;
use crate::engine::s3::S3Bucket;
use crate::engine::sidecar::{SidecarError, helper_artifacts};
use crate::engine::store::{self, Copied, StoreError, Versioning};
use crate::labels::SIDECAR_LABEL;
use crate::progress::Progress;
use crate::snapshot::Stack;
use crate::snapshot::observe::{ObserveError, Observed, Options, observe_full};
use crate::state::{Journal, Lock, LockError, StateDir};
use crate::util::{now_rfc3339, now_stamp};
use artifacts::{Choice, Plan};
use bundle::{ARCHIVE, PartialBundle};
use manifest::{
    ArtifactsInfo, ArtifactsKind, DatabaseInfo, FileEntry, Location, Manifest, MongoInfo, ServiceImage, StackIdentity,
};

/// What the operator asked of `backup`.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// `--out DIR`: where the bundle directory goes; `None` for `<state-dir>/backups`.
    pub out: Option<PathBuf>,
    /// `--skip-space-check`: do not refuse when the free space looks too small.
    pub skip_space_check: bool,
    /// `--skip-artifacts` / `--artifacts-to DEST`, or the storage's own default.
    pub artifacts: Choice,
    /// Seconds a writer gets to stop before it is killed.
    pub grace: i32,
    /// `--encrypt-to` / `--encrypt-to-file`: age-encrypt every file of the bundle to them; `None`
    /// for a plain bundle.
    pub recipients: Option<crypt::Recipients>,
}

impl BackupOptions {
    /// The backup `upgrade` and `rehearse` take on their own when no proven one is recent enough:
    /// into the state directory, space checked, artifacts as the storage decides, plain; writers
    /// get `grace` seconds to stop.
    pub fn automatic(grace: i32) -> BackupOptions {
        BackupOptions { out: None, skip_space_check: false, artifacts: Choice::Auto, grace, recipients: None }
    }
}

/// Why `backup` failed; [`crate::exit::Failure`] turns each into what was left unchanged and what
/// to do next.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The stack could not be observed (no daemon, no project, several projects).
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The project's lock is held by another run, or the state directory cannot hold one.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The images match no catalog release; the tags that did not match.
    #[error("the stack's release is unknown, so its databases and services cannot be told apart: {0}")]
    UnknownRelease(String),
    /// The MongoDB service (name) is down or does not answer the driver (its error).
    #[error("MongoDB ({0}) does not answer: {1}")]
    MongoDown(String, String),
    /// The backup directory has less free space than the estimate: sizes in MiB, the estimate being
    /// the databases' size on disk plus the artifacts, +10 % and 64 MiB.
    #[error(
        "not enough free space in {dir}: the backup needs about {need} MiB (databases {db} MiB, artifacts {art} MiB, plus margin), {free} MiB are free"
    )]
    Space {
        /// The directory the bundle was to go to.
        dir: String,
        /// The estimate, in MiB.
        need: u64,
        /// The databases' size on disk, in MiB.
        db: u64,
        /// The artifacts to copy into the bundle, in MiB.
        art: u64,
        /// Free space for this user, in MiB.
        free: u64,
    },
    /// No safe plan for the artifacts (unversioned bucket, no keys, bad `--artifacts-to`).
    #[error(transparent)]
    Artifacts(#[from] artifacts::PlanError),
    /// A journal says an earlier run stopped services, and starting them again failed.
    #[error("an earlier run was interrupted and its services could not be started again: {0}")]
    Repair(quiesce::QuiesceError),
    /// Stopping the writers (the Mender services) failed; they were started again.
    #[error("stopping the writers failed: {0}")]
    Quiesce(quiesce::QuiesceError),
    /// mongodump, its archive or the compressed file failed.
    #[error("the database dump failed: {0}")]
    Dump(#[from] dump::DumpError),
    /// Listing, sizing or copying the artifact objects failed.
    #[error("copying the artifacts failed: {0}")]
    Store(#[from] StoreError),
    /// The Azure Blob settings or client failed.
    #[error("the artifact storage: {0}")]
    Azure(#[from] AzureError),
    /// A helper sidecar (counts, artifact copy) could not run.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// A Docker API call failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// Creating, writing or completing the bundle on disk failed.
    #[error("writing the bundle failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bundle's directory could not be made under the output directory (a file in its way, a
    /// read-only or full file system, no permission); nothing was stopped yet.
    #[error("cannot make the bundle's directory under {0}: {1}")]
    BundleDir(String, std::io::Error),
    /// Ctrl-C during the downtime section; the writers were started again.
    #[error("interrupted")]
    Interrupted,
    /// An interrupted upgrade's journal: a backup must not start its stopped services.
    #[error(transparent)]
    UpgradePending(#[from] crate::state::UpgradePending),
}

impl From<BackupError> for crate::exit::Failure {
    fn from(e: BackupError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        use artifacts::PlanError as A;
        let nothing = "everything: no service was stopped and no bundle was written";
        let restarted = "the services were started again and no bundle was kept (the partial one was removed)";
        match e {
            BackupError::Observe(o) => o.into(),
            BackupError::Lock(l) => l.into(),
            BackupError::Space { .. } => Failure::new(
                Exit::Precondition,
                e,
                nothing,
                "free space, or write the bundle elsewhere with --out DIR (or --skip-space-check if you know it fits)",
            ),
            BackupError::Artifacts(a @ A::Unversioned { .. }) => Failure::new(
                Exit::Precondition,
                a,
                nothing,
                "enable versioning on the bucket (aws s3api put-bucket-versioning --bucket B --versioning-configuration Status=Enabled), or copy the objects: --artifacts-to bundle, or --artifacts-to s3://BACKUP-BUCKET/PREFIX; or --skip-artifacts if they are protected otherwise",
            ),
            BackupError::Artifacts(a @ A::BadDestination(_)) => {
                Failure::new(Exit::Usage, a, nothing, "use --artifacts-to bundle or s3://BUCKET/PREFIX")
            }
            BackupError::Artifacts(a) => Failure::new(
                Exit::Precondition,
                a,
                nothing,
                "set the storage credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or --skip-artifacts",
            ),
            BackupError::UnknownRelease(_) | BackupError::MongoDown(..) => Failure::new(
                Exit::Precondition,
                e,
                nothing,
                "check `mender-compose-upgrade status` and bring the stack to health first",
            ),
            BackupError::Repair(_) => Failure::new(
                Exit::Precondition,
                e,
                "the stopped services are still stopped",
                "start them with production/run up -d, then run the backup again",
            ),
            BackupError::Dump(dump::DumpError::Write(ref io)) if io.raw_os_error() == Some(28) => Failure::new(
                Exit::Precondition,
                format!("the disk filled up while writing the dump: {e}"),
                restarted,
                "free space or use --out on a larger filesystem, then run the backup again",
            ),
            BackupError::BundleDir(..) => Failure::new(
                Exit::Precondition,
                e,
                nothing,
                "give --out a directory this user can write (or leave it out for STATE_DIR/backups)",
            ),
            BackupError::UpgradePending(p) => p.into(),
            BackupError::Interrupted => {
                Failure::new(Exit::Interrupted, "the backup was interrupted", restarted, "run the backup again")
            }
            other => Failure::new(
                Exit::Unexpected,
                other,
                restarted,
                "run with -v for details, fix the cause, and run the backup again",
            ),
        }
    }
}

/// The result of `backup`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The completed bundle directory (`<state-dir>/backups/menderproduction-3.7.11-20250101T120000Z`).
    pub bundle: PathBuf,
    /// The manifest written into it.
    pub manifest: Manifest,
    /// How long the writers were stopped.
    pub downtime_secs: f64,
    /// Services a previous, killed run had left stopped, started again by this run.
    pub repaired: Vec<String>,
    /// Writers that could not be started again (the backup itself succeeded).
    pub restart_failures: Vec<String>,
    /// Seconds per step of the downtime, in the order they ran: stop, dump, artifacts, start (a
    /// JSON object in that order).
    pub timings: IndexMap<String, f64>,
    /// Where `--copy-to` copied the bundle and what it verified there; `None` without
    /// `--copy-to`, or when the copy failed.
    pub copy: Option<copy::CopyReport>,
}

/// What the downtime section produced.
struct Captured {
    databases: Vec<DatabaseInfo>,
    dumped: dump::Dumped,
    artifacts: ArtifactsInfo,
    timings: IndexMap<String, f64>,
}

/// `backup`: observes the stack, takes the project's lock, stops the writers, counts, dumps and
/// copies the artifacts, starts the writers again, and completes the bundle.
///
/// # Errors
/// [`BackupError`]; before the writers stop nothing has changed, after it they have been started
/// again (a restart failure alone does not fail the backup: see [`Outcome::restart_failures`]).
pub async fn run(
    docker: &Docker,
    catalog: &Catalog,
    state: &StateDir,
    observe_opts: &Options<'_>,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<Outcome, BackupError> {
    let Observed { stack, containers } = observe_full(docker, catalog, observe_opts).await?;
    let lock = state.lock(&stack.project, "backup")?;
    let outcome = run_locked(docker, catalog, state, observe_opts, opts, progress, &lock, stack, containers).await;
    drop(lock);
    outcome
}

/// The backup under a lock the caller holds (an upgrade takes its backup this way).
///
/// # Errors
/// As [`run`], without the lock's.
#[allow(clippy::too_many_arguments)]
pub async fn run_locked(
    docker: &Docker,
    catalog: &Catalog,
    state: &StateDir,
    observe_opts: &Options<'_>,
    opts: &BackupOptions,
    progress: &Progress,
    lock: &Lock,
    stack: Stack,
    containers: Vec<ContainerInfo>,
) -> Result<Outcome, BackupError> {
    // An interrupted upgrade's stopped services must not start on data a migration may have moved,
    // and its journal is its rollback point: a backup never touches either.
    state.refuse_if_upgrade_pending(&stack.project)?;
    let repaired = repair_previous(docker, state, &stack.project, lock, progress).await?;
    // A repair changes what runs: look again.
    let Observed { stack, containers } = if repaired.is_empty() {
        Observed { stack, containers }
    } else {
        observe_full(docker, catalog, observe_opts).await?
    };
    let release = stack.release.clone().ok_or_else(|| BackupError::UnknownRelease(stack.unknown_tags.join(", ")))?;
    let mongo = stack.mongo.clone().filter(|m| m.reachable).ok_or_else(|| {
        let m = stack.mongo.clone();
        BackupError::MongoDown(
            m.as_ref().map(|m| m.service.clone()).unwrap_or_default(),
            m.and_then(|m| m.error).unwrap_or_default(),
        )
    })?;
    let network =
        stack.network.clone().ok_or_else(|| BackupError::UnknownRelease("the project has no network".into()))?;
    let deployments = containers.iter().find(|c| c.service.ends_with("deployments"));
    let plan = plan_artifacts(&stack, deployments, &opts.artifacts).await?;
    let backups = opts.out.clone().unwrap_or_else(|| state.backups());
    // An in-stack store is reached on its own network, which need not be MongoDB's.
    let store_network = match &plan {
        Plan::InStack { service, .. } => stack.network_of(service).unwrap_or_else(|| network.clone()),
        _ => network.clone(),
    };
    // The artifacts' size (measured for the space check) is also the copy bar's total.
    let art_bytes = if opts.skip_space_check {
        None
    } else {
        Some(check_space(docker, &stack, &plan, &backups, &store_network).await?)
    };
    progress.step("plan", format!("backing up {} ({release}); artifacts: {}", stack.project, describe(&plan)));

    let name = format!("{}-{release}-{}", stack.project, now_stamp());
    let partial =
        PartialBundle::create(&backups, &name).map_err(|e| BackupError::BundleDir(backups.display().to_string(), e))?;
    let mut journal = Journal::new("backup", &lock.owner);
    journal.partial = Some(partial.dir.clone());
    let writers = quiesce::writers(&stack);
    let started = Instant::now();
    let mongo_image =
        containers.iter().find(|c| c.service == mongo.service).map(|c| c.image.clone()).unwrap_or_default();
    // From the first stop to the last start, a signal only ends the section, never the process.
    let critical = crate::interrupt::Critical::enter();
    let section = async {
        progress.step("quiesce", format!("stopping {}", crate::util::count_len(writers.len(), "writer")));
        // The stops are never cut short: a stop request dropped half-way still stops its container
        // on the daemon, after the restart below has run, which left writers down behind an
        // "everything was started again" (a Ctrl-C during the stop). A signal is acted on once
        // every stop has returned.
        quiesce::stop(docker, state, &stack.project, &mut journal, &writers, opts.grace)
            .await
            .map_err(BackupError::Quiesce)?;
        let stopped = round(started.elapsed());
        let capture = capture(
            docker,
            &stack,
            [&network, &store_network],
            &mongo.service,
            &mongo_image,
            &partial,
            &plan,
            opts.recipients.clone(),
            art_bytes,
            progress,
        );
        let mut c = tokio::select! {
            biased;
            _ = crate::interrupt::signalled() => return Err(BackupError::Interrupted),
            r = capture => r?,
        };
        // The stop ran before the capture's steps.
        c.timings.shift_insert(0, "stop".into(), stopped);
        Ok(c)
    };
    let captured = section.await;
    // Whatever happened, the writers run again before anything else.
    dk::remove_labelled(docker, SIDECAR_LABEL, &std::process::id().to_string()).await;
    progress.step("restart", format!("starting {} again", crate::util::count_len(writers.len(), "writer")));
    let restart_started = Instant::now();
    let restart_failures = quiesce::start(docker, &writers).await;
    let downtime = started.elapsed();
    drop(critical);
    let mut captured = match captured {
        Ok(c) => c,
        Err(e) => {
            partial.discard();
            if restart_failures.is_empty() {
                let _ = state.clear_journal(&stack.project);
            }
            return Err(e);
        }
    };
    captured.timings.insert("start".into(), round(restart_started.elapsed()));
    let timings = captured.timings.clone();
    let manifest = finish(
        docker,
        &stack,
        &containers,
        &mongo_image,
        captured,
        &partial,
        round(downtime),
        opts.recipients.as_ref(),
        progress,
    )
    .await?;
    let dir = partial.complete()?;
    if restart_failures.is_empty() {
        state.clear_journal(&stack.project)?;
    }
    // The command after a backup finds the stack as the backup found it: healthy again.
    let lagging = if restart_failures.is_empty() {
        quiesce::settle(docker, &stack, &writers, crate::snapshot::observe::SETTLE_TIMEOUT).await
    } else {
        vec![]
    };
    if !lagging.is_empty() {
        progress.step("restart", format!("not healthy again yet: {}", lagging.join(", ")));
    }
    progress.step("done", format!("bundle {} ({:.1} s of writer downtime)", dir.display(), downtime.as_secs_f64()));
    Ok(Outcome {
        bundle: dir,
        manifest,
        downtime_secs: round(downtime),
        repaired,
        restart_failures,
        timings,
        copy: None,
    })
}

fn round(d: Duration) -> f64 {
    crate::util::secs(d)
}

async fn repair_previous(
    docker: &Docker,
    state: &StateDir,
    project: &str,
    lock: &Lock,
    progress: &Progress,
) -> Result<Vec<String>, BackupError> {
    if lock.took_over.is_none() && state.journal::<serde_json::Value>(project).is_none() {
        return Ok(vec![]);
    }
    match quiesce::repair(docker, state, project).await.map_err(BackupError::Repair)? {
        Some(j) => {
            let names: Vec<String> = j.stopped.iter().map(|s| s.service.clone()).collect();
            progress.step(
                "repair",
                format!(
                    "{} (pid {}) left {} stopped: started {} again",
                    crate::util::a(&format!("interrupted {}", j.operation)),
                    j.owner.pid,
                    crate::util::count_len(names.len(), "service"),
                    if names.len() == 1 { "it" } else { "them" }
                ),
            );
            Ok(names)
        }
        None => Ok(vec![]),
    }
}

fn describe(plan: &Plan) -> String {
    match plan {
        Plan::InStack { service, bucket, .. } => {
            format!("copy bucket {bucket} from the stack's {service} into the bundle")
        }
        Plan::RecordVersions { store } => {
            format!("{} keeps versions: record its current versions", store.describe())
        }
        Plan::ToBundle { store, .. } => format!("copy {} into the bundle", store.describe()),
        Plan::ToBucket { bucket, dest_bucket, dest_prefix, .. } => {
            format!("server-side copy of {bucket} to s3://{dest_bucket}/{dest_prefix}")
        }
        Plan::Skip { reason } => format!("skipped ({reason})"),
    }
}

async fn plan_artifacts(
    stack: &Stack,
    deployments: Option<&ContainerInfo>,
    choice: &Choice,
) -> Result<Plan, BackupError> {
    // Only an external store needs its versioning looked up (it takes the network).
    let versioning = match artifacts::external_store(stack, deployments)? {
        Some(store) if *choice != Choice::Skip => Some(store.open()?.versioning().await?),
        _ => None,
    };
    Ok(artifacts::decide(stack, deployments, choice, versioning)?)
}

/// Refuses when the bundle will not fit in `dir`; returns the artifacts' size it measured (bytes, 0
/// when they are not copied into the bundle).
async fn check_space(
    docker: &Docker,
    stack: &Stack,
    plan: &Plan,
    dir: &std::path::Path,
    network: &str,
) -> Result<u64, BackupError> {
    let db = stack.databases_size();
    let art = match plan {
        Plan::InStack { .. } | Plan::ToBundle { .. } => artifact_size(docker, plan, network).await?,
        _ => 0,
    };
    let mib = |b: u64| b.div_ceil(1 << 20);
    // mongodump's archive of a database is at most about its size on disk; the margin covers the
    // configuration files, the inventory and filesystem overhead.
    let need = (db + art) + (db + art) / 10 + (64 << 20);
    let free = host::free_bytes(dir)?;
    if free < need {
        return Err(BackupError::Space {
            dir: dir.display().to_string(),
            need: mib(need),
            db: mib(db),
            art: mib(art),
            free: mib(free),
        });
    }
    Ok(art)
}

async fn artifact_size(docker: &Docker, plan: &Plan, network: &str) -> Result<u64, BackupError> {
    match plan {
        Plan::InStack { endpoint, bucket, region, keys, .. } => {
            let job = ArtifactsJob {
                op: ArtifactsOp::Size,
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                dir: "/tmp".into(),
            };
            let r = helper_artifacts(docker, network, job, (&keys.access, &keys.secret), None).await?;
            Ok(r.copied.unwrap_or_default().bytes)
        }
        Plan::ToBundle { store, .. } => Ok(store::size(&*store.open()?).await?.bytes),
        _ => Ok(0),
    }
}

/// The downtime section: the dump (with the counts read from it) and the artifacts.
#[allow(clippy::too_many_arguments)]
async fn capture(
    docker: &Docker,
    stack: &Stack,
    [network, store_network]: [&str; 2],
    mongo_service: &str,
    mongo_image: &str,
    partial: &PartialBundle,
    plan: &Plan,
    recipients: Option<crypt::Recipients>,
    art_bytes: Option<u64>,
    progress: &Progress,
) -> Result<Captured, BackupError> {
    let mut timings = IndexMap::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str| {
        timings.insert(name.to_string(), round(clock.elapsed()));
        clock = Instant::now();
    };
    let uri = crate::util::mongo_uri(mongo_service);
    progress.step("dump", format!("mongodump from {mongo_image} on {network}"));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let src = dump::DumpSource { image: mongo_image, network, uri, labels: HashMap::new() };
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The databases' size on disk is the bar's estimate of the archive (the raw BSON can be larger:
    // the bar then grows).
    let estimate = stack.databases_size();
    let tracker = progress.track_bytes("dumping", counter.clone(), (estimate > 0).then_some(estimate));
    let dumped = dump::dump(docker, &src, partial.path(ARCHIVE), threads, counter, recipients).await?;
    drop(tracker);
    lap("dump");
    progress.step(
        "dumped",
        format!("{} raw, {} compressed", crate::util::size(dumped.raw_bytes), crate::util::size(dumped.size)),
    );
    // The counts come from the archive as it streamed past, not from a second pass over the
    // server while the writers wait; the restore test compares them with a real server.
    let databases = manifest::databases_from_archive(&dumped.summary, &stack.databases);
    let artifacts = copy_artifacts(docker, store_network, partial, plan, art_bytes, progress).await?;
    lap("artifacts");
    Ok(Captured { databases, dumped, artifacts, timings })
}

async fn copy_artifacts(
    docker: &Docker,
    network: &str,
    partial: &PartialBundle,
    plan: &Plan,
    art_bytes: Option<u64>,
    progress: &Progress,
) -> Result<ArtifactsInfo, BackupError> {
    let dir = partial.path("artifacts");
    crate::util::private_dir(&dir)?;
    progress.step("artifacts", describe(plan));
    let _bar = matches!(plan, Plan::InStack { .. } | Plan::ToBundle { .. })
        .then(|| progress.track_dir("copying artifacts", &dir, art_bytes));
    let info = |kind, bucket: &str, c: Copied, location, versioning| ArtifactsInfo {
        kind,
        bucket: Some(bucket.to_string()),
        objects: c.objects,
        bytes: c.bytes,
        location,
        versioning,
        note: None,
    };
    Ok(match plan {
        Plan::InStack { endpoint, bucket, region, keys, .. } => {
            let job = ArtifactsJob {
                op: ArtifactsOp::Backup,
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                dir: "/out".into(),
            };
            let bind = format!("{}:/out", dir.display());
            let r = helper_artifacts(docker, network, job, (&keys.access, &keys.secret), Some(bind)).await?;
            info(ArtifactsKind::Volume, bucket, r.copied.unwrap_or_default(), Location::Bundle, None)
        }
        Plan::ToBundle { store, versioning } => {
            let c = store::to_dir(&*store.open()?, &dir).await?;
            info(store.kind(), store.name(), c, Location::Bundle, Some(*versioning))
        }
        Plan::RecordVersions { store } => {
            let c = store::record_versions(&*store.open()?, &dir).await?;
            info(store.kind(), store.name(), c, Location::Versioning, Some(Versioning::Enabled))
        }
        Plan::ToBucket { ep, bucket, dest_bucket, dest_prefix, versioning } => {
            let c = S3Bucket::new(ep, bucket).copy_to_bucket(dest_bucket, dest_prefix, &dir).await?;
            let location = Location::Bucket { bucket: dest_bucket.clone(), prefix: dest_prefix.clone() };
            info(ArtifactsKind::S3, bucket, c, location, Some(*versioning))
        }
        Plan::Skip { reason } => ArtifactsInfo {
            kind: ArtifactsKind::Skipped,
            location: Location::None,
            note: Some(reason.clone()),
            ..Default::default()
        },
    })
}

/// The identity of the live stack: when each of its databases was born.
pub fn stack_identity(stack: &Stack) -> StackIdentity {
    StackIdentity {
        databases: stack.databases.iter().filter_map(|d| Some((d.name.clone(), d.born.clone()?))).collect(),
    }
}

/// After the writers run again: configuration, snapshot, the encryption of every file but the
/// archive (encrypted as it was written), manifest.
#[allow(clippy::too_many_arguments)]
async fn finish(
    docker: &Docker,
    stack: &Stack,
    containers: &[ContainerInfo],
    mongo_image: &str,
    c: Captured,
    partial: &PartialBundle,
    writers_stopped_secs: f64,
    recipients: Option<&crypt::Recipients>,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    let copied = config::copy(stack, containers, &partial.path("compose"))?;
    let mut services = Vec::new();
    for ct in containers {
        services.push(ServiceImage {
            service: ct.service.clone(),
            image: ct.image.clone(),
            image_id: ct.image_id.clone(),
            repo_digests: dk::repo_digests(docker, &ct.image_id).await,
        });
    }
    let snapshot = serde_json::json!({ "stack": stack, "containers": containers, "compose_files": copied });
    write_json(&partial.path("snapshot.json"), &snapshot)?;
    if let Some(r) = recipients {
        progress.step("encrypt", format!("encrypting the bundle's files to {}", r.names().join(", ")));
        for rel in crate::util::list_files(&partial.dir)? {
            // The archive was encrypted on its way to disk.
            if rel.as_os_str() != ARCHIVE {
                r.encrypt_file(&partial.dir.join(&rel))?;
            }
        }
    }
    let mongo = stack.mongo.clone().unwrap_or_else(|| crate::snapshot::MongoState {
        service: String::new(),
        image: None,
        expected_major: String::new(),
        reachable: false,
        error: None,
        server_version: None,
        fcv: None,
        ferretdb: false,
        refusal: None,
    });
    let manifest = Manifest {
        format: manifest::FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created: now_rfc3339(),
        project: stack.project.clone(),
        mender_version: stack.release.clone(),
        services,
        mongo: MongoInfo {
            service: mongo.service,
            image: mongo_image.into(),
            server_version: mongo.server_version,
            fcv: mongo.fcv,
            ferretdb: mongo.ferretdb,
        },
        databases: c.databases,
        archive: c.dumped.summary.clone(),
        files: file_entries(partial, &c.dumped)?,
        artifacts: c.artifacts,
        verifications: vec![],
        rehearsals: vec![],
        stack: Some(stack_identity(stack)),
        writers_stopped_secs: Some(writers_stopped_secs),
        encryption: recipients.map(crypt::Recipients::encryption),
        keys: crate::snapshot::keys::digests(containers),
    };
    manifest.save(&partial.dir)?;
    Ok(manifest)
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = crate::util::private_file(path)?;
    f.write_all(&serde_json::to_vec_pretty(value)?)?;
    f.sync_all()
}

/// Size and sha256 of every file; the archive's were computed while it was written.
fn file_entries(partial: &PartialBundle, dumped: &dump::Dumped) -> std::io::Result<Vec<FileEntry>> {
    let mut out = Vec::new();
    for rel in crate::util::list_files(&partial.dir)? {
        let path = rel.to_string_lossy().into_owned();
        if path == bundle::MANIFEST || path == bundle::MANIFEST_SUM {
            continue;
        }
        let (sha256, size) = if path == ARCHIVE {
            (dumped.sha256.clone(), dumped.size)
        } else {
            bundle::file_sha256(&partial.dir.join(&rel))?
        };
        out.push(FileEntry { path, size, sha256 });
    }
    Ok(out)
}
