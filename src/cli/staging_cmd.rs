//! `staging up|down` and `rehearse`.

use super::project_name;
use super::{Global, RehearseArgs, Run, StagingDownArgs, StagingUpArgs, World, asker, parse_version};
use crate::exit::{Exit, Failure};
use crate::report::outcome;
use crate::staging::rehearse::{self, RehearseOptions};
use crate::staging::{self, StagingRuntime, UpOptions};
use crate::state::StateDir;

/// `staging up --from BUNDLE`: an isolated copy of the bundle's project.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn up(g: &Global, a: StagingUpArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let smoke = a.smoke.options()?;
    let w = World::open(g).await?;
    let progress = g.progress();
    let no = |_: &str| false;
    let runtime = StagingRuntime { daemon: crate::upgrade::runtime::Daemon { smoke, ..w.daemon(g.registry()) } };
    let ctx = w.ctx(Run {
        runtime: &runtime,
        registry: g.registry(),
        progress: &progress,
        hop_timeout: a.timeout,
        grace: 30,
        confirm: &no,
    });
    let bundle = crate::backup::bundle::resolve(&w.state.backups(), &a.bundle).map_err(Failure::from)?;
    let done = staging::up(&ctx, &UpOptions { bundle, name: a.name, identity: a.identity.identity }).await;
    progress.finish();
    let o = done.map_err(Failure::from)?;
    if g.json {
        println!("{}", outcome::result_line(&o));
    } else {
        print!("{}", outcome::staging_up(&o));
    }
    Ok(Exit::Ok)
}

/// `staging down`: removes a staging copy.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn down(g: &Global, a: StagingDownArgs) -> anyhow::Result<Exit> {
    let docker = super::connect().await?;
    let state = StateDir::new(g.state_dir());
    let name = match a.name {
        Some(n) => n,
        None => staging::default_name(&project_name(g, &docker).await?),
    };
    let removed = staging::down(&docker, &state, &name).await.map_err(Failure::from)?;
    if g.json {
        println!("{}", outcome::result_line(&removed));
    } else {
        print!("{}", outcome::staging_down(&name, &removed));
    }
    Ok(Exit::Ok)
}

/// `rehearse --to V`: the upgrade on a staging copy; a failed rehearsal exits 4 (production
/// untouched).
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn rehearse(g: &Global, a: RehearseArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let to = parse_version(&a.to)?;
    let smoke = a.smoke.options()?;
    let w = World::open(g).await?;
    let progress = g.progress();
    let confirm = asker(a.yes, g.json, &progress);
    let runtime = StagingRuntime { daemon: crate::upgrade::runtime::Daemon { smoke, ..w.daemon(g.registry()) } };
    let ctx = w.ctx(Run {
        runtime: &runtime,
        registry: g.registry(),
        progress: &progress,
        hop_timeout: a.hop_timeout.hop_timeout,
        grace: 30,
        confirm: &confirm,
    });
    let opts = RehearseOptions {
        to,
        from: a
            .bundle
            .map(|b| crate::backup::bundle::resolve(&w.state.backups(), &b))
            .transpose()
            .map_err(Failure::from)?,
        name: a.name,
        keep: a.keep,
        max_backup_age: a.max_backup_age.max_backup_age,
        identity: a.identity.identity,
    };
    let result = rehearse::run(&ctx, g.project.as_deref(), &opts).await;
    progress.finish();
    let r = result.map_err(Failure::from)?;
    if g.json {
        println!("{}", outcome::result_line(&r));
    } else {
        print!("{}", outcome::rehearsal(&r));
    }
    if r.ok {
        return Ok(Exit::Ok);
    }
    let failure = Failure::new(
        Exit::RolledBack,
        format!("the rehearsal of {} → {} failed on staging: {}", r.from, r.to, r.failure.clone().unwrap_or_default()),
        "production was not touched",
        format!("read {}; do not upgrade production to {} until the cause is fixed", r.report_md.display(), r.to),
    );
    if g.json {
        // The result line (`ok: false`) is already printed.
        return Ok(super::failed_after_result(failure));
    }
    Err(failure.into())
}
