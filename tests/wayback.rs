//! A way back an operator can trust: an interrupted upgrade is unmissable and untouchable until
//! `resume` or `rollback`; a completed upgrade can be rolled back; a bundle can be restored into
//! production; bundles and rehearsals count only for the stack they were taken of.

mod common;

use common::*;

fn journal_bytes(stack: &Stack) -> Vec<u8> {
    std::fs::read(stack.dir.parent().unwrap().join(format!("state/journal/{}.json", stack.project))).unwrap_or_default()
}

/// SIGINT (as an operator's Ctrl-C) right after each step of a data-restore hop: the run stops
/// at a safe point and says what `resume` and `rollback` would do; nothing else may touch the
/// stack meanwhile; `rollback` brings back the release and the data as they were.
#[test]
fn an_interrupted_upgrade_is_untouchable_until_rolled_back() {
    let stack = Stack::up("sigint", "3.4.0");
    let before = stack.data();
    for point in ["stop", "dump", "rewrite", "mongo", "migrate", "up", "gates"] {
        let fault = format!("sigint-after:{point}");
        let out = stack.tool_env(&["upgrade", "--to", "3.6.5", "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", &fault)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(130), "SIGINT after {point}: {err}");
        assert!(err.contains("interrupted") && err.contains(" resume`") && err.contains(" rollback`"), "{err}");
        assert!(!journal_bytes(&stack).is_empty(), "the journal is kept after a SIGINT at {point}");
        if point == "migrate" {
            // status shows it first, and every verb that could start services, take a bundle or
            // change files refuses, leaving the journal and the stopped services as they are.
            let status = stack.tool(&["status"]);
            assert!(stdout(&status).starts_with("INTERRUPTED UPGRADE"), "{}", stdout(&status));
            assert!(stdout(&status).contains("rollback` brings it back to 3.4.0"), "{}", stdout(&status));
            let (journal, started) = (journal_bytes(&stack), stack.started_at());
            let bundle = stack.bundle().to_string_lossy().into_owned();
            for args in [
                vec!["backup"],
                vec!["staging", "up", "--from", &bundle],
                vec!["rehearse", "--to", "3.6.5", "--yes"],
                vec!["upgrade", "--to", "3.6.5", "--yes"],
                vec!["restore", "--yes", &bundle],
            ] {
                let refused = stack.tool(&args);
                assert_eq!(
                    refused.status.code(),
                    Some(3),
                    "{args:?} while an upgrade is interrupted: {}",
                    stderr(&refused)
                );
                assert!(stderr(&refused).contains("interrupted"), "{args:?}: {}", stderr(&refused));
                assert_eq!(journal_bytes(&stack), journal, "{args:?} changed the journal");
                assert_eq!(stack.started_at(), started, "{args:?} started or stopped a service");
            }
        }
        let rb = stack.tool(&["rollback", "--yes"]);
        assert!(rb.status.success(), "rollback after a SIGINT at {point}: {}\n{}", stdout(&rb), stderr(&rb));
        let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
        assert_eq!(s["release"], "3.4.0", "after {point}");
        assert!(s["interrupted"].is_null());
        assert_eq!(stack.data(), before, "data identical after a SIGINT at {point} and a rollback");
    }
}

/// A completed upgrade is undone by `rollback`, from the pre-hop dump it kept; `history` lists
/// both runs.
#[test]
fn a_completed_upgrade_is_rolled_back_and_recorded() {
    let stack = Stack::up("rbdone", "3.4.0");
    let before = stack.data();
    let up = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    assert!(up.status.success(), "{}\n{}", stdout(&up), stderr(&up));
    assert_eq!(json(&stack.tool(&["--json", "status"]))["release"], "3.6.5");
    let rb = stack.tool(&["rollback", "--yes"]);
    assert!(rb.status.success(), "{}\n{}", stdout(&rb), stderr(&rb));
    assert!(stderr(&rb).contains("3.6.5 → 3.4.0: data restore from"), "the plan is shown: {}", stderr(&rb));
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.4.0");
    assert_eq!(stack.data(), before, "every collection's digest and every object as before the upgrade");
    let h = json(&stack.tool(&["--json", "history"]));
    let rows = h["history"].as_array().unwrap();
    let what: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap().into(),
                r["at_release"].as_str().unwrap().into(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(what, [("rollback".into(), "3.4.0".into(), true), ("upgrade".into(), "3.6.5".into(), true)]);
    let again = stack.tool(&["rollback", "--yes"]);
    assert_eq!(again.status.code(), Some(3), "nothing left to undo: {}", stderr(&again));
}

/// `restore BUNDLE` puts back a dropped collection and a deleted object, after a safety bundle;
/// another project's bundle and a damaged bundle are refused before any downtime.
#[tokio::test(flavor = "multi_thread")]
async fn restore_puts_a_bundle_back_exactly() {
    let stack = Stack::up("restore", "3.4.0");
    let other = Stack::up("restore-other", "3.4.0");
    let before = stack.data();
    let backup = stack.tool(&["--json", "backup"]);
    assert!(backup.status.success(), "{}", stderr(&backup));
    let bundle = stack.bundle();
    let name = bundle.file_name().unwrap().to_string_lossy().into_owned();

    // Damage: a collection dropped, an object deleted.
    let (db, coll) = before["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| {
            d["collections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["count"].as_u64().unwrap_or(0) > 0 && !c["name"].as_str().unwrap().starts_with("migration"))
                .map(|c| (d["name"].as_str().unwrap().to_string(), c["name"].as_str().unwrap().to_string()))
        })
        .unwrap();
    let mongo = mongodb::Client::with_uri_str(format!(
        "mongodb://{}:27017/?directConnection=true",
        container_ip(&format!("{}-mender-mongo-1", stack.project))
    ))
    .await
    .unwrap();
    mongo.database(&db).collection::<bson::Document>(&coll).drop().await.unwrap();
    let s3 = store_client(&stack);
    let key = before["artifacts"][0]["key"].as_str().unwrap().to_string();
    s3.delete_object().bucket("mender-artifact-storage").key(&key).send().await.unwrap();
    let damaged = stack.data();
    assert_ne!(damaged, before);

    // Refused before any downtime: another project's bundle, and a damaged one.
    let started = stack.started_at();
    let theirs = other.tool(&["--json", "backup"]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let foreign = other.bundle().to_string_lossy().into_owned();
    let refused = stack.tool(&["restore", "--yes", &foreign]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains(&format!("is of project {}", other.project)), "{}", stderr(&refused));
    let broken = bundle.with_file_name(format!("{name}-broken"));
    assert!(std::process::Command::new("cp").arg("-a").arg(&bundle).arg(&broken).status().unwrap().success());
    std::fs::write(broken.join("mongo.archive.gz"), b"not an archive").unwrap();
    let refused = stack.tool(&["restore", "--yes", &broken.to_string_lossy()]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("does not verify"), "{}", stderr(&refused));
    std::fs::remove_dir_all(&broken).unwrap();
    assert_eq!(stack.started_at(), started, "nothing was stopped for a refused restore");
    assert_eq!(stack.data(), damaged);

    // Killed once mongorestore reads the bundle (a safety bundle taken, the databases emptied):
    // `restore` again finishes it with no new safety bundle of the half-restored state, the
    // first attempt's staying the way back, and no --no-safety-backup needed.
    let killed = stack.tool_env(&["restore", "--yes", &name], &[("MENDER_COMPOSE_UPGRADE_FAULT", "during:restore")]);
    assert_eq!(killed.status.code(), None, "killed during the restore: {}", stderr(&killed));
    // Its question (printed under --yes too) showed the dropped collection.
    assert!(stderr(&killed).contains(&format!("{db}.{coll}: none now")), "{}", stderr(&killed));
    let first_safety = stack.bundle();
    assert_ne!(first_safety, bundle, "the killed restore took a safety bundle first");
    let bundles = std::fs::read_dir(stack.backups_dir()).unwrap().count();
    // The killed run's mongorestore sidecar goes on alone (the SIGKILL was the tool's, not the
    // container's) and may finish the restore itself: once it has ended, a collection dropped
    // again is what the databases lack, however far it got under the machine's load.
    let sidecars = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        "label=io.mender-compose-upgrade.sidecar",
        "--filter",
        &format!("network={}_mender", stack.project),
    ]);
    for id in sidecars.split_whitespace() {
        docker(&["wait", id]);
    }
    mongo.database(&db).collection::<bson::Document>(&coll).drop().await.unwrap();

    // By a unique start of its name (to the second: the safety bundle shares the minute).
    let prefix = &name[..name.len() - 1];
    let out = stack.tool(&["--json", "restore", "--yes", prefix]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("finishes an interrupted restore"), "{}", stderr(&out));
    let r = result_line(&out);
    assert_eq!(r["release"], "3.4.0");
    let safety = r["safety_bundle"].as_str().expect("the first attempt's safety bundle");
    assert_eq!(std::path::Path::new(safety), first_safety, "the first attempt's safety bundle stays the way back");
    assert_eq!(std::fs::read_dir(stack.backups_dir()).unwrap().count(), bundles, "no new safety bundle");
    assert!(std::path::Path::new(safety).join("manifest.json").exists());
    // What the half-restored databases lack is shown before they are replaced.
    assert!(r["preview"]["collections"].as_array().is_some_and(|c| !c.is_empty()), "{}", r["preview"]);
    assert!(stderr(&out).contains(&format!("{db}.{coll}: none now")), "{}", stderr(&out));
    stack.wait_healthy();
    assert_eq!(stack.data(), before, "the dropped collection and the deleted object are back, nothing else changed");
}

/// A stack destroyed and brought up again under the same project is another stack: its old
/// bundle and rehearsal prove nothing about it.
#[test]
fn a_recreated_stack_does_not_inherit_old_proofs() {
    let dir;
    {
        let stack = Stack::up("reborn", "3.4.0");
        let out = stack.tool(&["rehearse", "--to", "3.6.5", "--yes"]);
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        // Keep its state directory: move it out of the way of the drop.
        dir = tempfile::tempdir().unwrap();
        let state = stack.dir.parent().unwrap().join("state");
        assert!(std::process::Command::new("cp").arg("-a").arg(&state).arg(dir.path()).status().unwrap().success());
    }
    let stack = Stack::up("reborn", "3.4.0");
    let state = stack.dir.parent().unwrap().join("state");
    std::fs::remove_dir_all(&state).ok();
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(dir.path().join("state"))
            .arg(&state)
            .status()
            .unwrap()
            .success()
    );
    let out = stack.tool(&["upgrade", "--to", "3.6.5", "--dry-run", "--require-rehearsal"]);
    assert_eq!(out.status.code(), Some(3), "the old rehearsal must not count: {}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("no rehearsal of 3.6.5"), "{}", stderr(&out));
    let out = stack.tool(&["upgrade", "--to", "3.6.5", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is of another stack under the same project"),
        "the old bundle is named and ignored: {}",
        stdout(&out)
    );
}
