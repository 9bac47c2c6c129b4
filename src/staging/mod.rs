//! Staging: an isolated copy of production on the same daemon, built from a backup bundle alone.
//! `staging up` renders the bundle's compose configuration through `docker compose config`,
//! isolates it (`isolate`, pure), restores the dump and the artifacts into its own volumes,
//! compares them with the manifest, starts it and gates it. `staging down` removes exactly what
//! carries this tool's staging label. `rehearse` runs the upgrade engine on it.

pub mod isolate;
pub mod rehearse;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backup::manifest::{DatabaseInfo, Manifest, Verification};
use crate::backup::restore::{self, MongoTarget, StoreTarget};
use crate::backup::verify;
use crate::engine::compose::{ComposeError, Staging};
use crate::engine::docker::{self, DockerError, Removed};
use crate::snapshot::ContainerInfo;
use crate::snapshot::container::LABEL_WORKING_DIR;
use crate::state::{LockError, StateDir, now_rfc3339};
use crate::upgrade::{Ctx, ProjectRecord, io};
use isolate::{OwnStore, STAGING_LABEL};

const RECORD: &str = "staging.json";
const RENDERED: &str = "staging.compose.json";
const PROJECT: &str = "project";
/// The isolation notes of the last rendering (written by the compose engine).
pub const NOTES: &str = "staging.notes.json";

/// What a staging project was made from; kept in its directory for the commands that follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub source_project: String,
    pub bundle: PathBuf,
    pub release: Version,
    pub dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub created: String,
    /// Staging's own artifact store, when production's is outside the stack.
    #[serde(default)]
    pub own_store: Option<OwnStore>,
}

impl Record {
    pub fn load(dir: &Path) -> Result<Record, String> {
        let text = std::fs::read(dir.join(RECORD)).map_err(|e| format!("{}: {e}", dir.join(RECORD).display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", dir.join(RECORD).display()))
    }

    /// The record of the staging project these containers belong to (its directory is the parent
    /// of their compose working directory).
    pub fn for_containers(containers: &[ContainerInfo]) -> Result<Record, String> {
        let wd = containers
            .iter()
            .find_map(|c| c.label(LABEL_WORKING_DIR))
            .ok_or("the staging containers carry no compose working directory")?;
        Record::load(Path::new(wd).parent().unwrap_or(Path::new(wd)))
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

/// The compose side of a staging directory: where the rendering goes, and the bundle's copies of
/// host paths outside the project directory (kept under `_external/<absolute path>`).
pub fn compose_staging(dir: &Path) -> Staging {
    let root = dir.join(PROJECT).join("_external");
    let mut copies = BTreeMap::new();
    for entry in walk(&root) {
        if let Ok(rel) = entry.strip_prefix(&root) {
            copies.insert(Path::new("/").join(rel), entry.clone());
        }
    }
    let store = Record::load(dir).ok().and_then(|r| r.own_store);
    Staging { rendered: dir.join(RENDERED), external_copies: copies, store }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// Writes a file only its owner can read, atomically.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::backup::bundle::private_file(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("{0:?} cannot be a staging name: {1}")]
    BadName(String, String),
    #[error("the bundle {0} cannot be used: {1}")]
    Bundle(String, String),
    #[error("a staging project named {name} already exists ({what})")]
    Exists { name: String, what: String },
    #[error(
        "the bundle's artifacts are in an external {0} store and the catalog names no MinIO image for its release to give staging a store of its own"
    )]
    ExternalStorage(String),
    #[error("no staging project named {0} exists here (no container, network or volume carries its label)")]
    NotFound(String),
    #[error("staging {name}: {step} failed: {reason}")]
    Step { name: String, step: String, reason: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error("the state directory: {0}")]
    Io(#[from] std::io::Error),
}

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

pub struct UpOptions {
    pub bundle: PathBuf,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpOutcome {
    pub name: String,
    pub source_project: String,
    pub release: Version,
    pub bundle: PathBuf,
    pub dir: PathBuf,
    /// Seconds per step: prepare, restore, compare, start, gates.
    pub timings: BTreeMap<String, f64>,
    pub databases: usize,
    pub documents: u64,
    pub artifacts: u64,
    pub notes: Vec<String>,
}

fn step(name: &str, step: &str) -> impl FnOnce(String) -> StagingError {
    let (name, step) = (name.to_string(), step.to_string());
    move |reason| StagingError::Step { name, step, reason }
}

/// `staging up --from BUNDLE`: a failure removes what it created (production is never touched).
pub async fn up(ctx: &Ctx<'_>, opts: &UpOptions) -> Result<UpOutcome, StagingError> {
    // Containers bind-mount from it: an absolute path.
    let bundle = std::path::absolute(&opts.bundle)?;
    let report = verify::verify(&bundle, None, ctx.progress)
        .await
        .map_err(|e| StagingError::Bundle(bundle.display().to_string(), e.to_string()))?;
    if !report.ok {
        return Err(StagingError::Bundle(bundle.display().to_string(), report.problems.join("; ")));
    }
    let manifest =
        Manifest::load(&bundle).map_err(|e| StagingError::Bundle(bundle.display().to_string(), e.to_string()))?;
    let name = opts.name.clone().unwrap_or_else(|| default_name(&manifest.project));
    check_name(&name, &manifest.project)?;
    let own_store = own_store(ctx, &manifest)?;
    let _lock = ctx.state.lock(&name, "staging up")?;
    exists(ctx.docker, &name).await?;
    let record = prepare(ctx.state, &bundle, &manifest, &name, own_store)?;
    match build(ctx, &record, &manifest).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            ctx.progress.step("staging", format!("removing the failed staging {name}"));
            let _ = docker::remove_all_labelled(ctx.docker, STAGING_LABEL, &name).await;
            let _ = std::fs::remove_dir_all(&record.dir);
            Err(e)
        }
    }
}

/// Production's artifacts outside the stack (S3, Azure): staging gets a store of its own, on the
/// release's MinIO image, with keys of its own.
fn own_store(ctx: &Ctx<'_>, m: &Manifest) -> Result<Option<OwnStore>, StagingError> {
    if m.artifacts.kind == "volume" {
        return Ok(None);
    }
    let image = m
        .mender_version
        .as_ref()
        .and_then(|v| ctx.catalog.catalog.release(v))
        .and_then(|r| r.services.get("minio"))
        .map(|f| crate::catalog::ImageRef::parse(&f.image, None).qualified(ctx.registry))
        .ok_or_else(|| StagingError::ExternalStorage(m.artifacts.kind.clone()))?;
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
    let theirs = docker::labelled_containers(docker, crate::snapshot::container::LABEL_PROJECT, name).await?;
    if !theirs.is_empty() {
        return Err(StagingError::Exists {
            name: name.into(),
            what: format!("a compose project that is not staging: {}", theirs.join(", ")),
        });
    }
    Ok(())
}

/// The staging directory: the bundle's compose tree copied under `project/`, and the record.
fn prepare(
    state: &StateDir,
    bundle: &Path,
    m: &Manifest,
    name: &str,
    own_store: Option<OwnStore>,
) -> Result<Record, StagingError> {
    let dir = state.root.join("staging").join(name);
    if dir.exists() {
        // No container carries the name (checked): what is left is a dead run's directory.
        std::fs::remove_dir_all(&dir)?;
    }
    crate::backup::bundle::private_dir(&dir)?;
    copy_tree(&bundle.join("compose"), &dir.join(PROJECT))?;
    let snapshot: Value = serde_json::from_slice(&std::fs::read(bundle.join("snapshot.json"))?)
        .map_err(|e| StagingError::Bundle(bundle.display().to_string(), format!("snapshot.json: {e}")))?;
    let wd = snapshot["stack"]["working_dir"].as_str().unwrap_or_default().to_string();
    let relocate = |p: &str| relocate(Path::new(&wd), &dir.join(PROJECT), Path::new(p));
    let config_files = snapshot["stack"]["config_files"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(relocate).collect())
        .unwrap_or_default();
    let env_files = snapshot["containers"][0]["labels"][crate::snapshot::container::LABEL_ENV_FILE]
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
    let text = serde_json::to_string_pretty(&record).map_err(std::io::Error::other)?;
    write_private(&dir.join(RECORD), &text)?;
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

fn secs(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

/// Creates, restores, compares, starts and gates the staging project.
async fn build(ctx: &Ctx<'_>, record: &Record, m: &Manifest) -> Result<UpOutcome, StagingError> {
    let name = &record.name;
    let project = record.project();
    let files = project.files();
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    ctx.progress.step("staging", format!("creating staging {name} from {}", record.bundle.display()));
    ctx.compose.run(&files, &["create", "--no-build"]).await?;
    let rendered: Value = serde_json::from_slice(&std::fs::read(record.dir.join(RENDERED))?)
        .map_err(|e| step(name, "render")(e.to_string()))?;
    let store = store_target(&rendered).map_err(step(name, "render"))?;
    ctx.compose.run(&files, &["start", &m.mongo.service, &store.service]).await?;
    timings.insert("prepare".to_string(), secs(t));

    let t = Instant::now();
    let network =
        service_network(&rendered, &m.mongo.service).ok_or_else(|| step(name, "render")("no mongo network".into()))?;
    io::wait_mongo(ctx, &network, &m.mongo.service, Duration::from_secs(120)).await.map_err(step(name, "mongo"))?;
    ctx.progress.step("restore", format!("restoring the dump into staging {name}"));
    let target = MongoTarget { image: &m.mongo.image, network: &network, host: &m.mongo.service };
    restore::mongo(ctx.docker, &record.bundle, &target, m.mongo.ferretdb)
        .await
        .map_err(|e| step(name, "restore")(e.to_string()))?;
    let copied = restore_artifacts(ctx, record, m, &store).await.map_err(step(name, "artifacts"))?;
    timings.insert("restore".to_string(), secs(t));

    let t = Instant::now();
    let report = io::mongo_report(ctx, &network, &m.mongo.service, true).await.map_err(step(name, "compare"))?;
    let mut problems = compare_counts(&m.databases, &report);
    if m.artifacts.location == "bundle" && copied != m.artifacts.objects {
        problems.push(format!("artifacts: {copied} objects restored, {} in the manifest", m.artifacts.objects));
    }
    if !problems.is_empty() {
        return Err(step(name, "compare")(problems.join("; ")));
    }
    timings.insert("compare".to_string(), secs(t));

    let t = Instant::now();
    ctx.progress.step("staging", format!("starting staging {name}"));
    ctx.compose.run(&files, &["up", "-d", "--no-build"]).await?;
    timings.insert("start".to_string(), secs(t));
    let t = Instant::now();
    io::wait_gates(ctx, &project, &record.release, ctx.hop_timeout)
        .await
        .map_err(|f| step(name, "gates")(f.join("; ")))?;
    timings.insert("gates".to_string(), secs(t));
    record_proof(&record.bundle, name)?;
    let documents = m.databases.iter().flat_map(|d| d.collections.values()).sum();
    let mut notes = notes(&record.dir);
    if m.artifacts.location != "bundle" {
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

fn store_target(rendered: &Value) -> Result<Store, String> {
    let services = rendered["services"].as_object().ok_or("no services")?;
    let (_, deployments) = services
        .iter()
        .find(|(_, s)| {
            s["image"].as_str().is_some_and(|i| i.contains("/deployments:") || i.contains("/deployments-enterprise:"))
        })
        .ok_or("no deployments service")?;
    let env = |k: &str| deployments["environment"][k].as_str().filter(|v| !v.is_empty()).map(str::to_string);
    let endpoint = env("DEPLOYMENTS_AWS_URI").ok_or("deployments has no DEPLOYMENTS_AWS_URI")?;
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
        .ok_or_else(|| format!("the artifact store {host} is not a service of the project"))?;
    Ok(Store {
        network: service_network(rendered, &service).ok_or("the store has no network")?,
        service,
        endpoint,
        bucket: env("DEPLOYMENTS_STORAGE_BUCKET").unwrap_or_else(|| "mender-artifact-storage".into()),
        region: env("DEPLOYMENTS_AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        access: env("DEPLOYMENTS_AWS_AUTH_KEY").ok_or("deployments has no DEPLOYMENTS_AWS_AUTH_KEY")?,
        secret: env("DEPLOYMENTS_AWS_AUTH_SECRET").ok_or("deployments has no DEPLOYMENTS_AWS_AUTH_SECRET")?,
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
async fn restore_artifacts(ctx: &Ctx<'_>, record: &Record, m: &Manifest, s: &Store) -> Result<u64, String> {
    if m.artifacts.location != "bundle" {
        return Ok(0);
    }
    ctx.progress.step("restore", format!("uploading {} artifacts into the staging store", m.artifacts.objects));
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
        match restore::artifacts(ctx.docker, &record.bundle, &t).await {
            Ok(c) => return Ok(c.objects),
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Every collection's count in staging against the manifest (read with the writers stopped).
pub fn compare_counts(databases: &[DatabaseInfo], report: &crate::helper::MongoReport) -> Vec<String> {
    let mut problems = Vec::new();
    for db in databases {
        let got = report.databases.iter().find(|d| d.name == db.name);
        for (coll, want) in &db.collections {
            let have = got.and_then(|d| d.collections.iter().find(|c| &c.name == coll)).map_or(0, |c| c.count);
            if have != *want {
                problems.push(format!("{}.{coll}: {have} documents in staging, {want} in the manifest", db.name));
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

/// `staging down`: exactly the resources labelled for this staging project, and its directory.
pub async fn down(docker: &Docker, state: &StateDir, name: &str) -> Result<Removed, StagingError> {
    let _lock = state.lock(name, "staging down")?;
    let removed = docker::remove_all_labelled(docker, STAGING_LABEL, name).await?;
    let dir = state.root.join("staging").join(name);
    let had_dir = dir.exists();
    if had_dir {
        std::fs::remove_dir_all(&dir)?;
    }
    // The pre-hop dumps of a rehearsal on it.
    for run in std::fs::read_dir(state.root.join("upgrades")).into_iter().flatten().flatten() {
        if run.file_name().to_string_lossy().strip_prefix(name).is_some_and(|rest| rest.starts_with("-2")) {
            std::fs::remove_dir_all(run.path())?;
        }
    }
    if removed.containers.is_empty() && removed.networks.is_empty() && removed.volumes.is_empty() && !had_dir {
        return Err(StagingError::NotFound(name.into()));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
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
        let report = crate::helper::MongoReport {
            reachable: true,
            databases: vec![crate::helper::DbReport {
                name: "useradm".into(),
                exists: true,
                migration: None,
                collections: vec![crate::helper::CollectionCount { name: "users".into(), count: 1, digest: None }],
                size_bytes: None,
            }],
            ..Default::default()
        };
        assert_eq!(compare_counts(&dbs, &report), ["useradm.users: 1 documents in staging, 2 in the manifest"]);
    }
}
