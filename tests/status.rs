//! `status` and `plan` on real test-bed stacks on the real Docker daemon.

mod common;

use common::*;

#[test]
fn healthy_3_4_0_stack_reports_release_health_and_migrations() {
    let stack = Stack::up("healthy", "3.4.0");
    let out = stack.status(&["--json", "--require-healthy"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = json(&out);
    assert_eq!(s["release"], "3.4.0");
    assert_eq!(s["healthy"], true);
    assert_eq!(s["project"], stack.project.as_str());
    let services = s["services"].as_array().unwrap();
    assert_eq!(services.len(), 15, "a 3.4.0 stack has 15 services");
    for svc in services {
        assert_eq!(svc["running"], true, "{svc}");
        assert_eq!(svc["healthy"], true, "{svc}");
        assert!(svc["drift"].is_null(), "{svc}");
    }
    let deviceauth = services.iter().find(|x| x["name"] == "mender-device-auth").unwrap();
    let checks: Vec<(&str, u64)> = deviceauth["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["check"].as_str().unwrap(), p["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(checks, [("alive", 204), ("health", 204)]);
    // migration_info as written by the services, against the catalog's schema versions for 3.4.0.
    let expected = [
        ("deployment_service", "1.2.11"),
        ("deviceauth", "1.11.0"),
        ("deviceconfig", "1.0.1"),
        ("deviceconnect", "2.0.1"),
        ("inventory", "1.1.0"),
        ("iot_manager", "1.1.0"),
        ("useradm", "2.0.1"),
        ("workflows", "1.0.0"),
    ];
    for (db, v) in expected {
        let d =
            s["databases"].as_array().unwrap().iter().find(|d| d["name"] == db).unwrap_or_else(|| panic!("no {db}"));
        assert_eq!(d["migration"], v, "{db}");
        assert_eq!(d["status"], "current", "{db}");
    }
    assert_eq!(s["mongo"]["reachable"], true);
    assert_eq!(s["mongo"]["server_version"], "4.4.29");
    assert_eq!(s["storage"]["kind"], "volume");
    assert_eq!(s["storage"]["service"], "minio");
    assert_eq!(s["storage"]["volume"], format!("{}-mender-artifacts", stack.project));
    let hops: Vec<&str> = s["next_hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(hops, ["3.5.1", "3.6.5"]);

    // The secrets in prod.yml never reach the output.
    let prod = file(&stack.path("production/config/prod.yml"));
    let secret =
        prod.lines().find_map(|l| l.trim().strip_prefix("MINIO_SECRET_KEY: ")).expect("secret in prod.yml").to_string();
    let human = stack.status(&[]);
    for text in [stdout(&out), stderr(&out), stdout(&human), stderr(&human)] {
        assert!(!text.contains(&secret), "secret leaked: {text}");
    }
    assert!(stdout(&human).contains("Mender Server 3.4.0") && stdout(&human).contains("Health     healthy"));

    // plan on the live stack starts from what it runs.
    let plan = tool(&["-p", &stack.project, "--json", "plan", "--to", "3.7.11"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let p = json(&plan);
    let stops: Vec<&str> = p["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    // 3.6.5, then MongoDB 4.4 → 5.0 as a stage of its own at 3.6.5, then 3.7.11.
    assert_eq!((p["from"].as_str(), stops), (Some("3.4.0"), vec!["3.6.5", "3.6.5", "3.7.11"]));
}

#[test]
fn stopped_backend_is_down_and_unhealthy() {
    let stack = Stack::up("stopped", "3.4.0");
    let stop = stack.compose(&["stop", "mender-inventory"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    let out = stack.status(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "without --require-healthy status reports and exits 0");
    let s = json(&out);
    assert_eq!(s["healthy"], false);
    let inv = s["services"].as_array().unwrap().iter().find(|x| x["name"] == "mender-inventory").unwrap().clone();
    assert_eq!(inv["running"], false);
    assert_eq!(inv["state"], "exited");
    assert_eq!(inv["healthy"], false);
    assert!(inv["http"].as_array().unwrap().iter().all(|p| p["status"].is_null()), "{inv}");
    let others_ok = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] != "mender-inventory")
        .all(|x| x["healthy"] == true);
    assert!(others_ok, "only the stopped service is unhealthy");

    let gated = stack.status(&["--require-healthy"]);
    assert_eq!(gated.status.code(), Some(3));
    let text = stdout(&gated);
    assert!(text.contains("UNHEALTHY") && text.contains("mender-inventory: not running (exited)"), "{text}");
}

#[test]
fn service_on_another_release_is_reported_as_drift() {
    let stack = Stack::up("drift", "3.4.0");
    // The operator pins one service to a 3.6.5 image in prod.yml and recreates it.
    let prod = stack.path("production/config/prod.yml");
    let text = file(&prod).replace(
        "    mender-useradm:\n",
        "    mender-useradm:\n        image: testbed.local/mendersoftware/useradm:mender-3.6.5\n",
    );
    std::fs::write(&prod, text).unwrap();
    let up = stack.compose(&["up", "-d", "mender-useradm"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let out = stack.status(&["--json"]);
    let s = json(&out);
    assert_eq!(s["release"], "3.4.0", "the majority decides the release");
    let u = s["services"].as_array().unwrap().iter().find(|x| x["name"] == "mender-useradm").unwrap().clone();
    assert_eq!(u["drift"]["kind"], "other-release");
    assert_eq!(u["drift"]["releases"], serde_json::json!(["3.6.5"]));
    assert_eq!(s["healthy"], false);
    let human = stdout(&stack.status(&[]));
    assert!(
        human.contains("mender-useradm: image mendersoftware/useradm:mender-3.6.5 belongs to release 3.6.5"),
        "{human}"
    );
    // useradm 3.6.5 migrated the database ahead of what 3.4.0 needs: reported as such.
    let db = s["databases"].as_array().unwrap().iter().find(|d| d["name"] == "useradm").unwrap().clone();
    assert_eq!((db["migration"].as_str(), db["status"].as_str()), (Some("2.0.3"), Some("ahead")));
}
