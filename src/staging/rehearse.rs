//! `rehearse --to V`: a verified bundle → staging → the upgrade engine on staging → a report with
//! per-hop durations and the production maintenance-window estimate → staging down. Production is
//! only read (and briefly quiesced if a backup must be taken first, after confirmation).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use semver::Version;
use serde::{Deserialize, Serialize};

use super::{StagingError, UpOptions, UpOutcome, default_name};
use crate::backup::manifest::Manifest;
use crate::backup::{self, BackupOptions, artifacts::Choice};
use crate::snapshot::observe::{Options, observe_full};
use crate::state::now_rfc3339;
use crate::upgrade::report::HopReport;
use crate::upgrade::{Ctx, UpgradeError, UpgradeOptions};

pub struct RehearseOptions {
    pub to: Version,
    pub from: Option<PathBuf>,
    pub name: Option<String>,
    pub keep: bool,
    pub max_backup_age: Duration,
}

/// What a rehearsal proved, kept in the bundle's manifest and shown by `upgrade`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RehearsalRecord {
    pub at: String,
    pub to: Version,
    pub ok: bool,
    /// Seconds the production services are expected to be down for all hops.
    pub estimate_secs: f64,
    pub hops: Vec<(String, f64)>,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub project: String,
    pub staging: String,
    pub bundle: PathBuf,
    pub from: Version,
    pub to: Version,
    pub ok: bool,
    pub staging_up: Option<UpOutcome>,
    pub hops: Vec<HopReport>,
    pub failure: Option<String>,
    /// Sum of the hops' durations in staging (stop → gates): the window production needs.
    pub estimate_secs: f64,
    pub kept: bool,
    pub report_md: PathBuf,
    pub report_json: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error("the backup before the rehearsal: {0}")]
    Backup(String),
    #[error("a backup must be taken first (it stops the Mender services for a moment); it was not confirmed")]
    NotConfirmed,
}

/// Runs the rehearsal; `Ok` also when the staging upgrade failed (the report says so).
pub async fn run(ctx: &Ctx<'_>, project: Option<&str>, opts: &RehearseOptions) -> Result<Rehearsal, RehearseError> {
    let observe = Options { project, registry: ctx.registry, counts: false };
    let observed = observe_full(ctx.docker, &ctx.catalog.catalog, &observe).await.map_err(UpgradeError::from)?;
    let project = observed.stack.project.clone();
    let release = observed.stack.release.clone().ok_or_else(|| {
        UpgradeError::Preflight(format!(
            "the release of project {project} is unknown: {}",
            observed.stack.unknown_tags.join(", ")
        ))
    })?;
    // A bad target is refused before anything is done.
    crate::plan::plan(&crate::plan::Start { release: release.clone(), drift: vec![] }, &ctx.catalog.catalog, &opts.to)
        .map_err(UpgradeError::from)?;
    let bundle = match &opts.from {
        Some(b) => b.clone(),
        None => bundle_for(ctx, &observed, &release, opts.max_backup_age).await?,
    };
    let name = opts.name.clone().unwrap_or_else(|| default_name(&project));
    let staged = super::up(ctx, &UpOptions { bundle: bundle.clone(), name: Some(name.clone()) }).await?;
    let upgrade_opts = UpgradeOptions {
        to: opts.to.clone(),
        dry_run: false,
        max_backup_age: opts.max_backup_age,
        use_bundle: Some(bundle.clone()),
        require_rehearsal: false,
    };
    ctx.progress.step("rehearse", format!("upgrading staging {name} to {}", opts.to));
    // Staging asks nothing: its go-ahead was the rehearsal; manual steps are listed in the report.
    let yes = |_: &str| true;
    let staging_ctx = Ctx { confirm: &yes, ..*ctx };
    let result = crate::upgrade::run(&staging_ctx, Some(&name), &upgrade_opts).await;
    let (hops, failure) = match result {
        Ok(o) => (o.hops, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let estimate_secs = (hops.iter().map(|h| h.total_secs).sum::<f64>() * 10.0).round() / 10.0;
    let record = RehearsalRecord {
        at: now_rfc3339(),
        to: opts.to.clone(),
        ok: failure.is_none(),
        estimate_secs,
        hops: hops.iter().map(|h| (format!("{} → {}", h.from, h.to), h.total_secs)).collect(),
        failure: failure.clone(),
    };
    mark(&bundle, &record)
        .map_err(|e| RehearseError::Backup(format!("recording the rehearsal in {}: {e}", bundle.display())))?;
    if !opts.keep {
        ctx.progress.step("staging", format!("removing staging {name}"));
        super::down(ctx.docker, ctx.state, &name).await?;
    }
    let (report_md, report_json) = report_paths(ctx, &project)?;
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
    std::fs::write(
        &r.report_json,
        serde_json::to_vec_pretty(&r).map_err(std::io::Error::other).map_err(UpgradeError::from)?,
    )
    .map_err(UpgradeError::from)?;
    std::fs::write(&r.report_md, markdown(&r)).map_err(UpgradeError::from)?;
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
    if let Some((path, _)) = crate::upgrade::fresh_bundle(ctx, project, release, max_age) {
        ctx.progress.step("rehearse", format!("using the backup {}", path.display()));
        return Ok(path);
    }
    let question = format!(
        "No verified backup of {project} ({release}) is younger than {} h. Take one now? The Mender services stop while the database is dumped.",
        max_age.as_secs() / 3600
    );
    if !(ctx.confirm)(&question) {
        return Err(RehearseError::NotConfirmed);
    }
    let opts = BackupOptions { out: None, skip_space_check: false, artifacts: Choice::Auto, grace: ctx.grace };
    let observe = Options { project: Some(project), registry: ctx.registry, counts: false };
    let outcome = backup::run(ctx.docker, &ctx.catalog.catalog, ctx.state, &observe, &opts, ctx.progress)
        .await
        .map_err(|e| RehearseError::Backup(e.to_string()))?;
    Ok(outcome.bundle)
}

/// Adds the rehearsal to the bundle's manifest (its checksum file follows).
fn mark(bundle: &std::path::Path, record: &RehearsalRecord) -> Result<(), String> {
    let mut m = Manifest::load(bundle).map_err(|e| e.to_string())?;
    m.rehearsals.push(record.clone());
    m.save(bundle).map_err(|e| e.to_string())
}

/// The newest successful rehearsal of `to` recorded in a bundle.
pub fn proven(m: &Manifest, to: &Version) -> Option<RehearsalRecord> {
    m.rehearsals.iter().rev().find(|r| r.ok && &r.to == to).cloned()
}

fn report_paths(ctx: &Ctx<'_>, project: &str) -> Result<(PathBuf, PathBuf), UpgradeError> {
    let dir = ctx.state.root.join("reports");
    crate::backup::bundle::private_dir(&dir)?;
    let stem = format!("rehearsal-{project}-{}", crate::state::now_stamp());
    Ok((dir.join(format!("{stem}.md")), dir.join(format!("{stem}.json"))))
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
            "Staging restored and started: {} ({} documents, {} artifacts)\n",
            t.join(", "),
            up.documents,
            up.artifacts
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
