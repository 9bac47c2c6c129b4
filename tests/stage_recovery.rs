//! Recovery across MongoDB major stages on real test-bed stacks: the process SIGKILLed after every
//! journal step of a stage, then `rollback` (back to the old major on the original volume) or
//! `resume` (on to the target, data identical); and on the road off 3.x, a rehearsal of 3.7.11 →
//! 4.1.3 on staging that leaves production as it was, then a broken 4.0.4 rolled back by data
//! restore while the original data volume is never written.

mod common;

use common::mongo::{contents, read_volume, report};
use common::staging::{backup, nothing_left, production};
use common::*;
use serde_json::Value;

/// Every journal point of a stage, in the order the stage reaches them (src/upgrade/step.rs
/// `Step::STAGE`, then the hop's own end).
const STAGE_POINTS: [&str; 8] = ["stop", "mongo-stop", "copy", "rewrite", "mongo", "up", "gates", "hop-done"];

fn interrupted(stack: &Stack) -> Value {
    json(&stack.tool(&["--json", "status"]))["interrupted"].clone()
}

/// The Docker names of the volumes the stack's mongo container mounts.
fn mongo_mounts(stack: &Stack) -> Vec<String> {
    let c = format!("{}-mender-mongo-1", stack.project);
    docker_ok(&["inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", &c])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn killed(out: &std::process::Output, point: &str) {
    assert_eq!(out.status.code(), None, "not killed after {point}: {}\n{}", stdout(out), stderr(out));
}

#[test]
fn killed_after_every_step_of_a_stage_rollback_returns_to_the_old_major_on_the_original_volume() {
    let stack = Stack::up("stage-kill-rb", "3.6.5");
    let before = stack.data();
    let prod = file(&stack.path("production/config/prod.yml"));
    let original = format!("{}-mender-db", stack.project);
    let copy = format!("{original}-5.0");
    for point in STAGE_POINTS {
        let out = stack.tool_env(
            &["upgrade", "--to", "3.7.11", "--yes"],
            &[("MENDER_COMPOSE_UPGRADE_FAULT", &format!("after:{point}"))],
        );
        killed(&out, point);
        let j = interrupted(&stack);
        assert_eq!(j["operation"], "upgrade", "the journal survives the kill after {point}");
        // The kill came inside the stage (hop 0), or right after it (hop 1, nothing done).
        let at = (j["upgrade"]["hop"].as_u64(), j["upgrade"]["done"].as_array().map(Vec::len));
        assert!(at.0 == Some(0) || (point == "hop-done" && at == (Some(1), Some(0))), "after {point}: {j}");
        let rb = stack.tool(&["rollback", "--yes"]);
        assert!(rb.status.success(), "rollback after {point}: {}\n{}", stdout(&rb), stderr(&rb));
        let said = format!("{}{}", stdout(&rb), stderr(&rb));
        assert!(said.contains("original data volume"), "after {point}: {said}");
        let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
        assert_eq!(s["release"], "3.6.5", "after {point}");
        assert_eq!(s["mongo"]["fcv"], "4.4", "after {point}");
        assert!(s["mongo"]["server_version"].as_str().unwrap().starts_with("4.4."), "after {point}: {}", s["mongo"]);
        assert!(s["interrupted"].is_null(), "after {point}");
        let mounts = mongo_mounts(&stack);
        assert!(mounts.contains(&original) && !mounts.contains(&copy), "after {point}: {mounts:?}");
        assert_eq!(file(&stack.path("production/config/prod.yml")), prod, "after {point}");
        assert_eq!(stack.data(), before, "data identical after a kill at {point} and a rollback");
        // The copy a rolled-back stage leaves may hold writes made on it: a new upgrade refuses to
        // copy over it, naming it, and changes nothing; it goes as the rollback said.
        if docker(&["volume", "inspect", &copy]).status.success() {
            assert!(said.contains(&format!("docker volume rm {copy}")), "after {point}: {said}");
            if point == "copy" {
                let started = stack.started_at();
                let again = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
                assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
                assert!(stderr(&again).contains(&format!("volume {copy} already exists")), "{}", stderr(&again));
                assert_eq!(stack.started_at(), started, "the refusal stopped nothing");
            }
            docker_ok(&["volume", "rm", &copy]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_every_step_of_a_stage_resume_goes_on_from_there() {
    let stack = Stack::up("stage-kill-resume", "3.6.5");
    let before = stack.data();
    let mongo_before = report(&common::mongo::network(&stack), "mender-mongo").await;
    let original = format!("{}-mender-db", stack.project);
    // Killed after the first step, then each resume is killed after the next one: every point is
    // one a resume starts from.
    let out =
        stack.tool_env(&["upgrade", "--to", "3.7.11", "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", "after:stop")]);
    killed(&out, "stop");
    for pair in STAGE_POINTS.windows(2) {
        let (from, next) = (pair[0], pair[1]);
        let out = stack.tool_env(&["resume", "--yes"], &[("MENDER_COMPOSE_UPGRADE_FAULT", &format!("after:{next}"))]);
        killed(&out, next);
        let j = interrupted(&stack);
        let done: Vec<&str> = j["upgrade"]["done"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        if next == "hop-done" {
            assert_eq!((j["upgrade"]["hop"].as_u64(), done.len()), (Some(1), 0), "{j}");
        } else {
            assert_eq!(j["upgrade"]["hop"].as_u64(), Some(0), "{j}");
            assert_eq!(done.last(), Some(&next), "resumed after {from}, journaled up to {next}: {j}");
        }
    }
    let resumed = stack.tool(&["--json", "resume", "--yes"]);
    assert!(resumed.status.success(), "{}\n{}", stdout(&resumed), stderr(&resumed));
    assert_eq!(result_line(&resumed)["to"], "3.7.11");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!((s["release"].as_str(), s["mongo"]["fcv"].as_str()), (Some("3.7.11"), Some("5.0")), "{s}");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
    assert!(mongo_mounts(&stack).contains(&format!("{original}-5.0")));
    // The original volume was only ever read: a 4.4 server still starts on it, every collection as before.
    let orig = read_volume(&stack, &original, "4.4").await;
    assert_eq!(orig.fcv.as_deref(), Some("4.4"));
    assert_eq!(contents(&orig), contents(&mongo_before));
}

#[tokio::test(flavor = "multi_thread")]
async fn from_3_7_11_a_rehearsal_of_4_1_3_leaves_production_and_a_broken_4_0_4_is_rolled_back() {
    let prod = Stack::up("road-back", "3.7.11");
    let bundle = backup(&prod);
    let before = production(&prod);

    // The whole road on staging: every MongoDB stage and the 4.x layout, production untouched.
    let out = prod.tool(&["--json", "rehearse", "--to", "4.1.3", "--from", &bundle.to_string_lossy()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r = result_line(&out);
    assert_eq!(r["ok"], true, "{r}");
    let hops = hop_labels(&r);
    assert_eq!(hops, ["3.7.11→3.7.11", "3.7.11→4.0.4", "4.0.4→4.0.4", "4.0.4→4.1.3", "4.1.3→4.1.3"], "{r}");
    nothing_left(r["staging"].as_str().unwrap());
    assert_eq!(production(&prod), before, "production changed during the rehearsal");

    // A 4.0.4 whose useradm never becomes healthy after its migrations ran.
    let cat = catalog_copy(|r, _| {
        // 4.x names its services as mender-server does (`useradm`, was `mender-useradm`).
        let svc = &mut release(r, "4.0.4")["services"]["useradm"];
        assert_eq!(svc["image"], "mendersoftware/useradm:v4.0.4");
        svc["image"] = "mendersoftware/useradm:v4.0.4-broken".into();
    });
    let cat = catalog_arg(&cat);
    let data = prod.data();
    let original = format!("{}-mender-db", prod.project);
    let mongo_before = report(&common::mongo::network(&prod), "mender-mongo").await;
    let out = prod.tool(&["--catalog", &cat, "upgrade", "--to", "4.0.4", "--yes", "--hop-timeout", "60s"]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("3.7.11 → 4.0.4 failed at step gates") && err.contains("useradm"), "{err}");
    assert!(err.contains("rolled back to 3.7.11 (data restore from the pre-hop dump)"), "{err}");
    // Back on 3.7.11 with the 3.x layout, on the major the failed hop started from (the 5.0 → 6.0
    // stage before it completed and stays), every document as it was, migration records included.
    let s = json(&prod.tool(&["--catalog", &cat, "--json", "status", "--require-healthy"]));
    assert_eq!((s["release"].as_str(), s["mongo"]["fcv"].as_str()), (Some("3.7.11"), Some("6.0")), "{s}");
    assert_eq!(prod.data_with(&["--catalog", &cat]), data);
    // The original 5.0 volume was never written: 5.0 starts on it, every collection as before.
    let orig = read_volume(&prod, &original, "5.0").await;
    assert_eq!(orig.fcv.as_deref(), Some("5.0"));
    assert_eq!(contents(&orig), contents(&mongo_before));
    // And the stage is undone on request: 3.7.11 on 5.0 on the original volume, as it started.
    let rb = prod.tool(&["--catalog", &cat, "rollback", "--yes"]);
    assert!(rb.status.success(), "{}\n{}", stdout(&rb), stderr(&rb));
    let s = json(&prod.tool(&["--catalog", &cat, "--json", "status", "--require-healthy"]));
    assert_eq!((s["release"].as_str(), s["mongo"]["fcv"].as_str()), (Some("3.7.11"), Some("5.0")), "{s}");
    assert!(mongo_mounts(&prod).contains(&original));
    assert_eq!(prod.data_with(&["--catalog", &cat]), data);
}
