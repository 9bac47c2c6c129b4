//! A container as discovery needs it (the read model of `inspect`), independent of bollard's
//! types so that the model above can be built and tested from plain data.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub project: String,
    pub service: String,
    /// The reference the container was created from (`Config.Image`).
    pub image: String,
    pub image_id: String,
    pub state: String,
    pub running: bool,
    pub restarting: bool,
    pub restart_count: i64,
    pub exit_code: Option<i64>,
    /// Docker's health status when the container has a healthcheck.
    pub health: Option<String>,
    pub started_at: Option<String>,
    pub networks: Vec<String>,
    /// The container's network aliases (every network), besides its service name.
    pub aliases: Vec<String>,
    /// `KEY=VALUE` pairs; may hold secrets, so it is never serialised.
    #[serde(skip)]
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub name: Option<String>,
    pub source: Option<String>,
    pub destination: String,
}

impl ContainerInfo {
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    pub fn label(&self, key: &str) -> Option<&String> {
        self.labels.get(key)
    }
}
