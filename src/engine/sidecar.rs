//! Short-lived containers on the stack's own network: the tool's helper (HTTP probes, MongoDB
//! queries; the Mender images have no shell to exec into) and, later, mongodump/mongorestore
//! from the stack's own mongo image. Output is read by attaching before start — never through
//! `logs`, which mangles binary data — and streamed, so memory stays flat.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::docker::{ContextEntry, DockerError, build_image, context_tar};
use super::helper::{ArtifactsJob, ArtifactsResult, KEY_ENV, MongoQuery, MongoReport, Request, Response, SECRET_ENV};
use crate::labels::HELPER_LABEL;

const HELPER_REPO: &str = "mender-compose-upgrade-helper";
/// The tool binary the helper image is built from, when it is not the running program.
pub const HELPER_BINARY_ENV: &str = "MENDER_COMPOSE_UPGRADE_HELPER_BINARY";
/// Keep the last part of a sidecar's stderr for error messages.
const STDERR_KEEP: usize = 64 * 1024;

/// Why a sidecar (the helper, mongodump, mongorestore) could not run or be read.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Creating, starting, attaching or waiting for the container failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The helper image is built from this program's binary, which could not be read.
    #[error("cannot read this program's own binary for the helper image: {0}")]
    SelfExe(std::io::Error),
    /// The helper ran but gave no usable answer (exit code, unparsable JSON, its own error).
    #[error("the helper sidecar failed: {0}")]
    Helper(String),
    /// The sidecar's stdout could not be written where it goes (a full disk, a closed pipe).
    #[error("writing the output of sidecar {image} failed: {source}")]
    Output {
        /// The sidecar's image.
        image: String,
        /// The writer's error.
        source: std::io::Error,
    },
}

/// A short-lived container to run to completion.
#[derive(Debug, Clone, Default)]
pub struct SidecarSpec {
    /// Image reference (`mongo:4.4`, the helper image).
    pub image: String,
    /// Entrypoint override; `None` for the image's.
    pub entrypoint: Option<Vec<String>>,
    /// Command (arguments after the entrypoint).
    pub cmd: Vec<String>,
    /// Docker network to attach to (the project's, so service names resolve); `None`: the default.
    pub network: Option<String>,
    /// Further networks it joins before it starts, when the services it talks to are not all on
    /// `network` (a store on one network, MongoDB on another).
    pub extra_networks: Vec<String>,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Bind mounts, `HOST_PATH:CONTAINER_PATH[:ro]`.
    pub binds: Vec<String>,
    /// Labels besides the owner label every sidecar gets.
    pub labels: HashMap<String, String>,
    /// `uid:gid` to run as (the helper writes into the operator's bundle as the operator).
    pub user: Option<String>,
    /// The container's name, for a caller that watches it while it runs ([`unique_name`]);
    /// `None`: a fresh `mcu-sidecar-…` name.
    pub name: Option<String>,
}

/// How a sidecar ended.
#[derive(Debug, Clone)]
pub struct SidecarOutcome {
    /// Its exit code.
    pub exit_code: i64,
    /// The tail of stderr (its last 64 KiB to 128 KiB).
    pub stderr: String,
}

/// A container name no other run uses: `PREFIX-<pid>-<time>`, hex.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{:x}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Runs a sidecar to completion, streaming its stdout into `out`.
///
/// # Errors
/// [`SidecarError::Docker`] or [`SidecarError::Output`]; a non-zero exit is an `Ok` outcome.
pub async fn run_to_writer<W: AsyncWrite + Unpin>(
    docker: &Docker,
    spec: &SidecarSpec,
    out: &mut W,
) -> Result<SidecarOutcome, SidecarError> {
    let name = spec.name.clone().unwrap_or_else(|| unique_name("mcu-sidecar"));
    let mut labels = spec.labels.clone();
    // The owner's pid and host: a later run removes sidecars whose owner died.
    labels.extend(crate::engine::docker::owner_labels());
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: Some(spec.cmd.clone()),
        env: Some(spec.env.clone()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        user: spec.user.clone(),
        host_config: Some(HostConfig {
            network_mode: spec.network.clone(),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
        .await
        .map_err(DockerError::api(format!("create sidecar from {}", spec.image)))?;
    let result = match join_networks(docker, &name, spec).await {
        Ok(()) => attach_start_wait(docker, &name, spec, out).await,
        Err(e) => Err(e.into()),
    };
    let _ =
        docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build())).await;
    result
}

/// Connects a created sidecar to its extra networks (other than its first one).
async fn join_networks(docker: &Docker, name: &str, spec: &SidecarSpec) -> Result<(), DockerError> {
    for net in spec.extra_networks.iter().filter(|n| spec.network.as_ref() != Some(*n)) {
        let req = bollard::models::NetworkConnectRequest { container: name.to_string(), ..Default::default() };
        docker
            .connect_network(net, req)
            .await
            .map_err(DockerError::api(format!("connect sidecar to network {net}")))?;
    }
    Ok(())
}

async fn attach_start_wait<W: AsyncWrite + Unpin>(
    docker: &Docker,
    name: &str,
    spec: &SidecarSpec,
    out: &mut W,
) -> Result<SidecarOutcome, SidecarError> {
    // Attach before start, or the first bytes are lost.
    let attach = AttachContainerOptionsBuilder::new().stdout(true).stderr(true).stream(true).logs(false).build();
    let mut stream =
        docker.attach_container(name, Some(attach)).await.map_err(DockerError::api("attach sidecar"))?.output;
    docker.start_container(name, None).await.map_err(DockerError::api(format!("start sidecar from {}", spec.image)))?;
    let mut stderr: Vec<u8> = Vec::new();
    while let Some(frame) = stream.next().await {
        match frame.map_err(DockerError::api("read sidecar output"))? {
            LogOutput::StdOut { message } => {
                out.write_all(&message)
                    .await
                    .map_err(|source| SidecarError::Output { image: spec.image.clone(), source })?;
            }
            LogOutput::StdErr { message } => {
                stderr.extend_from_slice(&message);
                if stderr.len() > 2 * STDERR_KEEP {
                    stderr.drain(..stderr.len() - STDERR_KEEP);
                }
            }
            _ => {}
        }
    }
    out.flush().await.map_err(|source| SidecarError::Output { image: spec.image.clone(), source })?;
    let exit_code = wait(docker, name).await?;
    Ok(SidecarOutcome { exit_code, stderr: String::from_utf8_lossy(&stderr).into_owned() })
}

/// The container's exit code once it has stopped (bollard reports a non-zero exit as an error
/// value; this makes it a code again); -1 when the daemon ended the wait without one.
///
/// # Errors
/// [`DockerError::Api`] when the wait itself failed (no such container).
pub async fn wait(docker: &Docker, name: &str) -> Result<i64, DockerError> {
    let mut w = docker.wait_container(name, None);
    match w.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(DockerError::Api { what: "wait for sidecar".into(), source: e }),
        None => Ok(-1),
    }
}

/// Runs a sidecar whose output is small (a JSON report), collecting its stdout in memory.
///
/// # Errors
/// As [`run_to_writer`].
pub async fn run_collect(docker: &Docker, spec: &SidecarSpec) -> Result<(Vec<u8>, SidecarOutcome), SidecarError> {
    let mut buf = Vec::new();
    let outcome = run_to_writer(docker, spec, &mut buf).await?;
    Ok((buf, outcome))
}

/// Runs the tool's helper on `network` and returns its report.
///
/// # Errors
/// As [`run_helper_with`].
pub async fn run_helper(docker: &Docker, network: &str, request: &Request) -> Result<Response, SidecarError> {
    run_helper_with(docker, network, request, SidecarSpec::default()).await
}

/// [`run_helper`] with the environment, bind mounts, user and labels of `extra`.
///
/// # Errors
/// [`SidecarError::Helper`] for a non-zero exit or an unreadable report; otherwise the errors of
/// [`helper_image`] and [`run_to_writer`].
pub async fn run_helper_with(
    docker: &Docker,
    network: &str,
    request: &Request,
    extra: SidecarSpec,
) -> Result<Response, SidecarError> {
    let image = helper_image(docker).await?;
    let json = serde_json::to_string(request).map_err(|e| SidecarError::Helper(e.to_string()))?;
    let spec = SidecarSpec { image, cmd: vec!["--request".into(), json], network: Some(network.to_string()), ..extra };
    let (stdout, outcome) = match run_collect(docker, &spec).await {
        // Another build of the tool on this daemon removed this build's helper image as an old
        // one between its check and the create: build it again, once.
        Err(SidecarError::Docker(DockerError::Api {
            source: bollard::errors::Error::DockerResponseServerError { status_code: 404, .. },
            ..
        })) => {
            tracing::debug!("the helper image {} is gone; building it again", spec.image);
            let spec = SidecarSpec { image: helper_image(docker).await?, ..spec };
            run_collect(docker, &spec).await?
        }
        other => other?,
    };
    if outcome.exit_code != 0 {
        return Err(SidecarError::Helper(format!("exit {}: {}", outcome.exit_code, outcome.stderr.trim())));
    }
    serde_json::from_slice(&stdout).map_err(|e| SidecarError::Helper(format!("unreadable report: {e}")))
}

/// The helper image: this very binary (statically linked) in a FROM-scratch image, so that the
/// tool can run itself on the stack's network without any registry. Tagged by the binary's size
/// and modification time, so a rebuilt tool builds a new helper once.
///
/// # Errors
/// [`SidecarError::SelfExe`] when the binary cannot be read; [`SidecarError::Docker`] when the
/// build fails.
pub async fn helper_image(docker: &Docker) -> Result<String, SidecarError> {
    // Programs that link the library but are not the tool (its integration tests) name the tool.
    let exe = match std::env::var_os(HELPER_BINARY_ENV) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::current_exe().map_err(SidecarError::SelfExe)?,
    };
    let meta = std::fs::metadata(&exe).map_err(SidecarError::SelfExe)?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    let tag = format!("{HELPER_REPO}:{}-{:x}-{:x}", env!("CARGO_PKG_VERSION"), meta.len(), mtime);
    if docker.inspect_image(&tag).await.is_ok() {
        // Two runs that built the same tag at once leave the first build untagged, and in use by
        // that run's sidecars when the second cleaned up: it goes once nothing uses it.
        remove_old_helpers(docker, &tag).await;
        return Ok(tag);
    }
    // One build at a time on this host: two runs that both miss the tag would both build it, and
    // the second's tag leaves the first's image untagged (dangling) on the operator's daemon.
    let _lock = build_lock().await;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let binary = std::fs::read(&exe).map_err(SidecarError::SelfExe)?;
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\nENTRYPOINT [\"/usr/bin/mender-compose-upgrade\", \"helper\"]\n";
    let ctx = context_tar(&[
        ContextEntry::File { path: "Dockerfile".into(), mode: 0o644, data: dockerfile.into() },
        ContextEntry::Dir { path: "rootfs/tmp".into(), mode: 0o1777 },
        ContextEntry::File {
            path: "rootfs/etc/passwd".into(),
            mode: 0o644,
            data: b"nobody:x:65534:65534:nobody:/:/sbin/nologin\n".to_vec(),
        },
        ContextEntry::File { path: "rootfs/usr/bin/mender-compose-upgrade".into(), mode: 0o755, data: binary },
    ])
    .map_err(SidecarError::SelfExe)?;
    let labels = HashMap::from([(HELPER_LABEL.to_string(), "1".to_string())]);
    // Without the cache: another build of the tool removing its old helper images takes their
    // layers with them, and a build reusing one of those layers would fail half-way.
    if let Err(first) =
        build_image(docker, ctx.clone(), std::slice::from_ref(&tag), &labels, &HashMap::new(), false).await
    {
        // A concurrent run may have built the same tag meanwhile, or removed a layer of this
        // build under it (an older tool without the age guard below): use theirs, or build once more.
        if docker.inspect_image(&tag).await.is_err() {
            tracing::debug!("building the helper image failed ({first}); building it again");
            build_image(docker, ctx, std::slice::from_ref(&tag), &labels, &HashMap::new(), false).await?;
        }
    }
    remove_old_helpers(docker, &tag).await;
    Ok(tag)
}

/// How long a run waits for another run's helper build before it builds without the lock.
const BUILD_LOCK_WAIT: Duration = Duration::from_secs(120);

/// An exclusive lock on a file in the temporary directory, held while the helper image is
/// checked and built; `None` (no lock, best effort) when the file cannot be opened, or another
/// run holds it longer than [`BUILD_LOCK_WAIT`]. Polled, so that Ctrl-C is never stuck behind it.
async fn build_lock() -> Option<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = std::env::temp_dir().join("mender-compose-upgrade-helper-build.lock");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).ok()?;
    let deadline = tokio::time::Instant::now() + BUILD_LOCK_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => file = f,
            Err(_) => return None,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A helper image younger than this may be another run's build in progress (its final image
/// carries the label before the build tags it) or the image another run is about to start.
const HELPER_MIN_AGE_S: i64 = 15 * 60;

/// Best effort: helper images of earlier builds are dead weight, once they are old enough not to
/// be another run's build in progress.
async fn remove_old_helpers(docker: &Docker, keep: &str) {
    let filters = HashMap::from([("label", vec![HELPER_LABEL])]);
    let Ok(images) = docker.list_images(Some(ListImagesOptionsBuilder::new().filters(&filters).build())).await else {
        return;
    };
    let now =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for img in images.into_iter().filter(|i| removable_helper(i, keep, now)) {
        let _ = docker.remove_image(&img.id, Some(RemoveImageOptionsBuilder::new().force(false).build()), None).await;
    }
}

/// Whether `img` (a helper-labelled image) is an old helper: not tagged `keep` and built at least
/// [`HELPER_MIN_AGE_S`] before `now` (Unix seconds).
fn removable_helper(img: &bollard::models::ImageSummary, keep: &str, now: i64) -> bool {
    !img.repo_tags.iter().any(|t| t == keep) && now.saturating_sub(img.created) >= HELPER_MIN_AGE_S
}

/// `uid:gid` of this process, for sidecars that read or write the operator's private files.
pub fn current_user() -> String {
    format!("{}:{}", nix::unistd::Uid::current(), nix::unistd::Gid::current())
}

/// Runs one artifacts job of the helper on `network`: the store's keys go in its environment
/// (never on its command line), `bind` (`host:container[:ro]`) is mounted, and the helper runs as
/// this user (the bundle is private to its owner).
///
/// # Errors
/// The sidecar failed, or the helper reported the job's error.
pub async fn helper_artifacts(
    docker: &Docker,
    network: &str,
    job: ArtifactsJob,
    keys: (&str, &str),
    bind: Option<String>,
) -> Result<ArtifactsResult, SidecarError> {
    let spec = SidecarSpec {
        env: vec![format!("{KEY_ENV}={}", keys.0), format!("{SECRET_ENV}={}", keys.1)],
        user: bind.is_some().then(current_user),
        binds: bind.into_iter().collect(),
        ..Default::default()
    };
    let r = run_helper_with(docker, network, &Request { artifacts: Some(job), ..Default::default() }, spec).await?;
    let a = r.artifacts.ok_or_else(|| SidecarError::Helper("no answer to the artifacts job".into()))?;
    match a.error {
        Some(e) => Err(SidecarError::Helper(e)),
        None => Ok(a),
    }
}

impl From<SidecarError> for crate::exit::Failure {
    fn from(e: SidecarError) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        match e {
            SidecarError::Docker(d) => d.into(),
            other => Failure::new(
                Exit::Unexpected,
                other,
                "everything: nothing in the stack was changed",
                "run with -v and report the error",
            ),
        }
    }
}

/// Something that runs the helper on a network: the daemon, or a test's fake.
#[async_trait::async_trait]
pub trait Helper: Send + Sync {
    /// The helper sidecar on `network`, for one request.
    async fn helper(&self, network: &str, request: &Request) -> Result<Response, SidecarError>;
}

#[async_trait::async_trait]
impl Helper for Docker {
    async fn helper(&self, network: &str, request: &Request) -> Result<Response, SidecarError> {
        run_helper(self, network, request).await
    }
}

/// Why MongoDB could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MongoReadError {
    /// The helper sidecar did not run.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// The helper ran and MongoDB did not answer it.
    #[error("MongoDB at {host} does not answer: {reason}")]
    Unreachable {
        /// The address it was reached by.
        host: String,
        /// What the driver said.
        reason: String,
    },
}

/// What the helper reads of the MongoDB `query.uri` names, on `network`.
///
/// # Errors
/// The sidecar failed, or MongoDB did not answer.
pub async fn read_mongo(h: &dyn Helper, network: &str, query: MongoQuery) -> Result<MongoReport, MongoReadError> {
    let host = query.uri.clone();
    let r = h.helper(network, &Request { mongo: Some(query), ..Default::default() }).await?;
    let m = r.mongo.unwrap_or_default();
    if !m.reachable {
        return Err(MongoReadError::Unreachable { host, reason: m.error.unwrap_or_default() });
    }
    Ok(m)
}

/// Waits until the MongoDB at `host` answers on `network`, asking every half second for at most
/// `timeout`.
///
/// # Errors
/// The last failure once `timeout` passed.
pub async fn wait_mongo(
    h: &dyn Helper,
    network: &str,
    host: &str,
    timeout: std::time::Duration,
) -> Result<(), MongoReadError> {
    // tokio's clock, so that tests with paused time run the wait at once.
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let q = MongoQuery {
            uri: crate::util::mongo_uri(host),
            dbs: vec![],
            counts: false,
            all_dbs: false,
            digests: false,
        };
        match read_mongo(h, network, q).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
            Err(e) => tracing::debug!("waiting for MongoDB at {host}: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Copies Docker volume `from` onto volume `to` (created when missing, emptied first) exactly:
/// modes, owners, links, times. The helper runs as root for it, with no network.
///
/// # Errors
/// The volume could not be created, the sidecar failed, or the copy did.
pub async fn copy_volume(docker: &Docker, from: &str, to: &str) -> Result<super::helper::TreeCopied, SidecarError> {
    if docker.inspect_volume(to).await.is_err() {
        let req = bollard::models::VolumeCreateRequest { name: Some(to.to_string()), ..Default::default() };
        docker.create_volume(req).await.map_err(DockerError::api(format!("create volume {to}")))?;
    }
    let job = super::helper::CopyJob { from: "/from".into(), to: "/to".into() };
    let spec = SidecarSpec {
        binds: vec![format!("{from}:/from:ro"), format!("{to}:/to")],
        user: Some("0:0".into()),
        ..Default::default()
    };
    let r = run_helper_with(docker, "none", &Request { copy: Some(job), ..Default::default() }, spec).await?;
    match r.copied {
        Some(Ok(c)) => Ok(c),
        Some(Err(e)) => Err(SidecarError::Helper(format!("copying volume {from} to {to}: {e}"))),
        None => Err(SidecarError::Helper("no answer to the copy".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], created: i64) -> bollard::models::ImageSummary {
        bollard::models::ImageSummary {
            repo_tags: tags.iter().map(ToString::to_string).collect(),
            created,
            ..Default::default()
        }
    }

    #[test]
    fn only_old_helpers_of_other_builds_are_removed() {
        let keep = "mender-compose-upgrade-helper:0.1.0-a-1";
        let now = 1_000_000;
        // Another run's build in progress: labelled, not tagged yet, seconds old.
        assert!(!removable_helper(&image(&[], now - 5), keep, now));
        assert!(!removable_helper(&image(&["mender-compose-upgrade-helper:0.1.0-b-2"], now - 60), keep, now));
        assert!(!removable_helper(&image(&[keep], now - 10 * HELPER_MIN_AGE_S), keep, now));
        assert!(removable_helper(&image(&[], now - HELPER_MIN_AGE_S), keep, now));
        assert!(removable_helper(&image(&["mender-compose-upgrade-helper:0.1.0-b-2"], now - 86_400), keep, now));
    }
}
