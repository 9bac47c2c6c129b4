//! The command line as clap parses it: global options, the verbs and their arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backup::copy::Target;
use crate::demo;

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "mender-compose-upgrade",
    version,
    about = "Safe, hop-by-hop upgrades of a self-hosted Mender Server under Docker Compose"
)]
pub struct Cli {
    /// Options every verb takes.
    #[command(flatten)]
    pub global: Global,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Compose project of the Mender Server (default: the only project running Mender images).
    #[arg(short, long, global = true, env = "MENDER_COMPOSE_PROJECT")]
    pub project: Option<String>,
    /// One JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr: -v the compose calls, sidecars and steps; -vv their details.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colours (also honoured: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Where journals, locks, backups, reports and the demo live [default:
    /// $XDG_STATE_HOME/mender-compose-upgrade, else ~/.local/state/mender-compose-upgrade, else
    /// /var/lib/mender-compose-upgrade]
    #[arg(long, global = true, env = "MENDER_COMPOSE_UPGRADE_STATE", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Registry prefix of every catalog image: `PREFIX/mendersoftware/deployments:mender-3.6.5`
    /// (a private mirror; the test bed uses testbed.local).
    #[arg(long, global = true, env = "MENDER_IMAGE_REGISTRY")]
    pub image_registry: Option<String>,
    /// POST a JSON notification to URL when an upgrade, resume, rollback or restore starts,
    /// after every hop, at the end and on failure (repeatable; the variable takes a
    /// comma-separated list). A receiver that fails never fails the run.
    #[arg(long, global = true, value_name = "URL", env = "MENDER_COMPOSE_UPGRADE_NOTIFY", value_delimiter = ',', hide_env_values = true, value_parser = crate::engine::notify::parse_url)]
    pub notify: Vec<url::Url>,
    /// A catalog directory laid out like compose-templates/ instead of the built-in one.
    #[arg(long, global = true, env = "MENDER_COMPOSE_UPGRADE_CATALOG")]
    pub catalog: Option<PathBuf>,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Find the stack and report its release, services, health, databases and storage.
    Status(StatusArgs),
    /// Compute the hops from the running release (or --from) to a target release.
    Plan(PlanArgs),
    /// Take a full backup bundle: database dump, artifacts, compose configuration, manifest;
    /// `backup list` and `backup prune` manage the bundles in STATE_DIR/backups.
    Backup(BackupArgs),
    /// Prove a bundle: checksums, the archive read back, and optionally a real restore.
    Verify(VerifyArgs),
    /// Upgrade hop by hop to a release, rolling back a hop that fails.
    Upgrade(UpgradeArgs),
    /// Continue an interrupted upgrade from its journal.
    Resume(ResumeArgs),
    /// Undo the hop of an interrupted upgrade; with none, undo the last completed upgrade (or go
    /// back to --to), hop by hop, from the pre-hop dumps it kept.
    Rollback(RollbackArgs),
    /// List the upgrades, rollbacks and restores of the project, newest first.
    History,
    /// Put a backup bundle back into production exactly (databases, artifacts, compose files),
    /// after a safety bundle of the current state.
    Restore(RestoreArgs),
    /// Explain a stale lock or journal and repair it.
    Recover(RecoverArgs),
    /// An isolated staging copy of production, restored from a backup bundle.
    #[command(subcommand)]
    Staging(StagingCommand),
    /// Rehearse an upgrade on a staging copy: proves the backup, finds problems, measures the window.
    Rehearse(RehearseArgs),
    /// The embedded test-bed stack (stand-in images under testbed.local/).
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Print a shell completion script on stdout (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// The manual pages: the main page on stdout, one verb's page (`man upgrade`, `man staging
    /// up`), or every page into --out-dir.
    Man(ManArgs),
    /// Runs inside the helper sidecar (probes, MongoDB report).
    #[command(hide = true)]
    Helper(HelperArgs),
}

/// How long a hop's health gates may take.
#[derive(Args, Debug, Clone, Copy)]
pub struct HopTimeout {
    /// How long a hop's health gates may take (e.g. 10m, 90s).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub hop_timeout: Duration,
}

/// How long a service may take to stop.
#[derive(Args, Debug, Clone, Copy)]
pub struct StopTimeout {
    /// How long each service gets to stop before it is killed (e.g. 30s, 2m; a bare number is
    /// seconds). Whole seconds, as `docker stop` takes them.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = grace_seconds)]
    pub stop_timeout: i32,
}

/// `--stop-timeout`: a duration (`30s`, `2m`) or bare seconds (`30`), as whole seconds for the
/// Docker API's stop timeout (an `i32`).
///
/// # Errors
/// Not a duration, a fraction of a second, or more than `i32::MAX` seconds: the message clap
/// prints (exit 2).
fn grace_seconds(s: &str) -> Result<i32, String> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // Bare seconds stay accepted: `--stop-timeout 30` was the only form before durations.
        Duration::from_secs(t.parse::<u64>().map_err(|e| format!("{t}: {e}"))?)
    } else {
        humantime::parse_duration(t).map_err(|e| format!("{e} (expected e.g. 30s, 2m, or bare seconds)"))?
    };
    if d.subsec_nanos() != 0 {
        return Err(format!("{t}: the stop timeout is whole seconds (Docker counts it so)"));
    }
    i32::try_from(d.as_secs()).map_err(|_| format!("{t}: more than {} seconds", i32::MAX))
}

/// How old a bundle may be to be trusted.
#[derive(Args, Debug, Clone, Copy)]
pub struct MaxBackupAge {
    /// A verified backup older than this is not trusted: a new one is taken.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub max_backup_age: Duration,
}

/// `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Exit 3 unless every service is running and healthy.
    #[arg(long)]
    pub require_healthy: bool,
    /// Also read what the stack holds: every collection's document count and content digest,
    /// and the artifact store's inventory (a full read of the data; for before/after checks).
    #[arg(long)]
    pub data: bool,
    /// What the smoke check does beyond its fixed requests.
    #[command(flatten)]
    pub smoke: SmokeArgs,
}

/// `plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long)]
    pub to: String,
    /// Plan for a stack at this release instead of looking at the daemon.
    #[arg(long, conflicts_with = "out")]
    pub from: Option<String>,
    /// Save the plan, with the stack it was computed from, to FILE: `upgrade --plan FILE` then
    /// carries out exactly this plan, and refuses if the stack changed since.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `backup [OPTIONS]` takes a bundle; `backup list` and `backup prune` manage them. The options
/// are the taking's and conflict with the subcommands.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    /// `list` or `prune`; none: take a backup.
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
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
    /// Encrypt every file of the bundle (the manifest aside) to this age recipient (`age1…`, an
    /// X25519 public key from age-keygen); repeatable. Reading the bundle then needs --identity.
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in FILE (one `age1…` per line, `#` comments; like age's
    /// -R); repeatable.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Vec<PathBuf>,
    /// Once the bundle is complete, copy it off the host to s3://BUCKET[/PREFIX] or
    /// azure://CONTAINER[/PREFIX] (under PREFIX/<bundle name>/) and read every file back against the
    /// manifest's sha256. Credentials from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION; AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY).
    #[arg(long, value_name = "URL", value_parser = copy_target)]
    pub copy_to: Option<Target>,
    /// The S3-compatible server (or Azure blob endpoint) of --copy-to (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, else AWS itself).
    #[arg(long, value_name = "URL", requires = "copy_to")]
    pub endpoint_url: Option<String>,
    /// How long services may take to stop.
    #[command(flatten)]
    pub stop: StopTimeout,
}

/// `--identity FILE`: the age identity that decrypts an encrypted bundle.
#[derive(Args, Debug, Clone, Default)]
pub struct IdentityArg {
    /// The age identity file (age-keygen output, like `age -i`) that decrypts an encrypted
    /// bundle; not needed for a plain one. Keep it off the production host when you can.
    #[arg(long, value_name = "FILE", env = "MENDER_COMPOSE_UPGRADE_IDENTITY")]
    pub identity: Option<PathBuf>,
}

/// `backup copy BUNDLE --to URL`.
#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The bundle: its directory, or its name (or a unique start of it) in STATE_DIR/backups.
    pub bundle: String,
    /// s3://BUCKET[/PREFIX] or azure://CONTAINER[/PREFIX]; the bundle goes under PREFIX/<bundle name>/.
    #[arg(long, value_name = "URL", value_parser = copy_target)]
    pub to: Target,
    /// The S3-compatible server (or Azure blob endpoint) (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, else AWS itself).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// A `--copy-to`/`--to` destination (exit 2 for anything else).
fn copy_target(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.to_string())
}

/// `backup list|prune`.
#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// List the bundles in STATE_DIR/backups: age, release, project, size, how each was proven,
    /// and what still needs it.
    List,
    /// Remove the bundles no keep rule keeps (restic `forget` style: a bundle stays if any rule
    /// keeps it). Never removed: the newest restore-tested bundle of each stack, a bundle an
    /// interrupted run's journal or a staging copy needs, a bundle of a project another run holds
    /// the lock of, a bundle whose manifest cannot be read.
    Prune(PruneArgs),
    /// Copy an existing bundle off the host (as `backup --copy-to` does for a new one) and read every
    /// file back against the manifest's sha256. The local bundle is kept; a failed copy exits 6.
    Copy(CopyArgs),
}

/// `backup prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Keep the newest N bundles of each project.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: Option<u32>,
    /// Keep the bundles taken within DURATION of each project's newest bundle (e.g. 30d, 2w, 12h).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub keep_within: Option<Duration>,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A humantime duration longer than zero (`--keep-within 0s` would keep nothing by time).
fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (expected e.g. 30d, 2w, 12h)")),
    }
}

/// `upgrade`.
#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long, required_unless_present = "plan", conflicts_with = "plan")]
    pub to: Option<String>,
    /// Carry out the plan saved by `plan --to V --out FILE`, exactly as reviewed: refused (exit 3,
    /// nothing changed) when the stack or the catalog changed since it was saved.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask: take the plan and every manual step as confirmed.
    #[arg(long, short)]
    pub yes: bool,
    /// Run the pre-flight checks and show what would happen, then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a hop's gates may take.
    #[command(flatten)]
    pub hop_timeout: HopTimeout,
    /// How old the starting bundle may be.
    #[command(flatten)]
    pub max_backup_age: MaxBackupAge,
    /// How long services may take to stop.
    #[command(flatten)]
    pub stop: StopTimeout,
    /// Refuse unless a rehearsal (`rehearse --to`) of this target proved the backup it starts from.
    #[arg(long)]
    pub require_rehearsal: bool,
    /// Keep a hop that mounts other deviceauth or useradm signing keys than the backup recorded
    /// (without it such a hop is rolled back: a new key logs out every user and makes every
    /// device authenticate again).
    #[arg(long)]
    pub accept_new_keys: bool,
    /// What the smoke check does beyond its fixed requests.
    #[command(flatten)]
    pub smoke: SmokeArgs,
}

/// `resume` (and how `rollback` runs).
#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Do not ask for confirmations.
    #[arg(long, short)]
    pub yes: bool,
    /// How long a hop's gates may take.
    #[command(flatten)]
    pub hop_timeout: HopTimeout,
    /// How long services may take to stop.
    #[command(flatten)]
    pub stop: StopTimeout,
    /// What the smoke check after each step does beyond its fixed requests.
    #[command(flatten)]
    pub smoke: SmokeArgs,
}

/// `rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// After a completed upgrade: the earlier release to go back to (default: where the last
    /// upgrade started).
    #[arg(long)]
    pub to: Option<String>,
    /// How it runs: confirmations, timeouts.
    #[command(flatten)]
    pub run: ResumeArgs,
}

/// `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The bundle: its directory, or its name (or a unique start of it) in STATE_DIR/backups.
    pub bundle: String,
    /// Do not take a safety bundle of the current state first (when it is not worth keeping).
    #[arg(long)]
    pub no_safety_backup: bool,
    /// The identity for an encrypted bundle.
    #[command(flatten)]
    pub identity: IdentityArg,
    /// How it runs: confirmations, timeouts.
    #[command(flatten)]
    pub run: ResumeArgs,
}

/// `recover`.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Drop an interrupted upgrade's journal (after you confirm), leaving the stack as it is: for
    /// when you have finished or undone it by hand. Its pre-hop dumps are kept.
    #[arg(long)]
    pub abandon: bool,
    /// Do not ask before abandoning.
    #[arg(long, short)]
    pub yes: bool,
}

/// `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle: its directory, or its name (or a unique start of it) in STATE_DIR/backups.
    pub bundle: String,
    /// Also restore the archive with mongorestore into a throwaway container of the same mongo
    /// image and compare every collection's count and content.
    #[arg(long)]
    pub restore_test: bool,
    /// The identity for an encrypted bundle (without it, only the checksums are checked).
    #[command(flatten)]
    pub identity: IdentityArg,
}

/// `staging up|down`.
#[derive(Subcommand, Debug)]
pub enum StagingCommand {
    /// Restore a bundle into an isolated copy of its project and start it.
    Up(StagingUpArgs),
    /// Remove a staging copy: exactly the containers, networks and volumes labelled for it.
    Down(StagingDownArgs),
}

/// `staging up`.
#[derive(Args, Debug)]
pub struct StagingUpArgs {
    /// The backup bundle to restore: its directory, or its name (or a unique start of it) in
    /// STATE_DIR/backups.
    #[arg(long = "from", value_name = "BUNDLE")]
    pub bundle: String,
    /// Name of the staging project (default: PROJECT-staging).
    #[arg(long)]
    pub name: Option<String>,
    /// How long the staging copy may take to pass its health gates.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The identity for an encrypted bundle.
    #[command(flatten)]
    pub identity: IdentityArg,
    /// What the smoke check of the copy does beyond its fixed requests (the copy holds
    /// production's users, so --smoke-user logs in to it as to production).
    #[command(flatten)]
    pub smoke: SmokeArgs,
}

/// `staging down`.
#[derive(Args, Debug)]
pub struct StagingDownArgs {
    /// Name of the staging project (default: PROJECT-staging).
    #[arg(long)]
    pub name: Option<String>,
}

/// `rehearse`.
#[derive(Args, Debug)]
pub struct RehearseArgs {
    /// Target release, e.g. 3.7.11.
    #[arg(long)]
    pub to: String,
    /// The bundle to restore into staging (default: the newest proven one younger than
    /// --max-backup-age, else a new backup after confirmation): its directory, or its name (or a
    /// unique start of it) in STATE_DIR/backups.
    #[arg(long = "from", value_name = "BUNDLE")]
    pub bundle: Option<String>,
    /// Name of the staging project (default: PROJECT-staging).
    #[arg(long)]
    pub name: Option<String>,
    /// Leave the staging copy running afterwards (remove it with `staging down`).
    #[arg(long)]
    pub keep: bool,
    /// Do not ask before taking a backup.
    #[arg(long, short)]
    pub yes: bool,
    /// How long a hop's gates may take.
    #[command(flatten)]
    pub hop_timeout: HopTimeout,
    /// How old the bundle may be.
    #[command(flatten)]
    pub max_backup_age: MaxBackupAge,
    /// The identity for an encrypted bundle.
    #[command(flatten)]
    pub identity: IdentityArg,
    /// What the smoke check of the copy does beyond its fixed requests (the copy holds
    /// production's users, so --smoke-user logs in to it as to production).
    #[command(flatten)]
    pub smoke: SmokeArgs,
}

/// `demo up|down`.
#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Bring up a seeded test-bed stack laid out like a production integration checkout.
    Up(Box<demo::UpArgs>),
    /// Stop and remove the demo stack.
    Down(demo::DownArgs),
}

/// `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write every page (mender-compose-upgrade.1 and one per verb, e.g.
    /// mender-compose-upgrade-upgrade.1) into this directory instead of one page on stdout.
    #[arg(long, value_name = "DIR", conflicts_with = "verb")]
    pub out_dir: Option<PathBuf>,
    /// The verb whose page goes to stdout (`upgrade`, `staging up`; default: the main page).
    #[arg(value_name = "VERB")]
    pub verb: Vec<String>,
}

/// `helper` (inside the sidecar).
#[derive(Args, Debug)]
pub struct HelperArgs {
    /// The request, as JSON.
    #[arg(long)]
    pub request: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["mcu", "upgrade", "--to", "3.7.11", "--hop-timeout", "90s", "--stop-timeout", "5"])
                .unwrap();
        let Command::Upgrade(a) = cli.command else { panic!("not upgrade") };
        assert_eq!((a.hop_timeout.hop_timeout, a.stop.stop_timeout), (Duration::from_secs(90), 5));
        assert_eq!(a.max_backup_age.max_backup_age, Duration::from_secs(24 * 3600));
    }

    fn backup(args: &[&str]) -> Result<BackupArgs, clap::Error> {
        let cli = Cli::try_parse_from(["mcu"].iter().chain(args))?;
        let Command::Backup(b) = cli.command else { panic!("not backup") };
        Ok(b)
    }

    #[test]
    fn backup_takes_a_bundle_and_lists_and_prunes_as_subcommands() {
        // Taking a backup keeps its command line (operators and tests use it).
        let b = backup(&["backup", "--out", "/x", "--skip-space-check", "--stop-timeout", "5"]).unwrap();
        assert!(b.command.is_none() && b.skip_space_check && b.out.as_deref() == Some(std::path::Path::new("/x")));
        assert!(backup(&["--json", "backup"]).unwrap().command.is_none());
        assert!(matches!(backup(&["--json", "backup", "list"]).unwrap().command, Some(BackupCommand::List)));
        let Some(BackupCommand::Prune(p)) =
            backup(&["backup", "prune", "--keep-last", "3", "--keep-within", "30d", "--dry-run"]).unwrap().command
        else {
            panic!("not prune")
        };
        assert_eq!((p.keep_last, p.keep_within, p.dry_run), (Some(3), Some(Duration::from_secs(30 * 86400)), true));
        // No rule parses (prune itself refuses it, naming what to add); bad rules do not.
        assert!(backup(&["backup", "prune"]).is_ok());
        assert!(backup(&["backup", "prune", "--keep-last", "0"]).is_err());
        assert!(backup(&["backup", "prune", "--keep-within", "0s"]).is_err());
        assert!(backup(&["backup", "prune", "--keep-within", "soon"]).is_err());
        // A taking option with a subcommand is an error, not silently ignored.
        assert!(backup(&["backup", "--skip-artifacts", "list"]).is_err());
    }

    #[test]
    fn copies_off_the_host_take_a_destination_url() {
        let b = backup(&["backup", "--copy-to", "s3://b/nightly", "--endpoint-url", "http://s3:8333"]).unwrap();
        assert_eq!(b.copy_to, Some(Target::S3 { bucket: "b".into(), prefix: "nightly".into() }));
        assert_eq!(b.endpoint_url.as_deref(), Some("http://s3:8333"));
        // Not a destination: a usage error from the parser, before anything runs.
        let e = backup(&["backup", "--copy-to", "/mnt/backups"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        // An endpoint alone means nothing.
        assert!(backup(&["backup", "--endpoint-url", "http://s3:8333"]).is_err());
        let Some(BackupCommand::Copy(c)) =
            backup(&["backup", "copy", "menderproduction-3.7", "--to", "azure://c/host1"]).unwrap().command
        else {
            panic!("not copy")
        };
        assert_eq!((c.bundle.as_str(), c.to.url()), ("menderproduction-3.7", "azure://c/host1".to_string()));
        assert!(backup(&["backup", "copy", "x"]).is_err(), "--to is required");
        assert!(backup(&["backup", "--copy-to", "s3://b", "copy", "x", "--to", "s3://b"]).is_err());
    }

    #[test]
    fn stop_timeout_takes_durations_and_bare_seconds() {
        assert_eq!(grace_seconds("30"), Ok(30));
        assert_eq!(grace_seconds("30s"), Ok(30));
        assert_eq!(grace_seconds("2m"), Ok(120));
        assert_eq!(grace_seconds("1m 30s"), Ok(90));
        assert_eq!(grace_seconds("0"), Ok(0));
        assert!(grace_seconds("1.5s").unwrap_err().contains("whole seconds"));
        assert!(grace_seconds("500ms").unwrap_err().contains("whole seconds"));
        assert!(grace_seconds("soon").unwrap_err().contains("expected e.g. 30s"));
        assert!(grace_seconds("-5").is_err());
        assert!(grace_seconds("100y").unwrap_err().contains("more than"));
        // The default is the 30 s it always was.
        let cli = Cli::try_parse_from(["mcu", "backup"]).unwrap();
        let Command::Backup(a) = cli.command else { panic!("not backup") };
        assert_eq!(a.stop.stop_timeout, 30);
    }
}

/// The smoke check's options (`status`, `upgrade`, `resume`, `rollback`, `restore`, `staging up`, `rehearse`).
#[derive(Args, Debug, Clone)]
pub struct SmokeArgs {
    /// How many of the artifacts the deployments database references the smoke check looks for
    /// in the store, each with its recorded size: a number (a new random sample every run; 0
    /// turns the check off) or `all`.
    #[arg(long, value_name = "N|all", default_value_t = crate::snapshot::smoke::ArtifactSample::default())]
    pub artifact_sample: crate::snapshot::smoke::ArtifactSample,
    /// An operator's login (e-mail) for the smoke check: log in through the gateway, count the
    /// devices and artifacts, download one artifact through the storage proxy. The password is
    /// read from the environment variable MENDER_SMOKE_PASSWORD or from --smoke-password-file,
    /// never from a flag.
    #[arg(long, value_name = "EMAIL")]
    pub smoke_user: Option<String>,
    /// A file whose first line is the --smoke-user's password (instead of MENDER_SMOKE_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "smoke_user")]
    pub smoke_password_file: Option<PathBuf>,
}

pub use crate::snapshot::smoke::SMOKE_PASSWORD_ENV;

impl SmokeArgs {
    /// The smoke check's options, the password read from `--smoke-password-file` or
    /// [`SMOKE_PASSWORD_ENV`].
    ///
    /// # Errors
    /// A usage [`Failure`](crate::exit::Failure) (exit 2) for a `--smoke-user` without a password,
    /// or a password file that cannot be read or is empty; its message never holds the password.
    pub fn options(&self) -> Result<crate::snapshot::smoke::SmokeOptions, crate::exit::Failure> {
        use crate::exit::{Exit, Failure, UNCHANGED_ALL};
        let credentials = match &self.smoke_user {
            None => None,
            Some(user) => {
                let password = match &self.smoke_password_file {
                    Some(path) => {
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            Failure::new(
                                Exit::Usage,
                                format!("cannot read the smoke check's password file {}: {e}", path.display()),
                                UNCHANGED_ALL,
                                "give a readable file whose first line is the password",
                            )
                        })?;
                        text.lines().next().unwrap_or_default().to_string()
                    }
                    None => std::env::var(SMOKE_PASSWORD_ENV).unwrap_or_default(),
                };
                if password.is_empty() {
                    return Err(Failure::new(
                        Exit::Usage,
                        format!("--smoke-user {user} has no password"),
                        UNCHANGED_ALL,
                        format!(
                            "put it in the environment variable {SMOKE_PASSWORD_ENV}, or in a file given with --smoke-password-file (never on the command line)"
                        ),
                    ));
                }
                Some(crate::snapshot::smoke::Credentials::new(user.clone(), password))
            }
        };
        Ok(crate::snapshot::smoke::SmokeOptions { artifact_sample: self.artifact_sample, credentials })
    }
}
