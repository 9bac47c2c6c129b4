//! Stack shapes operators really have (issue 13, items 0, 0a, 0b), on the real daemon: a project
//! with a second network (an extra service without `networks:`, so compose adds
//! `<project>_default`), a stack started by Compose v1 (Debian's `docker-compose` 1.29.2), and a
//! backup immediately followed by the pre-flight checks, which must wait out the Docker health
//! `starting` of the services the backup restarted rather than refuse.

mod common;

use std::process::Command;

use common::*;

/// An operator's extra service, without `networks:`: compose puts it on `<project>_default`.
/// (sleep ignores SIGTERM as PID 1: the trap lets it stop at once.)
const EXTRA: &str = "services:\n  exporter:\n    image: testbed.local/debian:bookworm\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep infinity & wait\"]\n";

fn ok(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what} failed ({:?}):\n{}\n{}", out.status.code(), stdout(out), stderr(out));
}

fn names(project: &str) -> Vec<String> {
    let out = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut n: Vec<String> = out.lines().map(str::to_string).collect();
    n.sort();
    n
}

#[test]
fn a_project_with_a_second_network_is_observed_backed_up_and_upgraded() {
    let stack = Stack::up("net2", "3.6.2");
    std::fs::write(stack.path("production/extra.yml"), EXTRA).unwrap();
    ok(&stack.compose(&["-f", "./extra.yml", "up", "-d"]), "compose up with extra.yml");
    let default = format!("{}_default", stack.project);
    docker_ok(&["network", "inspect", &default]);
    let before = stack.data();

    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["healthy"], true, "{s}");
    assert_eq!(s["network"], format!("{}_mender", stack.project), "MongoDB's network, not {default}");
    assert_eq!(s["networks"]["exporter"], serde_json::json!([default]), "{}", s["networks"]);

    // 0b: a backup restarts the writers; the pre-flight right after it waits out their `starting`
    // (3 rounds here to keep CI time low; the bench's case was the first round).
    for round in 1..=3 {
        ok(&stack.tool(&["backup"]), &format!("backup (round {round})"));
        let dry = stack.tool(&["upgrade", "--to", "3.6.5", "--dry-run"]);
        ok(&dry, &format!("upgrade --dry-run right after backup (round {round})"));
        assert!(!stderr(&dry).contains("starting"), "round {round}: {}", stderr(&dry));
    }

    let out = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    ok(&out, "upgrade --to 3.6.5");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    assert!(names(&stack.project).iter().any(|n| n.contains("exporter")), "the operator's service is kept");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}

/// production/run, with Compose v1 instead of v2 (what it ran on hosts of the 3.x era).
fn compose_v1(stack: &Stack, args: &[&str]) -> std::process::Output {
    let run = file(&stack.path("production/run"));
    let v1 = run
        .lines()
        .map(|l| if l.starts_with("if docker compose version") { "COMPOSE=docker-compose" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(v1.contains("COMPOSE=docker-compose\n"), "production/run changed shape:\n{run}");
    let path = stack.path("production/run-v1");
    std::fs::write(&path, v1).unwrap();
    Command::new("bash").arg(&path).args(args).output().expect("run production/run-v1")
}

#[test]
fn a_stack_started_by_compose_v1_is_upgraded() {
    let stack = Stack::up("v1", "3.6.2");
    let before = stack.data();
    // -v: the mongo image's anonymous volume goes with its container (the demo's data volumes
    // are external, which compose never removes).
    stack.compose_down();
    ok(&compose_v1(&stack, &["up", "-d"]), "docker-compose (v1) up -d");
    let mongo = format!("{}_mender-mongo_1", stack.project);
    let version = docker_ok(&["inspect", "-f", "{{index .Config.Labels \"com.docker.compose.version\"}}", &mongo]);
    assert_eq!(version.trim(), "1.29.2");
    stack.wait_healthy();
    assert_eq!(stack.data(), before, "v1 found the same volumes");

    let dry = stack.tool(&["upgrade", "--to", "3.6.5", "--dry-run"]);
    ok(&dry, "upgrade --dry-run of a v1 stack");
    let text = stdout(&dry) + &stderr(&dry);
    assert!(text.contains("Compose v1 (1.29.2) created"), "{text}");
    assert!(text.contains("recreates every container under Compose v2"), "{text}");
    assert!(text.contains("Data volumes kept: "), "{text}");

    ok(&stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]), "upgrade of a v1 stack");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    let left: Vec<String> = names(&stack.project).into_iter().filter(|n| n.ends_with("_1")).collect();
    assert!(left.is_empty(), "every container recreated by Compose v2: {left:?}");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}
