//! `upgrade`, `resume`, `rollback` on real test-bed stacks: the hops through compose, the gates,
//! the rollbacks (data restore and image swap), a full disk during a rollback's restore. The kill
//! matrices are in tests/crash_matrix.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::host::{SmallDisk, journal, output, pre_hop_dumps, spawn, while_running};
use common::*;

#[test]
fn upgrade_3_4_0_to_3_7_11_keeps_data_comments_and_compose_state() {
    let stack = Stack::up_with("up37", "3.4.0", &["--devices", "100", "--artifacts", "5"]);
    let prod = stack.path("production/config/prod.yml");
    let commented = format!("# Our production overrides: do not remove this line.\n\n{}", file(&prod));
    std::fs::write(&prod, &commented).unwrap();
    let before = stack.data();
    // The plan reviewed (saved with `plan --out`) is the plan carried out.
    let planfile = stack.dir.parent().unwrap().join("reviewed.plan.json");
    let planned = stack.tool(&["--json", "plan", "--to", "3.7.11", "--out", &planfile.to_string_lossy()]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    let dry = stack.tool(&["--json", "upgrade", "--plan", &planfile.to_string_lossy(), "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let previewed = result_line(&dry);
    assert_eq!(previewed["plan"], json(&planned), "the dry run previews the reviewed plan");
    assert!(previewed["hops"].as_array().unwrap().is_empty(), "a dry run runs no hop");
    // Notifications reach a receiver; one that is down fails nothing.
    let receiver = receiver::Receiver::start();
    let notify = format!("{},{}", receiver::dead_url(), receiver.url);
    let out = stack.tool_env(
        &["--json", "upgrade", "--plan", &planfile.to_string_lossy(), "--yes"],
        &[("MENDER_COMPOSE_UPGRADE_NOTIFY", &notify)],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r = result_line(&out);
    assert_eq!(receiver.events(), ["start", "hop", "hop", "hop", "done"], "{:?}", receiver.received());
    let got = receiver.received();
    assert_eq!((got[0]["from"].as_str(), got[0]["to"].as_str()), (Some("3.4.0"), Some("3.7.11")));
    assert_eq!(
        (got[3]["index"].as_u64(), got[3]["of"].as_u64(), got[3]["release"].as_str()),
        (Some(3), Some(3), Some("3.7.11"))
    );
    assert!(got.iter().all(|d| d["project"] == stack.project.as_str() && d["source"] == "mender-compose-upgrade"));
    assert!(
        stderr(&out).contains("notification to http://127.0.0.1:") && !stderr(&out).contains("T0KEN"),
        "{}",
        stderr(&out)
    );
    let reviewed: Vec<String> = json(&planned)["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}→{}", h["from"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    assert_eq!(hop_labels(&r), reviewed, "the hops carried out are the hops reviewed");
    let hops = hop_labels(&r);
    // MongoDB 4.4 → 5.0 is a stage of its own at 3.6.5 (3.6 documents both majors).
    assert_eq!(hops, ["3.4.0→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]);
    for h in r["hops"].as_array().unwrap() {
        let steps: &[&str] = if h["from"] == h["to"] {
            &["stop", "mongo-stop", "copy", "rewrite", "mongo", "up", "gates"]
        } else {
            &["stop", "dump", "rewrite", "migrate", "up", "gates"]
        };
        for step in steps {
            assert!(h["timings"][step].is_number(), "{h}");
        }
    }
    assert!(r["advice"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("without its cache")));
    assert!(Path::new(r["report_md"].as_str().unwrap()).exists());

    // Every gate holds now: release, health, schema versions, config hashes.
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
    assert_eq!(s["mongo"]["server_version"], "5.0.31");
    // The stage moved MongoDB 4.4 → 5.0 and raised the featureCompatibilityVersion.
    assert_eq!(s["mongo"]["fcv"], "5.0");
    assert!(s["databases"].as_array().unwrap().iter().all(|d| d["status"] == "current"), "{}", s["databases"]);
    // The data seeded before the upgrade is all there.
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
    // The operator's prod.yml is untouched, comments and all, but for the data volume's name:
    // the stage's copy (the original stays for the operator to remove).
    let db = format!("{}-mender-db", stack.project);
    assert_eq!(file(&prod), commented.replace(&format!("{db}\n"), &format!("{db}-5.0\n")));
    assert_ne!(file(&prod), commented);
    // `docker compose up -d` by hand afterwards recreates nothing.
    let ids = container_ids(&stack);
    let again = stack.compose(&["up", "-d"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(container_ids(&stack), ids, "compose recreated containers: {}", stderr(&again));
    // `demo up` (scripts/demo) on the checkout it left, now upgraded, does not announce 3.4.0:
    // it refuses, naming the release the checkout holds, and starts nothing.
    let started = stack.started_at();
    let dir = stack.dir.to_string_lossy();
    let demo = tool(&["-p", &stack.project, "demo", "up", "--release", "3.4.0", "--dir", &dir, "--https-port", "none"]);
    assert_eq!(demo.status.code(), Some(2), "{}\n{}", stdout(&demo), stderr(&demo));
    assert!(stderr(&demo).contains("holds release 3.7.11, not 3.4.0"), "{}", stderr(&demo));
    assert!(!stdout(&demo).contains("is up"), "{}", stdout(&demo));
    assert_eq!(stack.started_at(), started, "the refused demo started or stopped nothing");
}

#[test]
fn broken_release_with_migrations_is_rolled_back_by_restoring_data() {
    let cat = catalog_copy(|r, _| {
        let svc = &mut release(r, "3.6.5")["services"]["mender-useradm"];
        svc["image"] = "mendersoftware/useradm:mender-3.6.5-broken".into();
    });
    let stack = Stack::up("broken-mig", "3.4.0");
    let compose_before = file(&stack.path("docker-compose.yml"));
    let before = stack.data();
    let receiver = receiver::Receiver::start();
    let out = stack.tool(&[
        "--catalog",
        &catalog_arg(&cat),
        "--notify",
        &receiver.url,
        "upgrade",
        "--to",
        "3.6.5",
        "--yes",
        "--hop-timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    // The failure's notification says what the operator is told: exit 4, rolled back.
    assert_eq!(receiver.events(), ["start", "failed"], "{:?}", receiver.received());
    let failed = &receiver.received()[1];
    assert_eq!(failed["exit"], 4);
    assert!(failed.to_string().contains("rolled back to 3.4.0"), "{failed}");
    let err = stderr(&out);
    assert!(err.contains("hop 3.4.0 → 3.6.5 failed at step gates") && err.contains("mender-useradm"), "{err}");
    assert!(err.contains("rolled back to 3.4.0 (data restore from the pre-hop dump)"), "{err}");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.4.0");
    assert_eq!(stack.data(), before, "counts and digests identical, migration_info included");
    assert_eq!(file(&stack.path("docker-compose.yml")), compose_before);
    assert!(s["interrupted"].is_null());
}

#[test]
fn broken_patch_release_is_rolled_back_by_swapping_images() {
    let cat = catalog_copy(|r, l| add_patch(r, l, "3.6.5", "3.6.90", &["mender-inventory"]));
    let stack = Stack::up("broken-patch", "3.6.5");
    let before = stack.data();
    let out =
        stack.tool(&["--catalog", &catalog_arg(&cat), "upgrade", "--to", "3.6.90", "--yes", "--hop-timeout", "45s"]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rolled back to 3.6.5 (image swap: no database had moved)"), "{err}");
    let s = json(&stack.tool(&["--catalog", &catalog_arg(&cat), "--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    assert_eq!(stack.data(), before);
}

#[test]
fn refusals_change_nothing() {
    let stack = Stack::up("refuse", "3.4.0");
    let started = stack.started_at();
    for (target, code, needle) in [
        ("3.3.2", 2, "older than the running release 3.4.0"),
        ("3.4.0", 2, "already runs 3.4.0"),
        ("9.9.9", 2, "not a Mender Server version the catalog knows"),
        // 4.1.2 has no base files of its own (and, before MongoDB stages, 3.7.11 → 4.0.4 needs two majors).
        ("4.1.2", 3, "cannot be carried out by this version"),
    ] {
        let out = stack.tool(&["upgrade", "--to", target, "--yes"]);
        assert_eq!(out.status.code(), Some(code), "{target}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{target}: {}", stderr(&out));
    }
    // Without a terminal and without --yes nothing goes ahead.
    let unconfirmed = stack.tool(&["upgrade", "--to", "3.6.5"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", stderr(&unconfirmed));
    let dry = stack.tool(&["upgrade", "--to", "3.6.5", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("nothing was changed")
            && stdout(&dry).contains("one is taken and verified before the first hop")
            && stdout(&dry).contains("hop 1: 3.4.0 → 3.6.5")
            && stdout(&dry).contains("Expected downtime"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(stack.started_at(), started, "neither the refusals nor the dry run stopped anything");
    // A plan reviewed before one service's image was changed by hand is not carried out.
    let planfile = stack.dir.parent().unwrap().join("reviewed.plan.json");
    let planfile = planfile.to_string_lossy();
    assert!(stack.tool(&["plan", "--to", "3.6.5", "--out", &planfile]).status.success());
    let base = stack.path("docker-compose.yml");
    let original = file(&base);
    std::fs::write(&base, original.replace("gui:mender-3.4.0", "gui:mender-3.5.1")).unwrap();
    // The stack now drifts (one service on another release's image), so it is not waited healthy:
    // the saved plan is checked before health, and the refusal must name the change itself.
    assert!(stack.compose(&["up", "-d", "--no-deps", "mender-gui"]).status.success());
    let changed = stack.started_at();
    let stale = stack.tool(&["upgrade", "--plan", &planfile, "--yes"]);
    assert_eq!(stale.status.code(), Some(3), "{}", stderr(&stale));
    for needle in
        ["is no longer what the plan", "mender-gui: image", "gui:mender-3.5.1", "plan --to VERSION --out FILE"]
    {
        assert!(stderr(&stale).contains(needle), "{needle}: {}", stderr(&stale));
    }
    assert_eq!(stack.started_at(), changed, "the refused plan stopped nothing");
    let garbage = stack.dir.parent().unwrap().join("garbage.plan.json");
    std::fs::write(&garbage, "{\"hops\": []}").unwrap();
    let unreadable = stack.tool(&["upgrade", "--plan", &garbage.to_string_lossy(), "--yes"]);
    assert_eq!(unreadable.status.code(), Some(2), "{}", stderr(&unreadable));
    assert!(stderr(&unreadable).contains("is not a plan file of this tool"), "{}", stderr(&unreadable));
    std::fs::write(&base, &original).unwrap();
    assert!(stack.compose(&["up", "-d", "--no-deps", "mender-gui"]).status.success());
    stack.wait_healthy();
    // A second run while another holds the lock (a backup): refused with its owner.
    let state = stack.dir.parent().unwrap().join("state");
    let mut first = Command::new(bin())
        .args(["--image-registry", REGISTRY, "-p", &stack.project, "--state-dir", &state.to_string_lossy(), "backup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = state.join(format!("locks/{}.lock", stack.project));
    let t = std::time::Instant::now();
    while !lock.exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    assert!(stderr(&second).contains(&format!("pid {}", first.id())), "{}", stderr(&second));
    assert!(first.wait().unwrap().success(), "the backup completes");
    let started = stack.started_at();
    // An unhealthy stack is not upgraded.
    assert!(stack.compose(&["stop", "mender-inventory"]).status.success());
    let unhealthy = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    assert_eq!(unhealthy.status.code(), Some(3), "{}", stderr(&unhealthy));
    assert!(
        stderr(&unhealthy).contains("the stack is not healthy") && stderr(&unhealthy).contains("mender-inventory"),
        "{}",
        stderr(&unhealthy)
    );
    assert!(stderr(&unhealthy).contains("unchanged: everything: no service was stopped"));
    assert!(stack.compose(&["start", "mender-inventory"]).status.success());
    // Compose v1 is refused.
    let shim = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p: PathBuf = shim.path().join(name);
        std::fs::write(&p, body).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&p).unwrap().permissions(), 0o755);
        assert!(Command::new("chmod").arg("755").arg(&p).status().unwrap().success());
    };
    write("docker", "#!/bin/sh\n[ \"$1\" = compose ] && exit 1\nexec /usr/local/bin/docker \"$@\"\n");
    write("docker-compose", "#!/bin/sh\necho 1.29.2\n");
    let path = format!("{}:{}", shim.path().display(), std::env::var("PATH").unwrap());
    let v1 = stack.tool_env(&["upgrade", "--to", "3.6.5", "--yes"], &[("PATH", &path)]);
    assert_eq!(v1.status.code(), Some(3), "{}", stderr(&v1));
    assert!(stderr(&v1).contains("Docker Compose 1.29.2 is v1"), "{}", stderr(&v1));
    stack.wait_healthy();
    let after: Vec<String> =
        stack.started_at().lines().filter(|l| !l.contains("mender-inventory")).map(str::to_string).collect();
    let before: Vec<String> = started.lines().filter(|l| !l.contains("mender-inventory")).map(str::to_string).collect();
    assert_eq!(after, before, "no refused run stopped anything");
}

/// Issue 13, item 3: the database's disk fills up while a rollback restores the pre-hop dump (the migrations had
/// run): the rollback stops with exit 5, says a disk is full and what to run, and starts nothing
/// on the emptied databases; the pre-hop dump is untouched. Once there is space again, `rollback`
/// restores the whole dump: healthy 3.4.0, every collection and object as before the upgrade.
#[test]
fn a_disk_filling_during_the_rollbacks_restore_stops_it_cleanly_and_rollback_finishes_later() {
    prepare();
    let name = "diskfull";
    let volume = format!("{}{name}-mender-db", prefix());
    let disk = SmallDisk::new(&volume, 96);
    let stack = Stack::up(name, "3.4.0");
    assert_eq!(
        docker_ok(&["volume", "inspect", "-f", "{{.Options.device}}", &volume]).trim(),
        disk.dir.to_string_lossy(),
        "the stack's database lives on the small disk"
    );
    let before = stack.data();

    // The hop fails after its migrations, so its rollback restores the pre-hop dump; once the
    // journal says the restore has begun, every byte the wipe frees is taken.
    let mut child = spawn(
        &stack,
        &["upgrade", "--to", "3.6.5", "--yes"],
        &[("MENDER_COMPOSE_UPGRADE_FAULT", "fail-after:migrate")],
    );
    let begun =
        while_running(&mut child, Duration::from_secs(600), || journal(&stack)["upgrade"]["restore_begun"] == true);
    assert!(begun, "the rollback never began its restore");
    let dumps = pre_hop_dumps(&stack);
    assert_eq!(dumps.len(), 1, "one pre-hop dump");
    while_running(&mut child, Duration::from_secs(300), || {
        disk.fill();
        false
    });
    let out = output(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{}\n{err}", stdout(&out));
    assert!(err.contains("the rollback did not finish"), "{err}");
    assert!(err.contains("a disk is full"), "the message says why: {err}");
    assert!(err.contains("start no Mender service"), "{err}");
    assert!(err.contains(&format!("-p {} rollback", stack.project)), "the command to run: {err}");
    assert!(!err.contains("docker compose -p"), "nothing is started on emptied databases: {err}");
    assert_eq!(pre_hop_dumps(&stack), dumps, "the pre-hop dump is untouched");
    assert_eq!(journal(&stack)["operation"], "rollback", "the journal keeps the restore to finish");
    let running = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--filter",
        "label=com.docker.compose.service=mender-deviceauth",
    ]);
    assert!(running.trim().is_empty(), "deviceauth was not started on the emptied databases");

    disk.free();
    let rb = stack.tool(&["rollback", "--yes"]);
    assert!(rb.status.success(), "rollback with space again: {}\n{}", stdout(&rb), stderr(&rb));
    assert!(stderr(&rb).contains("an earlier rollback was stopped while it restored the dump"), "{}", stderr(&rb));
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.4.0");
    assert!(s["interrupted"].is_null());
    assert_eq!(stack.data(), before, "every collection and object as before the upgrade");
    assert_eq!(pre_hop_dumps(&stack), dumps, "the pre-hop dump is still untouched");
    drop(stack);
    drop(disk);
}
