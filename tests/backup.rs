//! `backup` and `verify` on real test-bed stacks: real mongodump/mongorestore, the SeaweedFS
//! store, and the bundle proven by reading it back.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mender_compose_upgrade::backup::restore::{self, MongoTarget, StoreTarget};
use mender_compose_upgrade::engine::{docker, sidecar::HELPER_BINARY_ENV};

fn secret_of(stack: &Stack) -> String {
    let prod = file(&stack.path("production/config/prod.yml"));
    prod.lines().find_map(|l| l.trim().strip_prefix("MINIO_SECRET_KEY: ")).expect("secret in prod.yml").to_string()
}

fn assert_no_secret(stack: &Stack, outputs: &[&std::process::Output]) {
    let secret = secret_of(stack);
    for o in outputs {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains(&secret), "the storage secret leaked: {text}");
        }
    }
}

/// The disaster: the volumes are gone. The stack comes back empty, the bundle is restored.
#[tokio::test(flavor = "multi_thread")]
async fn round_trip_restores_identical_data() {
    let stack = Stack::up_with("roundtrip", "3.4.0", &["--devices", "300", "--artifacts", "12"]);
    let before = stack.data();
    assert!(before["artifacts"].as_array().unwrap().len() >= 12, "{before}");
    // At a terminal, as an operator runs it: the dump and the artifact copy draw a bar with bytes,
    // rate and ETA, and every step line carries the time since the start.
    let backup = stack.tool_on_terminal(&["backup"]);
    let drawn = stdout(&backup);
    assert!(backup.status.success(), "{drawn}");
    for bar in ["dumping [", "copying artifacts ["] {
        assert!(drawn.contains(bar), "no {bar:?} bar on the terminal: {drawn}");
    }
    assert!(drawn.contains("ETA") && drawn.contains("/s"), "the bars show rate and ETA: {drawn}");
    assert!(drawn.contains(" 0:0") && drawn.contains("==> mongodump from"), "step lines stamped: {drawn}");
    let bundle = stack.bundle();
    let verify = stack.tool(&["--json", "verify", "--restore-test", &bundle.to_string_lossy()]);
    assert!(verify.status.success(), "{}\n{}", stdout(&verify), stderr(&verify));
    assert!(!stderr(&verify).contains("ETA"), "nothing animated without a terminal: {}", stderr(&verify));
    let shown = stack.tool_on_terminal(&["verify", "--restore-test", &bundle.to_string_lossy()]);
    assert!(shown.status.success(), "{}", stdout(&shown));
    assert!(stdout(&shown).contains("restoring ["), "the restore test draws its bar: {}", stdout(&shown));
    assert_no_secret(&stack, &[&backup, &verify, &shown]);

    // Killed while the restore test restores: the throwaway mongo, its volumes and its network
    // stay until the next command of the tool removes what a dead run left; the bundle is as it was.
    let files = tree_bytes(&bundle);
    let child = Command::new(bin())
        .args(["--image-registry", REGISTRY, "verify", "--restore-test", &bundle.to_string_lossy()])
        .env("MENDER_COMPOSE_UPGRADE_FAULT", "during:restore")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let killed = child.wait_with_output().unwrap();
    assert_eq!(killed.status.code(), None, "killed during the restore: {}", stderr(&killed));
    let owner = format!("label=io.mender-compose-upgrade.sidecar={pid}");
    let left = docker_ok(&["ps", "-aq", "--filter", &owner]);
    assert!(!left.trim().is_empty(), "the kill left the throwaway mongo (what the next run removes)");
    let mut inspect = vec!["inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}"];
    inspect.extend(left.split_whitespace());
    let volumes = docker_ok(&inspect);
    assert!(!volumes.trim().is_empty(), "the throwaway mongo has its volumes");
    assert!(stack.status(&[]).status.success());
    assert!(docker_ok(&["ps", "-aq", "--filter", &owner]).trim().is_empty(), "containers of the killed run removed");
    assert!(docker_ok(&["network", "ls", "-q", "--filter", &owner]).trim().is_empty(), "its network removed");
    for v in volumes.split_whitespace() {
        assert!(!docker(&["volume", "inspect", v]).status.success(), "volume {v} of the killed run removed");
    }
    assert_eq!(tree_bytes(&bundle), files, "the bundle is unchanged");

    // Lose everything: containers (with the mongo image's anonymous volume) and both data volumes.
    stack.compose_down();
    for v in ["mender-db", "mender-artifacts"] {
        let name = format!("{}-{v}", stack.project);
        docker(&["volume", "rm", &name]);
        docker_ok(&["volume", "create", &name]);
    }
    assert!(stack.compose(&["up", "-d"]).status.success());
    stack.wait_healthy();
    assert_ne!(stack.data(), before, "a fresh stack does not hold the seeded data");

    // Restore with the writers stopped, as a rollback does.
    let writers = [
        "mender-api-gateway",
        "mender-gui",
        "mender-deployments",
        "mender-device-auth",
        "mender-deviceconfig",
        "mender-deviceconnect",
        "mender-inventory",
        "mender-iot-manager",
        "mender-useradm",
        "mender-workflows-server",
        "mender-workflows-worker",
        "mender-create-artifact-worker",
    ];
    let mut stop = vec!["stop"];
    stop.extend(writers);
    assert!(stack.compose(&stop).status.success());
    // SAFETY of the test: only this process reads the variable, before any helper runs.
    unsafe { std::env::set_var(HELPER_BINARY_ENV, bin()) };
    let d = docker::connect().await.unwrap();
    let network = format!("{}_mender", stack.project);
    let image = format!("{REGISTRY}/mongo:4.4");
    let target = MongoTarget { image: &image, network: &network, host: "mender-mongo" };
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    restore::mongo(&d, &bundle, &target, true, read.clone()).await.expect("mongorestore");
    let size = std::fs::metadata(bundle.join("mongo.archive.gz")).unwrap().len();
    assert!(read.load(std::sync::atomic::Ordering::Relaxed) <= size, "the offset read is within the archive");
    let prod = file(&stack.path("production/config/prod.yml"));
    let secret = secret_of(&stack);
    assert!(prod.contains("MINIO_ACCESS_KEY: mender-deployments"));
    let store = StoreTarget {
        network: &network,
        endpoint: "http://minio:9000",
        bucket: "mender-artifact-storage",
        region: "us-east-1",
        access_key: "mender-deployments",
        secret_key: &secret,
    };
    let copied = restore::artifacts(&d, &bundle, &store, true).await.expect("artifact restore");
    assert_eq!(copied.objects, before["artifacts"].as_array().unwrap().len() as u64);
    let mut start = vec!["start"];
    start.extend(writers);
    assert!(stack.compose(&start).status.success());
    stack.wait_healthy();
    assert_eq!(stack.data(), before, "counts, content digests and the artifact inventory are identical");
}

fn corrupt_copy(bundle: &Path, name: &str) -> std::path::PathBuf {
    let dest = bundle.with_file_name(name);
    let ok = Command::new("cp").arg("-a").arg(bundle).arg(&dest).status().unwrap().success();
    assert!(ok);
    dest
}

fn verify_fails(stack: &Stack, bundle: &Path, needle: &str) {
    let out = stack.tool(&["verify", &bundle.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn verify_names_what_is_broken() {
    let stack = Stack::up_with("corrupt", "3.4.0", &["--artifacts", "4"]);
    let backup = stack.tool(&["--json", "backup"]);
    assert!(backup.status.success(), "{}", stderr(&backup));
    // NDJSON: one event per step, the result last.
    let lines: Vec<serde_json::Value> = stdout(&backup).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["step"] == "dump"));
    let result = lines.last().unwrap();
    assert_eq!(result["event"], "result");
    let bundle = stack.bundle();
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&bundle), 0o700);
    assert_eq!(mode(&bundle.join("mongo.archive.gz")), 0o600);
    assert_eq!(mode(&bundle.join("compose/production/config/prod.yml")), 0o600);
    assert!(stack.tool(&["verify", &bundle.to_string_lossy()]).status.success());

    let flipped = corrupt_copy(&bundle, "flipped");
    let archive = flipped.join("mongo.archive.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&archive, &bytes).unwrap();
    verify_fails(&stack, &flipped, "mongo.archive.gz: sha256 differs");

    let truncated = corrupt_copy(&bundle, "truncated");
    let archive = truncated.join("mongo.archive.gz");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() * 2 / 3]).unwrap();
    verify_fails(&stack, &truncated, "mongo.archive.gz: size");
    // The archive reader notices too, not only the checksum.
    verify_fails(&stack, &truncated, "mongo.archive.gz: cannot read the archive");

    let missing = corrupt_copy(&bundle, "missing");
    let objects = missing.join("artifacts/objects");
    let first = std::fs::read_dir(&objects).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&first).unwrap();
    verify_fails(
        &stack,
        &missing,
        &format!("artifacts/objects/{}: missing", first.file_name().unwrap().to_string_lossy()),
    );

    let edited = corrupt_copy(&bundle, "edited");
    let m = file(&edited.join("manifest.json"));
    let changed = m.replacen("\"migration\": \"2.0.1\"", "\"migration\": \"2.0.3\"", 1);
    assert_ne!(m, changed);
    std::fs::write(edited.join("manifest.json"), changed).unwrap();
    verify_fails(&stack, &edited, "manifest.json: does not match manifest.json.sha256");
}

/// Mounts a small tmpfs (root only, like the rest of the test bed).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn full_disk_refused_up_front_or_cleaned_up_mid_dump() {
    let stack = Stack::up_with("diskfull", "3.4.0", &["--devices", "3000", "--device-pad", "4096", "--artifacts", "2"]);
    let small = Tmpfs::new("2m");
    let out_dir = small.0.path().to_string_lossy().into_owned();
    let before = stack.started_at();

    // The estimate says it will not fit: refused before anything stops.
    let refused = stack.tool(&["backup", "--out", &out_dir]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("not enough free space"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("unchanged: everything: no service was stopped"), "{}", stderr(&refused));
    assert_eq!(stack.started_at(), before, "no service was stopped");

    // Told to go ahead anyway, the disk fills during the dump.
    let failed = stack.tool(&["backup", "--out", &out_dir, "--skip-space-check"]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    let err = stderr(&failed);
    assert!(err.contains("the disk filled up while writing the dump"), "{err}");
    assert!(err.contains("the services were started again"), "{err}");
    let left: Vec<String> = std::fs::read_dir(small.0.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| n.ends_with(".partial")), "no bundle without the partial marker: {left:?}");
    stack.wait_healthy();
    assert!(json(&stack.tool(&["--json", "status"]))["interrupted"].is_null());
}

#[test]
fn killed_backup_is_repaired_by_the_next_run() {
    let stack = Stack::up_with("killed", "3.4.0", &["--devices", "20000", "--device-pad", "1024", "--artifacts", "2"]);
    let state = stack.dir.parent().unwrap().join("state");
    let mut child = Command::new(bin())
        .args(["--image-registry", REGISTRY, "-p", &stack.project, "--state-dir", &state.to_string_lossy(), "backup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the mongodump sidecar of this run exists (writers stopped, dump under way).
    let label = format!("label=io.mender-compose-upgrade.sidecar={}", child.id());
    let start = std::time::Instant::now();
    loop {
        let ps = docker_ok(&["ps", "-q", "--filter", &label, "--filter", "ancestor=testbed.local/mongo:4.4"]);
        if !ps.trim().is_empty() {
            break;
        }
        assert!(start.elapsed().as_secs() < 120, "the dump never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let backups = state.join("backups");
    let complete: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(complete.is_empty(), "no complete-looking bundle");
    let s = json(&stack.tool(&["--json", "status"]));
    assert_eq!(s["interrupted"]["operation"], "backup", "status reports the interrupted run");
    assert_eq!(s["healthy"], false);
    let human = stdout(&stack.tool(&["status"]));
    assert!(human.contains("INTERRUPTED: a backup"), "{human}");

    // The next run repairs (services started, partial removed) and completes.
    let next = stack.tool(&["backup"]);
    assert!(next.status.success(), "{}", stderr(&next));
    assert!(stderr(&next).contains("an interrupted backup"), "{}", stderr(&next));
    stack.wait_healthy();
    let names: Vec<String> =
        std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 1, "only the new bundle: {names:?}");
    assert!(!names[0].ends_with(".partial"));
    // Its sidecar did not outlive the killed run.
    assert!(docker_ok(&["ps", "-aq", "--filter", &label]).trim().is_empty());

    // Ctrl-C while the writers are being stopped: exit 130, and every container runs again (the
    // stops in flight finish before the restart, not after it). To have a stop in flight when the
    // signal comes, useradm is given a stop signal its PID 1 ignores (a service that is slow to
    // shut down): its stop lasts the whole --stop-timeout, 5 s. A tool that drops the stop request
    // on Ctrl-C starts the others again while the daemon is still stopping useradm, which then
    // stays exited.
    let prod = stack.path("production/config/prod.yml");
    let text = file(&prod);
    let slow = text.replacen("    mender-useradm:\n", "    mender-useradm:\n        stop_signal: SIGWINCH\n", 1);
    assert_ne!(slow, text, "prod.yml names mender-useradm");
    std::fs::write(&prod, slow).unwrap();
    assert!(stack.compose(&["up", "-d"]).status.success());
    stack.wait_healthy();
    // The signal is sent when the daemon reports useradm's stop signal: its stop is then in flight.
    let useradm = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--filter",
        "label=com.docker.compose.service=mender-useradm",
    ]);
    let useradm = useradm.trim();
    assert!(!useradm.is_empty(), "useradm runs");
    let mut events = Command::new("docker")
        .args(["events", "--filter", &format!("container={useradm}"), "--filter", "event=kill"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Command::new(bin())
        .args([
            "--image-registry",
            REGISTRY,
            "-p",
            &stack.project,
            "--state-dir",
            &state.to_string_lossy(),
            "backup",
            "--stop-timeout",
            "5",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut kill_event = String::new();
    let mut ev = std::io::BufReader::new(events.stdout.take().unwrap());
    assert!(std::io::BufRead::read_line(&mut ev, &mut kill_event).unwrap() > 0, "useradm was never stopped");
    let _ = events.kill();
    let _ = events.wait();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let signalled = std::time::Instant::now();
    std::io::Read::read_to_string(&mut err, &mut seen).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{seen}");
    assert!(seen.contains("started again"), "{seen}");
    // Past the slow stop's 5 s (and a margin), no container of the stack may be exited: one that
    // is would be a stop that landed after the restart.
    let settle = std::time::Duration::from_secs(8);
    std::thread::sleep(settle.saturating_sub(signalled.elapsed()));
    let project = format!("label=com.docker.compose.project={}", stack.project);
    let down = docker_ok(&["ps", "-a", "--filter", &project, "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert!(down.trim().is_empty(), "left stopped after a Ctrl-C that said they were started again: {down}\n{seen}");
    stack.wait_healthy();
}
