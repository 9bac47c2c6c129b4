//! Staging: an isolated copy of production on the same daemon, built from a backup bundle alone.
//! `staging up` renders the bundle's compose configuration through `docker compose config`,
//! isolates it (`isolate`, pure), restores the dump and the artifacts into its own volumes,
//! compares them with the manifest, starts it and gates it. `staging down` removes exactly what
//! carries this tool's staging label. `rehearse` runs the upgrade engine on it.

pub mod isolate;
pub mod rehearse;
mod runtime;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backup::bundle::ARCHIVE;
use crate::backup::crypt::{BundleReader, CryptError};
use crate::backup::manifest::{ArtifactsKind, DatabaseInfo, Location, Manifest, Verification};
use crate::backup::restore::{self, MongoTarget, RestoreError, StoreTarget};
use crate::backup::verify;
use crate::engine::compose::ComposeError;
use crate::engine::docker::{self, DockerError, Removed};
use crate::engine::helper::MongoReport;
use crate::labels::{LABEL_ENV_FILE, STAGING_LABEL};
use crate::state::{LockError, StateDir};
use crate::upgrade::runtime::{MongoReadError, compose_shown, mongo_report, restore_shown, wait_gates, wait_mongo};
use crate::upgrade::{Ctx, ProjectRecord};
use crate::util::{Perm, now_rfc3339, secs, write_atomic};
use isolate::OwnStore;
pub use runtime::{StagingRuntime, render};

const RECORD: &str = "staging.json";
const RENDERED: &str = "staging.compose.json";
const PROJECT: &str = "project";
/// The isolation notes of the last rendering.
const NOTES: &str = "staging.notes.json";

/// What a staging project was made from; kept in its directory for the commands that follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The staging project's name.
    pub name: String,
    /// The production project the bundle is of.
    pub source_project: String,
    /// The bundle it was restored from.
    pub bundle: PathBuf,
    /// The release the bundle is of.
    pub release: Version,
    /// The staging directory.
    pub dir: PathBuf,
    /// The copied compose files, in compose's order.
    pub config_files: Vec<PathBuf>,
    /// The copied env files.
    pub env_files: Vec<PathBuf>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Staging's own artifact store, when production's is outside the stack.
    #[serde(default)]
    pub own_store: Option<OwnStore>,
}

impl Record {
    /// The record in a staging directory.
    ///
    /// # Errors
    /// No record there, or one that does not parse.
    pub fn load(dir: &Path) -> Result<Record, StagingError> {
        let path = dir.join(RECORD);
        let text = std::fs::read(&path)?;
        serde_json::from_slice(&text)
            .map_err(|e| StagingError::Io(std::io::Error::other(format!("{}: {e}", path.display()))))
    }

    /// How the upgrade engine drives it: the copied files, rendered isolated on every call.
    pub fn project(&self) -> ProjectRecord {
        ProjectRecord {
            name: self.name.clone(),
            working_dir: self.dir.join(PROJECT),
            config_files: self.config_files.clone(),
            env_files: self.env_files.clone(),
            staging: Some(self.dir.clone()),
        }
    }
}

/// The record of every staging copy in the state directory, as text: its name and the contents of
/// its `staging/<name>/staging.json` (which names the bundle it was made from). Read as text so
/// that a record of an older shape still names its bundle to `backup prune`.
pub fn record_texts(state: &StateDir) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(state.root.join("staging"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let text = std::fs::read(e.path().join(RECORD)).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), String::from_utf8_lossy(&text).into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Why a staging command failed; production is never touched.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The name is no valid compose project name, or is production's (the name, then why).
    #[error("{0:?} cannot be a staging name: {1}")]
    BadName(String, String),
    /// The bundle fails verification or lacks what staging needs (its path, then why).
    #[error("the bundle {0} cannot be used: {1}")]
    Bundle(String, String),
    /// The name is taken, by a staging project or another compose project.
    #[error("a staging project named {name} already exists ({what})")]
    Exists {
        /// The name asked for.
        name: String,
        /// What carries it (its containers, or another compose project's).
        what: String,
    },
    /// Production keeps its artifacts outside the stack (`s3`, `azure`) and the catalog has no MinIO
    /// image for the bundle's release to give staging its own store.
    #[error(
        "the bundle's artifacts are in an external {0} store and the catalog names no MinIO image for its release to give staging a store of its own"
    )]
    ExternalStorage(String),
    /// SIGINT or SIGTERM: what was made was removed.
    #[error("interrupted: staging {0} was removed")]
    Interrupted(String),
    /// No container, network or volume carries this staging name's label.
    #[error("no staging project named {0} exists here (no container, network or volume carries its label)")]
    NotFound(String),
    /// A step of `staging up` failed; what was made was removed.
    #[error("staging {name}: {step} failed: {source}")]
    Step {
        /// The staging project's name.
        name: String,
        /// The step (`restore`, `compare`, `gates`, …).
        step: &'static str,
        /// What went wrong in it.
        source: Box<StepError>,
    },
    /// Another run holds the staging project's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Production has an interrupted upgrade.
    #[error(transparent)]
    UpgradePending(#[from] Box<crate::state::UpgradePending>),
    /// A Docker call failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// `docker compose` failed or is missing.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The state directory (staging directory, record, copied files) could not be written or read.
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
    /// An encrypted bundle without its identity, or one that does not decrypt.
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

impl From<StagingError> for crate::exit::Failure {
    fn from(e: StagingError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        let nothing = "everything: production was not touched and no staging resource was left";
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
                Failure::new(
                    Exit::Precondition,
                    e,
                    "everything: production and the existing project were not touched",
                    next,
                )
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
                crate::exit::UNCHANGED_ALL,
                "`docker compose ls -a` lists the projects; name the staging with --name",
            ),
            StagingError::Lock(l) => l.into(),
            StagingError::Docker(d) => d.into(),
            StagingError::UpgradePending(p) => (*p).into(),
            StagingError::Interrupted(_) => Failure::new(Exit::Interrupted, e, "production was not touched", ""),
            StagingError::Compose(c) => c.into(),
            StagingError::Crypt(c) if c.is_identity() => {
                let mut f: Failure = c.into();
                f.unchanged = nothing.into();
                f
            }
            StagingError::Step { .. } | StagingError::Io(_) | StagingError::Crypt(_) => Failure::new(
                Exit::Precondition,
                e,
                "production was not touched; the staging resources made so far were removed",
                "fix what the message names; `-v` shows more",
            ),
        }
    }
}

/// Why a step of `staging up` failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The rendered configuration lacks what staging needs.
    #[error("{0}")]
    Render(String),
    /// MongoDB did not answer.
    #[error(transparent)]
    Mongo(#[from] MongoReadError),
    /// mongorestore, or the artifacts upload.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// What staging holds differs from the manifest.
    #[error("{}", .0.join("; "))]
    Compare(Vec<String>),
    /// The gates did not pass in time.
    #[error("{}", .0.join("; "))]
    Gates(Vec<String>),
}

/// `<project>-staging`.
pub fn default_name(project: &str) -> String {
    format!("{project}-staging")
}

/// Compose's own rule for project names, and never production's.
fn check_name(name: &str, production: &str) -> Result<(), StagingError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        return Err(StagingError::BadName(name.into(), "use lowercase letters, digits, - and _".into()));
    }
    if name == production {
        return Err(StagingError::BadName(name.into(), "it is the production project's name".into()));
    }
    Ok(())
}

/// What `staging up` was asked.
pub struct UpOptions {
    /// `--from BUNDLE`: the bundle directory.
    pub bundle: PathBuf,
    /// `--name`: the staging project's name; `None` for `<project>-staging`.
    pub name: Option<String>,
    /// `--identity FILE`: the age identity for an encrypted bundle.
    pub identity: Option<PathBuf>,
}

/// The result of `staging up`.
#[derive(Debug, Clone, Serialize)]
pub struct UpOutcome {
    /// The staging project's name (`menderproduction-staging`).
    pub name: String,
    /// The production project the bundle was taken from.
    pub source_project: String,
    /// The release it runs (the bundle's).
    pub release: Version,
    /// The bundle it was restored from (absolute path).
    pub bundle: PathBuf,
    /// The staging directory (`<state-dir>/staging/<name>`).
    pub dir: PathBuf,
    /// Seconds per step, in the order they ran: prepare, restore, compare, start, gates (a JSON
    /// object in that order).
    pub timings: indexmap::IndexMap<String, f64>,
    /// Databases restored.
    pub databases: usize,
    /// Documents restored, all databases together.
    pub documents: u64,
    /// Artifact objects restored into staging's store.
    pub artifacts: u64,
    /// What the isolation changed beyond renaming (ports dropped, mounts made read-only, …).
    pub notes: Vec<String>,
}

fn step<E: Into<StepError>>(name: &str, step: &'static str) -> impl FnOnce(E) -> StagingError {
    let name = name.to_string();
    move |e| StagingError::Step { name, step, source: Box::new(e.into()) }
}

/// `staging up --from BUNDLE`: a failure removes what it created (production is never touched).
///
/// # Errors
/// [`StagingError`]: a bundle that fails verification, a bad or taken name, a failed step.
pub async fn up(ctx: &Ctx<'_>, opts: &UpOptions) -> Result<UpOutcome, StagingError> {
    // Containers bind-mount from it: an absolute path.
    let bundle = std::path::absolute(&opts.bundle)?;
    let manifest =
        Manifest::load(&bundle).map_err(|e| StagingError::Bundle(bundle.display().to_string(), e.to_string()))?;
    // A missing or wrong identity is found before anything is made.
    let reader = BundleReader::open(&bundle, &manifest, opts.identity.as_deref())?;
    // Refusals that need no reading of the bundle come first, and change nothing.
    ctx.state.refuse_if_upgrade_pending(&manifest.project).map_err(Box::new)?;
    let name = opts.name.clone().unwrap_or_else(|| default_name(&manifest.project));
    check_name(&name, &manifest.project)?;
    let _lock = ctx.state.lock(&name, "staging up")?;
    exists(ctx.docker, &name).await?;
    // No copy of that name exists, so a journal under its name is a killed rehearsal's.
    forget_rehearsal_journal(ctx.state, &name)?;
    let report = match verify::verify(&bundle, opts.identity.as_deref(), None, ctx.progress).await {
        Ok(r) => r,
        Err(verify::VerifyError::Identity(c)) => return Err(c.into()),
        Err(e) => return Err(StagingError::Bundle(bundle.display().to_string(), e.to_string())),
    };
    if !report.ok {
        return Err(StagingError::Bundle(bundle.display().to_string(), report.problems.join("; ")));
    }
    // As verify recorded it.
    let manifest =
        Manifest::load(&bundle).map_err(|e| StagingError::Bundle(bundle.display().to_string(), e.to_string()))?;
    let own_store = own_store(ctx, &manifest)?;
    if reader.encrypted() {
        ctx.progress.step("decrypt", format!("decrypting {} with the identity given", bundle.display()));
    }
    // The files in clear (the bundle itself when it is plain; removed when dropped).
    let plain = reader.plain_dir(&["compose", "snapshot.json", ARCHIVE, "artifacts"])?;
    let record = prepare(ctx.state, &bundle, plain.path(), &manifest, &name, own_store)?;
    let _critical = crate::interrupt::Critical::enter();
    let built = tokio::select! {
        biased;
        _ = crate::interrupt::signalled() => Err(StagingError::Interrupted(name.clone())),
        r = build(ctx, &record, &manifest, plain.path()) => r,
    };
    drop(plain);
    match built {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            ctx.progress.step("staging", format!("removing the unfinished staging {name}"));
            remove(ctx.docker, &record).await;
            Err(if crate::interrupt::is_signalled() { StagingError::Interrupted(name) } else { e })
        }
    }
}

/// Removes everything a staging copy is made of: its labelled containers, networks and volumes,
/// the sidecars this run started for it, and its directory.
async fn remove(docker: &Docker, record: &Record) {
    docker::remove_labelled(docker, crate::labels::SIDECAR_LABEL, &std::process::id().to_string()).await;
    let _ = docker::remove_all_labelled(docker, STAGING_LABEL, &record.name).await;
    let _ = std::fs::remove_dir_all(&record.dir);
}

/// Production's artifacts outside the stack (S3, Azure): staging gets a store of its own, on the
/// release's MinIO image, with keys of its own.
fn own_store(ctx: &Ctx<'_>, m: &Manifest) -> Result<Option<OwnStore>, StagingError> {
    if m.artifacts.kind == ArtifactsKind::Volume {
        return Ok(None);
    }
    let image = m
        .mender_version
        .as_ref()
        .and_then(|v| ctx.catalog.catalog.release(v))
        .and_then(|r| r.services.get("minio"))
        .map(|f| crate::catalog::ImageRef::parse(&f.image, None).qualified(ctx.registry))
        .ok_or_else(|| StagingError::ExternalStorage(format!("{:?}", m.artifacts.kind).to_lowercase()))?;
    let mut key = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))?;
    Ok(Some(OwnStore { image, access: "mender-staging".into(), secret: hex::encode(key) }))
}

/// Refuses a name in use: by a staging project, or by any compose project at all.
async fn exists(docker: &Docker, name: &str) -> Result<(), StagingError> {
    let ours = docker::labelled_containers(docker, STAGING_LABEL, name).await?;
    if !ours.is_empty() {
        return Err(StagingError::Exists { name: name.into(), what: format!("its containers: {}", ours.join(", ")) });
    }
    let theirs = docker::labelled_containers(docker, crate::labels::LABEL_PROJECT, name).await?;
    if !theirs.is_empty() {
        return Err(StagingError::Exists {
            name: name.into(),
            what: format!("a compose project that is not staging: {}", theirs.join(", ")),
        });
    }
    Ok(())
}

/// The staging directory: the bundle's compose tree copied under `project/`, and the record.
/// `data` holds the bundle's files in clear (the bundle itself when it is plain).
fn prepare(
    state: &StateDir,
    bundle: &Path,
    data: &Path,
    m: &Manifest,
    name: &str,
    own_store: Option<OwnStore>,
) -> Result<Record, StagingError> {
    let dir = state.root.join("staging").join(name);
    if dir.exists() {
        // No container carries the name (checked): what is left is a dead run's directory.
        std::fs::remove_dir_all(&dir)?;
    }
    crate::util::private_dir(&dir)?;
    copy_tree(&data.join("compose"), &dir.join(PROJECT))?;
    let snapshot: Value = serde_json::from_slice(&std::fs::read(data.join("snapshot.json"))?)
        .map_err(|e| StagingError::Bundle(bundle.display().to_string(), format!("snapshot.json: {e}")))?;
    let wd = snapshot["stack"]["working_dir"].as_str().unwrap_or_default().to_string();
    let relocate = |p: &str| relocate(Path::new(&wd), &dir.join(PROJECT), Path::new(p));
    let config_files = snapshot["stack"]["config_files"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(relocate).collect())
        .unwrap_or_default();
    let env_files = snapshot["containers"][0]["labels"][LABEL_ENV_FILE]
        .as_str()
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(relocate).collect())
        .unwrap_or_default();
    let release = m.mender_version.clone().ok_or_else(|| {
        StagingError::Bundle(bundle.display().to_string(), "the manifest names no Mender release".into())
    })?;
    let record = Record {
        name: name.into(),
        source_project: m.project.clone(),
        bundle: bundle.to_path_buf(),
        release,
        dir: dir.clone(),
        config_files,
        env_files,
        created: now_rfc3339(),
        own_store,
    };
    let text = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(RECORD), &text, Perm::Private)?;
    Ok(record)
}

/// Where a production path is in the staging copy (the bundle's layout, see backup::config).
fn relocate(wd: &Path, project: &Path, p: &Path) -> PathBuf {
    match p.strip_prefix(wd) {
        Ok(rel) if !wd.as_os_str().is_empty() => project.join(rel),
        _ => project.join("_external").join(p.strip_prefix("/").unwrap_or(p)),
    }
}

/// Copies a tree; files readable by the containers (the staging root itself is 0700).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        } else {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// Creates, restores (from `data`, the bundle's files in clear), compares, starts and gates the
/// staging project.
async fn build(ctx: &Ctx<'_>, record: &Record, m: &Manifest, data: &Path) -> Result<UpOutcome, StagingError> {
    let name = &record.name;
    let project = record.project();
    let mut timings = indexmap::IndexMap::new();
    let t = Instant::now();
    ctx.progress.step("staging", format!("creating staging {name} from {}", record.bundle.display()));
    ctx.runtime.compose(&project, &["create", "--no-build"]).await?;
    let rendered: Value = serde_json::from_slice(&std::fs::read(record.dir.join(RENDERED))?)
        .map_err(|e| step(name, "render")(StepError::Render(e.to_string())))?;
    let store = store_target(&rendered).map_err(step(name, "render"))?;
    ctx.runtime.compose(&project, &["start", &m.mongo.service, &store.service]).await?;
    timings.insert("prepare".to_string(), secs(t.elapsed()));

    let t = Instant::now();
    let network = service_network(&rendered, &m.mongo.service)
        .ok_or_else(|| step(name, "render")(StepError::Render("no mongo network".into())))?;
    wait_mongo(ctx.runtime, &network, &m.mongo.service, Duration::from_secs(120)).await.map_err(step(name, "mongo"))?;
    ctx.progress.step("restore", format!("restoring the dump into staging {name}"));
    let target = MongoTarget { image: &m.mongo.image, network: &network, host: &m.mongo.service };
    restore_shown(ctx, data, &target, m.mongo.ferretdb).await.map_err(step(name, "restore"))?;
    let copied = restore_artifacts(ctx, data, m, &store).await.map_err(step(name, "artifacts"))?;
    timings.insert("restore".to_string(), secs(t.elapsed()));

    let t = Instant::now();
    let report = mongo_report(ctx.runtime, &network, &m.mongo.service, true).await.map_err(step(name, "compare"))?;
    let mut problems = compare_counts(&m.databases, &report);
    if m.artifacts.location == Location::Bundle && copied != m.artifacts.objects {
        problems.push(format!(
            "artifacts: {} restored, {} in the manifest",
            crate::util::count(copied, "object"),
            m.artifacts.objects
        ));
    }
    if !problems.is_empty() {
        return Err(step(name, "compare")(StepError::Compare(problems)));
    }
    timings.insert("compare".to_string(), secs(t.elapsed()));

    let t = Instant::now();
    ctx.progress.step("staging", format!("starting staging {name}"));
    compose_shown(ctx, &project, &["up", "-d", "--no-build"]).await?;
    timings.insert("start".to_string(), secs(t.elapsed()));
    let t = Instant::now();
    wait_gates(ctx, &project, &record.release, ctx.hop_timeout, &[])
        .await
        .map_err(|f| step(name, "gates")(StepError::Gates(f)))?;
    timings.insert("gates".to_string(), secs(t.elapsed()));
    record_proof(&record.bundle, name)?;
    let documents = m.databases.iter().flat_map(|d| d.collections.values()).sum();
    let mut notes = notes(&record.dir);
    if m.artifacts.location != Location::Bundle {
        notes.push(format!(
            "artifacts: the bundle holds no copies (they are kept by {}); staging's store starts empty",
            m.artifacts.location
        ));
    }
    Ok(UpOutcome {
        name: name.clone(),
        source_project: record.source_project.clone(),
        release: record.release.clone(),
        bundle: record.bundle.clone(),
        dir: record.dir.clone(),
        timings,
        databases: m.databases.len(),
        documents,
        artifacts: copied,
        notes,
    })
}

/// What the isolation changed beyond renaming, as the last rendering recorded it.
fn notes(dir: &Path) -> Vec<String> {
    std::fs::read(dir.join(NOTES)).ok().and_then(|t| serde_json::from_slice(&t).ok()).unwrap_or_default()
}

/// The in-stack S3 store, as the isolated deployments service sees it.
struct Store {
    service: String,
    network: String,
    endpoint: String,
    bucket: String,
    region: String,
    access: String,
    secret: String,
}

fn store_target(rendered: &Value) -> Result<Store, StepError> {
    let render = |what: &str| StepError::Render(what.to_string());
    let services = rendered["services"].as_object().ok_or_else(|| render("no services"))?;
    let (_, deployments) = services
        .iter()
        .find(|(_, s)| {
            s["image"].as_str().is_some_and(|i| i.contains("/deployments:") || i.contains("/deployments-enterprise:"))
        })
        .ok_or_else(|| render("no deployments service"))?;
    let env = |k: &str| deployments["environment"][k].as_str().filter(|v| !v.is_empty()).map(str::to_string);
    let endpoint = env("DEPLOYMENTS_AWS_URI").ok_or_else(|| render("deployments has no DEPLOYMENTS_AWS_URI"))?;
    let host = endpoint.split("://").nth(1).unwrap_or(&endpoint).split(['/', ':']).next().unwrap_or_default();
    let service = services
        .iter()
        .find(|(n, s)| {
            n.as_str() == host
                || s["networks"].as_object().is_some_and(|nets| {
                    nets.values().any(|n| n["aliases"].as_array().is_some_and(|a| a.iter().any(|x| x == host)))
                })
        })
        .map(|(n, _)| n.clone())
        .ok_or_else(|| render(&format!("the artifact store {host} is not a service of the project")))?;
    Ok(Store {
        network: service_network(rendered, &service).ok_or_else(|| render("the store has no network"))?,
        service,
        endpoint,
        bucket: env("DEPLOYMENTS_STORAGE_BUCKET").unwrap_or_else(|| "mender-artifact-storage".into()),
        region: env("DEPLOYMENTS_AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        access: env("DEPLOYMENTS_AWS_AUTH_KEY").ok_or_else(|| render("deployments has no DEPLOYMENTS_AWS_AUTH_KEY"))?,
        secret: env("DEPLOYMENTS_AWS_AUTH_SECRET")
            .ok_or_else(|| render("deployments has no DEPLOYMENTS_AWS_AUTH_SECRET"))?,
    })
}

/// The Docker name of a service's first network in the rendered configuration.
fn service_network(rendered: &Value, service: &str) -> Option<String> {
    let key = match &rendered["services"][service]["networks"] {
        Value::Object(n) => n.keys().next().cloned()?,
        _ => "default".to_string(),
    };
    rendered["networks"][&key]["name"].as_str().map(str::to_string)
}

/// Uploads the bundle's objects (the store may take a moment to answer after its start).
async fn restore_artifacts(ctx: &Ctx<'_>, data: &Path, m: &Manifest, s: &Store) -> Result<u64, RestoreError> {
    if m.artifacts.location != Location::Bundle {
        return Ok(0);
    }
    ctx.progress.step(
        "restore",
        format!("uploading {} into the staging store", crate::util::count(m.artifacts.objects, "artifact")),
    );
    let t = StoreTarget {
        network: &s.network,
        endpoint: &s.endpoint,
        bucket: &s.bucket,
        region: &s.region,
        access_key: &s.access,
        secret_key: &s.secret,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match restore::artifacts(ctx.docker, data, &t, false).await {
            Ok(c) => return Ok(c.objects),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Every collection's count in staging against the manifest (read with the writers stopped).
pub fn compare_counts(databases: &[DatabaseInfo], report: &MongoReport) -> Vec<String> {
    let mut problems = Vec::new();
    for db in databases {
        let got = report.databases.iter().find(|d| d.name == db.name);
        for (coll, want) in &db.collections {
            let have = got.and_then(|d| d.collections.iter().find(|c| &c.name == coll)).map_or(0, |c| c.count);
            if have != *want {
                problems.push(format!(
                    "{}.{coll}: {} in staging, {want} in the manifest",
                    db.name,
                    crate::util::count(have, "document")
                ));
            }
        }
    }
    problems
}

/// A bundle restored into staging and compared is proven: recorded like a restore test.
fn record_proof(bundle: &Path, name: &str) -> Result<(), StagingError> {
    let mut m =
        Manifest::load(bundle).map_err(|e| StagingError::Bundle(bundle.display().to_string(), e.to_string()))?;
    m.verifications.push(Verification {
        at: now_rfc3339(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        checks: vec!["files".into(), "archive".into(), "restore-test".into(), format!("staging:{name}")],
        ok: true,
        problems: vec![],
    });
    Ok(m.save(bundle)?)
}

/// Removes the journal a rehearsal killed in the middle of its upgrade left under the staging
/// copy's name: once the copy is gone it describes nothing, and the next rehearsal's upgrade
/// would take it for a pending one and fail. Only a journal whose project is a staging copy (its
/// record says so) is removed; production's never is.
fn forget_rehearsal_journal(state: &StateDir, name: &str) -> std::io::Result<()> {
    let journal = state.journal::<crate::upgrade::UpgradeState>(name);
    if journal.and_then(|j| j.payload).is_some_and(|st| st.project.staging.is_some()) {
        state.clear_journal(name)?;
    }
    Ok(())
}

/// `staging down`: exactly the resources labelled for this staging project, and its directory.
///
/// # Errors
/// [`StagingError::NotFound`] when nothing carried the name; lock, Docker and file errors.
pub async fn down(docker: &Docker, state: &StateDir, name: &str) -> Result<Removed, StagingError> {
    let _lock = state.lock(name, "staging down")?;
    let removed = docker::remove_all_labelled(docker, STAGING_LABEL, name).await?;
    let dir = state.root.join("staging").join(name);
    let had_dir = dir.exists();
    // Only a directory whose record names this staging copy proves that upgrades under this name
    // were rehearsals: production's own pre-hop dumps (its rollback data) are never touched.
    let was_staging = Record::load(&dir).is_ok_and(|r| r.name == name);
    if had_dir {
        std::fs::remove_dir_all(&dir)?;
    }
    forget_rehearsal_journal(state, name)?;
    if was_staging {
        // The pre-hop dumps of a rehearsal on it.
        for run in std::fs::read_dir(state.root.join("upgrades")).into_iter().flatten().flatten() {
            if run.file_name().to_string_lossy().strip_prefix(name).is_some_and(|rest| rest.starts_with("-2")) {
                std::fs::remove_dir_all(run.path())?;
            }
        }
    }
    if removed.containers.is_empty() && removed.networks.is_empty() && removed.volumes.is_empty() && !had_dir {
        return Err(StagingError::NotFound(name.into()));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn names_are_compose_names_and_never_production() {
        assert!(check_name("menderproduction-staging", "menderproduction").is_ok());
        assert!(check_name("menderproduction", "menderproduction").is_err());
        assert!(check_name("Bad Name", "p").is_err());
        assert!(check_name("", "p").is_err());
        assert!(check_name("-x", "p").is_err());
    }

    #[test]
    fn paths_move_into_the_copy_like_the_bundle_lays_them_out() {
        let (wd, project) = (Path::new("/srv/mender"), Path::new("/state/staging/s/project"));
        assert_eq!(
            relocate(wd, project, Path::new("/srv/mender/production/config/prod.yml")),
            project.join("production/config/prod.yml")
        );
        assert_eq!(
            relocate(wd, project, Path::new("/etc/mender/extra.yml")),
            project.join("_external/etc/mender/extra.yml")
        );
    }

    #[test]
    fn the_store_is_found_by_service_name_or_alias() {
        let rendered = serde_json::json!({
            "services": {
                "mender-deployments": {"image": "testbed.local/mendersoftware/deployments:mender-3.4.0",
                    "environment": {"DEPLOYMENTS_AWS_URI": "http://s3.example:9000", "DEPLOYMENTS_AWS_AUTH_KEY": "k", "DEPLOYMENTS_AWS_AUTH_SECRET": "s"},
                    "networks": {"mender": null}},
                "minio": {"image": "minio/minio", "networks": {"mender": {"aliases": ["s3.example"]}}}
            },
            "networks": {"mender": {"name": "p-staging_mender"}}
        });
        let dbs = [DatabaseInfo {
            name: "useradm".into(),
            migration: None,
            collections: BTreeMap::from([("users".to_string(), 2)]),
        }];
        let s = store_target(&rendered).unwrap();
        assert_eq!(
            (s.service.as_str(), s.network.as_str(), s.bucket.as_str()),
            ("minio", "p-staging_mender", "mender-artifact-storage")
        );
        let report = crate::engine::helper::MongoReport {
            reachable: true,
            databases: vec![crate::engine::helper::DbReport {
                name: "useradm".into(),
                exists: true,
                migration: None,
                collections: vec![crate::engine::helper::CollectionCount {
                    name: "users".into(),
                    count: 1,
                    digest: None,
                }],
                size_bytes: None,
                born: None,
            }],
            ..Default::default()
        };
        assert_eq!(compare_counts(&dbs, &report), ["useradm.users: 1 document in staging, 2 in the manifest"]);
    }
}
