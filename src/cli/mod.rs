//! The command-line surface: one thin function per verb (observe, decide, render), like cargo's
//! commands. Errors convert themselves into what the operator is told where they are defined;
//! rendering lives in `report`.

mod args;
mod backup_cmd;
mod demo_cmd;
mod manual_cmd;
mod staging_cmd;
mod status_cmd;
mod upgrade_cmd;

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use semver::Version;

pub use args::*;

use crate::catalog::LoadedCatalog;
use crate::engine::compose::Compose;
use crate::engine::docker;
use crate::exit::{Exit, Failure};
use crate::progress::Progress;
use crate::state::StateDir;
use crate::upgrade::{Ctx, Daemon, Runtime};

impl Global {
    /// The registry prefix, when one was given.
    pub fn registry(&self) -> Option<&str> {
        self.image_registry.as_deref().filter(|r| !r.is_empty())
    }

    /// `--state-dir`, else `$XDG_STATE_HOME/mender-compose-upgrade`, else
    /// `~/.local/state/mender-compose-upgrade`, else `/var/lib/mender-compose-upgrade`.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("/var/lib"));
        base.join("mender-compose-upgrade")
    }

    /// The built-in catalog, or the one `--catalog` names.
    ///
    /// # Errors
    /// A catalog directory that does not load (exit 2).
    pub fn load_catalog(&self) -> Result<LoadedCatalog, Failure> {
        let loaded = match &self.catalog {
            Some(dir) => LoadedCatalog::from_dir(dir),
            None => LoadedCatalog::embedded(),
        };
        loaded.map_err(|e| {
            Failure::new(
                Exit::Usage,
                e,
                crate::exit::UNCHANGED_ALL,
                "fix the catalog directory given with --catalog, or drop the option to use the built-in catalog",
            )
        })
    }

    fn progress(&self) -> Progress {
        let notifier = crate::engine::notify::Notifier::new(self.notify.clone());
        Progress::new(self.json, self.quiet)
            .with_notifier(notifier.map(|n| std::sync::Arc::new(n) as std::sync::Arc<dyn crate::progress::Notify>))
    }
}

/// Runs the verb; its exit code, or the failure to report.
///
/// # Errors
/// A [`Failure`] for everything the operator can act on; anything else is unexpected (exit 1).
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let g = &cli.global;
    match cli.command {
        Command::Status(a) => status_cmd::status(g, a).await,
        Command::Plan(a) => status_cmd::plan(g, a).await,
        Command::Backup(a) => match a.command {
            Some(BackupCommand::List) => backup_cmd::list(g),
            Some(BackupCommand::Prune(p)) => backup_cmd::prune(g, p),
            Some(BackupCommand::Copy(c)) => backup_cmd::copy(g, c).await,
            None => backup_cmd::backup(g, a).await,
        },
        Command::Verify(a) => backup_cmd::verify(g, a).await,
        Command::Upgrade(a) => upgrade_cmd::upgrade(g, a).await,
        Command::Resume(a) => upgrade_cmd::resume(g, a, None).await,
        Command::Rollback(a) => upgrade_cmd::resume(g, a.run, Some(a.to)).await,
        Command::History => upgrade_cmd::history(g).await,
        Command::Restore(a) => upgrade_cmd::restore(g, a).await,
        Command::Recover(a) => upgrade_cmd::recover(g, a).await,
        Command::Staging(StagingCommand::Up(a)) => staging_cmd::up(g, a).await,
        Command::Staging(StagingCommand::Down(a)) => staging_cmd::down(g, a).await,
        Command::Rehearse(a) => staging_cmd::rehearse(g, a).await,
        Command::Demo(d) => demo_cmd::demo(g, d).await,
        Command::Completions(a) => manual_cmd::completions(a),
        Command::Man(a) => manual_cmd::man(g, a),
        Command::Helper(a) => helper(a).await,
    }
}

/// Everything the verbs that change a stack need: the catalog, compose, the daemon, the state
/// directory. Built once per command.
struct World {
    catalog: LoadedCatalog,
    compose: Compose,
    docker: Docker,
    state: StateDir,
}

impl World {
    async fn open(g: &Global) -> Result<World, Failure> {
        Ok(World {
            catalog: g.load_catalog()?,
            compose: Compose::detect().await?,
            docker: connect().await?,
            state: StateDir::new(g.state_dir()),
        })
    }

    /// The real runtime for production projects.
    fn daemon<'a>(&'a self, registry: Option<&'a str>) -> Daemon<'a> {
        Daemon {
            docker: &self.docker,
            compose: &self.compose,
            catalog: &self.catalog.catalog,
            registry,
            smoke: Default::default(),
        }
    }

    /// The one context the stage verbs run with.
    fn ctx<'a>(&'a self, run: Run<'a>) -> Ctx<'a> {
        Ctx {
            docker: &self.docker,
            runtime: run.runtime,
            catalog: &self.catalog,
            state: &self.state,
            registry: run.registry,
            progress: run.progress,
            hop_timeout: run.hop_timeout,
            grace: run.grace,
            confirm: run.confirm,
        }
    }
}

/// What differs between the verbs that build a [`Ctx`].
struct Run<'a> {
    runtime: &'a dyn Runtime,
    registry: Option<&'a str>,
    progress: &'a Progress,
    hop_timeout: Duration,
    grace: i32,
    confirm: &'a (dyn Fn(&str) -> bool + Sync),
}

/// The daemon, or the failure an operator is told (a bare `?` on the engine's error would reach
/// `main` as an unexpected error, exit 1).
async fn connect() -> Result<Docker, Failure> {
    let d = docker::connect().await?;
    // What a killed run of this tool left (a mongorestore still writing, a throwaway mongo, its
    // network) goes before anything else is done.
    let removed = docker::sweep_dead_owners(&d).await;
    if removed > 0 {
        tracing::info!("removed {removed} sidecar container(s) or network(s) of runs that were killed");
    }
    Ok(d)
}

/// Ends a command whose result is already printed but that failed: the failure goes to stderr
/// only, so that with `--json` the result stays the last line or the one document
/// (docs/events.md), and its exit code is the command's.
fn failed_after_result(f: Failure) -> Exit {
    eprint!("{}", f.render());
    f.exit
}

/// Prints `value` as one pretty JSON document.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Asks on the terminal; without one (or with --json) only `--yes` says yes. The spinner of
/// `progress` is held while it asks: redrawn, it would erase the question being answered.
fn asker(yes: bool, json: bool, progress: &Progress) -> impl Fn(&str) -> bool + Sync {
    let progress = progress.clone();
    move |question: &str| {
        progress.suspend(|| {
            if yes {
                // Still on record: the plan and every manual step, where the run met them.
                eprintln!("{question} yes (--yes)");
                return true;
            }
            use std::io::IsTerminal;
            if json || !std::io::stdin().is_terminal() {
                eprintln!("{question}\n(no terminal to answer on: pass --yes)");
                return false;
            }
            eprint!("{question} [y/N] ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
        })
    }
}

/// The project a command acts on: `-p`, or the only Mender project on the daemon.
async fn project_name(g: &Global, docker: &Docker) -> Result<String, Failure> {
    if let Some(p) = &g.project {
        return Ok(p.clone());
    }
    let all = crate::engine::inspect::compose_summaries(docker).await?;
    crate::snapshot::discover::select(&all, None, g.registry())
        .map_err(|e| crate::snapshot::observe::ObserveError::Discover(e).into())
}

fn parse_version(s: &str) -> Result<Version, Failure> {
    let trimmed = s.trim().trim_start_matches('v');
    Version::parse(trimmed).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!("{s:?} is not a version (expected MAJOR.MINOR.PATCH, e.g. 3.7.11)"),
            crate::exit::UNCHANGED_ALL,
            "give a full release version",
        )
    })
}

async fn helper(a: HelperArgs) -> anyhow::Result<Exit> {
    let req: crate::engine::helper::Request = serde_json::from_str(&a.request)?;
    print_json(&crate::engine::helper::run(req).await)?;
    Ok(Exit::Ok)
}
