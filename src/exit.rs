//! Exit codes and the errors an operator can act on.

use std::process::ExitCode;

use serde::Serialize;

/// The documented exit codes (README, DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// Success (also a `status` that found the stack healthy, a plan printed).
    Ok = 0,
    /// An error the tool did not expect (a bug, or a failure it has no advice for).
    Unexpected = 1,
    /// Bad usage or input: unknown version, downgrade, ambiguous project.
    Usage = 2,
    /// A precondition is not met: daemon unreachable, no stack, unhealthy stack, lock held.
    Precondition = 3,
    /// The upgrade failed and was rolled back cleanly.
    RolledBack = 4,
    /// The upgrade failed and the rollback is incomplete.
    RollbackIncomplete = 5,
    /// `backup --copy-to` / `backup copy`: the bundle is complete and kept on this host, but its
    /// copy off the host failed (upload, read-back checksum, a missing or refusing destination).
    CopyFailed = 6,
    /// Stopped by Ctrl-C (after putting things back).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// [`Failure::unchanged`] of a command that changed nothing at all. It starts with "everything":
/// a bare "nothing" after `unchanged:` read as "nothing was left unchanged" to operators.
pub const UNCHANGED_ALL: &str = "everything: this command changed nothing";

/// An error that says what was wrong, what was left unchanged, and what to do next.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{what}")]
pub struct Failure {
    /// The process exit code it ends with.
    #[serde(skip)]
    pub exit: Exit,
    /// What was wrong, one sentence (`the artifact bucket … has versioning off: …`).
    pub what: String,
    /// What was left as it was (printed as `unchanged:`; empty: not printed).
    pub unchanged: String,
    /// What the operator does next, as commands where possible (printed as `next:`).
    pub next: String,
}

impl Failure {
    /// A failure to print or return; each part as [`Failure`]'s fields say.
    pub fn new(exit: Exit, what: impl ToString, unchanged: impl ToString, next: impl ToString) -> Failure {
        Failure { exit, what: what.to_string(), unchanged: unchanged.to_string(), next: next.to_string() }
    }

    /// The failure for a terminal: `error:`, then `unchanged:` and `next:` when not empty.
    pub fn render(&self) -> String {
        let mut s = format!("error: {}\n", self.what);
        if !self.unchanged.is_empty() {
            s.push_str(&format!("  unchanged: {}\n", self.unchanged));
        }
        if !self.next.is_empty() {
            s.push_str(&format!("  next: {}\n", self.next));
        }
        s
    }

    /// The failure as `--json` prints it: `{"error": {"exit_code", "what", "unchanged", "next"}}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"exit_code": self.exit as u8, "what": self.what, "unchanged": self.unchanged, "next": self.next}})
    }
}
