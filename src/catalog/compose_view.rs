//! A 4.x release as an operator's compose project runs it: the 3.x production layout kept
//! ("Variant A" of `shared/reference/migrate-3.7-to-4.x.md` §0.2 and §1.3) with the 4.x images.
//!
//! `releases.yaml` records each 4.x patch in upstream's own layout (mender-server@v4.0.4:
//! docker-compose.yml: project `mender`, services `deployments`, …, SeaweedFS). No upstream
//! production compose exists for 4.x (mender-docs@311b67d8:09.Server-installation/01.Overview), and
//! the tool keeps an operator's project as it is: the same project name, the same `mender-*` service
//! names (each 4.x name kept as a network alias, because 4.x env values use them), the same
//! external volumes and MinIO (mendersoftware/integration@645610e0:docker-compose.storage.minio.yml
//! runs the 4.x images against the 2021 MinIO). This module derives that view from upstream's facts,
//! purely, so that plans, rewrites and health gates speak of the services the operator has.

use std::collections::BTreeMap;

use super::{Layout, Release, Role, ServiceFacts};

/// Release `r` in the production layout of `kept`, the last 3.x release (3.7.11): every 4.x service
/// under the 3.x name it continues (`was`), with its 4.x name as `alias`; upstream's storage
/// services (SeaweedFS) replaced by `kept`'s (MinIO); `kept`'s project and compose files. A
/// release already in a 3.x layout is returned unchanged.
pub fn production_compose(r: &Release, kept: &Release) -> Release {
    if r.layout != Layout::MenderServer4x {
        return r.clone();
    }
    let mut services: BTreeMap<String, ServiceFacts> = BTreeMap::new();
    for (name, f) in &r.services {
        if f.role == Role::Storage {
            continue;
        }
        let (key, alias) = match &f.was {
            Some(old) => (old.clone(), Some(name.clone())),
            None => (name.clone(), None),
        };
        services.insert(key, ServiceFacts { was: None, alias, ..f.clone() });
    }
    for (name, f) in kept.services.iter().filter(|(_, f)| f.role == Role::Storage) {
        services.insert(name.clone(), f.clone());
    }
    let mongo_service =
        r.services.get(&r.mongo.service).and_then(|f| f.was.clone()).unwrap_or_else(|| kept.mongo.service.clone());
    Release {
        layout: Layout::Production4x,
        project: kept.project.clone(),
        compose_files: kept.compose_files.clone(),
        mongo: super::MongoFacts { service: mongo_service, major: r.mongo.major.clone() },
        services,
        ..r.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::LoadedCatalog;
    use semver::Version;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn a_4x_release_keeps_the_operators_names_volumes_and_minio() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        let (old, new) = (c.release(&v("3.7.11")).unwrap(), c.release(&v("4.0.4")).unwrap());
        assert_eq!(new.layout, Layout::Production4x);
        assert_eq!(new.project, "menderproduction");
        assert_eq!(new.compose_files, old.compose_files);
        let names: Vec<&String> = new.services.keys().collect();
        let old_names: Vec<&String> = old.services.keys().collect();
        assert_eq!(names, old_names, "the same compose services as 3.7.11");
        assert_eq!(new.mongo.service, "mender-mongo");
        assert_eq!(new.mongo.major, "7.0");
        let d = &new.services["mender-device-auth"];
        assert_eq!(d.image, "mendersoftware/deviceauth:v4.0.4");
        assert_eq!(d.alias.as_deref(), Some("deviceauth"));
        assert_eq!(d.was, None);
        let w = &new.services["mender-workflows-worker"];
        assert_eq!(w.image, "mendersoftware/workflows:v4.0.4", "the worker runs the workflows image");
        assert_eq!(w.command.as_deref(), Some(&["worker".to_string()][..]));
        assert_eq!(new.services["minio"], old.services["minio"], "MinIO kept as it is");
        assert!(!new.services.values().any(|f| f.image.contains("seaweedfs")));
        assert_eq!(new.services["mender-api-gateway"].image, "traefik:v3.6.10");
        assert_eq!(c.release(&v("4.1.3")).unwrap().services["mender-api-gateway"].image, "traefik:v3.7.1");
    }

    #[test]
    fn a_3x_release_is_unchanged() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        let r = c.release(&v("3.6.5")).unwrap();
        let same = production_compose(r, c.release(&v("3.7.11")).unwrap());
        assert_eq!(same.services, r.services);
        assert_eq!(same.layout, Layout::Integration3x);
    }
}
