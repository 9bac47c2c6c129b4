//! `upgrade`, `resume`, `rollback`, `recover`.

use super::{
    Global, RecoverArgs, RestoreArgs, ResumeArgs, Run, UpgradeArgs, World, asker, parse_version, print_json,
    project_name,
};
use crate::exit::{Exit, Failure};
use crate::plan::saved::SavedPlan;
use crate::report::outcome;
use crate::staging::StagingRuntime;
use crate::state::StateDir;
use crate::upgrade::{self, Runtime, Target, UpgradeOptions};

/// `upgrade --to V`: the production stack, hop by hop.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn upgrade(g: &Global, a: UpgradeArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let reviewed = a.plan.as_deref().map(read_plan).transpose()?;
    let to = match (&reviewed, &a.to) {
        (Some((_, saved)), _) => saved.plan.to.clone(),
        (None, Some(to)) => parse_version(to)?,
        // clap requires one of --to and --plan.
        (None, None) => {
            return Err(
                Failure::new(Exit::Usage, "no target", crate::exit::UNCHANGED_ALL, "give --to or --plan").into()
            );
        }
    };
    let smoke = a.smoke.options()?;
    let w = World::open(g).await?;
    let progress = g.progress();
    let confirm = asker(a.yes, g.json, &progress);
    let daemon = crate::upgrade::runtime::Daemon { smoke, ..w.daemon(g.registry()) };
    let ctx = w.ctx(Run {
        runtime: &daemon,
        registry: g.registry(),
        progress: &progress,
        hop_timeout: a.hop_timeout.hop_timeout,
        grace: a.stop.stop_timeout,
        confirm: &confirm,
    });
    let opts = UpgradeOptions {
        to,
        dry_run: a.dry_run,
        max_backup_age: a.max_backup_age.max_backup_age,
        use_bundle: None,
        require_rehearsal: a.require_rehearsal,
        reviewed,
        accept_new_keys: a.accept_new_keys,
    };
    let done = upgrade::run(&ctx, &Target::Production(g.project.clone()), &opts).await;
    progress.finish();
    let o = notify_failure(&progress, "upgrade", g.project.as_deref(), done.map_err(Failure::from)).await?;
    if g.json {
        println!("{}", outcome::result_line(&o));
    } else {
        print!("{}", outcome::upgrade(&o));
    }
    Ok(Exit::Ok)
}

/// Posts the `failed` notification for a run that ends in `result`'s failure (its exit code and
/// the what/unchanged/next the operator is told), and hands the result on.
async fn notify_failure<T>(
    progress: &crate::progress::Progress,
    operation: &str,
    project: Option<&str>,
    result: Result<T, Failure>,
) -> Result<T, Failure> {
    if let Err(f) = &result {
        let doc = serde_json::json!({"operation": operation, "project": project, "exit": f.exit as i32, "what": f.what, "unchanged": f.unchanged, "next": f.next});
        progress.notify("failed", doc).await;
    }
    result
}

/// Reads a plan file saved by `plan --out`: the path as given and the plan.
///
/// # Errors
/// A usage [`Failure`] (exit 2) for a file that cannot be read or is no plan file.
fn read_plan(path: &std::path::Path) -> Result<(String, SavedPlan), Failure> {
    let shown = path.display().to_string();
    let refused = |what: String| {
        Failure::new(Exit::Usage, what, crate::exit::UNCHANGED_ALL, "save a plan with `plan --to VERSION --out FILE`")
    };
    let text = std::fs::read_to_string(path).map_err(|e| refused(format!("cannot read the plan file {shown}: {e}")))?;
    let saved = SavedPlan::parse(&shown, &text).map_err(|e| refused(e.to_string()))?;
    Ok((shown, saved))
}

/// `resume` (`back` None) and `rollback` (`back` Some(--to)), with the runtime of the project the
/// journal names: a staging copy's journal says so.
pub async fn resume(g: &Global, a: ResumeArgs, back: Option<Option<String>>) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let smoke = a.smoke.options()?;
    let w = World::open(g).await?;
    let project = project_name(g, &w.docker).await?;
    let interrupted = upgrade::interrupted(&w.state, &project);
    let registry = interrupted.as_ref().and_then(|u| u.registry.clone());
    let registry = registry.as_deref().or(g.registry());
    let progress = g.progress();
    let confirm = asker(a.yes, g.json, &progress);
    let daemon = crate::upgrade::runtime::Daemon { smoke: smoke.clone(), ..w.daemon(registry) };
    let staging = StagingRuntime { daemon: crate::upgrade::runtime::Daemon { smoke, ..w.daemon(registry) } };
    let runtime: &dyn Runtime = match interrupted.as_ref().and_then(|u| u.project.staging.as_ref()) {
        Some(_) => &staging,
        None => &daemon,
    };
    let ctx = w.ctx(Run {
        runtime,
        registry,
        progress: &progress,
        hop_timeout: a.hop_timeout.hop_timeout,
        grace: a.stop.stop_timeout,
        confirm: &confirm,
    });
    if let Some(to) = back {
        let to = to.as_deref().map(parse_version).transpose()?;
        let at = match &interrupted {
            Some(_) if to.is_some() => {
                return Err(Failure::new(
                    Exit::Usage,
                    "--to applies after a completed upgrade; an interrupted one is rolled back to the release before its hop",
                    crate::exit::UNCHANGED_ALL,
                    "run `rollback` without --to first",
                )
                .into());
            }
            Some(_) => upgrade::rollback(&ctx, &project).await,
            None => upgrade::rollback_completed(&ctx, &project, to.as_ref()).await,
        };
        progress.finish();
        let at = notify_failure(&progress, "rollback", Some(&project), at.map_err(Failure::from)).await?;
        progress
            .notify("rolled-back", serde_json::json!({"operation": "rollback", "project": project, "release": at}))
            .await;
        if g.json {
            println!("{}", serde_json::json!({"event": "result", "project": project, "release": at}));
        } else {
            println!("{project} is back at Mender Server {at} and healthy.");
        }
        return Ok(Exit::Ok);
    }
    let done = upgrade::resume(&ctx, &project).await;
    progress.finish();
    let o = notify_failure(&progress, "resume", Some(&project), done.map_err(Failure::from)).await?;
    if g.json {
        println!("{}", outcome::result_line(&o));
    } else {
        print!("{}", outcome::upgrade(&o));
    }
    Ok(Exit::Ok)
}

pub async fn restore(g: &Global, a: RestoreArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let smoke = a.run.smoke.options()?;
    let w = World::open(g).await?;
    let progress = g.progress();
    let confirm = asker(a.run.yes, g.json, &progress);
    let daemon = crate::upgrade::runtime::Daemon { smoke, ..w.daemon(g.registry()) };
    let ctx = w.ctx(Run {
        runtime: &daemon,
        registry: g.registry(),
        progress: &progress,
        hop_timeout: a.run.hop_timeout.hop_timeout,
        grace: a.run.stop.stop_timeout,
        confirm: &confirm,
    });
    let opts = upgrade::restore::RestoreOptions {
        bundle: a.bundle,
        no_safety_backup: a.no_safety_backup,
        identity: a.identity.identity,
    };
    let done = upgrade::restore::run(&ctx, g.project.as_deref(), &opts).await;
    progress.finish();
    let r = notify_failure(&progress, "restore", g.project.as_deref(), done.map_err(Failure::from)).await?;
    let doc =
        serde_json::json!({"operation": "restore", "project": r.project, "release": r.release, "bundle": r.bundle});
    progress.notify("restored", doc).await;
    if g.json {
        println!("{}", outcome::result_line(&r));
    } else {
        println!("{} now runs Mender Server {}, restored from {}.", r.project, r.release, r.bundle.display());
        if let Some(s) = &r.safety_bundle {
            println!("The state before is in the safety bundle {}.", s.display());
        }
    }
    Ok(Exit::Ok)
}

pub async fn history(g: &Global) -> anyhow::Result<Exit> {
    let docker = super::connect().await?;
    let state = StateDir::new(g.state_dir());
    let project = project_name(g, &docker).await?;
    let mut entries = upgrade::history::read(&state, &project);
    entries.reverse();
    if g.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let serde_json::Value::Object(m) = &mut v {
                    m.remove("state");
                    m.insert("dumps_kept".into(), serde_json::json!(e.dumps_kept()));
                }
                v
            })
            .collect();
        print_json(&serde_json::json!({ "project": project, "history": rows }))?;
    } else {
        print!("{}", outcome::history(&project, &entries));
    }
    Ok(Exit::Ok)
}

pub async fn recover(g: &Global, a: RecoverArgs) -> anyhow::Result<Exit> {
    let docker = super::connect().await?;
    let state = StateDir::new(g.state_dir());
    let project = project_name(g, &docker).await?;
    if a.abandon && state.pending_upgrade(&project).is_some() {
        let question = format!(
            "Abandon the interrupted upgrade of {project}? Its journal is removed and neither `resume` nor `rollback` can act on it afterwards; the stack is left exactly as it is."
        );
        if !asker(a.yes, g.json, &crate::progress::Progress::silent())(&question) {
            return Err(Failure::new(
                Exit::Usage,
                "the abandon was not confirmed",
                crate::exit::UNCHANGED_ALL,
                "confirm, or pass --yes",
            )
            .into());
        }
    }
    let report = upgrade::recover::recover(&docker, &state, &project, a.abandon).await.map_err(|e| {
        Failure::new(Exit::Precondition, e, crate::exit::UNCHANGED_ALL, "see the message; `status` shows the services")
    })?;
    if g.json {
        print_json(&report)?;
    } else {
        print!("{}", outcome::recover(&report));
    }
    Ok(Exit::Ok)
}
