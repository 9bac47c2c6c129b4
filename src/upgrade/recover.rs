//! `recover`: explains a stale lock or journal and repairs what needs no decision.

use bollard::Docker;

use super::UpgradeState;
use crate::backup::quiesce::{self, QuiesceError};
use crate::state::{Journal, StateDir};

/// What `recover` found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoverReport {
    /// The project.
    pub project: String,
    /// What it found and did, for people, one line each.
    pub lines: Vec<String>,
    /// Services it started again.
    pub started: Vec<String>,
    /// The dead run whose lock it released.
    pub released_lock: Option<crate::state::Owner>,
    /// The journal it found.
    pub journal: Option<Journal<UpgradeState>>,
}

/// Where an interrupted upgrade stopped, and what `resume` and `rollback` would each do: what
/// `recover`, `status` and an interrupted run itself tell the operator.
pub fn explain(project: &str, j: &Journal<UpgradeState>) -> Vec<String> {
    let Some(u) = j.payload.as_ref() else { return vec![] };
    let mut lines = Vec::new();
    let n = u.plan.hops.len();
    let Some(hop) = u.plan.hops.get(u.hop) else {
        lines.push(format!(
            "an upgrade of {project} to {} (pid {} on {}, started {}) completed every hop but did not finish its report",
            u.plan.to, j.owner.pid, j.owner.host, j.owner.started
        ));
        lines.push(format!("`mender-compose-upgrade -p {project} resume` finishes it"));
        if let Some(last) = u.plan.hops.last() {
            lines.push(format!(
                "`mender-compose-upgrade -p {project} rollback` undoes its last hop instead, back to {}",
                last.from
            ));
        }
        return lines;
    };
    if j.operation == "rollback" {
        lines.push(format!(
            "a rollback of {project} (pid {} on {}, started {}) stopped while undoing {} → {}; it goes back to {}",
            j.owner.pid,
            j.owner.host,
            j.owner.started,
            hop.to,
            hop.from,
            u.rollback_to.as_ref().map_or_else(|| hop.from.to_string(), |v| v.to_string())
        ));
        lines.push(format!("`mender-compose-upgrade -p {project} rollback` finishes it"));
        return lines;
    }
    let done: Vec<&str> = u.done.iter().map(|s| s.name()).collect();
    let next = super::Step::of(hop).iter().find(|s| !u.done.contains(s)).map_or("the end of the hop", |s| s.name());
    lines.push(format!(
        "an upgrade of {project} (pid {} on {}, started {}) stopped in hop {}/{n} ({}) after: {}",
        j.owner.pid,
        j.owner.host,
        j.owner.started,
        u.hop + 1,
        hop.label(),
        if done.is_empty() { "nothing".to_string() } else { done.join(", ") }
    ));
    lines.push(format!(
        "`mender-compose-upgrade -p {project} resume` continues it at step {next} (a step that was cut short runs again), then the hops left, to {}",
        u.plan.to
    ));
    if hop.is_mongo_stage() {
        lines.push(format!(
            "`mender-compose-upgrade -p {project} rollback` brings it back to {}: the previous compose files, and the previous MongoDB image on the original volume, which the stage never writes",
            hop.from
        ));
    } else {
        let dump = super::files::hop_dir(u, u.hop).join(crate::backup::bundle::ARCHIVE);
        lines.push(format!(
            "`mender-compose-upgrade -p {project} rollback` brings it back to {}: the previous compose files and images, and the pre-hop dump ({}) restored first if a database moved",
            hop.from,
            dump.display()
        ));
    }
    if u.done.contains(&super::Step::Up) {
        // `up` started the new release: nothing the hop stopped is still stopped.
        lines.push(format!("its services run {} images since its step up, not yet proven by the gates", hop.to));
    } else if next == "up" {
        // compose may have gone on after the tool stopped: what runs is for Docker to say.
        lines.push(format!(
            "it stopped while starting {} (step up): some services may run already, others not (`docker compose ps` shows which)",
            hop.to
        ));
    } else if !j.stopped.is_empty() {
        let names: Vec<&str> = j.stopped.iter().map(|s| s.service.as_str()).collect();
        lines.push(format!(
            "its stopped services ({}) stay stopped until then: an older image must not start on data a migration may have moved",
            names.join(", ")
        ));
    }
    lines
}

/// Explains a stale lock or journal and repairs what can be repaired without a decision: a dead
/// owner's lock is released, services an interrupted backup stopped are started. An interrupted
/// upgrade is only explained — its services must not start on data a migration may have moved —
/// unless `abandon` says to drop its journal (the operator decided, and confirmed).
///
/// # Errors
/// A live run holds the lock, or services could not be started again.
pub async fn recover(
    docker: &Docker,
    state: &StateDir,
    project: &str,
    abandon: bool,
) -> Result<RecoverReport, QuiesceError> {
    if let Some(owner) = state.lock_owner(project).filter(|o| !o.is_dead()) {
        return Err(QuiesceError::Busy(owner));
    }
    let journal: Option<Journal<UpgradeState>> = state.journal(project);
    let mut r = RecoverReport {
        project: project.into(),
        lines: vec![],
        started: vec![],
        released_lock: None,
        journal: journal.clone(),
    };
    match &journal {
        None if state.pending_upgrade(project).is_some() && abandon => {
            state.clear_journal(project).map_err(QuiesceError::Journal)?;
            r.lines.push(format!("removed the unreadable journal of {project}"));
        }
        None if state.pending_upgrade(project).is_some() => {
            r.lines.extend(state.pending_upgrade(project).map(|p| p.to_string()));
            r.lines.push("`recover --abandon` removes it once you have checked the stack by hand".into());
        }
        None => r.lines.push(format!("no interrupted run of {project}")),
        Some(j) if j.payload.is_some() && abandon => {
            state.clear_journal(project).map_err(QuiesceError::Journal)?;
            let names: Vec<&str> = j.stopped.iter().map(|s| s.service.as_str()).collect();
            r.lines.push(format!(
                "abandoned the interrupted upgrade of {project}: its journal is removed, its run directory with the pre-hop dumps is kept"
            ));
            r.lines.push(format!(
                "the services it stopped ({}) are still stopped: check the data and the compose files, then start them (production/run up -d) or restore a bundle",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ));
        }
        Some(j) if j.payload.is_some() => {
            r.lines.extend(explain(project, j));
            r.lines.push("`recover --abandon` drops the journal instead, leaving the stack as it is".into());
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
