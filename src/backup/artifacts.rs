//! What happens to the artifacts in a backup, decided before any downtime: the stack's own S3
//! store is copied into the bundle; an external bucket with versioning on is recorded (its
//! versions are the backup), one without versioning is copied (to a backup bucket/prefix, or into
//! the bundle) or the backup is refused unless `--skip-artifacts` says otherwise.

use serde::{Deserialize, Serialize};

use crate::engine::azure::Account;
use crate::engine::s3::S3Endpoint;
use crate::snapshot::{ContainerInfo, Stack, StorageKind};

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
    /// The S3 store inside the stack, reachable on the project network: copy into the bundle.
    InStack {
        service: String,
        endpoint: String,
        bucket: String,
        region: String,
        keys: Keys,
    },
    /// An external bucket whose versioning keeps every object: record the current versions.
    RecordVersions {
        ep: S3Endpoint,
        bucket: String,
    },
    /// An external bucket copied into the bundle.
    ExternalToBundle {
        ep: S3Endpoint,
        bucket: String,
        versioning: Option<String>,
    },
    /// An external bucket copied server-side into another bucket/prefix.
    ExternalToBucket {
        ep: S3Endpoint,
        bucket: String,
        dest_bucket: String,
        dest_prefix: String,
        versioning: Option<String>,
    },
    /// An Azure container whose account keeps blob versions: record the current versions.
    AzureVersions {
        account: Account,
        container: String,
    },
    /// An Azure container copied into the bundle.
    AzureToBundle {
        account: Account,
        container: String,
    },
    Skip {
        reason: String,
    },
}

#[derive(Clone)]
pub struct Keys {
    pub access: String,
    pub secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
    /// Never enabled.
    Off,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "the artifact bucket {bucket} ({endpoint}) has versioning {state}: a backup of the database alone could not bring back its artifacts"
    )]
    Unversioned { bucket: String, endpoint: String, state: String },
    #[error("no credentials for the artifact storage: the deployments service has no {0}, and none were given")]
    NoCredentials(String),
    #[error("the artifact storage could not be identified from the deployments service's environment")]
    Unknown,
    #[error("--artifacts-to {0}: expected `bundle` or s3://BUCKET[/PREFIX]")]
    BadDestination(String),
    #[error("Azure Blob: {0}")]
    Azure(String),
}

/// Credentials: the operator's environment first (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY),
/// then the deployments service's own settings.
fn keys(deployments: Option<&ContainerInfo>) -> Option<Keys> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(access), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Some(Keys { access, secret });
    }
    let d = deployments?;
    Some(Keys {
        access: d.env_var("DEPLOYMENTS_AWS_AUTH_KEY")?.to_string(),
        secret: d.env_var("DEPLOYMENTS_AWS_AUTH_SECRET")?.to_string(),
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
pub enum External {
    S3 { ep: S3Endpoint, bucket: String },
    Azure { account: Account, container: String },
}

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
/// external buckets (it needs the network).
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
    let bucket = st.bucket.clone().unwrap_or_else(|| "mender-artifact-storage".into());
    let region = st.region.clone().unwrap_or_else(|| "us-east-1".into());
    match st.kind {
        StorageKind::Unknown => Err(PlanError::Unknown),
        StorageKind::Azure => {
            let account = azure_account(deployments)?;
            let container = bucket;
            let versioned = versioning == Some(Versioning::Enabled);
            match choice {
                Choice::To(d) if d == "bundle" => Ok(Plan::AzureToBundle { account, container }),
                Choice::To(d) => Err(PlanError::BadDestination(d.clone())),
                _ if versioned => Ok(Plan::AzureVersions { account, container }),
                _ => Err(PlanError::Unversioned {
                    endpoint: account.endpoint.clone(),
                    bucket: container,
                    state: "off".into(),
                }),
            }
        }
        StorageKind::Volume => {
            let keys =
                keys(deployments).ok_or_else(|| PlanError::NoCredentials("DEPLOYMENTS_AWS_AUTH_KEY/SECRET".into()))?;
            let endpoint = st.endpoint.clone().unwrap_or_default();
            Ok(Plan::InStack { service: st.service.clone().unwrap_or_default(), endpoint, bucket, region, keys })
        }
        StorageKind::S3 => {
            let k =
                keys(deployments).ok_or_else(|| PlanError::NoCredentials("DEPLOYMENTS_AWS_AUTH_KEY/SECRET".into()))?;
            let ep = S3Endpoint { url: st.endpoint.clone(), region, access_key: k.access, secret_key: k.secret };
            let v = versioning.unwrap_or(Versioning::Off);
            let state = match v {
                Versioning::Enabled => None,
                Versioning::Suspended => Some("suspended".to_string()),
                Versioning::Off => Some("off".to_string()),
            };
            match (choice, state) {
                (Choice::To(d), state) if d == "bundle" => Ok(Plan::ExternalToBundle { ep, bucket, versioning: state }),
                (Choice::To(d), state) => {
                    let (dest_bucket, dest_prefix) = parse_dest(d)?;
                    Ok(Plan::ExternalToBucket { ep, bucket, dest_bucket, dest_prefix, versioning: state })
                }
                (_, None) => Ok(Plan::RecordVersions { ep, bucket }),
                (_, Some(state)) => Err(PlanError::Unversioned {
                    endpoint: ep.url.clone().unwrap_or_else(|| "AWS".into()),
                    bucket,
                    state,
                }),
            }
        }
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
