//! The smoke check through the API gateway (issue 9), on the real daemon: a healthy stack passes
//! it, and a gateway whose management rule names another host, that routes the UI to a port
//! the GUI does not listen on, or whose storage rule names another host, fails exactly that check; `status --require-healthy` then exits 3
//! naming it, though every service's own health URL still answers, and an upgrade refuses such a
//! stack; an upgrade whose target's gateway drops the management API's routes is rolled back;
//! a signing key replaced after a backup recorded it is named, and so are an artifact object
//! deleted from the store and one of another size than the deployments database records.

mod common;

use common::*;

fn check<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["smoke"]["checks"].as_array().expect("smoke.checks").iter().find(|c| c["name"] == name).expect(name)
}

/// `status --json --require-healthy` once the restarted gateway answers again (the stand-in, as
/// traefik, takes a moment to listen): its exit code and report.
fn status_after_gateway_restart(stack: &Stack) -> (Option<i32>, serde_json::Value) {
    docker_ok(&["restart", &format!("{}-mender-api-gateway-1", stack.project)]);
    let mut last = None;
    for _ in 0..20 {
        let out = stack.tool(&["--json", "status", "--require-healthy"]);
        let s = json(&out);
        if s["smoke"]["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["problem"].as_str().is_none_or(|p| !p.contains("no answer"))))
        {
            return (out.status.code(), s);
        }
        last = Some(s);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    panic!("the gateway does not answer after its restart: {}", last.unwrap_or_default());
}

#[test]
fn the_smoke_check_sees_what_devices_and_people_see() {
    let stack = Stack::up("smoke", "3.6.5");
    let out = stack.tool(&["--json", "status", "--require-healthy"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = json(&out);
    assert_eq!(s["smoke"]["passed"], true, "{}", s["smoke"]);
    assert_eq!(s["smoke"]["gateway"], "mender-api-gateway");
    assert_eq!(s["smoke"]["host"], "docker.mender.io", "the first of ALLOWED_HOSTS");
    for name in ["ui", "management", "device", "storage"] {
        assert_eq!(check(&s, name)["passed"], true, "{}", s["smoke"]);
    }
    assert_eq!(check(&s, "management")["status"], 401, "useradm's answer to a wrong login");
    assert!(
        check(&s, "storage")["url"]
            .as_str()
            .unwrap()
            .starts_with("https://s3.docker.mender.io/mender-artifact-storage/"),
        "the host and bucket of deployments' links: {}",
        s["smoke"]
    );
    assert!(s["smoke"]["notes"][0].as_str().unwrap().starts_with("without operator credentials"), "{}", s["smoke"]);

    // With the demo admin's account: a login, the counts, and the smallest artifact downloaded
    // through the storage proxy with the store's own bytes. The password is in no output.
    let password = "mender-demo-admin";
    let as_admin = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["--json", "status", "--require-healthy"];
        args.extend_from_slice(extra);
        stack.tool_env(&args, env)
    };
    let user = ["--smoke-user", "admin@docker.mender.io"];
    let out = as_admin(&user, &[("MENDER_SMOKE_PASSWORD", password)]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = json(&out);
    let session = check(&s, "session");
    assert_eq!(session["passed"], true, "{}", s["smoke"]);
    let what = session["what"].as_str().unwrap();
    let data = stack.data();
    let inventory_devices = data["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == "inventory")
        .flat_map(|d| d["collections"].as_array().unwrap())
        .find(|c| c["name"] == "devices")
        .map(|c| c["count"].as_u64().unwrap())
        .expect("inventory.devices");
    let artifacts = data["artifacts"].as_array().unwrap().len();
    let counts = format!("as admin@docker.mender.io: logged in, {inventory_devices} devices, {artifacts} artifacts; ");
    assert!(what.starts_with(&counts), "{what}");
    assert!(
        what.contains("downloaded through https://s3.docker.mender.io (") && what.contains("the store's bytes"),
        "{what}"
    );
    assert!(s["smoke"]["notes"].as_array().unwrap().is_empty(), "{}", s["smoke"]);
    // The password from a file; a wrong one fails the login, named; none at all is refused.
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let pw_arg = pw_file.to_string_lossy().into_owned();
    let out = as_admin(&[&user[..], &["--smoke-password-file", &pw_arg]].concat(), &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let wrong = as_admin(&user, &[("MENDER_SMOKE_PASSWORD", "not-the-password")]);
    assert_eq!(wrong.status.code(), Some(3), "{}", stdout(&wrong));
    let problem = check(&json(&wrong), "session")["problem"].as_str().unwrap().to_string();
    assert!(problem.contains("login failed: HTTP 401") && problem.contains("a wrong password"), "{problem}");
    let none = as_admin(&user, &[]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("--smoke-user admin@docker.mender.io has no password"), "{}", stderr(&none));
    for o in [&out, &wrong, &none] {
        assert!(!stdout(o).contains(password) && !stderr(o).contains(password), "the password leaked");
    }

    let text = stack.tool(&["status"]);
    assert!(
        stdout(&text).contains(
            "smoke check passed through mender-api-gateway as docker.mender.io (ui, management, device, storage, artifacts)"
        ),
        "{}",
        stdout(&text)
    );

    // The management API's rule for another host: the login falls through to the GUI's router.
    let config = stack.path("config/traefik/traefik.yaml");
    let original = std::fs::read_to_string(&config).unwrap();
    let rule = "PathPrefix(`/api/management/{version:v[0-9]+}/useradm`)";
    assert!(original.contains(rule), "{original}");
    std::fs::write(&config, original.replacen(rule, &format!("Host(`other.example.com`) && {rule}"), 1)).unwrap();
    let (code, s) = status_after_gateway_restart(&stack);
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(s["smoke"]["passed"], false);
    assert_eq!(check(&s, "management")["passed"], false, "{}", s["smoke"]);
    assert!(check(&s, "management")["problem"].as_str().unwrap().contains("expected useradm's 401"), "{}", s["smoke"]);
    for name in ["ui", "device"] {
        assert_eq!(check(&s, name)["passed"], true, "only the broken route fails: {}", s["smoke"]);
    }
    // Every service's own health URL still answers: only the smoke check sees it.
    assert!(s["services"].as_array().unwrap().iter().all(|x| x["healthy"] == true), "{s}");
    let out = stack.tool(&["status", "--require-healthy"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("SMOKE CHECK FAILED through mender-api-gateway"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("smoke check management (https://docker.mender.io/api/management/v1/useradm/auth/login)")
    );
    // A stack already broken for its users is not upgraded: pre-flight names the check and
    // changes nothing (no container restarted, the files as they were).
    let started = stack.started_at();
    let compose_before = file(&stack.path("docker-compose.yml"));
    let refused = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
    assert_eq!(refused.status.code(), Some(3), "{}\n{}", stdout(&refused), stderr(&refused));
    assert!(
        stderr(&refused)
            .contains("smoke check management (https://docker.mender.io/api/management/v1/useradm/auth/login)"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stack.started_at(), started, "the refused upgrade stopped nothing");
    assert_eq!(file(&stack.path("docker-compose.yml")), compose_before);

    // The UI routed to a port the GUI does not listen on: the gateway's 502.
    let gui = "http://mender-gui:80";
    assert!(original.contains(gui), "{original}");
    std::fs::write(&config, original.replacen(gui, "http://mender-gui:8081", 1)).unwrap();
    let (code, s) = status_after_gateway_restart(&stack);
    assert_eq!(code, Some(3), "{s}");
    let ui = check(&s, "ui");
    assert_eq!(ui["passed"], false, "{}", s["smoke"]);
    assert!(ui["problem"].as_str().unwrap().contains("does not answer"), "{}", s["smoke"]);
    assert_eq!(check(&s, "management")["passed"], true, "{}", s["smoke"]);

    std::fs::write(&config, &original).unwrap();

    // The storage proxy's rule for another host and bucket: presigned downloads reach the GUI.
    let storage_config = stack.path("config/traefik/traefik.minio.yaml");
    let storage_rule = std::fs::read_to_string(&storage_config).unwrap();
    let moved = storage_rule
        .replace(r#"{{ env "STORAGE_URL" }}"#, "s3.other.example.com")
        .replace("/mender-artifact-storage", "/other-bucket");
    assert_ne!(moved, storage_rule);
    std::fs::write(&storage_config, moved).unwrap();
    let (code, s) = status_after_gateway_restart(&stack);
    assert_eq!(code, Some(3), "{s}");
    let storage = check(&s, "storage");
    assert_eq!(storage["passed"], false, "{}", s["smoke"]);
    assert!(storage["problem"].as_str().unwrap().contains("reached the GUI, not the store"), "{}", s["smoke"]);
    for name in ["ui", "management", "device"] {
        assert_eq!(check(&s, name)["passed"], true, "only the storage route fails: {}", s["smoke"]);
    }
    std::fs::write(&storage_config, &storage_rule).unwrap();

    // Put back: passes again.
    let (code, s) = status_after_gateway_restart(&stack);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["smoke"]["passed"], true, "{}", s["smoke"]);

    // A backup records the signing keys. deviceauth's key file replaced by another key (useradm's)
    // afterwards: every device token is invalid, though every route answers as before.
    let backup = stack.tool(&["backup"]);
    assert!(backup.status.success(), "{}\n{}", stdout(&backup), stderr(&backup));
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(check(&s, "keys")["passed"], true, "{}", s["smoke"]);
    let key = stack.path("production/keys-generated/keys/deviceauth/private.key");
    let other = stack.path("production/keys-generated/keys/useradm/private.key");
    let key_before = std::fs::read(&key).unwrap();
    let other_key = std::fs::read(&other).unwrap();
    assert_ne!(key_before, other_key);
    std::fs::write(&key, &other_key).unwrap();
    let out = stack.tool(&["--json", "status", "--require-healthy"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let s = json(&out);
    let keys = check(&s, "keys");
    assert_eq!(keys["passed"], false, "{}", s["smoke"]);
    let problem = keys["problem"].as_str().unwrap();
    assert!(
        problem.starts_with("the deviceauth signing key (/etc/deviceauth/rsa/private.pem in mender-device-auth)"),
        "{problem}"
    );
    assert!(problem.contains("the newest backup (") && problem.contains("every device"), "{problem}");
    for name in ["ui", "management", "device", "storage"] {
        assert_eq!(check(&s, name)["passed"], true, "only the key check fails: {}", s["smoke"]);
    }
    let text = stack.tool(&["status", "--require-healthy"]);
    assert_eq!(text.status.code(), Some(3));
    assert!(stdout(&text).contains("smoke check keys: the deviceauth signing key"), "{}", stdout(&text));
    let secret = String::from_utf8_lossy(&other_key);
    let body = secret.lines().nth(1).unwrap_or_default();
    assert!(!body.is_empty() && !stdout(&text).contains(body) && !stdout(&out).contains(body), "no key bytes shown");
    std::fs::write(&key, &key_before).unwrap();
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["smoke"]["passed"], true, "{}", s["smoke"]);

    // The artifacts' bytes: every one the deployments database references is in the store with
    // its recorded size (the demo's 3, all within the default sample of 20).
    let arts = check(&s, "artifacts");
    assert_eq!(arts["passed"], true, "{}", s["smoke"]);
    let inventory = stack.data()["artifacts"].as_array().expect("the store's inventory").clone();
    let n = inventory.len();
    assert!((3..=20).contains(&n), "{inventory:?}");
    assert!(arts["what"].as_str().unwrap().starts_with(&format!("{n} of the {n} artifacts")), "{arts}");
    let keys: Vec<String> = inventory.iter().map(|o| o["key"].as_str().unwrap().to_string()).collect();
    tokio::runtime::Runtime::new().unwrap().block_on(damage_store(&stack, &keys[0], &keys[1]));
    let out = stack.tool(&["--json", "status", "--require-healthy"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let s = json(&out);
    let arts = check(&s, "artifacts");
    assert_eq!(arts["passed"], false, "{}", s["smoke"]);
    let problem = arts["problem"].as_str().unwrap();
    assert!(problem.contains(&format!("{} (", keys[0])) && problem.contains("has no object in the store"), "{problem}");
    assert!(
        problem.contains(&format!("{} (", keys[1]))
            && problem.contains("has 10 bytes in the store, the deployments database records 4096"),
        "{problem}"
    );
    assert!(problem.contains(&format!("(2 of the {n} checked of {n} artifacts;")), "{problem}");
    for name in ["ui", "management", "device", "storage", "keys"] {
        assert_eq!(check(&s, name)["passed"], true, "only the artifact check fails: {}", s["smoke"]);
    }
    let text = stack.tool(&["status", "--require-healthy", "--artifact-sample", "all"]);
    assert_eq!(text.status.code(), Some(3));
    assert!(stdout(&text).contains("smoke check artifacts: "), "{}", stdout(&text));
    // A sample of one checks one; 0 turns the check off (and the rest passes).
    let s = json(&stack.tool(&["--json", "status", "--artifact-sample", "1"]));
    let one = format!("1 of the {n} artifacts");
    assert!(check(&s, "artifacts")["what"].as_str().unwrap().starts_with(&one), "{}", s["smoke"]);
    let off = stack.tool(&["--json", "status", "--require-healthy", "--artifact-sample", "0"]);
    assert_eq!(off.status.code(), Some(0), "{}", stdout(&off));
    assert!(json(&off)["smoke"]["checks"].as_array().unwrap().iter().all(|c| c["name"] != "artifacts"));
    let bad = stack.tool(&["status", "--artifact-sample", "some"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("\"some\" is not a number of artifacts or `all`"), "{}", stderr(&bad));
}

/// Deletes the object `gone` from the stack's store and overwrites `short` with 10 bytes, with
/// deployments' own credentials, as a store that lost or truncated them would be.
async fn damage_store(stack: &Stack, gone: &str, short: &str) {
    let s3 = store_client(stack);
    s3.delete_object().bucket("mender-artifact-storage").key(gone).send().await.unwrap();
    let body = aws_sdk_s3::primitives::ByteStream::from(b"truncated!".to_vec());
    s3.put_object().bucket("mender-artifact-storage").key(short).body(body).send().await.unwrap();
}

/// A release whose gateway drops the management API's routers (the test bed's
/// `-broken-gateway` image): every service healthy on its own, so only the smoke check in the
/// hop's gates sees it; the hop is rolled back (exit 4) and the stack passes the check again.
#[test]
fn an_upgrade_that_breaks_the_gateway_route_is_rolled_back() {
    let cat = catalog_copy(|r, l| {
        add_patch(r, l, "3.6.5", "3.6.92", &[]);
        let gw = &mut release(r, "3.6.92")["services"]["mender-api-gateway"];
        let image = format!("{}-broken-gateway", gw["image"].as_str().unwrap());
        gw["image"] = image.into();
    });
    let cat = catalog_arg(&cat);
    let stack = Stack::up("smoke-hop", "3.6.5");
    let before = stack.data();
    let compose_before = file(&stack.path("docker-compose.yml"));
    let out = stack.tool(&["--catalog", &cat, "upgrade", "--to", "3.6.92", "--yes", "--hop-timeout", "40s"]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("hop 3.6.5 → 3.6.92 failed at step gates"), "{err}");
    assert!(
        err.contains("smoke check management (https://docker.mender.io/api/management/v1/useradm/auth/login)"),
        "{err}"
    );
    assert!(err.contains("rolled back to 3.6.5"), "{err}");
    let s = json(&stack.tool(&["--catalog", &cat, "--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5", "{s}");
    assert_eq!(s["smoke"]["passed"], true, "{}", s["smoke"]);
    assert_eq!(stack.data(), before);
    assert_eq!(file(&stack.path("docker-compose.yml")), compose_before);
}
