//! Kill matrices: SIGKILL right after every journal point of a patch hop (image swap, then
//! `rollback`) and of a data-restore hop (the crash matrix: `rollback` and `resume` columns, and
//! a rollback killed in its own restore). Their own binary, so that they run beside
//! tests/upgrade.rs rather than after it.

mod common;

use common::*;
use serde_json::Value;

fn journal_step(stack: &Stack) -> Value {
    json(&stack.tool(&["--json", "status"]))["interrupted"].clone()
}

#[test]
fn killed_at_every_journal_point_rollback_restores() {
    let cat = catalog_copy(|r, l| add_patch(r, l, "3.6.5", "3.6.91", &[]));
    let c = catalog_arg(&cat);
    let stack = Stack::up("killed-rb", "3.6.5");
    let before = stack.data();
    for point in POINTS {
        let fault = format!("after:{point}");
        let out = stack.tool_env(
            &["--catalog", &c, "upgrade", "--to", "3.6.91", "--yes"],
            &[("MENDER_COMPOSE_UPGRADE_FAULT", &fault)],
        );
        assert_eq!(out.status.code(), None, "killed after {point}: {}", stderr(&out));
        assert_eq!(journal_step(&stack)["operation"], "upgrade", "the journal survives the kill after {point}");
        let refused = stack.tool(&["--catalog", &c, "upgrade", "--to", "3.6.91", "--yes"]);
        assert_eq!(refused.status.code(), Some(3), "a new upgrade waits for resume/rollback: {}", stderr(&refused));
        let rb = stack.tool(&["--catalog", &c, "rollback", "--yes"]);
        assert!(rb.status.success(), "rollback after {point}: {}\n{}", stdout(&rb), stderr(&rb));
        let s = json(&stack.tool(&["--catalog", &c, "--json", "status", "--require-healthy"]));
        assert_eq!(s["release"], "3.6.5", "after {point}");
        assert!(s["interrupted"].is_null());
        assert_eq!(stack.data(), before, "data identical after a kill at {point} and a rollback");
    }
}

/// Every point a hop journals, in run order.
const POINTS: [&str; 8] = ["stop", "dump", "rewrite", "mongo", "migrate", "up", "gates", "hop-done"];

/// How a rollback said it undid the hop (its class).
fn rollback_class(out: &std::process::Output) -> &'static str {
    let err = stderr(out);
    ["nothing had changed", "image swap", "data restore"].into_iter().find(|c| err.contains(c)).unwrap_or("?")
}

/// The upgrade killed (SIGKILL) right after journaling `point`.
fn killed_after(stack: &Stack, to: &str, point: &str) {
    let fault = format!("after:{point}");
    let out = stack.tool_env(&["upgrade", "--to", to, "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", &fault)]);
    assert_eq!(out.status.code(), None, "killed after {point}: {}\n{}", stdout(&out), stderr(&out));
}

/// The rollback column of the crash matrix: a kill after each point, then `rollback`; and a
/// rollback killed in the middle of its own restore, then `rollback` again. Returns its rows.
fn rollback_column() -> Vec<(String, String)> {
    let stack = Stack::up("matrix-rb", "3.4.0");
    let before = stack.data();
    let mut rows = Vec::new();
    let back = |what: &str, rb: &std::process::Output| {
        assert!(rb.status.success(), "rollback after {what}: {}\n{}", stdout(rb), stderr(rb));
        let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
        assert_eq!(s["release"], "3.4.0", "after {what}");
        assert!(s["interrupted"].is_null(), "after {what}");
        assert_eq!(stack.data(), before, "every digest and object as before, after a kill at {what} and a rollback");
    };
    for point in POINTS {
        killed_after(&stack, "3.6.5", point);
        assert_eq!(json(&stack.tool(&["--json", "status"]))["interrupted"]["operation"], "upgrade");
        let rb = stack.tool(&["rollback", "--yes"]);
        back(point, &rb);
        rows.push((format!("after:{point}"), format!("rollback → 3.4.0 ({}), data identical", rollback_class(&rb))));
    }
    // The migrations ran; the rollback that restores the pre-hop dump is killed once mongorestore
    // reads it (the databases wiped and partly back). It is a rollback from then on: `resume`
    // refuses to carry the hop on over that data, and `rollback` restores the whole dump again.
    killed_after(&stack, "3.6.5", "migrate");
    let rb = stack.tool_env(&["rollback", "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", "during:restore")]);
    assert_eq!(rb.status.code(), None, "killed during the restore: {}\n{}", stdout(&rb), stderr(&rb));
    assert_eq!(json(&stack.tool(&["--json", "status"]))["interrupted"]["operation"], "rollback");
    let resume = stack.tool(&["resume", "--yes"]);
    assert_eq!(resume.status.code(), Some(2), "{}", stderr(&resume));
    assert!(stderr(&resume).contains("was a rollback, not an upgrade"), "{}", stderr(&resume));
    let again = stack.tool(&["rollback", "--yes"]);
    assert!(
        stderr(&again).contains("an earlier rollback was stopped while it restored the dump"),
        "{}",
        stderr(&again)
    );
    back("a kill during the rollback's restore", &again);
    rows.push((
        "after:migrate, rollback killed during:restore".into(),
        "rollback again → 3.4.0 (data restore), data identical".into(),
    ));
    rows
}

/// Each database's schema version (its newest migration_info), by name.
fn migration_versions(data: &Value) -> Vec<(String, Value)> {
    let dbs = data["databases"].as_array().map(Vec::as_slice).unwrap_or_default();
    dbs.iter().map(|d| (d["name"].as_str().unwrap_or_default().to_string(), d["migration"].clone())).collect()
}

/// The resume column: a kill after each point, then `resume` to 3.6.5 with the data migrated;
/// `rollback` after that success brings the stack back to 3.4.0 for the next point.
fn resume_column() -> Vec<(String, String)> {
    let stack = Stack::up("matrix-resume", "3.4.0");
    let before = stack.data();
    let mut migrated: Option<Vec<(String, Value)>> = None;
    let mut rows = Vec::new();
    for point in POINTS {
        killed_after(&stack, "3.6.5", point);
        let resumed = stack.tool(&["--json", "resume", "--yes"]);
        assert!(resumed.status.success(), "resume after {point}: {}\n{}", stdout(&resumed), stderr(&resumed));
        assert_eq!(result_line(&resumed)["to"], "3.6.5");
        let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
        assert_eq!(s["release"], "3.6.5", "after {point}");
        let after = stack.data();
        assert_eq!(without_migrations(&after), without_migrations(&before), "only migrations moved, after {point}");
        // Every resumed run ends at the same schema versions as the first one (the migration
        // records themselves carry when they ran), and they moved from 3.4.0's.
        let versions = migration_versions(&after);
        assert_ne!(versions, migration_versions(&before), "the migrations ran, after {point}");
        assert_eq!(migrated.get_or_insert_with(|| versions.clone()), &versions, "after {point}");
        rows.push((format!("after:{point}"), "resume → 3.6.5, data migrated, nothing else changed".into()));
        let rb = stack.tool(&["rollback", "--yes"]);
        assert!(rb.status.success(), "rollback of the resumed upgrade: {}\n{}", stdout(&rb), stderr(&rb));
        assert_eq!(stack.data(), before, "back at 3.4.0 for the next point");
    }
    rows
}

/// Issue 13's crash matrix on a hop whose migrations move the data (3.4.0 → 3.6.5, the class
/// most real hops are): SIGKILL after every journal point, then `rollback` (data identical to
/// before) or, on a second stack at the same time, `resume` (data migrated). The matrix is
/// printed (point × outcome) whether or not the test is run with --nocapture.
#[test]
fn crash_matrix_on_a_data_restore_hop() {
    let (rb, rs) = std::thread::scope(|s| {
        let rb = s.spawn(rollback_column);
        let rs = s.spawn(resume_column);
        let (rb, rs) = (rb.join(), rs.join());
        match (rb, rs) {
            (Ok(rb), Ok(rs)) => (rb, rs),
            (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
        }
    });
    let mut table = String::from("crash matrix, 3.4.0 → 3.6.5 (data-restore hop), SIGKILL at:\n");
    for (point, outcome) in rb.iter().chain(&rs) {
        table.push_str(&format!("  {point:<48} {outcome}\n"));
    }
    table.push_str(&format!("  {} kills, {} outcomes as required\n", rb.len() + rs.len() + 1, rb.len() + rs.len()));
    // Straight to stderr: libtest captures only the print macros.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), table.as_bytes());
    assert_eq!(rs.len(), POINTS.len());
    assert_eq!(rb.len(), POINTS.len() + 1);
}
