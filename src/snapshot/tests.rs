use super::*;
use crate::catalog::LoadedCatalog;
use crate::engine::container::Mount;
use crate::engine::helper::{DbReport, MongoReport};
use crate::labels::LABEL_PROJECT;

fn cat() -> Catalog {
    LoadedCatalog::embedded().unwrap().catalog
}

/// The containers of a healthy stack of `release`, images behind `prefix`.
fn stack_of(catalog: &Catalog, release: &str, prefix: &str) -> Vec<ContainerInfo> {
    let r = catalog.release(&Version::parse(release).unwrap()).unwrap();
    r.services
        .iter()
        .map(|(name, f)| {
            let mut c = ContainerInfo {
                id: format!("id-{name}"),
                name: format!("mp-{name}-1"),
                project: "mp".into(),
                service: name.clone(),
                image: format!("{prefix}{}", f.image),
                state: "running".into(),
                running: true,
                networks: vec!["mp_mender".into()],
                ..Default::default()
            };
            c.labels.insert(LABEL_PROJECT.into(), "mp".into());
            if name == "mender-deployments" {
                c.env = vec![
                    "DEPLOYMENTS_AWS_URI=http://minio:9000".into(),
                    "DEPLOYMENTS_AWS_AUTH_KEY=AKIAEXAMPLE".into(),
                    "DEPLOYMENTS_AWS_AUTH_SECRET=very-secret-value".into(),
                ];
            }
            if name == "minio" {
                c.mounts = vec![Mount {
                    kind: "volume".into(),
                    name: Some("mender-artifacts".into()),
                    source: None,
                    destination: "/export".into(),
                }];
                c.health = Some("healthy".into());
            }
            c
        })
        .collect()
}

fn healthy_report(id: &Identified<'_>, cs: &[ContainerInfo]) -> Response {
    let req = helper_request(id, cs, false);
    let r = id.release.unwrap();
    let probes = req
        .probes
        .iter()
        .map(|p| ProbeResult {
            service: p.service.clone(),
            check: p.check.clone(),
            url: p.url.clone(),
            status: Some(204),
            error: None,
            millis: 1,
        })
        .collect();
    let databases = db_states(r, &Response::default())
        .into_iter()
        .map(|d| DbReport {
            name: d.name,
            exists: true,
            migration: d.expected,
            collections: vec![],
            size_bytes: Some(1),
            born: None,
        })
        .collect();
    Response {
        probes,
        mongo: Some(MongoReport {
            reachable: true,
            version: Some("4.4.29".into()),
            fcv: Some("4.4".into()),
            databases,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn healthy_stack_is_identified_and_healthy() {
    let c = cat();
    let cs = stack_of(&c, "3.4.0", "testbed.local/");
    let id = identify(&cs, &c, Some("testbed.local"));
    assert_eq!(id.release.unwrap().version.to_string(), "3.4.0");
    let report = healthy_report(&id, &cs);
    let s = assemble("mp", &cs, &id, &report, &c, Some("testbed.local"));
    assert!(s.healthy, "{:#?}", s.services.iter().filter(|s| !s.healthy).collect::<Vec<_>>());
    assert!(s.missing.is_empty());
    assert_eq!(s.network.as_deref(), Some("mp_mender"));
    let useradm = s.databases.iter().find(|d| d.name == "useradm").unwrap();
    assert_eq!((useradm.migration.as_deref(), useradm.status), (Some("2.0.1"), SchemaStatus::Current));
    assert_eq!(s.next_hops.iter().map(|h| h.to.to_string()).collect::<Vec<_>>(), ["3.5.1", "3.6.5"]);
}

#[test]
fn probes_target_service_names_and_real_paths() {
    let c = cat();
    let cs = stack_of(&c, "3.4.0", "");
    let req = helper_request(&identify(&cs, &c, None), &cs, false);
    let urls: Vec<&str> = req.probes.iter().map(|p| p.url.as_str()).collect();
    assert!(urls.contains(&"http://mender-device-auth:8080/api/internal/v1/devauth/health"));
    assert!(urls.contains(&"http://mender-workflows-server:8080/status"));
    assert!(urls.contains(&"http://mender-workflows-server:8080/api/v1/health"));
    assert!(!urls.iter().any(|u| u.contains("workflows-worker")));
    assert_eq!(req.mongo.unwrap().uri, "mongodb://mender-mongo:27017");
}

#[test]
fn stopped_service_is_down_and_unhealthy() {
    let c = cat();
    let mut cs = stack_of(&c, "3.4.0", "");
    let inv = cs.iter_mut().find(|x| x.service == "mender-inventory").unwrap();
    inv.running = false;
    inv.state = "exited".into();
    let id = identify(&cs, &c, None);
    let mut report = healthy_report(&id, &cs);
    for p in report.probes.iter_mut().filter(|p| p.service == "mender-inventory") {
        p.status = None;
        p.error = Some("dns error".into());
    }
    let s = assemble("mp", &cs, &id, &report, &c, None);
    let inv = s.services.iter().find(|x| x.name == "mender-inventory").unwrap();
    assert!(!inv.healthy && !inv.running);
    assert!(inv.problems.iter().any(|p| p.contains("not running (exited)")));
    assert!(inv.problems.iter().any(|p| p.contains("health check failed")));
    assert!(!s.healthy);
}

#[test]
fn one_service_on_another_release_is_drift_by_name() {
    let c = cat();
    let mut cs = stack_of(&c, "3.6.5", "");
    cs.iter_mut().find(|x| x.service == "mender-useradm").unwrap().image = "mendersoftware/useradm:mender-3.4.0".into();
    cs.iter_mut().find(|x| x.service == "mender-inventory").unwrap().image =
        "mendersoftware/inventory:mender-9.9.9".into();
    let id = identify(&cs, &c, None);
    assert_eq!(id.release.unwrap().version.to_string(), "3.6.5");
    assert_eq!(id.unknown_tags, ["mendersoftware/inventory:mender-9.9.9"]);
    let s = assemble("mp", &cs, &id, &healthy_report(&id, &cs), &c, None);
    let u = s.services.iter().find(|x| x.name == "mender-useradm").unwrap();
    assert_eq!(u.drift, Some(Drift::OtherRelease { releases: vec![Version::parse("3.4.0").unwrap()] }));
    let i = s.services.iter().find(|x| x.name == "mender-inventory").unwrap();
    assert_eq!(i.drift, Some(Drift::UnknownImage));
    assert!(!s.healthy);
}

#[test]
fn schema_behind_and_ahead_are_told_apart() {
    let c = cat();
    let cs = stack_of(&c, "3.4.0", "");
    let id = identify(&cs, &c, None);
    let mut report = healthy_report(&id, &cs);
    let dbs = &mut report.mongo.as_mut().unwrap().databases;
    dbs.iter_mut().find(|d| d.name == "useradm").unwrap().migration = Some("1.1.4".into());
    dbs.iter_mut().find(|d| d.name == "deviceauth").unwrap().migration = Some("2.0.0".into());
    let s = assemble("mp", &cs, &id, &report, &c, None);
    let st = |n: &str| s.databases.iter().find(|d| d.name == n).unwrap().status;
    assert_eq!(st("useradm"), SchemaStatus::Behind);
    assert_eq!(st("deviceauth"), SchemaStatus::Ahead);
    assert!(!s.healthy);
}

#[test]
fn storage_kinds_and_no_secrets_in_json() {
    let c = cat();
    let cs = stack_of(&c, "3.4.0", "");
    let id = identify(&cs, &c, None);
    let s = assemble("mp", &cs, &id, &healthy_report(&id, &cs), &c, None);
    assert_eq!(s.storage.kind, StorageKind::Volume);
    assert_eq!(s.storage.volume.as_deref(), Some("mender-artifacts"));
    assert!(s.storage.credentials);
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("very-secret-value") && !json.contains("AKIAEXAMPLE"), "{json}");

    let mut ext = cs.clone();
    ext.iter_mut().find(|x| x.service == "mender-deployments").unwrap().env = vec![
        "DEPLOYMENTS_AWS_URI=https://user:pw@s3.eu-west-1.amazonaws.com".into(),
        "DEPLOYMENTS_STORAGE_BUCKET=artifacts".into(),
    ];
    let st = storage::from_containers(&ext, id.release);
    assert_eq!(st.kind, StorageKind::S3);
    assert_eq!(st.endpoint.as_deref(), Some("https://s3.eu-west-1.amazonaws.com"));
    assert!(!st.credentials);

    // 3.0–3.2: deployments reaches MinIO through the gateway, by the storage domain (its alias).
    let mut old = stack_of(&c, "3.2.2", "");
    old.iter_mut().find(|x| x.service == "mender-api-gateway").unwrap().aliases = vec!["s3.example.com".into()];
    old.iter_mut().find(|x| x.service == "mender-deployments").unwrap().env =
        vec!["DEPLOYMENTS_AWS_URI=https://s3.example.com".into()];
    let st = storage::from_containers(&old, c.release(&Version::parse("3.2.2").unwrap()));
    assert_eq!((st.kind, st.service.as_deref()), (StorageKind::Volume, Some("minio")));
    assert_eq!(st.endpoint.as_deref(), Some("http://minio:9000"));
    assert_eq!(st.volume.as_deref(), Some("mender-artifacts"));

    let mut az = cs.clone();
    az.iter_mut().find(|x| x.service == "mender-deployments").unwrap().env = vec![
        "DEPLOYMENTS_STORAGE_DEFAULT=azure".into(),
        "DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING=AccountName=acct;AccountKey=c2VjcmV0;BlobEndpoint=http://azurite:10000/acct".into(),
    ];
    let st = storage::from_containers(&az, id.release);
    assert_eq!((st.kind, st.account.as_deref()), (StorageKind::Azure, Some("acct")));
    assert!(!serde_json::to_string(&st).unwrap().contains("c2VjcmV0"));
}

#[test]
fn unreachable_mongo_makes_the_stack_unhealthy() {
    let c = cat();
    let cs = stack_of(&c, "3.4.0", "");
    let id = identify(&cs, &c, None);
    let mut report = healthy_report(&id, &cs);
    report.mongo =
        Some(MongoReport { reachable: false, error: Some("connection refused".into()), ..Default::default() });
    let s = assemble("mp", &cs, &id, &report, &c, None);
    assert!(!s.healthy);
    assert!(s.databases.iter().all(|d| d.status == SchemaStatus::Unknown));
}

#[test]
fn each_service_is_reached_on_its_own_network_whatever_else_the_project_has() {
    let c = cat();
    let mut cs = stack_of(&c, "3.4.0", "testbed.local/");
    // An operator's exporter without `networks:` (compose gives it `mp_default`, which sorts
    // before `mp_mender`), mongo and the store also on an external backend network, and the
    // gateway on a gateway-only network besides.
    let mut extra = cs[0].clone();
    extra.service = "exporter".into();
    extra.networks = vec!["mp_default".into()];
    cs.insert(0, extra);
    for x in cs.iter_mut() {
        match x.service.as_str() {
            "mender-mongo" | "minio" => x.networks = vec!["backend".into()],
            "mender-api-gateway" => x.networks = vec!["mp_front".into(), "mp_mender".into()],
            _ => {}
        }
    }
    let id = identify(&cs, &c, Some("testbed.local"));
    let s = assemble("mp", &cs, &id, &healthy_report(&id, &cs), &c, Some("testbed.local"));
    assert_eq!(s.network.as_deref(), Some("backend"), "MongoDB's network, not the first project network");
    assert_eq!(s.network_of("mender-api-gateway").as_deref(), Some("mp_front"), "either of its own: the first");
    assert_eq!(s.networks_for(&["mender-useradm", "mender-api-gateway"]), ["mp_mender"], "a shared one is reused");
    assert_eq!(s.network_of("exporter").as_deref(), Some("mp_default"));
    assert_eq!(s.network_of("no-such-service"), None);
    assert_eq!(
        s.networks_for(&["mender-mongo", "minio", "mender-deployments", "mender-useradm"]),
        ["backend", "mp_mender"]
    );
}

#[test]
fn a_mongo_refusing_its_data_is_explained_in_its_problems_and_in_json() {
    let c = cat();
    let mut cs = stack_of(&c, "3.6.5", "testbed.local/");
    let fatal = r#"{"t":{"$date":"2026-12-01T09:00:00.100Z"},"s":"F",  "c":"CONTROL",  "id":20573,   "ctx":"initandlisten","msg":"Wrong mongod version","attr":{"error":"UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document (ERROR: Location4926900: Invalid featureCompatibilityVersion document in admin.system.version: { _id: \"featureCompatibilityVersion\", version: \"4.4\" }. See https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility. :: caused by :: Invalid feature compatibility version value, expected '5.0' or '5.3' or '6.0. See https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility.). If the current featureCompatibilityVersion is below 5.0, see the documentation on upgrading at https://docs.mongodb.com/master/release-notes/5.0/#upgrade-procedures."}}"#;
    let id = identify(&cs, &c, Some("testbed.local"));
    let mut report = healthy_report(&id, &cs);
    report.mongo =
        Some(MongoReport { reachable: false, error: Some("server selection timeout".into()), ..Default::default() });
    let mongo = cs.iter_mut().find(|x| x.service == "mender-mongo").unwrap();
    mongo.image = "testbed.local/mongo:6.0".into();
    (mongo.state, mongo.restarting, mongo.restart_count, mongo.exit_code) = ("restarting".into(), true, 4, Some(62));
    mongo.log_tail = Some(format!("{fatal}\n"));
    let s = assemble("mp", &cs, &id, &report, &c, Some("testbed.local"));
    assert!(!s.healthy);
    let m = s.mongo.as_ref().unwrap();
    let r = m.refusal.as_ref().expect("a refusal");
    assert_eq!((r.data_fcv.as_deref(), r.server_major.as_deref()), (Some("4.4"), Some("6.0")));
    let svc = s.services.iter().find(|x| x.name == "mender-mongo").unwrap();
    assert!(svc.problems.contains(&r.message), "{:?}", svc.problems);
    assert!(r.message.contains("(testbed.local/mongo:4.4)"), "{}", r.message);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["mongo"]["refusal"]["kind"], "too-old");
    assert_eq!(json["mongo"]["refusal"]["data_fcv"], "4.4");
    assert_eq!(json["mongo"]["refusal"]["exit_code"], 62);

    // Without its log line, the same exit is a refusal in general words; another exit is none.
    let mongo = cs.iter_mut().find(|x| x.service == "mender-mongo").unwrap();
    mongo.log_tail = None;
    let s = assemble("mp", &cs, &id, &report, &c, Some("testbed.local"));
    assert_eq!(s.mongo.as_ref().unwrap().refusal.as_ref().unwrap().kind, RefusalKind::Unknown);
    let mongo = cs.iter_mut().find(|x| x.service == "mender-mongo").unwrap();
    mongo.exit_code = Some(1);
    let s = assemble("mp", &cs, &id, &report, &c, Some("testbed.local"));
    assert!(s.mongo.as_ref().unwrap().refusal.is_none());
}
