//! The MongoDB facts an upgrade depends on, read through the driver from inside the network.

use std::time::Duration;

use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use serde::{Deserialize, Serialize};

/// What to read from MongoDB.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MongoQuery {
    /// Connection string, from inside the network (`mongodb://mender-mongo:27017`).
    pub uri: String,
    /// Databases whose `migration_info` to read.
    pub dbs: Vec<String>,
    /// Also count the documents of every collection (exact counts).
    #[serde(default)]
    pub counts: bool,
    /// Report every database except admin, config and local (not only `dbs`).
    #[serde(default)]
    pub all_dbs: bool,
    /// Also compute each collection's order-independent content digest (a full read).
    #[serde(default)]
    pub digests: bool,
}

/// The MongoDB facts an upgrade depends on; a server that did not answer gives
/// `reachable: false` and the error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MongoReport {
    /// The driver reached the server (5-second timeouts) and `buildInfo` answered.
    pub reachable: bool,
    /// The driver's error when it did not (or when a later query failed).
    pub error: Option<String>,
    /// What the server reports in buildInfo.
    pub version: Option<String>,
    /// featureCompatibilityVersion (`4.4`); `None` when `getParameter` did not answer it.
    pub fcv: Option<String>,
    /// FerretDB answers buildInfo with a `ferretdb` section (the test bed's stand-in for mongod,
    /// which keeps a featureCompatibilityVersion as mongod does but restores no indexes).
    pub ferretdb: bool,
    /// The databases asked (`dbs`, and all others with `all_dbs`), in that order.
    pub databases: Vec<DbReport>,
}

/// One database's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DbReport {
    /// Database name (`deployment_service`).
    pub name: String,
    /// `listDatabases` lists it (a database without data does not exist for MongoDB).
    pub exists: bool,
    /// Newest `migration_info` version, e.g. "1.2.11".
    pub migration: Option<String>,
    /// Per collection, sorted by name; filled only when counts or digests were asked.
    pub collections: Vec<CollectionCount>,
    /// `sizeOnDisk` from `listDatabases`, in bytes.
    pub size_bytes: Option<u64>,
    /// When the database was first migrated (its oldest `migration_info` entry, RFC 3339): the
    /// birth of this data, the same after upgrades and restores, new for a stack made again.
    #[serde(default)]
    pub born: Option<String>,
}

/// One collection's exact count, and its content digest when asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CollectionCount {
    /// Collection name (`deployments`).
    pub name: String,
    /// Exact document count (`countDocuments`).
    pub count: u64,
    /// Order-independent digest of the documents, the same as the archive reader's
    /// ([`mongo_archive::DocDigest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

pub(super) async fn connect(uri: &str) -> mongodb::error::Result<Client> {
    let mut opts = ClientOptions::parse(uri).await?;
    opts.server_selection_timeout = Some(Duration::from_secs(5));
    opts.connect_timeout = Some(Duration::from_secs(5));
    opts.direct_connection = Some(true);
    opts.app_name = Some("mender-compose-upgrade".into());
    Client::with_options(opts)
}

/// Drops every database except the server's own (admin, config, local); returns the names dropped.
///
/// # Errors
/// The driver's error (no server, a drop refused); databases dropped before it stay dropped.
pub async fn wipe(uri: &str) -> mongodb::error::Result<Vec<String>> {
    let client = connect(uri).await?;
    let mut dropped = Vec::new();
    for name in client.list_database_names().await? {
        if !["admin", "config", "local"].contains(&name.as_str()) {
            client.database(&name).drop().await?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

/// How many documents of `db.collection` match `filter` (a MongoDB query as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountQuery {
    /// The MongoDB connection string.
    pub uri: String,
    /// The database.
    pub db: String,
    /// The collection.
    pub collection: String,
    /// The query, as JSON (`{"status": {"$in": [1, 2]}}`).
    pub filter: serde_json::Value,
}

/// Counts the documents `q` selects.
///
/// # Errors
/// The filter is no document, or MongoDB cannot be reached or refuses the count.
pub async fn count(q: &CountQuery) -> Result<u64, String> {
    let filter = bson::serialize_to_document(&q.filter).map_err(|e| format!("filter {}: {e}", q.filter))?;
    let client = connect(&q.uri).await.map_err(|e| e.to_string())?;
    client
        .database(&q.db)
        .collection::<Document>(&q.collection)
        .count_documents(filter)
        .await
        .map_err(|e| e.to_string())
}

/// After the image of a new MongoDB major runs: the featureCompatibilityVersion must still be the
/// old major (or already the new one), and is raised to the new one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FcvJob {
    /// Connection string, from inside the network (`mongodb://mender-mongo:27017`).
    pub uri: String,
    /// The featureCompatibilityVersion the data must have now: the old major (`4.4` before `5.0`).
    pub require: String,
    /// The featureCompatibilityVersion to raise it to: the new major (`5.0`).
    pub set: String,
    /// MongoDB 7.0 and later refuse the change without `confirm: true`.
    pub confirm: bool,
}

/// What [`set_fcv`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FcvOutcome {
    /// The featureCompatibilityVersion already was the one asked for (a resumed step).
    Already {
        /// The version (`6.0`).
        version: String,
    },
    /// Raised from the required version, and read back.
    Raised {
        /// The version before (`5.0`).
        from: String,
        /// The version now (`6.0`).
        to: String,
    },
}

impl std::fmt::Display for FcvOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FcvOutcome::Already { version } => write!(f, "featureCompatibilityVersion already {version}"),
            FcvOutcome::Raised { from, to } => write!(f, "featureCompatibilityVersion {from} → {to}"),
        }
    }
}

/// Why [`set_fcv`] did not raise the featureCompatibilityVersion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum FcvError {
    /// No connection to the server.
    #[error("cannot reach MongoDB: {0}")]
    Unreachable(String),
    /// `getParameter` failed.
    #[error("cannot read the featureCompatibilityVersion: {0}")]
    Read(String),
    /// The FCV is neither the required one nor the target: nothing was sent.
    #[error("featureCompatibilityVersion is {found}, expected {require} before raising it to {set}")]
    Unexpected {
        /// The version found.
        found: String,
        /// The version the step needs first.
        require: String,
        /// The version the step sets.
        set: String,
    },
    /// The server refused the command; `reason` is its error, code and message.
    #[error("setFeatureCompatibilityVersion {set} was refused: {reason}")]
    Refused {
        /// The version asked for.
        set: String,
        /// The server's error (code and message).
        reason: String,
    },
    /// The command succeeded but the FCV read back is not the one set.
    #[error("featureCompatibilityVersion reads {found} after setting it to {set}")]
    NotApplied {
        /// The version read back.
        found: String,
        /// The version set.
        set: String,
    },
}

/// The server's featureCompatibilityVersion as `getParameter` reports it.
async fn read_fcv(admin: &Database) -> mongodb::error::Result<Option<String>> {
    let d = admin.run_command(doc! {"getParameter": 1, "featureCompatibilityVersion": 1}).await?;
    Ok(d.get_document("featureCompatibilityVersion").ok().and_then(|f| f.get_str("version").ok()).map(str::to_string))
}

/// Checks the featureCompatibilityVersion is `job.require` (or already `job.set`), sets it to
/// `job.set` and reads it back.
///
/// # Errors
/// [`FcvError`]: unreachable, unreadable, not the required version, refused, or not applied.
pub async fn set_fcv(job: &FcvJob) -> Result<FcvOutcome, FcvError> {
    let client = connect(&job.uri).await.map_err(|e| FcvError::Unreachable(e.to_string()))?;
    let admin = client.database("admin");
    let read = |e: mongodb::error::Error| FcvError::Read(e.to_string());
    let current = read_fcv(&admin).await.map_err(read)?.unwrap_or_default();
    if current == job.set {
        return Ok(FcvOutcome::Already { version: current });
    }
    if current != job.require {
        return Err(FcvError::Unexpected { found: current, require: job.require.clone(), set: job.set.clone() });
    }
    let mut cmd = doc! {"setFeatureCompatibilityVersion": &job.set};
    if job.confirm {
        cmd.insert("confirm", true);
    }
    admin.run_command(cmd).await.map_err(|e| FcvError::Refused { set: job.set.clone(), reason: e.to_string() })?;
    let after = read_fcv(&admin).await.map_err(read)?.unwrap_or_default();
    if after != job.set {
        return Err(FcvError::NotApplied { found: after, set: job.set.clone() });
    }
    Ok(FcvOutcome::Raised { from: current, to: after })
}

/// Reads the report a [`MongoQuery`] asks for; an unreachable server is `reachable: false`.
pub async fn report(q: &MongoQuery) -> MongoReport {
    match try_report(q).await {
        Ok(r) => r,
        Err(e) => MongoReport { reachable: false, error: Some(e.to_string()), ..Default::default() },
    }
}

async fn try_report(q: &MongoQuery) -> mongodb::error::Result<MongoReport> {
    let client = connect(&q.uri).await?;
    let admin = client.database("admin");
    let info = admin.run_command(doc! {"buildInfo": 1}).await?;
    let fcv = read_fcv(&admin).await.ok().flatten();
    let listed = admin.run_command(doc! {"listDatabases": 1}).await?;
    let sizes: Vec<(String, u64)> = listed
        .get_array("databases")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .filter_map(|d| Some((d.get_str("name").ok()?.to_string(), number(d.get("sizeOnDisk")).unwrap_or(0))))
                .collect()
        })
        .unwrap_or_default();
    let mut names: Vec<String> = q.dbs.clone();
    if q.all_dbs {
        for (n, _) in &sizes {
            if !["admin", "config", "local"].contains(&n.as_str()) && !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let mut databases = Vec::new();
    for name in &names {
        let size = sizes.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        let db = client.database(name);
        databases.push(db_report(&db, size.is_some(), size, q).await?);
    }
    Ok(MongoReport {
        reachable: true,
        error: None,
        version: info.get_str("version").ok().map(str::to_string),
        fcv,
        ferretdb: info.contains_key("ferretdb") || info.contains_key("ferretdbVersion"),
        databases,
    })
}

fn number(b: Option<&Bson>) -> Option<u64> {
    match b? {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(n) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    }
}

async fn db_report(db: &Database, exists: bool, size: Option<u64>, q: &MongoQuery) -> mongodb::error::Result<DbReport> {
    let mut report = DbReport { name: db.name().to_string(), exists, size_bytes: size, ..Default::default() };
    if !exists {
        return Ok(report);
    }
    (report.migration, report.born) = migrations(db).await?;
    if q.counts || q.digests {
        let mut names = db.list_collection_names().await?;
        names.sort();
        for name in names {
            let count = db.collection::<Document>(&name).count_documents(doc! {}).await?;
            let digest = if q.digests { Some(digest(db, &name).await?) } else { None };
            report.collections.push(CollectionCount { name, count, digest });
        }
    }
    Ok(report)
}

/// The same order-independent digest the archive reader computes, over the stored documents.
async fn digest(db: &Database, coll: &str) -> mongodb::error::Result<String> {
    let mut d = mongo_archive::DocDigest::default();
    let mut cursor = db.collection::<bson::RawDocumentBuf>(coll).find(doc! {}).await?;
    while let Some(doc) = cursor.try_next().await? {
        d.add(doc.as_bytes());
    }
    Ok(d.hex())
}

/// The newest `{version: {major, minor, patch}}` entry of `migration_info`, and the time of its
/// oldest entry: when the database was first migrated, which no later migration, upgrade or
/// restore of the same data changes (RFC 3339, milliseconds).
async fn migrations(db: &Database) -> mongodb::error::Result<(Option<String>, Option<String>)> {
    let mut cursor = db.collection::<Document>("migration_info").find(doc! {}).await?;
    let mut newest: Option<semver::Version> = None;
    let mut born: Option<bson::DateTime> = None;
    while let Some(d) = cursor.try_next().await? {
        if let Ok(t) = d.get_datetime("timestamp") {
            born = Some(born.map_or(*t, |b| b.min(*t)));
        }
        let Ok(v) = d.get_document("version") else {
            continue;
        };
        let part = |k: &str| number(v.get(k)).unwrap_or(0);
        let found = semver::Version::new(part("major"), part("minor"), part("patch"));
        if newest.as_ref().is_none_or(|n| found > *n) {
            newest = Some(found);
        }
    }
    let born = born.and_then(|b| b.try_to_rfc3339_string().ok());
    Ok((newest.map(|v| v.to_string()), born))
}
