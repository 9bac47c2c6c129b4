//! `seed`: fills a running stack with devices, users, deployments, jobs and uploaded artifacts,
//! in bulk (the backup benchmark seeds more than 1 GiB this way).

use anyhow::{Context, Result};
use mender_compose_upgrade::catalog::LoadedCatalog;
use semver::Version;

use crate::{artifacts, backend, samples};

pub struct SeedArgs {
    pub mongo: String,
    pub release: Version,
    pub devices: u64,
    pub pad: usize,
    pub artifacts: u64,
    pub artifact_size: usize,
    pub start: u64,
    pub admin_email: String,
}

impl SeedArgs {
    pub fn parse(args: &[String]) -> Result<SeedArgs> {
        let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
        let num = |name: &str, default: u64| -> Result<u64> {
            get(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} {v}")))
        };
        Ok(SeedArgs {
            mongo: get("--mongo").unwrap_or_else(|| "mongodb://mender-mongo:27017".into()),
            release: Version::parse(&get("--release").context("--release is required")?)?,
            devices: num("--devices", 100)?,
            pad: num("--pad", 256)? as usize,
            artifacts: num("--artifacts", 5)?,
            artifact_size: num("--artifact-size", 64 * 1024)? as usize,
            start: num("--start", 1000)?,
            admin_email: get("--admin-email").unwrap_or_else(|| crate::api::ADMIN_EMAIL.into()),
        })
    }
}

pub async fn run(a: SeedArgs) -> Result<()> {
    let catalog = LoadedCatalog::embedded()?.catalog;
    let release = catalog.release(&a.release).with_context(|| format!("unknown release {}", a.release))?;
    let client = backend::connect(&a.mongo).await?;
    // Each database once, under the kind of the first service that owns it.
    let mut seen = std::collections::BTreeSet::new();
    for facts in release.services.values() {
        let (Some(db), true) = (&facts.db, facts.role == mender_compose_upgrade::catalog::Role::Backend) else {
            continue;
        };
        if !seen.insert(db.clone()) {
            continue;
        }
        let kind = mender_compose_upgrade::catalog::ImageRef::parse(&facts.image, None).short_name().to_string();
        let db = client.database(db);
        let batch = 1000;
        let mut i = a.start;
        while i < a.start + a.devices {
            let n = batch.min(a.start + a.devices - i);
            samples::insert(&db, samples::documents(&kind, i, n, a.pad)).await?;
            i += n;
        }
        if kind == "useradm" {
            ensure_admin(&db, &a.admin_email).await?;
        }
    }
    if a.artifacts > 0 {
        let storage =
            artifacts::from_env().context("seeding artifacts needs DEPLOYMENTS_AWS_URI, _AUTH_KEY and _AUTH_SECRET")?;
        storage.ensure_bucket().await?;
        let images = client.database("deployment_service").collection::<bson::Document>("images");
        for i in a.start..a.start + a.artifacts {
            let id = format!("b0000000-0000-4000-8000-{i:012x}");
            storage.put(&id, a.artifact_size).await?;
            images.insert_one(artifacts::image_doc(&id, i, a.artifact_size)).await?;
        }
    }
    eprintln!("seeded {} devices and {} artifacts", a.devices, a.artifacts);
    Ok(())
}

/// The admin a user logs in as: `email` with the password `SEED_ADMIN_PASSWORD` (else the test
/// bed's [`crate::api::ADMIN_PASSWORD`]), bcrypt-hashed with Go's default cost 10 as useradm
/// stores it (useradm@1.22.5:user/useradm.go `CreateUser`, `bcrypt.DefaultCost`). Replaced when
/// it exists, so that a second seeding sets the password again.
async fn ensure_admin(db: &mongodb::Database, email: &str) -> Result<()> {
    let password = std::env::var("SEED_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::api::ADMIN_PASSWORD.into());
    let hash = bcrypt::hash(&password, 10).context("cannot hash the admin password")?;
    let users = db.collection::<bson::Document>("users");
    let now = bson::DateTime::now();
    if users.find_one(bson::doc! {"email": email}).await?.is_some() {
        users
            .update_one(bson::doc! {"email": email}, bson::doc! {"$set": {"password": &hash, "updated_ts": now}})
            .await?;
    } else {
        let id = uuid::Uuid::new_v4().to_string();
        users
            .insert_one(bson::doc! {"_id": id, "email": email, "password": &hash, "created_ts": now, "updated_ts": now, "tenant_id": ""})
            .await?;
    }
    eprintln!("seeded the admin user {email} (password from SEED_ADMIN_PASSWORD, else the test bed's default)");
    Ok(())
}
