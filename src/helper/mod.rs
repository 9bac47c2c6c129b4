//! What the tool does inside its helper sidecar on the stack's network (`helper --request JSON`):
//! HTTP health probes of the services, and a MongoDB report (server version,
//! featureCompatibilityVersion, each database's `migration_info`, collection counts). The report
//! is printed as JSON on stdout.

mod mongo;
mod probe;

use serde::{Deserialize, Serialize};

pub use mongo::{CollectionCount, DbReport, MongoQuery, MongoReport};
pub use probe::{Probe, ProbeResult};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub probes: Vec<Probe>,
    #[serde(default)]
    pub mongo: Option<MongoQuery>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub probes: Vec<ProbeResult>,
    pub mongo: Option<MongoReport>,
}

pub async fn run(req: Request) -> Response {
    let (probes, mongo) = tokio::join!(probe::run_all(&req.probes), async {
        match &req.mongo {
            Some(q) => Some(mongo::report(q).await),
            None => None,
        }
    });
    Response { probes, mongo }
}
