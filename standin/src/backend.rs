//! A Mender backend service or worker as the upgrade tool sees it: `server [--automigrate]`,
//! `migrate`, `worker`, the real database and `migration_info` format, the real health URLs, and a
//! refusal to serve on a database older than the release needs.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bson::{Document, doc};
use hyper::StatusCode;
use mender_compose_upgrade::catalog::Role;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use semver::Version;

use crate::http::{self, json, respond};
use crate::identity::Resolved;
use crate::samples;

/// Default MongoDB hosts in the services' code: the reason compose gives mender-mongo these aliases.
fn default_mongo_url(kind: &str) -> &'static str {
    match kind {
        "deployments" => "mongodb://mongo-deployments:27017",
        "deviceauth" => "mongodb://mongo-device-auth:27017",
        "inventory" => "mongodb://mongo-inventory:27017",
        "useradm" => "mongodb://mongo-useradm:27017",
        _ => "mongodb://mender-mongo:27017",
    }
}

pub fn mongo_url(r: &Resolved) -> String {
    let from_env = r.facts.mongo_env.as_deref().and_then(|k| std::env::var(k).ok()).filter(|v| !v.is_empty());
    let url = from_env.unwrap_or_else(|| default_mongo_url(&r.kind()).to_string());
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") { url } else { format!("mongodb://{url}") }
}

pub async fn connect(url: &str) -> Result<Client> {
    let mut opts = ClientOptions::parse(url).await.with_context(|| format!("bad MongoDB URL {url}"))?;
    opts.server_selection_timeout = Some(Duration::from_secs(3));
    opts.connect_timeout = Some(Duration::from_secs(3));
    opts.app_name = Some("mender-standin".into());
    Ok(Client::with_options(opts)?)
}

/// The newest version recorded in `migration_info` (documents `{version: {major, minor, patch}, timestamp}`).
pub async fn current_version(db: &Database) -> Result<Option<Version>> {
    let mut cursor = db.collection::<Document>("migration_info").find(doc! {}).await?;
    let mut newest: Option<Version> = None;
    use futures_util::TryStreamExt;
    while let Some(d) = cursor.try_next().await? {
        let Ok(v) = d.get_document("version") else {
            continue;
        };
        let num = |k: &str| -> u64 {
            match v.get(k) {
                Some(bson::Bson::Int32(n)) => *n as u64,
                Some(bson::Bson::Int64(n)) => *n as u64,
                Some(bson::Bson::Double(n)) => *n as u64,
                _ => 0,
            }
        };
        let found = Version::new(num("major"), num("minor"), num("patch"));
        if newest.as_ref().is_none_or(|n| found > *n) {
            newest = Some(found);
        }
    }
    Ok(newest)
}

async fn record(db: &Database, v: &Version) -> Result<()> {
    let entry = doc! {
        "version": { "major": v.major as i64, "minor": v.minor as i64, "patch": v.patch as i64 },
        "timestamp": bson::DateTime::now(),
    };
    db.collection::<Document>("migration_info").insert_one(entry).await?;
    Ok(())
}

/// Applies every known migration newer than the database, each one leaving a mark and a
/// `migration_info` entry.
pub async fn migrate(r: &Resolved, db: &Database) -> Result<Vec<Version>> {
    let Some(target) = r.facts.schema.clone() else {
        return Ok(vec![]);
    };
    let current = current_version(db).await?;
    let floor = current.clone().unwrap_or(Version::new(0, 0, 0));
    let steps: Vec<Version> = r
        .catalog
        .schema_ladder(r.db()?, &r.id.release)
        .into_iter()
        .filter(|v| (current.is_none() || *v > floor) && *v <= target)
        .collect();
    for v in &steps {
        // A migration changes data: here a mark in a collection of its own (the operator's
        // documents stay byte-identical, so that an upgrade can be checked against them), which
        // an image-swap rollback would leave behind.
        let marks = db.collection::<Document>("migration_marks");
        marks
            .insert_one(doc! { "version": v.to_string(), "by": r.id.release.to_string(), "at": bson::DateTime::now() })
            .await?;
        record(db, v).await?;
        eprintln!("migration to {} {v} applied", r.db()?);
    }
    Ok(steps)
}

/// Refuses a database behind the release unless allowed to migrate, like SimpleMigrator.
async fn prepare(r: &Resolved, db: &Database, automigrate: bool) -> Result<()> {
    let Some(target) = &r.facts.schema else {
        return Ok(());
    };
    let current = current_version(db).await?;
    if current.as_ref().is_some_and(|c| c >= target) {
        if current.as_ref() != Some(target) {
            eprintln!("DB migrated to version {}", current.unwrap_or_else(|| target.clone()));
        }
        return Ok(());
    }
    if !automigrate {
        let has = current.map_or("0.0.0".to_string(), |v| v.to_string());
        bail!("db needs migration: {} has version {has}, needs version {target}", r.db()?);
    }
    migrate(r, db).await?;
    Ok(())
}

async fn wait_for_mongo(client: &Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.database("admin").run_command(doc! {"ping": 1}).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e).context("MongoDB unreachable");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

pub async fn run(r: Resolved, args: &[String]) -> Result<ExitCode> {
    let sub = args.first().map(String::as_str).unwrap_or("server");
    let automigrate = args.iter().any(|a| a == "--automigrate");
    match sub {
        "version" => {
            println!("{} (mender-standin for Mender {})", r.kind(), r.id.release);
            return Ok(ExitCode::SUCCESS);
        }
        "server" | "worker" | "indexer" | "migrate" => {}
        other => bail!("unknown subcommand {other}"),
    }
    let client = connect(&mongo_url(&r)).await?;
    wait_for_mongo(&client).await?;
    let db = r.facts.db.as_ref().map(|name| client.database(name));
    if sub == "migrate" {
        if let Some(db) = &db {
            let done = migrate(&r, db).await?;
            eprintln!("{} migrations applied to {}", done.len(), r.db()?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(db) = &db {
        prepare(&r, db, automigrate || sub == "indexer").await?;
        if r.role() == Role::Backend {
            samples::ensure(&r, db).await?;
        }
    }
    if r.role() == Role::Backend && sub == "server" {
        serve(r, client).await?;
    } else {
        idle(client).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Workers have no listener; they keep their MongoDB connection alive.
async fn idle(client: Client) {
    loop {
        if let Err(e) = client.database("admin").run_command(doc! {"ping": 1}).await {
            eprintln!("mongo: {e}");
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

async fn serve(r: Resolved, client: Client) -> Result<()> {
    let alive = r.facts.alive.clone().unwrap_or_default();
    let health = r.facts.health.clone().unwrap_or_default();
    let broken = r.id.broken;
    // workflows queues its jobs in NATS JetStream from 3.2 (workflows 2.2.0, commit a794bc0); before,
    // in MongoDB, and its health does not depend on NATS.
    let jetstream = r.id.release >= semver::Version::new(3, 2, 0);
    let nats = (r.kind() == "workflows" && jetstream).then(|| {
        let uri = std::env::var("WORKFLOWS_NATS_URI").unwrap_or_else(|_| "nats://mender-nats:4222".into());
        uri.trim_start_matches("nats://").trim_end_matches('/').to_string()
    });
    let kind = r.kind();
    let db = r.facts.db.as_ref().map(|name| client.database(name));
    let port = r.facts.port.unwrap_or(8080);
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    eprintln!("{} {} listening on {addr}", r.kind(), r.id.release);
    http::serve(addr, None, move |req| {
        let (alive, health, client, nats) = (alive.clone(), health.clone(), client.clone(), nats.clone());
        let (kind, db) = (kind.clone(), db.clone());
        async move {
            let path = req.uri().path().to_string();
            let path = path.as_str();
            if path == alive {
                respond(StatusCode::NO_CONTENT, "")
            } else if path == health {
                match check_health(&client, nats.as_deref(), broken).await {
                    Ok(()) => respond(StatusCode::NO_CONTENT, ""),
                    Err(e) => json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"error": e.to_string(), "request_id": ""}),
                    ),
                }
            } else if path.starts_with("/api/") {
                if let Some(r) = crate::api::handle(&kind, db.as_ref(), req).await {
                    return r;
                }
                json(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "Unauthorized", "request_id": ""}))
            } else {
                json(StatusCode::NOT_FOUND, serde_json::json!({"error": "not found", "request_id": ""}))
            }
        }
    })
    .await
}

async fn check_health(client: &Client, nats: Option<&str>, broken: bool) -> Result<()> {
    if broken {
        bail!("this release is broken (test-bed -broken image)");
    }
    tokio::time::timeout(Duration::from_secs(3), client.database("admin").run_command(doc! {"ping": 1}))
        .await
        .context("MongoDB ping timed out")?
        .context("MongoDB ping failed")?;
    if let Some(addr) = nats {
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .context("NATS connect timed out")?
            .with_context(|| format!("NATS at {addr} unreachable"))?;
    }
    Ok(())
}
