//! The Docker daemon stopped in the middle of a hop and started again (issue 13, item 3).
//!
//! This test has a binary of its own: cargo runs test binaries one after another, and stopping
//! the daemon stops every container on it, so nothing else may run meanwhile. It needs root on
//! the daemon's own host (it stops and starts the daemon's process), which scripts/test has.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::host::{journal, output, spawn, while_running};
use common::*;

fn testbed(verb: &str) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed");
    Command::new(script).arg(verb).output().expect("run scripts/testbed")
}

/// Starts the daemon again when dropped, so that a failed assertion never leaves the test bed
/// without one.
struct DaemonBack;

impl Drop for DaemonBack {
    fn drop(&mut self) {
        let out = testbed("daemon");
        if !out.status.success() {
            eprintln!("starting the daemon again failed: {}\n{}", stdout(&out), stderr(&out));
        }
    }
}

/// The Docker daemon is stopped (as `systemctl stop docker` does) while a 3.4.0 → 3.6.5 hop
/// starts the migrated release: the tool rolls nothing back (it could not), exits 5 saying so and
/// keeps its journal; with the daemon started again, `resume` completes the hop: healthy 3.6.5,
/// the data migrated and otherwise as before, no sidecar of the interrupted run left.
#[test]
fn the_daemon_stopped_in_the_middle_of_a_hop_then_resume_completes_it() {
    let stack = Stack::up("daemon", "3.4.0");
    let before = stack.data();
    let mut child = spawn(&stack, &["upgrade", "--to", "3.6.5", "--yes"], &[]);
    let migrated = while_running(&mut child, Duration::from_secs(600), || {
        journal(&stack)["upgrade"]["done"].as_array().is_some_and(|d| d.iter().any(|s| s == "migrate"))
    });
    assert!(migrated, "the hop ended before its migrations were journaled: {}", stderr(&output(child)));
    let back = DaemonBack;
    let stopped = testbed("daemon-stop");
    assert!(stopped.status.success(), "stopping the daemon: {}\n{}", stdout(&stopped), stderr(&stopped));
    while_running(&mut child, Duration::from_secs(180), || false);
    let out = output(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{}\n{err}", stdout(&out));
    assert!(err.contains("the Docker daemon stopped answering, so nothing was rolled back"), "{err}");
    assert!(err.contains(&format!("-p {} resume", stack.project)), "{err}");
    drop(back);

    assert_eq!(journal(&stack)["operation"], "upgrade", "the journal waits for resume");
    let resumed = stack.tool(&["--json", "resume", "--yes"]);
    assert!(resumed.status.success(), "resume: {}\n{}", stdout(&resumed), stderr(&resumed));
    assert_eq!(result_line(&resumed)["to"], "3.6.5");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    assert!(s["interrupted"].is_null());
    let after = stack.data();
    assert_eq!(without_migrations(&after), without_migrations(&before), "only the migrations changed the data");
    assert_ne!(after, before, "the migrations ran");
    let sidecars = docker_ok(&["ps", "-aq", "--filter", "label=io.mender-compose-upgrade.sidecar"]);
    assert!(sidecars.trim().is_empty(), "no sidecar of the interrupted run is left: {sidecars}");
}
