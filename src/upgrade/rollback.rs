//! Undoing a hop. Mender migrations only go forward and an older binary runs silently on a newer
//! schema, so the class is decided from the data: if no database's migration_info moved and the
//! MongoDB major did not change, the previous configuration and images are enough (image swap);
//! otherwise the pre-hop dump is restored first (data restore).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use semver::Version;

use super::error::{HopFailed, StepError, UpgradeError};
use super::runtime::{compose_shown, migrations, restore_shown, wait_gates, wait_mongo};
use super::step::{Point, Step};
use super::{Ctx, Run, files, report};
use crate::backup::quiesce;
use crate::backup::restore::MongoTarget;

/// What undoes a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Nothing was changed yet (the hop failed before its dump).
    Nothing,
    /// The previous files and images are enough.
    ImageSwap,
    /// The pre-hop dump must be restored first.
    DataRestore,
    /// A MongoDB stage: the previous files, which run the previous image on the original volume.
    OriginalVolume,
}

impl Class {
    fn describe(self) -> &'static str {
        match self {
            Class::Nothing => "nothing had changed",
            Class::ImageSwap => "image swap: no database had moved",
            Class::DataRestore => "data restore from the pre-hop dump",
            Class::OriginalVolume => {
                "the previous MongoDB image on the original data volume, which the stage never wrote"
            }
        }
    }
}

/// Pure: what undoes a hop, given how far it got, whether an earlier rollback of it had begun
/// restoring the pre-hop dump (`restore_begun`: the databases were wiped, so only a restore can
/// put them back), and each database's migration_info before the hop and now (`None`: MongoDB did
/// not answer, so nothing is known and only the dump is safe). A database the hop's `before` had
/// and `now` lacks has moved too.
pub fn classify(
    done: &[Step],
    mongo_changed: bool,
    restore_begun: bool,
    before: &BTreeMap<String, Option<String>>,
    now: Option<&BTreeMap<String, Option<String>>>,
) -> Class {
    if restore_begun {
        return Class::DataRestore;
    }
    if !done.contains(&Step::Dump) {
        return Class::Nothing;
    }
    let Some(now) = now else { return Class::DataRestore };
    let version = |m: &BTreeMap<String, Option<String>>, db: &String| m.get(db).cloned().flatten();
    let advanced = before.keys().chain(now.keys()).any(|db| version(before, db) != version(now, db));
    if advanced || (done.contains(&Step::Mongo) && mongo_changed) { Class::DataRestore } else { Class::ImageSwap }
}

/// After a failed step: undo the hop and say where the stack is.
pub async fn after_failure(ctx: &Ctx<'_>, run: &mut Run, failure: Box<HopFailed>) -> UpgradeError {
    let st = run.st().clone();
    if !ctx.runtime.answers().await {
        // Nothing can be undone without a daemon, and guessing what it will find when it is back
        // would be worse: the journal says where the hop stopped, for `resume` or `rollback`.
        let what = "the Docker daemon stopped answering: nothing was rolled back";
        let _ = report::write_failure(ctx, &st, &failure, what);
        record_failure(ctx, &st, &failure.to, format!("{failure}; {what}"), false);
        return UpgradeError::DaemonLost { hop: failure, project: st.project.name.clone() };
    }
    ctx.progress.step("rollback", failure.to_string());
    match undo(ctx, run).await {
        Ok((at, how)) => {
            let _ = ctx.state.clear_journal(&st.project.name);
            let how = how.describe();
            let result = format!("{failure}; rolled back to {at} ({how})");
            let _ = report::write_failure(ctx, &st, &failure, &format!("rolled back to {at} ({how})"));
            record_failure(ctx, &st, &at, result, true);
            UpgradeError::RolledBack { hop: failure, at, how: how.to_string() }
        }
        Err(e) => {
            let _ = report::write_failure(ctx, &st, &failure, &format!("rollback incomplete: {e}"));
            record_failure(ctx, &st, &failure.to, format!("{failure}; the rollback did not finish: {e}"), false);
            let wiped = run.st().restore_begun;
            let commands = files::recovery_commands(&st.project, &files::hop_dir(&st, st.hop), wiped);
            UpgradeError::RollbackFailed { hop: failure, rollback: Box::new(e), commands }
        }
    }
}

/// A failed upgrade in the history (not for staging copies).
fn record_failure(ctx: &Ctx<'_>, st: &super::UpgradeState, at: &Version, result: String, clean: bool) {
    if st.project.staging.is_some() {
        return;
    }
    super::history::record(
        ctx.state,
        &st.project.name,
        &super::history::Entry {
            at: crate::util::now_rfc3339(),
            operation: super::history::Operation::Upgrade,
            from: st.plan.from.clone(),
            to: st.plan.to.clone(),
            at_release: at.clone(),
            hops: st.plan.hops.iter().map(crate::plan::Hop::label).collect(),
            ok: false,
            result,
            report: None,
            // The hops before the failed one are complete, and can be undone later.
            state: clean.then(|| st.clone()),
        },
    );
}

/// `rollback` on request: the hop in progress, or else the last one that completed; with the
/// state's `rollback_until`, on hop by hop (each journaled) down to that hop index; else with its
/// `rollback_to`, until the stack is at that release.
pub async fn on_request(ctx: &Ctx<'_>, run: &mut Run) -> Result<Version, UpgradeError> {
    loop {
        let st = run.st_mut();
        if st.done.is_empty() {
            if st.hop == 0 {
                return Err(UpgradeError::NothingToRollBack(st.project.name.clone()));
            }
            st.hop -= 1;
            st.done = Step::of(&st.plan.hops[st.hop]).to_vec();
        }
        let this = st.plan.hops[st.hop].clone();
        let project = st.project.clone();
        let dir = files::hop_dir(st, st.hop);
        let at = match undo(ctx, run).await {
            Ok((at, _)) => at,
            Err(e) => {
                let hop = HopFailed::of(&this, Point::Rollback, StepError::Requested);
                let wiped = run.st().restore_begun;
                return Err(UpgradeError::RollbackFailed {
                    hop: Box::new(hop),
                    rollback: Box::new(e),
                    commands: files::recovery_commands(&project, &dir, wiped),
                });
            }
        };
        let st = run.st_mut();
        let more = match (st.rollback_until, &st.rollback_to) {
            (Some(until), _) => st.hop > until,
            (None, Some(target)) => at != *target && st.hop > 0,
            (None, None) => false,
        };
        if !more {
            return Ok(at);
        }
        // This hop is undone: the journal says so before the next one starts.
        st.done.clear();
        st.before.clear();
        st.dump_image = None;
        st.restore_begun = false;
        run.checkpoint(ctx.state, Point::Rollback)?;
    }
}

fn read_before(dir: &Path) -> BTreeMap<String, Option<String>> {
    std::fs::read(dir.join("before.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Brings the stack back to the hop's `from` release; returns it and how.
pub async fn undo(ctx: &Ctx<'_>, run: &mut Run) -> Result<(Version, Class), StepError> {
    let st = run.st().clone();
    let hop = st.plan.hops[st.hop].clone();
    let dir = files::hop_dir(&st, st.hop);
    if hop.is_mongo_stage() {
        return undo_stage(ctx, &st, &dir).await;
    }
    let observed = ctx.runtime.observe(&st.project.name).await?;
    let from = ctx.catalog.catalog.release(&hop.from).ok_or_else(|| StepError::NoRelease(hop.from.clone()))?;
    let mongo = from.mongo.service.clone();
    let network = observed.stack.network.clone().ok_or_else(|| StepError::NoNetwork(mongo.clone()))?;
    let now = migrations(ctx.runtime, &network, &mongo).await.ok();
    let before = if st.before.is_empty() { read_before(&dir) } else { st.before.clone() };
    let class = classify(&st.done, hop.mongo.is_some(), st.restore_begun, &before, now.as_ref());
    ctx.progress.step("rollback", class.describe());
    if st.restore_begun {
        ctx.progress.step("rollback", "an earlier rollback was stopped while it restored the dump: restoring it again");
    } else if now.is_none() && class == Class::DataRestore {
        ctx.progress.step("rollback", format!("{mongo} did not answer, so the pre-hop dump is restored to be sure"));
    }
    if class == Class::DataRestore {
        // No writer may run on the data while it is put back.
        ctx.runtime.stop(&quiesce::writers(&observed.stack), ctx.grace).await?;
        // Journaled before the wipe: a rollback stopped from here on leaves databases that only
        // the dump can put back, whatever their migration_info then says.
        // It is a rollback from here on: `resume` would carry the hop on over half-restored data.
        run.st_mut().restore_begun = true;
        run.journal.operation = "rollback".into();
        run.checkpoint(ctx.state, Point::Rollback).map_err(StepError::Journal)?;
    }
    if class != Class::Nothing {
        files::restore(&st.project, &dir)?;
    }
    if class == Class::DataRestore {
        compose_shown(ctx, &st.project, &["up", "-d", "--no-deps", &mongo]).await?;
        wait_mongo(ctx.runtime, &network, &mongo, Duration::from_secs(120)).await?;
        let image = st
            .dump_image
            .clone()
            .or_else(|| observed.stack.mongo.as_ref().and_then(|m| m.image.clone()))
            .unwrap_or_default();
        let target = MongoTarget { image: &image, network: &network, host: &mongo };
        let ferretdb = observed.stack.mongo.as_ref().is_some_and(|m| m.ferretdb);
        ctx.progress.step("rollback", format!("restoring the pre-hop dump into {mongo}"));
        restore_shown(ctx, &dir, &target, ferretdb).await?;
    }
    if class == Class::Nothing {
        let failed = ctx.runtime.start(&run.journal.stopped).await;
        if !failed.is_empty() {
            return Err(StepError::Start(failed));
        }
    } else {
        let mut args = vec!["up", "-d"];
        if !hop.added_services.is_empty() || !hop.removed_services.is_empty() {
            args.push("--remove-orphans");
        }
        compose_shown(ctx, &st.project, &args).await?;
    }
    wait_gates(ctx, &st.project, &hop.from, ctx.hop_timeout, &[])
        .await
        .map_err(|f| StepError::Gates(std::iter::once("after the rollback".to_string()).chain(f).collect()))?;
    Ok((hop.from.clone(), class))
}

/// A MongoDB stage: the files as they were (the previous image on the original volume, which the
/// stage only ever read), then everything up; the copy stays for the operator to remove.
async fn undo_stage(ctx: &Ctx<'_>, st: &super::UpgradeState, dir: &Path) -> Result<(Version, Class), StepError> {
    let hop = &st.plan.hops[st.hop];
    ctx.progress.step("rollback", Class::OriginalVolume.describe());
    files::restore(&st.project, dir)?;
    compose_shown(ctx, &st.project, &["up", "-d"]).await?;
    wait_gates(ctx, &st.project, &hop.from, ctx.hop_timeout, &[])
        .await
        .map_err(|f| StepError::Gates(std::iter::once("after the rollback".to_string()).chain(f).collect()))?;
    // Only a copy the stage made (a stage stopped before its copy step made none).
    if st.project.staging.is_none()
        && let Ok((_, copy)) = super::stage::volumes(ctx, st, hop)
        && ctx.docker.inspect_volume(&copy).await.is_ok()
    {
        ctx.progress.step("rollback", format!("volume {copy} holds the abandoned copy: docker volume rm {copy}"));
    }
    Ok((hop.from.clone(), Class::OriginalVolume))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
    }

    use Step::*;

    #[test]
    fn the_data_decides_the_class() {
        let c = |done: &[Step], mongo, before: &BTreeMap<_, _>, now: &BTreeMap<_, _>| {
            classify(done, mongo, false, before, Some(now))
        };
        let before = m(&[("useradm", "2.0.1"), ("deviceauth", "1.11.0")]);
        assert_eq!(c(&[Stop], false, &before, &before), Class::Nothing);
        assert_eq!(c(&[Stop, Dump, Rewrite, Migrate, Up], false, &before, &before), Class::ImageSwap);
        let moved = m(&[("useradm", "2.0.3"), ("deviceauth", "1.11.0")]);
        assert_eq!(c(&[Stop, Dump, Rewrite, Migrate], false, &before, &moved), Class::DataRestore);
        let created = m(&[("useradm", "2.0.1"), ("deviceauth", "1.11.0"), ("reporting", "1.0.0")]);
        assert_eq!(c(&[Stop, Dump], false, &before, &created), Class::DataRestore, "a new database is data that moved");
        assert_eq!(c(&[Stop, Dump, Rewrite, Mongo], true, &before, &before), Class::DataRestore, "a new MongoDB major");
        assert_eq!(c(&[Stop, Dump, Rewrite], true, &before, &before), Class::ImageSwap, "mongo not yet swapped");
    }

    #[test]
    fn wiped_or_unknown_data_is_restored() {
        let before = m(&[("useradm", "2.0.1"), ("deviceauth", "1.11.0")]);
        let done = [Stop, Dump, Rewrite, Migrate, Up];
        // A rollback killed after its wipe: no database left, or some already back as they were.
        let wiped = BTreeMap::new();
        assert_eq!(classify(&done, false, false, &before, Some(&wiped)), Class::DataRestore, "a database gone");
        let partly = m(&[("useradm", "2.0.1")]);
        assert_eq!(classify(&done, false, false, &before, Some(&partly)), Class::DataRestore);
        // Even when every migration_info is back, a restore that had begun is finished.
        assert_eq!(classify(&done, false, true, &before, Some(&before)), Class::DataRestore);
        assert_eq!(classify(&[Stop], false, true, &before, Some(&before)), Class::DataRestore);
        // MongoDB did not answer: only the dump is safe once it was taken.
        assert_eq!(classify(&done, false, false, &before, None), Class::DataRestore);
        assert_eq!(classify(&[Stop], false, false, &before, None), Class::Nothing, "no dump, nothing moved");
    }
}
