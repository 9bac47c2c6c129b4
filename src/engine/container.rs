//! A container as discovery needs it (the read model of `inspect`), independent of bollard's
//! types so that the model above can be built and tested from plain data.

use std::collections::BTreeMap;

use serde::Serialize;

/// One container of a compose project as the daemon's inspect shows it (a listing fills only id,
/// project, service, image and labels).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerInfo {
    /// The container id (64 hex digits).
    pub id: String,
    /// The container name without the leading `/` (`menderproduction-mender-deployments-1`).
    pub name: String,
    /// Its compose project (`com.docker.compose.project` label).
    pub project: String,
    /// Its compose service (`com.docker.compose.service` label).
    pub service: String,
    /// The reference the container was created from (`Config.Image`).
    pub image: String,
    /// The local image id it runs (`sha256:…`).
    pub image_id: String,
    /// Docker's state word: `running`, `exited`, `restarting`, `created`, `paused`, `dead`.
    pub state: String,
    /// The container is running (restarting or paused included, as Docker says).
    pub running: bool,
    /// Docker is restarting it after an exit (a crash loop shows here).
    pub restarting: bool,
    /// How often Docker restarted it since it was created.
    pub restart_count: i64,
    /// Exit code of its last run; `0` while it runs.
    pub exit_code: Option<i64>,
    /// Docker's health status when the container has a healthcheck.
    pub health: Option<String>,
    /// When it last started (RFC 3339, as the daemon writes it).
    pub started_at: Option<String>,
    /// Names of the networks it is attached to, sorted (`menderproduction_mender`).
    pub networks: Vec<String>,
    /// The container's network aliases (every network), besides its service name.
    pub aliases: Vec<String>,
    /// `KEY=VALUE` pairs; may hold secrets, so it is never serialised.
    #[serde(skip)]
    pub env: Vec<String>,
    /// Its labels: compose's (`com.docker.compose.config-hash`, …), traefik's, Mender's.
    pub labels: BTreeMap<String, String>,
    /// Its mounts, volumes and binds.
    pub mounts: Vec<Mount>,
    /// The last lines of its log (stdout and stderr), read only where a verdict needs them (the
    /// MongoDB container that does not stay up); not serialised: a log may hold anything.
    #[serde(skip)]
    pub log_tail: Option<String>,
}

/// A mount of a container.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Mount {
    /// Docker's mount type: `volume`, `bind`, `tmpfs`, ….
    pub kind: String,
    /// The volume's name (volumes only: `mender-db`).
    pub name: Option<String>,
    /// Where it is on the host (a bind's path, a volume's directory).
    pub source: Option<String>,
    /// Where it is mounted in the container (`/data/db`).
    pub destination: String,
}

impl ContainerInfo {
    /// The value of environment variable `key`, when set (even empty).
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// The value of label `key`, when set.
    pub fn label(&self, key: &str) -> Option<&String> {
        self.labels.get(key)
    }
}
