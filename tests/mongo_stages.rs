//! MongoDB major stages on real test-bed stacks: `upgrade --to 3.7.11` from 3.6.5 runs MongoDB
//! 4.4 → 5.0 as a stage of its own on a copy of the data volume, before the application hop. The
//! stand-ins keep the featureCompatibilityVersion on the volume as mongod does, so a 4.4 binary on
//! FCV-raised data would not start: the original volume's FCV and content prove it untouched.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::mongo::{contents, helper_binary, network, read_volume, report};
use common::*;
use mender_compose_upgrade::engine::docker::connect;
use mender_compose_upgrade::engine::helper::{FcvJob, Request};
use mender_compose_upgrade::engine::sidecar::run_helper;
use mender_compose_upgrade::util::mongo_uri;

#[tokio::test(flavor = "multi_thread")]
async fn stage_4_4_to_5_0_runs_on_a_copy_and_leaves_the_original_volume_as_it_was() {
    helper_binary();
    let stack = Stack::up("stage-ok", "3.6.5");
    let before = report(&network(&stack), "mender-mongo").await;
    assert_eq!(before.fcv.as_deref(), Some("4.4"));
    let plan = stack.tool(&["plan", "--to", "3.7.11"]);
    let text = stdout(&plan);
    assert!(text.contains("Hop 1: MongoDB 4.4 → 5.0 at 3.6.5"), "{text}");
    assert!(text.contains("Rollback: the previous image on the original data volume"), "{text}");
    // Every volume the stack's containers mount, and every one a container of the project or a
    // sidecar of this run mounts while the upgrade runs (the watch sees containers that come and go).
    let mut seen_volumes = project_volumes(&stack.project);
    let watch = Watch::start();
    let (out, pid) = tool_with_pid(&stack, &["upgrade", "--to", "3.7.11", "--yes"]);
    let during = mounted_by(&watch.stop(), &stack.project, pid);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let original = format!("{}-mender-db", stack.project);
    let copy = format!("{original}-5.0");
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains(&format!("docker volume rm {original}")), "{said}");
    // The record holds the sidecars' mounts: the copy's two volumes, the dumps' anonymous ones.
    assert!(during.contains(&copy) && during.contains(&original), "{during:?}");
    assert!(
        during.iter().any(|v| anonymous(v) && !seen_volumes.contains(v)),
        "no sidecar's anonymous volume seen: {during:?}"
    );
    seen_volumes.extend(during);
    // Nothing orphaned: each volume is gone, mounted by a running container of the stack, or the
    // original the tool names for the operator to remove.
    let left = orphans(&seen_volumes, &stack.project, &[original.as_str()]);
    assert!(left.is_empty(), "volumes left behind by the upgrade: {left:?}");
    // The stack runs 3.7.11 on 5.0, on the copy, every collection as before.
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
    assert_eq!(s["mongo"]["fcv"], "5.0");
    let mounted = docker_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Name}} {{end}}",
        &format!("{}-mender-mongo-1", stack.project),
    ]);
    let names: Vec<&str> = mounted.split_whitespace().collect();
    assert!(names.contains(&copy.as_str()) && !names.contains(&original.as_str()), "{mounted}");
    let after = report(&network(&stack), "mender-mongo").await;
    assert_eq!(contents(&after), contents(&before));
    // The original volume: still FCV 4.4 (a 4.4 binary starts on it), every collection as before.
    let orig = read_volume(&stack, &original, "4.4").await;
    assert_eq!(orig.fcv.as_deref(), Some("4.4"));
    assert_eq!(contents(&orig), contents(&before));
    // `rollback` goes back to where the upgrade started in one run, the stage included: 3.6.5 on
    // MongoDB 4.4 on the original volume; what it asks names the stage and what it discards.
    let rb = stack.tool(&["rollback", "--yes"]);
    let said = stderr(&rb);
    assert!(rb.status.success(), "{}\n{said}", stdout(&rb));
    assert!(said.contains("MongoDB 5.0 → 4.4 at 3.6.5"), "the plan names the stage: {said}");
    assert!(said.contains("4.4 goes back to its original volume"), "{said}");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!((s["release"].as_str(), s["mongo"]["fcv"].as_str()), (Some("3.6.5"), Some("4.4")), "{s}");
    let mounted = docker_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Name}} {{end}}",
        &format!("{}-mender-mongo-1", stack.project),
    ]);
    assert!(mounted.split_whitespace().any(|n| n == original), "back on the original volume: {mounted}");
    assert_eq!(contents(&report(&network(&stack), "mender-mongo").await), contents(&before));
    // demo down (data volumes kept): no volume the stack's containers mounted anonymously is left.
    let dir = stack.dir.to_string_lossy().into_owned();
    let down = tool(&["-p", &stack.project, "demo", "down", "--dir", &dir]);
    assert!(down.status.success(), "{}", stderr(&down));
    let anon: Vec<&String> = seen_volumes.iter().filter(|v| anonymous(v)).collect();
    let left: Vec<&&String> = anon.iter().filter(|v| volume_exists(v)).collect();
    assert!(left.is_empty(), "anonymous volumes left by demo down: {left:?} (of {anon:?})");
    assert!(volume_exists(&copy) && volume_exists(&original), "the data volumes stay");
}

#[test]
fn a_failed_stage_is_rolled_back_to_the_old_major_on_the_original_volume() {
    let stack = Stack::up("stage-fail", "3.6.5");
    let before = stack.data();
    let out = stack
        .tool_env(&["upgrade", "--to", "3.7.11", "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", "fail-after:mongo")]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("original data volume"), "{err}");
    assert!(err.contains("the MongoDB 4.4 → 5.0 stage at 3.6.5 failed at step mongo"), "{err}");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    assert_eq!(s["mongo"]["fcv"], "4.4");
    assert!(s["mongo"]["server_version"].as_str().unwrap().starts_with("4.4."), "{}", s["mongo"]);
    assert_eq!(stack.data(), before);
    let prod = file(&stack.path("production/config/prod.yml"));
    assert!(!prod.contains("mender-db-5.0"), "{prod}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_fcv_below_the_running_major_is_refused_before_any_downtime() {
    helper_binary();
    let stack = Stack::up("stage-fcv", "3.6.5");
    let d = connect().await.unwrap();
    let job = FcvJob { uri: mongo_uri("mender-mongo"), require: "4.4".into(), set: "4.2".into(), confirm: false };
    let r = run_helper(&d, &network(&stack), &Request { fcv: Some(job), ..Default::default() }).await.unwrap();
    assert!(matches!(r.fcv, Some(Ok(_))), "{:?}", r.fcv);
    let fingerprint = project_fingerprint(None, &stack.project);
    let prod = file(&stack.path("production/config/prod.yml"));
    let out = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("featureCompatibilityVersion 4.2") && err.contains("setFeatureCompatibilityVersion: \"4.4\""),
        "{err}"
    );
    assert_eq!(project_fingerprint(None, &stack.project), fingerprint, "nothing was stopped or recreated");
    assert_eq!(file(&stack.path("production/config/prod.yml")), prod);
    let vols = docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={}-mender-db-", stack.project)]);
    assert!(vols.trim().is_empty(), "no copy was made: {vols}");

    // An operator skips the tool: FCV 4.4 again, then MongoDB 6.0 started by hand on that data.
    // It fails as mongod does (exit 62), and `status` says why and what to do.
    let job = FcvJob { uri: mongo_uri("mender-mongo"), require: "4.2".into(), set: "4.4".into(), confirm: false };
    let r = run_helper(&d, &network(&stack), &Request { fcv: Some(job), ..Default::default() }).await.unwrap();
    assert!(matches!(r.fcv, Some(Ok(_))), "{:?}", r.fcv);
    let before = stack.data();
    let by_hand = stack.path("production/mongo-by-hand.yml");
    std::fs::write(&by_hand, "services:\n  mender-mongo:\n    image: testbed.local/mongo:6.0\n").unwrap();
    let out = stack.compose(&["-f", "./mongo-by-hand.yml", "up", "-d", "mender-mongo"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let container = format!("{}-mender-mongo-1", stack.project);
    let start = std::time::Instant::now();
    loop {
        let st = docker_ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", &container]);
        let f: Vec<&str> = st.split_whitespace().collect();
        if f[0] == "exited" || f[0] == "restarting" || f[2] != "0" {
            assert!(f[0] != "exited" || f[1] == "62", "mongod's exit code: {st}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "mongo 6.0 did not fail: {st}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = stack.tool(&["status", "--require-healthy"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for want in [
        "REFUSES ITS DATA: its featureCompatibilityVersion 4.4 does not run on MongoDB 6.0",
        "mender-mongo: MongoDB 6.0 refuses this data: its featureCompatibilityVersion is 4.4",
        "a 6.0 server needs 5.0 or newer",
        "The data was not changed.",
        "Put back the image the data was last run with (testbed.local/mongo:4.4)",
        "upgrade one MongoDB major at a time: mender-compose-upgrade upgrade --to 4.0.4",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let s = json(&stack.tool(&["--json", "status"]));
    let refusal = &s["mongo"]["refusal"];
    assert_eq!(refusal["kind"], "too-old", "{refusal}");
    assert_eq!(refusal["data_fcv"], "4.4", "{refusal}");
    assert_eq!(refusal["server_major"], "6.0", "{refusal}");
    assert_eq!(refusal["needs_fcv"], "5.0", "{refusal}");
    assert_eq!(refusal["put_back"], "testbed.local/mongo:4.4", "{refusal}");
    assert_eq!(refusal["upgrade_to"], "4.0.4", "{refusal}");
    let mongo = s["services"].as_array().unwrap().iter().find(|x| x["name"] == "mender-mongo").unwrap();
    assert!(mongo["problems"].as_array().unwrap().contains(&refusal["message"]), "{mongo}");
    assert_eq!(s["healthy"], false);

    // The advice works: 4.4 back the same way, the stack healthy again with the same data.
    let out = stack.compose(&["up", "-d", "mender-mongo"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    std::fs::remove_file(&by_hand).unwrap();
    stack.wait_healthy();
    let out = stack.tool(&["status", "--require-healthy"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = json(&stack.tool(&["--json", "status"]));
    assert_eq!(s["mongo"]["refusal"], serde_json::Value::Null);
    assert_eq!(s["mongo"]["fcv"], "4.4");
    assert_eq!(stack.data(), before, "the refused start changed nothing");
}

/// The container and volume events of the daemon while it runs (`docker events`, streamed: the
/// daemon replays only its last 256 events, fewer than a busy daemon makes during an upgrade).
struct Watch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

/// What a [`Watch`] saw: each container created (id → its name and labels) and each volume
/// mounted (volume name, container id).
#[derive(Default)]
struct Seen {
    created: BTreeMap<String, BTreeMap<String, String>>,
    mounts: Vec<(String, String)>,
}

impl Watch {
    fn start() -> Watch {
        use std::io::BufRead;
        // From a second back: `--since` replays what happened between the clock read and the
        // stream's start, so nothing the command does is missed.
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
        let mut child = std::process::Command::new("docker")
            .args(["events", "--since", &since.to_string(), "--format", "{{json .}}"])
            .args(["--filter", "type=container", "--filter", "type=volume"])
            .args(["--filter", "event=create", "--filter", "event=mount"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("docker events");
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Watch { child, lines, reader }
    }

    fn stop(mut self) -> Seen {
        // The daemon delivers events as they happen; a moment for the last ones in flight.
        std::thread::sleep(Duration::from_secs(1));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let mut seen = Seen::default();
        for l in self.lines.lock().unwrap().iter() {
            let e: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("docker events: {e}: {l}"));
            let attrs: BTreeMap<String, String> = e["Actor"]["Attributes"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default();
            let id = e["Actor"]["ID"].as_str().unwrap_or_default().to_string();
            match (e["Type"].as_str(), e["Action"].as_str()) {
                (Some("container"), Some("create")) => {
                    seen.created.insert(id, attrs);
                }
                (Some("volume"), Some("mount")) => {
                    seen.mounts.push((id, attrs.get("container").cloned().unwrap_or_default()));
                }
                _ => {}
            }
        }
        seen
    }
}

/// Runs the tool on `stack` like `Stack::tool`, and returns its output and its pid (the value of
/// the sidecar label on the containers it creates).
fn tool_with_pid(stack: &Stack, args: &[&str]) -> (std::process::Output, u32) {
    let state = stack.dir.parent().unwrap().join("state");
    let child = std::process::Command::new(bin())
        .args(["--image-registry", REGISTRY, "-p", &stack.project, "--state-dir"])
        .arg(&state)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mender-compose-upgrade");
    let pid = child.id();
    (child.wait_with_output().expect("wait for mender-compose-upgrade"), pid)
}

/// The volumes the project's containers mount now, running or not.
fn project_volumes(project: &str) -> std::collections::BTreeSet<String> {
    let ids = docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={project}")]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return std::collections::BTreeSet::new();
    }
    let mut args = vec!["inspect", "--format", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}"];
    args.extend(ids);
    docker_ok(&args).split_whitespace().map(str::to_string).collect()
}

/// The volumes mounted during `seen` by containers of `project` (compose's, its one-offs) and by
/// the sidecars of the tool run `pid`.
fn mounted_by(seen: &Seen, project: &str, pid: u32) -> std::collections::BTreeSet<String> {
    let pid = pid.to_string();
    let ours = |labels: &BTreeMap<String, String>| {
        labels.get("com.docker.compose.project").map(String::as_str) == Some(project)
            || labels.get("io.mender-compose-upgrade.sidecar") == Some(&pid)
    };
    seen.mounts.iter().filter(|(_, c)| seen.created.get(c).is_some_and(ours)).map(|(v, _)| v.clone()).collect()
}

/// Of `volumes`, those still on the daemon that no running container of `project` mounts and
/// that are not in `kept`, each with its CreatedAt and labels (for the failure message).
fn orphans(volumes: &std::collections::BTreeSet<String>, project: &str, kept: &[&str]) -> Vec<String> {
    let running = |v: &str| {
        !docker_ok(&[
            "ps",
            "-q",
            "--filter",
            &format!("volume={v}"),
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .trim()
        .is_empty()
    };
    volumes
        .iter()
        .filter(|v| !kept.contains(&v.as_str()))
        .filter_map(|v| {
            let out = std::process::Command::new("docker")
                .args(["volume", "inspect", "--format", "{{.CreatedAt}} {{json .Labels}}", v])
                .output()
                .unwrap();
            (out.status.success() && !running(v)).then(|| format!("{v} (created {})", stdout(&out).trim()))
        })
        .collect()
}

/// Pure: a volume name the daemon generated (an anonymous volume on Engine 20.10).
fn anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn volume_exists(name: &str) -> bool {
    std::process::Command::new("docker").args(["volume", "inspect", name]).output().unwrap().status.success()
}
