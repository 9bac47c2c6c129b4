//! What can go wrong in an upgrade, and what the operator is told for each (exit code, what was
//! left as it was, what to do next).

use semver::Version;

use super::runtime::MongoReadError;
use super::step::Point;
use crate::backup::dump::DumpError;
use crate::backup::quiesce::QuiesceError;
use crate::backup::restore::RestoreError;
use crate::backup::{BackupError, verify::VerifyError};
use crate::engine::compose::ComposeError;
use crate::engine::git::GitError;
use crate::engine::sidecar::SidecarError;
use crate::exit::{Exit, Failure};
use crate::plan::PlanError;
use crate::snapshot::observe::ObserveError;
use crate::state::LockError;

use super::rewrite::RewriteError;

/// A check before any downtime failed: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// An earlier run left its journal.
    #[error(
        "an interrupted {operation} (pid {pid}, started {started}) left a journal; run `resume` or `rollback` (upgrade) or `recover` first"
    )]
    Interrupted {
        /// `backup`, `upgrade`, …
        operation: String,
        /// Its process.
        pid: u32,
        /// When it started.
        started: String,
    },
    /// No catalog release matches the stack's images.
    #[error("the release of project {project} is unknown: {tags}")]
    UnknownRelease {
        /// The project.
        project: String,
        /// The image tags the catalog does not know.
        tags: String,
    },
    /// The project is a staging copy but was named as production.
    #[error("project {0} is a staging copy made by this tool; `rehearse --to` upgrades staging copies")]
    StagingProject(String),
    /// The containers do not say how compose was run.
    #[error("the containers of project {0} carry no compose working directory label")]
    NoProjectLabels(String),
    /// Compose v1 created the containers, and the first hop's recreation under Compose v2 would
    /// leave a named volume behind: the compose files name no volume of that Docker name.
    #[error(
        "the containers were created by Compose v1 and the first hop recreates them under Compose v2, but volume {volume} (mounted by {service} at {target}) is not a volume of the compose files, so the new container would not get it: {why}"
    )]
    V1VolumeLost {
        /// The service that mounts it.
        service: String,
        /// The Docker volume's name.
        volume: String,
        /// Where the container mounts it.
        target: String,
        /// What the compose files say instead.
        why: String,
    },
    /// Compose v1 labelled its files relative to the directory it ran in, and no directory of
    /// the project fits them.
    #[error(
        "the containers were created by Compose v1, which recorded the compose files relative to the directory it ran in ({files}); no directory in or below {working_dir} holds them all. Bring the stack up once with Compose v2 (`docker compose … up -d`, the same files), then upgrade"
    )]
    V1Files {
        /// The working directory label.
        working_dir: String,
        /// The files as labelled.
        files: String,
    },
    /// The plan file the operator reviewed no longer fits the stack.
    #[error(transparent)]
    SavedPlan(crate::plan::saved::SavedPlanError),
    /// `docker compose config --format json` printed something that is not JSON.
    #[error("`docker compose config --format json` printed no JSON this tool can read: {0}")]
    ComposeConfig(String),
    /// The stack fails the gates before anything is done.
    #[error("the stack is not healthy, and an upgrade starts only from a healthy stack:\n    {}", .0.join("\n    "))]
    Unhealthy(Vec<String>),
    /// A hop this version cannot carry out.
    #[error("hop {from} → {to} cannot be carried out by this version: {why}")]
    NotExecutable {
        /// The hop's release before.
        from: Version,
        /// The hop's release after.
        to: Version,
        /// Why.
        why: String,
    },
    /// Images of the plan are neither present nor pullable.
    #[error("images of the plan are missing and could not be pulled:\n    {}", .0.join("\n    "))]
    ImagesMissing(Vec<String>),
    /// Not enough room for the pre-hop dumps.
    #[error("not enough free space in {dir} for the pre-hop dumps: about {need_mib} MiB needed, {free_mib} MiB free")]
    Space {
        /// The state directory.
        dir: String,
        /// MiB needed.
        need_mib: u64,
        /// MiB free.
        free_mib: u64,
    },
    /// `--require-rehearsal` and no rehearsal proved the bundle.
    #[error(
        "no rehearsal of {0} proved the backup this upgrade starts from (--require-rehearsal); run `rehearse --to {0}` first"
    )]
    NoRehearsal(Version),
    /// The backup taken before the first hop failed.
    #[error("the backup before the upgrade failed: {0}")]
    Backup(#[source] Box<BackupError>),
    /// The backup taken before the first hop did not verify.
    #[error("the backup {bundle} failed its restore test: {problems}")]
    BackupUnproven {
        /// The bundle.
        bundle: String,
        /// What verify found.
        problems: String,
    },
    /// The new bundle could not be read back.
    #[error("the backup before the upgrade could not be verified: {0}")]
    Verify(#[from] VerifyError),
    /// Data a hop would lose is still there (pending jobs of a queue the hop replaces).
    #[error(transparent)]
    DataCheck(Box<DataRefusal>),
    /// The project is a git clone, and merging a hop's tag would not be clean.
    #[error("the project's git clone cannot take tag {tag}: {why}")]
    CloneConflict {
        /// The tag of the hop's release.
        tag: String,
        /// What is in the way, and what to do.
        why: String,
    },
    /// A MongoDB stage needs the featureCompatibilityVersion to equal the running major first
    /// (mongodb docs `6.0-upgrade-standalone`: "the featureCompatibilityVersion must be 5.0").
    #[error(
        "MongoDB {major} runs with featureCompatibilityVersion {found}, and the next major refuses such data; set it first: docker exec {container} mongosh --quiet --eval 'db.adminCommand({{setFeatureCompatibilityVersion: \"{major}\"{confirm}}})'"
    )]
    Fcv {
        /// The running major (`5.0`).
        major: String,
        /// The featureCompatibilityVersion found (`4.4`, or `unknown`).
        found: String,
        /// The mongo container.
        container: String,
        /// `, confirm: true` from 7.0 on.
        confirm: String,
    },
    /// A MongoDB stage cannot name the data volume it copies.
    #[error("the MongoDB stage cannot copy the data volume: {0}")]
    DataVolume(String),
    /// A MongoDB stage's copy volume exists already: copying over it could destroy the only copy
    /// of data (a stage that was rolled back leaves its copy, with whatever was written on it).
    #[error(
        "volume {copy} already exists: the MongoDB stage would copy {from} over it, and it may hold data written after an earlier stage that was rolled back"
    )]
    CopyExists {
        /// The existing copy (`mender-db-5.0`).
        copy: String,
        /// The volume the stage copies from.
        from: String,
    },
    /// Not enough room for the copies of the data volume.
    #[error(
        "not enough free space in {dir} for the MongoDB stages' volume copies: about {need_mib} MiB needed, {free_mib} MiB free"
    )]
    CopySpace {
        /// Docker's root directory.
        dir: String,
        /// MiB needed.
        need_mib: u64,
        /// MiB free.
        free_mib: u64,
    },
    /// The compose rewrite of the first hop cannot be computed.
    #[error("the compose files of hop {0}: {1}")]
    Rewrite(String, #[source] StepError),
    /// The state directory.
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
}

/// A hop refused because of data it would lose.
#[derive(Debug, thiserror::Error)]
#[error(
    "hop {from} → {to} is refused: {} {what} in {place}. {why}",
    .count.map_or_else(|| "an unknown number of".to_string(), |n| n.to_string())
)]
pub struct DataRefusal {
    /// The hop's release before.
    pub from: Version,
    /// The hop's release after.
    pub to: Version,
    /// What the documents are.
    pub what: String,
    /// `db.collection`.
    pub place: String,
    /// How many there are (`None`: they could not be counted).
    pub count: Option<u64>,
    /// Why they must be gone, and what to do.
    pub why: String,
}

/// Why a step of a hop failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A compose command.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Reading the stack.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The helper sidecar.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// Reading MongoDB.
    #[error(transparent)]
    Mongo(#[from] MongoReadError),
    /// The pre-hop dump.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// Restoring the pre-hop dump.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Stopping services.
    #[error(transparent)]
    Quiesce(#[from] QuiesceError),
    /// Computing the compose rewrite.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// The artifact store.
    #[error(transparent)]
    Store(#[from] crate::engine::store::StoreError),
    /// The artifact store's settings.
    #[error("the artifact store: {0}")]
    Storage(String),
    /// A file of the project or of the run directory.
    #[error("{what}: {source}")]
    File {
        /// Which file, and what was done to it.
        what: String,
        /// The file system's answer.
        source: std::io::Error,
    },
    /// The journal could not be written.
    #[error("the journal: {0}")]
    Journal(#[source] std::io::Error),
    /// The project has no network for the service the step needs.
    #[error("the project has no network its {0} service is on")]
    NoNetwork(String),
    /// The stack has no MongoDB container.
    #[error("the stack has no MongoDB container ({0})")]
    NoMongo(String),
    /// A release of the plan is not in the catalog (the catalog changed since the plan).
    #[error("no release {0} in the catalog")]
    NoRelease(Version),
    /// The helper did not answer the featureCompatibilityVersion step, or refused it.
    #[error("featureCompatibilityVersion: {0}")]
    Fcv(String),
    /// A `migrate` one-shot failed.
    #[error("{service}: {source}")]
    Migrate {
        /// The compose service.
        service: String,
        /// The compose failure.
        source: ComposeError,
    },
    /// The operator asked for the rollback (`rollback`): nothing failed.
    #[error("requested")]
    Requested,
    /// The operator did not confirm the hop's manual steps.
    #[error("the manual steps were not confirmed")]
    NotConfirmed,
    /// The gates did not pass in time.
    #[error("{}", .0.join("; "))]
    Gates(Vec<String>),
    /// Services that did not start again.
    #[error("could not start again: {}", .0.join("; "))]
    Start(Vec<String>),
    /// The project's git clone.
    #[error(transparent)]
    Git(#[from] GitError),
    /// `MENDER_COMPOSE_UPGRADE_FAULT=fail-after:<step>` (test-only, README).
    #[error("a failure injected after step {0} (MENDER_COMPOSE_UPGRADE_FAULT)")]
    Injected(String),
}

impl StepError {
    /// A failure of the project's git clone.
    pub fn git(e: GitError) -> StepError {
        StepError::Git(e)
    }

    /// A failure on a file, naming it and what was done.
    pub fn file(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
        let what = what.into();
        move |source| StepError::File { what, source }
    }
}

/// Which hop failed, where and why (boxed in the errors: it is large).
///
/// Worded after what the operator saw in the plan: "hop 3.4.0 → 3.6.5 failed at step gates: …",
/// or for a MongoDB stage (whose releases are the same) "the MongoDB 4.4 → 5.0 stage at 3.6.5
/// failed at step mongo: …".
#[derive(Debug, thiserror::Error)]
#[error("{} failed at step {point}: {error}", self.what())]
pub struct HopFailed {
    /// The hop's release before.
    pub from: Version,
    /// The hop's release after.
    pub to: Version,
    /// The MongoDB majors (`4.4`, `5.0`) when the hop is a MongoDB stage; `None` for an
    /// application hop.
    pub stage: Option<(String, String)>,
    /// Where it failed.
    pub point: Point,
    /// Why.
    pub error: StepError,
}

impl HopFailed {
    /// The failure of `hop` at `point`.
    pub fn of(hop: &crate::plan::Hop, point: Point, error: StepError) -> HopFailed {
        let stage =
            hop.mongo.as_ref().filter(|_| hop.is_mongo_stage()).map(|m| (m.from_major.clone(), m.to_major.clone()));
        HopFailed { from: hop.from.clone(), to: hop.to.clone(), stage, point, error }
    }

    /// What failed, as the plan names it: "hop 3.4.0 → 3.6.5", "the MongoDB 4.4 → 5.0 stage at
    /// 3.6.5".
    pub fn what(&self) -> String {
        match &self.stage {
            Some((a, b)) => format!("the MongoDB {a} → {b} stage at {}", self.to),
            None => format!("hop {} → {}", self.from, self.to),
        }
    }
}

/// Why `upgrade`, `resume` or `rollback` stopped.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Reading the stack before anything was done.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// Another run holds the project's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The target is not a valid plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// No usable compose.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A pre-flight check failed: nothing was changed.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The operator said no.
    #[error("the upgrade needs your go-ahead: {0}")]
    NotConfirmed(String),
    /// `resume` or `rollback` found no interrupted upgrade.
    #[error("no interrupted upgrade of project {0} to continue")]
    NothingToResume(String),
    /// `resume` of an interrupted rollback: only `rollback` finishes it.
    #[error("the run interrupted on {0} was a rollback, not an upgrade")]
    RollbackPending(String),
    /// `rollback` of an upgrade that had not started a hop.
    #[error("the upgrade of {0} had not started a hop: nothing to roll back")]
    NothingToRollBack(String),
    /// `rollback` after a completed upgrade has nothing it can undo to reach the release asked.
    #[error("no way back to {to}: {why}")]
    NoWayBack {
        /// The release asked for.
        to: Version,
        /// Why the kept dumps do not lead there.
        why: String,
    },
    /// `rollback --to V` with V not older than the running release: a rollback only goes back.
    #[error("rollback goes back: {to} is not older than the running release {live}")]
    RollbackNotOlder {
        /// The release asked for.
        to: Version,
        /// The release the stack runs.
        live: Version,
    },
    /// A hop failed and was rolled back; the stack is healthy at `at`.
    #[error("{hop}; rolled back to {at} ({how})")]
    RolledBack {
        /// The failure.
        hop: Box<HopFailed>,
        /// The release the stack is at now.
        at: Version,
        /// Image swap or data restore.
        how: String,
    },
    /// A hop failed and the rollback did not bring the stack back to health.
    #[error("{hop}; the rollback did not finish: {rollback}")]
    RollbackFailed {
        /// The failure.
        hop: Box<HopFailed>,
        /// Why the rollback stopped.
        rollback: Box<StepError>,
        /// The commands that finish the recovery by hand.
        commands: Vec<String>,
    },
    /// A hop failed because the Docker daemon stopped answering (stopped, restarted, crashed):
    /// nothing could be rolled back, so nothing was tried; the journal holds where it stopped.
    #[error("{hop}; the Docker daemon stopped answering, so nothing was rolled back")]
    DaemonLost {
        /// The failure.
        hop: Box<HopFailed>,
        /// The project (for the commands to run next).
        project: String,
    },
    /// SIGINT or SIGTERM: the run stopped at a safe point; its journal holds where.
    #[error("interrupted during {during}")]
    Interrupted {
        /// The step (or moment) the signal arrived in.
        during: String,
        /// Where the upgrade stands and what `resume` and `rollback` would do.
        advice: Vec<String>,
    },
    /// The state directory, between steps.
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether an error's text says a disk is full: the kernel's ENOSPC text, SQLite's (FerretDB's
/// backend) and mongod's (`WT_ERROR … No space left on device`).
pub fn out_of_space(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["no space left on device", "disk is full", "enospc"].iter().any(|n| t.contains(n))
}

impl From<UpgradeError> for Failure {
    fn from(e: UpgradeError) -> Failure {
        let nothing = "everything: no service was stopped and no file was changed";
        let text = e.to_string();
        match e {
            UpgradeError::Observe(o) => o.into(),
            UpgradeError::Plan(p) => p.into(),
            UpgradeError::Compose(c) => c.into(),
            UpgradeError::Lock(l) => l.into(),
            UpgradeError::Preflight(p) => {
                let next = match &p {
                    PreflightError::StagingProject(_) => "name the production project with -p, or use `rehearse --to`",
                    PreflightError::Interrupted { .. } => "`status` shows where it stopped",
                    PreflightError::CopyExists { .. } => {
                        "see what that volume holds (it is the data of an earlier MongoDB stage), keep what you need, remove it with `docker volume rm`, then run the upgrade again"
                    }
                    PreflightError::SavedPlan(_) => {
                        "review the plan again (`plan --to VERSION --out FILE`), then `upgrade --plan FILE`"
                    }
                    _ => {
                        "fix what the pre-flight check names, then run the upgrade again (--dry-run checks without changing anything)"
                    }
                };
                Failure::new(Exit::Precondition, p, nothing, next)
            }
            e @ UpgradeError::NotConfirmed(_) => Failure::new(
                Exit::Usage,
                e,
                "everything: no hop was started, no service was stopped, no file was changed",
                "run it again and confirm, or pass --yes",
            ),
            UpgradeError::RollbackPending(p) => Failure::new(
                Exit::Usage,
                format!("the run interrupted on {p} was a rollback, not an upgrade"),
                crate::exit::UNCHANGED_ALL,
                format!("`mender-compose-upgrade -p {p} rollback` finishes it"),
            ),
            e @ UpgradeError::NoWayBack { .. } => Failure::new(
                Exit::Precondition,
                e,
                crate::exit::UNCHANGED_ALL,
                "`history` lists the upgrades and their dumps; a bundle of that release of this stack goes back with `restore BUNDLE`",
            ),
            UpgradeError::RollbackNotOlder { ref to, .. } => {
                let next =
                    format!("`upgrade --to {to}` goes forward; `history` lists the releases a rollback can go back to");
                Failure::new(Exit::Usage, e, crate::exit::UNCHANGED_ALL, next)
            }
            e @ (UpgradeError::NothingToResume(_) | UpgradeError::NothingToRollBack(_)) => Failure::new(
                Exit::Usage,
                e,
                crate::exit::UNCHANGED_ALL,
                "`status` shows the stack; `upgrade --to` starts an upgrade",
            ),
            e @ UpgradeError::RolledBack { .. } => Failure::new(
                Exit::RolledBack,
                e,
                "the stack is healthy at the release it had before the failed hop, with its data",
                "read the report in the state directory's reports/, fix the cause (a rehearsal on staging shows it without downtime), and upgrade again",
            ),
            UpgradeError::RollbackFailed { rollback, commands, .. } => Failure::new(
                Exit::RollbackIncomplete,
                text,
                "the pre-hop dump, the saved compose files and the backup bundle are kept; the stack is NOT healthy",
                format!(
                    "{}finish the recovery:\n    {}",
                    if out_of_space(&rollback.to_string()) {
                        "a disk is full: free space where Docker keeps its volumes (`df -h`, `docker system df`) \
                         first; then "
                    } else {
                        ""
                    },
                    commands.join("\n    ")
                ),
            ),
            UpgradeError::DaemonLost { project, .. } => Failure::new(
                Exit::RollbackIncomplete,
                text,
                "the journal, the pre-hop dump and the saved compose files are kept; the stack is NOT healthy",
                format!(
                    "when `docker info` answers again: `mender-compose-upgrade -p {project} resume` carries the \
                     hop on from where it stopped, or `mender-compose-upgrade -p {project} rollback` undoes it"
                ),
            ),
            UpgradeError::Interrupted { during, advice } => Failure::new(
                Exit::Interrupted,
                format!(
                    "the upgrade was interrupted during {during}; it stopped at a safe point\n    {}",
                    advice.join("\n    ")
                ),
                "the journal holds where it stopped; the services it stopped are still stopped",
                "run `resume` or `rollback` (above); nothing else starts these services meanwhile",
            ),
            UpgradeError::Io(io) => Failure::new(
                Exit::Unexpected,
                io,
                "see the journal in the state directory",
                "`recover` explains the state",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::out_of_space;

    #[test]
    fn a_full_disk_is_recognised_in_each_engines_words() {
        assert!(out_of_space("mongorestore failed (exit 1): write /data/db/x: no space left on device"));
        assert!(out_of_space("Failed: deviceauth.devices: error inserting: database or disk is full (13)"));
        assert!(out_of_space("WiredTiger error (28) [1700000000:0][1:0x7f], file:x.wt: ENOSPC"));
        assert!(!out_of_space("mongorestore failed (exit 1): connection refused"));
    }
}
