//! The base files the tool writes for every release it can land on render, service by service,
//! exactly like upstream's files of that tag: the real `docker compose config --format json`
//! against `tests/fixtures/upstream-render/<tag>.rendered.json` (upstream's render of
//! mendersoftware/integration@<tag>, taken the way Mender's production docs set a checkout up:
//! prod.yml from the tag's template, host names mender.example.com / s3.mender.example.com,
//! MinIO and deployments keys PLACEHOLDER-ACCESS / PLACEHOLDER-SECRET, an empty environment, the
//! checkout's path written as `${PROJECT_DIR}`).

use std::path::Path;
use std::process::Command;

use mender_compose_upgrade::catalog::{LoadedCatalog, render};
use serde_json::Value;

/// What the comparison covers: every setting of a service that changes how it runs.
const KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "volumes",
    "networks",
    "ports",
    "healthcheck",
    "restart",
    "depends_on",
    "logging",
    "labels",
];

/// prod.yml made from the template the way the production docs have an operator fill it in.
fn fill(template: &str) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let mut l = line.to_string();
        match line.trim() {
            "MINIO_ACCESS_KEY:" | "DEPLOYMENTS_AWS_AUTH_KEY:" => l.push_str(" PLACEHOLDER-ACCESS"),
            "MINIO_SECRET_KEY:" | "DEPLOYMENTS_AWS_AUTH_SECRET:" => l.push_str(" PLACEHOLDER-SECRET"),
            _ => {}
        }
        l = l
            .replace("my-gateway-dns-name", "mender.example.com")
            .replace("set-my-alias-here.com", "s3.mender.example.com");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Writes the release's base files (as the tool writes them, no registry prefix) and a prod.yml
/// filled from its template into `dir`.
fn checkout(l: &LoadedCatalog, version: &semver::Version, dir: &Path) {
    for t in l.template_files(version).unwrap() {
        let text = render(&t, None).unwrap();
        let path = dir.join(&t.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if t.path.ends_with("prod.yml.template") {
            std::fs::write(dir.join("production/config/prod.yml"), fill(&text)).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }
}

/// `docker compose config --format json` with `files` (relative to production/, as production/run
/// passes them), in an empty environment, the checkout's path replaced by `${PROJECT_DIR}`.
fn compose_config(dir: &Path, files: &[&str]) -> Value {
    let home = dir.join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new("docker");
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("HOME", &home);
    cmd.current_dir(dir.join("production")).args(["compose", "-p", "menderproduction"]);
    for f in files {
        cmd.args(["-f", f]);
    }
    let out = cmd.args(["config", "--format", "json"]).output().expect("run docker compose");
    assert!(out.status.success(), "compose config: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap().replace(&dir.display().to_string(), "${PROJECT_DIR}");
    serde_json::from_str(&text).unwrap()
}

fn fixture(version: &str) -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/upstream-render/{version}.rendered.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every difference between the two renders, one line each (empty when they agree).
fn differences(version: &str, ours: &Value, upstream: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (ours["services"].as_object().unwrap(), upstream["services"].as_object().unwrap());
    for name in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) => {
                for k in KEYS {
                    if x.get(*k) != y.get(*k) {
                        out.push(format!(
                            "{version} {name}.{k}: ours {} upstream {}",
                            x.get(*k).unwrap_or(&Value::Null),
                            y.get(*k).unwrap_or(&Value::Null)
                        ));
                    }
                }
            }
            (x, _) => out.push(format!("{version} {name}: only {}", if x.is_some() { "ours" } else { "upstream's" })),
        }
    }
    for k in ["volumes", "networks"] {
        if ours[k] != upstream[k] {
            out.push(format!("{version} top-level {k}: ours {} upstream {}", ours[k], upstream[k]));
        }
    }
    out
}

#[test]
fn every_landing_release_renders_like_upstream_service_by_service() {
    let l = LoadedCatalog::embedded().unwrap();
    let landing: Vec<_> =
        l.catalog.server_lines().filter(|x| x.line.starts_with("3.")).filter_map(|x| x.stop.clone()).collect();
    assert_eq!(landing.len(), 8, "3.0 … 3.7");
    let mut all = Vec::new();
    for v in &landing {
        let tmp = tempfile::tempdir().unwrap();
        checkout(&l, v, tmp.path());
        // The three files upstream's reference render took (production/run adds 3.0/3.1's connect
        // and config files, whose render upstream's reference does not hold).
        let ours = compose_config(
            tmp.path(),
            &["../docker-compose.yml", "../docker-compose.storage.minio.yml", "./config/prod.yml"],
        );
        all.extend(differences(&v.to_string(), &ours, &fixture(&v.to_string())));
    }
    assert!(all.is_empty(), "{} differences:\n{}", all.len(), all.join("\n"));
}

#[test]
fn every_landing_release_composes_with_the_files_production_run_passes() {
    let l = LoadedCatalog::embedded().unwrap();
    for line in l.catalog.server_lines().filter(|x| x.line.starts_with("3.")) {
        let v = line.stop.clone().unwrap();
        let release = l.catalog.release(&v).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        checkout(&l, &v, tmp.path());
        let files: Vec<String> = release
            .compose_files
            .iter()
            .map(|f| f.strip_prefix("production/").map(|p| format!("./{p}")).unwrap_or_else(|| format!("../{f}")))
            .collect();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let rendered = compose_config(tmp.path(), &refs);
        let mut names: Vec<&String> = rendered["services"].as_object().unwrap().keys().collect();
        let mut want: Vec<&String> = release.services.keys().collect();
        names.sort();
        want.sort();
        assert_eq!(names, want, "{v}: the composition runs exactly the catalog's services");
        for (name, s) in rendered["services"].as_object().unwrap() {
            let image = s["image"].as_str().unwrap();
            assert_eq!(image, release.services[name].image, "{v} {name}");
            if name != "mender-nats" {
                assert_eq!(s["restart"], "on-failure", "{v} {name} restarts on failure");
            }
        }
    }
}

/// The 4.x production layout (compose-templates/4.0.4, 4.1.3: the 3.x layout with 4.x images)
/// composes with an operator's 3.7.11 prod.yml and the project's .env: exactly the catalog's
/// services and images, each 4.x name as a network alias, unlimited restarts, 3.x logging limits,
/// the presign secret from .env, the GUI routed on 8090.
#[test]
fn the_4x_layout_composes_with_a_3_7_prod_yml() {
    let l = LoadedCatalog::embedded().unwrap();
    for v in ["4.0.4", "4.1.3"] {
        let v = semver::Version::parse(v).unwrap();
        let release = l.catalog.release(&v).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        checkout(&l, &v, tmp.path());
        // The operator's prod.yml stays the 3.7.11 one.
        let old = l.template_files(&semver::Version::new(3, 7, 11)).unwrap();
        let prod = old.iter().find(|t| t.path.ends_with("prod.yml.template")).unwrap();
        std::fs::write(tmp.path().join("production/config/prod.yml"), fill(&prod.contents)).unwrap();
        std::fs::write(tmp.path().join(".env"), "DEPLOYMENTS_PRESIGN_SECRET=from-dot-env\n").unwrap();
        let rendered = compose_config(
            tmp.path(),
            &["../docker-compose.yml", "../docker-compose.storage.minio.yml", "./config/prod.yml"],
        );
        let services = rendered["services"].as_object().unwrap();
        let mut names: Vec<&String> = services.keys().collect();
        names.sort();
        assert_eq!(names, release.services.keys().collect::<Vec<_>>(), "{v}");
        for (name, s) in services {
            let facts = &release.services[name];
            assert_eq!(s["image"].as_str().unwrap(), facts.image, "{v} {name}");
            assert_eq!(s["restart"], "on-failure", "{v} {name} restarts on failure, unlimited");
            if let Some(alias) = &facts.alias {
                let aliases = &s["networks"]["mender"]["aliases"];
                assert!(aliases.as_array().unwrap().iter().any(|a| a == alias.as_str()), "{v} {name}: alias {alias}");
            }
        }
        let d = &services["mender-deployments"];
        assert_eq!(d["environment"]["DEPLOYMENTS_PRESIGN_SECRET"], "from-dot-env");
        assert_eq!(d["logging"]["options"]["max-size"], "50m", "3.x logging limits kept");
        let w = &services["mender-workflows-worker"];
        assert_eq!(w["command"][0], "worker", "{v}: the workflows image runs the worker");
        let traefik = std::fs::read_to_string(tmp.path().join("config/traefik/traefik.yaml")).unwrap();
        assert!(traefik.contains("http://mender-gui:8090") && !traefik.contains("{version:"));
    }
}
