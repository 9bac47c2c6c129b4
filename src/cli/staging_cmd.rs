//! `staging up|down` and `rehearse`: thin, like the other verbs.

use super::{Global, RehearseArgs, StagingDownArgs, StagingUpArgs, asker, from_compose, from_docker, parse_version};
use super::{from_upgrade, print_json, progress, project_name};
use crate::engine::compose::Compose;
use crate::engine::docker;
use crate::report::{Exit, Failure};
use crate::staging::rehearse::{self, RehearseError, RehearseOptions};
use crate::staging::{self, StagingError, UpOptions};
use crate::state::StateDir;
use crate::upgrade::Ctx;

pub fn from_staging(e: StagingError) -> Failure {
    let nothing = "nothing: production was not touched and no staging resource was left";
    match e {
        StagingError::BadName(..) => Failure::new(Exit::Usage, e, nothing, "choose another --name"),
        StagingError::Bundle(..) => Failure::new(
            Exit::Precondition,
            e,
            nothing,
            "give a complete bundle written by `backup` (`verify BUNDLE` names what is wrong), or take a new backup",
        ),
        StagingError::Exists { ref name, .. } => {
            let next = format!("remove it with `staging down --name {name}`, or choose another --name");
            Failure::new(Exit::Precondition, e, "nothing: production and the existing project were not touched", next)
        }
        StagingError::ExternalStorage(_) => Failure::new(
            Exit::Precondition,
            e,
            nothing,
            "add the release to the catalog with its minio service (--catalog), or rehearse by hand",
        ),
        StagingError::NotFound(_) => Failure::new(
            Exit::Usage,
            e,
            "nothing",
            "`docker compose ls -a` lists the projects; name the staging with --name",
        ),
        StagingError::Lock(_) => Failure::new(
            Exit::Precondition,
            e,
            "nothing",
            "wait for the other run, or `recover` if its process is gone",
        ),
        StagingError::Docker(d) => from_docker(d),
        StagingError::Compose(c) => from_compose(c),
        StagingError::Step { .. } | StagingError::Io(_) => Failure::new(
            Exit::Precondition,
            e,
            "production was not touched; the staging resources made so far were removed",
            "fix what the message names; `-v` shows more",
        ),
    }
}

struct World {
    catalog: crate::catalog::LoadedCatalog,
    compose: Compose,
    docker: bollard::Docker,
    state: StateDir,
}

impl World {
    fn ctx<'a>(
        &'a self,
        g: &'a Global,
        progress: &'a crate::report::progress::Progress,
        hop_timeout: std::time::Duration,
        confirm: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> Ctx<'a> {
        Ctx {
            docker: &self.docker,
            catalog: &self.catalog,
            state: &self.state,
            compose: &self.compose,
            registry: g.registry(),
            progress,
            hop_timeout,
            grace: 30,
            confirm,
        }
    }
}

async fn world(g: &Global) -> Result<World, Failure> {
    Ok(World {
        catalog: g.load_catalog()?,
        compose: Compose::detect().await.map_err(from_compose)?,
        docker: docker::connect().await.map_err(from_docker)?,
        state: StateDir::new(g.state_dir()),
    })
}

pub async fn up(g: &Global, a: StagingUpArgs) -> anyhow::Result<Exit> {
    let w = world(g).await?;
    let progress = progress(g);
    let no = |_: &str| false;
    let ctx = w.ctx(g, &progress, a.timeout, &no);
    let outcome = staging::up(&ctx, &UpOptions { bundle: a.bundle, name: a.name }).await;
    progress.finish();
    let o = outcome.map_err(from_staging)?;
    if g.json {
        print_json(&o)?;
        return Ok(Exit::Ok);
    }
    println!(
        "Staging {} runs {} ({} databases, {} documents, {} artifacts restored from {}).",
        o.name,
        o.release,
        o.databases,
        o.documents,
        o.artifacts,
        o.bundle.display()
    );
    let t: Vec<String> = o.timings.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
    println!("  {}", t.join(", "));
    println!("  isolated: internal network, no host ports, own volumes, traefik disabled on every container");
    for n in &o.notes {
        println!("  note: {n}");
    }
    println!("Look at it: mender-compose-upgrade -p {} status", o.name);
    println!("Remove it:  mender-compose-upgrade staging down --name {}", o.name);
    Ok(Exit::Ok)
}

pub async fn down(g: &Global, a: StagingDownArgs) -> anyhow::Result<Exit> {
    let docker = docker::connect().await.map_err(from_docker)?;
    let state = StateDir::new(g.state_dir());
    let name = match a.name {
        Some(n) => n,
        None => staging::default_name(&project_name(g, &docker).await?),
    };
    let removed = staging::down(&docker, &state, &name).await.map_err(from_staging)?;
    if g.json {
        print_json(&removed)?;
    } else {
        println!(
            "Staging {name} removed: {} containers, {} networks, {} volumes.",
            removed.containers.len(),
            removed.networks.len(),
            removed.volumes.len()
        );
    }
    Ok(Exit::Ok)
}

pub async fn rehearse(g: &Global, a: RehearseArgs) -> anyhow::Result<Exit> {
    let to = parse_version(&a.to)?;
    let w = world(g).await?;
    let progress = progress(g);
    let confirm = asker(a.yes, g.json);
    let ctx = w.ctx(g, &progress, a.hop_timeout, &confirm);
    let opts = RehearseOptions { to, from: a.bundle, name: a.name, keep: a.keep, max_backup_age: a.max_backup_age };
    let result = rehearse::run(&ctx, g.project.as_deref(), &opts).await;
    progress.finish();
    let r = result.map_err(from_rehearse)?;
    if g.json {
        let mut v = serde_json::to_value(&r)?;
        v["event"] = "result".into();
        println!("{v}");
    } else {
        print_rehearsal(&r);
    }
    if r.ok {
        return Ok(Exit::Ok);
    }
    Err(Failure::new(
        Exit::RolledBack,
        format!("the rehearsal of {} → {} failed on staging: {}", r.from, r.to, r.failure.clone().unwrap_or_default()),
        "production was not touched",
        format!("read {}; do not upgrade production to {} until the cause is fixed", r.report_md.display(), r.to),
    )
    .into())
}

fn print_rehearsal(r: &rehearse::Rehearsal) {
    println!("Rehearsal of {} → {} for {} on staging {}:", r.from, r.to, r.project, r.staging);
    if let Some(up) = &r.staging_up {
        let t: Vec<String> = up.timings.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
        println!("  staging restored from {} and started: {}", r.bundle.display(), t.join(", "));
    }
    for h in &r.hops {
        let steps: Vec<String> = h.timings.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect();
        println!("  {} → {}: {:.1} s ({})", h.from, h.to, h.total_secs, steps.join(", "));
    }
    if r.ok {
        println!("Estimated production maintenance window: {:.0} s. The bundle is marked as proven.", r.estimate_secs);
    }
    if r.kept {
        println!("Staging kept: mender-compose-upgrade staging down --name {}", r.staging);
    }
    println!("Report: {}", r.report_md.display());
}

fn from_rehearse(e: RehearseError) -> Failure {
    match e {
        RehearseError::Staging(s) => from_staging(s),
        RehearseError::Upgrade(u) => from_upgrade(u),
        RehearseError::Backup(_) => Failure::new(
            Exit::Precondition,
            e,
            "production's services were started again; no staging was made",
            "see `backup` for the cause, or give a bundle with --from",
        ),
        RehearseError::NotConfirmed => {
            Failure::new(Exit::Usage, e, "nothing", "confirm, pass --yes, or give a bundle with --from")
        }
    }
}
