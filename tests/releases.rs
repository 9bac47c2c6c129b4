//! Stacks on the releases an operator can be on, upgraded on the test bed: the landing releases
//! of 3.0–3.2 (their manual steps at their hop, the 3.2 hop refused while workflows jobs are
//! pending in MongoDB), a patch that is no landing release (3.6.2), the 3.5 → 3.6 hop with the
//! operator's overrides of the services 3.6 drops, and the road from 3.2.2 to 3.7.11.

mod common;

use std::process::{Command, Output};

use common::*;

fn hops(out: &Output) -> Vec<String> {
    result_line(out)["hops"]
        .as_array()
        .map(|a| a.iter().map(|h| format!("{}→{}", h["from"].as_str().unwrap(), h["to"].as_str().unwrap())).collect())
        .unwrap_or_default()
}

/// The mongo container of a stack.
fn mongo(stack: &Stack) -> String {
    docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--filter",
        "label=com.docker.compose.service=mender-mongo",
    ])
    .trim()
    .to_string()
}

fn exec(container: &str, args: &[&str]) {
    let out = Command::new("docker").arg("exec").arg(container).args(args).output().unwrap();
    assert!(out.status.success(), "docker exec {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Adds `n` jobs waiting in workflows' MongoDB queue (status 1, StatusPending of
/// mendersoftware/workflows:model/job.go), with the real mongorestore of the stack's mongo image.
fn add_pending_jobs(stack: &Stack, n: usize) {
    let mut bytes = Vec::new();
    for i in 0..n {
        let doc = bson::doc! {"_id": format!("pending-{i}"), "workflow_name": "provision_device", "status": 1_i32, "input_parameters": []};
        bytes.extend(bson::serialize_to_vec(&doc).unwrap());
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("jobs.bson");
    std::fs::write(&path, bytes).unwrap();
    let m = mongo(stack);
    docker_ok(&["cp", &path.to_string_lossy(), &format!("{m}:/tmp/pending-jobs.bson")]);
    exec(&m, &["mongorestore", "--quiet", "--db", "workflows", "--collection", "jobs", "/tmp/pending-jobs.bson"]);
}

#[test]
fn from_3_0_2_pending_jobs_are_refused_then_3_1_and_3_2_are_reached_with_their_manual_steps() {
    let stack = Stack::up("r302", "3.0.2");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.0.2");
    assert_eq!(s["checkout"]["releases"], serde_json::json!(["3.0.2"]), "{}", s["checkout"]);
    assert_eq!(s["support"]["status"], "ended");
    let before = stack.data();
    // A dump of the queue as it is, to put back after the refusal.
    let m = mongo(&stack);
    exec(&m, &["mongodump", "--quiet", "--db", "workflows", "--collection", "jobs", "--out", "/tmp/jobs-before"]);
    add_pending_jobs(&stack, 3);
    let files = file(&stack.path("docker-compose.yml"));
    let started = stack.started_at();
    let out = stack.tool(&["upgrade", "--to", "3.2.2", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("hop 3.1.1 → 3.2.2 is refused: 3 pending workflows jobs in workflows.jobs"), "{err}");
    assert_eq!(stack.started_at(), started, "nothing was stopped");
    assert_eq!(file(&stack.path("docker-compose.yml")), files, "nothing was written");
    // The workers finished them: the queue as it was.
    exec(
        &m,
        &[
            "mongorestore",
            "--quiet",
            "--drop",
            "--noIndexRestore",
            "--db",
            "workflows",
            "--collection",
            "jobs",
            "/tmp/jobs-before/workflows/jobs.bson",
        ],
    );
    assert_eq!(stack.data(), before);

    let out = stack.tool(&["upgrade", "--to", "3.2.2", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    // Each hop's manual steps were put to the operator when that hop began (answered by --yes).
    let log = stderr(&out);
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle:?} not in:\n{log}"));
    let (hop1, hop2) = (at("hop 1/2: 3.0.2 → 3.1.1"), at("hop 2/2: 3.1.1 → 3.2.2"));
    let cert = at("Before 3.0.2 → 3.1.1, by hand:");
    let hosts = at("Before 3.1.1 → 3.2.2, by hand:");
    assert!(hop1 < cert && cert < hop2 && hop2 < hosts, "each hop's steps at that hop");
    assert!(log[cert..hop2].contains("single certificate") && log[hosts..].contains("ALLOWED_HOSTS is enforced"));
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.2.2");
    assert!(s["databases"].as_array().unwrap().iter().all(|d| d["status"] == "current"), "{}", s["databases"]);
    // Every database that was there is as it was; 3.2's new iot-manager brings its own.
    let mut after = without_migrations(&stack.data());
    let dbs = after["databases"].as_array_mut().unwrap();
    let added: Vec<String> = dbs
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .filter(|n| !before["databases"].as_array().unwrap().iter().any(|b| b["name"] == n.as_str()))
        .collect();
    assert_eq!(added, ["iot_manager"]);
    dbs.retain(|d| d["name"] != "iot_manager");
    assert_eq!(after, without_migrations(&before));
    // 3.2 moved deviceconnect, deviceconfig and NATS into docker-compose.yml: the old files remain
    // without services, so that the project's file list and an older production/run still work.
    for f in ["docker-compose.connect.yml", "docker-compose.config.yml"] {
        assert!(file(&stack.path(f)).contains("services: {}"), "{f}");
    }
    let again = stack.compose(&["config", "--services"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("mender-iot-manager"));
}

#[test]
fn upgrade_3_2_2_to_3_7_11_keeps_the_data() {
    let stack = Stack::up_with("r322", "3.2.2", &["--devices", "60", "--artifacts", "4"]);
    let before = stack.data();
    let plan = json(&stack.tool(&["--json", "plan", "--to", "3.7.11"]));
    let stops: Vec<&str> = plan["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(stops, ["3.3.2", "3.6.5", "3.6.5", "3.7.11"]);
    let out = stack.tool(&["--json", "upgrade", "--to", "3.7.11", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(hops(&out), ["3.2.2→3.3.2", "3.3.2→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]);
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
    assert_eq!(s["checkout"]["releases"], serde_json::json!(["3.7.11"]), "the files are 3.7.11's: {}", s["checkout"]);
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}

#[test]
fn a_stack_on_3_6_2_is_recognized_and_upgraded() {
    let stack = Stack::up("r362", "3.6.2");
    let out = stack.tool(&["status"]);
    let text = stdout(&out);
    assert!(text.contains("Release    Mender Server 3.6.2\n"), "{text}");
    assert!(
        text.contains("Next hops from 3.6.2 (this version carries out each): 3.6.5 (patch), 3.7.11 (minor)"),
        "{text}"
    );
    assert!(text.contains("Support    3.6.2: out of support; 4.1.3 is the newest supported release"), "{text}");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.2");
    let c = &s["checkout"];
    assert!(c["disagreement"].is_null() && c["edited"] == serde_json::json!([]), "{c}");
    assert_eq!(c["releases"], serde_json::json!(["3.6.2"]), "{c}");
    // The demo's production/run names its own project: not upstream's, and left alone.
    assert_eq!(c["local"], serde_json::json!(["production/run"]), "{c}");
    let before = stack.data();
    let out = stack.tool(&["--json", "upgrade", "--to", "3.7.11", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        hops(&out),
        ["3.6.2→3.6.2", "3.6.2→3.7.11"],
        "a 3.6 patch goes straight to 3.7, after its MongoDB stage"
    );
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}

#[test]
fn hop_3_5_1_to_3_6_5_drops_the_overrides_of_the_services_3_6_removes() {
    let stack = Stack::up("r351", "3.5.1");
    // Operators size OpenSearch and reporting in prod.yml.
    let prod = stack.path("production/config/prod.yml");
    let sized = "    mender-reporting:\n        # reporting indexes the whole inventory\n        mem_limit: 512m\n\n    mender-opensearch:\n        environment:\n            OPENSEARCH_JAVA_OPTS: -Xms512m -Xmx512m\n\n    minio:\n";
    let original = file(&prod);
    let text = original.replacen("    minio:\n", sized, 1);
    std::fs::write(&prod, &text).unwrap();
    let up = stack.compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    stack.wait_healthy();
    let before = stack.data();
    let out = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let log = stdout(&out) + &stderr(&out);
    for svc in ["mender-reporting", "mender-opensearch"] {
        assert!(log.contains(&format!("removed the settings of {svc}, which 3.6.5 no longer has")), "{svc}: {log}");
    }
    let after = file(&prod);
    assert!(!after.contains("mender-reporting") && !after.contains("OPENSEARCH_JAVA_OPTS"), "{after}");
    let lines = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(lines(&after), lines(&original), "everything else of prod.yml is kept");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    let names: Vec<&str> = s["services"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.contains("reporting") || n.contains("opensearch")), "{names:?}");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}
