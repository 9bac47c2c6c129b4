//! `rehearse --to V`: a verified bundle → staging → the upgrade engine on staging → a report with
//! per-hop durations and the production maintenance-window estimate → staging down. Production is
//! only read (and briefly quiesced if a backup must be taken first, after confirmation).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use semver::Version;
use serde::Serialize;

use super::{Record, StagingError, UpOptions, UpOutcome, default_name};
use crate::backup::manifest::{Manifest, ManifestError, RehearsalRecord};
use crate::backup::{self, BackupError, BackupOptions};
use crate::snapshot::observe::{Options, observe_full};
use crate::upgrade::report::{HopReport, paths};
use crate::upgrade::{Ctx, Target, UpgradeError, UpgradeOptions, fresh_bundle};
use crate::util::{now_rfc3339, round_tenth};

/// What `rehearse` was asked to do.
pub struct RehearseOptions {
    /// The release to upgrade staging to.
    pub to: Version,
    /// The bundle to restore (default: the newest proven one, or a new one).
    pub from: Option<PathBuf>,
    /// The staging project's name (default: `<project>-staging`).
    pub name: Option<String>,
    /// Leave staging running afterwards.
    pub keep: bool,
    /// A bundle older than this is not used.
    pub max_backup_age: Duration,
    /// `--identity FILE`: the age identity for an encrypted bundle.
    pub identity: Option<std::path::PathBuf>,
}

/// What a rehearsal found: the report `rehearse` prints and writes (Markdown and JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    /// The production project rehearsed (`menderproduction`).
    pub project: String,
    /// The staging project's name.
    pub staging: String,
    /// The bundle staging was restored from.
    pub bundle: PathBuf,
    /// The release the bundle (and staging) started at.
    pub from: Version,
    /// The release staging was upgraded to.
    pub to: Version,
    /// Every hop passed its gates on staging.
    pub ok: bool,
    /// What `staging up` did (timings, restored counts).
    pub staging_up: Option<UpOutcome>,
    /// Each hop done on staging, with its durations (empty when the upgrade failed).
    pub hops: Vec<HopReport>,
    /// Why the staging upgrade failed, in the upgrade's words.
    pub failure: Option<String>,
    /// Sum of the hops' durations in staging (stop → gates): the window production needs.
    pub estimate_secs: f64,
    /// Staging was left running (`--keep`).
    pub kept: bool,
    /// The Markdown report written (`<state-dir>/reports/rehearsal-<project>-….md`).
    pub report_md: PathBuf,
    /// The same report as JSON.
    pub report_json: PathBuf,
}

/// Why a rehearsal could not run to its report (a failed staging upgrade is a report, not this).
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// Staging could not be made or removed.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// Observing production or planning the target failed (the target is refused before anything is
    /// done).
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    /// The backup taken first failed (production's services were started again).
    #[error("the backup before the rehearsal: {0}")]
    Backup(#[from] BackupError),
    /// The rehearsal could not be recorded in the bundle's manifest.
    #[error("recording the rehearsal in {bundle}: {source}")]
    Record {
        /// The bundle directory.
        bundle: String,
        /// Why its manifest could not be read or written.
        source: ManifestError,
    },
    /// The report files could not be written.
    #[error("writing the rehearsal report: {0}")]
    Report(#[from] std::io::Error),
    /// The bundle given with `--from` is not of the running stack: another project, or another
    /// release (a rehearsal from it would not rehearse this upgrade).
    #[error(
        "the bundle {bundle} is {what}, and {project} runs {release}: a rehearsal from it would not rehearse this upgrade"
    )]
    ForeignBundle {
        /// The bundle directory.
        bundle: String,
        /// What it is (`of project P`, `of release V`).
        what: String,
        /// The running project.
        project: String,
        /// Its release.
        release: Version,
    },
    /// A backup had to be taken first, and the operator did not confirm it.
    #[error("a backup must be taken first (it stops the Mender services for a moment); it was not confirmed")]
    NotConfirmed,
}

impl From<RehearseError> for crate::exit::Failure {
    fn from(e: RehearseError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        match e {
            RehearseError::Staging(s) => s.into(),
            RehearseError::Upgrade(u) => u.into(),
            RehearseError::Backup(b) => b.into(),
            RehearseError::NotConfirmed => Failure::new(
                Exit::Usage,
                e,
                crate::exit::UNCHANGED_ALL,
                "confirm, pass --yes, or give a bundle with --from",
            ),
            RehearseError::ForeignBundle { .. } => Failure::new(
                Exit::Precondition,
                e,
                crate::exit::UNCHANGED_ALL,
                "give a bundle of this project at its running release, or leave --from out (a backup is taken first)",
            ),
            RehearseError::Record { .. } | RehearseError::Report(_) => Failure::new(
                Exit::Unexpected,
                e,
                "the rehearsal ran and staging was handled as asked; its record is incomplete",
                "check the state directory's permissions and free space",
            ),
        }
    }
}

/// Runs the rehearsal; `Ok` also when the staging upgrade failed (the report says so).
///
/// # Errors
/// [`RehearseError`] when it cannot run to its report.
pub async fn run(ctx: &Ctx<'_>, project: Option<&str>, opts: &RehearseOptions) -> Result<Rehearsal, RehearseError> {
    let observe = Options { project, registry: ctx.registry, counts: false };
    let observed = observe_full(ctx.docker, &ctx.catalog.catalog, &observe).await.map_err(UpgradeError::from)?;
    let project = observed.stack.project.clone();
    let release = observed.stack.release.clone().ok_or_else(|| {
        UpgradeError::from(crate::upgrade::PreflightError::UnknownRelease {
            project: project.clone(),
            tags: observed.stack.unknown_tags.join(", "),
        })
    })?;
    ctx.state.refuse_if_upgrade_pending(&project).map_err(|p| StagingError::from(Box::new(p)))?;
    // A bad target is refused before anything is done.
    crate::plan::plan(
        &crate::plan::Start { release: release.clone(), drift: vec![], mongo: None },
        &ctx.catalog.catalog,
        &opts.to,
    )
    .map_err(UpgradeError::from)?;
    let bundle = match &opts.from {
        Some(b) => {
            // Read again (and verified) by staging; here only whose it is.
            if let Ok(m) = Manifest::load(b) {
                let what = if m.project != project {
                    Some(format!("of project {}", m.project))
                } else {
                    m.mender_version.as_ref().filter(|v| **v != release).map(|v| format!("of release {v}"))
                };
                if let Some(what) = what {
                    return Err(RehearseError::ForeignBundle {
                        bundle: b.display().to_string(),
                        what,
                        project,
                        release,
                    });
                }
            }
            b.clone()
        }
        None => bundle_for(ctx, &observed, &release, opts.max_backup_age).await?,
    };
    let name = opts.name.clone().unwrap_or_else(|| default_name(&project));
    // From here on a signal removes staging before the process ends.
    let _critical = crate::interrupt::Critical::enter();
    let staged = super::up(
        ctx,
        &UpOptions { bundle: bundle.clone(), name: Some(name.clone()), identity: opts.identity.clone() },
    )
    .await?;
    let target = Target::Staging(Record::load(&staged.dir)?.project());
    let upgrade_opts = UpgradeOptions {
        reviewed: None,
        to: opts.to.clone(),
        dry_run: false,
        max_backup_age: opts.max_backup_age,
        use_bundle: Some(bundle.clone()),
        require_rehearsal: false,
        // The copy mounts copies of the keys: a release that mounts others fails here first.
        accept_new_keys: false,
    };
    ctx.progress.step("rehearse", format!("upgrading staging {name} to {}", opts.to));
    // Staging asks nothing: its go-ahead was the rehearsal; manual steps are listed in the report.
    let yes = |_: &str| true;
    let staging_ctx = Ctx { confirm: &yes, ..*ctx };
    let result = crate::upgrade::run(&staging_ctx, &target, &upgrade_opts).await;
    if crate::interrupt::is_signalled() {
        ctx.progress.step("staging", format!("removing staging {name}"));
        let _ = ctx.state.clear_journal(&name);
        let _ = super::down(ctx.docker, ctx.state, &name).await;
        return Err(StagingError::Interrupted(name).into());
    }
    let (hops, failure) = match result {
        Ok(o) => (o.hops, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let estimate_secs = round_tenth(hops.iter().map(|h| h.total_secs).sum::<f64>());
    let record = RehearsalRecord {
        at: now_rfc3339(),
        to: opts.to.clone(),
        ok: failure.is_none(),
        estimate_secs,
        hops: hops.iter().map(|h| (h.label.clone(), h.total_secs)).collect(),
        failure: failure.clone(),
    };
    mark(&bundle, &record).map_err(|source| RehearseError::Record { bundle: bundle.display().to_string(), source })?;
    if !opts.keep {
        ctx.progress.step("staging", format!("removing staging {name}"));
        super::down(ctx.docker, ctx.state, &name).await?;
    }
    let (report_md, report_json) = paths(ctx.state, &format!("rehearsal-{project}"))?;
    let r = Rehearsal {
        project,
        staging: name,
        bundle,
        from: staged.release.clone(),
        to: opts.to.clone(),
        ok: failure.is_none(),
        staging_up: Some(staged),
        hops,
        failure,
        estimate_secs,
        kept: opts.keep,
        report_md,
        report_json,
    };
    std::fs::write(&r.report_json, serde_json::to_vec_pretty(&r).map_err(std::io::Error::other)?)?;
    std::fs::write(&r.report_md, markdown(&r))?;
    Ok(r)
}

/// The newest fresh bundle proven by a restore, or a new one (after confirmation).
async fn bundle_for(
    ctx: &Ctx<'_>,
    observed: &crate::snapshot::observe::Observed,
    release: &Version,
    max_age: Duration,
) -> Result<PathBuf, RehearseError> {
    let project = &observed.stack.project;
    let live = backup::stack_identity(&observed.stack);
    let keys = crate::snapshot::keys::digests(&observed.containers);
    let choice = fresh_bundle(ctx.state, project, release, max_age, &live, &keys);
    for i in &choice.ignored {
        ctx.progress.step("rehearse", format!("ignored: {i}"));
    }
    if let Some((path, _)) = choice.found {
        ctx.progress.step("rehearse", format!("using the backup {}", path.display()));
        return Ok(path);
    }
    let db_size = crate::util::size(observed.stack.databases.iter().filter_map(|d| d.size_bytes).sum::<u64>());
    let cost = match last_writer_downtime(ctx, project) {
        Some(secs) => format!("the last backup of {project} stopped them for {secs:.0} s"),
        None => format!("for as long as a dump of about {db_size} of databases takes"),
    };
    let question = format!(
        "No verified backup of this {project} ({release}) is younger than {} h, so the rehearsal must take one first: the Mender services of production stop while the database is dumped ({cost}). Take it now?",
        max_age.as_secs() / 3600
    );
    if !(ctx.confirm)(&question) {
        return Err(RehearseError::NotConfirmed);
    }
    let opts = BackupOptions::automatic(ctx.grace);
    let observe = Options { project: Some(project), registry: ctx.registry, counts: false };
    let outcome = backup::run(ctx.docker, &ctx.catalog.catalog, ctx.state, &observe, &opts, ctx.progress).await?;
    Ok(outcome.bundle)
}

/// How long the newest bundle of `project` kept its writers stopped.
fn last_writer_downtime(ctx: &Ctx<'_>, project: &str) -> Option<f64> {
    let mut manifests: Vec<Manifest> = std::fs::read_dir(ctx.state.backups())
        .ok()?
        .filter_map(|e| e.ok().and_then(|e| Manifest::load(&e.path()).ok()))
        .filter(|m| m.project == project && m.writers_stopped_secs.is_some())
        .collect();
    manifests.sort_by(|a, b| a.created.cmp(&b.created));
    manifests.pop().and_then(|m| m.writers_stopped_secs)
}

/// Adds the rehearsal to the bundle's manifest (its checksum file follows).
fn mark(bundle: &std::path::Path, record: &RehearsalRecord) -> Result<(), ManifestError> {
    let mut m = Manifest::load(bundle)?;
    m.rehearsals.push(record.clone());
    m.save(bundle).map_err(|e| ManifestError::Read(bundle.display().to_string(), e))
}

fn markdown(r: &Rehearsal) -> String {
    let mut s = format!("# Rehearsal of {} → {} for {}\n\n", r.from, r.to, r.project);
    let _ = writeln!(
        s,
        "Bundle: {}  \nStaging: {}{}\n",
        r.bundle.display(),
        r.staging,
        if r.kept { " (kept)" } else { "" }
    );
    if let Some(up) = &r.staging_up {
        let t: Vec<String> = up.timings.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
        let _ = writeln!(
            s,
            "Staging restored and started: {} ({}, {})\n",
            t.join(", "),
            crate::util::count(up.documents, "document"),
            crate::util::count(up.artifacts, "artifact")
        );
    }
    s.push_str(&crate::upgrade::report::hop_table(&r.hops));
    match &r.failure {
        None => {
            let _ = writeln!(
                s,
                "\nEstimated production maintenance window: {:.0} s (the Mender services are down from each hop's stop to its gates).",
                r.estimate_secs
            );
        }
        Some(f) => {
            let _ = writeln!(s, "\n## Problem found\n\n{f}\n\nProduction was not touched.");
        }
    }
    s
}
