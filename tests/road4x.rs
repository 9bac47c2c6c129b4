//! Off end-of-life 3.x: a compose stack on 3.7.11 (MongoDB 5.0) to 4.1.3, the only supported
//! line, through every MongoDB major on a copy of the data volume and the 4.x layout on compose.

mod common;

use common::*;

#[test]
fn upgrade_3_7_11_to_4_1_3_keeps_data_comments_and_compose_state() {
    let stack = Stack::up("road", "3.7.11");
    let prod = stack.path("production/config/prod.yml");
    let commented = format!("# Our production overrides: do not remove this line.\n\n{}", file(&prod));
    std::fs::write(&prod, &commented).unwrap();
    // A useradm key rotated on 3.x, next to the key 3.x mounts (mender-docs "Private key rotation").
    let keys = stack.path("production/keys-generated/keys");
    let rotated = rsa_key(&keys.join("useradm/private.id.1.pem"));
    let (useradm_key, deviceauth_key) = (
        std::fs::read(keys.join("useradm/private.key")).unwrap(),
        std::fs::read(keys.join("deviceauth/private.key")).unwrap(),
    );
    assert_eq!(copy_out(&stack, "mender-useradm", "/etc/useradm/rsa/private.pem"), useradm_key, "3.x mounts the key");
    let before = stack.data();
    let db = format!("{}-mender-db", stack.project);

    let out = stack.tool(&["--json", "upgrade", "--to", "4.1.3", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r = result_line(&out);
    let hops = hop_labels(&r);
    // 5.0 → 6.0 at 3.7.11, the 4.0.4 hop on 6.0, 6.0 → 7.0 at 4.0.4, 4.1.3 on 7.0, 7.0 → 8.0.
    assert_eq!(hops, ["3.7.11→3.7.11", "3.7.11→4.0.4", "4.0.4→4.0.4", "4.0.4→4.1.3", "4.1.3→4.1.3"]);

    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "4.1.3");
    assert_eq!(s["mongo"]["fcv"], "8.0");
    assert!(s["databases"].as_array().unwrap().iter().all(|d| d["status"] == "current"), "{}", s["databases"]);
    // The operator's data is all there; the original 5.0 volume is kept for the operator to remove.
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
    assert_eq!(docker_ok(&["volume", "ls", "-q", "--filter", &format!("name=^{db}$")]).trim(), db);
    // The operator's prod.yml keeps its comment; only the data volume's name moved to the copy.
    let now = file(&prod);
    assert!(now.starts_with("# Our production overrides: do not remove this line.\n"), "{now}");
    assert!(now.contains(&format!("{db}-8.0")), "{now}");
    // The presign secret is generated once, kept in the project, never printed.
    let env = file(&stack.path(".env"));
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("DEPLOYMENTS_PRESIGN_SECRET="))
        .expect("DEPLOYMENTS_PRESIGN_SECRET in the project's .env");
    assert!(secret.len() >= 16, "a generated secret");
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret), "the secret was printed");
    // useradm sees its key where 3.x mounted it (the id-0 key useradm always reads from there) and
    // the key's whole directory, rotated key included, read from USERADM_SERVER_PRIV_KEY_PATH's
    // directory; deviceauth's key stays at its 3.x path.
    assert_eq!(copy_out(&stack, "mender-useradm", "/etc/useradm/rsa/private.pem"), useradm_key);
    assert_eq!(copy_out(&stack, "mender-useradm", "/etc/useradm/keys/private.id.1.pem"), rotated);
    assert_eq!(copy_out(&stack, "mender-useradm", "/etc/useradm/keys/private.key"), useradm_key);
    let env = docker_ok(&["inspect", "-f", "{{json .Config.Env}}", &service_container(&stack, "mender-useradm")]);
    assert!(env.contains("\"USERADM_SERVER_PRIV_KEY_PATH=/etc/useradm/keys/private.key\""), "{env}");
    assert_eq!(copy_out(&stack, "mender-device-auth", "/etc/deviceauth/rsa/private.pem"), deviceauth_key);
    // The 4.x base files give mongo and the gateway upstream's open-files limits; only the
    // test bed's prod.yml override lowers them (this sandbox's hard limit is below upstream's).
    let limit = serde_json::json!({"soft": nofile_limit(), "hard": nofile_limit()});
    let config = compose_json(&stack, &[]);
    let base = compose_json(&stack, &["-f", "docker-compose.yml", "-f", "docker-compose.storage.minio.yml"]);
    for (svc, upstream) in [("mender-mongo", 64000), ("mender-api-gateway", 65536)] {
        assert_eq!(base["services"][svc]["ulimits"]["nofile"], serde_json::json!({"soft": upstream, "hard": upstream}));
        assert_eq!(config["services"][svc]["ulimits"]["nofile"], limit, "{svc}");
        let running = docker_ok(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", &service_container(&stack, svc)]);
        let want = format!("[{{\"Name\":\"nofile\",\"Hard\":{n},\"Soft\":{n}}}]", n = nofile_limit());
        assert_eq!(running.trim(), want, "{svc}");
    }
    let limited: Vec<&String> = config["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.get("ulimits").is_some())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(limited, ["mender-api-gateway", "mender-mongo"], "no other service has ulimits");
    assert_eq!(now.matches("ulimits:").count(), 2, "the override is the demo's prod.yml's: {now}");
    // `docker compose up -d` by hand afterwards recreates nothing.
    let ids = container_ids(&stack);
    let again = stack.compose(&["up", "-d"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(container_ids(&stack), ids, "compose recreated containers: {}", stderr(&again));
}

/// A fresh RSA key at `path` (`openssl genrsa`), readable by the services' user as keygen's are;
/// its bytes.
fn rsa_key(path: &std::path::Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(path)
        .arg("2048")
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl genrsa: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::read(path).unwrap()
}

/// The running container of a compose service of the stack.
fn service_container(stack: &Stack, service: &str) -> String {
    let ids = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(ids.len(), 1, "one running container of {service}: {ids:?}");
    ids[0].to_string()
}

/// The bytes of a file as the service's container sees it (`docker cp`: the stand-ins have no
/// shell or `cat`).
fn copy_out(stack: &Stack, service: &str, path: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("copy");
    docker_ok(&["cp", &format!("{}:{path}", service_container(stack, service)), &dest.to_string_lossy()]);
    std::fs::read(&dest).unwrap()
}

/// `docker compose config --format json` of the stack: its own files (production/run) when `files`
/// is empty, else only those (relative to the checkout), with the project's .env.
fn compose_json(stack: &Stack, files: &[&str]) -> serde_json::Value {
    let out = if files.is_empty() {
        stack.compose(&["config", "--format", "json"])
    } else {
        std::process::Command::new("docker")
            .args(["compose", "-p", &stack.project])
            .args(files)
            .args(["config", "--format", "json"])
            .current_dir(&stack.dir)
            .output()
            .expect("docker compose config")
    };
    json(&out)
}
