//! `recover`: explains a stale lock or journal and repairs what needs no decision.

use bollard::Docker;

use super::UpgradeState;
use crate::backup::quiesce::{self, QuiesceError};
use crate::state::{Journal, StateDir};

/// What `recover` found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoverReport {
    /// The compose project.
    pub project: String,
    /// What was found and done, one sentence each, for the operator.
    pub lines: Vec<String>,
    /// Services the interrupted backup had stopped (to be started again by the repair).
    pub started: Vec<String>,
    /// The dead owner whose lock was released.
    pub released_lock: Option<crate::state::Owner>,
    /// The journal found, read as an upgrade's.
    pub journal: Option<Journal<UpgradeState>>,
}

/// Explains a stale lock or journal and repairs what can be repaired without a decision: a dead
/// owner's lock is released, services an interrupted backup stopped are started. An interrupted
/// upgrade is only explained: its services must not start on data a migration may have moved.
///
/// # Errors
/// [`QuiesceError::Busy`] when the lock's owner still runs; [`QuiesceError::Restart`] or
/// [`QuiesceError::Journal`] when the repair fails.
pub async fn recover(docker: &Docker, state: &StateDir, project: &str) -> Result<RecoverReport, QuiesceError> {
    if let Some(owner) = state.lock_owner(project).filter(|o| !o.is_dead()) {
        return Err(QuiesceError::Busy(owner));
    }
    let journal = state.journal(project);
    let mut r = RecoverReport {
        project: project.into(),
        lines: vec![],
        started: vec![],
        released_lock: None,
        journal: journal.clone(),
    };
    match &journal {
        None => r.lines.push(format!("no interrupted run of {project}")),
        Some(j) if j.payload.is_some() => {
            let st = j.payload.as_ref().map(|u| {
                (
                    u.hop,
                    u.plan.hops.len(),
                    u.done.clone(),
                    u.plan.hops.get(u.hop).map(|h| (h.from.clone(), h.to.clone())),
                )
            });
            if let Some((hop, n, done, Some((from, to)))) = st {
                r.lines.push(format!(
                    "an upgrade (pid {} on {}, started {}) stopped in hop {}/{n} ({from} → {to}) after: {}",
                    j.owner.pid,
                    j.owner.host,
                    j.owner.started,
                    hop + 1,
                    if done.is_empty() {
                        "nothing".to_string()
                    } else {
                        done.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
                    }
                ));
            }
            r.lines.push("run `resume` to continue it, or `rollback` to go back to the release before the hop".into());
            r.lines.push("its stopped services are left stopped: an older image must not start on data a migration may have moved".into());
        }
        Some(j) => {
            let repaired = quiesce::repair(docker, state, project).await?;
            r.started = j.stopped.iter().map(|s| s.service.clone()).collect();
            r.lines.push(format!(
                "an interrupted {} (pid {}, started {}) had stopped: {}",
                j.operation,
                j.owner.pid,
                j.owner.started,
                r.started.join(", ")
            ));
            if repaired.is_some() {
                r.lines.push("started them again and removed its partial bundle".into());
            }
        }
    }
    if let Some(owner) = state.release_dead_lock(project) {
        r.lines.push(format!("released the lock of pid {} (no longer running)", owner.pid));
        r.released_lock = Some(owner);
    }
    Ok(r)
}
