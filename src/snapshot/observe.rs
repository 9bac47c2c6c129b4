//! Observing a live stack: the engine reads, the pure functions of this module decide.

use bollard::Docker;

use super::{ContainerInfo, Stack, assemble, discover, helper_request, identify};
use crate::catalog::Catalog;
use crate::engine::docker::DockerError;
use crate::engine::helper::{MongoReport, Response};
use crate::engine::inspect::{compose_summaries, log_tail, project_containers};
use crate::engine::sidecar::{SidecarError, SidecarSpec, run_helper_with};
use crate::plan::saved::{ServicePrint, StackPrint};

/// Why the stack could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The daemon is unreachable or refused a listing or an inspect.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// No single Mender project to work on.
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    /// The helper sidecar (probes, MongoDB report) could not run.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
}

/// What to observe.
pub struct Options<'a> {
    /// `-p`: the compose project; `None`: the only one running Mender images.
    pub project: Option<&'a str>,
    /// `--image-registry`: the mirror prefix the images are pulled under (`testbed.local`).
    pub registry: Option<&'a str>,
    /// Count the documents of every collection (slower; for backups).
    pub counts: bool,
}

/// The stack and the containers it was built from (whose environment holds settings, and
/// secrets, that the model never carries).
pub struct Observed {
    /// The observed stack.
    pub stack: Stack,
    /// The project's containers, inspected, environment included.
    pub containers: Vec<ContainerInfo>,
}

impl Observed {
    /// What a saved plan depends on in this stack (`plan --out`, `upgrade --plan`): `None` when
    /// its release is unknown (no plan starts there).
    pub fn print(&self) -> Option<StackPrint> {
        let (stack, mongo) = (&self.stack, self.stack.mongo.as_ref());
        Some(StackPrint {
            project: stack.project.clone(),
            release: stack.release.clone()?,
            mongo_version: mongo.and_then(|m| m.server_version.clone()),
            fcv: mongo.and_then(|m| m.fcv.clone()),
            services: self
                .containers
                .iter()
                .map(|c| {
                    let print = ServicePrint {
                        image: c.image.clone(),
                        image_id: c.image_id.clone(),
                        config_hash: c.label(crate::labels::LABEL_CONFIG_HASH).cloned(),
                    };
                    (c.service.clone(), print)
                })
                .collect(),
        })
    }
}

/// Observes the stack: chooses the project, inspects its containers, identifies the release, runs
/// the helper's probes and MongoDB report on the project network.
///
/// # Errors
/// [`ObserveError`]; an unhealthy stack is a [`Stack`] with `healthy: false`, not an error.
pub async fn observe(docker: &Docker, catalog: &Catalog, opts: &Options<'_>) -> Result<Stack, ObserveError> {
    Ok(observe_full(docker, catalog, opts).await?.stack)
}

/// [`observe`], keeping the containers (their environment holds storage settings and keys).
///
/// # Errors
/// As [`observe`].
pub async fn observe_full(docker: &Docker, catalog: &Catalog, opts: &Options<'_>) -> Result<Observed, ObserveError> {
    let all = compose_summaries(docker).await?;
    let project = discover::select(&all, opts.project, opts.registry)?;
    let mut containers = project_containers(docker, &project).await?;
    let id = identify(&containers, catalog, opts.registry);
    // A MongoDB that does not stay up says why in its last log lines (mongod's fatal line for a
    // featureCompatibilityVersion it refuses): read them for the verdict, a bounded tail only.
    if let Some(r) = id.release {
        for c in containers.iter_mut().filter(|c| c.service == r.mongo.service) {
            if !c.running || c.restarting || c.restart_count > 0 {
                match log_tail(docker, &c.id, super::refusal::LOG_TAIL_LINES).await {
                    Ok(log) => c.log_tail = Some(log),
                    // Without its log, the exit code alone still tells a refusal.
                    Err(e) => tracing::debug!("no log of {}: {e}", c.name),
                }
            }
        }
    }
    let request = helper_request(&id, &containers, opts.counts);
    // The helper joins the network of every service it talks to, whatever else the project has.
    let mut targets: Vec<&str> = request.probes.iter().map(|p| p.service.as_str()).collect();
    if let Some(r) = id.release {
        targets.insert(0, r.mongo.service.as_str());
    }
    let networks = super::networks_for(&super::service_networks(&containers), &project, &targets);
    let report = match (networks.split_first(), id.release) {
        (Some((net, rest)), Some(_)) => {
            let spec = SidecarSpec { extra_networks: rest.to_vec(), ..Default::default() };
            run_helper_with(docker, net, &request, spec).await?
        }
        // Nothing to probe on: every check reads as failed rather than skipped.
        _ => Response {
            mongo: Some(MongoReport {
                error: Some("the project has no network of its own".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    };
    let stack = assemble(&project, &containers, &id, &report, catalog, opts.registry);
    Ok(Observed { stack, containers })
}

/// How long a Docker health `starting` is waited for before it counts as a verdict.
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// [`observe_full`], waiting while a container's Docker health is `starting` (inside its start
/// period, or before its first check passed): a transient state is not a verdict. Looks again
/// every 2 s, for at most `timeout`; then the last observation stands as it is.
///
/// # Errors
/// As [`observe`].
pub async fn observe_settled(
    docker: &Docker,
    catalog: &Catalog,
    opts: &Options<'_>,
    timeout: std::time::Duration,
) -> Result<Observed, ObserveError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let o = observe_full(docker, catalog, opts).await?;
        let starting = o.stack.starting();
        if starting.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(o);
        }
        tracing::info!("waiting for {} (Docker health: starting)", starting.join(", "));
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// What the stack holds, for comparing before and after (a restore, an upgrade): every
/// collection's count and content digest, and the in-stack artifact store's inventory.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DataReport {
    /// Every database except admin, config and local, with each collection's count and digest.
    pub databases: Vec<crate::engine::helper::DbReport>,
    /// The in-stack artifact store's objects; `None` for a store outside the stack.
    pub artifacts: Option<Vec<crate::engine::store::InventoryEntry>>,
    /// Why the artifact inventory failed, when it did.
    pub artifacts_error: Option<String>,
}

/// Reads a [`DataReport`] of an observed stack through the helper (a full read of every
/// collection); empty when the stack has no network or no mongo.
///
/// # Errors
/// [`ObserveError::Sidecar`] when the helper could not run.
pub async fn data(docker: &Docker, observed: &Observed) -> Result<DataReport, ObserveError> {
    use crate::engine::helper::{ArtifactsJob, ArtifactsOp, MongoQuery, Request};
    use crate::snapshot::StorageKind;
    let stack = &observed.stack;
    let Some(mongo) = &stack.mongo else { return Ok(DataReport::default()) };
    let mut targets = vec![mongo.service.as_str()];
    targets.extend(stack.storage.service.as_deref());
    let networks = stack.networks_for(&targets);
    let Some((network, rest)) = networks.split_first() else { return Ok(DataReport::default()) };
    let q = MongoQuery {
        uri: crate::util::mongo_uri(&mongo.service),
        dbs: vec![],
        counts: true,
        all_dbs: true,
        digests: true,
    };
    let mut spec = SidecarSpec { extra_networks: rest.to_vec(), ..Default::default() };
    let mut artifacts = None;
    let deployments = observed.containers.iter().find(|c| c.service.ends_with("deployments"));
    if let (StorageKind::Volume, Some(_)) = (stack.storage.kind, deployments) {
        spec.env = store_keys(observed);
        artifacts = Some(ArtifactsJob {
            op: ArtifactsOp::Inventory,
            endpoint: stack.storage.endpoint.clone().unwrap_or_default(),
            bucket: stack.storage.bucket.clone().unwrap_or_default(),
            region: stack.storage.region.clone().unwrap_or_default(),
            dir: "/tmp".into(),
        });
    }
    let r =
        run_helper_with(docker, network, &Request { mongo: Some(q), artifacts, ..Default::default() }, spec).await?;
    let a = r.artifacts.unwrap_or_default();
    Ok(DataReport {
        databases: r.mongo.map(|m| m.databases).unwrap_or_default(),
        artifacts: a.inventory,
        artifacts_error: a.error,
    })
}

/// Runs the smoke check of an observed stack: through its API gateway ([`super::smoke`]), a
/// helper on the gateway's network, with the gateway's certificate mounted, makes the requests a
/// device and a person make; beside it, a helper on MongoDB's and the store's networks looks for
/// a `sample` of the artifacts the deployments database references. A stack without a gateway
/// container or certificate is a skipped gateway part, a helper that fails a failed check (each
/// says why), never an error: the check is a verdict.
pub async fn smoke(
    docker: &Docker,
    observed: &Observed,
    opts: &super::smoke::SmokeOptions,
) -> super::smoke::SmokeReport {
    let sample = opts.artifact_sample;
    let (mut report, artifacts) =
        tokio::join!(gateway_smoke(docker, observed, opts), artifact_check(docker, observed, sample));
    match artifacts {
        Ok((store, r)) => report.add_artifacts_check(&store, sample, &r),
        Err(why) => report.notes.push(why),
    }
    report
}

/// The artifact sample's seed, one per run of the tool: pre-flight and every gate of a hop check
/// the same artifacts, so a verdict does not depend on which ones a new draw picked.
fn run_seed() -> &'static str {
    static SEED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        format!("{:x}", std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or_default())
    })
}

/// The store's keys as deployments has them, for a helper's environment.
fn store_keys(observed: &Observed) -> Vec<String> {
    use crate::engine::helper::{KEY_ENV, SECRET_ENV};
    let d = observed.containers.iter().find(|c| c.service.ends_with("deployments"));
    let key = |k: &str| d.and_then(|d| d.env_var(k)).unwrap_or_default().to_string();
    vec![
        format!("{KEY_ENV}={}", key("DEPLOYMENTS_AWS_AUTH_KEY")),
        format!("{SECRET_ENV}={}", key("DEPLOYMENTS_AWS_AUTH_SECRET")),
    ]
}

async fn gateway_smoke(
    docker: &Docker,
    observed: &Observed,
    opts: &super::smoke::SmokeOptions,
) -> super::smoke::SmokeReport {
    use super::smoke::{self, SmokeReport};
    use crate::engine::helper::{DirectStore, PASSWORD_ENV, Request, SessionJob, SmokeJob};
    let stack = &observed.stack;
    let target = match smoke::target(stack, &observed.containers) {
        Ok(t) => t,
        Err(e) => return SmokeReport::skipped(&e),
    };
    // The store's networks too: the session compares the download with the store's own bytes.
    let mut on: Vec<&str> = vec![target.service.as_str()];
    on.extend(stack.storage.service.as_deref().filter(|_| opts.credentials.is_some()));
    let networks = stack.networks_for(&on);
    let Some((network, rest)) = networks.split_first() else {
        return SmokeReport::failed(Some(&target), format!("the gateway {} is on no network", target.service));
    };
    let mut spec =
        SidecarSpec { binds: vec![target.bind.clone()], extra_networks: rest.to_vec(), ..Default::default() };
    let session = opts.credentials.as_ref().map(|c| {
        spec.env.push(format!("{PASSWORD_ENV}={}", c.password()));
        let store = match (stack.storage.kind, &stack.storage.endpoint, &stack.storage.bucket) {
            (super::StorageKind::Volume, Some(endpoint), Some(bucket)) => {
                spec.env.extend(store_keys(observed));
                Some(DirectStore {
                    endpoint: endpoint.clone(),
                    bucket: bucket.clone(),
                    region: stack.storage.region.clone().unwrap_or_else(|| "us-east-1".into()),
                })
            }
            _ => None,
        };
        let gateway_hosts =
            std::iter::once(target.host.clone()).chain(target.storage.iter().map(|s| s.host.clone())).collect();
        SessionJob { user: c.user.clone(), store, gateway_hosts }
    });
    let job = SmokeJob {
        address: format!("{}:{}", target.service, smoke::HTTPS_PORT),
        host: target.host.clone(),
        cert: target.cert.clone(),
        requests: smoke::requests(&target),
        session,
    };
    let mut report =
        match run_helper_with(docker, network, &Request { smoke: Some(job), ..Default::default() }, spec).await {
            Ok(r) => {
                let mut report = smoke::judge(&target, &r.smoke);
                if let (Some(c), Some(s)) = (&opts.credentials, &r.session) {
                    report.add_session_check(&c.user, s);
                }
                report
            }
            Err(e) => SmokeReport::failed(Some(&target), format!("the helper could not run: {e}")),
        };
    if opts.credentials.is_none() {
        report.notes.push(smoke::NO_SESSION.into());
    }
    report
}

/// The artifact check of [`smoke`]: the store's description (`bucket NAME`) and what the helper
/// saw, or why there is nothing to check ([`super::smoke::artifact_job`]).
async fn artifact_check(
    docker: &Docker,
    observed: &Observed,
    sample: super::smoke::ArtifactSample,
) -> Result<(String, crate::engine::helper::ArtifactCheckResult), String> {
    use crate::engine::helper::{ArtifactCheckResult, Request};
    let stack = &observed.stack;
    let job = super::smoke::artifact_job(stack, sample, run_seed())?;
    let store = format!("bucket {}", job.bucket);
    let mut targets: Vec<&str> = stack.mongo.iter().map(|m| m.service.as_str()).collect();
    targets.extend(stack.storage.service.as_deref());
    let networks = stack.networks_for(&targets);
    let Some((network, rest)) = networks.split_first() else {
        let r = ArtifactCheckResult { error: Some("MongoDB is on no network".into()), ..Default::default() };
        return Ok((store, r));
    };
    let spec = SidecarSpec { extra_networks: rest.to_vec(), env: store_keys(observed), ..Default::default() };
    let r = match run_helper_with(docker, network, &Request { artifact_check: Some(job), ..Default::default() }, spec)
        .await
    {
        Ok(r) => r.artifact_check.unwrap_or_else(|| ArtifactCheckResult {
            error: Some("the helper gave no answer".into()),
            ..Default::default()
        }),
        Err(e) => ArtifactCheckResult { error: Some(format!("the helper could not run: {e}")), ..Default::default() },
    };
    Ok((store, r))
}

/// How long a failing smoke check is tried again before it is a verdict: a gateway just started
/// (by the tool's own backup, or a hop) takes a moment to listen and to load its routes.
pub const SMOKE_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// [`smoke`], tried again every 2 s while it fails, for at most `timeout`; the last report stands.
pub async fn smoke_settled(
    docker: &Docker,
    observed: &Observed,
    opts: &super::smoke::SmokeOptions,
    timeout: std::time::Duration,
) -> super::smoke::SmokeReport {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let r = smoke(docker, observed, opts).await;
        if r.passed || tokio::time::Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

impl From<ObserveError> for crate::exit::Failure {
    fn from(e: ObserveError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        use discover::DiscoverError;
        match e {
            ObserveError::Docker(d) => d.into(),
            ObserveError::Discover(d @ DiscoverError::NoProject { .. }) => Failure::new(
                Exit::Precondition,
                d,
                crate::exit::UNCHANGED_ALL,
                "start the Mender Server (production/run up -d), or use --image-registry when its images come from a mirror",
            ),
            ObserveError::Discover(d @ DiscoverError::Ambiguous { .. }) => {
                Failure::new(Exit::Usage, d, crate::exit::UNCHANGED_ALL, "pass -p PROJECT")
            }
            ObserveError::Discover(d @ DiscoverError::NotFound { .. }) => Failure::new(
                Exit::Usage,
                d,
                crate::exit::UNCHANGED_ALL,
                "check the project name with `docker compose ls -a`",
            ),
            ObserveError::Sidecar(s) => s.into(),
        }
    }
}
