//! Container, network and volume labels: compose's own (how compose finds a project and decides
//! whether to recreate a container) and the ones this tool puts on what it creates.
//! Source: docker/compose v2 `pkg/api/labels.go`.

/// The compose project a container, network or volume belongs to.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// The compose service a container runs.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// `True` on the one-off containers of `docker compose run` (not part of the stack).
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// The project directory compose ran in.
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The compose files, comma-joined absolute paths.
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The env files given with `--env-file`, comma-joined.
pub const LABEL_ENV_FILE: &str = "com.docker.compose.project.environment_file";
/// Hash of the service's configuration; compose recreates a container whose hash differs.
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// The compose version that created the container (`1.29.2` for Compose v1).
pub const LABEL_COMPOSE_VERSION: &str = "com.docker.compose.version";

/// On every container, network and volume of a staging copy; the value is the staging name.
pub const STAGING_LABEL: &str = "io.mender-compose-upgrade.staging";
/// On every sidecar; the value is the pid of the run that owns it, so that a later run removes
/// sidecars whose owner died.
pub const SIDECAR_LABEL: &str = "io.mender-compose-upgrade.sidecar";
/// On every sidecar beside [`SIDECAR_LABEL`]: the host name of the run that owns it (a pid means
/// nothing on another host sharing the daemon).
pub const SIDECAR_HOST_LABEL: &str = "io.mender-compose-upgrade.sidecar-host";
/// On the helper images this tool builds from its own binary.
pub const HELPER_LABEL: &str = "io.mender-compose-upgrade.helper";
