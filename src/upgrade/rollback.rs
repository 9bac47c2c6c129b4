//! Undoing a hop. Mender migrations only go forward and an older binary runs silently on a newer
//! schema, so the class is decided from the data: if no database's migration_info moved and the
//! MongoDB major did not change, the previous configuration and images are enough (image swap);
//! otherwise the pre-hop dump is restored first (data restore).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use semver::Version;

use super::hop::{self, Failure, hop_dir};
use super::{Ctx, HopFailed, UpgradeError, UpgradeState, io};
use crate::backup::{quiesce, restore};
use crate::state::Journal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Nothing was changed yet (the hop failed before its dump).
    Nothing,
    ImageSwap,
    DataRestore,
}

/// Pure: what undoes a hop, given how far it got and the databases before and now.
pub fn classify(
    done: &[String],
    mongo_changed: bool,
    before: &BTreeMap<String, Option<String>>,
    now: &BTreeMap<String, Option<String>>,
) -> Class {
    let did = |s: &str| done.iter().any(|d| d == s);
    if !did("dump") {
        return Class::Nothing;
    }
    let advanced = now.iter().any(|(db, v)| before.get(db).map_or(v.is_some(), |b| b != v));
    if advanced || (did("mongo") && mongo_changed) { Class::DataRestore } else { Class::ImageSwap }
}

/// After a failed step: undo the hop and say where the stack is.
pub async fn after_failure(ctx: &Ctx<'_>, journal: &mut Journal, failure: Failure) -> UpgradeError {
    let Some(st) = journal.upgrade.clone() else {
        return UpgradeError::Preflight("the journal holds no upgrade".into());
    };
    let hop = st.plan.hops[st.hop].clone();
    ctx.progress
        .step("rollback", format!("hop {} → {} failed at {}: {}", hop.from, hop.to, failure.step, failure.reason));
    match undo(ctx, journal).await {
        Ok((at, how)) => {
            let _ = ctx.state.clear_journal(&st.project.name);
            let _ = super::report::write_failure(ctx, &st, &failure, &format!("rolled back to {at} ({how})"));
            let hop = HopFailed { from: hop.from, to: hop.to, step: failure.step, reason: failure.reason };
            UpgradeError::RolledBack { hop: Box::new(hop), at, how }
        }
        Err((why, commands)) => {
            let _ = super::report::write_failure(ctx, &st, &failure, &format!("rollback incomplete: {why}"));
            let hop = HopFailed { from: hop.from, to: hop.to, step: failure.step, reason: failure.reason };
            UpgradeError::RollbackFailed { hop: Box::new(hop), rollback: why, commands }
        }
    }
}

/// `rollback` on request: the hop in progress, or else the last one that completed.
pub async fn on_request(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<Version, UpgradeError> {
    let st = journal.upgrade.as_mut().ok_or_else(|| UpgradeError::Preflight("the journal holds no upgrade".into()))?;
    if st.done.is_empty() {
        if st.hop == 0 {
            return Err(UpgradeError::Preflight("the upgrade had not started a hop: nothing to roll back".into()));
        }
        st.hop -= 1;
        st.done = hop::STEPS.iter().map(|s| s.to_string()).collect();
    }
    let (from, to) = (st.plan.hops[st.hop].from.clone(), st.plan.hops[st.hop].to.clone());
    match undo(ctx, journal).await {
        Ok((at, _)) => Ok(at),
        Err((why, commands)) => {
            let hop = HopFailed { from, to, step: "rollback".into(), reason: "requested".into() };
            Err(UpgradeError::RollbackFailed { hop: Box::new(hop), rollback: why, commands })
        }
    }
}

fn read_before(dir: &Path) -> BTreeMap<String, Option<String>> {
    std::fs::read(dir.join("before.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Brings the stack back to the hop's `from` release; `Err` carries what went wrong and the
/// commands that finish the recovery by hand.
async fn undo(ctx: &Ctx<'_>, journal: &mut Journal) -> Result<(Version, String), (String, Vec<String>)> {
    let st = journal.upgrade.clone().ok_or(("no upgrade in the journal".to_string(), vec![]))?;
    let hop = st.plan.hops[st.hop].clone();
    let dir = hop_dir(&st, st.hop);
    let commands = recovery_commands(&st, &dir);
    let fail = |e: String| (e, commands.clone());
    let observed = io::observe(ctx, &st.project.name).await.map_err(fail)?;
    let network = observed.stack.network.clone().ok_or_else(|| fail("the project has no network".into()))?;
    let from = ctx.catalog.catalog.release(&hop.from).ok_or_else(|| fail(format!("no release {}", hop.from)))?;
    let mongo = from.mongo.service.clone();
    let now = io::migrations(ctx, &network, &mongo).await.unwrap_or_default();
    let before = if st.before.is_empty() { read_before(&dir) } else { st.before.clone() };
    let class = classify(&st.done, hop.mongo.is_some(), &before, &now);
    let how = match class {
        Class::Nothing => "nothing had changed",
        Class::ImageSwap => "image swap: no database had moved",
        Class::DataRestore => "data restore from the pre-hop dump",
    };
    ctx.progress.step("rollback", how);
    if class == Class::DataRestore {
        // No writer may run on the data while it is put back.
        let writers = quiesce::writers(&observed.stack);
        quiesce::stop_all(ctx.docker, &writers, ctx.grace).await.map_err(|e| fail(e.to_string()))?;
    }
    if class != Class::Nothing {
        restore_files(&st, &dir).map_err(fail)?;
    }
    if class == Class::DataRestore {
        ctx.compose
            .run(&st.project.files(), &["up", "-d", "--no-deps", &mongo])
            .await
            .map_err(|e| fail(e.to_string()))?;
        io::wait_mongo(ctx, &network, &mongo, Duration::from_secs(120)).await.map_err(fail)?;
        let image = st
            .dump_image
            .clone()
            .or_else(|| observed.stack.mongo.as_ref().and_then(|m| m.image.clone()))
            .unwrap_or_default();
        let target = restore::MongoTarget { image: &image, network: &network, host: &mongo };
        let ferretdb = observed.stack.mongo.as_ref().is_some_and(|m| m.ferretdb);
        ctx.progress.step("rollback", format!("restoring the pre-hop dump into {mongo}"));
        restore::mongo(ctx.docker, &dir, &target, ferretdb).await.map_err(|e| fail(e.to_string()))?;
    }
    if class == Class::Nothing {
        let failed = quiesce::start(ctx.docker, &journal.stopped).await;
        if !failed.is_empty() {
            return Err(fail(failed.join("; ")));
        }
    } else {
        let mut args = vec!["up", "-d"];
        if !hop.added_services.is_empty() || !hop.removed_services.is_empty() {
            args.push("--remove-orphans");
        }
        ctx.compose.run(&st.project.files(), &args).await.map_err(|e| fail(e.to_string()))?;
    }
    io::wait_gates(ctx, &st.project, &hop.from, ctx.hop_timeout)
        .await
        .map_err(|f| fail(format!("after the rollback: {}", f.join("; "))))?;
    Ok((hop.from.clone(), how.to_string()))
}

/// Puts back the files saved before the hop (and removes files the hop created).
fn restore_files(st: &UpgradeState, dir: &Path) -> Result<(), String> {
    let saved = dir.join("compose-before");
    if !saved.join(".complete").exists() {
        return Ok(());
    }
    let rewrite: Option<super::rewrite::Rewrite> =
        std::fs::read(dir.join("rewrite.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    for e in rewrite.map(|r| r.edits).unwrap_or_default() {
        let target = st.project.working_dir.join(&e.path);
        match std::fs::read_to_string(saved.join(&e.path)) {
            Ok(text) => {
                io::write_atomic(&target, &text).map_err(|err| format!("restoring {}: {err}", e.path.display()))?
            }
            Err(_) => {
                let _ = std::fs::remove_file(&target);
            }
        }
    }
    Ok(())
}

fn recovery_commands(st: &UpgradeState, dir: &Path) -> Vec<String> {
    let p = &st.project;
    let files: Vec<String> = p.config_files.iter().map(|f| format!("-f {}", f.display())).collect();
    vec![
        format!("cp -a {}/compose-before/. {}/", dir.display(), p.working_dir.display()),
        format!(
            "docker compose -p {} --project-directory {} {} up -d",
            p.name,
            p.working_dir.display(),
            files.join(" ")
        ),
        format!(
            "mender-compose-upgrade -p {} rollback    # restores {}/mongo.archive.gz if a migration ran",
            p.name,
            dir.display()
        ),
        format!("mender-compose-upgrade -p {} status --require-healthy", p.name),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
    }

    fn done(steps: &[&str]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_data_decides_the_class() {
        let before = m(&[("useradm", "2.0.1"), ("deviceauth", "1.11.0")]);
        assert_eq!(classify(&done(&["stop"]), false, &before, &before), Class::Nothing);
        assert_eq!(
            classify(&done(&["stop", "dump", "rewrite", "migrate", "up"]), false, &before, &before),
            Class::ImageSwap
        );
        let moved = m(&[("useradm", "2.0.3"), ("deviceauth", "1.11.0")]);
        assert_eq!(
            classify(&done(&["stop", "dump", "rewrite", "migrate"]), false, &before, &moved),
            Class::DataRestore
        );
        let created = m(&[("useradm", "2.0.1"), ("deviceauth", "1.11.0"), ("reporting", "1.0.0")]);
        assert_eq!(
            classify(&done(&["stop", "dump"]), false, &before, &created),
            Class::DataRestore,
            "a new database is data that moved"
        );
        assert_eq!(
            classify(&done(&["stop", "dump", "rewrite", "mongo"]), true, &before, &before),
            Class::DataRestore,
            "a new MongoDB major"
        );
        assert_eq!(
            classify(&done(&["stop", "dump", "rewrite"]), true, &before, &before),
            Class::ImageSwap,
            "mongo not yet swapped"
        );
    }
}
