//! `history`: what upgrades, rollbacks and restores did to a project, oldest first, kept in the
//! state directory (`history/<project>.jsonl`). An upgrade's entry keeps its final state — the
//! plan, the run directory with each hop's pre-hop dump and saved compose files — which is what
//! `rollback` after a successful upgrade undoes the hops with.

use std::path::PathBuf;

use semver::Version;
use serde::{Deserialize, Serialize};

use super::UpgradeState;
use crate::state::StateDir;

/// What kind of run an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// `upgrade` (or `resume` finishing one).
    Upgrade,
    /// `rollback`.
    Rollback,
    /// `restore BUNDLE`.
    Restore,
}

/// One finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// When it finished (RFC 3339).
    pub at: String,
    /// What it was.
    pub operation: Operation,
    /// The release before.
    pub from: Version,
    /// The release it aimed at.
    pub to: Version,
    /// The release the stack was at when it ended.
    pub at_release: Version,
    /// The hops, `3.4.0 → 3.6.5`.
    pub hops: Vec<String>,
    /// Whether it did what it aimed at.
    pub ok: bool,
    /// What happened, for people (`done`, `rolled back to 3.4.0 (…)`).
    pub result: String,
    /// Its report (Markdown), if one was written.
    pub report: Option<PathBuf>,
    /// An upgrade's final state: its run directory holds the pre-hop dumps and saved files, and
    /// `hop` is the number of hops it completed (all, or those before the hop that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UpgradeState>,
}

impl Entry {
    /// The run directory, when its pre-hop dumps are still there (`dumps kept`).
    pub fn dumps_kept(&self) -> Option<PathBuf> {
        let st = self.state.as_ref()?;
        // The hops it completed: all of them, or those before the one that failed.
        (0..st.hop.min(st.plan.hops.len()))
            .all(|i| super::files::hop_dir(st, i).join(crate::backup::bundle::ARCHIVE).exists())
            .then(|| st.run_dir.clone())
    }
}

/// Appends `entry` to the project's history; a history that cannot be written is said, not fatal
/// (the run it records is over).
pub fn record(state: &StateDir, project: &str, entry: &Entry) {
    if let Err(e) = state.append_history(project, entry) {
        tracing::warn!("could not record the run in the history of {project}: {e}");
    }
}

/// The project's history, oldest first.
pub fn read(state: &StateDir, project: &str) -> Vec<Entry> {
    state.history(project)
}
