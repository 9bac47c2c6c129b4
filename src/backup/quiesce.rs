//! Stopping the writers for a consistent dump (the compose mongo is standalone: no oplog, so no
//! point-in-time dump while services write) and always starting them again. The journal lists
//! what was stopped before anything stops, so that a killed run is repaired by the next one.

use bollard::Docker;

use crate::catalog::Role;
use crate::engine::docker::{self, DockerError};
use crate::snapshot::Stack;
use crate::state::{Journal, StateDir, StoppedService};

/// Running Mender services, in the order they stop: the gateway and GUI first (no new requests),
/// then the API services, then the workers.
pub fn writers(stack: &Stack) -> Vec<StoppedService> {
    let rank = |r: Option<Role>| match r {
        Some(Role::Gateway) => 0,
        Some(Role::Gui) => 1,
        Some(Role::Backend) => 2,
        Some(Role::Worker) => 3,
        _ => 9,
    };
    let mut w: Vec<_> = stack.services.iter().filter(|s| s.running && rank(s.role) < 9).collect();
    w.sort_by_key(|s| (rank(s.role), s.name.clone()));
    w.into_iter()
        .map(|s| StoppedService {
            service: s.name.clone(),
            container: s.container.clone(),
            wave: u8::from(rank(s.role) > 1),
        })
        .collect()
}

/// Records `writers` in the journal (durably), then stops them, each given `grace` seconds
/// before it is killed.
///
/// # Errors
/// [`QuiesceError::Journal`] before anything stopped; [`QuiesceError::Docker`] when a stop failed
/// (the ones before it stay stopped: the caller starts them again).
pub async fn stop(
    docker: &Docker,
    state: &StateDir,
    project: &str,
    journal: &mut Journal,
    writers: &[StoppedService],
    grace: i32,
) -> Result<(), QuiesceError> {
    journal.stopped = writers.to_vec();
    journal.step("stopping the writers");
    state.write_journal(project, journal).map_err(QuiesceError::Journal)?;
    stop_all(docker, writers, grace).await
}

/// Stops services in their waves, each wave in parallel: the downtime is the slowest stop, not
/// their sum. `grace`: seconds before a service is killed.
///
/// # Errors
/// [`QuiesceError::Docker`] for the first stop that failed; later waves are not stopped.
pub async fn stop_all(docker: &Docker, writers: &[StoppedService], grace: i32) -> Result<(), QuiesceError> {
    for wave in [0, 1] {
        let stops = writers.iter().filter(|w| w.wave == wave).map(|w| docker::stop(docker, &w.container, grace));
        for r in futures_util::future::join_all(stops).await {
            r.map_err(QuiesceError::Docker)?;
        }
    }
    Ok(())
}

/// Starts every stopped service (the waves in reverse order), even when some fail; returns the failures.
pub async fn start(docker: &Docker, stopped: &[StoppedService]) -> Vec<String> {
    let mut failed = Vec::new();
    for wave in [1, 0] {
        let wave: Vec<&StoppedService> = stopped.iter().filter(|w| w.wave == wave).collect();
        let starts = wave.iter().map(|w| docker::start(docker, &w.container));
        for (w, r) in wave.iter().zip(futures_util::future::join_all(starts).await) {
            if let Err(e) = r {
                failed.push(format!("{}: {e}", w.service));
            }
        }
    }
    failed
}

/// Waits until every restarted writer that was `healthy` before the stop is `healthy` again
/// (Docker health; polled every second, for at most `timeout`), so that the command after a backup
/// finds the stack as the backup found it. Returns the services not back in time.
pub async fn settle(
    docker: &Docker,
    stack: &Stack,
    restarted: &[StoppedService],
    timeout: std::time::Duration,
) -> Vec<String> {
    let was_healthy = |w: &&StoppedService| {
        stack.services.iter().any(|s| s.name == w.service && s.docker_health.as_deref() == Some("healthy"))
    };
    let mut waiting: Vec<String> = restarted.iter().filter(was_healthy).map(|w| w.service.clone()).collect();
    let deadline = std::time::Instant::now() + timeout;
    while !waiting.is_empty() {
        if let Ok(now) = crate::engine::inspect::project_containers(docker, &stack.project).await {
            waiting.retain(|svc| {
                !now.iter().any(|c| &c.service == svc && c.running && c.health.as_deref() == Some("healthy"))
            });
        }
        if waiting.is_empty() || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    waiting
}

/// Repairs what a run that died left: starts the services its journal says it stopped, removes
/// its partial bundle and sidecars, and clears the journal. Returns the journal it repaired;
/// `None` when there is no journal or its owner still runs.
///
/// # Errors
/// [`QuiesceError::Restart`] when a service did not start (the journal is kept);
/// [`QuiesceError::Journal`] when it cannot be cleared.
pub async fn repair(docker: &Docker, state: &StateDir, project: &str) -> Result<Option<Journal>, QuiesceError> {
    let Some(j) = state.journal::<serde_json::Value>(project) else { return Ok(None) };
    // An interrupted upgrade is never repaired here: `resume` or `rollback` decides.
    if !j.owner.is_dead() || state.pending_upgrade(project).is_some() {
        return Ok(None);
    }
    docker::remove_labelled(docker, crate::labels::SIDECAR_LABEL, &j.owner.pid.to_string()).await;
    let failed = start(docker, &j.stopped).await;
    if !failed.is_empty() {
        return Err(QuiesceError::Restart(failed));
    }
    if let Some(p) = &j.partial {
        let _ = std::fs::remove_dir_all(p);
    }
    state.clear_journal(project).map_err(QuiesceError::Journal)?;
    Ok(Some(j))
}

/// Why stopping or starting the writers, or repairing an earlier run, failed.
#[derive(Debug, thiserror::Error)]
pub enum QuiesceError {
    /// The journal's owner is alive (`recover` refuses to repair under a running process).
    #[error("a run holds the lock and is still running: `{}` (pid {} on {}, started {})", .0.command, .0.pid, .0.host, .0.started)]
    Busy(crate::state::Owner),
    /// The journal could not be written before the stop, or cleared after a repair.
    #[error("cannot write the journal: {0}")]
    Journal(std::io::Error),
    /// Stopping a container failed.
    #[error(transparent)]
    Docker(DockerError),
    /// Services that did not start again, each as `service: error`.
    #[error("could not start again: {}", .0.join("; "))]
    Restart(Vec<String>),
}
