//! Reading MongoDB directly through the tool's sidecar: a live server's contents and
//! featureCompatibilityVersion, or what a data volume holds (a server of a given major started on
//! it beside the stack and removed again).

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use mender_compose_upgrade::engine::docker::connect;
use mender_compose_upgrade::engine::helper::{MongoQuery, MongoReport};
use mender_compose_upgrade::engine::sidecar::{HELPER_BINARY_ENV, read_mongo, wait_mongo};
use mender_compose_upgrade::util::mongo_uri;

use super::{REGISTRY, Stack, bin, docker_ok};

/// The sidecar runs the tool's own binary: the one under test.
pub fn helper_binary() {
    static HELPER: Once = Once::new();
    // SAFETY of the test: set once, before any helper of this process runs.
    HELPER.call_once(|| unsafe { std::env::set_var(HELPER_BINARY_ENV, bin()) });
}

/// The stack's network (the demo's `<project>_mender`).
pub fn network(stack: &Stack) -> String {
    format!("{}_mender", stack.project)
}

/// Counts, content digests and featureCompatibilityVersion of the server at `host`.
pub async fn report(network: &str, host: &str) -> MongoReport {
    helper_binary();
    let d = connect().await.unwrap();
    let q = MongoQuery { uri: mongo_uri(host), dbs: vec![], counts: true, all_dbs: true, digests: true };
    read_mongo(&d, network, q).await.unwrap_or_else(|e| panic!("reading {host}: {e}"))
}

/// Per collection (migration records aside), its count and content digest.
pub fn contents(r: &MongoReport) -> BTreeMap<String, String> {
    let v = serde_json::to_value(r).unwrap();
    let mut out = BTreeMap::new();
    for db in v["databases"].as_array().unwrap() {
        for c in db["collections"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            if !name.starts_with("migration_") {
                out.insert(
                    format!("{}.{name}", db["name"].as_str().unwrap()),
                    format!("{} {}", c["count"], c["digest"]),
                );
            }
        }
    }
    out
}

/// `docker run -d` of the `mongo:<major>` stand-in named `name` on `volume`, reachable on
/// `network` as `host`. Its image declares `VOLUME /data/configdb` as mongo's does: remove the
/// container with `rm -v`, or that anonymous volume is left behind.
pub fn run_standin(name: &str, network: &str, host: &str, volume: &str, major: &str) {
    docker_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--network-alias",
        host,
        "-v",
        &format!("{volume}:/data/db"),
        &format!("{REGISTRY}/mongo:{major}"),
    ]);
}

/// The `mongo:<major>` stand-in started on `volume` beside the stack: what the volume holds.
/// Panics, with the server's last log lines, when that major does not start on it.
pub async fn read_volume(stack: &Stack, volume: &str, major: &str) -> MongoReport {
    let c = format!("{}-orig", stack.project);
    run_standin(&c, &network(stack), "orig", volume, major);
    helper_binary();
    let d = connect().await.unwrap();
    let up = wait_mongo(&d, &network(stack), "orig", Duration::from_secs(60)).await;
    let r = if up.is_ok() { Some(report(&network(stack), "orig").await) } else { None };
    let logs = std::process::Command::new("docker").args(["logs", "--tail", "20", &c]).output().unwrap();
    docker_ok(&["rm", "-f", "-v", &c]);
    r.unwrap_or_else(|| panic!("{major} does not start on {volume}: {}", String::from_utf8_lossy(&logs.stderr)))
}
