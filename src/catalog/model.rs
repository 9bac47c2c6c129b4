//! The release catalog as data: what each Mender Server release runs, and how lines connect.

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};

/// Everything the tool knows about Mender Server releases.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub rule: String,
    pub lines: Vec<Line>,
    pub releases: Vec<Release>,
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
    pub line: String,
    pub server_release: bool,
    #[serde(default)]
    pub stop: Option<Version>,
    #[serde(default)]
    pub tags: Vec<Version>,
    #[serde(default)]
    pub note: Option<String>,
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
    pub from: Vec<String>,
    /// Set when a hop into this line starts from the previous line's newest patch only: why.
    #[serde(default)]
    pub from_stop: Option<String>,
    #[serde(default)]
    pub window: Option<String>,
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManualStep {
    pub when: When,
    pub text: String,
    pub source: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Before,
    After,
}

/// One Mender Server release and its open-source compose services.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Release {
    pub version: Version,
    pub line: String,
    pub date: String,
    pub source: String,
    pub layout: Layout,
    pub project: String,
    pub compose_files: Vec<String>,
    /// Whether `compose-templates/<version>/` holds base compose files for this release.
    pub templates: bool,
    pub mongo: MongoFacts,
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

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// mendersoftware/integration checkout with production/config/prod.yml.
    #[serde(rename = "integration-3x")]
    Integration3x,
    /// mendersoftware/mender-server compose (4.x).
    #[serde(rename = "mender-server-4x")]
    MenderServer4x,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MongoFacts {
    pub service: String,
    pub major: String,
}

/// What a compose service of a release is: its image, and how to check and migrate it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ServiceFacts {
    pub image: String,
    pub role: Role,
    /// The 3.x service this 4.x service replaces.
    #[serde(default)]
    pub was: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub alive: Option<String>,
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub db: Option<String>,
    #[serde(default)]
    pub schema: Option<Version>,
    /// Set when the reference knows the schema version only as a range: the database is at
    /// least this and at most `schema` (a patch between two releases whose versions differ).
    #[serde(default)]
    pub schema_min: Option<Version>,
    #[serde(default)]
    pub mongo_env: Option<String>,
    #[serde(default)]
    pub migrate: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An HTTP API service with a database (deployments, deviceauth, …).
    Backend,
    /// A queue worker without an HTTP listener.
    Worker,
    Gui,
    Gateway,
    Mongo,
    Nats,
    Storage,
    Search,
}

impl Role {
    /// Services that write to MongoDB or the artifact store: stopped for a consistent dump.
    pub fn is_writer(self) -> bool {
        matches!(self, Role::Backend | Role::Worker)
    }
}
