//! `upgrade`: hop by hop through compose, with offline migrations, health gates, a journal, and
//! rollback that restores data when a migration ran.
//!
//! Every hop runs the same steps ([`Step`]), each journaled (fsynced) before the next one starts,
//! each safe to run again, so that `resume` continues a killed run and `rollback` undoes its hop:
//! stop (the gateway and writers) → dump (the rollback point) → rewrite (the compose files) →
//! mongo (a new MongoDB major, with its featureCompatibilityVersion) → migrate (one-shot
//! `migrate` per database, before any server starts) → up (`docker compose up -d`) → gates.
//!
//! The caller says what the upgrade runs on ([`Target`]) and gives the [`Runtime`] that reaches
//! it; nothing here learns from labels what kind of project it has.

mod clone;
mod error;
mod files;
pub mod gates;
pub mod history;
mod hop;
mod preflight;
pub mod recover;
pub mod report;
pub mod restore;
pub mod rewrite;
mod rollback;
pub mod runtime;
mod stage;
mod step;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::catalog::LoadedCatalog;
use crate::engine::compose::{ProjectFiles, project_files};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::state::{Journal, Lock, StateDir};

pub use error::{HopFailed, PreflightError, StepError, UpgradeError};
pub use preflight::fresh_bundle;
pub use runtime::{Daemon, Runtime};
pub use step::{Point, Step};

/// Everything the steps need from the world.
pub struct Ctx<'a> {
    /// The daemon, for what happens before the first hop (image pulls, the pre-upgrade backup);
    /// hops and rollbacks go through `runtime`.
    pub docker: &'a Docker,
    /// How compose, the helper, dumps and restores reach the project.
    pub runtime: &'a dyn Runtime,
    /// The release catalog and its templates.
    pub catalog: &'a LoadedCatalog,
    /// Locks, journals, bundles, reports.
    pub state: &'a StateDir,
    /// The registry prefix of the catalog's images.
    pub registry: Option<&'a str>,
    /// Where steps are reported.
    pub progress: &'a Progress,
    /// How long a hop's gates may take.
    pub hop_timeout: Duration,
    /// Seconds a service gets to stop before it is killed.
    pub grace: i32,
    /// Answers the questions an upgrade asks (manual steps, the go-ahead).
    pub confirm: &'a (dyn Fn(&str) -> bool + Sync),
}

/// What an upgrade runs on; the caller knows, and picks the [`Runtime`] that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A production project: the one named, or the only Mender project on the daemon.
    Production(Option<String>),
    /// A staging copy made by this tool (its record names the copied files).
    Staging(ProjectRecord),
}

/// What `upgrade --to` was asked to do.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// The release to end on.
    pub to: Version,
    /// Stop after the pre-flight checks.
    pub dry_run: bool,
    /// A verified backup older than this is not trusted.
    pub max_backup_age: Duration,
    /// The bundle this upgrade starts from, instead of looking for a fresh one (a rehearsal
    /// upgrades a staging copy restored from it).
    pub use_bundle: Option<PathBuf>,
    /// Refuse unless a rehearsal of this target proved the bundle.
    pub require_rehearsal: bool,
    /// The plan file the operator reviewed (`upgrade --plan FILE`): the file as given and what it
    /// holds; the upgrade carries out exactly its plan or refuses.
    pub reviewed: Option<(String, crate::plan::saved::SavedPlan)>,
    /// Do not roll back a hop for mounting other signing keys than the bundle recorded.
    pub accept_new_keys: bool,
}

/// The upgrade's part of the journal: where it is and what it needs to undo its hop. Its shape is
/// the journal's format (fields may be added with defaults, never renamed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpgradeState {
    /// Where the pre-hop dumps, saved files and rewrites of this run are kept.
    pub run_dir: PathBuf,
    /// The plan being carried out.
    pub plan: Plan,
    /// The hop in progress (equal to the number of hops once all are done).
    pub hop: usize,
    /// Steps of the current hop that completed.
    pub done: Vec<Step>,
    /// Each database's migration_info before the current hop.
    pub before: BTreeMap<String, Option<String>>,
    /// The mongo image that took the current hop's dump (its tools restore it).
    pub dump_image: Option<String>,
    /// How compose is invoked for the project.
    pub project: ProjectRecord,
    /// Seconds per step, per hop.
    pub timings: Vec<BTreeMap<Step, f64>>,
    /// The registry prefix the upgrade started with (a resume uses the same).
    pub registry: Option<String>,
    /// The bundle taken or proven before the first hop.
    pub bundle: Option<PathBuf>,
    /// A rollback after a completed upgrade goes back hop by hop to this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<Version>,
    /// Set when the rollback undoes the upgrade back to where it started: it goes on down to this
    /// hop index, whatever releases the hops share (a MongoDB stage at the start release is
    /// undone too, back to the old major). `None`: it stops on reaching `rollback_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_until: Option<usize>,
    /// A rollback of the current hop began restoring its pre-hop dump (the databases may be
    /// wiped or half back): any later rollback of this hop restores the dump again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore_begun: bool,
    /// `upgrade --accept-new-keys`: a hop that mounts other deviceauth or useradm signing keys
    /// than the bundle recorded is not rolled back for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_new_keys: bool,
}

/// The journal of an upgrade.
pub type UpgradeJournal = Journal<UpgradeState>;

/// How compose is invoked for the project (from its containers' labels, or a staging record).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectRecord {
    /// The compose project name.
    pub name: String,
    /// The project directory.
    pub working_dir: PathBuf,
    /// The compose files, in the order compose reads them.
    pub config_files: Vec<PathBuf>,
    /// `--env-file` files.
    pub env_files: Vec<PathBuf>,
    /// A staging copy's directory: the journal says so, for `resume` and `rollback` to pick the
    /// staging runtime.
    #[serde(default)]
    pub staging: Option<PathBuf>,
}

impl ProjectRecord {
    /// The files compose is given.
    pub fn files(&self) -> ProjectFiles {
        project_files(&self.name, &self.working_dir, self.config_files.clone(), self.env_files.clone())
    }
}

/// The result of `upgrade`, `resume` or a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The project upgraded.
    pub project: String,
    /// The release before the first hop.
    pub from: Version,
    /// The release after the last hop.
    pub to: Version,
    /// Per hop: timings and rollback class.
    pub hops: Vec<report::HopReport>,
    /// The Markdown report in the state directory.
    pub report_md: Option<PathBuf>,
    /// The JSON report in the state directory.
    pub report_json: Option<PathBuf>,
    /// Only the pre-flight checks ran.
    pub dry_run: bool,
    /// What the operator should do now, one line each.
    pub advice: Vec<String>,
    /// A dry run's plan: the hops the upgrade would carry out (`hops` stays empty: none ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::Plan>,
    /// A dry run's preview as text: the hops, their manual steps and maintenance windows, the
    /// expected downtime, the backup, and every pre-flight note and file diff: what the
    /// confirmation would ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// An upgrade in progress: its lock and its journal, whose payload is always set.
struct Run {
    journal: UpgradeJournal,
}

impl Run {
    /// Errors with `NothingToResume` when the journal holds no upgrade.
    fn new(journal: UpgradeJournal, project: &str) -> Result<Run, UpgradeError> {
        if journal.payload.is_none() {
            return Err(UpgradeError::NothingToResume(project.into()));
        }
        Ok(Run { journal })
    }

    fn st(&self) -> &UpgradeState {
        // Invariant: `Run::new` refuses a journal without a payload, and nothing takes it out.
        self.journal.payload.as_ref().expect("an upgrade journal has its state")
    }

    fn st_mut(&mut self) -> &mut UpgradeState {
        // Invariant as in `st`.
        self.journal.payload.as_mut().expect("an upgrade journal has its state")
    }

    /// Persists the journal, then lets a test kill the process at exactly this point
    /// (`MENDER_COMPOSE_UPGRADE_FAULT=after:<point>`; documented in the README as test-only).
    fn checkpoint(&self, state: &StateDir, point: Point) -> Result<(), std::io::Error> {
        state.write_journal(&self.st().project.name, &self.journal)?;
        tracing::debug!("journal written after {point}");
        if crate::interrupt::fault(&format!("after:{point}")) {
            crate::interrupt::kill_now();
        } else if crate::interrupt::fault(&format!("sigint-after:{point}")) {
            crate::interrupt::raise();
        }
        Ok(())
    }
}

/// `upgrade --to V`: pre-flight, confirmation, then every hop.
///
/// # Errors
/// Pre-flight refusals change nothing; a failed hop is rolled back ([`UpgradeError::RolledBack`])
/// or says what is left to do by hand ([`UpgradeError::RollbackFailed`]).
pub async fn run(ctx: &Ctx<'_>, target: &Target, opts: &UpgradeOptions) -> Result<Outcome, UpgradeError> {
    let ready = preflight::check(ctx, target, opts).await?;
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
            preview: Some(preflight::preview(&ready)),
            plan: Some(ready.plan.clone()),
        });
    }
    let question = preflight::confirmation(&ready);
    if !(ctx.confirm)(&question) {
        return Err(UpgradeError::NotConfirmed("the plan was not confirmed; nothing was changed".into()));
    }
    let labels: Vec<String> = ready.plan.hops.iter().map(crate::plan::Hop::label).collect();
    let start = serde_json::json!({"operation": "upgrade", "project": ready.project.name, "from": ready.plan.from, "to": ready.plan.to, "hops": labels});
    ctx.progress.notify("start", start).await;
    let bundle = preflight::ensure_backup(ctx, &ready).await?;
    let run_dir = ctx.state.root.join("upgrades").join(format!("{}-{}", ready.project.name, crate::util::now_stamp()));
    crate::util::private_dir(&run_dir)?;
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
        rollback_to: None,
        rollback_until: None,
        restore_begun: false,
        accept_new_keys: opts.accept_new_keys,
    };
    let mut journal = Journal::new("upgrade", &ready.lock.owner);
    journal.payload = Some(st);
    ctx.state.write_journal(&ready.project.name, &journal)?;
    let mut run = Run { journal };
    let outcome = continue_hops(ctx, &mut run).await;
    drop(ready.lock);
    outcome
}

/// Runs the remaining hops of the journal's upgrade, rolling back a hop that fails; an
/// interruption leaves the journal where the hop is, for `resume` or `rollback`.
async fn continue_hops(ctx: &Ctx<'_>, run: &mut Run) -> Result<Outcome, UpgradeError> {
    let _critical = crate::interrupt::Critical::enter();
    while run.st().hop < run.st().plan.hops.len() {
        match hop::run(ctx, run).await {
            Ok(()) => {
                let st = run.st();
                // A rehearsal's hops on staging are no news for production's receivers.
                let hop = st.hop.checked_sub(1).and_then(|i| st.plan.hops.get(i));
                if let Some(h) = hop.filter(|_| st.project.staging.is_none()) {
                    let doc = serde_json::json!({"project": st.project.name, "hop": h.label(), "index": st.hop, "of": st.plan.hops.len(), "release": h.to});
                    ctx.progress.notify("hop", doc).await;
                }
            }
            Err(hop::Stop::Failed(failure)) => return Err(rollback::after_failure(ctx, run, failure).await),
            Err(hop::Stop::Interrupted(point)) => return Err(stopped_by_signal(ctx, run, point).await),
        }
    }
    let outcome = report::write(ctx, run.st())?;
    let st = run.st();
    if st.project.staging.is_none() {
        history::record(
            ctx.state,
            &st.project.name,
            &history::Entry {
                at: crate::util::now_rfc3339(),
                operation: history::Operation::Upgrade,
                from: st.plan.from.clone(),
                to: st.plan.to.clone(),
                at_release: st.plan.to.clone(),
                hops: st.plan.hops.iter().map(crate::plan::Hop::label).collect(),
                ok: true,
                result: "done".into(),
                report: outcome.report_md.clone(),
                state: Some(st.clone()),
            },
        );
    }
    ctx.state.clear_journal(&st.project.name)?;
    if st.project.staging.is_none() {
        let doc = serde_json::json!({"project": st.project.name, "from": st.plan.from, "to": st.plan.to, "report": outcome.report_md});
        ctx.progress.notify("done", doc).await;
    }
    Ok(outcome)
}

/// Leaves the stack as the journal says, without the run's sidecars, and tells where it stopped.
async fn stopped_by_signal(ctx: &Ctx<'_>, run: &Run, point: Point) -> UpgradeError {
    crate::engine::docker::remove_labelled(ctx.docker, crate::labels::SIDECAR_LABEL, &std::process::id().to_string())
        .await;
    let project = run.st().project.name.clone();
    if let Err(e) = ctx.state.write_journal(&project, &run.journal) {
        return UpgradeError::Io(e);
    }
    UpgradeError::Interrupted { during: point.to_string(), advice: recover::explain(&project, &run.journal) }
}

/// The lock for `command`, and the interrupted upgrade's journal, now owned by this run. The
/// sidecars of the run that died are removed first: a mongorestore or mongodump it started reads
/// its bind-mounted file on its own, and would otherwise go on writing beside this run's.
async fn take_over(ctx: &Ctx<'_>, project: &str, command: &str) -> Result<(Lock, Run), UpgradeError> {
    let lock = ctx.state.lock(project, command)?;
    let mut journal: UpgradeJournal =
        ctx.state.journal(project).ok_or_else(|| UpgradeError::NothingToResume(project.into()))?;
    if command == "resume" && journal.operation == "rollback" {
        return Err(UpgradeError::RollbackPending(project.into()));
    }
    if journal.owner.is_dead() {
        let pid = journal.owner.pid.to_string();
        crate::engine::docker::remove_labelled(ctx.docker, crate::labels::SIDECAR_LABEL, &pid).await;
    }
    journal.owner = lock.owner.clone();
    Ok((lock, Run::new(journal, project)?))
}

/// The interrupted upgrade of `project`, if its journal holds one (for the caller to pick the
/// runtime that goes with its target).
pub fn interrupted(state: &StateDir, project: &str) -> Option<UpgradeState> {
    state.journal::<UpgradeState>(project).and_then(|j| j.payload)
}

/// `resume`: continues an interrupted upgrade from its journal.
///
/// # Errors
/// As [`run`]; `NothingToResume` when there is no interrupted upgrade.
pub async fn resume(ctx: &Ctx<'_>, project: &str) -> Result<Outcome, UpgradeError> {
    let (lock, mut run) = take_over(ctx, project, "resume").await?;
    ctx.progress.step("resume", format!("continuing the upgrade of {project} from its journal"));
    let outcome = continue_hops(ctx, &mut run).await;
    drop(lock);
    outcome
}

/// `rollback`: undoes the hop in progress, or the last completed one.
///
/// # Errors
/// `NothingToResume` when there is no interrupted upgrade; `RollbackFailed` with the commands
/// that finish the recovery by hand.
pub async fn rollback(ctx: &Ctx<'_>, project: &str) -> Result<Version, UpgradeError> {
    let (lock, mut run) = take_over(ctx, project, "rollback").await?;
    // Asked like the rollback of a completed upgrade: a data restore discards what was written
    // since the dump, also while the hop was interrupted.
    let mut question = format!("Roll back the interrupted upgrade of {project}:\n");
    for line in recover::explain(project, &run.journal).iter().filter(|l| !l.contains("resume`")) {
        question.push_str(&format!("  {line}\n"));
    }
    let st = run.st();
    let hop = if st.done.is_empty() { st.hop.checked_sub(1) } else { Some(st.hop) };
    if let Some(h) = hop.filter(|h| st.plan.hops.get(*h).is_some_and(|h| !h.is_mongo_stage())) {
        let dir = files::hop_dir(st, h);
        let observed = ctx.runtime.observe(project).await.ok();
        let target = observed.as_ref().and_then(|o| Some((o.stack.network.clone()?, o.stack.mongo.clone()?.service)));
        if let Some((network, mongo)) = target {
            let lines = discards(ctx, &dir, &network, &mongo).await;
            if !lines.is_empty() {
                question.push_str("If a database moved, the pre-hop dump is restored and puts back:\n");
                for d in lines {
                    question.push_str(&format!("  {d}\n"));
                }
            }
        }
    }
    question.push_str("Proceed?");
    if !(ctx.confirm)(&question) {
        return Err(UpgradeError::NotConfirmed("the rollback was not confirmed; nothing was changed".into()));
    }
    let at = rollback_run(ctx, &mut run).await?;
    ctx.state.clear_journal(project)?;
    record_rollback(ctx, run.st(), &at);
    drop(lock);
    Ok(at)
}

/// Undoes hops of `run` until its `rollback_to` (or one hop), stopping safely on a signal.
async fn rollback_run(ctx: &Ctx<'_>, run: &mut Run) -> Result<Version, UpgradeError> {
    let _critical = crate::interrupt::Critical::enter();
    tokio::select! {
        biased;
        _ = crate::interrupt::signalled() => Err(stopped_by_signal(ctx, run, Point::Rollback).await),
        r = rollback::on_request(ctx, run) => r,
    }
}

fn record_rollback(ctx: &Ctx<'_>, st: &UpgradeState, at: &Version) {
    let hop = st.plan.hops.get(st.hop);
    history::record(
        ctx.state,
        &st.project.name,
        &history::Entry {
            at: crate::util::now_rfc3339(),
            operation: history::Operation::Rollback,
            from: hop.map_or_else(|| st.plan.to.clone(), |h| h.to.clone()),
            to: at.clone(),
            at_release: at.clone(),
            hops: vec![],
            ok: true,
            result: format!("back at {at}"),
            report: None,
            state: None,
        },
    );
}

/// What a rollback after a completed upgrade will do, for the operator to confirm.
#[derive(Debug, Clone, Serialize)]
pub struct WayBack {
    /// The release the stack runs now.
    pub from: Version,
    /// The release it goes back to.
    pub to: Version,
    /// The hops undone, newest first (`3.6.5 → 3.4.0: data restore from …`).
    pub hops: Vec<String>,
    /// Per collection, what the data restore discards or brings back (`deviceauth.devices: 3
    /// documents written since the dump`); empty when no hop restores data.
    pub discards: Vec<String>,
}

/// Whether a rollback recorded after upgrade `e` (in `later`) brought the stack back to where
/// `e` started: every hop of it is undone, nothing of it is left to roll back.
fn undone(later: &[history::Entry], e: &history::Entry) -> bool {
    later.iter().any(|r| r.operation == history::Operation::Rollback && r.ok && r.at_release == e.from)
}

/// The upgrades to undo, newest first, to go from `live` back to `to` (the last upgrade's start
/// when `None`), from the project's history; each with the release to stop at.
fn chain(
    entries: &[history::Entry],
    live: &Version,
    to: Option<&Version>,
) -> Result<Vec<(UpgradeState, Version)>, String> {
    let mut out = Vec::new();
    let mut cur = live.clone();
    // Entries already in the chain: an upgrade is undone once (a MongoDB stage at its start
    // release would otherwise match it again, for ever).
    let mut used = std::collections::BTreeSet::new();
    loop {
        // The newest upgrade not yet undone back to its start, one of whose completed hops ended
        // at the current release (its last hop, or an earlier one when a rollback already undid
        // the later ones).
        let mut candidates = entries.iter().enumerate().rev().filter(|(i, e)| {
            e.operation == history::Operation::Upgrade && !used.contains(i) && !undone(&entries[i + 1..], e)
        });
        let found = candidates.find_map(|(i, e)| {
            let st = e.state.as_ref()?;
            let k = st.plan.hops[..st.hop.min(st.plan.hops.len())].iter().rposition(|h| h.to == cur)?;
            Some((i, e, st, k))
        });
        let Some((i, e, st, k)) = found else {
            if let (Some(t), false) = (to, out.is_empty()) {
                return Err(format!(
                    "{t} is not a release the completed upgrades went through: the oldest they go back to is {cur}"
                ));
            }
            return Err(format!("the history has no completed upgrade hop to {cur} whose dumps it kept"));
        };
        used.insert(i);
        let mut st = st.clone();
        // A MongoDB stage has no dump: its rollback copy is the original volume.
        if let Some(gone) = (0..=k)
            .filter(|i| !st.plan.hops[*i].is_mongo_stage())
            .find(|i| !files::hop_dir(&st, *i).join(crate::backup::bundle::ARCHIVE).exists())
        {
            return Err(format!(
                "the pre-hop dump of {} → {} is gone ({})",
                st.plan.hops[gone].from,
                st.plan.hops[gone].to,
                files::hop_dir(&st, gone).display()
            ));
        }
        let stop = match to {
            Some(t) if st.plan.hops[..=k].iter().any(|h| &h.from == t) => t.clone(),
            _ => e.from.clone(),
        };
        // The undo starts with hop k; back to where this upgrade started, every hop down to the
        // first is undone (a MongoDB stage at the start release included).
        st.hop = k + 1;
        st.rollback_until = (stop == e.from).then_some(0);
        cur = stop.clone();
        out.push((st, stop));
        if to.is_none_or(|t| *t == cur) {
            return Ok(out);
        }
        if to.is_some_and(|t| *t > cur) {
            return Err(format!(
                "{} is not a release the completed upgrades went through",
                to.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
}

/// The rollback after a completed upgrade, before anything is done: which hops are undone and
/// what the data restore discards.
///
/// # Errors
/// No completed upgrade to undo, its dumps gone, or `to` not on its way.
pub async fn way_back(
    ctx: &Ctx<'_>,
    project: &str,
    to: Option<&Version>,
) -> Result<(WayBack, Vec<(UpgradeState, Version)>), UpgradeError> {
    let observed = ctx.runtime.observe(project).await?;
    let live = observed.stack.release.clone().ok_or_else(|| PreflightError::UnknownRelease {
        project: project.into(),
        tags: observed.stack.unknown_tags.join(", "),
    })?;
    if let Some(t) = to.filter(|t| **t >= live) {
        return Err(UpgradeError::RollbackNotOlder { to: t.clone(), live });
    }
    let entries = history::read(ctx.state, project);
    let chain = chain(&entries, &live, to)
        .map_err(|why| UpgradeError::NoWayBack { to: to.cloned().unwrap_or_else(|| live.clone()), why })?;
    let mut hops = Vec::new();
    let mut restored: Option<std::path::PathBuf> = None;
    // A MongoDB stage undone, older than every data restore: its original volume is then what
    // the data ends as.
    let mut stage: Option<crate::plan::Hop> = None;
    for (st, stop) in &chain {
        for i in (0..st.hop).rev() {
            let h = &st.plan.hops[i];
            if st.rollback_until.map_or(h.to <= *stop, |until| i < until) {
                break;
            }
            let dir = files::hop_dir(st, i);
            let how = match h.rollback {
                crate::plan::Rollback::DataRestore { .. } => {
                    restored = Some(dir.clone());
                    // Older than any stage seen so far: this dump is what the data ends as.
                    stage = None;
                    format!("data restore from {}", dir.join(crate::backup::bundle::ARCHIVE).display())
                }
                crate::plan::Rollback::ImageSwap => "image swap (decided from the data when it runs)".to_string(),
                crate::plan::Rollback::OriginalVolume => {
                    stage = Some(h.clone());
                    "the previous MongoDB image on the original volume".to_string()
                }
            };
            // Undone newest first: a stage goes back to its old major, a hop to its release.
            let back = match &h.mongo {
                Some(m) if h.is_mongo_stage() => format!("MongoDB {} → {} at {}", m.to_major, m.from_major, h.to),
                _ => format!("{} → {}", h.to, h.from),
            };
            hops.push(format!("{back}: {how}"));
        }
    }
    let mut discards = match (&restored, observed.stack.network.as_ref(), observed.stack.mongo.as_ref()) {
        (Some(dir), Some(net), Some(m)) => discards(ctx, dir, net, &m.service).await,
        _ => vec![],
    };
    if let Some(m) = stage.as_ref().and_then(|h| h.mongo.as_ref()) {
        // The stage's rollback copy is the original volume: the data as the stage found it.
        discards.push(if restored.is_some() {
            format!(
                "MongoDB {} goes back to its original volume, as the stage found it (counted against the first dump after it)",
                m.from_major
            )
        } else {
            format!(
                "MongoDB {} goes back to its original volume, as the stage found it: whatever was written on {} since is discarded, and could not be counted",
                m.from_major, m.to_major
            )
        });
    }
    let back_to = chain.last().map(|(_, stop)| stop.clone()).unwrap_or_else(|| live.clone());
    Ok((WayBack { from: live, to: back_to, hops, discards }, chain))
}

/// Per collection, live documents against the dump a restore puts back.
async fn discards(ctx: &Ctx<'_>, dir: &std::path::Path, network: &str, mongo: &str) -> Vec<String> {
    let dump: Option<mongo_archive::ArchiveSummary> =
        std::fs::read(dir.join("dump.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let (Some(dump), Ok(live)) = (dump, runtime::mongo_report(ctx.runtime, network, mongo, true).await) else {
        return vec!["the documents written since the dump could not be counted".into()];
    };
    let mut out = Vec::new();
    for db in &live.databases {
        for c in db.collections.iter().filter(|c| !c.name.starts_with("migration_")) {
            let ns = format!("{}.{}", db.name, c.name);
            let then = dump.namespaces.get(&ns).map_or(0, |n| n.documents);
            match c.count.cmp(&then) {
                std::cmp::Ordering::Greater => out.push(format!(
                    "{ns}: {} now, {then} in the dump: the newer are discarded",
                    crate::util::count(c.count, "document")
                )),
                std::cmp::Ordering::Less => out.push(format!(
                    "{ns}: {} now, {then} in the dump: the removed come back",
                    crate::util::count(c.count, "document")
                )),
                std::cmp::Ordering::Equal => {}
            }
        }
    }
    out
}

/// `rollback` with no interrupted run: undoes the last completed upgrade, or every hop back to
/// `to`, hop by hop in reverse (image swap where no database moved, else the pre-hop dump), each
/// hop journaled and gated.
///
/// # Errors
/// As [`way_back`]; a hop whose undo fails is `RollbackFailed` with the commands to finish by hand.
pub async fn rollback_completed(ctx: &Ctx<'_>, project: &str, to: Option<&Version>) -> Result<Version, UpgradeError> {
    let lock = ctx.state.lock(project, "rollback")?;
    if let Some(j) = ctx.state.journal::<serde_json::Value>(project) {
        return Err(
            PreflightError::Interrupted { operation: j.operation, pid: j.owner.pid, started: j.owner.started }.into()
        );
    }
    let (plan, chain) = way_back(ctx, project, to).await?;
    // Shown even when --yes answers for the operator.
    ctx.progress.step("rollback", format!("rolling {project} back from {} to {}", plan.from, plan.to));
    for h in &plan.hops {
        ctx.progress.step("rollback", h);
    }
    for d in &plan.discards {
        ctx.progress.step("rollback", format!("the data restore puts back: {d}"));
    }
    let mut question = format!("Roll {project} back from {} to {}:\n", plan.from, plan.to);
    for h in &plan.hops {
        question.push_str(&format!("  {h}\n"));
    }
    if !plan.discards.is_empty() {
        question.push_str("The data restore puts the databases back as they were before the upgrade:\n");
        for d in &plan.discards {
            question.push_str(&format!("  {d}\n"));
        }
    }
    question.push_str("Proceed?");
    if !(ctx.confirm)(&question) {
        return Err(UpgradeError::NotConfirmed("the rollback was not confirmed; nothing was changed".into()));
    }
    let mut at = plan.from.clone();
    for (mut st, stop) in chain {
        // `hop` counts the hops completed: the undo starts with the last of them.
        st.done.clear();
        st.before.clear();
        st.dump_image = None;
        st.rollback_to = Some(stop);
        let mut journal = Journal::new("rollback", &lock.owner);
        journal.payload = Some(st);
        let mut run = Run::new(journal, project)?;
        ctx.state.write_journal(project, &run.journal)?;
        at = rollback_run(ctx, &mut run).await?;
        ctx.state.clear_journal(project)?;
    }
    history::record(
        ctx.state,
        project,
        &history::Entry {
            at: crate::util::now_rfc3339(),
            operation: history::Operation::Rollback,
            from: plan.from.clone(),
            to: plan.to.clone(),
            at_release: at.clone(),
            hops: plan.hops.clone(),
            ok: at == plan.to,
            result: format!("back at {at}"),
            report: None,
            state: None,
        },
    );
    drop(lock);
    Ok(at)
}
