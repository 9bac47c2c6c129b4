//! The health gates a hop must pass, and that an upgrade checks before it starts: the release
//! runs, every container runs without restarting and is healthy (Docker health and the HTTP
//! `alive`/`health` URLs), every database's `migration_info` is what the release needs, and every
//! container is what compose would create now (its config-hash).

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::labels::{LABEL_COMPOSE_VERSION, LABEL_CONFIG_HASH};
use crate::snapshot::{ContainerInfo, SchemaStatus, Stack};

/// Whether a stack passed its gates, and every reason it did not.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GateResult {
    /// No failure.
    pub passed: bool,
    /// One line per failed check (`mender-deployments: health check failed: HTTP 503`).
    pub failures: Vec<String>,
}

/// `service hash` lines of `docker compose config --hash '*'`.
pub fn parse_hashes(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(s, h)| (s.trim().to_string(), h.trim().to_string()))
        .collect()
}

/// The gates of a stack that should run `target`: the release, every service healthy and present,
/// MongoDB reachable, every schema current, and every container's `com.docker.compose.config-hash`
/// equal to `hashes` (from `docker compose config --hash '*'`; an empty map skips that check).
pub fn evaluate(
    stack: &Stack,
    target: &Version,
    containers: &[ContainerInfo],
    hashes: &BTreeMap<String, String>,
) -> GateResult {
    let mut failures = Vec::new();
    match &stack.release {
        Some(v) if v == target => {}
        Some(v) => failures.push(format!("the stack runs {v}, not {target}")),
        None => failures.push(format!("the stack's release is unknown (expected {target})")),
    }
    for s in stack.services.iter().filter(|s| !s.healthy) {
        failures.push(format!("{}: {}", s.name, s.problems.join("; ")));
    }
    failures.extend(stack.missing.iter().map(|m| format!("{m}: no container")));
    if let Some(m) = stack.mongo.as_ref().filter(|m| !m.reachable) {
        failures.push(format!("{}: MongoDB unreachable: {}", m.service, m.error.clone().unwrap_or_default()));
    }
    for d in stack.databases.iter().filter(|d| d.status != SchemaStatus::Current) {
        failures.push(format!(
            "database {}: migration_info {} but {target} needs {}",
            d.name,
            d.migration.clone().unwrap_or_else(|| "none".into()),
            d.expected.clone().unwrap_or_default()
        ));
    }
    for c in containers {
        match (c.label(LABEL_CONFIG_HASH), hashes.get(&c.service)) {
            // Compose v1 hashes the configuration differently: the first hop recreates the
            // container under Compose v2, whose hash it then carries.
            (Some(_), Some(_)) if created_by_compose_v1(c) => {}
            (Some(have), Some(want)) if have != want => failures.push(format!(
                "{}: the container differs from the compose files (config-hash), compose would recreate it",
                c.service
            )),
            (_, None) if !hashes.is_empty() => failures.push(format!("{}: not in the compose files", c.service)),
            _ => {}
        }
    }
    GateResult { passed: failures.is_empty(), failures }
}

/// The container was created by Compose v1 (`com.docker.compose.version` 1.x: `docker-compose`
/// 1.29.2, which Mender 3.x's `production/run` calls on hosts of that era).
pub fn created_by_compose_v1(c: &ContainerInfo) -> bool {
    c.label(LABEL_COMPOSE_VERSION).is_some_and(|v| v.starts_with("1."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{DbState, ServiceState};

    fn stack(release: &str) -> Stack {
        Stack {
            project: "p".into(),
            working_dir: None,
            config_files: vec![],
            network: None,
            networks: Default::default(),
            release: Some(Version::parse(release).unwrap()),
            unknown_tags: vec![],
            services: vec![],
            missing: vec![],
            mongo: None,
            databases: vec![],
            storage: crate::snapshot::Storage {
                kind: crate::snapshot::StorageKind::Unknown,
                service: None,
                volume: None,
                endpoint: None,
                bucket: None,
                region: None,
                account: None,
                credentials: false,
            },
            next_hops: vec![],
            healthy: true,
        }
    }

    fn container(service: &str, hash: &str) -> ContainerInfo {
        let mut c = ContainerInfo { service: service.into(), ..Default::default() };
        c.labels.insert(LABEL_CONFIG_HASH.into(), hash.into());
        c
    }

    #[test]
    fn hashes_parse_from_compose_output() {
        let h = parse_hashes("mender-mongo 0a1b\nminio ff00\n");
        assert_eq!(h["mender-mongo"], "0a1b");
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn each_failure_is_named() {
        let v = Version::parse("3.6.5").unwrap();
        assert!(evaluate(&stack("3.6.5"), &v, &[container("a", "1")], &parse_hashes("a 1")).passed);
        let mut s = stack("3.4.0");
        s.services.push(ServiceState {
            name: "mender-useradm".into(),
            role: None,
            container: "c".into(),
            image: "i".into(),
            image_releases: vec![],
            expected_image: None,
            drift: None,
            state: "running".into(),
            running: true,
            restarting: false,
            restarts: 0,
            docker_health: None,
            http: vec![],
            healthy: false,
            problems: vec!["health check failed: HTTP 503".into()],
        });
        s.databases.push(DbState {
            name: "useradm".into(),
            services: vec![],
            exists: true,
            migration: Some("2.0.1".into()),
            expected: Some("2.0.3".into()),
            status: SchemaStatus::Behind,
            size_bytes: None,
            born: None,
        });
        let r = evaluate(&s, &v, &[container("a", "1"), container("b", "2")], &parse_hashes("a 9"));
        assert!(!r.passed);
        let all = r.failures.join("\n");
        for needle in [
            "runs 3.4.0, not 3.6.5",
            "mender-useradm: health check failed: HTTP 503",
            "migration_info 2.0.1 but 3.6.5 needs 2.0.3",
            "a: the container differs",
            "b: not in the compose files",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
    }

    #[test]
    fn a_compose_v1_container_is_not_held_to_the_v2_hash() {
        let v = Version::parse("3.6.5").unwrap();
        let mut v1 = container("a", "v1-hash");
        v1.labels.insert(LABEL_COMPOSE_VERSION.into(), "1.29.2".into());
        assert!(created_by_compose_v1(&v1));
        assert!(evaluate(&stack("3.6.5"), &v, &[v1], &parse_hashes("a v2-hash")).passed);
        let mut v2 = container("a", "old");
        v2.labels.insert(LABEL_COMPOSE_VERSION.into(), "2.40.3".into());
        assert!(!created_by_compose_v1(&v2));
        assert!(!evaluate(&stack("3.6.5"), &v, &[v2], &parse_hashes("a new")).passed);
    }
}
