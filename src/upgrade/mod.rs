//! `upgrade`: hop by hop through compose, with offline migrations, health gates, a journal, and
//! rollback that restores data when a migration ran.
//!
//! Every hop runs the same steps, each journaled (fsynced) before the next one starts, each safe
//! to run again, so that `resume` continues a killed run and `rollback` undoes its hop:
//! stop (the gateway and writers) → dump (the rollback point) → rewrite (the compose files) →
//! mongo (a new MongoDB major, with its featureCompatibilityVersion) → migrate (one-shot
//! `migrate` per database, before any server starts) → up (`docker compose up -d`) → gates.

pub mod gates;
mod hop;
pub mod io;
mod preflight;
pub mod report;
pub mod rewrite;
mod rollback;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::catalog::LoadedCatalog;
use crate::engine::compose::{Compose, ComposeError, ProjectFiles};
use crate::plan::Plan;
use crate::report::progress::Progress;
use crate::snapshot::observe::ObserveError;
use crate::state::{Journal, LockError, StateDir};

pub use hop::STEPS;
pub use preflight::fresh_bundle;

/// Everything the steps need from the world.
pub struct Ctx<'a> {
    pub docker: &'a Docker,
    pub catalog: &'a LoadedCatalog,
    pub state: &'a StateDir,
    pub compose: &'a Compose,
    pub registry: Option<&'a str>,
    pub progress: &'a Progress,
    pub hop_timeout: Duration,
    pub grace: i32,
    /// Answers the questions an upgrade asks (manual steps, the go-ahead).
    pub confirm: &'a (dyn Fn(&str) -> bool + Sync),
}

#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub to: Version,
    pub dry_run: bool,
    pub max_backup_age: Duration,
    /// The bundle this upgrade starts from, instead of looking for a fresh one (a rehearsal
    /// upgrades a staging copy restored from it).
    pub use_bundle: Option<PathBuf>,
    /// Refuse unless a rehearsal of this target proved the bundle.
    pub require_rehearsal: bool,
}

/// The upgrade's part of the journal: where it is and what it needs to undo its hop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpgradeState {
    pub run_dir: PathBuf,
    pub plan: Plan,
    /// The hop in progress (equal to the number of hops once all are done).
    pub hop: usize,
    /// Steps of the current hop that completed.
    pub done: Vec<String>,
    /// Each database's migration_info before the current hop.
    pub before: BTreeMap<String, Option<String>>,
    /// The mongo image that took the current hop's dump (its tools restore it).
    pub dump_image: Option<String>,
    pub project: ProjectRecord,
    pub timings: Vec<BTreeMap<String, f64>>,
    pub registry: Option<String>,
    pub bundle: Option<PathBuf>,
}

/// How compose is invoked for the project (from its containers' labels).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectRecord {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    /// A staging project's directory: compose runs on the isolated rendering of the files.
    #[serde(default)]
    pub staging: Option<PathBuf>,
}

impl ProjectRecord {
    pub fn files(&self) -> ProjectFiles {
        ProjectFiles {
            name: self.name.clone(),
            working_dir: self.working_dir.clone(),
            config_files: self.config_files.clone(),
            env_files: self.env_files.clone(),
            staging: self.staging.as_deref().map(crate::staging::compose_staging),
        }
    }
}

/// Which hop failed, where and why (boxed in the errors: it is large).
#[derive(Debug, Clone, thiserror::Error)]
#[error("hop {from} → {to} failed at step {step}: {reason}")]
pub struct HopFailed {
    pub from: Version,
    pub to: Version,
    pub step: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A pre-flight check failed: nothing was changed.
    #[error("{0}")]
    Preflight(String),
    #[error("the upgrade needs your go-ahead: {0}")]
    NotConfirmed(String),
    #[error("no interrupted upgrade of project {0} to continue")]
    NothingToResume(String),
    /// A hop failed and was rolled back; the stack is healthy at `at`.
    #[error("{hop}; rolled back to {at} ({how})")]
    RolledBack { hop: Box<HopFailed>, at: Version, how: String },
    /// A hop failed and the rollback did not bring the stack back to health.
    #[error("{hop}; the rollback did not finish: {rollback}")]
    RollbackFailed { hop: Box<HopFailed>, rollback: String, commands: Vec<String> },
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub project: String,
    pub from: Version,
    pub to: Version,
    pub hops: Vec<report::HopReport>,
    pub report_md: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub dry_run: bool,
    pub advice: Vec<String>,
}

/// Persists the journal, then lets a test kill the process at exactly this point
/// (`MENDER_COMPOSE_UPGRADE_FAULT=after:<step>`; documented in the README as test-only).
pub fn checkpoint(state: &StateDir, project: &str, journal: &Journal, step: &str) -> Result<(), UpgradeError> {
    state.write_journal(project, journal)?;
    if std::env::var("MENDER_COMPOSE_UPGRADE_FAULT").is_ok_and(|f| f == format!("after:{step}")) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    }
    Ok(())
}

/// `upgrade --to V`: pre-flight, confirmation, then every hop.
pub async fn run(ctx: &Ctx<'_>, project: Option<&str>, opts: &UpgradeOptions) -> Result<Outcome, UpgradeError> {
    let ready = preflight::check(ctx, project, opts).await?;
    if opts.dry_run {
        return Ok(Outcome {
            project: ready.project.name.clone(),
            from: ready.plan.from.clone(),
            to: ready.plan.to.clone(),
            hops: vec![],
            report_md: None,
            report_json: None,
            dry_run: true,
            advice: ready.notes.clone(),
        });
    }
    let question = preflight::confirmation(&ready);
    if !(ctx.confirm)(&question) {
        return Err(UpgradeError::NotConfirmed("the plan was not confirmed; nothing was changed".into()));
    }
    let bundle = preflight::ensure_backup(ctx, &ready).await?;
    let run_dir = ctx.state.root.join("upgrades").join(format!("{}-{}", ready.project.name, crate::state::now_stamp()));
    crate::backup::bundle::private_dir(&run_dir)?;
    let st = UpgradeState {
        run_dir,
        plan: ready.plan.clone(),
        hop: 0,
        done: vec![],
        before: BTreeMap::new(),
        dump_image: None,
        project: ready.project.clone(),
        timings: vec![],
        registry: ctx.registry.map(str::to_string),
        bundle: Some(bundle),
    };
    let mut journal = Journal::new("upgrade", &ready.lock.owner);
    journal.upgrade = Some(st);
    ctx.state.write_journal(&ready.project.name, &journal)?;
    let outcome = continue_hops(ctx, &mut journal).await;
    drop(ready.lock);
    outcome
}

/// Runs the remaining hops of the journal's upgrade, rolling back a hop that fails.
async fn continue_hops(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<Outcome, UpgradeError> {
    loop {
        let st =
            journal.upgrade.clone().ok_or_else(|| UpgradeError::Preflight("the journal holds no upgrade".into()))?;
        if st.hop >= st.plan.hops.len() {
            break;
        }
        if let Err(failure) = hop::run(ctx, journal).await {
            return Err(rollback::after_failure(ctx, journal, failure).await);
        }
    }
    let st = journal.upgrade.clone().ok_or_else(|| UpgradeError::Preflight("the journal holds no upgrade".into()))?;
    let outcome = report::write(ctx, &st)?;
    ctx.state.clear_journal(&st.project.name)?;
    Ok(outcome)
}

/// The lock for `command`, and the interrupted upgrade's journal, now owned by this run.
fn take_over(ctx: &Ctx<'_>, project: &str, command: &str) -> Result<(crate::state::Lock, Journal), UpgradeError> {
    let lock = ctx.state.lock(project, command)?;
    let mut journal = ctx
        .state
        .journal(project)
        .filter(|j| j.upgrade.is_some())
        .ok_or_else(|| UpgradeError::NothingToResume(project.into()))?;
    journal.owner = lock.owner.clone();
    Ok((lock, journal))
}

/// `resume`: continues an interrupted upgrade from its journal.
pub async fn resume(ctx: &Ctx<'_>, project: &str) -> Result<Outcome, UpgradeError> {
    let (lock, mut journal) = take_over(ctx, project, "resume")?;
    ctx.progress.step("resume", format!("continuing the upgrade of {project} from its journal"));
    let outcome = continue_hops(ctx, &mut journal).await;
    drop(lock);
    outcome
}

/// `rollback`: undoes the hop in progress, or the last completed one.
pub async fn rollback(ctx: &Ctx<'_>, project: &str) -> Result<Version, UpgradeError> {
    let (lock, mut journal) = take_over(ctx, project, "rollback")?;
    let at = rollback::on_request(ctx, &mut journal).await?;
    ctx.state.clear_journal(project)?;
    drop(lock);
    Ok(at)
}
