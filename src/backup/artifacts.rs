//! What happens to the artifacts in a backup, decided before any downtime: the stack's own S3
//! store is copied into the bundle; an external bucket with versioning on is recorded (its
//! versions are the backup), one without versioning is copied (to a backup bucket/prefix, or into
//! the bundle) or the backup is refused unless `--skip-artifacts` says otherwise.

use super::manifest::ArtifactsKind;
use crate::engine::azure::{Account, AzureError};
use crate::engine::container::ContainerInfo;
use crate::engine::s3::{S3Bucket, S3Endpoint};
use crate::engine::store::ObjectStore;
pub use crate::engine::store::Versioning;
use crate::snapshot::{Stack, StorageKind};

/// What the operator asked for the artifacts (`--skip-artifacts`, `--artifacts-to DEST`, or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Do what the storage kind calls for, and refuse when that is not safe.
    Auto,
    /// Back up without the artifacts (said explicitly).
    Skip,
    /// Copy the artifacts here: `bundle`, or `s3://bucket/prefix` for a server-side copy.
    To(String),
}

/// The decided action.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The S3 store inside the stack, reachable on the project network only (through the helper
    /// sidecar): copy into the bundle.
    InStack {
        /// Its compose service.
        service: String,
        /// Its endpoint as deployments reaches it.
        endpoint: String,
        /// The artifact bucket (`mender-artifact-storage`).
        bucket: String,
        /// The region deployments uses.
        region: String,
        /// deployments' keys.
        keys: Keys,
    },
    /// An external store copied into the bundle.
    ToBundle {
        /// The external S3 bucket or Azure container.
        store: External,
        /// Its versioning, as found.
        versioning: Versioning,
    },
    /// An external store whose versioning keeps every object: record the current versions.
    RecordVersions {
        /// The external S3 bucket or Azure container.
        store: External,
    },
    /// An external S3 bucket copied server-side into another bucket/prefix.
    ToBucket {
        /// The S3 endpoint (`None`: AWS), region and keys.
        ep: S3Endpoint,
        /// The artifact bucket.
        bucket: String,
        /// The backup bucket.
        dest_bucket: String,
        /// The key prefix in the backup bucket.
        dest_prefix: String,
        /// The artifact bucket's versioning, as found.
        versioning: Versioning,
    },
    /// No copy, for the reason given.
    Skip {
        /// Why, for the manifest and the operator (`--skip-artifacts was given`).
        reason: String,
    },
}

/// An access key pair (never printed).
#[derive(Clone)]
pub struct Keys {
    /// The access key id.
    pub access: String,
    /// The secret key.
    pub secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// Why no safe artifact plan could be made; nothing has been stopped or copied yet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// An external store without versioning enabled and no `--artifacts-to`: a database backup
    /// alone could not bring its artifacts back, so the backup is refused.
    #[error(
        "the artifact bucket {bucket} ({endpoint}) has versioning {state}: a backup of the database alone could not bring back its artifacts"
    )]
    Unversioned {
        /// The artifact bucket or Azure container.
        bucket: String,
        /// Where it is (`https://s3.example.com`, `AWS`, the Azure blob endpoint).
        endpoint: String,
        /// Its versioning as the store answered (`off`, `suspended`).
        state: String,
    },
    /// No access keys for the store: neither the deployments service's settings named here nor the
    /// operator's `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.
    #[error("no credentials for the artifact storage: the deployments service has no {0}, and none were given")]
    NoCredentials(String),
    /// The deployments service's environment names no storage kind this tool knows (or deployments is
    /// not there to read).
    #[error("the artifact storage could not be identified from the deployments service's environment")]
    Unknown,
    /// `--artifacts-to` is neither `bundle` nor `s3://BUCKET[/PREFIX]`, or is an S3 destination for an
    /// Azure container.
    #[error("--artifacts-to {0}: expected `bundle` or s3://BUCKET[/PREFIX]")]
    BadDestination(String),
    /// The Azure account settings of deployments do not make an account (a connection string without
    /// `AccountName`/`AccountKey`, a bad URI).
    #[error("Azure Blob: {0}")]
    Azure(String),
}

/// Credentials: the deployments service's own settings (what the service itself uses against
/// that store), else the operator's environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: a
/// service that authenticates some other way). The service's come first because the operator's
/// AWS variables may be meant for something else: `backup --copy-to` reads the destination's keys
/// from them, and used for the stack's own store they failed the backup after the downtime.
fn keys(deployments: Option<&ContainerInfo>) -> Option<Keys> {
    let own = deployments.and_then(|d| {
        Some(Keys {
            access: d.env_var("DEPLOYMENTS_AWS_AUTH_KEY")?.to_string(),
            secret: d.env_var("DEPLOYMENTS_AWS_AUTH_SECRET")?.to_string(),
        })
    });
    own.or_else(|| {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Keys { access: env("AWS_ACCESS_KEY_ID")?, secret: env("AWS_SECRET_ACCESS_KEY")? })
    })
}

fn parse_dest(dest: &str) -> Result<(String, String), PlanError> {
    let rest = dest.strip_prefix("s3://").ok_or_else(|| PlanError::BadDestination(dest.into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(PlanError::BadDestination(dest.into()));
    }
    Ok((bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// A store outside the stack, whose versioning must be asked before deciding.
#[derive(Debug, Clone)]
pub enum External {
    /// An S3 bucket.
    S3 {
        /// The S3 endpoint (`None`: AWS), region and keys.
        ep: S3Endpoint,
        /// The artifact bucket.
        bucket: String,
    },
    /// An Azure Blob container.
    Azure {
        /// The storage account (name, key, blob endpoint).
        account: Account,
        /// The blob container holding the artifacts.
        container: String,
    },
}

impl External {
    /// The store's client.
    ///
    /// # Errors
    /// Azure settings that do not make a URL.
    pub fn open(&self) -> Result<Box<dyn ObjectStore>, AzureError> {
        Ok(match self {
            External::S3 { ep, bucket } => Box::new(S3Bucket::new(ep, bucket)),
            External::Azure { account, container } => Box::new(account.container(container)?),
        })
    }

    /// What the manifest calls it.
    pub fn kind(&self) -> ArtifactsKind {
        match self {
            External::S3 { .. } => ArtifactsKind::S3,
            External::Azure { .. } => ArtifactsKind::Azure,
        }
    }

    /// The bucket's or container's name.
    pub fn name(&self) -> &str {
        match self {
            External::S3 { bucket, .. } => bucket,
            External::Azure { container, .. } => container,
        }
    }

    /// `bucket NAME` or `Azure container NAME`.
    pub fn describe(&self) -> String {
        match self {
            External::S3 { bucket, .. } => format!("bucket {bucket}"),
            External::Azure { container, .. } => format!("Azure container {container}"),
        }
    }

    /// Where it is, for messages (never with credentials).
    pub fn endpoint(&self) -> String {
        match self {
            External::S3 { ep, .. } => ep.url.clone().unwrap_or_else(|| "AWS".into()),
            External::Azure { account, .. } => account.endpoint.clone(),
        }
    }
}

/// The external store deployments writes artifacts to, from the stack's storage settings and
/// deployments' keys (bucket defaults to `mender-artifact-storage`, region to `us-east-1`: the
/// deployments code defaults, `migrate-3.7-to-4.x.md` §1); `None` for a store inside the stack
/// or an unknown one.
///
/// # Errors
/// [`PlanError::NoCredentials`] when keys are missing; [`PlanError::Unknown`] or
/// [`PlanError::Azure`] when the Azure settings cannot be read.
pub fn external_store(stack: &Stack, deployments: Option<&ContainerInfo>) -> Result<Option<External>, PlanError> {
    let st = &stack.storage;
    let bucket = st.bucket.clone().unwrap_or_else(|| "mender-artifact-storage".into());
    match st.kind {
        StorageKind::S3 => {
            let k =
                keys(deployments).ok_or_else(|| PlanError::NoCredentials("DEPLOYMENTS_AWS_AUTH_KEY/SECRET".into()))?;
            let region = st.region.clone().unwrap_or_else(|| "us-east-1".into());
            let ep = S3Endpoint { url: st.endpoint.clone(), region, access_key: k.access, secret_key: k.secret };
            Ok(Some(External::S3 { ep, bucket }))
        }
        StorageKind::Azure => Ok(Some(External::Azure { account: azure_account(deployments)?, container: bucket })),
        _ => Ok(None),
    }
}

/// Decides, from the stack's storage and the operator's choice; `versioning` is asked only for
/// external stores (it needs the network).
///
/// # Errors
/// No credentials, an unversioned external store without a destination, a bad destination.
pub fn decide(
    stack: &Stack,
    deployments: Option<&ContainerInfo>,
    choice: &Choice,
    versioning: Option<Versioning>,
) -> Result<Plan, PlanError> {
    if *choice == Choice::Skip {
        return Ok(Plan::Skip { reason: "--skip-artifacts was given".into() });
    }
    let st = &stack.storage;
    if st.kind == StorageKind::Unknown {
        return Err(PlanError::Unknown);
    }
    if st.kind == StorageKind::Volume {
        let keys =
            keys(deployments).ok_or_else(|| PlanError::NoCredentials("DEPLOYMENTS_AWS_AUTH_KEY/SECRET".into()))?;
        return Ok(Plan::InStack {
            service: st.service.clone().unwrap_or_default(),
            endpoint: st.endpoint.clone().unwrap_or_default(),
            bucket: st.bucket.clone().unwrap_or_else(|| "mender-artifact-storage".into()),
            region: st.region.clone().unwrap_or_else(|| "us-east-1".into()),
            keys,
        });
    }
    let store = external_store(stack, deployments)?.ok_or(PlanError::Unknown)?;
    let versioning = versioning.unwrap_or(Versioning::Off);
    match (choice, &store) {
        (Choice::To(d), _) if d == "bundle" => Ok(Plan::ToBundle { store, versioning }),
        (Choice::To(d), External::S3 { ep, bucket }) => {
            let (dest_bucket, dest_prefix) = parse_dest(d)?;
            Ok(Plan::ToBucket { ep: ep.clone(), bucket: bucket.clone(), dest_bucket, dest_prefix, versioning })
        }
        (Choice::To(d), External::Azure { .. }) => Err(PlanError::BadDestination(d.clone())),
        _ if versioning == Versioning::Enabled => Ok(Plan::RecordVersions { store }),
        _ => Err(PlanError::Unversioned {
            bucket: store.name().to_string(),
            endpoint: store.endpoint(),
            state: versioning.to_string(),
        }),
    }
}

/// The account deployments uses: a connection string, or the shared-key triple.
fn azure_account(deployments: Option<&ContainerInfo>) -> Result<Account, PlanError> {
    let d = deployments.ok_or(PlanError::Unknown)?;
    let env = |k: &str| d.env_var(k).filter(|v| !v.is_empty());
    if let Some(conn) = env("DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING") {
        return Account::from_connection_string(conn).map_err(|e| PlanError::Azure(e.to_string()));
    }
    let name = env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_ACCOUNT_NAME");
    let key = env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_ACCOUNT_KEY");
    match (name, key) {
        (Some(name), Some(key)) => {
            let default = format!("https://{name}.blob.core.windows.net");
            let uri = env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_URI").unwrap_or(&default);
            Account::new(name, key, uri).map_err(|e| PlanError::Azure(e.to_string()))
        }
        _ => Err(PlanError::NoCredentials(
            "DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING or DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_*".into(),
        )),
    }
}
