//! Everything checked before any downtime; a failure changes nothing (exit 3), a bad target is
//! refused first (exit 2).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{DataRefusal, PreflightError, UpgradeError};
use super::gates::{self, parse_hashes};
use super::{Ctx, ProjectRecord, Target, UpgradeOptions, UpgradeState, hop};
use crate::backup::manifest::{Manifest, RehearsalRecord, StackIdentity};
use crate::backup::{self, BackupOptions};
use crate::catalog::{ImageRef, When};
use crate::engine::compose::{label_paths, v1_invocation_dir};
use crate::engine::helper::{CountQuery, Request};
use crate::engine::{docker, host};
use crate::labels::{LABEL_CONFIG_FILES, LABEL_ENV_FILE, LABEL_WORKING_DIR, STAGING_LABEL};
use crate::plan::saved::catalog_digest;
use crate::plan::{self, Plan, Rollback, Start};
use crate::snapshot::ContainerInfo;
use crate::snapshot::observe::ObserveError;
use crate::snapshot::observe::{Observed, Options, SETTLE_TIMEOUT, SMOKE_SETTLE, observe_settled};
use crate::state::{Lock, StateDir};

/// What the checks established: the lock is held from here to the end of the upgrade.
pub struct Ready {
    /// The project's lock.
    pub lock: Lock,
    /// The plan to carry out.
    pub plan: Plan,
    /// How compose runs the project.
    pub project: ProjectRecord,
    /// A fresh verified bundle, or `None` when one must be taken before the first hop.
    pub bundle: Option<PathBuf>,
    /// What the confirmation and `--dry-run` show besides the plan.
    pub notes: Vec<String>,
    observed: Observed,
    release: semver::Version,
    rehearsal: Option<RehearsalRecord>,
}

/// How compose was run for a production project, from its containers' labels.
fn project_record(o: &Observed) -> Result<ProjectRecord, PreflightError> {
    let project = &o.stack.project;
    let c = o.containers.first().ok_or_else(|| PreflightError::NoProjectLabels(project.clone()))?;
    if c.label(STAGING_LABEL).is_some() {
        return Err(PreflightError::StagingProject(project.clone()));
    }
    let wd = c.label(LABEL_WORKING_DIR).ok_or_else(|| PreflightError::NoProjectLabels(project.clone()))?;
    let mut config_files = label_paths(c.label(LABEL_CONFIG_FILES));
    let mut env_files = label_paths(c.label(LABEL_ENV_FILE));
    // Compose v1 labels its files relative to where it ran, not to its working directory.
    if gates::created_by_compose_v1(c) {
        let base = v1_invocation_dir(Path::new(wd), &config_files).ok_or_else(|| PreflightError::V1Files {
            working_dir: wd.clone(),
            files: config_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
        })?;
        let abs = |f: PathBuf| if f.is_absolute() { f } else { base.join(f) };
        config_files = config_files.into_iter().map(abs).collect();
        env_files = env_files.into_iter().map(abs).collect();
    }
    Ok(ProjectRecord { name: project.clone(), working_dir: PathBuf::from(wd), config_files, env_files, staging: None })
}

/// Runs every check, in the order that changes nothing: the journal, the plan, health, what the
/// hops need (images, space), and the backup the upgrade starts from.
///
/// # Errors
/// [`UpgradeError`] for the first check that fails; nothing has been changed then.
pub async fn check(ctx: &Ctx<'_>, target: &Target, opts: &UpgradeOptions) -> Result<Ready, UpgradeError> {
    let name = match target {
        Target::Production(p) => p.as_deref(),
        Target::Staging(record) => Some(record.name.as_str()),
    };
    // A container still `starting` (the tool's own backup just restarted it) is waited for.
    let observed = observe_settled(
        ctx.docker,
        &ctx.catalog.catalog,
        &Options { project: name, registry: ctx.registry, counts: false },
        SETTLE_TIMEOUT,
    )
    .await?;
    let stack = &observed.stack;
    // An interrupted run comes first: its journal says what the stack is in the middle of.
    let lock = ctx.state.lock(&stack.project, "upgrade")?;
    if let Some(j) = ctx.state.journal::<serde_json::Value>(&stack.project) {
        return Err(
            PreflightError::Interrupted { operation: j.operation, pid: j.owner.pid, started: j.owner.started }.into()
        );
    }
    let release = stack.release.clone().ok_or_else(|| PreflightError::UnknownRelease {
        project: stack.project.clone(),
        tags: stack.unknown_tags.join(", "),
    })?;
    let drift = stack.services.iter().filter(|s| s.drift.is_some()).map(|s| s.name.clone()).collect();
    let mongo = stack.mongo.as_ref().and_then(|m| m.running_major());
    let plan = plan::plan(&Start { release: release.clone(), drift, mongo }, &ctx.catalog.catalog, &opts.to)?;
    // A reviewed plan is carried out only on the stack it was computed from, before anything else
    // is looked at: the refusal names what changed, not a consequence of it.
    if let Some((path, saved)) = &opts.reviewed {
        // The release is known here, so the print exists.
        if let Some(live) = observed.print() {
            saved
                .check(path, &live, &catalog_digest(&ctx.catalog.catalog), &plan)
                .map_err(PreflightError::SavedPlan)?;
        }
    }
    let record = match target {
        Target::Production(_) => project_record(&observed)?,
        Target::Staging(record) => record.clone(),
    };
    ctx.progress.step("preflight", format!("checking {} ({release}) before the upgrade to {}", stack.project, opts.to));
    let hashes = ctx.runtime.compose(&record, &["config", "--hash", "*"]).await?;
    let health = gates::evaluate(stack, &release, &observed.containers, &parse_hashes(&hashes));
    if !health.passed {
        return Err(PreflightError::Unhealthy(health.failures).into());
    }
    // What devices and people get through the gateway: a stack already broken for them is not
    // upgraded (the gates after each hop could not tell the hop's breakage from the old one).
    // A gateway the tool's own backup just restarted may still be loading its routes.
    let deadline = tokio::time::Instant::now() + SMOKE_SETTLE;
    let mut smoke = ctx.runtime.smoke(&observed).await;
    while !smoke.passed && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        smoke = ctx.runtime.smoke(&observed).await;
    }
    if !smoke.passed {
        return Err(PreflightError::Unhealthy(smoke.failures()).into());
    }
    let mut v1_note = None;
    if observed.containers.iter().any(gates::created_by_compose_v1) {
        let config = ctx.runtime.compose(&record, &["config", "--format", "json"]).await?;
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| PreflightError::ComposeConfig(e.to_string()))?;
        v1_note = compose_v1_check(&observed.containers, &stack.project, &config)?;
    }
    executable(&plan)?;
    data_checks(ctx, stack, &plan).await?;
    let clone_notes = super::clone::check(&record, &plan)?;
    images(ctx, &plan).await?;
    space(ctx.state, stack, &plan)?;
    let mut notes: Vec<String> = v1_note.into_iter().collect();
    notes.extend(clone_notes);
    notes.extend(mongo_stages(ctx, &observed, &record, &plan).await?);
    let found = match &opts.use_bundle {
        Some(b) => Manifest::load(b).ok().map(|m| (b.clone(), m)),
        None => {
            let live = backup::stack_identity(stack);
            let keys = crate::snapshot::keys::digests(&observed.containers);
            let choice = fresh_bundle(ctx.state, &observed.stack.project, &release, opts.max_backup_age, &live, &keys);
            notes.extend(choice.ignored.iter().map(|i| format!("ignored: {i}")));
            choice.found
        }
    };
    let rehearsal = found.as_ref().and_then(|(_, m)| m.proven_rehearsal(&opts.to));
    match &rehearsal {
        Some(r) => notes.push(format!(
            "rehearsal: {} → {} on staging at {}: {:.0} s of downtime measured",
            release, opts.to, r.at, r.estimate_secs
        )),
        None if opts.require_rehearsal => return Err(PreflightError::NoRehearsal(opts.to.clone()).into()),
        None => notes.push(format!(
            "warning: no rehearsal proved this backup; `rehearse --to {}` upgrades a staging copy first, without downtime",
            opts.to
        )),
    }
    let bundle = match found {
        Some((path, m)) => {
            notes.push(format!("backup: {} (taken {}, proven by a restore test)", path.display(), m.created));
            Some(path)
        }
        None => {
            notes.push(format!(
                "backup: none of {release} younger than {} h is proven by a restore test; one is taken and verified before the first hop",
                opts.max_backup_age.as_secs() / 3600
            ));
            None
        }
    };
    let st = UpgradeState {
        run_dir: PathBuf::new(),
        plan: plan.clone(),
        hop: 0,
        done: vec![],
        before: Default::default(),
        dump_image: None,
        project: record.clone(),
        timings: vec![],
        registry: ctx.registry.map(str::to_string),
        bundle: bundle.clone(),
        rollback_to: None,
        rollback_until: None,
        restore_begun: false,
        accept_new_keys: opts.accept_new_keys,
    };
    if let Some(first) = plan.hops.first() {
        let rw = hop::preview(ctx, &st, first)
            .map_err(|e| PreflightError::Rewrite(format!("{} → {}", first.from, first.to), e))?;
        notes.extend(rw.warnings.iter().map(|w| format!("hop 1 changes your files: {w}")));
        for e in rw.edits.iter().filter(|e| e.why != super::rewrite::Why::BaseFile) {
            notes.push(super::rewrite::diff(e));
        }
    }
    notes.extend(plan.warnings.iter().cloned());
    Ok(Ready { lock, plan, project: record, bundle, notes, observed, release, rehearsal })
}

/// For a stack whose containers Compose v1 created (`docker-compose` 1.x: containers
/// `<project>_<service>_1`, a config-hash v2 computes differently): checks that every named volume
/// they mount is the volume the compose files give that mount (external, or the project's
/// `<project>_<key>`, which Compose v2 reuses), so that the first hop's recreation under v2 keeps
/// it, and returns the note the plan shows; `None` when no container is v1's. Anonymous volumes
/// (no volume source in the files) are inherited by the recreated container.
///
/// # Errors
/// [`PreflightError::V1VolumeLost`] for a volume the recreated container would not get.
pub fn compose_v1_check(
    containers: &[ContainerInfo],
    project: &str,
    config: &serde_json::Value,
) -> Result<Option<String>, PreflightError> {
    let v1: Vec<&ContainerInfo> = containers.iter().filter(|c| gates::created_by_compose_v1(c)).collect();
    let Some(first) = v1.first() else { return Ok(None) };
    let mut kept = std::collections::BTreeSet::new();
    for c in &v1 {
        let declared = config["services"][&c.service]["volumes"].as_array().cloned().unwrap_or_default();
        for m in c.mounts.iter().filter(|m| m.kind == "volume") {
            let Some(name) = m.name.as_deref() else { continue };
            let entry = declared.iter().find(|v| v["target"].as_str() == Some(m.destination.as_str()));
            let lost = |why: String| PreflightError::V1VolumeLost {
                service: c.service.clone(),
                volume: name.to_string(),
                target: m.destination.clone(),
                why,
            };
            let source = match entry {
                // An image's own VOLUME, or an anonymous one: the recreated container inherits it.
                None => continue,
                Some(e) if e["type"].as_str() != Some("volume") => {
                    return Err(lost(format!("the files mount a {} there", e["type"].as_str().unwrap_or("?"))));
                }
                Some(e) => match e["source"].as_str().filter(|s| !s.is_empty()) {
                    None => continue,
                    Some(s) => s,
                },
            };
            let top = &config["volumes"][source];
            let want = top["name"].as_str().map_or_else(|| format!("{project}_{source}"), str::to_string);
            if want != name {
                return Err(lost(format!("the files give that mount volume {want}")));
            }
            let how = if top["external"].as_bool() == Some(true) { "external" } else { "the project's, reused" };
            kept.insert(format!("{name} ({how})"));
        }
    }
    let version = first.label(crate::labels::LABEL_COMPOSE_VERSION).cloned().unwrap_or_default();
    let kept = if kept.is_empty() { "none".to_string() } else { kept.into_iter().collect::<Vec<_>>().join(", ") };
    Ok(Some(format!(
        "Compose v1 ({version}) created {} of the containers (named like {}): the first hop recreates every container under Compose v2 (named like {project}-{}-1); their config-hash is not compared before it. Data volumes kept: {kept}",
        v1.len(),
        first.name.trim_start_matches('/'),
        first.service
    )))
}

/// Hops this version can carry out on compose.
fn executable(plan: &Plan) -> Result<(), PreflightError> {
    match &plan.blocked {
        Some(b) => Err(PreflightError::NotExecutable { from: b.from.clone(), to: b.to.clone(), why: b.why.clone() }),
        None => Ok(()),
    }
}

/// The hops' data checks on the data as it is now (3.2: no job pending in the MongoDB queue that
/// the NATS queue replaces), before any downtime.
async fn data_checks(ctx: &Ctx<'_>, stack: &crate::snapshot::Stack, plan: &Plan) -> Result<(), UpgradeError> {
    let checks: Vec<_> = plan.hops.iter().flat_map(|h| h.checks.iter().map(move |c| (h, c))).collect();
    let (Some(network), Some(mongo), false) = (&stack.network, &stack.mongo, checks.is_empty()) else {
        return Ok(());
    };
    let counts = checks
        .iter()
        .map(|(_, c)| CountQuery {
            uri: crate::util::mongo_uri(&mongo.service),
            db: c.db.clone(),
            collection: c.collection.clone(),
            filter: c.filter.clone(),
        })
        .collect();
    let r = ctx.runtime.helper(network, &Request { counts, ..Default::default() }).await.map_err(ObserveError::from)?;
    for ((h, c), n) in checks.iter().zip(r.counts) {
        let refuse = |count: Option<u64>, why: String| {
            PreflightError::DataCheck(Box::new(DataRefusal {
                from: h.from.clone(),
                to: h.to.clone(),
                what: c.what.clone(),
                place: format!("{}.{}", c.db, c.collection),
                count,
                why,
            }))
        };
        match n {
            Ok(0) => ctx.progress.step("preflight", format!("no {} in {}.{}", c.what, c.db, c.collection)),
            Ok(count) => return Err(refuse(Some(count), c.why.trim().to_string()).into()),
            Err(e) => return Err(refuse(None, format!("They could not be counted: {e}")).into()),
        }
    }
    Ok(())
}

/// Every image of every hop, present or pulled now: no hop may wait on a registry.
async fn images(ctx: &Ctx<'_>, plan: &Plan) -> Result<(), UpgradeError> {
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for h in &plan.hops {
        let to = ctx.catalog.catalog.release(&h.to).ok_or_else(|| PreflightError::NotExecutable {
            from: h.from.clone(),
            to: h.to.clone(),
            why: "the catalog has no such release".into(),
        })?;
        for image in to.services.values().map(|f| &f.image).chain(h.mongo_image.as_ref()) {
            let reference = ImageRef::parse(image, None).qualified(ctx.registry);
            if !seen.insert(reference.clone()) {
                continue;
            }
            match docker::ensure_image(ctx.docker, &reference).await {
                Ok(true) => ctx.progress.step("pull", format!("pulled {reference}")),
                Ok(false) => {}
                Err(e) => missing.push(format!("{reference} ({e})")),
            }
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(PreflightError::ImagesMissing(missing).into()) }
}

/// A plan with MongoDB stages: the featureCompatibilityVersion is the running major, the data
/// volume is named in the compose files, and Docker's root has room for a copy per stage.
async fn mongo_stages(
    ctx: &Ctx<'_>,
    observed: &Observed,
    record: &ProjectRecord,
    plan: &Plan,
) -> Result<Vec<String>, PreflightError> {
    let stages: Vec<&crate::plan::Hop> = plan.hops.iter().filter(|h| h.is_mongo_stage()).collect();
    let Some(first) = stages.first() else { return Ok(vec![]) };
    let mut notes = Vec::new();
    let major = first.mongo.as_ref().map(|m| m.from_major.clone()).unwrap_or_default();
    let mongo = observed.stack.mongo.as_ref();
    let found = mongo.and_then(|m| m.fcv.clone()).unwrap_or_else(|| "unknown".into());
    if found != major {
        let service = mongo.map(|m| m.service.clone()).unwrap_or_default();
        let container = observed.containers.iter().find(|c| c.service == service).map(|c| c.name.clone());
        let confirm = if major.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= 7) {
            ", confirm: true"
        } else {
            ""
        };
        return Err(PreflightError::Fcv {
            major,
            found,
            container: container.unwrap_or(service),
            confirm: confirm.into(),
        });
    }
    if record.staging.is_some() {
        return Ok(notes);
    }
    let rels: Vec<PathBuf> = record.config_files.iter().map(|p| super::files::relative(record, p)).collect();
    let current: Vec<_> = rels.iter().map(|r| super::files::read(record, r)).collect();
    let service = mongo.map(|m| m.service.clone()).unwrap_or_default();
    let vol = super::stage::data_volume(&service, &current).map_err(|e| PreflightError::DataVolume(e.to_string()))?;
    // Each stage copies to `<volume>-<major>`; one that exists was left by an earlier stage that
    // was rolled back and may hold writes made after it: never copied over.
    for stage in &stages {
        let Some(m) = stage.mongo.as_ref() else { continue };
        let copy = super::stage::copy_name(&vol.name, &ctx.catalog.catalog.mongo_majors, &m.to_major);
        if copy != vol.name && ctx.docker.inspect_volume(&copy).await.is_ok() {
            return Err(PreflightError::CopyExists { copy, from: vol.name.clone() });
        }
    }
    let db = observed.stack.databases_size();
    let need = (db + db / 10 + (64 << 20)) * stages.len() as u64;
    let root = ctx.docker.info().await.ok().and_then(|i| i.docker_root_dir).unwrap_or_else(|| "/var/lib/docker".into());
    match host::free_bytes(std::path::Path::new(&root)) {
        Ok(free) if free < need => {
            return Err(PreflightError::CopySpace { dir: root, need_mib: need >> 20, free_mib: free >> 20 });
        }
        Ok(_) => {}
        Err(e) => notes.push(format!(
            "warning: the free space in {root} for {} of volume {} (about {} each) could not be read: {e}",
            crate::util::count_len(stages.len(), "copy"),
            vol.name,
            crate::util::size(need / stages.len() as u64)
        )),
    }
    notes.push(format!(
        "MongoDB stages copy volume {} ({}, about {} each); the original stays untouched as the rollback copy",
        vol.name,
        crate::util::count_len(stages.len(), "copy"),
        crate::util::size(need / stages.len() as u64)
    ));
    Ok(notes)
}

/// Room for one dump per hop in the state directory.
fn space(state: &StateDir, stack: &crate::snapshot::Stack, plan: &Plan) -> Result<(), PreflightError> {
    let db = stack.databases_size();
    let need = (db + db / 10) * plan.hops.len() as u64 + (64 << 20);
    let free = host::free_bytes(&state.root)?;
    if free < need {
        return Err(PreflightError::Space {
            dir: state.root.display().to_string(),
            need_mib: need >> 20,
            free_mib: free >> 20,
        });
    }
    Ok(())
}

/// The bundle an upgrade or a rehearsal may start from, and the bundles passed over (with why).
#[derive(Debug, Default)]
pub struct BundleChoice {
    /// The newest bundle of this project and release, of the live stack, proven by a restore
    /// test, younger than the age limit.
    pub found: Option<(PathBuf, Manifest)>,
    /// Bundles of this project and release that were not taken, one line each with the reason.
    pub ignored: Vec<String>,
}

/// Looks for the bundle to start from among the state directory's bundles.
pub fn fresh_bundle(
    state: &StateDir,
    project: &str,
    release: &semver::Version,
    max_age: Duration,
    live: &StackIdentity,
    live_keys: &[crate::snapshot::keys::KeyDigest],
) -> BundleChoice {
    let mut choice = BundleChoice::default();
    let Ok(entries) = std::fs::read_dir(state.backups()) else { return choice };
    let mut found: Vec<(PathBuf, Manifest)> = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.to_string_lossy().ends_with(backup::bundle::PARTIAL_SUFFIX) {
            continue;
        }
        let Ok(m) = Manifest::load(&path) else { continue };
        if m.project != project || m.mender_version.as_ref() != Some(release) {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let age = humantime::parse_rfc3339(&m.created).ok().and_then(|t| SystemTime::now().duration_since(t).ok());
        if let Some(why) = live.differs_from(m.stack.as_ref()) {
            choice.ignored.push(format!("bundle {name} is of another stack under the same project: {why}"));
        } else if age.is_none_or(|a| a > max_age) {
            // Old bundles are the normal case; not worth a line.
        } else if !m.restore_tested() {
            choice.ignored.push(format!("bundle {name} was never proven by a restore test (`verify --restore-test`)"));
        } else if !crate::snapshot::keys::changed(&m.keys, live_keys, "it").is_empty() {
            // A rollback to it would bring back keys the stack no longer signs with.
            choice.ignored.push(format!(
                "bundle {name} recorded other deviceauth or useradm signing keys than the stack mounts now (a key \
                 changed since it was taken)"
            ));
        } else {
            found.push((path, m));
        }
    }
    found.sort_by(|a, b| a.1.created.cmp(&b.1.created));
    choice.found = found.pop();
    choice
}

/// The bundle the upgrade starts from: the fresh one found, or one taken and verified now.
///
/// # Errors
/// [`PreflightError::Backup`] when the backup fails; [`PreflightError::Verify`] when it cannot be
/// verified, [`PreflightError::BackupUnproven`] when it fails verification.
pub async fn ensure_backup(ctx: &Ctx<'_>, r: &Ready) -> Result<PathBuf, PreflightError> {
    if let Some(b) = &r.bundle {
        return Ok(b.clone());
    }
    ctx.progress.step("backup", format!("taking and verifying a backup of {} first", r.release));
    let opts = BackupOptions::automatic(ctx.grace);
    let o = &r.observed;
    let observe = Options { project: Some(&o.stack.project), registry: ctx.registry, counts: false };
    let outcome = backup::run_locked(
        ctx.docker,
        &ctx.catalog.catalog,
        ctx.state,
        &observe,
        &opts,
        ctx.progress,
        &r.lock,
        o.stack.clone(),
        o.containers.clone(),
    )
    .await
    .map_err(|e| PreflightError::Backup(Box::new(e)))?;
    let report = backup::verify::verify(&outcome.bundle, None, Some(ctx.docker), ctx.progress).await?;
    if !report.ok {
        return Err(PreflightError::BackupUnproven {
            bundle: outcome.bundle.display().to_string(),
            problems: report.problems.join("; "),
        });
    }
    Ok(outcome.bundle)
}

/// The question asked before the first change: the [`preview`], then "Proceed?".
pub fn confirmation(r: &Ready) -> String {
    format!("{}Proceed?", preview(r))
}

/// What the upgrade would do, one line each: the hops with their rollback, manual steps and
/// maintenance windows, the expected downtime, and every pre-flight note (backup, rehearsal,
/// warnings, the diff of each file the first hop changes).
pub fn preview(r: &Ready) -> String {
    let p = &r.plan;
    let mut s = format!(
        "Upgrade {} from {} to {} in {}:\n",
        r.project.name,
        p.from,
        p.to,
        crate::util::count_len(p.hops.len(), "hop")
    );
    for (i, h) in p.hops.iter().enumerate() {
        let rollback = match &h.rollback {
            Rollback::ImageSwap => "image swap".to_string(),
            Rollback::DataRestore { .. } => "data restore".to_string(),
            Rollback::OriginalVolume => "the original data volume".to_string(),
        };
        s.push_str(&format!(
            "  hop {}: {}: {}, rollback by {rollback}\n",
            i + 1,
            h.label(),
            crate::util::count_len(h.image_changes.len(), "image change")
        ));
        for m in &h.manual_steps {
            let when = if m.when == When::Before { "before" } else { "after" };
            s.push_str(&format!("    [{when}] {}\n", m.text.trim()));
        }
        if let Some(w) = &h.window {
            s.push_str(&format!("    maintenance window (Mender docs): {w}\n"));
        }
    }
    match &r.rehearsal {
        Some(x) => s.push_str(&format!(
            "Expected downtime: about {:.0} s ({}), as the rehearsal on staging at {} measured.\n",
            x.estimate_secs,
            x.hops.iter().map(|(h, t)| format!("{h} {t:.0} s")).collect::<Vec<_>>().join(", "),
            x.at
        )),
        None => {
            s.push_str("Expected downtime: unknown; no rehearsal has measured it (`rehearse --to` does, on staging).\n")
        }
    }
    for n in &r.notes {
        s.push_str(&format!("{n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::container::Mount;
    use crate::labels::LABEL_COMPOSE_VERSION;

    fn v1(service: &str, volume: &str, target: &str) -> ContainerInfo {
        let mut c = ContainerInfo {
            name: format!("/p_{service}_1"),
            service: service.into(),
            mounts: vec![Mount {
                kind: "volume".into(),
                name: Some(volume.into()),
                destination: target.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        c.labels.insert(LABEL_COMPOSE_VERSION.into(), "1.29.2".into());
        c
    }

    fn config() -> serde_json::Value {
        serde_json::json!({
            "services": {
                "mender-mongo": {"volumes": [{"type": "volume", "source": "mender-db", "target": "/data/db"}]},
                "minio": {"volumes": [{"type": "volume", "source": "art", "target": "/export"}]},
                "nats": {"volumes": [{"type": "bind", "source": "/srv/nats", "target": "/data"}]}
            },
            "volumes": {"mender-db": {"name": "mender-db", "external": true}, "art": {}}
        })
    }

    #[test]
    fn a_v2_stack_gets_no_note() {
        let mut c = v1("mender-mongo", "mender-db", "/data/db");
        c.labels.insert(LABEL_COMPOSE_VERSION.into(), "2.40.3".into());
        assert!(compose_v1_check(&[c], "p", &config()).unwrap().is_none());
    }

    #[test]
    fn a_v1_stack_whose_volumes_compose_v2_reuses_is_noted() {
        let cs = [v1("mender-mongo", "mender-db", "/data/db"), v1("minio", "p_art", "/export")];
        let note = compose_v1_check(&cs, "p", &config()).unwrap().unwrap();
        assert!(
            note.contains("Compose v1 (1.29.2) created 2 of the containers (named like p_mender-mongo_1)"),
            "{note}"
        );
        assert!(note.contains("recreates every container under Compose v2"), "{note}");
        assert!(note.contains("mender-db (external), p_art (the project's, reused)"), "{note}");
    }

    #[test]
    fn a_v1_volume_the_files_do_not_give_is_refused() {
        for (c, why) in [
            (v1("minio", "other_art", "/export"), "the files give that mount volume p_art"),
            (v1("nats", "p_nats", "/data"), "the files mount a bind there"),
        ] {
            let e = compose_v1_check(&[c], "p", &config()).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("Compose v1"), "{e}");
        }
    }
}
