//! `restore BUNDLE`: the disaster-recovery path. A bundle of this project that verifies is put back
//! into production exactly — every database dropped and restored, the artifact store made to hold
//! exactly the bundle's objects, the compose files and keys of the bundle put back where they
//! differ — after a safety bundle of what runs now. Journaled like an upgrade: while it runs,
//! nothing else starts the stack's services; if it fails, the safety bundle is restored the same
//! way (exit 4), or the exact commands to finish by hand are printed (exit 5).

use std::path::{Path, PathBuf};
use std::time::Duration;

use semver::Version;
use serde::Serialize;

use super::error::StepError;
use super::runtime::{compose_shown, mongo_report, restore_shown, wait_gates, wait_mongo};
use super::{Ctx, ProjectRecord, history};
use crate::backup::artifacts::{self, Choice, Plan};
use crate::backup::bundle::ARCHIVE;
use crate::backup::crypt::{BundleReader, CryptError};
use crate::backup::manifest::{ArtifactsKind, Location, Manifest};
use crate::backup::restore::{self as backup_restore, MongoTarget, StoreTarget};
use crate::backup::{self, BackupError, BackupOptions, quiesce, verify};
use crate::engine::store;
use crate::exit::{Exit, Failure};
use crate::labels::{LABEL_CONFIG_FILES, LABEL_ENV_FILE, LABEL_WORKING_DIR};
use crate::snapshot::observe::{ObserveError, Observed, Options, observe_full};
use crate::state::{Journal, LockError, UpgradePending};
use crate::util::{Perm, now_stamp, write_atomic};

/// What `restore` was asked to do.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The bundle (a path, or a unique start of a bundle name in the state directory).
    pub bundle: String,
    /// Skip the safety bundle of the current state (only when that state is worthless).
    pub no_safety_backup: bool,
    /// `--identity FILE`: the age identity for an encrypted bundle.
    pub identity: Option<PathBuf>,
}

/// What will be replaced, shown before anything is done.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The bundle.
    pub bundle: PathBuf,
    /// The release running now, when known.
    pub live_release: Option<Version>,
    /// The bundle's release.
    pub bundle_release: Option<Version>,
    /// Per collection whose count differs: `db.coll: N now, M in the bundle`.
    pub collections: Vec<String>,
    /// The artifacts: what the store gets back.
    pub artifacts: String,
    /// Compose and key files that differ from the bundle's and are put back.
    pub files: Vec<String>,
    /// What the restore cannot do for this bundle, said up front.
    pub notes: Vec<String>,
}

/// The result of `restore`.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The project.
    pub project: String,
    /// The release it runs now.
    pub release: Version,
    /// The bundle restored.
    pub bundle: PathBuf,
    /// The safety bundle of the state before, unless skipped.
    pub safety_bundle: Option<PathBuf>,
    /// What was shown before.
    pub preview: Preview,
}

/// Why `restore` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreBundleError {
    /// The bundle name does not resolve.
    #[error(transparent)]
    Resolve(#[from] backup::bundle::ResolveError),
    /// The bundle does not verify.
    #[error("the bundle {bundle} does not verify: {problems}")]
    Damaged {
        /// The bundle.
        bundle: String,
        /// What verify found.
        problems: String,
    },
    /// The bundle cannot be read.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// The bundle is of another project.
    #[error("the bundle {bundle} is of project {theirs}, not of {ours}")]
    OtherProject {
        /// The bundle.
        bundle: String,
        /// The bundle's project.
        theirs: String,
        /// The project restored into.
        ours: String,
    },
    /// Reading the stack.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// Another run holds the lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An interrupted run waits for its own verb.
    #[error(transparent)]
    Pending(#[from] Box<UpgradePending>),
    /// The containers do not say how compose runs the project.
    #[error("the containers of project {0} carry no compose labels (working directory, files)")]
    NoProjectLabels(String),
    /// The operator said no.
    #[error("the restore was not confirmed")]
    NotConfirmed,
    /// The safety bundle could not be taken.
    #[error("the safety bundle of the current state failed: {0}")]
    SafetyBackup(#[source] Box<BackupError>),
    /// The restore failed; the safety bundle was restored and the stack is as it was.
    #[error("the restore failed ({error}); the state before was restored from the safety bundle {safety}")]
    RolledBack {
        /// Why it failed.
        error: Box<StepError>,
        /// The safety bundle put back.
        safety: String,
    },
    /// The restore failed and the stack is not as it was.
    #[error("the restore failed: {error}")]
    Failed {
        /// Why.
        error: Box<StepError>,
        /// The commands that finish it by hand.
        commands: Vec<String>,
    },
    /// The state directory.
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
    /// An encrypted bundle without its identity, a wrong one, or a file that does not decrypt.
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

impl From<RestoreBundleError> for Failure {
    fn from(e: RestoreBundleError) -> Failure {
        let nothing = "everything: no service was stopped and no file was changed";
        match e {
            RestoreBundleError::Resolve(r) => r.into(),
            RestoreBundleError::Observe(o) => o.into(),
            RestoreBundleError::Pending(p) => (*p).into(),
            RestoreBundleError::Verify(verify::VerifyError::Identity(c)) | RestoreBundleError::Crypt(c) => {
                let mut f: Failure = c.into();
                f.unchanged = nothing.into();
                f
            }
            e @ (RestoreBundleError::Damaged { .. } | RestoreBundleError::Verify(_)) => Failure::new(
                Exit::Precondition,
                e,
                nothing,
                "`verify BUNDLE` names what is wrong; restore another bundle",
            ),
            e @ RestoreBundleError::OtherProject { .. } => Failure::new(
                Exit::Precondition,
                e,
                nothing,
                "name the bundle's project with -p, or restore a bundle of this one",
            ),
            e @ RestoreBundleError::NotConfirmed => {
                Failure::new(Exit::Usage, e, nothing, "run it again and confirm, or pass --yes")
            }
            e @ RestoreBundleError::SafetyBackup(_) => Failure::new(
                Exit::Precondition,
                e,
                "the services were started again; nothing was restored",
                "fix what the backup names, or pass --no-safety-backup when the current state is not worth keeping",
            ),
            e @ RestoreBundleError::RolledBack { .. } => Failure::new(
                Exit::RolledBack,
                e,
                "the stack is as it was before the restore (from the safety bundle)",
                "read the error, fix the cause, and restore again",
            ),
            RestoreBundleError::Failed { error, commands } => Failure::new(
                Exit::RollbackIncomplete,
                format!("the restore failed: {error}"),
                "the bundle and the safety bundle are kept; the stack is NOT healthy",
                format!("finish by hand:\n    {}", commands.join("\n    ")),
            ),
            RestoreBundleError::Lock(l) => l.into(),
            e @ (RestoreBundleError::NoProjectLabels(_) | RestoreBundleError::Io(_)) => {
                Failure::new(Exit::Precondition, e, nothing, "see the message; `status` shows the stack")
            }
        }
    }
}

/// How compose runs the live project (its containers' labels).
fn project_record(o: &Observed) -> Result<ProjectRecord, RestoreBundleError> {
    let name = o.stack.project.clone();
    let c = o.containers.iter().find(|c| c.label(LABEL_WORKING_DIR).is_some());
    let c = c.ok_or_else(|| RestoreBundleError::NoProjectLabels(name.clone()))?;
    let wd = c.label(LABEL_WORKING_DIR).cloned().unwrap_or_default();
    Ok(ProjectRecord {
        name,
        working_dir: PathBuf::from(wd),
        config_files: crate::engine::compose::label_paths(c.label(LABEL_CONFIG_FILES)),
        env_files: crate::engine::compose::label_paths(c.label(LABEL_ENV_FILE)),
        staging: None,
    })
}

/// The bundle's compose files (those under the project directory) that differ from the live ones:
/// (path relative to the project directory, the bundle's bytes).
fn differing_files(bundle: &Path, project: &ProjectRecord) -> Vec<(PathBuf, Vec<u8>)> {
    let root = bundle.join("compose");
    crate::util::list_files(&root)
        .unwrap_or_default()
        .into_iter()
        .filter(|rel| !rel.starts_with("_external"))
        .filter_map(|rel| {
            let theirs = std::fs::read(root.join(&rel)).ok()?;
            let ours = std::fs::read(project.working_dir.join(&rel)).ok();
            (ours.as_deref() != Some(theirs.as_slice())).then_some((rel, theirs))
        })
        .collect()
}

/// Everything `restore` checks and shows before it asks.
/// `data` holds the bundle's files in clear (the bundle itself when it is plain).
async fn preview(
    ctx: &Ctx<'_>,
    bundle: &Path,
    data: &Path,
    m: &Manifest,
    o: &Observed,
    project: &ProjectRecord,
) -> Preview {
    let mut collections = Vec::new();
    let live = match (o.stack.network.as_ref(), o.stack.mongo.as_ref()) {
        (Some(net), Some(mg)) => mongo_report(ctx.runtime, net, &mg.service, true).await.ok(),
        _ => None,
    };
    for db in &m.databases {
        for (coll, want) in &db.collections {
            let have = live
                .as_ref()
                .and_then(|l| l.databases.iter().find(|d| d.name == db.name))
                .and_then(|d| d.collections.iter().find(|c| &c.name == coll))
                .map(|c| c.count);
            if have != Some(*want) {
                let now = have.map_or_else(|| "none".to_string(), |h| h.to_string());
                collections.push(format!("{}.{coll}: {now} now, {want} in the bundle", db.name));
            }
        }
    }
    let mut notes = Vec::new();
    let artifacts = match (&m.artifacts.location, m.artifacts.kind) {
        (Location::Bundle, kind) => format!(
            "the {} store is made to hold exactly the bundle's {} ({})",
            format!("{kind:?}").to_lowercase(),
            crate::util::count(m.artifacts.objects, "object"),
            crate::util::size(m.artifacts.bytes)
        ),
        (Location::Versioning, _) => {
            notes.push("the artifacts are kept by the bucket's versions, not in the bundle: they are not restored by this tool; restore the recorded versions (artifacts/inventory.jsonl) with your store's tools".into());
            "left as they are (the bucket keeps versions)".into()
        }
        (Location::Bucket { bucket, prefix }, _) => {
            notes.push(format!(
                "the artifacts were copied to s3://{bucket}/{prefix}: copy them back with your store's tools"
            ));
            "left as they are (copies in a backup bucket)".into()
        }
        (Location::None, _) => "left as they are (the bundle has none)".into(),
    };
    if crate::util::list_files(&data.join("compose/_external")).is_ok_and(|f| !f.is_empty()) {
        notes.push("files the stack mounts from outside its directory are in the bundle under compose/_external/ and are not put back".into());
    }
    let files = differing_files(data, project).into_iter().map(|(p, _)| p.display().to_string()).collect();
    Preview {
        bundle: bundle.to_path_buf(),
        live_release: o.stack.release.clone(),
        bundle_release: m.mender_version.clone(),
        collections,
        artifacts,
        files,
        notes,
    }
}

/// The journal line that names a restore's safety bundle (followed by its path).
const SAFETY_STEP: &str = "safety bundle ";

/// What `restore` asks; `safety` says what becomes of the state it replaces.
fn question(project: &str, p: &Preview, safety: &str) -> String {
    let v = |v: &Option<Version>| v.as_ref().map_or_else(|| "unknown".to_string(), |v| v.to_string());
    let mut q = format!(
        "Restore {} into {project}: release {} now, {} in the bundle.\n",
        p.bundle.display(),
        v(&p.live_release),
        v(&p.bundle_release)
    );
    if p.collections.is_empty() {
        q.push_str("  every collection has as many documents now as in the bundle\n");
    }
    for c in &p.collections {
        q.push_str(&format!("  {c}\n"));
    }
    q.push_str(&format!("  artifacts: {}\n", p.artifacts));
    for f in &p.files {
        q.push_str(&format!("  file put back: {f}\n"));
    }
    for n in &p.notes {
        q.push_str(&format!("  note: {n}\n"));
    }
    q.push_str(&format!("Every database is replaced. {safety} Proceed?"));
    q
}

/// `restore BUNDLE`.
///
/// # Errors
/// Refusals before any downtime (a bundle that does not resolve, does not verify or is of another
/// project; an interrupted run; no confirmation) change nothing; a failed restore is
/// [`RestoreBundleError::RolledBack`] or [`RestoreBundleError::Failed`].
pub async fn run(ctx: &Ctx<'_>, project: Option<&str>, opts: &RestoreOptions) -> Result<Restored, RestoreBundleError> {
    let bundle = backup::bundle::resolve(&ctx.state.backups(), &opts.bundle)?;
    // A missing or wrong identity is found before anything else.
    let m = Manifest::load(&bundle).map_err(|e| RestoreBundleError::Verify(e.into()))?;
    let reader = BundleReader::open(&bundle, &m, opts.identity.as_deref())?;
    let report = verify::verify(&bundle, opts.identity.as_deref(), None, ctx.progress).await?;
    if !report.ok {
        return Err(RestoreBundleError::Damaged {
            bundle: bundle.display().to_string(),
            problems: report.problems.join("; "),
        });
    }
    let m = Manifest::load(&bundle).map_err(|e| RestoreBundleError::Verify(e.into()))?;
    let observed =
        observe_full(ctx.docker, &ctx.catalog.catalog, &Options { project, registry: ctx.registry, counts: false })
            .await?;
    let name = observed.stack.project.clone();
    if m.project != name {
        return Err(RestoreBundleError::OtherProject {
            bundle: bundle.display().to_string(),
            theirs: m.project.clone(),
            ours: name,
        });
    }
    let lock = ctx.state.lock(&name, "restore")?;
    // A restore that failed half-way is finished by restoring again; anything else waits.
    let interrupted = ctx.state.journal::<serde_json::Value>(&name).filter(|j| j.operation == "restore");
    if interrupted.is_none() {
        ctx.state.refuse_if_upgrade_pending(&name).map_err(Box::new)?;
    }
    // Its safety bundle stays the way back: what runs now is half restored, worth no new one.
    let earlier_safety = interrupted.as_ref().map(|j| {
        j.steps
            .iter()
            .find_map(|s| s.step.strip_prefix(SAFETY_STEP).map(PathBuf::from))
            .filter(|p| p.join("manifest.json").exists())
    });
    let record = project_record(&observed)?;
    // The bundle's files in clear (the bundle itself when it is plain; removed when dropped).
    if reader.encrypted() {
        ctx.progress.step("decrypt", format!("decrypting {} with the identity given", bundle.display()));
    }
    let plain = reader.plain_dir(&["compose", "snapshot.json", ARCHIVE, "artifacts"])?;
    let data = plain.path();
    let preview = preview(ctx, &bundle, data, &m, &observed, &record).await;
    let safety_note = match (&earlier_safety, opts.no_safety_backup) {
        (Some(Some(s)), _) => format!(
            "This finishes an interrupted restore: its safety bundle {} stays the way back (no new one of the half-restored state).",
            s.display()
        ),
        (Some(None), _) => "This finishes an interrupted restore, which had no safety bundle.".into(),
        (None, false) => "A safety bundle of the current state is taken first.".into(),
        (None, true) => "NO safety bundle is taken (--no-safety-backup).".into(),
    };
    if !(ctx.confirm)(&question(&name, &preview, &safety_note)) {
        return Err(RestoreBundleError::NotConfirmed);
    }
    let safety = if let Some(earlier) = earlier_safety {
        ctx.progress.step("restore", safety_note.clone());
        earlier
    } else if opts.no_safety_backup {
        None
    } else {
        ctx.progress.step("restore", "taking a safety bundle of the current state");
        let bopts = BackupOptions {
            out: None,
            skip_space_check: false,
            artifacts: Choice::Auto,
            grace: ctx.grace,
            recipients: None,
        };
        let observe = Options { project: Some(&name), registry: ctx.registry, counts: false };
        let o = backup::run_locked(
            ctx.docker,
            &ctx.catalog.catalog,
            ctx.state,
            &observe,
            &bopts,
            ctx.progress,
            &lock,
            observed.stack.clone(),
            observed.containers.clone(),
        )
        .await
        .map_err(|e| RestoreBundleError::SafetyBackup(Box::new(e)))?;
        Some(o.bundle)
    };
    let run_dir = ctx.state.root.join("restores").join(format!("{name}-{}", now_stamp()));
    crate::util::private_dir(&run_dir)?;
    let _critical = crate::interrupt::Critical::enter();
    let mut journal: Journal = Journal::new("restore", &lock.owner);
    // Services a failed restore left stopped are in its journal; they are stopped again, started last.
    let earlier: Vec<_> = ctx.state.journal::<serde_json::Value>(&name).map(|j| j.stopped).unwrap_or_default();
    journal.stopped = quiesce::writers(&observed.stack);
    for s in earlier {
        if !journal.stopped.iter().any(|w| w.container == s.container) {
            journal.stopped.push(s);
        }
    }
    journal.step(&format!("restoring {}", bundle.display()));
    // The safety bundle is what a failed restore is undone from: named in the journal, so that
    // `backup prune` keeps it while the journal stands.
    if let Some(safe) = &safety {
        journal.step(&format!("{SAFETY_STEP}{}", safe.display()));
    }
    ctx.state.write_journal(&name, &journal)?;
    let outcome = put_back(ctx, data, &m, &record, &journal, &run_dir).await;
    let result = match outcome {
        Ok(release) => Ok(release),
        Err(error) => match &safety {
            Some(safe) => {
                ctx.progress.step("restore", format!("the restore failed ({error}); restoring the safety bundle"));
                let sm = Manifest::load(safe).map_err(|e| RestoreBundleError::Verify(e.into()))?;
                match put_back(ctx, safe, &sm, &record, &journal, &run_dir).await {
                    Ok(_) => Err(RestoreBundleError::RolledBack {
                        error: Box::new(error),
                        safety: safe.display().to_string(),
                    }),
                    Err(second) => Err(RestoreBundleError::Failed {
                        error: Box::new(StepError::Gates(vec![
                            error.to_string(),
                            format!("and the safety bundle: {second}"),
                        ])),
                        commands: commands(&name, &bundle, safety.as_deref(), &run_dir),
                    }),
                }
            }
            None => Err(RestoreBundleError::Failed {
                error: Box::new(error),
                commands: commands(&name, &bundle, None, &run_dir),
            }),
        },
    };
    if !matches!(result, Err(RestoreBundleError::Failed { .. })) {
        ctx.state.clear_journal(&name)?;
    }
    let live = observed.stack.release.clone().unwrap_or_else(|| Version::new(0, 0, 0));
    let bundle_release = m.mender_version.clone().unwrap_or_else(|| live.clone());
    history::record(
        ctx.state,
        &name,
        &history::Entry {
            at: crate::util::now_rfc3339(),
            operation: history::Operation::Restore,
            from: live.clone(),
            to: bundle_release.clone(),
            at_release: match &result {
                Ok(v) => v.clone(),
                Err(RestoreBundleError::RolledBack { .. }) => live.clone(),
                Err(_) => bundle_release.clone(),
            },
            hops: vec![],
            ok: result.is_ok(),
            result: match &result {
                Ok(_) => format!("restored {}", bundle.display()),
                Err(e) => e.to_string(),
            },
            report: None,
            state: None,
        },
    );
    drop(lock);
    let release = result?;
    Ok(Restored { project: name, release, bundle, safety_bundle: safety, preview })
}

/// Puts `bundle` back into the project: writers stopped, its files, its databases, its artifacts,
/// then everything started and gated at the bundle's release.
async fn put_back(
    ctx: &Ctx<'_>,
    bundle: &Path,
    m: &Manifest,
    record: &ProjectRecord,
    journal: &Journal,
    run_dir: &Path,
) -> Result<Version, StepError> {
    let release = m.mender_version.clone().ok_or_else(|| StepError::NoRelease(Version::new(0, 0, 0)))?;
    ctx.progress.step("restore", format!("stopping {}", crate::util::count_len(journal.stopped.len(), "service")));
    ctx.runtime.stop(&journal.stopped, ctx.grace).await?;
    // The files first: the bundle's release runs on the bundle's configuration.
    for (rel, bytes) in differing_files(bundle, record) {
        let target = record.working_dir.join(&rel);
        if let Ok(old) = std::fs::read(&target) {
            write_atomic(&run_dir.join("compose-before").join(&rel), &old, Perm::Private)
                .map_err(StepError::file(format!("saving {}", rel.display())))?;
        }
        ctx.progress.step("restore", format!("putting back {}", rel.display()));
        write_atomic(&target, &bytes, Perm::Keep).map_err(StepError::file(format!("writing {}", rel.display())))?;
    }
    let observed = ctx.runtime.observe(&record.name).await?;
    let mongo = m.mongo.service.clone();
    let mut first = vec!["up", "-d", "--no-deps", mongo.as_str()];
    if let Some(svc) = observed.stack.storage.service.as_deref().filter(|_| m.artifacts.kind == ArtifactsKind::Volume) {
        first.push(svc);
    }
    compose_shown(ctx, record, &first).await?;
    let observed = ctx.runtime.observe(&record.name).await?;
    let network = observed.stack.network.clone().ok_or_else(|| StepError::NoNetwork(mongo.clone()))?;
    wait_mongo(ctx.runtime, &network, &mongo, Duration::from_secs(120)).await?;
    let image = observed
        .containers
        .iter()
        .find(|c| c.service == mongo)
        .map_or_else(|| m.mongo.image.clone(), |c| c.image.clone());
    let ferretdb = observed.stack.mongo.as_ref().is_some_and(|x| x.ferretdb) || m.mongo.ferretdb;
    ctx.progress.step("restore", format!("restoring the databases into {mongo}"));
    restore_shown(ctx, bundle, &MongoTarget { image: &image, network: &network, host: &mongo }, ferretdb).await?;
    if m.artifacts.location == Location::Bundle {
        ctx.progress.step(
            "restore",
            format!(
                "making the artifact store hold exactly the bundle's {}",
                crate::util::count(m.artifacts.objects, "object")
            ),
        );
        restore_artifacts(ctx, bundle, &observed).await?;
    }
    ctx.progress.step("restore", "docker compose up -d");
    compose_shown(ctx, record, &["up", "-d", "--remove-orphans"]).await?;
    wait_gates(ctx, record, &release, ctx.hop_timeout, &[]).await.map_err(StepError::Gates)?;
    Ok(release)
}

/// The bundle's objects into the stack's store (through the helper) or the external store (from
/// the host), extra objects deleted. The store may take a moment to answer after its start.
async fn restore_artifacts(ctx: &Ctx<'_>, bundle: &Path, o: &Observed) -> Result<(), StepError> {
    let deployments = o.containers.iter().find(|c| c.service.ends_with("deployments"));
    let plan = artifacts::decide(&o.stack, deployments, &Choice::To("bundle".into()), None)
        .or_else(|_| artifacts::decide(&o.stack, deployments, &Choice::Auto, None))
        .map_err(|e| StepError::Storage(e.to_string()))?;
    match plan {
        Plan::InStack { service, endpoint, bucket, region, keys } => {
            // The store is reached on its own network, which need not be MongoDB's.
            let network = o.stack.network_of(&service).ok_or_else(|| StepError::NoNetwork(service.clone()))?;
            let t = StoreTarget {
                network: &network,
                endpoint: &endpoint,
                bucket: &bucket,
                region: &region,
                access_key: &keys.access,
                secret_key: &keys.secret,
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            loop {
                match backup_restore::artifacts(ctx.docker, bundle, &t, true).await {
                    Ok(_) => return Ok(()),
                    Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
                    Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
                }
            }
        }
        Plan::ToBundle { store: external, .. } | Plan::RecordVersions { store: external } => {
            let s = external.open().map_err(|e| StepError::Storage(e.to_string()))?;
            store::mirror_from_dir(&*s, &bundle.join("artifacts")).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn commands(project: &str, bundle: &Path, safety: Option<&Path>, run_dir: &Path) -> Vec<String> {
    let mut c = vec![format!(
        "mender-compose-upgrade -p {project} restore --no-safety-backup {}    # try the bundle again",
        bundle.display()
    )];
    if let Some(s) = safety {
        c.push(format!(
            "mender-compose-upgrade -p {project} restore --no-safety-backup {}    # or go back to the state before",
            s.display()
        ));
    }
    c.push(format!("# the compose files as they were before are in {}/compose-before/", run_dir.display()));
    c.push(format!("mender-compose-upgrade -p {project} recover --abandon    # once the stack is right again"));
    c
}
