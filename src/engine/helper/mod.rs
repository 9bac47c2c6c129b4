//! What the tool does inside its helper sidecar on the stack's network (`helper --request JSON`):
//! HTTP health probes of the services, and a MongoDB report (server version,
//! featureCompatibilityVersion, each database's `migration_info`, collection counts). The report
//! is printed as JSON on stdout.

mod artifact_check;
mod artifacts;
mod mongo;
mod probe;
mod session;
mod smoke;
mod tree;

use serde::{Deserialize, Serialize};

pub use artifact_check::{ArtifactCheckJob, ArtifactCheckResult, CheckedArtifact};
pub use artifacts::{ArtifactsJob, ArtifactsOp, ArtifactsResult, KEY_ENV, SECRET_ENV};
pub use mongo::{CollectionCount, CountQuery, DbReport, FcvError, FcvJob, FcvOutcome, MongoQuery, MongoReport};
pub use probe::{Probe, ProbeResult};
pub use session::{DirectStore, PASSWORD_ENV, SessionJob, SessionResult};
pub use smoke::{SmokeAnswer, SmokeJob, SmokeRequest};
pub use tree::{CopyJob, TreeCopied};

/// What the tool asks its helper sidecar, as JSON on the helper's command line; each part optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// HTTP probes to run, in parallel.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// The MongoDB report to read.
    #[serde(default)]
    pub mongo: Option<MongoQuery>,
    /// An artifact job to run.
    #[serde(default)]
    pub artifacts: Option<ArtifactsJob>,
    /// Drop every database but admin, config and local (before an exact restore); runs first.
    #[serde(default)]
    pub wipe: Option<String>,
    /// Check and raise the featureCompatibilityVersion after a MongoDB major upgrade.
    #[serde(default)]
    pub fcv: Option<FcvJob>,
    /// Documents matching a filter, counted (a hop's data checks).
    #[serde(default)]
    pub counts: Vec<CountQuery>,
    /// Copy a directory tree exactly (a data volume onto a new one); runs first.
    #[serde(default)]
    pub copy: Option<CopyJob>,
    /// Requests through the API gateway, as devices and users make them.
    #[serde(default)]
    pub smoke: Option<SmokeJob>,
    /// The artifacts the deployments database references, looked for in the store.
    #[serde(default)]
    pub artifact_check: Option<ArtifactCheckJob>,
}

/// The helper's answer, printed as JSON on its stdout; one part for each part of the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    /// One result per probe, in the request's order.
    pub probes: Vec<ProbeResult>,
    /// The MongoDB report, when asked.
    pub mongo: Option<MongoReport>,
    /// The artifact job's result, when asked.
    #[serde(default)]
    pub artifacts: Option<ArtifactsResult>,
    /// The databases dropped, or why not.
    #[serde(default)]
    pub wiped: Option<Result<Vec<String>, String>>,
    /// What the FCV step did, or why it failed.
    #[serde(default)]
    pub fcv: Option<Result<String, String>>,
    /// One per `Request::counts`, in order: the count, or why it could not be taken.
    #[serde(default)]
    pub counts: Vec<Result<u64, String>>,
    /// What the copy did, or why it failed.
    #[serde(default)]
    pub copied: Option<Result<TreeCopied, String>>,
    /// One per request of `Request::smoke`, in order.
    #[serde(default)]
    pub smoke: Vec<SmokeAnswer>,
    /// The artifact check's result, when asked.
    #[serde(default)]
    pub artifact_check: Option<ArtifactCheckResult>,
    /// The smoke job's session, when asked.
    #[serde(default)]
    pub session: Option<SessionResult>,
}

/// Runs a request inside the helper: the wipe and the FCV step first, then probes, the MongoDB
/// report and the artifact job concurrently. Failures are in the response, never a panic.
pub async fn run(req: Request) -> Response {
    let copied = match req.copy.clone() {
        Some(job) => Some(
            tokio::task::spawn_blocking(move || tree::copy(&job))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
        ),
        None => None,
    };
    let wiped = match &req.wipe {
        Some(uri) => Some(mongo::wipe(uri).await.map_err(|e| e.to_string())),
        None => None,
    };
    let fcv = match &req.fcv {
        // The wire keeps the text the upgrade journal and progress show.
        Some(job) => Some(mongo::set_fcv(job).await.map(|o| o.to_string()).map_err(|e| e.to_string())),
        None => None,
    };
    let (probes, smoke, mongo, artifacts, artifact_check) = tokio::join!(
        probe::run_all(&req.probes),
        async {
            match &req.smoke {
                Some(job) => smoke::run(job).await,
                None => (Vec::new(), None),
            }
        },
        async {
            match &req.mongo {
                Some(q) => Some(mongo::report(q).await),
                None => None,
            }
        },
        async {
            match &req.artifacts {
                Some(job) => Some(artifacts::run(job).await),
                None => None,
            }
        },
        async {
            match &req.artifact_check {
                Some(job) => Some(artifact_check::run(job).await),
                None => None,
            }
        }
    );
    let mut counts = Vec::new();
    for q in &req.counts {
        counts.push(mongo::count(q).await);
    }
    let (smoke, session) = smoke;
    Response { probes, mongo, artifacts, wiped, fcv, counts, copied, smoke, artifact_check, session }
}
