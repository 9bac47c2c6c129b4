//! Observing a live stack: the engine reads, the pure functions of this module decide.

use bollard::Docker;

use super::{ContainerInfo, Stack, assemble, discover, helper_request, identify};
use crate::catalog::Catalog;
use crate::engine::docker::DockerError;
use crate::engine::helper::{MongoReport, Response};
use crate::engine::inspect::{compose_summaries, project_containers};
use crate::engine::sidecar::{SidecarError, run_helper};

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
    let containers = project_containers(docker, &project).await?;
    let id = identify(&containers, catalog, opts.registry);
    let request = helper_request(&id, &containers, opts.counts);
    let network =
        containers.iter().flat_map(|c| c.networks.iter()).find(|n| n.starts_with(&format!("{project}_"))).cloned();
    let report = match (&network, id.release) {
        (Some(net), Some(_)) => run_helper(docker, net, &request).await?,
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
    use crate::engine::helper::{ArtifactsJob, ArtifactsOp, KEY_ENV, MongoQuery, Request, SECRET_ENV};
    use crate::snapshot::StorageKind;
    let stack = &observed.stack;
    let (Some(network), Some(mongo)) = (&stack.network, &stack.mongo) else { return Ok(DataReport::default()) };
    let q = MongoQuery {
        uri: crate::util::mongo_uri(&mongo.service),
        dbs: vec![],
        counts: true,
        all_dbs: true,
        digests: true,
    };
    let mut spec = crate::engine::sidecar::SidecarSpec::default();
    let mut artifacts = None;
    let deployments = observed.containers.iter().find(|c| c.service.ends_with("deployments"));
    if let (StorageKind::Volume, Some(d)) = (stack.storage.kind, deployments) {
        spec.env = vec![
            format!("{KEY_ENV}={}", d.env_var("DEPLOYMENTS_AWS_AUTH_KEY").unwrap_or_default()),
            format!("{SECRET_ENV}={}", d.env_var("DEPLOYMENTS_AWS_AUTH_SECRET").unwrap_or_default()),
        ];
        artifacts = Some(ArtifactsJob {
            op: ArtifactsOp::Inventory,
            endpoint: stack.storage.endpoint.clone().unwrap_or_default(),
            bucket: stack.storage.bucket.clone().unwrap_or_default(),
            region: stack.storage.region.clone().unwrap_or_default(),
            dir: "/tmp".into(),
        });
    }
    let r = crate::engine::sidecar::run_helper_with(
        docker,
        network,
        &Request { mongo: Some(q), artifacts, ..Default::default() },
        spec,
    )
    .await?;
    let a = r.artifacts.unwrap_or_default();
    Ok(DataReport {
        databases: r.mongo.map(|m| m.databases).unwrap_or_default(),
        artifacts: a.inventory,
        artifacts_error: a.error,
    })
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
                "nothing",
                "start the Mender Server (production/run up -d), or use --image-registry when its images come from a mirror",
            ),
            ObserveError::Discover(d @ DiscoverError::Ambiguous { .. }) => {
                Failure::new(Exit::Usage, d, "nothing", "pass -p PROJECT")
            }
            ObserveError::Discover(d @ DiscoverError::NotFound { .. }) => {
                Failure::new(Exit::Usage, d, "nothing", "check the project name with `docker compose ls -a`")
            }
            ObserveError::Sidecar(s) => s.into(),
        }
    }
}
