//! The observed stack: which release runs, in what state, how healthy, where its data lives.
//! Built by pure functions from what the engine read (containers, helper report), so that every
//! verdict here is unit-tested on data.

pub mod discover;
pub mod keys;
pub mod observe;
pub mod refusal;
pub mod smoke;
mod storage;

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::Serialize;

use crate::catalog::{Catalog, ImageRef, Release, Role, ServiceFacts};
pub use crate::engine::container::ContainerInfo;
use crate::engine::helper::{MongoQuery, Probe, ProbeResult, Request, Response};
use crate::plan::{NextStop, next_stops};
pub use refusal::{MongoRefusal, RefusalKind};
pub use storage::{Storage, StorageKind};

/// Which release the stack runs, decided by its Mender images.
#[derive(Debug, Clone)]
pub struct Identified<'c> {
    /// The release most of its Mender images belong to; `None` when no image matched the catalog.
    pub release: Option<&'c Release>,
    /// Mender image tags that no catalog release has (e.g. an unlisted patch release).
    pub unknown_tags: Vec<String>,
}

/// Picks the release most of the stack's Mender images belong to (ties: the newest).
pub fn identify<'c>(containers: &[ContainerInfo], catalog: &'c Catalog, registry: Option<&str>) -> Identified<'c> {
    let mut votes: BTreeMap<Version, usize> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for c in containers.iter().filter(|c| discover::is_mender_image(&c.image, registry)) {
        let img = ImageRef::parse(&c.image, registry);
        let releases: BTreeSet<Version> =
            catalog.releases_with_image(&img).into_iter().map(|(r, _)| r.version.clone()).collect();
        if releases.is_empty() {
            unknown.insert(img.to_string());
        }
        for v in releases {
            *votes.entry(v).or_default() += 1;
        }
    }
    let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0))).map(|(v, _)| v.clone());
    Identified { release: best.and_then(|v| catalog.release(&v)), unknown_tags: unknown.into_iter().collect() }
}

/// The helper request for a stack: HTTP probes of every API service and the MongoDB report.
pub fn helper_request(id: &Identified<'_>, containers: &[ContainerInfo], counts: bool) -> Request {
    let Some(release) = id.release else {
        return Request::default();
    };
    let present: BTreeSet<&str> = containers.iter().map(|c| c.service.as_str()).collect();
    let mut probes = Vec::new();
    for (name, f) in release.services.iter().filter(|(n, _)| present.contains(n.as_str())) {
        let port = f.port.unwrap_or(8080);
        for (check, path) in [("alive", &f.alive), ("health", &f.health)] {
            if let Some(path) = path {
                probes.push(Probe {
                    service: name.clone(),
                    check: check.into(),
                    url: format!("http://{name}:{port}{path}"),
                });
            }
        }
    }
    let dbs: BTreeSet<String> =
        release.services.values().filter(|f| f.schema.is_some()).filter_map(|f| f.db.clone()).collect();
    let mongo = Some(MongoQuery {
        uri: crate::util::mongo_uri(&release.mongo.service),
        dbs: dbs.into_iter().collect(),
        counts,
        all_dbs: counts,
        digests: false,
    });
    Request { probes, mongo, ..Default::default() }
}

/// The observed stack: what `status` prints and every later stage starts from.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// The compose project name (`menderproduction`).
    pub project: String,
    /// The project directory (`com.docker.compose.project.working_dir` label of its first container).
    pub working_dir: Option<String>,
    /// The compose files the project was created with, in order, as absolute paths on the host
    /// (`com.docker.compose.project.config_files` label).
    pub config_files: Vec<String>,
    /// The network the stack's MongoDB is reached on (`menderproduction_mender`): one its container
    /// is attached to, the project's own (`<project>_…`) first; without a MongoDB container, the
    /// first project network of any container.
    pub network: Option<String>,
    /// Every service's networks (sorted): a sidecar that talks to a service joins one of them.
    pub networks: BTreeMap<String, Vec<String>>,
    /// The release the stack runs; `None` when its images match no catalog release.
    pub release: Option<Version>,
    /// Mender images no catalog release has (`mendersoftware/deployments:mender-3.7.99`).
    pub unknown_tags: Vec<String>,
    /// Every container of the project, by compose service.
    pub services: Vec<ServiceState>,
    /// Services of the release that have no container.
    pub missing: Vec<String>,
    /// The stack's MongoDB; `None` when the release is unknown.
    pub mongo: Option<MongoState>,
    /// Each database the release's services migrate, with its schema status.
    pub databases: Vec<DbState>,
    /// Where deployments keeps the artifacts.
    pub storage: Storage,
    /// Releases one hop can reach from here.
    pub next_hops: Vec<NextStop>,
    /// Every service is healthy, none is missing, MongoDB answers and every schema is current.
    pub healthy: bool,
}

impl Stack {
    /// The networks a sidecar joins to reach every one of `services` by name (see [`networks_for`]).
    pub fn networks_for(&self, services: &[&str]) -> Vec<String> {
        networks_for(&self.networks, &self.project, services)
    }

    /// Services whose container is running with Docker health `starting`: inside its start period
    /// or before its first check passed, a state to wait out rather than a verdict.
    pub fn starting(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|s| s.running && s.docker_health.as_deref() == Some("starting"))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The databases' size on disk, summed (bytes; 0 when the server reported none): the space a
    /// dump needs, and the estimate of its progress bar.
    pub fn databases_size(&self) -> u64 {
        self.databases.iter().filter_map(|d| d.size_bytes).sum()
    }

    /// The network a sidecar that talks to `service` alone joins; `None` when it has no container.
    pub fn network_of(&self, service: &str) -> Option<String> {
        self.networks_for(&[service]).into_iter().next()
    }
}

/// Each compose service's networks, from its containers (sorted, without duplicates).
pub fn service_networks(containers: &[ContainerInfo]) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in containers {
        by.entry(c.service.clone()).or_default().extend(c.networks.iter().cloned());
    }
    by.into_iter().map(|(s, n)| (s, n.into_iter().collect())).collect()
}

/// The networks to join to reach every one of `services` by its compose name, whatever other
/// networks the project has: per service, one network its container is attached to — one
/// already chosen when the service shares it, else the project's own (`<project>_…`), else its
/// first (an external network). Services without a container or network add nothing.
pub fn networks_for(by_service: &BTreeMap<String, Vec<String>>, project: &str, services: &[&str]) -> Vec<String> {
    let own = format!("{project}_");
    let mut chosen: Vec<String> = Vec::new();
    for s in services {
        let Some(nets) = by_service.get(*s).filter(|n| !n.is_empty()) else { continue };
        if nets.iter().any(|n| chosen.contains(n)) {
            continue;
        }
        let pick = nets.iter().find(|n| n.starts_with(&own)).unwrap_or(&nets[0]);
        chosen.push(pick.clone());
    }
    chosen
}

/// The first `<project>_…` network of any container (a stack whose release is unknown).
pub fn any_project_network(containers: &[ContainerInfo], project: &str) -> Option<String> {
    containers.iter().flat_map(|c| c.networks.iter()).find(|n| n.starts_with(&format!("{project}_"))).cloned()
}

/// One compose service's container and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    /// Compose service name (`mender-deployments`).
    pub name: String,
    /// What the catalog says it is; `None` for a service the release does not have (a user's own).
    pub role: Option<Role>,
    /// Container name (`menderproduction-mender-deployments-1`).
    pub container: String,
    /// The image reference it was created from.
    pub image: String,
    /// The releases whose catalog entry has this image.
    pub image_releases: Vec<Version>,
    /// The image the release expects, under the mirror prefix if any.
    pub expected_image: Option<String>,
    /// How its image differs from the release's; `None` when it matches (or nothing is expected).
    pub drift: Option<Drift>,
    /// Docker's state word (`running`, `exited`, …).
    pub state: String,
    /// The container is running.
    pub running: bool,
    /// Docker is restarting it after an exit.
    pub restarting: bool,
    /// Docker's restart count.
    pub restarts: i64,
    /// Docker's healthcheck status (`healthy`, `unhealthy`, `starting`) when the image has one.
    pub docker_health: Option<String>,
    /// The helper's HTTP checks of the service (`alive`, `health`).
    pub http: Vec<ProbeResult>,
    /// No problem below.
    pub healthy: bool,
    /// What is wrong with it, one line each (`not running (exited)`, `health check failed: HTTP 503`).
    pub problems: Vec<String>,
}

/// How a service's image differs from what the stack's release runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Drift {
    /// The image belongs to other releases than the stack's.
    OtherRelease {
        /// The releases whose catalog entry has the image.
        releases: Vec<Version>,
    },
    /// The catalog does not know this image at all.
    UnknownImage,
}

/// The stack's MongoDB service and what the helper read from it.
#[derive(Debug, Clone, Serialize)]
pub struct MongoState {
    /// Compose service name (`mender-mongo` in 3.x).
    pub service: String,
    /// The image its container runs (`mongo:4.4`); `None` without a container.
    pub image: Option<String>,
    /// The MongoDB major the release runs (`4.4`).
    pub expected_major: String,
    /// The driver reached the server from inside the network.
    pub reachable: bool,
    /// Why not, in the driver's words.
    pub error: Option<String>,
    /// `buildInfo` version (`4.4.29`).
    pub server_version: Option<String>,
    /// featureCompatibilityVersion (`4.4`).
    pub fcv: Option<String>,
    /// The test bed runs FerretDB in place of mongod (it keeps a featureCompatibilityVersion as
    /// mongod does, but takes no index restore).
    pub ferretdb: bool,
    /// The server will not start on its data (mongod exit 62, "Wrong mongod version"): why, in
    /// words, and what to do; `None` otherwise. The MongoDB service's `problems` carry the same
    /// message.
    pub refusal: Option<MongoRefusal>,
}

/// A Mender database and its schema (`migration_info`) against the release's.
#[derive(Debug, Clone, Serialize)]
pub struct DbState {
    /// Database name (`deviceauth`).
    pub name: String,
    /// Compose services that use it (workflows' server and worker share one).
    pub services: Vec<String>,
    /// `listDatabases` lists it.
    pub exists: bool,
    /// Newest `migration_info` version found (`1.10.0`).
    pub migration: Option<String>,
    /// The version the release's binaries write (`1.10.0`).
    pub expected: Option<String>,
    /// Whether it matches.
    pub status: SchemaStatus,
    /// Size on disk as the server reports it.
    pub size_bytes: Option<u64>,
    /// When the database was first migrated (its oldest `migration_info` entry).
    pub born: Option<String>,
}

/// How a database's schema compares with what the release writes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaStatus {
    /// The schema is the one the release writes.
    Current,
    /// Older than the release needs: a server without --automigrate refuses to start.
    Behind,
    /// Newer than the release: older binaries run on a newer schema (a rollback without restore).
    Ahead,
    /// No schema read, or the release has none for this database.
    Unknown,
}

fn role_of<'a>(release: Option<&'a Release>, service: &str) -> Option<&'a ServiceFacts> {
    release.and_then(|r| r.services.get(service))
}

/// Assembles the stack from its containers and the helper's report.
pub fn assemble(
    project: &str,
    containers: &[ContainerInfo],
    id: &Identified<'_>,
    report: &Response,
    catalog: &Catalog,
    registry: Option<&str>,
) -> Stack {
    let release = id.release;
    let mut services: Vec<ServiceState> = containers
        .iter()
        .map(|c| service_state(c, role_of(release, &c.service), release, report, catalog, registry))
        .collect();
    let refusal = release.and_then(|r| mongo_refusal(r, containers, report, catalog, registry));
    if let (Some(x), Some(r)) = (&refusal, release) {
        for s in services.iter_mut().filter(|s| s.name == r.mongo.service) {
            s.problems.push(x.message.clone());
            s.healthy = false;
        }
    }
    let present: BTreeSet<&str> = containers.iter().map(|c| c.service.as_str()).collect();
    let missing = release
        .map(|r| r.services.keys().filter(|s| !present.contains(s.as_str())).cloned().collect())
        .unwrap_or_default();
    let mongo = release.map(|r| MongoState { refusal, ..mongo_state(r, containers, report, registry) });
    let databases = release.map(|r| db_states(r, report)).unwrap_or_default();
    let first = containers.first();
    let label = |k: &str| first.and_then(|c| c.label(k)).cloned();
    let networks = service_networks(containers);
    let network = release
        .and_then(|r| networks_for(&networks, project, &[r.mongo.service.as_str()]).into_iter().next())
        .or_else(|| any_project_network(containers, project));
    let storage = storage::from_containers(containers, release);
    let next_hops = release.map(|r| next_stops(catalog, &r.version)).unwrap_or_default();
    let healthy = release.is_some()
        && services.iter().all(|s| s.healthy)
        && Vec::<String>::is_empty(&missing)
        && mongo.as_ref().is_some_and(|m| m.reachable)
        && databases.iter().all(|d| d.status == SchemaStatus::Current);
    Stack {
        project: project.to_string(),
        working_dir: label(crate::labels::LABEL_WORKING_DIR),
        config_files: label(crate::labels::LABEL_CONFIG_FILES)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        network,
        networks,
        release: release.map(|r| r.version.clone()),
        unknown_tags: id.unknown_tags.clone(),
        services,
        missing,
        mongo,
        databases,
        storage,
        next_hops,
        healthy,
    }
}

fn service_state(
    c: &ContainerInfo,
    facts: Option<&ServiceFacts>,
    release: Option<&Release>,
    report: &Response,
    catalog: &Catalog,
    registry: Option<&str>,
) -> ServiceState {
    let img = ImageRef::parse(&c.image, registry);
    let image_releases: Vec<Version> = {
        let set: BTreeSet<Version> =
            catalog.releases_with_image(&img).into_iter().map(|(r, _)| r.version.clone()).collect();
        set.into_iter().collect()
    };
    let expected = facts.map(|f| ImageRef::parse(&f.image, None));
    // MongoDB runs its stages' majors under a release that documents them (plan::supported_majors).
    let staged_mongo = match (facts, release, &expected) {
        (Some(f), Some(r), Some(e)) if f.role == crate::catalog::Role::Mongo && e.repository == img.repository => {
            img.tag.as_ref().is_some_and(|t| crate::plan::supported_majors(r).contains(t))
        }
        _ => false,
    };
    let drift = match (&expected, release) {
        (Some(e), _) if *e == img || staged_mongo => None,
        (Some(_), _) if image_releases.is_empty() => Some(Drift::UnknownImage),
        (Some(_), _) => Some(Drift::OtherRelease { releases: image_releases.clone() }),
        (None, _) => None,
    };
    let http: Vec<ProbeResult> = report.probes.iter().filter(|p| p.service == c.service).cloned().collect();
    let mut problems = Vec::new();
    if !c.running {
        problems.push(format!("not running ({})", c.state));
    }
    if c.restarting {
        problems.push(format!("restarting (restarted {} times)", c.restart_count));
    }
    if let Some(h) = c.health.as_deref().filter(|h| *h != "healthy") {
        problems.push(format!("Docker health {h}"));
    }
    for p in http.iter().filter(|p| !p.ok()) {
        let why = p.error.clone().unwrap_or_else(|| format!("HTTP {}", p.status.unwrap_or(0)));
        problems.push(format!("{} check failed: {why}", p.check));
    }
    match &drift {
        Some(Drift::UnknownImage) => problems.push(format!("image {img} is not in the catalog")),
        Some(Drift::OtherRelease { releases }) => problems.push(format!(
            "image {img} belongs to release {}",
            releases.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        )),
        None => {}
    }
    ServiceState {
        name: c.service.clone(),
        role: facts.map(|f| f.role),
        container: c.name.clone(),
        image: c.image.clone(),
        image_releases,
        expected_image: expected.map(|e| e.qualified(registry)),
        drift,
        state: c.state.clone(),
        running: c.running,
        restarting: c.restarting,
        restarts: c.restart_count,
        docker_health: c.health.clone(),
        http,
        healthy: problems.is_empty(),
        problems,
    }
}

impl MongoState {
    /// The MongoDB major the server runs (`5.0` of `buildInfo` `5.0.31`), else of its image tag.
    pub fn running_major(&self) -> Option<String> {
        self.server_version
            .as_deref()
            .and_then(refusal::major_of)
            .or_else(|| self.image.as_deref().and_then(|i| i.rsplit_once(':')).and_then(|(_, t)| refusal::major_of(t)))
    }
}

/// The stack's MongoDB container refusing its data, when it does (see [`refusal::diagnose`]).
fn mongo_refusal(
    r: &Release,
    containers: &[ContainerInfo],
    report: &Response,
    catalog: &Catalog,
    registry: Option<&str>,
) -> Option<MongoRefusal> {
    let c = containers.iter().find(|c| c.service == r.mongo.service)?;
    let seen = refusal::Seen {
        image: &c.image,
        running: c.running,
        restarting: c.restarting,
        exit_code: c.exit_code,
        log: c.log_tail.as_deref(),
        reachable: report.mongo.as_ref().is_some_and(|m| m.reachable),
    };
    refusal::diagnose(&seen, Some(r), catalog, registry)
}

fn mongo_state(r: &Release, containers: &[ContainerInfo], report: &Response, _registry: Option<&str>) -> MongoState {
    let c = containers.iter().find(|c| c.service == r.mongo.service);
    let m = report.mongo.clone().unwrap_or_default();
    MongoState {
        service: r.mongo.service.clone(),
        image: c.map(|c| c.image.clone()),
        expected_major: r.mongo.major.clone(),
        reachable: m.reachable,
        error: m.error,
        server_version: m.version,
        fcv: m.fcv,
        ferretdb: m.ferretdb,
        refusal: None,
    }
}

fn db_states(r: &Release, report: &Response) -> Vec<DbState> {
    // Per database: its services, the schema the release migrates it to, and the lowest it may be
    // at when the catalog knows the release's version only as a range.
    type Schemas = (Vec<String>, Option<Version>, Option<Version>);
    let mut by_db: BTreeMap<String, Schemas> = BTreeMap::new();
    for (name, f) in &r.services {
        if let (Some(db), Some(schema)) = (&f.db, &f.schema) {
            let e = by_db.entry(db.clone()).or_insert_with(|| (vec![], None, None));
            e.0.push(name.clone());
            if e.1.as_ref().is_none_or(|v| schema > v) {
                e.1 = Some(schema.clone());
            }
            if let Some(min) = &f.schema_min {
                e.2 = Some(min.clone());
            }
        }
    }
    let reports = report.mongo.as_ref().map(|m| m.databases.as_slice()).unwrap_or_default();
    by_db
        .into_iter()
        .map(|(name, (services, expected, lowest))| {
            let found = reports.iter().find(|d| d.name == name);
            let migration = found.and_then(|d| d.migration.clone());
            let status = match (migration.as_deref().and_then(|m| Version::parse(m).ok()), &expected) {
                (Some(m), Some(e)) if m == *e => SchemaStatus::Current,
                (Some(m), Some(e)) if lowest.as_ref().is_some_and(|lo| m >= *lo && m <= *e) => SchemaStatus::Current,
                (Some(m), Some(e)) if m < *e => SchemaStatus::Behind,
                (Some(_), Some(_)) => SchemaStatus::Ahead,
                (None, Some(_)) if found.is_some() => SchemaStatus::Behind,
                _ => SchemaStatus::Unknown,
            };
            DbState {
                name,
                services,
                exists: found.is_some_and(|d| d.exists),
                migration,
                expected: expected.map(|v| match &lowest {
                    Some(lo) => format!("{lo}..{v}"),
                    None => v.to_string(),
                }),
                status,
                size_bytes: found.and_then(|d| d.size_bytes),
                born: found.and_then(|d| d.born.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
