//! The command-line surface: one function per verb, each thin — observe, decide (pure), render.

mod staging_cmd;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use semver::Version;

use crate::backup::dump;
use crate::backup::{self, BackupError, BackupOptions, artifacts::Choice};
use crate::catalog::{CatalogError, LoadedCatalog, line_name};
use crate::demo;
use crate::engine::compose::Compose;
use crate::engine::compose::ComposeError;
use crate::engine::docker::{self, DockerError};
use crate::engine::sidecar::SidecarError;
use crate::plan::{self, PlanError};
use crate::report::progress::Progress;
use crate::report::{self, Exit, Failure};
use crate::snapshot::discover::DiscoverError;
use crate::snapshot::observe::{self, ObserveError, Options, observe, observe_full};
use crate::state::{LockError, StateDir};
use crate::upgrade::{self, UpgradeError};

#[derive(Parser, Debug)]
#[command(
    name = "mender-compose-upgrade",
    version,
    about = "Safe, hop-by-hop upgrades of a self-hosted Mender Server under Docker Compose"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Compose project of the Mender Server (default: the only project running Mender images).
    #[arg(short, long, global = true, env = "MENDER_COMPOSE_PROJECT")]
    pub project: Option<String>,
    /// One JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colours (also honoured: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Where journals, locks, backups and the demo live.
    #[arg(long, global = true, env = "MENDER_COMPOSE_UPGRADE_STATE")]
    pub state_dir: Option<PathBuf>,
    /// Registry prefix of every catalog image: `PREFIX/mendersoftware/deployments:mender-3.6.5`
    /// (a private mirror; the test bed uses testbed.local).
    #[arg(long, global = true, env = "MENDER_IMAGE_REGISTRY")]
    pub image_registry: Option<String>,
    /// A catalog directory laid out like compose-templates/ instead of the built-in one.
    #[arg(long, global = true, env = "MENDER_COMPOSE_UPGRADE_CATALOG")]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Find the stack and report its release, services, health, databases and storage.
    Status(StatusArgs),
    /// Compute the hops from the running release (or --from) to a target release.
    Plan(PlanArgs),
    /// Take a full backup bundle: database dump, artifacts, compose configuration, manifest.
    Backup(BackupArgs),
    /// Prove a bundle: checksums, the archive read back, and optionally a real restore.
    Verify(VerifyArgs),
    /// Upgrade hop by hop to a release, rolling back a hop that fails.
    Upgrade(UpgradeArgs),
    /// Continue an interrupted upgrade from its journal.
    Resume(ResumeArgs),
    /// Undo the hop of an interrupted or failed upgrade (or the last completed hop).
    Rollback(ResumeArgs),
    /// Explain a stale lock or journal and repair it.
    Recover,
    /// An isolated staging copy of production, restored from a backup bundle.
    #[command(subcommand)]
    Staging(StagingCommand),
    /// Rehearse an upgrade on a staging copy: proves the backup, finds problems, measures the window.
    Rehearse(RehearseArgs),
    /// The embedded test-bed stack (stand-in images under testbed.local/).
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Runs inside the helper sidecar (probes, MongoDB report).
    #[command(hide = true)]
    Helper(HelperArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Exit 3 unless every service is running and healthy.
    #[arg(long)]
    pub require_healthy: bool,
    /// Also read what the stack holds: every collection's document count and content digest,
    /// and the artifact store's inventory (a full read of the data; for before/after checks).
    #[arg(long)]
    pub data: bool,
}

/// `status --json`: the stack, plus what the state directory says about runs on it.
#[derive(serde::Serialize)]
struct StatusReport {
    #[serde(flatten)]
    stack: crate::snapshot::Stack,
    /// A run that stopped services and did not finish (its journal).
    interrupted: Option<crate::state::Journal>,
    lock: Option<crate::state::Owner>,
    data: Option<crate::snapshot::observe::DataReport>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long)]
    pub to: String,
    /// Plan for a stack at this release instead of looking at the daemon.
    #[arg(long)]
    pub from: Option<String>,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Directory the bundle is written into (default: STATE_DIR/backups).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not refuse when the free-space estimate says the bundle will not fit.
    #[arg(long)]
    pub skip_space_check: bool,
    /// Back up without the artifacts (only when they are protected some other way).
    #[arg(long, conflicts_with = "artifacts_to")]
    pub skip_artifacts: bool,
    /// For an external bucket without versioning: `bundle` (copy the objects into the bundle) or
    /// s3://BUCKET[/PREFIX] (server-side copy into another bucket).
    #[arg(long, value_name = "DEST")]
    pub artifacts_to: Option<String>,
    /// Seconds each service gets to stop before it is killed.
    #[arg(long, default_value_t = 30)]
    pub stop_timeout: i32,
}

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long)]
    pub to: String,
    /// Do not ask: take the plan and every manual step as confirmed.
    #[arg(long, short)]
    pub yes: bool,
    /// Run the pre-flight checks and show what would happen, then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a hop's health gates may take (e.g. 10m, 90s).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub hop_timeout: std::time::Duration,
    /// A verified backup older than this is not trusted: a new one is taken.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub max_backup_age: std::time::Duration,
    /// Seconds each service gets to stop before it is killed.
    #[arg(long, default_value_t = 30)]
    pub stop_timeout: i32,
    /// Refuse unless a rehearsal (`rehearse --to`) of this target proved the backup it starts from.
    #[arg(long)]
    pub require_rehearsal: bool,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Do not ask for confirmations.
    #[arg(long, short)]
    pub yes: bool,
    /// How long a hop's health gates may take.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub hop_timeout: std::time::Duration,
    /// Seconds each service gets to stop before it is killed.
    #[arg(long, default_value_t = 30)]
    pub stop_timeout: i32,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Also restore the archive with mongorestore into a throwaway container of the same mongo
    /// image and compare every collection's count and content.
    #[arg(long)]
    pub restore_test: bool,
}

#[derive(Subcommand, Debug)]
pub enum StagingCommand {
    /// Restore a bundle into an isolated copy of its project and start it.
    Up(StagingUpArgs),
    /// Remove a staging copy: exactly the containers, networks and volumes labelled for it.
    Down(StagingDownArgs),
}

#[derive(Args, Debug)]
pub struct StagingUpArgs {
    /// The backup bundle to restore.
    #[arg(long = "from", value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Name of the staging project (default: <project>-staging).
    #[arg(long)]
    pub name: Option<String>,
    /// How long the staging copy may take to pass its health gates.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct StagingDownArgs {
    /// Name of the staging project (default: <project>-staging).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct RehearseArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long)]
    pub to: String,
    /// The bundle to restore into staging (default: the newest proven one younger than
    /// --max-backup-age, else a new backup after confirmation).
    #[arg(long = "from", value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// Name of the staging project (default: <project>-staging).
    #[arg(long)]
    pub name: Option<String>,
    /// Leave the staging copy running afterwards (remove it with `staging down`).
    #[arg(long)]
    pub keep: bool,
    /// Do not ask before taking a backup.
    #[arg(long, short)]
    pub yes: bool,
    /// How long a hop's health gates may take.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub hop_timeout: std::time::Duration,
    /// A backup older than this is not used: a new one is taken.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub max_backup_age: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Bring up a seeded test-bed stack laid out like a production integration checkout.
    Up(demo::UpArgs),
    /// Stop and remove the demo stack.
    Down(demo::DownArgs),
}

#[derive(Args, Debug)]
pub struct HelperArgs {
    #[arg(long)]
    pub request: String,
}

impl Global {
    pub fn registry(&self) -> Option<&str> {
        self.image_registry.as_deref().filter(|r| !r.is_empty())
    }

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

    pub fn load_catalog(&self) -> Result<LoadedCatalog, Failure> {
        let loaded = match &self.catalog {
            Some(dir) => LoadedCatalog::from_dir(dir),
            None => LoadedCatalog::embedded(),
        };
        loaded.map_err(|e: CatalogError| {
            Failure::new(
                Exit::Usage,
                e,
                "nothing",
                "fix the catalog directory given with --catalog, or drop the option to use the built-in catalog",
            )
        })
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Status(a) => status(&cli.global, a).await,
        Command::Plan(a) => plan_cmd(&cli.global, a).await,
        Command::Backup(a) => backup(&cli.global, a).await,
        Command::Verify(a) => verify(&cli.global, a).await,
        Command::Upgrade(a) => upgrade_cmd(&cli.global, a).await,
        Command::Resume(a) => resume_cmd(&cli.global, a, false).await,
        Command::Rollback(a) => resume_cmd(&cli.global, a, true).await,
        Command::Recover => recover_cmd(&cli.global).await,
        Command::Staging(StagingCommand::Up(a)) => staging_cmd::up(&cli.global, a).await,
        Command::Staging(StagingCommand::Down(a)) => staging_cmd::down(&cli.global, a).await,
        Command::Rehearse(a) => staging_cmd::rehearse(&cli.global, a).await,
        Command::Demo(DemoCommand::Up(a)) => demo::up(&cli.global, a).await,
        Command::Demo(DemoCommand::Down(a)) => demo::down(&cli.global, a).await,
        Command::Helper(a) => helper(a).await,
    }
}

pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn status(g: &Global, a: StatusArgs) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?;
    let docker = docker::connect().await.map_err(from_docker)?;
    let opts = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
    let observed = observe_full(&docker, &catalog.catalog, &opts).await.map_err(from_observe)?;
    let data = if a.data { Some(observe::data(&docker, &observed).await.map_err(from_observe)?) } else { None };
    let state = StateDir::new(g.state_dir());
    let project = observed.stack.project.clone();
    let report = StatusReport {
        interrupted: state.journal(&project),
        lock: state.lock_owner(&project),
        stack: observed.stack,
        data,
    };
    let healthy = report.stack.healthy && report.interrupted.is_none();
    if g.json {
        print_json(&report)?;
    } else {
        print!("{}", report::status::render(&report.stack));
        if let Some(j) = &report.interrupted {
            let names: Vec<&str> = j.stopped.iter().map(|s| s.service.as_str()).collect();
            let alive = if j.owner.is_dead() { "no longer runs" } else { "is still running" };
            println!(
                "\nINTERRUPTED: a {} started {} by pid {} on {} ({alive}) stopped {}; the next backup (or `recover`) starts them again.",
                j.operation,
                j.owner.started,
                j.owner.pid,
                j.owner.host,
                if names.is_empty() { "nothing".into() } else { names.join(", ") }
            );
        }
        if let Some(d) = &report.data {
            let docs: u64 = d.databases.iter().flat_map(|db| db.collections.iter()).map(|c| c.count).sum();
            println!(
                "\nData: {} databases, {docs} documents; artifacts: {}",
                d.databases.len(),
                d.artifacts.as_ref().map_or("not listed".into(), |a| format!("{} objects", a.len()))
            );
        }
    }
    Ok(if a.require_healthy && !healthy { Exit::Precondition } else { Exit::Ok })
}

async fn plan_cmd(g: &Global, a: PlanArgs) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?.catalog;
    let target = parse_version(&a.to)?;
    let start = match &a.from {
        Some(v) => plan::Start { release: parse_version(v)?, drift: vec![] },
        None => {
            let docker = docker::connect().await.map_err(from_docker)?;
            let opts = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
            let stack = observe(&docker, &catalog, &opts).await.map_err(from_observe)?;
            let release = stack.release.clone().ok_or_else(|| {
                Failure::new(
                    Exit::Precondition,
                    format!("the release of project {} is unknown: {}", stack.project, stack.unknown_tags.join(", ")),
                    "nothing",
                    "pass --from VERSION to plan from a known release",
                )
            })?;
            let drift = stack.services.iter().filter(|s| s.drift.is_some()).map(|s| s.name.clone()).collect();
            plan::Start { release, drift }
        }
    };
    let p = plan::plan(&start, &catalog, &target).map_err(from_plan)?;
    if g.json {
        print_json(&p)?;
    } else {
        print!("{}", report::plan::render(&p));
    }
    Ok(Exit::Ok)
}

pub fn progress(g: &Global) -> Progress {
    Progress::new(g.json, g.quiet)
}

async fn backup(g: &Global, a: BackupArgs) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?;
    let docker = docker::connect().await.map_err(from_docker)?;
    let state = StateDir::new(g.state_dir());
    let choice = match (a.skip_artifacts, a.artifacts_to) {
        (true, _) => Choice::Skip,
        (false, Some(d)) => Choice::To(d),
        (false, None) => Choice::Auto,
    };
    let opts =
        BackupOptions { out: a.out, skip_space_check: a.skip_space_check, artifacts: choice, grace: a.stop_timeout };
    let observe = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
    let outcome =
        backup::run(&docker, &catalog.catalog, &state, &observe, &opts, &progress(g)).await.map_err(from_backup)?;
    if g.json {
        let mut v = serde_json::to_value(&outcome)?;
        v["event"] = "result".into();
        println!("{v}");
    } else {
        let m = &outcome.manifest;
        let docs: u64 = m.databases.iter().flat_map(|d| d.collections.values()).sum();
        println!(
            "Backup of {} ({}) written to {}",
            m.project,
            m.mender_version.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            outcome.bundle.display()
        );
        println!(
            "  databases: {} ({docs} documents), archive {} MiB",
            m.databases.len(),
            m.files.iter().find(|f| f.path == "mongo.archive.gz").map_or(0, |f| f.size >> 20)
        );
        println!(
            "  artifacts: {} objects, {} MiB ({})",
            m.artifacts.objects,
            m.artifacts.bytes >> 20,
            m.artifacts.location
        );
        println!("  writers stopped for {:.1} s", outcome.downtime_secs);
        println!("Prove it: mender-compose-upgrade verify --restore-test {}", outcome.bundle.display());
    }
    if !outcome.restart_failures.is_empty() {
        return Err(Failure::new(
            Exit::Unexpected,
            format!(
                "the backup is complete, but these services did not start again: {}",
                outcome.restart_failures.join("; ")
            ),
            "the bundle is complete",
            "start them with `docker start <container>` or production/run up -d",
        )
        .into());
    }
    Ok(Exit::Ok)
}

async fn verify(g: &Global, a: VerifyArgs) -> anyhow::Result<Exit> {
    let docker = if a.restore_test { Some(docker::connect().await.map_err(from_docker)?) } else { None };
    let report = backup::verify::verify(&a.bundle, docker.as_ref(), &progress(g))
        .await
        .map_err(|e| Failure::new(Exit::Usage, e, "nothing", "give the directory of a bundle written by `backup`"))?;
    if g.json {
        print_json(&report)?;
    } else if report.ok {
        println!("{}: OK ({})", report.bundle.display(), report.checks.join(", "));
    }
    if report.ok {
        return Ok(Exit::Ok);
    }
    Err(Failure::new(
        Exit::Precondition,
        format!("the bundle {} failed verification:\n    {}", report.bundle.display(), report.problems.join("\n    ")),
        "the bundle was not changed except for the verification record in its manifest",
        "do not rely on this bundle; take a new backup",
    )
    .into())
}

/// Asks on the terminal; without one (or with --json) only `--yes` says yes.
pub fn asker(yes: bool, json: bool) -> impl Fn(&str) -> bool + Sync {
    move |question: &str| {
        if yes {
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
    }
}

async fn upgrade_cmd(g: &Global, a: UpgradeArgs) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?;
    let to = parse_version(&a.to)?;
    let compose = Compose::detect().await.map_err(from_compose)?;
    let docker = docker::connect().await.map_err(from_docker)?;
    let state = StateDir::new(g.state_dir());
    let progress = progress(g);
    let confirm = asker(a.yes, g.json);
    let ctx = upgrade::Ctx {
        docker: &docker,
        catalog: &catalog,
        state: &state,
        compose: &compose,
        registry: g.registry(),
        progress: &progress,
        hop_timeout: a.hop_timeout,
        grace: a.stop_timeout,
        confirm: &confirm,
    };
    let opts = upgrade::UpgradeOptions {
        to,
        dry_run: a.dry_run,
        max_backup_age: a.max_backup_age,
        use_bundle: None,
        require_rehearsal: a.require_rehearsal,
    };
    let outcome = upgrade::run(&ctx, g.project.as_deref(), &opts).await;
    progress.finish();
    print_upgrade(g, outcome.map_err(from_upgrade)?)
}

fn print_upgrade(g: &Global, o: upgrade::Outcome) -> anyhow::Result<Exit> {
    if g.json {
        let mut v = serde_json::to_value(&o)?;
        v["event"] = "result".into();
        println!("{v}");
        return Ok(Exit::Ok);
    }
    if o.dry_run {
        println!(
            "Dry run: the pre-flight checks passed; nothing was changed. The upgrade would go {} → {}.",
            o.from, o.to
        );
        for n in &o.advice {
            println!("{n}");
        }
        return Ok(Exit::Ok);
    }
    println!("{} now runs Mender Server {} (from {}).", o.project, o.to, o.from);
    for h in &o.hops {
        let steps: Vec<String> = h.timings.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect();
        println!("  {} → {}: {:.1} s ({})", h.from, h.to, h.total_secs, steps.join(", "));
    }
    for a in &o.advice {
        println!("Next: {a}");
    }
    if let Some(md) = &o.report_md {
        println!("Report: {}", md.display());
    }
    Ok(Exit::Ok)
}

/// The project a command acts on: `-p`, or the only Mender project on the daemon.
pub async fn project_name(g: &Global, docker: &bollard::Docker) -> Result<String, Failure> {
    if let Some(p) = &g.project {
        return Ok(p.clone());
    }
    let all = crate::engine::inspect::compose_summaries(docker).await.map_err(from_docker)?;
    crate::snapshot::discover::select(&all, None, g.registry()).map_err(|e| from_observe(ObserveError::Discover(e)))
}

async fn resume_cmd(g: &Global, a: ResumeArgs, back: bool) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?;
    let compose = Compose::detect().await.map_err(from_compose)?;
    let docker = docker::connect().await.map_err(from_docker)?;
    let state = StateDir::new(g.state_dir());
    let project = project_name(g, &docker).await?;
    let progress = progress(g);
    let confirm = asker(a.yes, g.json);
    let registry = state.journal(&project).and_then(|j| j.upgrade).and_then(|u| u.registry);
    let ctx = upgrade::Ctx {
        docker: &docker,
        catalog: &catalog,
        state: &state,
        compose: &compose,
        registry: registry.as_deref().or(g.registry()),
        progress: &progress,
        hop_timeout: a.hop_timeout,
        grace: a.stop_timeout,
        confirm: &confirm,
    };
    if back {
        let at = upgrade::rollback(&ctx, &project).await;
        progress.finish();
        let at = at.map_err(from_upgrade)?;
        if g.json {
            println!("{}", serde_json::json!({"event": "result", "project": project, "release": at}));
        } else {
            println!("{project} is back at Mender Server {at} and healthy.");
        }
        return Ok(Exit::Ok);
    }
    let outcome = upgrade::resume(&ctx, &project).await;
    progress.finish();
    print_upgrade(g, outcome.map_err(from_upgrade)?)
}

async fn recover_cmd(g: &Global) -> anyhow::Result<Exit> {
    let docker = docker::connect().await.map_err(from_docker)?;
    let state = StateDir::new(g.state_dir());
    let project = project_name(g, &docker).await?;
    let report = crate::backup::quiesce::recover(&docker, &state, &project)
        .await
        .map_err(|e| Failure::new(Exit::Precondition, e, "nothing", "see the message; `status` shows the services"))?;
    if g.json {
        print_json(&report)?;
    } else {
        for line in &report.lines {
            println!("{line}");
        }
    }
    Ok(Exit::Ok)
}

async fn helper(a: HelperArgs) -> anyhow::Result<Exit> {
    let req: crate::helper::Request = serde_json::from_str(&a.request)?;
    print_json(&crate::helper::run(req).await)?;
    Ok(Exit::Ok)
}

fn parse_version(s: &str) -> Result<Version, Failure> {
    let trimmed = s.trim().trim_start_matches('v');
    // "3.7" means the line's newest release the catalog knows; resolved by the planner's message.
    Version::parse(trimmed).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!("{s:?} is not a version (expected MAJOR.MINOR.PATCH, e.g. 3.7.11)"),
            "nothing",
            "give a full release version",
        )
    })
}

pub fn from_docker(e: DockerError) -> Failure {
    match e {
        DockerError::Unreachable { .. } => Failure::new(
            Exit::Precondition,
            e,
            "nothing (no Docker daemon was reached)",
            "start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)",
        ),
        other => Failure::new(
            Exit::Unexpected,
            other,
            "nothing was changed by this read-only command",
            "retry; if it persists, run with -v and report it",
        ),
    }
}

pub fn from_observe(e: ObserveError) -> Failure {
    match e {
        ObserveError::Docker(d) => from_docker(d),
        ObserveError::Discover(d @ DiscoverError::NoProject { .. }) => Failure::new(
            Exit::Precondition,
            d,
            "nothing",
            "start the Mender Server (production/run up -d), or use --image-registry when its images come from a mirror",
        ),
        ObserveError::Discover(d @ DiscoverError::Ambiguous { .. }) => {
            Failure::new(Exit::Usage, d, "nothing", "pass -p PROJECT")
        }
        ObserveError::Discover(d @ DiscoverError::NotFound { .. }) => {
            Failure::new(Exit::Usage, d, "nothing", "check the project name with `docker compose ls -a`")
        }
        ObserveError::Sidecar(s) => from_sidecar(s),
    }
}

pub fn from_sidecar(e: SidecarError) -> Failure {
    match e {
        SidecarError::Docker(d) => from_docker(d),
        other => Failure::new(
            Exit::Unexpected,
            other,
            "nothing in the stack was changed",
            "run with -v and report the error",
        ),
    }
}

pub fn from_plan(e: PlanError) -> Failure {
    let next = match &e {
        PlanError::Downgrade { to, .. } => {
            format!("to go back to {to}, restore a backup taken on {to}")
        }
        PlanError::SameVersion(_) => "nothing to do; `status` shows the next possible hops".to_string(),
        PlanError::NoFacts(_, stop) => {
            format!("plan to {stop}, the line's newest release the catalog knows")
        }
        PlanError::NotServerRelease(v, _) => {
            format!("the server line after 3.7 is 4.0: plan to 4.0.4 instead of {}", line_name(v))
        }
        PlanError::UnknownCurrent(_) => "pass --from with the release the stack really runs".to_string(),
        _ => "choose a release the catalog lists".to_string(),
    };
    Failure::new(Exit::Usage, e, "nothing", next)
}

pub fn from_compose(e: ComposeError) -> Failure {
    let next = match &e {
        ComposeError::V1(_) | ComposeError::NotFound => {
            "install Docker Compose v2 (the docker-compose-plugin package, or the docker-compose binary of a v2 release)"
        }
        _ => "see the compose error above",
    };
    Failure::new(Exit::Precondition, e, "nothing", next)
}

pub fn from_backup(e: BackupError) -> Failure {
    use crate::backup::artifacts::PlanError as A;
    let nothing = "nothing: no service was stopped and no bundle was written";
    let restarted = "the services were started again and no bundle was kept (the partial one was removed)";
    match e {
        BackupError::Observe(o) => from_observe(o),
        BackupError::Lock(l @ LockError::Held { .. }) => Failure::new(
            Exit::Precondition,
            l,
            nothing,
            "wait for that run to finish; if its process is gone on another host, remove the lock with `recover`",
        ),
        BackupError::Space { .. } => Failure::new(
            Exit::Precondition,
            e,
            nothing,
            "free space, or write the bundle elsewhere with --out DIR (or --skip-space-check if you know it fits)",
        ),
        BackupError::Artifacts(a @ A::Unversioned { .. }) => Failure::new(
            Exit::Precondition,
            a,
            nothing,
            "enable versioning on the bucket (aws s3api put-bucket-versioning --bucket B --versioning-configuration Status=Enabled), or copy the objects: --artifacts-to bundle, or --artifacts-to s3://BACKUP-BUCKET/PREFIX; or --skip-artifacts if they are protected otherwise",
        ),
        BackupError::Artifacts(a @ A::BadDestination(_)) => {
            Failure::new(Exit::Usage, a, nothing, "use --artifacts-to bundle or s3://BUCKET/PREFIX")
        }
        BackupError::Artifacts(a) => Failure::new(
            Exit::Precondition,
            a,
            nothing,
            "set the storage credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or --skip-artifacts",
        ),
        BackupError::UnknownRelease(_) | BackupError::MongoDown(..) => Failure::new(
            Exit::Precondition,
            e,
            nothing,
            "check `mender-compose-upgrade status` and bring the stack to health first",
        ),
        BackupError::Repair(_) => Failure::new(
            Exit::Precondition,
            e,
            "the stopped services are still stopped",
            "start them with production/run up -d, then run the backup again",
        ),
        BackupError::Dump(dump::DumpError::Write(ref io)) if io.raw_os_error() == Some(28) => Failure::new(
            Exit::Precondition,
            format!("the disk filled up while writing the dump: {e}"),
            restarted,
            "free space or use --out on a larger filesystem, then run the backup again",
        ),
        BackupError::Interrupted => {
            Failure::new(Exit::Interrupted, "the backup was interrupted", restarted, "run the backup again")
        }
        other => Failure::new(
            Exit::Unexpected,
            other,
            restarted,
            "run with -v for details, fix the cause, and run the backup again",
        ),
    }
}

pub fn from_upgrade(e: UpgradeError) -> Failure {
    let nothing = "nothing: no service was stopped and no file was changed";
    match e {
        UpgradeError::Observe(o) => from_observe(o),
        UpgradeError::Plan(p) => from_plan(p),
        UpgradeError::Compose(c) => from_compose(c),
        UpgradeError::Lock(l) => Failure::new(
            Exit::Precondition,
            l,
            nothing,
            "wait for that run to finish, or run `recover` if its process is gone",
        ),
        UpgradeError::Preflight(msg) => Failure::new(
            Exit::Precondition,
            msg,
            nothing,
            "fix what the pre-flight check names, then run the upgrade again (--dry-run checks without changing anything)",
        ),
        e @ UpgradeError::NotConfirmed(_) => Failure::new(
            Exit::Usage,
            e,
            "nothing beyond the hops already completed",
            "run it again and confirm, or pass --yes",
        ),
        e @ UpgradeError::NothingToResume(_) => {
            Failure::new(Exit::Usage, e, "nothing", "`status` shows the stack; `upgrade --to` starts an upgrade")
        }
        e @ UpgradeError::RolledBack { .. } => Failure::new(
            Exit::RolledBack,
            e,
            "the stack is healthy at the release it had before the failed hop, with its data",
            "read the report in the state directory's reports/, fix the cause (a rehearsal on staging shows it without downtime), and upgrade again",
        ),
        UpgradeError::RollbackFailed { hop, rollback, commands } => Failure::new(
            Exit::RollbackIncomplete,
            format!("{hop}; the rollback did not finish: {rollback}"),
            "the pre-hop dump, the saved compose files and the backup bundle are kept; the stack is NOT healthy",
            format!("finish the recovery by hand:\n    {}", commands.join("\n    ")),
        ),
        UpgradeError::Io(io) => {
            Failure::new(Exit::Unexpected, io, "see the journal in the state directory", "`recover` explains the state")
        }
    }
}
