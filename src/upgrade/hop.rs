//! One hop, step by step; each step journaled before the next, each safe to run again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::rewrite::{self, Inputs, Why};
use super::{Ctx, UpgradeState, checkpoint, io};
use crate::backup::{bundle::ARCHIVE, dump, quiesce};
use crate::catalog::{Release, When};
use crate::engine::sidecar::run_helper;
use crate::helper::{FcvJob, Request};
use crate::plan::Hop;
use crate::state::Journal;

pub const STEPS: [&str; 7] = ["stop", "dump", "rewrite", "mongo", "migrate", "up", "gates"];

/// Where and why a hop failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub step: String,
    pub reason: String,
}

pub fn hop_dir(st: &UpgradeState, index: usize) -> PathBuf {
    st.run_dir.join(format!("hop-{}", index + 1))
}

fn state(journal: &Journal) -> Result<UpgradeState, Failure> {
    journal
        .upgrade
        .clone()
        .ok_or_else(|| Failure { step: "journal".into(), reason: "the journal holds no upgrade".into() })
}

fn releases<'c>(ctx: &'c Ctx<'_>, hop: &Hop) -> Result<(&'c Release, &'c Release), String> {
    let c = &ctx.catalog.catalog;
    let from = c.release(&hop.from).ok_or_else(|| format!("no release {} in the catalog", hop.from))?;
    let to = c.release(&hop.to).ok_or_else(|| format!("no release {} in the catalog", hop.to))?;
    Ok((from, to))
}

pub async fn run(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<(), Failure> {
    let st = state(journal)?;
    let hop = st.plan.hops[st.hop].clone();
    let n = st.plan.hops.len();
    if st.done.is_empty() {
        ctx.progress.step("hop", format!("hop {}/{n}: {} → {}", st.hop + 1, hop.from, hop.to));
        let before: Vec<&str> =
            hop.manual_steps.iter().filter(|s| s.when == When::Before).map(|s| s.text.trim()).collect();
        if !before.is_empty() {
            let question = format!("Before {} → {}, by hand:\n  - {}\nDone?", hop.from, hop.to, before.join("\n  - "));
            if !(ctx.confirm)(&question) {
                return Err(Failure { step: "confirm".into(), reason: "the manual steps were not confirmed".into() });
            }
        }
    } else {
        ctx.progress.step(
            "hop",
            format!("hop {}/{n}: {} → {}, resuming after {}", st.hop + 1, hop.from, hop.to, st.done.join(", ")),
        );
    }
    let mut timings: BTreeMap<String, f64> = st.timings.get(st.hop).cloned().unwrap_or_default();
    for step in STEPS {
        if state(journal)?.done.iter().any(|d| d == step) {
            continue;
        }
        let t = Instant::now();
        run_step(ctx, journal, step, &hop).await.map_err(|reason| Failure { step: step.into(), reason })?;
        timings.insert(step.into(), (t.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        let st = journal.upgrade.as_mut().ok_or_else(|| Failure { step: step.into(), reason: "journal".into() })?;
        st.done.push(step.into());
        set_timings(st, &timings);
        checkpoint(ctx.state, &st.project.name.clone(), journal, step)
            .map_err(|e| Failure { step: step.into(), reason: e.to_string() })?;
    }
    for s in hop.manual_steps.iter().filter(|s| s.when == When::After) {
        ctx.progress.step("manual", format!("after {} → {}, by hand: {}", hop.from, hop.to, s.text.trim()));
    }
    let st = journal.upgrade.as_mut().ok_or_else(|| Failure { step: "done".into(), reason: "journal".into() })?;
    st.hop += 1;
    st.done.clear();
    st.before.clear();
    st.dump_image = None;
    journal.stopped.clear();
    let project = st.project.name.clone();
    checkpoint(ctx.state, &project, journal, "hop-done")
        .map_err(|e| Failure { step: "done".into(), reason: e.to_string() })
}

fn set_timings(st: &mut UpgradeState, t: &BTreeMap<String, f64>) {
    while st.timings.len() <= st.hop {
        st.timings.push(BTreeMap::new());
    }
    st.timings[st.hop] = t.clone();
}

async fn run_step(ctx: &Ctx<'_>, journal: &mut Journal, step: &str, hop: &Hop) -> Result<(), String> {
    match step {
        "stop" => stop(ctx, journal).await,
        "dump" => dump_step(ctx, journal).await,
        "rewrite" => rewrite_step(ctx, journal, hop).await,
        "mongo" => mongo_step(ctx, journal, hop).await,
        "migrate" => migrate_step(ctx, journal, hop).await,
        "up" => up_step(ctx, journal, hop).await,
        "gates" => {
            let st = journal.upgrade.clone().ok_or("journal")?;
            ctx.progress.step(
                "gates",
                format!("waiting for {} to be healthy (at most {} s)", hop.to, ctx.hop_timeout.as_secs()),
            );
            io::wait_gates(ctx, &st.project, &hop.to, ctx.hop_timeout).await.map_err(|f| f.join("; "))
        }
        other => Err(format!("unknown step {other}")),
    }
}

/// The gateway and every writer, recorded before they stop (a resumed stop adds to the record).
async fn stop(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<(), String> {
    let st = journal.upgrade.clone().ok_or("journal")?;
    let observed = io::observe(ctx, &st.project.name).await?;
    for w in quiesce::writers(&observed.stack) {
        if !journal.stopped.iter().any(|s| s.container == w.container) {
            journal.stopped.push(w);
        }
    }
    ctx.state.write_journal(&st.project.name, journal).map_err(|e| e.to_string())?;
    ctx.progress.step("stop", format!("stopping the gateway and {} services", journal.stopped.len()));
    quiesce::stop_all(ctx.docker, &journal.stopped, ctx.grace).await.map_err(|e| e.to_string())
}

/// The rollback point: migration_info of every database, and a dump.
async fn dump_step(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<(), String> {
    let st = journal.upgrade.clone().ok_or("journal")?;
    let observed = io::observe(ctx, &st.project.name).await?;
    let network = observed.stack.network.clone().ok_or("the project has no network")?;
    let mongo = observed.stack.mongo.clone().ok_or("no mongo service")?;
    let image = observed
        .containers
        .iter()
        .find(|c| c.service == mongo.service)
        .map(|c| c.image.clone())
        .ok_or("no mongo container")?;
    let before = io::migrations(ctx, &network, &mongo.service).await?;
    let dir = hop_dir(&st, st.hop);
    crate::backup::bundle::private_dir(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("before.json"), serde_json::to_vec_pretty(&before).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let archive = dir.join(ARCHIVE);
    let _ = std::fs::remove_file(&archive);
    ctx.progress.step("dump", format!("dumping the databases before the hop ({image})"));
    let src = dump::DumpSource {
        image: &image,
        network: &network,
        uri: format!("mongodb://{}:27017", mongo.service),
        labels: HashMap::new(),
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dumped = dump::dump(ctx.docker, &src, archive, threads, Default::default()).await.map_err(|e| e.to_string())?;
    std::fs::write(dir.join("dump.json"), serde_json::to_vec_pretty(&dumped.summary).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let st = journal.upgrade.as_mut().ok_or("journal")?;
    st.before = before;
    st.dump_image = Some(image);
    Ok(())
}

/// The files a hop may change: the compose files, and every file of the target's templates.
fn touched_files(ctx: &Ctx<'_>, st: &UpgradeState, to: &Release) -> Vec<PathBuf> {
    let mut set: BTreeSet<PathBuf> = st.project.config_files.iter().map(|p| io::relative(&st.project, p)).collect();
    if let Ok(ts) = ctx.catalog.template_files(&to.version) {
        set.extend(ts.into_iter().map(|t| t.path));
    }
    set.into_iter().collect()
}

/// Copies of the files as they were before the hop (kept for rollback; taken once).
fn save_before(st: &UpgradeState, dir: &Path, files: &[PathBuf]) -> Result<(), String> {
    let saved = dir.join("compose-before");
    if saved.join(".complete").exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&saved);
    for rel in files {
        let src = st.project.working_dir.join(rel);
        if src.exists() {
            let dst = saved.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap_or(&saved)).map_err(|e| e.to_string())?;
            std::fs::copy(&src, &dst).map_err(|e| format!("saving {}: {e}", src.display()))?;
        }
    }
    std::fs::write(saved.join(".complete"), b"").map_err(|e| e.to_string())
}

/// The files as they were before the hop (from the saved copies).
fn before_files(dir: &Path, files: &[PathBuf]) -> Vec<rewrite::ProjectFile> {
    files
        .iter()
        .map(|rel| rewrite::ProjectFile {
            path: rel.clone(),
            contents: std::fs::read_to_string(dir.join("compose-before").join(rel)).ok(),
        })
        .collect()
}

async fn rewrite_step(ctx: &Ctx<'_>, journal: &mut Journal, hop: &Hop) -> Result<(), String> {
    let st = journal.upgrade.clone().ok_or("journal")?;
    let (from, to) = releases(ctx, hop)?;
    let dir = hop_dir(&st, st.hop);
    let files = touched_files(ctx, &st, to);
    save_before(&st, &dir, &files)?;
    let edits = plan_edits(ctx, &st, hop, &files)?;
    for w in &edits.warnings {
        ctx.progress.step("rewrite", format!("note: {w}"));
    }
    for e in edits.edits.iter().filter(|e| e.why != Why::BaseFile) {
        ctx.progress.step("diff", rewrite::diff(e));
    }
    for e in &edits.edits {
        io::write_atomic(&st.project.working_dir.join(&e.path), &e.after)
            .map_err(|err| format!("writing {}: {err}", e.path.display()))?;
    }
    std::fs::write(dir.join("rewrite.json"), serde_json::to_vec_pretty(&edits).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let _ = from;
    ctx.progress.step("rewrite", format!("{} compose files rewritten for {}", edits.edits.len(), to.version));
    Ok(())
}

/// The rewrite of a hop, computed from the files as they were before it (so it is the same
/// however often it is computed).
pub fn plan_edits(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop, files: &[PathBuf]) -> Result<rewrite::Rewrite, String> {
    compute(ctx, st, hop, before_files(&hop_dir(st, st.hop), files))
}

fn compute(
    ctx: &Ctx<'_>,
    st: &UpgradeState,
    hop: &Hop,
    all: Vec<rewrite::ProjectFile>,
) -> Result<rewrite::Rewrite, String> {
    let (from, to) = releases(ctx, hop)?;
    let compose_rel: Vec<PathBuf> = st.project.config_files.iter().map(|p| io::relative(&st.project, p)).collect();
    let compose: Vec<_> = compose_rel.iter().filter_map(|r| all.iter().find(|f| &f.path == r).cloned()).collect();
    let other: Vec<_> = all.iter().filter(|f| !compose_rel.contains(&f.path)).cloned().collect();
    let from_t = ctx.catalog.template_files(&from.version).ok();
    // Upstream base files are replaced only where the catalog has them for the target.
    let to_t = if to.templates { ctx.catalog.template_files(&to.version).ok() } else { None };
    rewrite::plan(&Inputs {
        from,
        to,
        compose_files: &compose,
        other_files: &other,
        from_templates: from_t.as_deref(),
        to_templates: to_t.as_deref(),
        registry: st.registry.as_deref(),
        removed: &hop.removed_services,
    })
    .map_err(|e| e.to_string())
}

/// A new MongoDB major: the mongo service alone on its new image, then its
/// featureCompatibilityVersion raised (FerretDB, the test bed's mongod, has a fixed one).
async fn mongo_step(ctx: &Ctx<'_>, journal: &mut Journal, hop: &Hop) -> Result<(), String> {
    let Some(m) = &hop.mongo else { return Ok(()) };
    let st = journal.upgrade.clone().ok_or("journal")?;
    let (_, to) = releases(ctx, hop)?;
    let svc = &to.mongo.service;
    ctx.progress.step("mongo", format!("MongoDB {} → {}", m.from_major, m.to_major));
    ctx.compose.run(&st.project.files(), &["up", "-d", "--no-deps", svc]).await.map_err(|e| e.to_string())?;
    let network = format!("{}_mender", st.project.name);
    let network = io::observe(ctx, &st.project.name).await?.stack.network.unwrap_or(network);
    io::wait_mongo(ctx, &network, svc, Duration::from_secs(120)).await?;
    for s in &m.steps {
        let job = FcvJob {
            uri: format!("mongodb://{svc}:27017"),
            require: s.require_fcv.clone(),
            set: s.set_fcv.clone(),
            confirm: s.confirm,
        };
        let r = run_helper(ctx.docker, &network, &Request { fcv: Some(job), ..Default::default() })
            .await
            .map_err(|e| e.to_string())?;
        match r.fcv {
            Some(Ok(done)) => ctx.progress.step("mongo", done),
            Some(Err(e)) => return Err(e),
            None => return Err("no answer from the helper".into()),
        }
    }
    Ok(())
}

/// One `migrate` one-shot per database, with the target's image, before any server starts.
async fn migrate_step(ctx: &Ctx<'_>, journal: &mut Journal, hop: &Hop) -> Result<(), String> {
    let st = journal.upgrade.clone().ok_or("journal")?;
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
        ctx.compose.run(&st.project.files(), &args).await.map_err(|e| format!("{svc}: {e}"))?;
    }
    Ok(())
}

async fn up_step(ctx: &Ctx<'_>, journal: &mut Journal, hop: &Hop) -> Result<(), String> {
    let st = journal.upgrade.clone().ok_or("journal")?;
    ctx.progress.step("up", "docker compose up -d");
    let mut args = vec!["up", "-d"];
    if !hop.removed_services.is_empty() {
        args.push("--remove-orphans");
    }
    ctx.compose.run(&st.project.files(), &args).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The edits a hop would make, for the confirmation and `--dry-run`.
pub fn preview(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<rewrite::Rewrite, String> {
    let (_, to) = releases(ctx, hop)?;
    let current = touched_files(ctx, st, to).iter().map(|rel| io::read(&st.project, rel)).collect();
    compute(ctx, st, hop, current)
}
