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
}

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
}

/// How a line is reached: from which earlier lines, and what an operator must do by hand.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LineUpgrade {
    pub from: Vec<String>,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub steps: Vec<ManualStep>,
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
