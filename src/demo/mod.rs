//! `demo up|down`: the embedded test-bed stack, laid out like a production integration checkout
//! (docker-compose.yml + docker-compose.storage.minio.yml + production/config/prod.yml, external
//! volumes, keys under production/keys-generated), with its images behind the test-bed prefix and
//! seeded data. Everything here is for trying the tool and for its tests; it runs stand-ins.

mod checkout;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use clap::Args;
use semver::Version;

use crate::catalog::{Catalog, LoadedCatalog};
use crate::engine::compose::{Compose, ProjectFiles, project_files};
use crate::engine::docker;
use crate::engine::sidecar::{SidecarSpec, run_collect};
use crate::exit::{Exit, Failure};
use crate::snapshot::observe::{Options, observe};

/// The compose project of a 3.x production checkout (`integration@3.7.11:production/run` passes
/// `-p menderproduction`), the demo's default `-p`.
pub const DEFAULT_PROJECT: &str = "menderproduction";
/// The registry prefix the test bed tags its images under (`testbed.local/mendersoftware/…`).
pub const TESTBED_REGISTRY: &str = "testbed.local";

/// Options of `demo up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Mender Server release to bring up (one with base compose files in the catalog).
    #[arg(long, default_value = "3.4.0")]
    pub release: String,
    /// The integration checkout (default: STATE_DIR/demo/PROJECT/mender-server).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Prefix of the external volume names (mender-db, mender-artifacts), to run stacks side by side.
    #[arg(long, default_value = "")]
    pub volume_prefix: String,
    /// Host port for the gateway's HTTPS: a number, 0 for a free port on 127.0.0.1, or none.
    #[arg(long, default_value = "443")]
    pub https_port: String,
    /// Devices to seed (each in deviceauth, inventory, deviceconnect, …).
    #[arg(long, default_value_t = 50)]
    pub devices: u64,
    /// Bytes of inventory attributes per seeded device.
    #[arg(long, default_value_t = 256)]
    pub device_pad: u64,
    /// Artifacts to upload to the artifact store.
    #[arg(long, default_value_t = 5)]
    pub artifacts: u64,
    /// Size of each seeded artifact in bytes.
    #[arg(long, default_value_t = 65536)]
    pub artifact_size: u64,
    /// Write a healthcheck interval for the artifact store into prod.yml (e.g. 2s): upstream's
    /// 60 s makes every hop's `up` wait a minute for the store's first check.
    #[arg(long, value_name = "DURATION")]
    pub store_healthcheck_interval: Option<String>,
    /// Write an open-files limit (`ulimits: nofile`) for mongo and the gateway into prod.yml, at
    /// most upstream's (64000, 65536): the 4.x base files raise it to those, which a daemon
    /// with a lower hard limit (`ulimit -Hn`) cannot start. At least 1024: below that neither
    /// mongod nor traefik gets far.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1024..))]
    pub nofile_limit: Option<u64>,
    /// Artifacts in an S3 bucket outside the stack at this endpoint (instead of its minio).
    #[arg(long, value_name = "URL", requires = "bucket")]
    pub s3_url: Option<String>,
    /// The bucket (or Azure container) deployments uses.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Artifacts in Azure Blob: the account's connection string (kept out of the command line).
    #[arg(long, env = "MENDER_DEMO_AZURE_CONNECTION_STRING", hide_env_values = true, conflicts_with = "s3_url")]
    pub azure_connection_string: Option<String>,
    /// Seconds to wait for every service to become healthy.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Options of `demo down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// The integration checkout (default: STATE_DIR/demo/PROJECT/mender-server).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also delete the external volumes (all data, the copies MongoDB stages made included) and
    /// the checkout directory.
    #[arg(long)]
    pub volumes: bool,
}

/// Where the demo runs: the global options that concern it.
pub struct Demo<'a> {
    /// The compose project (`-p`; default `menderproduction`).
    pub project: String,
    /// The registry prefix of the images (`--image-registry`; default `testbed.local`).
    pub registry: String,
    /// The state directory, where the default checkout lives.
    pub state_dir: PathBuf,
    /// The release catalog.
    pub catalog: &'a LoadedCatalog,
}

impl<'a> Demo<'a> {
    /// From the global options; the test-bed defaults where they are not given.
    pub fn new(
        project: Option<&str>,
        registry: Option<&str>,
        state_dir: PathBuf,
        catalog: &'a LoadedCatalog,
    ) -> Demo<'a> {
        Demo {
            project: project.unwrap_or(DEFAULT_PROJECT).to_string(),
            registry: registry.unwrap_or(TESTBED_REGISTRY).to_string(),
            state_dir,
            catalog,
        }
    }

    fn checkout_dir(&self, dir: &Option<PathBuf>) -> PathBuf {
        dir.clone().unwrap_or_else(|| self.state_dir.join("demo").join(&self.project).join("mender-server"))
    }
}

/// The compose invocation of a 3.x production checkout (what production/run runs; 3.0 and 3.1
/// add their connect and config files).
pub fn production_files(project: &str, dir: &Path) -> ProjectFiles {
    let files = [
        "docker-compose.yml",
        "docker-compose.storage.minio.yml",
        "docker-compose.connect.yml",
        "docker-compose.config.yml",
        "production/config/prod.yml",
    ];
    let present = files.iter().filter(|f| !f.contains(".con") || dir.join(f).exists()).map(PathBuf::from).collect();
    project_files(project, dir, present, vec![])
}

/// `demo up`: writes (or reuses) the checkout, creates the volumes, starts the stack, waits until
/// it is healthy and seeds it once.
///
/// # Errors
/// A release without base files (exit 2), no daemon or compose (exit 3), a stack that does not
/// become healthy (exit 3, left running for inspection).
pub async fn up(d: &Demo<'_>, a: UpArgs) -> anyhow::Result<()> {
    let loaded = d.catalog;
    let version = Version::parse(&a.release).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!("{:?} is not a version", a.release),
            crate::exit::UNCHANGED_ALL,
            "e.g. --release 3.4.0",
        )
    })?;
    let has_files = |v: &Version| loaded.release_files(v).is_ok();
    let release = loaded.catalog.release(&version).filter(|r| has_files(&r.version)).ok_or_else(|| {
        let known: Vec<String> =
            loaded.catalog.releases.iter().filter(|r| has_files(&r.version)).map(|r| r.version.to_string()).collect();
        Failure::new(
            Exit::Usage,
            format!("the test bed has no stack for release {version}"),
            crate::exit::UNCHANGED_ALL,
            format!("choose one of {}", known.join(", ")),
        )
    })?;
    let (project, registry) = (d.project.clone(), d.registry.clone());
    let dir = d.checkout_dir(&a.dir);
    let compose = Compose::detect().await.map_err(Failure::from)?;
    let docker = docker::connect().await.map_err(Failure::from)?;
    let fresh = !dir.join("docker-compose.yml").exists();
    if fresh {
        let files = loaded.release_files(&version)?;
        let bucket = a.bucket.clone().unwrap_or_else(|| "mender-artifact-storage".into());
        let storage = match (&a.s3_url, &a.azure_connection_string) {
            (Some(url), _) => checkout::Storage::S3 { url: url.clone(), bucket },
            (None, Some(conn)) => checkout::Storage::Azure { connection_string: conn.clone(), container: bucket },
            (None, None) => checkout::Storage::InStack,
        };
        let settings = checkout::Settings {
            project: &project,
            compose_files: &release.compose_files,
            registry: &registry,
            volume_prefix: &a.volume_prefix,
            https_port: &a.https_port,
            store_healthcheck_interval: a.store_healthcheck_interval.as_deref(),
            nofile_limit: a.nofile_limit,
            storage,
        };
        checkout::write(&dir, &files, &settings)
            .with_context(|| format!("writing the demo checkout in {}", dir.display()))?;
        eprintln!("wrote a {} integration checkout to {}", release.version, dir.display());
    } else {
        // A checkout left by an earlier run may have been upgraded since: the demo starts what it
        // announces, or nothing.
        let known = crate::catalog::KnownFiles::new(loaded, Some(&registry));
        let holds = crate::catalog::Checkout::read(&known, &dir).releases;
        if !holds.is_empty() && !holds.contains(&version) {
            let names: Vec<String> = holds.iter().map(Version::to_string).collect();
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "the demo checkout in {} holds release {}, not {version} (an earlier run left it, upgraded since)",
                    dir.display(),
                    names.join("/")
                ),
                crate::exit::UNCHANGED_ALL,
                format!(
                    "`demo down --volumes` removes it and its data (scripts/demo down), then `demo up --release {version}`; or `demo up --release {}` starts it as it is",
                    names.last().map(String::as_str).unwrap_or_default()
                ),
            )
            .into());
        }
        eprintln!("reusing the checkout in {}", dir.display());
    }
    for name in ["mender-db", "mender-artifacts"] {
        create_volume(&docker, &format!("{}{name}", a.volume_prefix)).await?;
    }
    let files = production_files(&project, &dir);
    eprintln!("starting project {project} with docker compose {}", compose.version);
    compose.run(&files, &["up", "-d", "--remove-orphans"]).await.map_err(Failure::from)?;
    let running = wait_healthy(&docker, &loaded.catalog, &registry, &project, Duration::from_secs(a.timeout)).await?;
    if running.as_ref() != Some(&version) {
        let running = running.map(|v| v.to_string()).unwrap_or_else(|| "an unknown release".into());
        return Err(Failure::new(
            Exit::Precondition,
            format!("the demo stack {project} runs {running}, not the {version} asked for"),
            "the stack is left running as it is",
            "`demo down --volumes` removes it and its data (scripts/demo down); then start the demo again",
        )
        .into());
    }
    let marker = dir.join(".demo-seeded");
    if !marker.exists() {
        seed(&docker, &project, &registry, &version, &a).await?;
        std::fs::write(&marker, format!("{} devices, {} artifacts\n", a.devices, a.artifacts))?;
    }
    println!("Mender Server {version} (test bed) is up as compose project {project} in {}.", dir.display());
    println!("Try:");
    println!("  mender-compose-upgrade --image-registry {registry} -p {project} status");
    println!("  mender-compose-upgrade --image-registry {registry} -p {project} plan --to 3.7.11");
    println!("The seeded admin's account, for the smoke check's login and download (the test bed's password):");
    println!(
        "  {}={DEMO_ADMIN_PASSWORD} mender-compose-upgrade --image-registry {registry} -p {project} status --smoke-user {DEMO_ADMIN}",
        crate::snapshot::smoke::SMOKE_PASSWORD_ENV
    );
    Ok(())
}

/// The admin the test bed's seeder writes, and its password (the stand-in's defaults:
/// standin/src/api.rs `ADMIN_EMAIL`, `ADMIN_PASSWORD`; not a secret, a test bed's).
pub const DEMO_ADMIN: &str = "admin@docker.mender.io";
/// See [`DEMO_ADMIN`].
pub const DEMO_ADMIN_PASSWORD: &str = "mender-demo-admin";

async fn create_volume(docker: &Docker, name: &str) -> anyhow::Result<()> {
    if docker.inspect_volume(name).await.is_ok() {
        return Ok(());
    }
    docker
        .create_volume(VolumeCreateRequest { name: Some(name.to_string()), ..Default::default() })
        .await
        .with_context(|| format!("creating volume {name}"))?;
    Ok(())
}

async fn wait_healthy(
    docker: &Docker,
    catalog: &Catalog,
    registry: &str,
    project: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Version>> {
    let start = Instant::now();
    let opts = Options { project: Some(project), registry: Some(registry), counts: false };
    loop {
        let stack = observe(docker, catalog, &opts).await.map_err(Failure::from)?;
        if stack.healthy {
            eprintln!("all services healthy after {:.0} s", start.elapsed().as_secs_f64());
            return Ok(stack.release);
        }
        if start.elapsed() > timeout {
            let problems: Vec<String> = stack
                .services
                .iter()
                .flat_map(|s| s.problems.iter().map(move |p| format!("{}: {p}", s.name)))
                .collect();
            return Err(Failure::new(
                Exit::Precondition,
                format!(
                    "the demo stack did not become healthy within {} s: {}",
                    timeout.as_secs(),
                    problems.join("; ")
                ),
                "the containers are left running for inspection",
                format!("look at `docker compose -p {project} logs`, or remove it with `demo down --volumes`"),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn seed(docker: &Docker, project: &str, registry: &str, version: &Version, a: &UpArgs) -> anyhow::Result<()> {
    let containers = crate::engine::inspect::project_containers(docker, project).await.map_err(Failure::from)?;
    let deployments =
        containers.iter().find(|c| c.service == "mender-deployments").context("the stack has no mender-deployments")?;
    let network = deployments.networks.first().cloned().context("mender-deployments has no network")?;
    // The seeder reaches the store with the same settings as deployments itself.
    let env: Vec<String> = deployments
        .env
        .iter()
        .filter(|kv| kv.starts_with("DEPLOYMENTS_AWS_") || kv.starts_with("DEPLOYMENTS_STORAGE_"))
        .cloned()
        .collect();
    let spec = SidecarSpec {
        image: format!("{registry}/mender-standin:latest"),
        entrypoint: Some(vec!["/usr/bin/mender-standin".into()]),
        cmd: [
            "seed",
            "--release",
            &version.to_string(),
            "--devices",
            &a.devices.to_string(),
            "--pad",
            &a.device_pad.to_string(),
            "--artifacts",
            &a.artifacts.to_string(),
            "--artifact-size",
            &a.artifact_size.to_string(),
            "--mongo",
            &crate::util::mongo_uri("mender-mongo"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        network: Some(network),
        env,
        ..Default::default()
    };
    let (_, outcome) = run_collect(docker, &spec).await.context("running the test-bed seeder")?;
    anyhow::ensure!(outcome.exit_code == 0, "seeding failed (exit {}): {}", outcome.exit_code, outcome.stderr.trim());
    eprintln!("{}", outcome.stderr.trim());
    Ok(())
}

/// `demo down`: stops the demo stack; with `--volumes` also deletes its volumes and checkout.
///
/// # Errors
/// No compose, or compose failed.
pub async fn down(d: &Demo<'_>, a: DownArgs) -> anyhow::Result<()> {
    let project = d.project.clone();
    let dir = d.checkout_dir(&a.dir);
    // Its volumes carry production's names (`mender-db`): never take a checkout `demo up` did not
    // write for a demo.
    if !checkout::is_demo(&dir) {
        return Err(Failure::new(
            Exit::Usage,
            format!("{} is not a checkout written by `demo up` (it has no demo settings file)", dir.display()),
            "every container, volume and file",
            "give the demo's checkout with --dir; demo down never stops or deletes a stack it did not create",
        )
        .into());
    }
    let compose = Compose::detect().await.map_err(Failure::from)?;
    let docker = docker::connect().await.map_err(Failure::from)?;
    // Read before `compose down` removes the containers, which is the last moment anything
    // tells which volumes were theirs.
    let mounted =
        docker::mounted_volumes(&docker, crate::labels::LABEL_PROJECT, &project).await.map_err(Failure::from)?;
    // A `compose down` that fails half-way (a network Engine 20.10 says still has an endpoint)
    // has removed the containers: their volumes are removed all the same, then it is reported.
    let mut downed = if dir.join("docker-compose.yml").exists() {
        compose.run(&production_files(&project, &dir), &["down", "--remove-orphans"]).await.map(|_| ())
    } else {
        Ok(())
    };
    // `compose down` keeps the containers' anonymous volumes, and `down -v` takes them only
    // from containers compose never recreated (a recreated container mounts the volume it
    // inherited by name): removed by name here. The demo's hold nothing: mongo's /data/configdb
    // is an image VOLUME no compose file mounts, the dbPath of a sharded cluster's config server
    // (`mongod --configsvr`), which a standalone mongod (and the test bed's stand-in) never writes.
    let mut remove: Vec<String> = mounted.into_iter().filter(|(_, anonymous)| *anonymous).map(|(n, _)| n).collect();
    if a.volumes {
        let prefix = checkout::volume_prefix(&dir).unwrap_or_default();
        let base = format!("{prefix}mender-db");
        // The data volumes demo up created, and the copies MongoDB stages made of the database
        // (`mender-db-5.0`), which an upgrade keeps for the operator to remove.
        remove.push(base.clone());
        remove.push(format!("{prefix}mender-artifacts"));
        remove.extend(d.catalog.catalog.mongo_majors.iter().map(|m| format!("{base}-{m}")));
    }
    let failed = docker::remove_volumes(&docker, &remove).await;
    if downed.is_err() {
        // Every container gone and only networks nothing is attached to left: the daemon's stale
        // endpoint, not the demo's; said, and not a failure of `demo down`.
        let stale = docker::stale_networks(&docker, crate::labels::LABEL_PROJECT, &project).await;
        if !stale.is_empty() {
            eprintln!(
                "warning: network {} stays: the daemon says it has an endpoint though no container is attached (a stale endpoint of Docker Engine 20.10; restarting the daemon clears it)",
                stale.join(", ")
            );
            downed = Ok(());
        }
    }
    downed.map_err(Failure::from)?;
    if a.volumes && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    if !failed.is_empty() {
        anyhow::bail!("project {project} is down, but these volumes could not be removed:\n  {}", failed.join("\n  "));
    }
    eprintln!("project {project} is down{}", if a.volumes { ", its volumes and checkout removed" } else { "" });
    Ok(())
}
