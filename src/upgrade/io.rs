//! What the upgrade steps read and write: the stack, the compose files, MongoDB facts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use semver::Version;

use super::gates::{self, parse_hashes};
use super::rewrite::ProjectFile;
use super::{Ctx, ProjectRecord};
use crate::engine::sidecar::run_helper;
use crate::engine::helper::{MongoQuery, MongoReport, Request};
use crate::snapshot::observe::{Observed, Options, observe_full};

pub async fn observe(ctx: &Ctx<'_>, project: &str) -> Result<Observed, String> {
    let opts = Options { project: Some(project), registry: ctx.registry, counts: false };
    observe_full(ctx.docker, &ctx.catalog.catalog, &opts).await.map_err(|e| e.to_string())
}

/// Each database's newest migration_info, as the helper reads it.
pub async fn migrations(
    ctx: &Ctx<'_>,
    network: &str,
    mongo_host: &str,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let report = mongo_report(ctx, network, mongo_host, false).await?;
    Ok(report.databases.into_iter().map(|d| (d.name, d.migration)).collect())
}

pub async fn mongo_report(ctx: &Ctx<'_>, network: &str, mongo_host: &str, counts: bool) -> Result<MongoReport, String> {
    let q =
        MongoQuery { uri: format!("mongodb://{mongo_host}:27017"), dbs: vec![], counts, all_dbs: true, digests: false };
    let r = run_helper(ctx.docker, network, &Request { mongo: Some(q), ..Default::default() })
        .await
        .map_err(|e| e.to_string())?;
    let m = r.mongo.unwrap_or_default();
    if !m.reachable {
        return Err(format!("MongoDB unreachable: {}", m.error.unwrap_or_default()));
    }
    Ok(m)
}

pub async fn wait_mongo(ctx: &Ctx<'_>, network: &str, mongo_host: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match mongo_report(ctx, network, mongo_host, false).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Waits until the gates pass twice in a row with unchanged restart counts (a container that
/// crash-loops can look healthy for a moment), or the timeout; returns the last failures.
pub async fn wait_gates(
    ctx: &Ctx<'_>,
    project: &ProjectRecord,
    target: &Version,
    timeout: Duration,
) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut previous: Option<Vec<(String, i64)>> = None;
    loop {
        let failures = match observe(ctx, &project.name).await {
            Err(e) => vec![e],
            Ok(o) => {
                let hashes = match ctx.compose.run(&project.files(), &["config", "--hash", "*"]).await {
                    Ok(out) => parse_hashes(&out),
                    Err(e) => return Err(vec![e.to_string()]),
                };
                let r = gates::evaluate(&o.stack, target, &o.containers, &hashes);
                let restarts: Vec<(String, i64)> =
                    o.containers.iter().map(|c| (c.name.clone(), c.restart_count)).collect();
                if r.passed && previous.as_ref() == Some(&restarts) {
                    return Ok(());
                }
                previous = r.passed.then_some(restarts);
                r.failures
            }
        };
        if Instant::now() > deadline {
            return Err(if failures.is_empty() { vec!["the stack did not stay healthy".into()] } else { failures });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A project file relative to its directory (as compose labels name them, absolute).
pub fn relative(project: &ProjectRecord, path: &Path) -> PathBuf {
    path.strip_prefix(&project.working_dir).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

pub fn read(project: &ProjectRecord, rel: &Path) -> ProjectFile {
    ProjectFile { path: rel.to_path_buf(), contents: std::fs::read_to_string(project.working_dir.join(rel)).ok() }
}

/// Replaces a file's contents atomically, keeping its permissions.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let tmp = path.with_extension("mcu-tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    if let Some(m) = mode {
        std::fs::set_permissions(&tmp, m)?;
    }
    std::fs::rename(&tmp, path)
}
