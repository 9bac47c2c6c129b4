//! The Docker daemon through bollard: connection, image building, and the queries discovery needs.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;

/// Long enough for `stop` with a generous grace period: bollard's default 120 s cuts a slow stop
/// while the daemon carries on (the response arrives only once the container has stopped).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a Docker daemon call failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The daemon did not answer: not running, wrong `DOCKER_HOST`, no permission on the socket.
    #[error("cannot reach the Docker daemon at {host}: {reason}")]
    Unreachable {
        /// The daemon address tried (`unix:///var/run/docker.sock`, `DOCKER_HOST`).
        host: String,
        /// What failed: the connection, the version negotiation, or no answer within 10 s.
        reason: String,
    },
    /// The daemon answered a call with an error.
    #[error("Docker API call failed ({what}): {source}")]
    Api {
        /// The call, with its object (`stop 3f2a…`, `list containers`).
        what: String,
        /// bollard's error (the daemon's status and message, or the transport's).
        source: bollard::errors::Error,
    },
    /// Building an image (the helper, the test bed's stand-ins) failed.
    #[error("image build of {tag} failed: {message}")]
    Build {
        /// The image's first tag.
        tag: String,
        /// The builder's error, with the build log when the stream broke.
        message: String,
    },
}

impl DockerError {
    /// An error mapper for `map_err` naming the call (`stop mender-deployments-1`).
    pub fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
        let what = what.into();
        move |source| DockerError::Api { what, source }
    }
}

/// The daemon address users see: `DOCKER_HOST` or the default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// Connects, negotiates the API version, and proves the daemon answers (10 s for each step).
///
/// # Errors
/// [`DockerError::Unreachable`].
pub async fn connect() -> Result<Docker, DockerError> {
    let host = docker_host();
    let unreachable = |reason: String| DockerError::Unreachable { host: host.clone(), reason };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?.with_timeout(CLIENT_TIMEOUT);
    let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::time::timeout(Duration::from_secs(10), docker.ping())
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(docker)
}

/// One entry of a build context.
pub enum ContextEntry {
    /// A regular file.
    File {
        /// Path in the context (`bin/helper`).
        path: String,
        /// Unix permission bits (`0o755`).
        mode: u32,
        /// The file's bytes.
        data: Vec<u8>,
    },
    /// A directory.
    Dir {
        /// Path in the context.
        path: String,
        /// Unix permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Path in the context.
        path: String,
        /// What the link points to, as written.
        target: String,
    },
}

/// A build context tar from entries (paths relative, no leading slash), owned by root with
/// mtime 0, so that the same entries give the same bytes.
///
/// # Errors
/// Only what the tar writer answers (a path too long or not representable).
pub fn context_tar(entries: &[ContextEntry]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            ContextEntry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            ContextEntry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty())?;
            }
            ContextEntry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

/// Builds `tags[0]` from a context tar with the classic builder and adds the other tags.
/// `cache: false` builds every layer anew: a build that reuses another build's cached layer fails
/// when that build's image (and with it the layer) is removed in the middle of this one.
///
/// # Errors
/// [`DockerError::Build`] when the build fails; [`DockerError::Api`] when tagging does.
pub async fn build_image(
    docker: &Docker,
    context: Vec<u8>,
    tags: &[String],
    labels: &HashMap<String, String>,
    build_args: &HashMap<String, String>,
    cache: bool,
) -> Result<(), DockerError> {
    let Some(first) = tags.first() else {
        return Ok(());
    };
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(first)
        .rm(true)
        .forcerm(true)
        .nocache(!cache)
        .labels(labels)
        .buildargs(build_args)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    log.push_str(&s);
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(DockerError::Build { tag: first.clone(), message: e });
                }
            }
            Err(e) => {
                return Err(DockerError::Build { tag: first.clone(), message: format!("{e}\n{log}") });
            }
        }
    }
    for tag in &tags[1..] {
        let (repo, t) = tag.rsplit_once(':').unwrap_or((tag.as_str(), "latest"));
        docker
            .tag_image(first, Some(TagImageOptionsBuilder::new().repo(repo).tag(t).build()))
            .await
            .map_err(DockerError::api(format!("tag {tag}")))?;
    }
    Ok(())
}

/// Stops a container, giving it `grace` seconds before SIGKILL; one already stopped is fine.
///
/// # Errors
/// [`DockerError::Api`] (no such container, or the daemon's timeout).
pub async fn stop(docker: &Docker, id: &str, grace: i32) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::StopContainerOptionsBuilder::new().t(grace).build();
    match docker.stop_container(id, Some(opts)).await {
        // 304: already stopped.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        r => r.map_err(DockerError::api(format!("stop {id}"))),
    }
}

/// Starts a container; one already running is fine.
///
/// # Errors
/// [`DockerError::Api`] (no such container, a port or mount the daemon refuses).
pub async fn start(docker: &Docker, id: &str) -> Result<(), DockerError> {
    match docker.start_container(id, None).await {
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        r => r.map_err(DockerError::api(format!("start {id}"))),
    }
}

/// The registry digests an image was pulled by (empty for locally built images).
pub async fn repo_digests(docker: &Docker, image: &str) -> Vec<String> {
    docker.inspect_image(image).await.ok().and_then(|i| i.repo_digests).unwrap_or_default()
}

/// Removes containers carrying `label=value` (sidecars of a run that was interrupted).
pub async fn remove_labelled(docker: &Docker, label: &str, value: &str) {
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    if let Ok(list) = docker.list_containers(Some(opts)).await {
        for c in list.into_iter().filter_map(|c| c.id) {
            let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            let _ = docker.remove_container(&c, Some(rm)).await;
        }
    }
}

/// The labels of every sidecar, throwaway container and network this run makes: its pid
/// ([`crate::labels::SIDECAR_LABEL`]) and host ([`crate::labels::SIDECAR_HOST_LABEL`]).
pub fn owner_labels() -> HashMap<String, String> {
    HashMap::from([
        (crate::labels::SIDECAR_LABEL.to_string(), std::process::id().to_string()),
        (crate::labels::SIDECAR_HOST_LABEL.to_string(), crate::util::hostname()),
    ])
}

/// Removes the containers (with their anonymous volumes) and networks that a run of this tool on
/// this host left when it was killed: its pid no longer exists. Those of live runs, of other
/// hosts, and those without a host label are kept. Returns how many were removed.
pub async fn sweep_dead_owners(docker: &Docker) -> usize {
    let here = crate::util::hostname();
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    let owned = |labels: Option<&HashMap<String, String>>| labels.is_some_and(|l| dead_owner(l, &here, alive));
    let filters = HashMap::from([("label", vec![crate::labels::SIDECAR_HOST_LABEL.to_string()])]);
    let mut removed = 0;
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(opts)).await.unwrap_or_default() {
        if let Some(id) = c.id.filter(|_| owned(c.labels.as_ref())) {
            remove_container(docker, &id).await;
            removed += 1;
        }
    }
    let opts = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in docker.list_networks(Some(opts)).await.unwrap_or_default() {
        if let Some(id) = n.id.filter(|_| owned(n.labels.as_ref()))
            && docker.remove_network(&id).await.is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Pure: whether `labels` name an owner run on host `here` whose pid is not `alive`. Without
/// both labels, or with a pid that is no number, or on another host, it is not known dead.
fn dead_owner(labels: &HashMap<String, String>, here: &str, alive: impl Fn(u32) -> bool) -> bool {
    let pid = labels.get(crate::labels::SIDECAR_LABEL).and_then(|p| p.parse::<u32>().ok());
    let host = labels.get(crate::labels::SIDECAR_HOST_LABEL);
    match (pid, host) {
        (Some(pid), Some(host)) => host == here && !alive(pid),
        _ => false,
    }
}

/// A user-defined bridge network (internal: no way out of it).
///
/// # Errors
/// [`DockerError::Api`] (the name is taken, the daemon refuses).
pub async fn create_network(
    docker: &Docker,
    name: &str,
    internal: bool,
    labels: HashMap<String, String>,
) -> Result<(), DockerError> {
    let req = bollard::models::NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        internal: Some(internal),
        labels: Some(labels),
        ..Default::default()
    };
    docker.create_network(req).await.map_err(DockerError::api(format!("create network {name}")))?;
    Ok(())
}

/// Removes a network, ignoring errors (already gone, still in use).
pub async fn remove_network(docker: &Docker, name: &str) {
    let _ = docker.remove_network(name).await;
}

/// Starts a long-running container on `network` under `aliases`; returns its id.
///
/// # Errors
/// [`DockerError::Api`] when it cannot be created or started (a created one is left).
pub async fn run_detached(
    docker: &Docker,
    name: &str,
    image: &str,
    network: &str,
    aliases: Vec<String>,
    labels: HashMap<String, String>,
) -> Result<String, DockerError> {
    let endpoint = bollard::models::EndpointSettings { aliases: Some(aliases), ..Default::default() };
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(labels),
        host_config: Some(bollard::models::HostConfig {
            network_mode: Some(network.to_string()),
            ..Default::default()
        }),
        networking_config: Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    };
    let opts = bollard::query_parameters::CreateContainerOptionsBuilder::new().name(name).build();
    let id = docker.create_container(Some(opts), body).await.map_err(DockerError::api(format!("create {name}")))?.id;
    if let Err(e) = start(docker, &id).await {
        // Not left behind: the caller never learns the id of a container that did not start.
        remove_container(docker, &id).await;
        return Err(e);
    }
    Ok(id)
}

/// Removes a container with its anonymous volumes, forced, ignoring errors (already gone).
pub async fn remove_container(docker: &Docker, id: &str) {
    let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    let _ = docker.remove_container(id, Some(rm)).await;
}

/// `name` and `tag` of an image reference for a pull: `repo@sha256:…` stays whole (no tag), a
/// registry port is not a tag, and no tag means `latest`.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    if reference.contains('@') {
        return (reference, None);
    }
    match reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((n, t)) => (n, Some(t)),
        None => (reference, Some("latest")),
    }
}

/// Makes sure an image is present locally, pulling it when it is not; `Ok(true)` when pulled.
///
/// # Errors
/// [`DockerError::Api`] when the pull fails (unknown image, no registry access).
pub async fn ensure_image(docker: &Docker, reference: &str) -> Result<bool, DockerError> {
    if docker.inspect_image(reference).await.is_ok() {
        return Ok(false);
    }
    let opts = match split_reference(reference) {
        // A digest-pinned reference is pulled by its digest, whole.
        (name, None) => bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(name).build(),
        (name, Some(tag)) => {
            bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(name).tag(tag).build()
        }
    };
    let mut pull = docker.create_image(Some(opts), None, None);
    while let Some(item) = pull.next().await {
        item.map_err(DockerError::api(format!("pull {reference}")))?;
    }
    Ok(true)
}

/// What `remove_all_labelled` removed, by name.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Removed {
    /// Container names (without the leading `/`).
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Volume names.
    pub volumes: Vec<String>,
}

/// Names of the containers carrying `label=value`, running or not.
///
/// # Errors
/// [`DockerError::Api`] when the daemon cannot list them.
pub async fn labelled_containers(docker: &Docker, label: &str, value: &str) -> Result<Vec<String>, DockerError> {
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(opts)).await.map_err(DockerError::api("list containers"))?;
    Ok(list
        .into_iter()
        .filter_map(|c| c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())))
        .collect())
}

/// The networks carrying `label=value` that no container is attached to, when no container
/// carries the label either: what is left of a project whose `compose down` removed every
/// container but failed on a network the daemon says still has an endpoint (a stale endpoint of
/// Engine 20.10, which only a daemon restart clears). Empty when a container is still there, a
/// network has one attached, or the daemon cannot list them.
pub async fn stale_networks(docker: &Docker, label: &str, value: &str) -> Vec<String> {
    if !labelled_containers(docker, label, value).await.is_ok_and(|c| c.is_empty()) {
        return vec![];
    }
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let opts = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
    let mut stale = Vec::new();
    for n in docker.list_networks(Some(opts)).await.unwrap_or_default() {
        let Some(name) = n.name else { continue };
        let inspected = docker.inspect_network(&name, None::<bollard::query_parameters::InspectNetworkOptions>).await;
        match inspected {
            Ok(i) if i.containers.as_ref().is_none_or(|c| c.is_empty()) => stale.push(name),
            _ => return vec![],
        }
    }
    stale
}

/// Removes network `name` just after the containers `gone` (names) were removed from it. Engine
/// 20.10 under load can still hold a removed container's endpoint for a moment and answer 403
/// "has active endpoints"; each such answer force-disconnects the gone containers' endpoints by
/// name (moby's way to clear a stale endpoint) and tries again, for at most 15 s in all.
///
/// # Errors
/// The daemon's last answer when the network still cannot be removed, or any other refusal.
async fn remove_network_settled(docker: &Docker, name: &str, gone: &[String]) -> Result<(), bollard::errors::Error> {
    let mut attempt = 0u64;
    loop {
        match docker.remove_network(name).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 403, message })
                if message.contains("active endpoints") && attempt < 5 =>
            {
                attempt += 1;
                tracing::debug!("network {name} still has an endpoint ({message}); try {attempt} of 5 more");
                for c in gone {
                    let req = bollard::models::NetworkDisconnectRequest { container: c.clone(), force: Some(true) };
                    let _ = docker.disconnect_network(name, req).await;
                }
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
            other => return other,
        }
    }
}

/// Removes every container, network and volume carrying `label=value`, and the anonymous volumes
/// those containers mounted (a container compose recreated mounts its predecessor's by name, and
/// the daemon's `rm -v` keeps them); nothing else: the filter is the daemon's, on the exact label
/// value.
///
/// # Errors
/// [`DockerError::Api`] at the first listing or removal that fails; what was removed before it
/// stays removed.
pub async fn remove_all_labelled(docker: &Docker, label: &str, value: &str) -> Result<Removed, DockerError> {
    let selector = format!("{label}={value}");
    let filters = HashMap::from([("label", vec![selector.clone()])]);
    let mut removed = Removed::default();
    // Anonymous volumes a recreated container inherited are mounted by name, and the daemon's
    // `rm -v` keeps them (see `is_anonymous`): they are removed by name once their containers are.
    let anonymous: Vec<String> =
        mounted_volumes(docker, label, value).await?.into_iter().filter(|(_, anon)| *anon).map(|(n, _)| n).collect();
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(opts)).await.map_err(DockerError::api("list containers"))? {
        let Some(id) = c.id else { continue };
        let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        docker.remove_container(&id, Some(rm)).await.map_err(DockerError::api(format!("remove container {id}")))?;
        removed
            .containers
            .extend(c.names.unwrap_or_default().into_iter().map(|n| n.trim_start_matches('/').to_string()));
    }
    let opts = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in docker.list_networks(Some(opts)).await.map_err(DockerError::api("list networks"))? {
        let Some(name) = n.name else { continue };
        remove_network_settled(docker, &name, &removed.containers)
            .await
            .map_err(DockerError::api(format!("remove network {name}")))?;
        removed.networks.push(name);
    }
    // One still in use by a container not of this label stays (the failure is not ours to report).
    let kept = remove_volumes(docker, &anonymous).await;
    removed
        .volumes
        .extend(anonymous.into_iter().filter(|n| !kept.iter().any(|k| k.starts_with(&format!("volume {n}:")))));
    let opts = bollard::query_parameters::ListVolumesOptionsBuilder::new().filters(&filters).build();
    let vols = docker.list_volumes(Some(opts)).await.map_err(DockerError::api("list volumes"))?;
    for v in vols.volumes.unwrap_or_default() {
        docker
            .remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(DockerError::api(format!("remove volume {}", v.name)))?;
        removed.volumes.push(v.name);
    }
    Ok(removed)
}

/// Engine 23 and later label the volumes they create for a mount without a source (an image's
/// `VOLUME`, compose's `- /path`); older engines (20.10 here) do not.
/// Source: moby `volume/service/opts.go` (`AnonymousLabel`), release notes of Engine 23.0.
pub const ANONYMOUS_VOLUME_LABEL: &str = "com.docker.volume.anonymous";
/// The label compose puts on the named volumes it creates (`docker/compose` `pkg/api/labels.go`).
const COMPOSE_VOLUME_LABEL: &str = "com.docker.compose.volume";

/// Pure: whether a volume is anonymous: labelled so by the engine, or named the way the engine
/// names a volume it creates for a mount without a source (64 lowercase hex digits: moby's
/// `stringid.GenerateRandomID`) and not one compose created by name. The daemon's own `rm -v`
/// cannot be relied on for this: a volume compose handed on to a recreated container is mounted
/// by its name, and the daemon keeps such a mount's volume on `rm -v` (moby
/// `daemon/mounts.go` `removeMountPoints`: "Do not remove named mountpoints").
pub fn is_anonymous(name: &str, labels: &HashMap<String, String>) -> bool {
    if labels.contains_key(ANONYMOUS_VOLUME_LABEL) {
        return true;
    }
    name.len() == 64
        && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !labels.contains_key(COMPOSE_VOLUME_LABEL)
}

/// The volumes mounted by the containers carrying `label=value` (running or not), by name,
/// sorted and without repeats; each with whether it is anonymous ([`is_anonymous`]). A volume
/// gone between the listing and its inspection is left out.
///
/// # Errors
/// [`DockerError::Api`] when the daemon cannot list the containers.
pub async fn mounted_volumes(docker: &Docker, label: &str, value: &str) -> Result<Vec<(String, bool)>, DockerError> {
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(opts)).await.map_err(DockerError::api("list containers"))?;
    let mut names: Vec<String> = list
        .into_iter()
        .flat_map(|c| c.mounts.unwrap_or_default())
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.name)
        .collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        if let Ok(v) = docker.inspect_volume(&name).await {
            out.push((name.clone(), is_anonymous(&name, &v.labels)));
        }
    }
    Ok(out)
}

/// Removes the volumes `names` (one already gone is fine); the failures, one line each (a volume
/// still in use by a container of someone else stays, and says so).
pub async fn remove_volumes(docker: &Docker, names: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    for name in names {
        match docker.remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => failed.push(format!("volume {name}: {e}")),
        }
    }
    failed
}

impl From<DockerError> for crate::exit::Failure {
    fn from(e: DockerError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        match e {
            DockerError::Unreachable { .. } => Failure::new(
                Exit::Precondition,
                e,
                "everything (no Docker daemon was reached)",
                "start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)",
            ),
            other => Failure::new(
                Exit::Unexpected,
                other,
                "everything: this command only reads",
                "retry; if it persists, run with -v and report it",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{ANONYMOUS_VOLUME_LABEL, dead_owner, is_anonymous, split_reference};

    #[test]
    fn only_a_dead_owner_on_this_host_is_swept() {
        let labels = |pid: &str, host: Option<&str>| {
            let mut l = HashMap::from([(crate::labels::SIDECAR_LABEL.to_string(), pid.to_string())]);
            if let Some(h) = host {
                l.insert(crate::labels::SIDECAR_HOST_LABEL.to_string(), h.to_string());
            }
            l
        };
        let dead = |_: u32| false;
        let live = |_: u32| true;
        assert!(dead_owner(&labels("42", Some("vm")), "vm", dead));
        assert!(!dead_owner(&labels("42", Some("vm")), "vm", live), "a live run keeps its sidecars");
        assert!(!dead_owner(&labels("42", Some("other")), "vm", dead), "a pid means nothing on another host");
        assert!(!dead_owner(&labels("42", None), "vm", dead), "an older run's sidecar without a host is kept");
        assert!(!dead_owner(&labels("x", Some("vm")), "vm", dead));
    }

    #[test]
    fn anonymous_volumes_are_told_by_the_engine_s_label_or_its_generated_name() {
        let none = HashMap::new();
        let hex = "3f2a".repeat(16);
        assert!(is_anonymous(&hex, &none));
        assert!(!is_anonymous("mender-db", &none));
        assert!(!is_anonymous(&hex[1..], &none), "63 digits");
        assert!(!is_anonymous(&hex.to_uppercase(), &none));
        let compose = HashMap::from([("com.docker.compose.volume".to_string(), "data".to_string())]);
        assert!(!is_anonymous(&hex, &compose));
        let engine = HashMap::from([(ANONYMOUS_VOLUME_LABEL.to_string(), String::new())]);
        assert!(is_anonymous("any-name", &engine));
    }

    #[test]
    fn references_split_for_a_pull() {
        assert_eq!(split_reference("mongo:4.4"), ("mongo", Some("4.4")));
        assert_eq!(split_reference("mirror:5000/mongo"), ("mirror:5000/mongo", Some("latest")));
        assert_eq!(split_reference("mirror:5000/mongo:5.0"), ("mirror:5000/mongo", Some("5.0")));
        let pinned = "mongo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(split_reference(pinned), (pinned, None));
    }
}
