//! Commands that need no daemon, through the CLI: `plan`'s hop lists and refusals (exit 2, the
//! problem named; `--from` plans for a stack at a given release), and refusals that come before
//! the daemon is asked anything.

mod common;

use common::*;

fn hops(from: &str, to: &str) -> Vec<String> {
    let out = tool(&["--json", "plan", "--from", from, "--to", to]);
    assert!(out.status.success(), "plan {from} → {to}: {}", stderr(&out));
    hop_labels(&json(&out))
}

#[test]
fn expected_hops_to_3_7_11_and_4_1() {
    // A MongoDB major is a stage of its own at one release ("3.6.5→3.6.5": 4.4 → 5.0).
    assert_eq!(hops("3.3.2", "3.7.11"), ["3.3.2→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]);
    assert_eq!(hops("3.4.0", "3.7.11"), ["3.4.0→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]);
    assert_eq!(hops("3.6.5", "3.7.11"), ["3.6.5→3.6.5", "3.6.5→3.7.11"]);
    assert_eq!(hops("3.7.11", "4.1.3"), ["3.7.11→3.7.11", "3.7.11→4.0.4", "4.0.4→4.0.4", "4.0.4→4.1.3", "4.1.3→4.1.3"]);
    // 4.1.0 ships an older traefik and store than 4.0.4: refused, saying why (issue 10).
    refused("3.7.11", "4.1.0", "landing on 4.1.0 from 4.0.4 would downgrade");
    refused("3.7.11", "4.1.0", "traefik v3.6.10 → 3.6.2");
}

#[test]
fn every_patch_an_operator_can_be_on_is_planned() {
    // Each of these ended in "the catalog has no facts" before every 3.x tag was in it.
    assert_eq!(hops("3.7.5", "3.7.11"), ["3.7.5→3.7.11"]);
    assert_eq!(hops("3.7.10", "3.7.11"), ["3.7.10→3.7.11"]);
    assert_eq!(hops("3.6.3", "3.7.11"), ["3.6.3→3.6.3", "3.6.3→3.7.11"]);
    assert_eq!(hops("3.3.1", "3.7.11"), ["3.3.1→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]);
    assert_eq!(
        hops("3.0.0", "3.7.11"),
        ["3.0.0→3.1.1", "3.1.1→3.2.2", "3.2.2→3.3.2", "3.3.2→3.6.5", "3.6.5→3.6.5", "3.6.5→3.7.11"]
    );
    // 4.0 is reached from 3.7.11, so a 3.7 patch takes its line's newest first.
    assert_eq!(
        hops("3.7.5", "4.1.3"),
        ["3.7.5→3.7.11", "3.7.11→3.7.11", "3.7.11→4.0.4", "4.0.4→4.0.4", "4.0.4→4.1.3", "4.1.3→4.1.3"]
    );
}

#[test]
fn support_and_pending_job_checks_are_in_the_plan() {
    let text = stdout(&tool(&["plan", "--from", "3.1.1", "--to", "3.7.11"]));
    assert!(text.contains("Refused while: pending workflows jobs in workflows.jobs"), "{text}");
    assert!(text.contains("the running release 3.1.1 (line 3.1) is out of support"), "{text}");
    assert!(
        text.contains(
            "the target 3.7.11 (line 3.7) is out of support since 2025-05; 4.1.3 is the newest supported release"
        ),
        "{text}"
    );
    let text = stdout(&tool(&["plan", "--from", "3.7.11", "--to", "4.0.1"]));
    assert!(text.contains("4.0.1: its gateway traefik:v3.1") && text.contains("Docker Engine 29"), "{text}");
}

#[test]
fn plan_details_for_the_mongo_hop() {
    let out = tool(&["--json", "plan", "--from", "3.6.5", "--to", "3.7.11"]);
    let p = json(&out);
    // The stage first, with its own rollback point: the original volume.
    let h = &p["hops"][0];
    assert_eq!(h["kind"], "mongo");
    assert_eq!(h["mongo"]["from_major"], "4.4");
    assert_eq!(h["mongo"]["steps"][0]["set_fcv"], "5.0");
    assert_eq!(h["rollback"]["class"], "original-volume");
    // The application hop keeps the mongo image; its rollback restores its dump.
    let app = &p["hops"][1];
    assert!(app["mongo"].is_null(), "{app}");
    assert_eq!(app["mongo_image"], "mongo:5.0");
    assert_eq!(app["rollback"]["class"], "data-restore");
    let text = stdout(&tool(&["plan", "--from", "3.6.5", "--to", "3.7.11"]));
    assert!(text.contains("Hop 1: MongoDB 4.4 → 5.0 at 3.6.5"), "{text}");
    assert!(text.contains("MongoDB 4.4 → 5.0: check FCV 4.4, run 5.0, set FCV 5.0"), "{text}");
    assert!(text.contains("Rollback: the previous image on the original data volume"), "{text}");
    assert!(text.contains("Hop 2: 3.6.5 → 3.7.11") && text.contains("MongoDB: stays on mongo:5.0"), "{text}");
    assert!(text.contains("mender-deployments") && text.contains("mender-3.6.5 → "), "{text}");
}

fn refused(from: &str, to: &str, needle: &str) {
    let out = tool(&["plan", "--from", from, "--to", to]);
    assert_eq!(out.status.code(), Some(2), "plan {from} → {to}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(err.contains("unchanged:") && err.contains("next:"), "{err}");
}

#[test]
fn bad_targets_exit_2_naming_the_problem() {
    refused("3.6.5", "3.4.0", "3.4.0 is older than the running release 3.6.5");
    refused("3.6.5", "3.6.5", "already runs 3.6.5");
    refused("3.6.5", "3.9.0", "3.9.0 is not a Mender Server version the catalog knows");
    refused("3.7.11", "3.8.1", "3.8.1 is not a Mender Server release");
    refused("3.4.0", "banana", "\"banana\" is not a version");
}

#[test]
fn json_errors_are_machine_readable() {
    let out = tool(&["--json", "plan", "--from", "3.7.11", "--to", "3.4.0"]);
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out);
    assert_eq!(e["error"]["exit_code"], 2);
    assert!(e["error"]["what"].as_str().unwrap().contains("older"));
}

#[test]
fn demo_down_never_takes_a_checkout_demo_up_did_not_write() {
    // An operator's own checkout: production's volume names, no demo settings file.
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("docker-compose.yml");
    std::fs::write(&compose, "services: {}\n").unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let out = tool_env(
        &["-p", "menderproduction", "demo", "down", "--dir", &d, "--volumes"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a checkout written by `demo up`"), "{}", stderr(&out));
    assert_eq!(file(&compose), "services: {}\n", "the checkout is left as it was");
}
