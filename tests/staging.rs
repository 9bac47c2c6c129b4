//! `staging up|down` and `rehearse` on real test-bed stacks: the copy holds production's data,
//! cannot reach or be reached from production, goes away completely, and a rehearsal proves the
//! bundle, estimates the window and catches a broken release without touching production.

mod common;

use std::path::Path;

use common::staging::*;
use common::*;
use serde_json::Value;

fn staging_data(name: &str) -> Value {
    let out = tool(&["-p", name, "status", "--json", "--data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut d = json(&out)["data"].take();
    let dbs = d["databases"].as_array_mut().unwrap();
    dbs.sort_by_key(|x| x["name"].as_str().unwrap_or_default().to_string());
    for db in dbs.iter_mut() {
        db["size_bytes"] = Value::Null;
    }
    d
}

/// Every network a container is attached to.
fn networks_of(container: &str) -> Vec<String> {
    let out = docker_ok(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", container]);
    out.split_whitespace().map(str::to_string).collect()
}

fn assert_isolated(name: &str, prod: &Stack) {
    let containers = labelled("container", name);
    assert!(containers.len() >= 10, "{containers:?}");
    for c in &containers {
        let ports = docker_ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", c]);
        assert!(matches!(ports.trim(), "{}" | "null"), "{c} publishes {ports}");
        for n in networks_of(c) {
            assert!(n.starts_with(name), "{c} is on {n}");
            assert_eq!(docker_ok(&["network", "inspect", "-f", "{{.Internal}}", &n]).trim(), "true", "{n}");
        }
        let labels: Value = serde_json::from_str(&docker_ok(&["inspect", "-f", "{{json .Config.Labels}}", c])).unwrap();
        let traefik: Vec<&String> = labels.as_object().unwrap().keys().filter(|k| k.starts_with("traefik.")).collect();
        assert_eq!(traefik, ["traefik.enable"], "{c}");
        assert_eq!(labels["traefik.enable"], "false");
        let mounts = docker_ok(&["inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Source}} {{end}}", c]);
        assert!(!mounts.contains("docker.sock"), "{c}: {mounts}");
        assert!(!mounts.contains(&format!(":{}-mender-", prod.project)), "{c} mounts a production volume: {mounts}");
    }
    // The production gateway resolves service names on production's network only: no staging
    // container is on any production network.
    let gw = docker_ok(&["ps", "-q", "--filter", &format!("label=com.docker.compose.project={}", prod.project)]);
    for id in gw.split_whitespace() {
        for n in networks_of(id) {
            let members = docker_ok(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", &n]);
            assert!(!members.contains(name), "production network {n} holds staging containers: {members}");
        }
    }
}

#[test]
fn staging_is_a_restored_isolated_copy_and_down_removes_only_it() {
    let prod = Stack::up_with("stgiso", "3.4.0", &["--devices", "30", "--artifacts", "4"]);
    let bundle = backup(&prod);
    let bundle_s = bundle.to_string_lossy().into_owned();
    let before = production(&prod);
    let name = format!("{}-staging", prod.project);

    let out = prod.tool(&["staging", "up", "--from", &bundle_s]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&format!("Staging {name} runs 3.4.0")), "{}", stdout(&out));
    // Data identical after the restore: every collection's count and digest, every artifact.
    assert_eq!(staging_data(&name), before.3);
    assert_isolated(&name, &prod);
    let s = json(&tool(&["-p", &name, "--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.4.0");
    // `status` without -p still finds production: staging copies are not candidates.
    let found = json(&prod.tool(&["--json", "status"]));
    assert_eq!(found["project"], prod.project);

    // A second staging of the same name is refused, and changes nothing.
    let again = prod.tool(&["staging", "up", "--from", &bundle_s]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    // A damaged bundle is refused before anything is created.
    let damaged = tempfile::tempdir().unwrap();
    let copy = damaged.path().join("bundle");
    assert!(std::process::Command::new("cp").arg("-a").arg(&bundle).arg(&copy).status().unwrap().success());
    std::fs::write(copy.join("mongo.archive.gz"), b"not a dump").unwrap();
    let bad =
        prod.tool(&["staging", "up", "--from", &copy.to_string_lossy(), "--name", &format!("{}stgbad", prefix())]);
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("mongo.archive.gz"), "{}", stderr(&bad));
    nothing_left(&format!("{}stgbad", prefix()));
    // Killed once the restore into staging has begun: `staging down` removes exactly what it made
    // (the orphaned mongorestore sidecar first, which would hold the staging network).
    let killed_name = format!("{}stgkill", prefix());
    let killed = prod.tool_env(
        &["staging", "up", "--from", &bundle_s, "--name", &killed_name],
        &[("MENDER_COMPOSE_UPGRADE_FAULT", "during:restore")],
    );
    assert_eq!(killed.status.code(), None, "killed during the restore: {}", stderr(&killed));
    assert!(!labelled("container", &killed_name).is_empty(), "the kill left a half-made staging copy");
    let down = prod.tool(&["staging", "down", "--name", &killed_name]);
    assert!(down.status.success(), "{}", stderr(&down));
    nothing_left(&killed_name);

    // Decoys that share the name but not the label (or carry another staging's label).
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{}stgiso-decoy", prefix()),
        "--label",
        &format!("com.docker.compose.project={name}"),
        "--label",
        &format!("{LABEL}={}other", prefix()),
        &format!("{REGISTRY}/mendersoftware/inventory:mender-3.4.0"),
        "version",
    ]);
    docker_ok(&["network", "create", &format!("{name}_decoy")]);
    docker_ok(&["volume", "create", "--label", &format!("{LABEL}={}other", prefix()), &format!("{name}_decoy")]);
    let down = prod.tool(&["staging", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    nothing_left(&name);
    docker_ok(&["inspect", &format!("{}stgiso-decoy", prefix())]);
    docker_ok(&["network", "inspect", &format!("{name}_decoy")]);
    docker_ok(&["volume", "inspect", &format!("{name}_decoy")]);
    docker_ok(&["rm", "-f", &format!("{}stgiso-decoy", prefix())]);
    docker_ok(&["network", "rm", &format!("{name}_decoy")]);
    docker_ok(&["volume", "rm", &format!("{name}_decoy")]);
    let gone = prod.tool(&["staging", "down"]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
    assert!(stderr(&gone).contains(&format!("no staging project named {name}")), "{}", stderr(&gone));

    assert_eq!(production(&prod), before, "production changed");
}

fn rehearsals(bundle: &Path) -> Value {
    let m: Value = serde_json::from_str(&file(&bundle.join("manifest.json"))).unwrap();
    m["rehearsals"].clone()
}

#[test]
fn rehearsal_proves_the_bundle_and_estimates_the_window() {
    let prod = Stack::up("rehearse", "3.4.0");
    let bundle = backup(&prod);
    let before = production(&prod);
    // A rehearsal killed in the middle of its upgrade, then `staging down`: the next rehearsal
    // starts clean (the killed one's journal went with the copy, not taken for a pending upgrade).
    let killed = prod.tool_env(
        &["rehearse", "--to", "3.6.5", "--from", &bundle.to_string_lossy()],
        &[("MENDER_COMPOSE_UPGRADE_FAULT", "after:migrate")],
    );
    assert_eq!(killed.status.code(), None, "killed after migrate: {}", stderr(&killed));
    let down = prod.tool(&["staging", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let out = prod.tool(&["--json", "rehearse", "--to", "3.6.5", "--from", &bundle.to_string_lossy()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r = result_line(&out);
    assert_eq!(r["ok"], true, "{r}");
    let hop = &r["hops"][0];
    assert_eq!((hop["from"].as_str(), hop["to"].as_str()), (Some("3.4.0"), Some("3.6.5")));
    for step in ["stop", "dump", "migrate", "up", "gates"] {
        assert!(hop["timings"][step].as_f64().is_some_and(|t| t >= 0.0), "{hop}");
    }
    let estimate = r["estimate_secs"].as_f64().unwrap();
    assert!((estimate - hop["total_secs"].as_f64().unwrap()).abs() < 0.2, "{r}");
    assert!(Path::new(r["report_md"].as_str().unwrap()).exists());
    nothing_left(r["staging"].as_str().unwrap());
    assert_eq!(production(&prod), before, "production changed during the rehearsal");
    let marks = rehearsals(&bundle);
    assert_eq!((marks[0]["ok"].as_bool(), marks[0]["to"].as_str()), (Some(true), Some("3.6.5")), "{marks}");

    // The upgrade shows what the rehearsal measured, and --require-rehearsal holds it to that.
    let dry = prod.tool(&["upgrade", "--to", "3.6.5", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("rehearsal: 3.4.0 → 3.6.5 on staging"), "{}", stdout(&dry));
    let unproven = prod.tool(&["upgrade", "--to", "3.7.11", "--dry-run", "--require-rehearsal"]);
    assert_eq!(unproven.status.code(), Some(3), "{}", stderr(&unproven));
    assert!(stderr(&unproven).contains("no rehearsal of 3.7.11 proved"), "{}", stderr(&unproven));
}

#[test]
fn rehearsal_catches_a_broken_release_without_touching_production() {
    let cat = catalog_copy(|r, _| {
        let svc = &mut release(r, "3.6.5")["services"]["mender-useradm"];
        svc["image"] = "mendersoftware/useradm:mender-3.6.5-broken".into();
    });
    let prod = Stack::up("rehearse-broken", "3.4.0");
    let bundle = backup(&prod);
    let before = production(&prod);
    let cat = catalog_arg(&cat);
    let out = prod.tool(&[
        "--catalog",
        &cat,
        "rehearse",
        "--to",
        "3.6.5",
        "--from",
        &bundle.to_string_lossy(),
        "--hop-timeout",
        "45s",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the rehearsal of 3.4.0 → 3.6.5 failed on staging") && err.contains("mender-useradm"),
        "{err}"
    );
    assert!(err.contains("production was not touched"), "{err}");
    nothing_left(&format!("{}-staging", prod.project));
    assert_eq!(production(&prod), before, "production changed during a failed rehearsal");
    assert_eq!(rehearsals(&bundle)[0]["ok"], false);
}

/// An age key pair for the tests: (identity file, public key).
fn age_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(&path, format!("# public key: {}\n{}\n", id.to_public(), id.to_string().expose_secret())).unwrap();
    (path, id.to_public().to_string())
}

#[test]
fn an_encrypted_bundle_is_opaque_and_restores_into_staging_with_its_identity() {
    let prod = Stack::up("stgage", "3.4.0");
    let keys = tempfile::tempdir().unwrap();
    let (id, public) = age_key(keys.path(), "ops.key");
    let (other, _) = age_key(keys.path(), "other.key");
    let recipients = keys.path().join("recipients.txt");
    std::fs::write(&recipients, format!("# ops\n{public}\n")).unwrap();
    let (id_s, other_s) = (id.to_string_lossy().into_owned(), other.to_string_lossy().into_owned());

    let bad = prod.tool(&["backup", "--encrypt-to", "age1notakey"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let out = prod.tool(&["backup", "--encrypt-to", &public, "--encrypt-to-file", &recipients.to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bundle = prod.bundle();
    let bundle_s = bundle.to_string_lossy().into_owned();
    let m: Value = serde_json::from_str(&file(&bundle.join("manifest.json"))).unwrap();
    assert_eq!(m["encryption"]["recipients"], serde_json::json!([public]), "{}", m["encryption"]);
    assert_eq!(m["encryption"]["checksums"], "ciphertext");
    // Every file but the manifest is an age file: no key, no readable archive.
    let files: Vec<&str> = m["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"mongo.archive.gz") && files.iter().any(|f| f.starts_with("compose/")), "{files:?}");
    for rel in &files {
        let bytes = std::fs::read(bundle.join(rel)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{rel} is not an age file");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("PRIVATE KEY") && !text.contains("mender"), "{rel} holds plaintext");
    }
    assert!(!std::fs::read(bundle.join("mongo.archive.gz")).unwrap().starts_with(&[0x1f, 0x8b]), "a readable gzip");
    assert!(prod.tool(&["backup", "list"]).status.success());

    // Without the identity, verify proves the checksums of the ciphertext; a wrong one is refused.
    let v = prod.tool(&["--json", "verify", &bundle_s]);
    assert!(v.status.success(), "{}", stderr(&v));
    let report = result_line(&v);
    assert_eq!(report["checks"], serde_json::json!(["files"]), "{report}");
    assert!(report["notes"][0].as_str().unwrap().contains("encrypted"), "{report}");
    let v = prod.tool(&["verify", &bundle_s, "--identity", &other_s]);
    assert_eq!(v.status.code(), Some(3), "{}", stderr(&v));
    assert!(stderr(&v).contains("does not open the bundle"), "{}", stderr(&v));
    let v = prod.tool(&["--json", "verify", "--restore-test", &bundle_s, "--identity", &id_s]);
    assert!(v.status.success(), "{}", stderr(&v));
    assert_eq!(result_line(&v)["checks"], serde_json::json!(["files", "archive", "artifacts", "restore-test"]));

    // A missing or wrong identity is refused before anything stops or is created.
    let before = production(&prod);
    let name = format!("{}-staging", prod.project);
    let none = prod.tool(&["staging", "up", "--from", &bundle_s]);
    assert_eq!(none.status.code(), Some(3), "{}", stderr(&none));
    assert!(stderr(&none).contains("is encrypted") && stderr(&none).contains("--identity"), "{}", stderr(&none));
    let wrong = prod.tool(&["staging", "up", "--from", &bundle_s, "--identity", &other_s]);
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("other.key") && !stderr(&wrong).contains("AGE-SECRET"), "{}", stderr(&wrong));
    let restore = prod.tool(&["restore", &bundle_s, "--yes", "--identity", &other_s]);
    assert_eq!(restore.status.code(), Some(3), "{}", stderr(&restore));
    assert!(stderr(&restore).contains("does not open the bundle"), "{}", stderr(&restore));
    nothing_left(&name);
    assert_eq!(prod.started_at(), before.1, "production was stopped for a refused identity");

    // With it (from the environment), staging holds production's data.
    let out = prod.tool_env(&["staging", "up", "--from", &bundle_s], &[("MENDER_COMPOSE_UPGRADE_IDENTITY", &id_s)]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(staging_data(&name), before.3);
    let staged = prod.dir.parent().unwrap().join("state/staging").join(&name).join("project");
    let keys_in_clear = common_files(&staged).iter().any(|p| file(p).contains("PRIVATE KEY"));
    assert!(keys_in_clear, "staging got the decrypted keys");
    let beside: Vec<String> = std::fs::read_dir(bundle.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("decrypted"))
        .collect();
    assert!(beside.is_empty(), "the clear copy was left: {beside:?}");
    assert!(prod.tool(&["staging", "down"]).status.success());
    nothing_left(&name);
    assert_eq!(production(&prod), before, "production changed");
}

/// Every file below `dir`.
fn common_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(common_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
