//! `backup list` and `backup prune` end to end on disk, through the CLI, without a daemon: a state
//! directory whose bundles are written with the tool's own manifest writer, with a journal, a
//! staging record and a lock that need some of them, a link pointing out of the backups
//! directory, and a bundle whose removal fails.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use mender_compose_upgrade::backup::manifest::{
    ArtifactsInfo, FORMAT, Manifest, MongoInfo, RehearsalRecord, StackIdentity, Verification,
};
use serde_json::Value;

const DAY: u64 = 86400;

/// A bundle of `project` taken `days` ago, with one 1000-byte file; `checks` of a passed verify.
fn bundle(backups: &Path, project: &str, days: u64, checks: &[&str], rehearsed: bool) -> String {
    let created = SystemTime::now() - Duration::from_secs(days * DAY);
    let stamp = humantime::format_rfc3339_seconds(created).to_string();
    let name = format!("{project}-3.7.11-{}", stamp.replace(['-', ':'], ""));
    let dir = backups.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mongo.archive.gz"), vec![0u8; 1000]).unwrap();
    let verifications = if checks.is_empty() {
        vec![]
    } else {
        vec![Verification {
            at: stamp.clone(),
            tool_version: "test".into(),
            checks: checks.iter().map(|c| c.to_string()).collect(),
            ok: true,
            problems: vec![],
        }]
    };
    let rehearsals = if rehearsed {
        vec![RehearsalRecord {
            at: stamp.clone(),
            to: "4.0.4".parse().unwrap(),
            ok: true,
            estimate_secs: 60.0,
            hops: vec![],
            failure: None,
        }]
    } else {
        vec![]
    };
    Manifest {
        format: FORMAT,
        tool_version: "test".into(),
        created: stamp,
        project: project.into(),
        mender_version: Some("3.7.11".parse().unwrap()),
        services: vec![],
        mongo: MongoInfo::default(),
        databases: vec![],
        archive: Default::default(),
        files: vec![],
        artifacts: ArtifactsInfo::default(),
        verifications,
        rehearsals,
        stack: Some(StackIdentity { databases: BTreeMap::from([("useradm".into(), "2026-01-01T00:00:00Z".into())]) }),
        writers_stopped_secs: None,
        encryption: None,
        keys: vec![],
    }
    .save(&dir)
    .unwrap();
    name
}

fn run(state: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--state-dir", state.to_str().unwrap()];
    all.extend_from_slice(args);
    tool(&all)
}

fn entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["bundles"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("{name}: {doc}"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn names(doc: &Value, action: &str) -> Vec<String> {
    let mut v: Vec<String> = doc["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == action)
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn list_and_prune_keep_what_they_must_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let backups = state.join("backups");
    // Project p: six bundles a day apart; the 4-day-old one restore-tested (and rehearsed), the
    // 5-day-old one named by the journal, the 3-day-old one a staging copy's source.
    let p0 = bundle(&backups, "p", 0, &["files", "archive"], false);
    let p1 = bundle(&backups, "p", 1, &[], false);
    let p2 = bundle(&backups, "p", 2, &[], false);
    let p3 = bundle(&backups, "p", 3, &[], false);
    let p4 = bundle(&backups, "p", 4, &["files", "archive", "restore-test", "staging:p-staging"], true);
    let p5 = bundle(&backups, "p", 5, &[], false);
    let p6 = bundle(&backups, "p", 6, &[], false);
    // Project q: its lock is held by a live run, so nothing of it goes.
    let q0 = bundle(&backups, "q", 10, &[], false);
    let q1 = bundle(&backups, "q", 11, &[], false);
    std::fs::create_dir_all(state.join("journal")).unwrap();
    std::fs::write(
        state.join("journal/p.json"),
        format!(r#"{{"operation": "upgrade", "upgrade": {{"bundle": "{}"}}}}"#, backups.join(&p5).display()),
    )
    .unwrap();
    std::fs::create_dir_all(state.join("staging/p-staging")).unwrap();
    std::fs::write(
        state.join("staging/p-staging/staging.json"),
        format!(r#"{{"name": "p-staging", "bundle": "{}"}}"#, backups.join(&p3).display()),
    )
    .unwrap();
    std::fs::create_dir_all(state.join("locks")).unwrap();
    let me = serde_json::json!({"pid": std::process::id(), "host": mender_compose_upgrade::util::hostname(),
        "started": "now", "command": "upgrade"});
    std::fs::write(state.join("locks/q.lock"), me.to_string()).unwrap();
    // A link out of the backups directory, a bundle being written, a damaged manifest.
    let outside = root.path().join("outside");
    std::fs::create_dir_all(outside.join("inner")).unwrap();
    std::fs::write(outside.join("manifest.json"), "{}").unwrap();
    std::os::unix::fs::symlink(&outside, backups.join("p-3.7.11-20200101T000000Z")).unwrap();
    std::os::unix::fs::symlink(&outside, backups.join(&p2).join("link")).unwrap();
    std::fs::create_dir_all(backups.join("p-3.7.11-20300101T000000Z.partial")).unwrap();
    let damaged = "p-3.7.11-20250101T000000Z";
    std::fs::create_dir_all(backups.join(damaged)).unwrap();
    std::fs::write(backups.join(damaged).join("manifest.json"), "{}").unwrap();
    // The removal of p6 fails: the name it is set aside under is taken by a non-empty directory.
    std::fs::create_dir_all(backups.join(format!("{p6}.partial/x"))).unwrap();

    // list: every bundle (not the link, not the partial), with its proof and what needs it.
    let out = run(&state, &["--json", "backup", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["bundles"].as_array().unwrap().len(), 10, "{doc}");
    let tested = entry(&doc, &p4);
    assert!(tested["proof"]["restore_test"].is_string(), "{tested}");
    assert_eq!(tested["proof"]["staging"], serde_json::json!(["p-staging"]));
    assert_eq!(tested["proof"]["rehearsals"], serde_json::json!(["4.0.4"]));
    assert_eq!(tested["release"], "3.7.11");
    assert_eq!(tested["project"], "p");
    assert!(tested["size_bytes"].as_u64().unwrap() >= 1000);
    assert!(entry(&doc, &p0)["proof"]["checksums"].is_string());
    assert!(entry(&doc, &p0)["proof"]["restore_test"].is_null());
    assert_eq!(entry(&doc, &p5)["needed_by"][0]["kind"], "journal");
    assert_eq!(entry(&doc, &p3)["needed_by"][0], serde_json::json!({"kind": "staging", "name": "p-staging"}));
    assert!(entry(&doc, damaged)["problem"].as_str().unwrap().contains("manifest"));
    let text = stdout(&run(&state, &["backup", "list"]));
    assert!(text.starts_with("BUNDLE") && text.contains("PROVEN"), "{text}");
    assert!(text.contains("checksums, restore test, staging p-staging, rehearsal → 4.0.4"), "{text}");
    assert!(text.contains("10 bundles in"), "{text}");

    // -p: one project's bundles.
    let only_q = json(&run(&state, &["--json", "-p", "q", "backup", "list"]));
    assert_eq!(only_q["bundles"].as_array().unwrap().len(), 2, "{only_q}");

    // No rule: refused like restic, nothing removed, the rules to add named.
    let refused = run(&state, &["backup", "prune"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--keep-last N") && stderr(&refused).contains("--keep-within"));
    assert!(stderr(&refused).contains("no bundle was removed"));

    // Dry run: the decision, nothing removed.
    let dry = run(&state, &["--json", "backup", "prune", "--keep-last", "1", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let dry = json(&dry);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(names(&dry, "would-remove"), sorted(vec![p1.clone(), p2.clone(), p6.clone()]));
    assert!(backups.join(&p1).exists() && backups.join(&p6).exists());
    let text = stdout(&run(&state, &["backup", "prune", "--keep-last", "1", "--dry-run"]));
    assert!(text.starts_with("Dry run: nothing is removed."), "{text}");
    assert!(text.contains("would remove"), "{text}");

    // Prune: the newest of p, and each bundle a rule of protection names; q untouched (locked).
    let pruned = run(&state, &["--json", "backup", "prune", "--keep-last", "1"]);
    assert_eq!(pruned.status.code(), Some(1), "the failed removal fails the command: {}", stderr(&pruned));
    let doc = json(&pruned);
    assert_eq!(names(&doc, "removed"), sorted(vec![p1.clone(), p2.clone()]));
    assert_eq!(names(&doc, "failed"), [p6.as_str()]);
    assert!(entry(&doc, &p6)["error"].as_str().unwrap().contains("nothing of it was removed"));
    let mut kept = vec![p0.clone(), p3.clone(), p4.clone(), p5.clone(), q0.clone(), q1.clone(), damaged.to_string()];
    kept.sort();
    assert_eq!(names(&doc, "keep"), kept);
    let why = |name: &str| entry(&doc, name)["why"].to_string();
    assert!(why(&p4).contains("the newest restore-tested bundle of its stack"), "{}", why(&p4));
    assert!(why(&p5).contains("journal of p"), "{}", why(&p5));
    assert!(why(&p3).contains("staging copy p-staging"), "{}", why(&p3));
    assert!(why(&q1).contains("another run holds its project's lock"), "{}", why(&q1));
    assert!(why(&p0).contains("keep-last 1"), "{}", why(&p0));
    assert!(!backups.join(&p1).exists() && !backups.join(&p2).exists());
    assert!(backups.join(&p6).join("manifest.json").exists(), "a failed removal leaves the bundle whole");
    for name in &kept {
        assert!(backups.join(name).join("manifest.json").exists(), "{name}");
    }
    assert!(outside.join("manifest.json").exists() && outside.join("inner").exists(), "links are not followed");
    assert!(std::fs::symlink_metadata(backups.join("p-3.7.11-20200101T000000Z")).is_ok());
    assert!(backups.join("p-3.7.11-20300101T000000Z.partial").exists(), "a bundle being written is not touched");
    assert_eq!(doc["removed"], 2);

    // -p q: only q is judged; p's remaining bundles are neither reported nor touched.
    std::fs::remove_file(state.join("locks/q.lock")).unwrap();
    let q = json(&run(&state, &["--json", "-p", "q", "backup", "prune", "--keep-last", "1"]));
    assert_eq!(names(&q, "removed"), [q1.as_str()], "{q}");
    assert_eq!(q["bundles"].as_array().unwrap().len(), 2, "{q}");
    assert!(backups.join(&q0).exists() && backups.join(&p6).exists());
    assert_eq!(doc["failed"], 1);
}
