//! One hop, step by step; each step journaled before the next, each safe to run again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::{HopFailed, StepError};
use super::rewrite::{self, Inputs, Why};
use super::runtime::{compose_shown, dump_shown, migrations, wait_gates, wait_mongo};
use super::step::{Point, Step};
use super::{Ctx, Run, UpgradeState, clone, files, stage};
use crate::backup::bundle::ARCHIVE;
use crate::backup::dump::DumpSource;
use crate::backup::quiesce;
use crate::catalog::{Release, When};
use crate::engine::helper::{FcvJob, Request};
use crate::plan::Hop;
use crate::util::{Perm, mongo_uri, secs, write_atomic};

/// The hop's releases in the catalog.
///
/// # Errors
/// [`StepError::NoRelease`] when the catalog lacks one (a plan saved with another catalog).
pub fn releases<'c>(ctx: &'c Ctx<'_>, hop: &Hop) -> Result<(&'c Release, &'c Release), StepError> {
    let c = &ctx.catalog.catalog;
    let from = c.release(&hop.from).ok_or_else(|| StepError::NoRelease(hop.from.clone()))?;
    let to = c.release(&hop.to).ok_or_else(|| StepError::NoRelease(hop.to.clone()))?;
    Ok((from, to))
}

fn failed(hop: &Hop, point: Point) -> impl FnOnce(StepError) -> Box<HopFailed> + '_ {
    move |error| Box::new(HopFailed::of(hop, point, error))
}

/// Why a hop stopped before its end.
pub enum Stop {
    /// A step failed: the hop is rolled back.
    Failed(Box<HopFailed>),
    /// SIGINT or SIGTERM arrived during `point`: the journal holds where the hop is; `resume` or
    /// `rollback` goes on from there.
    Interrupted(Point),
}

impl From<Box<HopFailed>> for Stop {
    fn from(f: Box<HopFailed>) -> Stop {
        Stop::Failed(f)
    }
}

/// Runs the current hop from the first step not yet done; the journal records each step.
pub async fn run(ctx: &Ctx<'_>, run: &mut Run) -> Result<(), Stop> {
    let st = run.st();
    let hop = st.plan.hops[st.hop].clone();
    let n = st.plan.hops.len();
    if st.done.is_empty() {
        ctx.progress.step("hop", format!("hop {}/{n}: {}", st.hop + 1, hop.label()));
        let before: Vec<&str> =
            hop.manual_steps.iter().filter(|s| s.when == When::Before).map(|s| s.text.trim()).collect();
        if !before.is_empty() {
            let question = format!("Before {}, by hand:\n  - {}\nDone?", hop.label(), before.join("\n  - "));
            if !(ctx.confirm)(&question) {
                return Err(failed(&hop, Point::Confirm)(StepError::NotConfirmed).into());
            }
        }
    } else {
        let done: Vec<&str> = st.done.iter().map(|s| s.name()).collect();
        ctx.progress
            .step("hop", format!("hop {}/{n}: {}, resuming after {}", st.hop + 1, hop.label(), done.join(", ")));
    }
    let mut timings: BTreeMap<Step, f64> = st.timings.get(st.hop).cloned().unwrap_or_default();
    for &step in Step::of(&hop) {
        if run.st().done.contains(&step) {
            continue;
        }
        let t = Instant::now();
        tracing::info!("hop {} → {}: step {step}", hop.from, hop.to);
        let outcome = tokio::select! {
            biased;
            _ = crate::interrupt::signalled() => return Err(Stop::Interrupted(Point::Step(step))),
            r = run_step(ctx, run, step, &hop) => r,
        };
        // A step cut short by the signal (compose killed with the process group) is not a failure.
        if outcome.is_err() && crate::interrupt::is_signalled() {
            return Err(Stop::Interrupted(Point::Step(step)));
        }
        outcome.map_err(failed(&hop, Point::Step(step)))?;
        timings.insert(step, secs(t.elapsed()));
        let st = run.st_mut();
        st.done.push(step);
        set_timings(st, &timings);
        run.checkpoint(ctx.state, Point::Step(step))
            .map_err(|e| failed(&hop, Point::Step(step))(StepError::Journal(e)))?;
        // Test-only (README): fail the hop right after this step, to prove its rollback.
        if crate::interrupt::fault(&format!("fail-after:{step}")) {
            return Err(failed(&hop, Point::Step(step))(StepError::Injected(step.to_string())).into());
        }
    }
    if hop.is_mongo_stage()
        && let Some(note) = stage::leftover(ctx, run.st(), &hop)
    {
        ctx.progress.step("mongo", note);
    }
    for s in hop.manual_steps.iter().filter(|s| s.when == When::After) {
        ctx.progress.step("manual", format!("after {}, by hand: {}", hop.label(), s.text.trim()));
    }
    let st = run.st_mut();
    st.hop += 1;
    st.done.clear();
    st.before.clear();
    st.dump_image = None;
    run.journal.stopped.clear();
    run.checkpoint(ctx.state, Point::HopDone).map_err(|e| failed(&hop, Point::HopDone)(StepError::Journal(e)))?;
    if crate::interrupt::is_signalled() {
        return Err(Stop::Interrupted(Point::HopDone));
    }
    Ok(())
}

fn set_timings(st: &mut UpgradeState, t: &BTreeMap<Step, f64>) {
    while st.timings.len() <= st.hop {
        st.timings.push(BTreeMap::new());
    }
    st.timings[st.hop] = t.clone();
}

async fn run_step(ctx: &Ctx<'_>, run: &mut Run, step: Step, hop: &Hop) -> Result<(), StepError> {
    match step {
        Step::Stop => stop(ctx, run).await,
        Step::Dump => dump(ctx, run).await,
        Step::Rewrite if hop.is_mongo_stage() => stage::rewrite(ctx, run.st(), hop),
        Step::Rewrite => rewrite_files(ctx, run.st(), hop),
        Step::MongoStop => stage::stop_mongo(ctx, run, hop).await,
        Step::Copy => stage::copy(ctx, run.st(), hop).await,
        Step::Mongo => mongo(ctx, run.st(), hop).await,
        Step::Migrate => migrate(ctx, run.st(), hop).await,
        Step::Up => up(ctx, run.st(), hop).await,
        Step::Gates => {
            ctx.progress.step(
                "gates",
                format!("waiting for {} to be healthy (at most {} s)", hop.to, ctx.hop_timeout.as_secs()),
            );
            // The signing keys the bundle recorded: a hop must not change them.
            let keys = match (&run.st().bundle, run.st().accept_new_keys) {
                (Some(b), false) => crate::backup::manifest::Manifest::load(b).map(|m| m.keys).unwrap_or_default(),
                _ => vec![],
            };
            wait_gates(ctx, &run.st().project, &hop.to, ctx.hop_timeout, &keys).await.map_err(StepError::Gates)
        }
    }
}

/// The gateway and every writer, recorded before they stop (a resumed stop adds to the record).
async fn stop(ctx: &Ctx<'_>, run: &mut Run) -> Result<(), StepError> {
    let project = run.st().project.name.clone();
    let observed = ctx.runtime.observe(&project).await?;
    for w in quiesce::writers(&observed.stack) {
        if !run.journal.stopped.iter().any(|s| s.container == w.container) {
            run.journal.stopped.push(w);
        }
    }
    ctx.state.write_journal(&project, &run.journal).map_err(StepError::Journal)?;
    ctx.progress.step(
        "stop",
        format!("stopping the gateway and {}", crate::util::count_len(run.journal.stopped.len(), "service")),
    );
    Ok(ctx.runtime.stop(&run.journal.stopped, ctx.grace).await?)
}

/// The rollback point: migration_info of every database, and a dump.
async fn dump(ctx: &Ctx<'_>, run: &mut Run) -> Result<(), StepError> {
    let st = run.st();
    let observed = ctx.runtime.observe(&st.project.name).await?;
    let mongo = observed.stack.mongo.clone().ok_or_else(|| StepError::NoMongo("the release names none".into()))?;
    let network = observed.stack.network.clone().ok_or_else(|| StepError::NoNetwork(mongo.service.clone()))?;
    let image = observed
        .containers
        .iter()
        .find(|c| c.service == mongo.service)
        .map(|c| c.image.clone())
        .ok_or_else(|| StepError::NoMongo(mongo.service.clone()))?;
    let before = migrations(ctx.runtime, &network, &mongo.service).await?;
    let dir = files::hop_dir(st, st.hop);
    let record = serde_json::to_vec_pretty(&before).map_err(|e| StepError::file("before.json")(e.into()))?;
    write_atomic(&dir.join("before.json"), &record, Perm::Private).map_err(StepError::file("writing before.json"))?;
    let archive = dir.join(ARCHIVE);
    let _ = std::fs::remove_file(&archive);
    ctx.progress.step("dump", format!("dumping the databases before the hop ({image})"));
    let src =
        DumpSource { image: &image, network: &network, uri: mongo_uri(&mongo.service), labels: Default::default() };
    let estimate = observed.stack.databases_size();
    let dumped = dump_shown(ctx, &src, archive, (estimate > 0).then_some(estimate)).await?;
    let summary = serde_json::to_vec_pretty(&dumped.summary).map_err(|e| StepError::file("dump.json")(e.into()))?;
    write_atomic(&dir.join("dump.json"), &summary, Perm::Private).map_err(StepError::file("writing dump.json"))?;
    let st = run.st_mut();
    st.before = before;
    st.dump_image = Some(image);
    Ok(())
}

fn rewrite_files(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    let (_, to) = releases(ctx, hop)?;
    let dir = files::hop_dir(st, st.hop);
    let touched = files::touched(ctx.catalog, &st.project, to);
    files::save_before(&st.project, &dir, &touched)?;
    // A git clone with the release's tag takes its base files from the tag (merged into the
    // operator's branch); the rewrite then works on the merged files.
    let tag = to.version.to_string();
    if let Some(note) = clone::merge(&st.project, &dir, &tag)? {
        ctx.progress.step("rewrite", note);
    }
    let current = if clone::merges(&st.project, &tag) {
        touched.iter().map(|rel| files::read(&st.project, rel)).collect()
    } else {
        files::before(&dir, &touched)
    };
    let edits = compute(ctx, st, hop, current)?;
    for w in &edits.warnings {
        ctx.progress.step("rewrite", format!("note: {w}"));
    }
    for e in edits.edits.iter().filter(|e| e.why != Why::BaseFile) {
        ctx.progress.step("diff", rewrite::diff(e));
    }
    for e in &edits.edits {
        let perm = if e.why == Why::Secret { Perm::Private } else { Perm::Keep };
        write_atomic(&st.project.working_dir.join(&e.path), e.after.as_bytes(), perm)
            .map_err(StepError::file(format!("writing {}", e.path.display())))?;
    }
    let record = serde_json::to_vec_pretty(&edits).map_err(|e| StepError::file(files::REWRITE)(e.into()))?;
    write_atomic(&dir.join(files::REWRITE), &record, Perm::Private).map_err(StepError::file("writing rewrite.json"))?;
    let names: Vec<String> = edits.edits.iter().map(|e| e.path.display().to_string()).collect();
    ctx.progress.step(
        "rewrite",
        format!(
            "{} rewritten for {}: {}",
            crate::util::count_len(names.len(), "compose file"),
            to.version,
            names.join(", ")
        ),
    );
    Ok(())
}

/// The rewrite of a hop from `current` files (the saved copies during a hop, the live files for a
/// preview), so that it is the same however often it is computed.
///
/// # Errors
/// [`StepError`] when a release, a template or a compose file cannot be read.
pub fn compute(
    ctx: &Ctx<'_>,
    st: &UpgradeState,
    hop: &Hop,
    current: Vec<rewrite::ProjectFile>,
) -> Result<rewrite::Rewrite, StepError> {
    let (from, to) = releases(ctx, hop)?;
    // The hop keeps the mongo image the stack runs: a new major is a stage of its own.
    let pinned = hop.mongo_image.as_ref().filter(|_| !hop.is_mongo_stage()).map(|image| {
        let mut r = to.clone();
        if let Some(f) = r.services.get_mut(&r.mongo.service) {
            f.image = image.clone();
        }
        r
    });
    let to = pinned.as_ref().unwrap_or(to);
    let compose_rel: Vec<PathBuf> = st.project.config_files.iter().map(|p| files::relative(&st.project, p)).collect();
    let compose: Vec<_> = compose_rel.iter().filter_map(|r| current.iter().find(|f| &f.path == r).cloned()).collect();
    let other: Vec<_> = current.iter().filter(|f| !compose_rel.contains(&f.path)).cloned().collect();
    // The running release's base files, to show edits against.
    let from_t = ctx.catalog.release_files(&from.version).ok();
    let known = crate::catalog::KnownFiles::new(ctx.catalog, st.registry.as_deref());
    // Upstream base files are replaced only where the catalog has them for the target, and not
    // in a git clone that merges the release's tag (its files are upstream's own).
    let from_git = clone::merges(&st.project, &to.version.to_string());
    let to_t = if to.templates && !from_git { ctx.catalog.template_files(&to.version).ok() } else { None };
    // Used only when the target needs a presign secret and the project has none yet.
    let secret = crate::util::random_hex(32).map_err(StepError::file("reading /dev/urandom"))?;
    Ok(rewrite::plan(&Inputs {
        from,
        to,
        compose_files: &compose,
        other_files: &other,
        from_templates: from_t.as_deref(),
        to_templates: to_t.as_deref(),
        known: &known,
        registry: st.registry.as_deref(),
        removed: &hop.removed_services,
        presign_secret: &secret,
    })?)
}

/// The edits a hop would make to the files as they are now, for the confirmation and `--dry-run`.
///
/// # Errors
/// As [`compute`].
pub fn preview(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<rewrite::Rewrite, StepError> {
    let (_, to) = releases(ctx, hop)?;
    let touched = files::touched(ctx.catalog, &st.project, to);
    let mut current: Vec<rewrite::ProjectFile> = touched.iter().map(|rel| files::read(&st.project, rel)).collect();
    // A clone that merges the tag: its base files as the tag has them (the operator's own
    // commits to them aside, which the merge keeps).
    let tag = to.version.to_string();
    if let Some(git) = clone::open(&st.project).filter(|_| clone::merges(&st.project, &tag)) {
        for f in &mut current {
            if let Some(text) = git.show(&tag, &f.path) {
                f.contents = Some(text);
            }
        }
    }
    compute(ctx, st, hop, current)
}

/// A new MongoDB major: the mongo service alone on its new image, then its
/// featureCompatibilityVersion raised (FerretDB, the test bed's mongod, has a fixed one).
async fn mongo(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    let Some(m) = &hop.mongo else { return Ok(()) };
    let (_, to) = releases(ctx, hop)?;
    let svc = &to.mongo.service;
    ctx.progress.step("mongo", format!("MongoDB {} → {}", m.from_major, m.to_major));
    compose_shown(ctx, &st.project, &["up", "-d", "--no-deps", svc]).await?;
    let network =
        ctx.runtime.observe(&st.project.name).await?.stack.network.ok_or_else(|| StepError::NoNetwork(svc.clone()))?;
    wait_mongo(ctx.runtime, &network, svc, Duration::from_secs(120)).await?;
    for s in &m.steps {
        let job =
            FcvJob { uri: mongo_uri(svc), require: s.require_fcv.clone(), set: s.set_fcv.clone(), confirm: s.confirm };
        let r = ctx.runtime.helper(&network, &Request { fcv: Some(job), ..Default::default() }).await?;
        match r.fcv {
            Some(Ok(done)) => ctx.progress.step("mongo", done),
            Some(Err(e)) => return Err(StepError::Fcv(e)),
            None => return Err(StepError::Fcv("no answer from the helper".into())),
        }
    }
    Ok(())
}

/// One `migrate` one-shot per database, with the target's image, before any server starts.
async fn migrate(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    let (_, to) = releases(ctx, hop)?;
    let mut seen = BTreeSet::new();
    for (svc, facts) in &to.services {
        let (Some(db), Some(cmd)) = (&facts.db, &facts.migrate) else { continue };
        if !seen.insert(db.clone()) {
            continue;
        }
        ctx.progress.step("migrate", format!("{svc} {} ({db})", cmd.join(" ")));
        let mut args = vec!["run", "--rm", "--no-deps", "-T", svc.as_str()];
        args.extend(cmd.iter().map(String::as_str));
        ctx.runtime
            .compose(&st.project, &args)
            .await
            .map_err(|source| StepError::Migrate { service: svc.clone(), source })?;
    }
    Ok(())
}

async fn up(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    ctx.progress.step("up", "docker compose up -d");
    let mut args = vec!["up", "-d"];
    if !hop.removed_services.is_empty() {
        args.push("--remove-orphans");
    }
    compose_shown(ctx, &st.project, &args).await?;
    Ok(())
}
