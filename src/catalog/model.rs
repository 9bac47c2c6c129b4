//! The release catalog as data: what each Mender Server release runs, and how lines connect.

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};

/// Everything the tool knows about Mender Server releases.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The upgrade rule as Mender states it, quoted with its source (mender-docs "Upgrading from
    /// previous versions").
    pub rule: String,
    /// Release lines in version order (`lines.yaml`), server lines and others.
    pub lines: Vec<Line>,
    /// Every release with full facts (`releases.yaml`), generated from `mender-catalog.yaml`.
    pub releases: Vec<Release>,
    /// MongoDB majors in upgrade order (`4.4`, `5.0`, `6.0`, `7.0`, `8.0`): a mongo hop goes one step
    /// of this list at a time.
    pub mongo_majors: Vec<String>,
    /// Every upstream base file of every 3.x tag by sha256 (`catalog/upstream-files.yaml`).
    pub upstream: UpstreamFiles,
}

/// Per tag, the sha256 (lowercase hex) of each base file of an integration checkout, by path
/// relative to the checkout (mendersoftware/integration@<tag>; reference
/// `upstream-integration/<tag>.sha256`).
pub type UpstreamFiles = BTreeMap<Version, BTreeMap<String, String>>;

/// A release line such as "3.6", with the release a hop into it lands on.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Line {
    /// Line name, `major.minor` (`3.6`).
    pub line: String,
    /// Whether the line is a Mender Server release (a hop can land on it).
    pub server_release: bool,
    /// The release a hop into this line lands on (`3.6.5` for `3.6`).
    #[serde(default)]
    pub stop: Option<Version>,
    /// Every tag of the line, with or without facts, oldest first.
    #[serde(default)]
    pub tags: Vec<Version>,
    /// What the operator should know about the line (why a non-server line cannot be a target).
    #[serde(default)]
    pub note: Option<String>,
    /// How the line is reached; `None` for the first line.
    #[serde(default)]
    pub upgrade: Option<LineUpgrade>,
    /// Whether Mender still supports the line, as its docs said when the catalog was written.
    #[serde(default)]
    pub support: Option<Support>,
}

/// A line's support by Mender.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Support {
    /// Supported or not.
    pub status: SupportStatus,
    /// The month support ended or ends (`2025-05`), when the docs name one.
    #[serde(default)]
    pub until: Option<String>,
    /// The docs that say so (`mender-docs@<ref>:<path>`).
    pub source: String,
}

/// Whether Mender still supports a line.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SupportStatus {
    /// Mender still ships fixes for the line.
    Supported,
    /// End of life: no fixes, security ones included.
    Ended,
}

impl Support {
    /// "supported" or "out of support since 2025-05".
    pub fn describe(&self) -> String {
        match (self.status, &self.until) {
            (SupportStatus::Supported, _) => "supported".into(),
            (SupportStatus::Ended, Some(until)) => format!("out of support since {until}"),
            (SupportStatus::Ended, None) => "out of support".into(),
        }
    }
}

/// How a line is reached: from which earlier lines, and what an operator must do by hand.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LineUpgrade {
    /// The lines a hop into this one may start from: the adjacent line, plus documented exceptions
    /// (`3.6` also from `3.3` and `3.4`).
    pub from: Vec<String>,
    /// Set when a hop into this line starts from the previous line's newest patch only: why.
    #[serde(default)]
    pub from_stop: Option<String>,
    /// The maintenance window Mender's notes announce for the hop (`about 15 minutes`).
    #[serde(default)]
    pub window: Option<String>,
    /// What the operator must do by hand around the hop, each with its source.
    #[serde(default)]
    pub steps: Vec<ManualStep>,
    /// Data that must not exist when a hop into this line starts (checked before any downtime).
    #[serde(default)]
    pub refuse_while: Vec<DataCheck>,
}

/// A hop is refused while `db.collection` holds documents matching `filter` (a MongoDB query).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DataCheck {
    /// What the matching documents are, for people: "pending workflows jobs".
    pub what: String,
    /// The database.
    pub db: String,
    /// The collection.
    pub collection: String,
    /// The MongoDB query the documents match, as JSON.
    pub filter: serde_json::Value,
    /// Why they must be gone, and what to do.
    pub why: String,
    /// Where the fact comes from (`owner/repo@ref:path`).
    pub source: String,
}

/// A step of a hop that the tool cannot do and the operator must (re-issue a certificate, set
/// `ALLOWED_HOSTS`, …).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManualStep {
    /// Before the hop, or after it.
    pub when: When,
    /// What to do, in the operator's words.
    pub text: String,
    /// Where the fact comes from (`mendersoftware/integration@3.2.0:production/run`).
    pub source: String,
    /// The step is about the MongoDB major the line moves to: it belongs to the MongoDB stage that
    /// makes that move (asked before the stage, not before the application hop that runs on the
    /// new major already), and is dropped when the stack already runs that major.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mongo: bool,
}

/// When a [`ManualStep`] is due.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Before the hop starts; the operator confirms it is done.
    Before,
    /// After the hop has passed its gates.
    After,
}

/// One Mender Server release and its open-source compose services.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Release {
    /// The release, `3.7.11`.
    pub version: Version,
    /// Its line name (`3.7`).
    pub line: String,
    /// Release date, `YYYY-MM-DD`.
    pub date: String,
    /// The upstream tree the facts come from (`mendersoftware/integration@3.7.11`,
    /// `mendersoftware/mender-server@v4.0.0`).
    pub source: String,
    /// The compose layout the release's upstream files use.
    pub layout: Layout,
    /// The compose project name upstream uses (`menderproduction` for 3.x, `mender` for 4.x).
    pub project: String,
    /// The compose files upstream passes to `docker compose -f`, in order, relative to the project
    /// directory (`docker-compose.yml`, …, `production/config/prod.yml`).
    pub compose_files: Vec<String>,
    /// Whether `compose-templates/<version>/` holds base compose files for this release.
    pub templates: bool,
    /// The MongoDB the release runs.
    pub mongo: MongoFacts,
    /// Every open-source compose service of the release, by compose service name.
    pub services: BTreeMap<String, ServiceFacts>,
    /// What an operator must know about landing on or running this release.
    #[serde(default)]
    pub notes: Vec<ReleaseNote>,
}

/// A documented trap of one release, with its source.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ReleaseNote {
    /// What happens, and what to do.
    pub text: String,
    /// Where the fact comes from.
    pub source: String,
}

/// The shape of a release's compose project.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// mendersoftware/integration checkout with production/config/prod.yml.
    #[serde(rename = "integration-3x")]
    Integration3x,
    /// mendersoftware/mender-server compose (4.x).
    #[serde(rename = "mender-server-4x")]
    MenderServer4x,
    /// The 3.x production layout (project, `mender-*` services, external volumes, MinIO) running a
    /// 4.x release's images: what the tool makes of an operator's project ("Variant A",
    /// `shared/reference/migrate-3.7-to-4.x.md` §1.3). Derived by the catalog, never in its files.
    #[serde(rename = "production-4x")]
    Production4x,
}

/// A release's MongoDB.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MongoFacts {
    /// Compose service name (`mender-mongo` in 3.x, `mongo` in 4.x).
    pub service: String,
    /// MongoDB major of its image (`4.4`); one of [`Catalog::mongo_majors`].
    pub major: String,
}

/// What a compose service of a release is: its image, and how to check and migrate it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ServiceFacts {
    /// Image reference as upstream writes it (`mendersoftware/deployments:mender-3.7.11`).
    pub image: String,
    /// What the service is, which decides how it is stopped, checked and migrated.
    pub role: Role,
    /// The 3.x service this 4.x service replaces (upstream's 4.x layout only; the production view
    /// names the service so and clears this).
    #[serde(default)]
    pub was: Option<String>,
    /// The name upstream's 4.x compose gives the service (`deviceauth` for `mender-device-auth`),
    /// which the production layout keeps as a network alias (`shared/reference/migrate-3.7-to-4.x.md`
    /// §1.2, §1.5).
    #[serde(default)]
    pub alias: Option<String>,
    /// The container command upstream sets (`[server, --automigrate]`); `None` for the image's default.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The port its HTTP probes use inside the network (`8080`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Liveness path (`/api/internal/v1/deployments/alive`; workflows: `/status`).
    #[serde(default)]
    pub alive: Option<String>,
    /// Health path, which also checks its dependencies (`/api/internal/v1/deployments/health`;
    /// workflows: `/api/v1/health`).
    #[serde(default)]
    pub health: Option<String>,
    /// Its MongoDB database (`deployment_service`).
    #[serde(default)]
    pub db: Option<String>,
    /// The newest `migration_info` version the release's binary writes to that database (`1.2.5` for deployments of 3.0.0).
    #[serde(default)]
    pub schema: Option<Version>,
    /// Set when the reference knows the schema version only as a range: the database is at
    /// least this and at most `schema` (a patch between two releases whose versions differ).
    #[serde(default)]
    pub schema_min: Option<Version>,
    /// The environment variable holding its MongoDB URL (`DEPLOYMENTS_MONGO_URL`).
    #[serde(default)]
    pub mongo_env: Option<String>,
    /// Arguments that run its migrations and exit (`[migrate]`), for the offline migration step of a
    /// hop.
    #[serde(default)]
    pub migrate: Option<Vec<String>>,
}

/// What a compose service does in the stack; orders stops and starts and chooses the checks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An HTTP API service with a database (deployments, deviceauth, …).
    Backend,
    /// A queue worker without an HTTP listener.
    Worker,
    /// The web UI (`mendersoftware/gui`).
    Gui,
    /// The API gateway (traefik in 3.x and 4.x), the entry point for devices and people.
    Gateway,
    /// MongoDB.
    Mongo,
    /// NATS (JetStream), the job queue of workflows from 3.2 on.
    Nats,
    /// The S3 artifact store inside the stack (MinIO in 3.x, SeaweedFS in 4.x).
    Storage,
    /// OpenSearch, for the reporting service.
    Search,
}

impl Role {
    /// Services that write to MongoDB or the artifact store: stopped for a consistent dump.
    pub fn is_writer(self) -> bool {
        matches!(self, Role::Backend | Role::Worker)
    }
}
