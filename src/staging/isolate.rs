//! The isolation transform: the production project as `docker compose config --format json`
//! renders it, turned into a staging project that cannot touch production. Pure, tested on data.
//!
//! On one daemon a plain copy is not isolated (peers.md §1.5): traefik's Docker provider sees
//! every container, host ports clash, external volumes and networks are shared by name, and a
//! `storage-daemon` deletes objects. Every rule below closes one of those doors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::labels::STAGING_LABEL;

/// What the transform needs besides the rendered configuration.
pub struct Spec<'a> {
    /// The staging project name (also the label value).
    pub name: &'a str,
    /// The staging copy of the production project directory; bind sources inside it are copies.
    pub project_dir: &'a Path,
    /// Host paths outside the project directory that the bundle holds copies of.
    pub external_copies: &'a BTreeMap<PathBuf, PathBuf>,
    /// When production keeps its artifacts outside the stack: staging's own store instead.
    pub store: Option<&'a OwnStore>,
}

/// An S3 store of staging's own, for a production whose artifacts live in an external bucket or
/// Azure container: deployments is pointed at it, so staging can neither read nor delete
/// production's objects (and an internal network could not reach them anyway).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnStore {
    /// The release's MinIO image (the test bed's stand-in answers the same way).
    pub image: String,
    /// Its access key (MinIO's `MINIO_ACCESS_KEY`, and deployments' `DEPLOYMENTS_AWS_AUTH_KEY`).
    pub access: String,
    /// Its secret key (never printed).
    pub secret: String,
}

impl std::fmt::Debug for OwnStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnStore({})", self.image)
    }
}

/// The service name of staging's own store.
pub const OWN_STORE: &str = "mcu-staging-store";

/// The staging project's configuration, and what the transform did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolated {
    /// The compose configuration as JSON, ready for `docker compose -f -` (the `name` is the staging
    /// project's).
    pub config: Value,
    /// Services left out of staging, with why.
    pub dropped: Vec<String>,
    /// What was changed beyond renaming, for the operator.
    pub notes: Vec<String>,
}

/// Why a production configuration cannot be made into an isolated staging copy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsolateError {
    /// `docker compose config` gave no `services` mapping.
    #[error("the rendered compose configuration has no services")]
    NoServices,
    /// A service shares a network namespace with the host or another container
    /// (`network_mode: host`, `container:…`): the service and the mode.
    #[error(
        "service {0} uses network_mode {1}, which shares a network namespace with production; it cannot be isolated"
    )]
    SharedNetwork(String, String),
    /// Production keeps its artifacts outside the stack, and no service runs the deployments image
    /// to point at staging's own store.
    #[error("no deployments service to point at staging's own artifact store")]
    NoDeployments,
}

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Whether a service runs the deployments storage daemon, which deletes objects of expired uploads.
fn is_storage_daemon(svc: &Value) -> bool {
    match &svc["command"] {
        Value::Array(a) => a.first().and_then(Value::as_str) == Some("storage-daemon"),
        Value::String(s) => s.split_whitespace().next() == Some("storage-daemon"),
        _ => false,
    }
}

/// The staging configuration from production's rendered one (`docker compose config --format json`):
/// own project name and label, no storage-daemon, internal networks, renamed volumes, no host ports,
/// traefik routers renamed, bind sources pointed at staging's copies, and with `spec.store`, its own
/// S3 store.
///
/// # Errors
/// [`IsolateError`] when the configuration cannot be isolated.
pub fn isolate(rendered: &Value, spec: &Spec<'_>) -> Result<Isolated, IsolateError> {
    let mut config = rendered.clone();
    let mut out = Isolated { config: Value::Null, dropped: vec![], notes: vec![] };
    config["name"] = spec.name.into();
    if let Some(store) = spec.store {
        add_own_store(&mut config, store, &mut out.notes)?;
    }
    let services = config.get_mut("services").and_then(Value::as_object_mut).ok_or(IsolateError::NoServices)?;
    services.retain(|name, svc| {
        let keep = !is_storage_daemon(svc);
        if !keep {
            out.dropped.push(format!("{name}: runs storage-daemon, which would delete objects"));
        }
        keep
    });
    let mut used_networks = Vec::new();
    for (name, svc) in services.iter_mut() {
        let svc = svc.as_object_mut().ok_or(IsolateError::NoServices)?;
        isolate_service(name, svc, spec, &mut out.notes)?;
        match svc.get("networks").and_then(Value::as_object) {
            Some(n) => used_networks.extend(n.keys().cloned()),
            None => used_networks.push("default".into()),
        }
    }
    isolate_networks(&mut config, spec.name, &used_networks, &mut out.notes);
    isolate_volumes(&mut config, spec.name, &mut out.notes);
    out.config = config;
    Ok(out)
}

fn is_deployments(svc: &Value) -> bool {
    svc["image"].as_str().is_some_and(|i| i.contains("/deployments:") || i.contains("/deployments-enterprise:"))
}

/// Adds the store on deployments' network and points deployments at it (S3, not Azure).
fn add_own_store(config: &mut Value, store: &OwnStore, notes: &mut Vec<String>) -> Result<(), IsolateError> {
    let services = config.get_mut("services").and_then(Value::as_object_mut).ok_or(IsolateError::NoServices)?;
    let (name, deployments) =
        services.iter_mut().find(|(_, s)| is_deployments(s)).ok_or(IsolateError::NoDeployments)?;
    let name = name.clone();
    let network = match &deployments["networks"] {
        Value::Object(n) => n.keys().next().cloned().unwrap_or_else(|| "default".into()),
        _ => "default".into(),
    };
    let env = deployments.as_object_mut().map(|d| d.entry("environment").or_insert_with(|| json!({})));
    if let Some(env) = env.and_then(Value::as_object_mut) {
        env.retain(|k, _| k != "DEPLOYMENTS_STORAGE_DEFAULT" && !k.starts_with("DEPLOYMENTS_AZURE_"));
        env.insert("DEPLOYMENTS_AWS_URI".into(), format!("http://{OWN_STORE}:9000").into());
        env.insert("DEPLOYMENTS_AWS_AUTH_KEY".into(), store.access.clone().into());
        env.insert("DEPLOYMENTS_AWS_AUTH_SECRET".into(), store.secret.clone().into());
    }
    services.insert(
        OWN_STORE.into(),
        json!({
            "image": store.image,
            "command": ["server", "/export"],
            "environment": {"MINIO_ACCESS_KEY": store.access, "MINIO_SECRET_KEY": store.secret},
            "networks": {network: {}},
            "volumes": [{"type": "volume", "source": OWN_STORE, "target": "/export"}],
        }),
    );
    let volumes = config.as_object_mut().map(|c| c.entry("volumes").or_insert_with(|| json!({})));
    if let Some(v) = volumes.and_then(Value::as_object_mut) {
        v.insert(OWN_STORE.into(), json!({}));
    }
    notes.push(format!("{name}: artifacts in staging's own store {OWN_STORE}, not production's external one"));
    Ok(())
}

fn staging_labels(name: &str) -> Value {
    json!({ STAGING_LABEL: name })
}

fn isolate_service(
    name: &str,
    svc: &mut Map<String, Value>,
    spec: &Spec<'_>,
    notes: &mut Vec<String>,
) -> Result<(), IsolateError> {
    if let Some(mode) = svc.get("network_mode").and_then(Value::as_str)
        && (mode == "host" || mode.starts_with("container:"))
    {
        return Err(IsolateError::SharedNetwork(name.into(), mode.into()));
    }
    // Fixed names clash with production's containers; compose names staging ones by project.
    if svc.remove("container_name").is_some() {
        notes.push(format!("{name}: container_name dropped"));
    }
    // Published ports would clash with production's (and an internal network publishes nothing).
    if svc.remove("ports").is_some_and(|p| p.as_array().is_some_and(|a| !a.is_empty())) {
        notes.push(format!("{name}: host ports dropped"));
    }
    // Links to containers outside the project would reach production.
    if svc.remove("external_links").is_some() {
        notes.push(format!("{name}: external_links dropped"));
    }
    // Router labels would make a Docker-provider traefik route production traffic here.
    let labels = svc.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.retain(|k, _| !k.starts_with("traefik."));
        l.insert("traefik.enable".into(), "false".into());
        l.insert(STAGING_LABEL.into(), spec.name.into());
    }
    if let Some(vols) = svc.get_mut("volumes").and_then(Value::as_array_mut) {
        vols.retain_mut(|m| isolate_mount(name, m, spec, notes));
    }
    Ok(())
}

/// Keeps a mount (rewritten) or drops it (returns false).
fn isolate_mount(service: &str, m: &mut Value, spec: &Spec<'_>, notes: &mut Vec<String>) -> bool {
    if m["type"] != "bind" {
        return true;
    }
    let Some(source) = m["source"].as_str().map(PathBuf::from) else { return true };
    if source == Path::new(DOCKER_SOCKET) {
        // The Docker API is the daemon production runs on.
        notes.push(format!("{service}: {DOCKER_SOCKET} not mounted"));
        return false;
    }
    if source.starts_with(spec.project_dir) {
        return true;
    }
    match spec.external_copies.get(&source) {
        Some(copy) => m["source"] = copy.display().to_string().into(),
        None => {
            // Not in the bundle: the production path, but never writable from staging.
            m["read_only"] = true.into();
            notes.push(format!("{service}: host path {} mounted read-only (not in the bundle)", source.display()));
        }
    }
    true
}

fn isolate_networks(config: &mut Value, name: &str, used: &[String], notes: &mut Vec<String>) {
    let nets = config.as_object_mut().map(|c| c.entry("networks").or_insert_with(|| json!({})));
    let Some(nets) = nets.and_then(Value::as_object_mut) else { return };
    for key in used {
        nets.entry(key.clone()).or_insert_with(|| json!({}));
    }
    for (key, net) in nets.iter_mut() {
        if net.get("external").and_then(Value::as_bool) == Some(true) {
            notes.push(format!("network {key}: production's external network replaced by a staging one"));
        }
        if net.pointer("/ipam/config").is_some_and(|c| c.as_array().is_some_and(|a| !a.is_empty())) {
            notes.push(format!("network {key}: fixed subnets dropped (they are production's)"));
        }
        // Internal: no route out (integrations, SMTP, the external bucket) and nothing published.
        *net = json!({ "name": format!("{name}_{key}"), "internal": true, "labels": staging_labels(name) });
    }
}

fn isolate_volumes(config: &mut Value, name: &str, notes: &mut Vec<String>) {
    let Some(vols) = config.get_mut("volumes").and_then(Value::as_object_mut) else { return };
    for (key, vol) in vols.iter_mut() {
        if vol.get("driver_opts").is_some() {
            notes.push(format!("volume {key}: driver options dropped (they may name production's storage)"));
        }
        // A fresh volume per staging project: production's external volumes are never mounted.
        *vol = json!({ "name": format!("{name}_{key}"), "labels": staging_labels(name) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> Value {
        json!({
            "name": "menderproduction",
            "services": {
                "mender-api-gateway": {
                    "image": "traefik:v2.8",
                    "container_name": "gateway",
                    "ports": [{"mode": "ingress", "target": 443, "published": "443", "protocol": "tcp"}],
                    "labels": {"traefik.http.routers.api.rule": "PathPrefix(`/`)", "traefik.enable": "true", "mender.x": "1"},
                    "networks": {"mender": {"aliases": ["s3.docker.mender.io"]}},
                    "volumes": [
                        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock", "read_only": true},
                        {"type": "bind", "source": "/srv/mender/config/traefik/traefik.yaml", "target": "/etc/traefik/config/traefik.yaml", "read_only": true},
                        {"type": "bind", "source": "/etc/ssl/mender/cert.crt", "target": "/etc/traefik/certs/cert.crt", "read_only": true},
                        {"type": "bind", "source": "/opt/shared", "target": "/shared"}
                    ]
                },
                "mender-mongo": {
                    "image": "mongo:4.4",
                    "networks": {"mender": {"aliases": ["mongo-deployments"]}},
                    "volumes": [{"type": "volume", "source": "mender-db", "target": "/data/db"}]
                },
                "storage-cleaner": {"image": "mendersoftware/deployments:mender-3.4.0", "command": ["storage-daemon", "--interval", "1h"]},
                "sidecar": {"image": "busybox", "external_links": ["other:other"]}
            },
            "networks": {
                "mender": {"name": "menderproduction_mender", "ipam": {"config": [{"subnet": "172.30.0.0/16"}]}},
                "shared": {"name": "corp", "external": true}
            },
            "volumes": {
                "mender-db": {"name": "mender-db", "external": true},
                "mender-artifacts": {"name": "mender-artifacts", "external": true, "driver_opts": {"device": "/srv/artifacts", "o": "bind"}}
            }
        })
    }

    fn run(v: &Value) -> Isolated {
        let copies = BTreeMap::from([(
            PathBuf::from("/etc/ssl/mender/cert.crt"),
            PathBuf::from("/state/staging/s/project/_external/etc/ssl/mender/cert.crt"),
        )]);
        let spec = Spec {
            name: "menderproduction-staging",
            project_dir: Path::new("/srv/mender"),
            external_copies: &copies,
            store: None,
        };
        isolate(v, &spec).unwrap()
    }

    #[test]
    fn every_resource_is_renamed_and_labelled() {
        let out = run(&production());
        let c = &out.config;
        assert_eq!(c["name"], "menderproduction-staging");
        for (key, net) in c["networks"].as_object().unwrap() {
            assert_eq!(net["name"], format!("menderproduction-staging_{key}"));
            assert_eq!(net["internal"], true);
            assert_eq!(net["labels"][STAGING_LABEL], "menderproduction-staging");
            assert!(net.get("external").is_none() && net.get("ipam").is_none());
        }
        // `default` is defined (internal) for the services that name no network.
        assert_eq!(c["networks"]["default"]["internal"], true);
        for (key, vol) in c["volumes"].as_object().unwrap() {
            assert_eq!(vol["name"], format!("menderproduction-staging_{key}"));
            assert!(vol.get("external").is_none() && vol.get("driver_opts").is_none());
            assert_eq!(vol["labels"][STAGING_LABEL], "menderproduction-staging");
        }
        for svc in c["services"].as_object().unwrap().values() {
            assert_eq!(svc["labels"][STAGING_LABEL], "menderproduction-staging");
            assert_eq!(svc["labels"]["traefik.enable"], "false");
        }
    }

    #[test]
    fn gateway_loses_ports_routers_socket_and_fixed_name() {
        let out = run(&production());
        let gw = &out.config["services"]["mender-api-gateway"];
        assert!(gw.get("ports").is_none() && gw.get("container_name").is_none());
        let labels = gw["labels"].as_object().unwrap();
        assert!(!labels.keys().any(|k| k.starts_with("traefik.") && k != "traefik.enable"), "{labels:?}");
        assert_eq!(labels["mender.x"], "1", "other labels are kept");
        let sources: Vec<&str> =
            gw["volumes"].as_array().unwrap().iter().map(|m| m["source"].as_str().unwrap()).collect();
        assert_eq!(
            sources,
            [
                "/srv/mender/config/traefik/traefik.yaml",
                "/state/staging/s/project/_external/etc/ssl/mender/cert.crt",
                "/opt/shared"
            ]
        );
        // A host path the bundle does not hold stays, read-only.
        assert_eq!(gw["volumes"][2]["read_only"], true);
        assert_eq!(
            gw["networks"]["mender"]["aliases"][0], "s3.docker.mender.io",
            "aliases live on the staging network"
        );
    }

    #[test]
    fn storage_daemon_and_external_links_are_dropped_with_notes() {
        let out = run(&production());
        assert!(out.config["services"].get("storage-cleaner").is_none());
        assert_eq!(out.dropped.len(), 1);
        assert!(out.config["services"]["sidecar"].get("external_links").is_none());
        for expected in
            ["external_links", "host ports", "fixed subnets", "external network", "driver options", "read-only"]
        {
            assert!(out.notes.iter().any(|n| n.contains(expected)), "no note on {expected}: {:?}", out.notes);
        }
    }

    #[test]
    fn host_network_is_refused() {
        let mut v = production();
        v["services"]["sidecar"]["network_mode"] = "host".into();
        let copies = BTreeMap::new();
        let spec = Spec { name: "s", project_dir: Path::new("/srv/mender"), external_copies: &copies, store: None };
        assert_eq!(isolate(&v, &spec).unwrap_err(), IsolateError::SharedNetwork("sidecar".into(), "host".into()));
    }

    #[test]
    fn external_storage_is_replaced_by_an_own_store() {
        let mut v = production();
        v["services"]["mender-deployments"] = json!({
            "image": "mendersoftware/deployments:mender-3.4.0",
            "networks": {"mender": null},
            "environment": {
                "DEPLOYMENTS_STORAGE_DEFAULT": "azure",
                "DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING": "AccountKey=prod",
                "DEPLOYMENTS_AWS_URI": "https://s3.eu-west-1.amazonaws.com",
                "DEPLOYMENTS_AWS_AUTH_SECRET": "prod-secret",
                "DEPLOYMENTS_STORAGE_BUCKET": "prod-artifacts"
            }
        });
        let store = OwnStore { image: "minio/minio:x".into(), access: "a".into(), secret: "staging-secret".into() };
        let copies = BTreeMap::new();
        let spec = Spec {
            name: "p-staging",
            project_dir: Path::new("/srv/mender"),
            external_copies: &copies,
            store: Some(&store),
        };
        let out = isolate(&v, &spec).unwrap();
        let env = &out.config["services"]["mender-deployments"]["environment"];
        assert_eq!(
            env,
            &json!({
                "DEPLOYMENTS_AWS_URI": "http://mcu-staging-store:9000",
                "DEPLOYMENTS_AWS_AUTH_KEY": "a",
                "DEPLOYMENTS_AWS_AUTH_SECRET": "staging-secret",
                "DEPLOYMENTS_STORAGE_BUCKET": "prod-artifacts"
            })
        );
        let s = &out.config["services"][OWN_STORE];
        assert_eq!(s["image"], "minio/minio:x");
        assert!(s["networks"].get("mender").is_some());
        assert_eq!(s["labels"][STAGING_LABEL], "p-staging");
        assert_eq!(out.config["volumes"][OWN_STORE]["name"], "p-staging_mcu-staging-store");
        assert!(!format!("{store:?}").contains("staging-secret"), "no secret in Debug");
    }

    #[test]
    fn literal_dollars_stay_escaped() {
        let mut v = production();
        v["services"]["mender-mongo"]["environment"] = json!({"P": "ab$$cd"});
        assert_eq!(run(&v).config["services"]["mender-mongo"]["environment"]["P"], "ab$$cd");
    }
}
