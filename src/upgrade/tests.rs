//! The hop and rollback orchestration against a fake runtime: no daemon, the real catalog, real
//! compose files on disk (the rewrite step edits them, a rollback puts them back), and a fake
//! stack whose release is whatever the compose files on disk say after `up`. What this proves is
//! the decisions (which steps run, which rollback class, what is restored); the real-daemon tests
//! in `tests/upgrade.rs` stay the proof that upgrades work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::{Arc, atomic::AtomicU64};

use async_trait::async_trait;
use semver::Version;

use super::runtime::Runtime;
use super::{Ctx, ProjectRecord, Run, Step, UpgradeError, UpgradeJournal, UpgradeState, continue_hops};
use crate::backup::dump::{DumpError, DumpSource, Dumped};
use crate::backup::quiesce::QuiesceError;
use crate::backup::restore::{MongoTarget, RestoreError};
use crate::catalog::{ImageRef, LoadedCatalog};
use crate::engine::compose::ComposeError;
use crate::engine::container::ContainerInfo;
use crate::engine::helper::{DbReport, MongoReport, ProbeResult, Request, Response};
use crate::engine::sidecar::{Helper, SidecarError};
use crate::labels::{LABEL_CONFIG_HASH, LABEL_PROJECT, LABEL_SERVICE};
use crate::progress::Progress;
use crate::snapshot::observe::{ObserveError, Observed};
use crate::snapshot::smoke::{SmokeCheck, SmokeReport};
use crate::snapshot::{assemble, identify};
use crate::state::{Journal, Owner, StateDir, StoppedService};

const PROJECT: &str = "menderproduction";

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// What the fake stack is and what was done to it.
#[derive(Default)]
struct World {
    /// Each database's migration_info.
    migrations: BTreeMap<String, Option<String>>,
    /// What the pre-hop dump holds.
    dumped: Option<BTreeMap<String, Option<String>>>,
    /// The images the containers run, per service (set by `up` from the files on disk).
    images: BTreeMap<String, String>,
    /// Every call, in order.
    calls: Vec<String>,
    /// Compose commands (joined args) that fail, each once.
    fail: Vec<String>,
    /// `migrate` runs but changes no schema.
    migrate_noop: bool,
    /// Services whose health check fails while they run these images.
    unhealthy_images: BTreeSet<String>,
    dump_fails: bool,
    /// The featureCompatibilityVersion of the data mongo runs on.
    fcv: String,
    /// The daemon stops answering when a compose command fails (a daemon stopped mid-hop).
    daemon_gone: bool,
    /// Images with which the gateway no longer routes the management API: the smoke check
    /// fails while any of them runs (every service still healthy on its own).
    smoke_fails_with: BTreeSet<String>,
    /// Host files mounted as deviceauth's signing key while it runs each image.
    key_files: BTreeMap<String, PathBuf>,
}

struct Fake<'a> {
    catalog: &'a LoadedCatalog,
    dir: PathBuf,
    world: Mutex<World>,
}

impl Fake<'_> {
    fn call(&self, c: impl Into<String>) {
        self.world.lock().unwrap().calls.push(c.into());
    }

    fn calls(&self) -> Vec<String> {
        self.world.lock().unwrap().calls.clone()
    }

    /// The images the project's compose files name now (later files override earlier ones).
    fn images_on_disk(&self, project: &ProjectRecord) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for f in &project.config_files {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_default();
            for (name, svc) in doc["services"].as_object().into_iter().flatten() {
                if let Some(image) = svc["image"].as_str() {
                    out.insert(name.clone(), image.to_string());
                }
            }
        }
        out
    }

    fn mongo_report(&self) -> MongoReport {
        let w = self.world.lock().unwrap();
        MongoReport {
            reachable: true,
            fcv: Some(w.fcv.clone()),
            databases: w
                .migrations
                .iter()
                .map(|(name, m)| DbReport {
                    name: name.clone(),
                    exists: true,
                    migration: m.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

#[async_trait]
impl Helper for Fake<'_> {
    async fn helper(&self, _network: &str, request: &Request) -> Result<Response, SidecarError> {
        if let Some(job) = &request.fcv {
            self.call(format!("fcv {}", job.set));
            let mut w = self.world.lock().unwrap();
            if w.fcv != job.require && w.fcv != job.set {
                return Ok(Response { fcv: Some(Err(format!("FCV is {}", w.fcv))), ..Default::default() });
            }
            w.fcv = job.set.clone();
            return Ok(Response {
                fcv: Some(Ok(format!("featureCompatibilityVersion {}", job.set))),
                ..Default::default()
            });
        }
        Ok(Response { mongo: Some(self.mongo_report()), ..Default::default() })
    }
}

#[async_trait]
impl Runtime for Fake<'_> {
    async fn compose(&self, project: &ProjectRecord, args: &[&str]) -> Result<String, ComposeError> {
        let joined = args.join(" ");
        self.call(format!("compose {joined}"));
        {
            let mut w = self.world.lock().unwrap();
            if let Some(i) = w.fail.iter().position(|f| *f == joined) {
                w.fail.remove(i);
                return Err(ComposeError::Failed { command: joined, code: 1, stderr: "scripted failure".into() });
            }
        }
        match args {
            ["config", "--hash", ..] => {
                Ok(self.world.lock().unwrap().images.keys().map(|s| format!("{s} hash-{s}\n")).collect())
            }
            ["up", "-d", "--no-deps", svc] => {
                let image = self.images_on_disk(project).get(*svc).cloned();
                if let Some(image) = image {
                    self.world.lock().unwrap().images.insert(svc.to_string(), image);
                }
                Ok(String::new())
            }
            ["up", "-d", ..] => {
                let images = self.images_on_disk(project);
                self.world.lock().unwrap().images = images;
                Ok(String::new())
            }
            ["run", "--rm", "--no-deps", "-T", svc, ..] => {
                let images = self.images_on_disk(project);
                let release = self
                    .catalog
                    .catalog
                    .releases
                    .iter()
                    .find(|r| r.services.get(*svc).is_some_and(|f| Some(&f.image) == images.get(*svc)))
                    .expect("the migrating image is a catalog release's");
                let facts = &release.services[*svc];
                let mut w = self.world.lock().unwrap();
                if !w.migrate_noop {
                    let db = facts.db.clone().unwrap();
                    let schema = release
                        .services
                        .values()
                        .filter(|f| f.db.as_ref() == Some(&db))
                        .filter_map(|f| f.schema.clone())
                        .max();
                    w.migrations.insert(db, schema.map(|s| s.to_string()));
                }
                Ok(String::new())
            }
            _ => Ok(String::new()),
        }
    }

    async fn observe(&self, project: &str) -> Result<Observed, ObserveError> {
        let (images, unhealthy, key_files) = {
            let w = self.world.lock().unwrap();
            (w.images.clone(), w.unhealthy_images.clone(), w.key_files.clone())
        };
        let containers: Vec<ContainerInfo> = images
            .iter()
            .map(|(service, image)| {
                let mut c = ContainerInfo {
                    id: format!("id-{service}"),
                    name: format!("{project}-{service}-1"),
                    project: project.into(),
                    service: service.clone(),
                    image: image.clone(),
                    state: "running".into(),
                    running: true,
                    networks: vec![format!("{project}_mender")],
                    ..Default::default()
                };
                c.labels.insert(LABEL_PROJECT.into(), project.into());
                c.labels.insert(LABEL_SERVICE.into(), service.clone());
                c.labels.insert(LABEL_CONFIG_HASH.into(), format!("hash-{service}"));
                if let Some(key) = key_files.get(image) {
                    c.mounts.push(crate::engine::container::Mount {
                        kind: "bind".into(),
                        name: None,
                        source: Some(key.to_string_lossy().into_owned()),
                        destination: "/etc/deviceauth/rsa/private.pem".into(),
                    });
                }
                c
            })
            .collect();
        let catalog = &self.catalog.catalog;
        let id = identify(&containers, catalog, None);
        let probes = id
            .release
            .map(|r| {
                r.services
                    .iter()
                    .filter(|(_, f)| f.health.is_some())
                    .map(|(s, _)| {
                        let bad = images.get(s).is_some_and(|i| unhealthy.contains(i));
                        ProbeResult {
                            service: s.clone(),
                            check: "health".into(),
                            url: String::new(),
                            status: Some(if bad { 503 } else { 200 }),
                            error: None,
                            millis: 1,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let report = Response { probes, mongo: Some(self.mongo_report()), ..Default::default() };
        let stack = assemble(project, &containers, &id, &report, catalog, None);
        Ok(Observed { stack, containers })
    }

    async fn stop(&self, services: &[StoppedService], _grace: i32) -> Result<(), QuiesceError> {
        self.call(format!("stop {}", services.len()));
        Ok(())
    }

    async fn start(&self, services: &[StoppedService]) -> Vec<String> {
        self.call(format!("start {}", services.len()));
        vec![]
    }

    async fn dump(
        &self,
        _source: &DumpSource<'_>,
        archive: PathBuf,
        _written: Arc<AtomicU64>,
    ) -> Result<Dumped, DumpError> {
        self.call("dump");
        let mut w = self.world.lock().unwrap();
        if w.dump_fails {
            return Err(DumpError::Write(std::io::Error::other("scripted: the disk is full")));
        }
        std::fs::write(&archive, b"archive").map_err(DumpError::Write)?;
        w.dumped = Some(w.migrations.clone());
        Ok(Dumped { sha256: String::new(), size: 7, raw_bytes: 7, summary: Default::default() })
    }

    async fn restore(
        &self,
        dir: &Path,
        _target: &MongoTarget<'_>,
        _ferretdb: bool,
        _read: Arc<AtomicU64>,
    ) -> Result<String, RestoreError> {
        self.call("restore");
        assert!(dir.join("mongo.archive.gz").exists(), "the restore reads the hop's own dump");
        let mut w = self.world.lock().unwrap();
        w.migrations = w.dumped.clone().expect("a dump to restore");
        Ok(String::new())
    }

    async fn copy_volume(&self, from: &str, to: &str) -> Result<crate::engine::helper::TreeCopied, SidecarError> {
        self.call(format!("copy {from} {to}"));
        Ok(Default::default())
    }

    async fn answers(&self) -> bool {
        !self.world.lock().unwrap().daemon_gone
    }

    async fn smoke(&self, _observed: &crate::snapshot::observe::Observed) -> SmokeReport {
        self.call("smoke");
        let w = self.world.lock().unwrap();
        let broken = w.images.values().any(|i| w.smoke_fails_with.contains(i));
        let management = SmokeCheck {
            name: "management".into(),
            url: "https://docker.mender.io/api/management/v1/useradm/auth/login".into(),
            status: Some(if broken { 404 } else { 401 }),
            passed: !broken,
            problem: broken.then(|| "HTTP 404 from the gateway: no route matches".to_string()),
            ..Default::default()
        };
        SmokeReport {
            gateway: Some("mender-api-gateway".into()),
            passed: !broken,
            checks: vec![management],
            ..Default::default()
        }
    }
}

/// A stack at `from`: its base compose files on disk, its images running, its databases at the
/// schema versions `from` needs.
struct Setup {
    _tmp: tempfile::TempDir,
    project_dir: PathBuf,
    state: StateDir,
    catalog: LoadedCatalog,
}

impl Setup {
    fn new(from: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let project_dir = tmp.path().join("mender-server");
        let catalog = LoadedCatalog::embedded().unwrap();
        for t in catalog.template_files(&v(from)).unwrap() {
            let text = super::rewrite::render(&t, None).unwrap();
            let path = project_dir.join(&t.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let state = StateDir::new(tmp.path().join("state"));
        Setup { _tmp: tmp, project_dir, state, catalog }
    }

    /// The production override of the template, as `prod.yml` (its external `mender-db` volume).
    fn with_prod(self) -> Setup {
        let t = std::fs::read_to_string(self.project_dir.join("production/config/prod.yml.template")).unwrap();
        std::fs::write(self.project_dir.join("prod.yml"), t).unwrap();
        self
    }

    fn project(&self) -> ProjectRecord {
        let prod = self.project_dir.join("prod.yml").exists().then_some("prod.yml");
        ProjectRecord {
            name: PROJECT.into(),
            working_dir: self.project_dir.clone(),
            config_files: ["docker-compose.yml", "docker-compose.storage.minio.yml"]
                .into_iter()
                .chain(prod)
                .map(|f| self.project_dir.join(f))
                .collect(),
            env_files: vec![],
            staging: None,
        }
    }

    fn fake(&self, from: &str) -> Fake<'_> {
        let release = self.catalog.catalog.release(&v(from)).unwrap();
        let mut world = World { fcv: release.mongo.major.clone(), ..Default::default() };
        for (name, f) in &release.services {
            world.images.insert(name.clone(), ImageRef::parse(&f.image, None).to_string());
            if let Some(db) = &f.db {
                let schema = release
                    .services
                    .values()
                    .filter(|g| g.db.as_ref() == Some(db))
                    .filter_map(|g| g.schema.clone())
                    .max();
                world.migrations.insert(db.clone(), schema.map(|s| s.to_string()));
            }
        }
        Fake { catalog: &self.catalog, dir: self.project_dir.clone(), world: Mutex::new(world) }
    }

    fn journal(&self, from: &str, to: &str) -> UpgradeJournal {
        let plan = crate::plan::plan(
            &crate::plan::Start { release: v(from), drift: vec![], mongo: None },
            &self.catalog.catalog,
            &v(to),
        )
        .unwrap();
        let mut j = Journal::new("upgrade", &Owner::me("upgrade"));
        j.payload = Some(UpgradeState {
            run_dir: self.state.root.join("upgrades/run"),
            plan,
            hop: 0,
            done: vec![],
            before: BTreeMap::new(),
            dump_image: None,
            project: self.project(),
            timings: vec![],
            registry: None,
            bundle: None,
            rollback_to: None,
            rollback_until: None,
            restore_begun: false,
            accept_new_keys: false,
        });
        j
    }

    fn files(&self) -> BTreeMap<PathBuf, String> {
        crate::util::list_files(&self.project_dir)
            .unwrap()
            .into_iter()
            .map(|p| (p.clone(), std::fs::read_to_string(self.project_dir.join(p)).unwrap()))
            .collect()
    }
}

fn ctx<'a>(s: &'a Setup, rt: &'a dyn Runtime, progress: &'a Progress) -> Ctx<'a> {
    static YES: fn(&str) -> bool = |_| true;
    // Never called: hops and rollbacks reach the stack through the runtime only.
    let docker: &'static bollard::Docker = Box::leak(Box::new(
        bollard::Docker::connect_with_http("http://127.0.0.1:9", 1, bollard::API_DEFAULT_VERSION).unwrap(),
    ));
    Ctx {
        docker,
        runtime: rt,
        catalog: &s.catalog,
        state: &s.state,
        registry: None,
        progress,
        hop_timeout: std::time::Duration::from_secs(30),
        grace: 1,
        confirm: &YES,
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_up_after_migrations_restores_the_pre_hop_dump_and_the_files() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    let before_files = s.files();
    let before_data = fake.world.lock().unwrap().migrations.clone();
    fake.world.lock().unwrap().fail.push("up -d".into());
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    let err = continue_hops(&ctx, &mut run).await.unwrap_err();
    assert!(err.to_string().starts_with("hop 3.4.0 → 3.6.5 failed at step up: "), "{err}");
    match &err {
        UpgradeError::RolledBack { at, how, hop } => {
            assert_eq!(at, &v("3.4.0"));
            assert!(how.contains("data restore"), "{how}");
            assert_eq!(hop.point.to_string(), "up");
            assert_eq!(hop.stage, None);
        }
        other => panic!("{other}"),
    }
    let calls = fake.calls();
    let migrated = calls.iter().position(|c| c.starts_with("compose run --rm --no-deps -T")).unwrap();
    let restored = calls.iter().position(|c| c == "restore").unwrap();
    assert!(migrated < restored, "{calls:?}");
    assert!(calls[..migrated].iter().any(|c| c == "dump"), "the dump comes before any migration: {calls:?}");
    assert_eq!(fake.world.lock().unwrap().migrations, before_data, "the databases are as before the hop");
    assert_eq!(s.files(), before_files, "the compose files are byte for byte as before the hop");
    assert!(s.state.journal::<serde_json::Value>(PROJECT).is_none(), "a clean rollback ends the journal");
}

#[tokio::test(start_paused = true)]
async fn a_daemon_gone_mid_hop_is_not_rolled_back_and_keeps_the_journal() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    {
        let mut w = fake.world.lock().unwrap();
        w.fail.push("up -d".into());
        w.daemon_gone = true;
    }
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    match continue_hops(&ctx, &mut run).await.unwrap_err() {
        UpgradeError::DaemonLost { hop, project } => {
            assert_eq!(hop.point.to_string(), "up");
            assert_eq!(project, PROJECT);
        }
        other => panic!("{other}"),
    }
    let calls = fake.calls();
    assert!(!calls.contains(&"restore".to_string()), "nothing rolled back: {calls:?}");
    let up = calls.iter().position(|c| c == "compose up -d").unwrap();
    assert_eq!(calls.len(), up + 1, "nothing after the failed up: {calls:?}");
    let journal = s.state.journal::<UpgradeState>(PROJECT).expect("the journal is kept for resume");
    assert_eq!(journal.operation, "upgrade", "resume carries it on");
    let st = journal.payload.unwrap();
    assert!(st.done.contains(&Step::Migrate) && !st.done.contains(&Step::Up), "{:?}", st.done);
}

#[tokio::test(start_paused = true)]
async fn a_failed_gate_with_no_database_moved_is_undone_by_image_swap() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    let before_files = s.files();
    {
        let mut w = fake.world.lock().unwrap();
        w.migrate_noop = true;
        w.unhealthy_images.insert("mendersoftware/useradm:mender-3.6.5".into());
    }
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    match continue_hops(&ctx, &mut run).await.unwrap_err() {
        UpgradeError::RolledBack { how, hop, .. } => {
            assert!(how.contains("image swap"), "{how}");
            assert_eq!(hop.point.to_string(), "gates");
            assert!(hop.error.to_string().contains("mender-useradm"), "{}", hop.error);
        }
        other => panic!("{other}"),
    }
    assert!(
        !fake.calls().contains(&"restore".to_string()),
        "no data restore without a moved database: {:?}",
        fake.calls()
    );
    assert_eq!(s.files(), before_files);
}

/// A hop after which every service answers on its own but the gateway no longer routes the
/// management API is rolled back, the smoke check's failure named.
#[tokio::test(start_paused = true)]
async fn a_hop_that_breaks_the_gateway_route_is_rolled_back() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    let before_files = s.files();
    {
        let mut w = fake.world.lock().unwrap();
        w.smoke_fails_with.insert("mendersoftware/useradm:mender-3.6.5".into());
    }
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    match continue_hops(&ctx, &mut run).await.unwrap_err() {
        UpgradeError::RolledBack { hop, .. } => {
            assert_eq!(hop.point.to_string(), "gates");
            let e = hop.error.to_string();
            assert!(
                e.contains("smoke check management (https://docker.mender.io/api/management/v1/useradm/auth/login)"),
                "{e}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.files(), before_files);
    assert!(fake.calls().iter().filter(|c| *c == "smoke").count() >= 2, "checked after the hop and after the rollback");
}

/// A healthy hop runs the smoke check once: the poll that confirms the gates (the same
/// containers, none restarted) does not run its sidecars again.
#[tokio::test(start_paused = true)]
async fn a_healthy_hop_runs_the_smoke_check_once() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    continue_hops(&ctx, &mut run).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|c| *c == "smoke").count(), 1, "{calls:?}");
    let after_smoke = calls.iter().skip_while(|c| *c != "smoke").filter(|c| c.contains("config --hash")).count();
    assert!(after_smoke >= 1, "the gates were confirmed by another poll: {calls:?}");
}

/// A hop whose release mounts another deviceauth signing key than the bundle recorded: every
/// device would have to authenticate again, so it is rolled back, unless the operator accepts it.
#[tokio::test(start_paused = true)]
async fn a_hop_that_changes_a_signing_key_is_rolled_back_unless_accepted() {
    for accept in [false, true] {
        let s = Setup::new("3.4.0");
        let fake = s.fake("3.4.0");
        let keys = s.project_dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let (old, new) = (keys.join("old.pem"), keys.join("new.pem"));
        std::fs::write(&old, "-----BEGIN PRIVATE KEY-----\nold\n").unwrap();
        std::fs::write(&new, "-----BEGIN PRIVATE KEY-----\nnew\n").unwrap();
        {
            let mut w = fake.world.lock().unwrap();
            w.key_files.insert("mendersoftware/deviceauth:mender-3.4.0".into(), old.clone());
            w.key_files.insert("mendersoftware/deviceauth:mender-3.6.5".into(), new.clone());
        }
        // The bundle the upgrade started from recorded the old key.
        let bundle = s.project_dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        let before = fake.observe(PROJECT).await.unwrap();
        let recorded = crate::snapshot::keys::digests(&before.containers);
        assert!(recorded.iter().any(|k| k.signer == "deviceauth" && k.sha256.is_some()), "{recorded:?}");
        crate::backup::manifest::Manifest { keys: recorded, ..crate::backup::manifest::tests::manifest() }
            .save(&bundle)
            .unwrap();
        let mut journal = s.journal("3.4.0", "3.6.5");
        let st = journal.payload.as_mut().unwrap();
        st.bundle = Some(bundle);
        st.accept_new_keys = accept;
        let progress = Progress::silent();
        let ctx = ctx(&s, &fake, &progress);
        let mut run = Run::new(journal, PROJECT).unwrap();
        let result = continue_hops(&ctx, &mut run).await;
        if accept {
            assert!(result.is_ok(), "accepted: {}", result.unwrap_err());
            continue;
        }
        match result.unwrap_err() {
            UpgradeError::RolledBack { hop, .. } => {
                assert_eq!(hop.point.to_string(), "gates");
                let e = hop.error.to_string();
                assert!(e.contains("the deviceauth signing key (/etc/deviceauth/rsa/private.pem in"), "{e}");
                assert!(e.contains("--accept-new-keys"), "{e}");
            }
            other => panic!("{other}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_dump_starts_the_stopped_services_and_changes_nothing() {
    let s = Setup::new("3.4.0");
    let fake = s.fake("3.4.0");
    let before_files = s.files();
    fake.world.lock().unwrap().dump_fails = true;
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.4.0", "3.6.5"), PROJECT).unwrap();
    match continue_hops(&ctx, &mut run).await.unwrap_err() {
        UpgradeError::RolledBack { how, .. } => assert!(how.contains("nothing had changed"), "{how}"),
        other => panic!("{other}"),
    }
    let calls = fake.calls();
    let stopped = calls.iter().find(|c| c.starts_with("stop ")).unwrap().replace("stop", "start");
    assert!(calls.contains(&stopped), "the services stopped are the services started: {calls:?}");
    assert!(!calls.iter().any(|c| c.starts_with("compose up")), "{calls:?}");
    assert_eq!(s.files(), before_files);
}

/// A journal written by version 0.1.0 (tests/fixtures) still reads, and resuming it runs only the
/// steps its hop had not done.
#[tokio::test(start_paused = true)]
async fn a_journal_of_version_0_1_resumes_after_its_last_step() {
    let text = include_str!("../../tests/fixtures/journal-0.1.0-upgrade.json");
    let mut journal: UpgradeJournal = serde_json::from_str(text).expect("the 0.1.0 journal format reads");
    let st = journal.payload.as_ref().unwrap();
    assert_eq!(st.done, [Step::Stop, Step::Dump, Step::Rewrite]);
    assert_eq!(st.timings[0][&Step::Dump], 3.4);
    assert_eq!(st.plan.hops.len(), 2);

    // The same journal on a stack of our own, whose files the interrupted hop had rewritten.
    let s = Setup::new("3.6.5");
    let fake = s.fake("3.4.0");
    {
        let mut w = fake.world.lock().unwrap();
        // The hop had stopped the writers and dumped 3.4.0's data.
        w.dumped = Some(w.migrations.clone());
    }
    let st = journal.payload.as_mut().unwrap();
    st.run_dir = s.state.root.join("upgrades/run");
    st.project = s.project();
    st.before = fake.world.lock().unwrap().migrations.clone();
    std::fs::create_dir_all(st.run_dir.join("hop-1")).unwrap();
    std::fs::write(st.run_dir.join("hop-1/mongo.archive.gz"), b"archive").unwrap();
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(journal, PROJECT).unwrap();
    let outcome = continue_hops(&ctx, &mut run).await.unwrap();
    assert_eq!(outcome.to, v("3.7.11"));
    let calls = fake.calls();
    let second = calls.iter().position(|c| c.starts_with("stop ")).expect("hop 2 stops the writers");
    assert!(!calls[..second].iter().any(|c| c == "dump"), "hop 1 resumed after its dump: {calls:?}");
    assert!(calls[..second].iter().any(|c| c.starts_with("compose run")), "hop 1 migrated: {calls:?}");
    assert!(calls[second..].iter().any(|c| c == "fcv 5.0"), "hop 2 raised the featureCompatibilityVersion: {calls:?}");
    let w = fake.world.lock().unwrap();
    assert!(w.images.values().any(|i| i == "mendersoftware/useradm:mender-3.7.11"), "{:?}", w.images);
}

/// Which completed hops a rollback undoes, from the history: the last upgrade's, back to where it
/// started or to a release it went through; again after a partial rollback; never without dumps.
#[test]
fn the_way_back_follows_the_history() {
    use super::history::{Entry, Operation};
    let s = Setup::new("3.4.0");
    let mut st = s.journal("3.4.0", "3.7.11").payload.unwrap();
    st.hop = st.plan.hops.len();
    for i in 0..st.hop {
        let dir = super::files::hop_dir(&st, i);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mongo.archive.gz"), b"dump").unwrap();
    }
    let entry = |op, from: &str, at: &str, state: Option<UpgradeState>| Entry {
        at: "t".into(),
        operation: op,
        from: v(from),
        to: v("3.7.11"),
        at_release: v(at),
        hops: vec![],
        ok: true,
        result: String::new(),
        report: None,
        state,
    };
    let history = vec![entry(Operation::Upgrade, "3.4.0", "3.7.11", Some(st.clone()))];
    let all = super::chain(&history, &v("3.7.11"), None).unwrap();
    assert_eq!(all.iter().map(|(st, stop)| (st.hop, stop.to_string())).collect::<Vec<_>>(), [(3, "3.4.0".into())]);
    assert_eq!(all[0].0.rollback_until, Some(0), "back to the start: every hop of it, by index");
    let part = super::chain(&history, &v("3.7.11"), Some(&v("3.6.5"))).unwrap();
    assert_eq!(part.iter().map(|(st, stop)| (st.hop, stop.to_string())).collect::<Vec<_>>(), [(3, "3.6.5".into())]);
    assert_eq!(part[0].0.rollback_until, None, "to a release on the way: until the stack is at it");
    // An upgrade that started with a MongoDB stage at its own release: back to where it started
    // is back to the old major too, though every hop's release is >= the start's.
    let mut staged = s.journal("3.6.5", "3.7.11").payload.unwrap();
    staged.hop = staged.plan.hops.len();
    assert!(staged.plan.hops[0].is_mongo_stage() && staged.plan.hops[0].from == v("3.6.5"));
    for i in 0..staged.hop {
        let dir = super::files::hop_dir(&staged, i);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mongo.archive.gz"), b"dump").unwrap();
    }
    let from_365 = vec![entry(Operation::Upgrade, "3.6.5", "3.7.11", Some(staged.clone()))];
    let back = super::chain(&from_365, &v("3.7.11"), None).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].0.hop, back[0].0.rollback_until, back[0].1.to_string()), (2, Some(0), "3.6.5".into()));
    // Further back than that upgrade went: named, not looped on (the stage ends at 3.6.5 too).
    let older = super::chain(&from_365, &v("3.7.11"), Some(&v("3.0.2"))).unwrap_err();
    assert!(older.starts_with("3.0.2 is not a release") && older.ends_with("go back to is 3.6.5"), "{older}");
    // Once a rollback brought it back to where it started, nothing of it is left to undo.
    let mut undone = from_365.clone();
    let mut rb = entry(Operation::Rollback, "3.7.11", "3.6.5", None);
    rb.to = v("3.6.5");
    undone.push(rb);
    assert!(super::chain(&undone, &v("3.6.5"), None).is_err(), "the stage is not undone a second time");
    // After that rollback the stack is at 3.6.5: the rest of the same upgrade (the MongoDB stage
    // at 3.6.5, then the first hop) is undone next.
    let mut later = history.clone();
    later.push(entry(Operation::Rollback, "3.7.11", "3.6.5", None));
    let rest = super::chain(&later, &v("3.6.5"), None).unwrap();
    assert_eq!(rest.iter().map(|(st, stop)| (st.hop, stop.to_string())).collect::<Vec<_>>(), [(2, "3.4.0".into())]);
    assert!(super::chain(&history, &v("3.7.11"), Some(&v("3.5.1"))).unwrap_err().contains("3.5.1"));
    // Older than where the recorded upgrades start: named as asked, with how far they go back.
    let older = super::chain(&history, &v("3.7.11"), Some(&v("3.2.2"))).unwrap_err();
    assert!(older.starts_with("3.2.2 is not a release") && older.ends_with("go back to is 3.4.0"), "{older}");
    assert!(super::chain(&history, &v("3.4.0"), None).is_err(), "nothing was upgraded to 3.4.0");
    std::fs::remove_file(super::files::hop_dir(&st, 0).join("mongo.archive.gz")).unwrap();
    assert!(super::chain(&history, &v("3.7.11"), None).unwrap_err().contains("is gone"));
}

/// The MongoDB stage before 3.6.5 → 3.7.11: its steps in order, on a copy of the volume, the
/// compose files pointed at the copy with the 5.0 image, the FCV raised; then the app hop keeps 5.0.
#[tokio::test(start_paused = true)]
async fn a_mongodb_stage_runs_the_next_major_on_a_copy_of_the_volume() {
    let s = Setup::new("3.6.5").with_prod();
    let fake = s.fake("3.6.5");
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.6.5", "3.7.11"), PROJECT).unwrap();
    assert_eq!(run.st().plan.hops.len(), 2);
    continue_hops(&ctx, &mut run).await.unwrap();
    let calls = fake.calls();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap_or_else(|| panic!("no {c}: {calls:?}"));
    let order = [
        calls.iter().position(|c| c.starts_with("stop ")).unwrap(),
        at("compose stop -t 120 mender-mongo"),
        at("copy mender-db mender-db-5.0"),
        at("compose up -d --no-deps mender-mongo"),
        at("fcv 5.0"),
        at("dump"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{calls:?}");
    assert!(!calls[..order[5]].iter().any(|c| c == "restore" || c.starts_with("compose run")), "{calls:?}");
    let prod = std::fs::read_to_string(s.project_dir.join("prod.yml")).unwrap();
    assert!(prod.contains("name: mender-db-5.0"), "{prod}");
    let w = fake.world.lock().unwrap();
    assert_eq!(w.images["mender-mongo"], "mongo:5.0");
    assert_eq!(w.fcv, "5.0");
    assert_eq!(w.images["mender-useradm"], "mendersoftware/useradm:mender-3.7.11");
}

/// A failure after the new major ran: the previous files (4.4 on the original volume) come back,
/// no dump is restored (the original volume was never written), the copy is left for the operator.
#[tokio::test(start_paused = true)]
async fn a_failed_mongodb_stage_goes_back_to_the_original_volume() {
    let s = Setup::new("3.6.5").with_prod();
    let fake = s.fake("3.6.5");
    let before_files = s.files();
    // The stage's `up -d` (the first one) fails after the FCV was raised on the copy.
    fake.world.lock().unwrap().fail.push("up -d".into());
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut run = Run::new(s.journal("3.6.5", "3.7.11"), PROJECT).unwrap();
    let err = continue_hops(&ctx, &mut run).await.unwrap_err();
    // The stage is named as the plan names it, not as a hop from 3.6.5 to itself.
    let said = err.to_string();
    assert!(said.starts_with("the MongoDB 4.4 → 5.0 stage at 3.6.5 failed at step up: "), "{said}");
    assert!(!said.contains("3.6.5 → 3.6.5"), "{said}");
    match err {
        UpgradeError::RolledBack { at, how, hop } => {
            assert_eq!(at, v("3.6.5"));
            assert!(how.contains("original data volume"), "{how}");
            assert_eq!(hop.point.to_string(), "up");
            assert_eq!(hop.stage, Some(("4.4".to_string(), "5.0".to_string())));
        }
        other => panic!("{other}"),
    }
    let calls = fake.calls();
    assert!(calls.contains(&"fcv 5.0".to_string()), "{calls:?}");
    assert!(!calls.iter().any(|c| c == "dump" || c == "restore"), "{calls:?}");
    assert_eq!(s.files(), before_files, "the compose files name mongo:4.4 and volume mender-db again");
    assert_eq!(fake.world.lock().unwrap().images["mender-mongo"], "mongo:4.4");
}

/// A resumed stage runs only the steps its journal has not recorded.
#[tokio::test(start_paused = true)]
async fn a_resumed_stage_runs_the_steps_not_done() {
    let s = Setup::new("3.6.5").with_prod();
    let fake = s.fake("3.6.5");
    let progress = Progress::silent();
    let ctx = ctx(&s, &fake, &progress);
    let mut j = s.journal("3.6.5", "3.7.11");
    j.payload.as_mut().unwrap().done = vec![Step::Stop, Step::MongoStop, Step::Copy];
    let mut run = Run::new(j, PROJECT).unwrap();
    continue_hops(&ctx, &mut run).await.unwrap();
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.starts_with("copy") || c.starts_with("compose stop")), "{calls:?}");
    assert!(calls.contains(&"fcv 5.0".to_string()), "{calls:?}");
    assert_eq!(fake.world.lock().unwrap().fcv, "5.0");
}

/// What `recover` and `status` say of an interrupted hop: its stopped services stay stopped
/// before `up`, may be partly started during it, and run the new release after it.
#[test]
fn the_explanation_of_an_interrupted_hop_follows_its_steps() {
    let s = Setup::new("3.4.0");
    let mut j = s.journal("3.4.0", "3.6.5");
    j.stopped = vec![StoppedService { service: "mender-useradm".into(), container: "c".into(), wave: 1 }];
    let says = |j: &UpgradeJournal| super::recover::explain(PROJECT, j).join("\n");
    j.payload.as_mut().unwrap().done = vec![Step::Stop, Step::Dump, Step::Rewrite, Step::Mongo, Step::Migrate];
    let in_up = says(&j);
    assert!(!in_up.contains("stay stopped"), "compose may have started some: {in_up}");
    assert!(in_up.contains("stopped while starting 3.6.5 (step up)"), "{in_up}");
    assert!(in_up.contains("continues it at step up"), "{in_up}");
    j.payload.as_mut().unwrap().done = vec![Step::Stop, Step::Dump];
    let before_up = says(&j);
    assert!(before_up.contains("(mender-useradm) stay stopped"), "{before_up}");
    j.payload.as_mut().unwrap().done.push(Step::Up);
    let after_up = says(&j);
    assert!(!after_up.contains("stay stopped"), "{after_up}");
    assert!(after_up.contains("run 3.6.5 images since its step up"), "{after_up}");
}
