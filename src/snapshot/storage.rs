//! Where the artifacts live, read from the deployments service's environment (never its secrets).

use serde::Serialize;

use crate::catalog::{ImageRef, Release};
use crate::engine::container::ContainerInfo;

/// What kind of store deployments keeps the artifacts in.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StorageKind {
    /// An S3 server inside the stack (MinIO, SeaweedFS) keeping its data in a Docker volume.
    Volume,
    /// An S3 bucket outside the stack (AWS or another endpoint).
    S3,
    /// An Azure Blob container (`DEPLOYMENTS_STORAGE_DEFAULT=azure`).
    Azure,
    /// No deployments container to read the settings from.
    Unknown,
}

/// The artifact store as deployments' environment describes it (no secret values).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Storage {
    /// In the stack, an external S3 bucket, Azure, or unknown.
    pub kind: StorageKind,
    /// The compose service of an in-stack store.
    pub service: Option<String>,
    /// The Docker volume of an in-stack store (`mender-artifacts`).
    pub volume: Option<String>,
    /// Endpoint URL with any user information removed.
    pub endpoint: Option<String>,
    /// The bucket or Azure container (`DEPLOYMENTS_STORAGE_BUCKET`, default `mender-artifact-storage`).
    pub bucket: Option<String>,
    /// The S3 region (`DEPLOYMENTS_AWS_REGION`, default `us-east-1`: the deployments defaults,
    /// `migrate-3.7-to-4.x.md` §1).
    pub region: Option<String>,
    /// The Azure storage account name.
    pub account: Option<String>,
    /// Whether credentials are configured (their values are never reported).
    pub credentials: bool,
}

const DEFAULT_BUCKET: &str = "mender-artifact-storage";

fn deployments<'a>(containers: &'a [ContainerInfo], release: Option<&Release>) -> Option<&'a ContainerInfo> {
    let by_catalog = release.and_then(|r| {
        r.services
            .iter()
            .find(|(_, f)| ImageRef::parse(&f.image, None).short_name() == "deployments")
            .map(|(n, _)| n.clone())
    });
    containers
        .iter()
        .find(|c| Some(&c.service) == by_catalog.as_ref())
        .or_else(|| containers.iter().find(|c| c.service.ends_with("deployments")))
}

/// `user:pass@` removed from a URL.
pub fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() && !rest.contains('/') {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.rsplit_once('@').map_or(url, |(_, h)| h).to_string(),
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap_or(host).to_string()
}

/// A field of an Azure connection string (`AccountName=…;BlobEndpoint=…`).
fn conn_field(conn: &str, key: &str) -> Option<String> {
    conn.split(';')
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.to_string()))
}

/// Reads the store from the deployments container's environment (`DEPLOYMENTS_AWS_URI`,
/// `DEPLOYMENTS_STORAGE_*`, `DEPLOYMENTS_AZURE_AUTH_*`): in the stack when the URI's host is one of
/// the project's services (`http://minio:9000`), else external.
pub fn from_containers(containers: &[ContainerInfo], release: Option<&Release>) -> Storage {
    let unknown = Storage {
        kind: StorageKind::Unknown,
        service: None,
        volume: None,
        endpoint: None,
        bucket: None,
        region: None,
        account: None,
        credentials: false,
    };
    let Some(d) = deployments(containers, release) else {
        return unknown;
    };
    let env = |k: &str| d.env_var(k).filter(|v| !v.is_empty()).map(str::to_string);
    let bucket = Some(env("DEPLOYMENTS_STORAGE_BUCKET").unwrap_or_else(|| DEFAULT_BUCKET.into()));
    if env("DEPLOYMENTS_STORAGE_DEFAULT").as_deref() == Some("azure") {
        let conn = env("DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING");
        let account = env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_ACCOUNT_NAME")
            .or_else(|| conn.as_deref().and_then(|c| conn_field(c, "AccountName")));
        let endpoint = env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_URI")
            .or_else(|| conn.as_deref().and_then(|c| conn_field(c, "BlobEndpoint")));
        let credentials = conn.is_some() || env("DEPLOYMENTS_AZURE_AUTH_SHARED_KEY_ACCOUNT_KEY").is_some();
        return Storage {
            kind: StorageKind::Azure,
            endpoint: endpoint.map(|e| without_userinfo(&e)),
            bucket,
            account,
            credentials,
            ..unknown
        };
    }
    let uri = env("DEPLOYMENTS_AWS_URI");
    let credentials = env("DEPLOYMENTS_AWS_AUTH_KEY").is_some() && env("DEPLOYMENTS_AWS_AUTH_SECRET").is_some();
    let region = Some(env("DEPLOYMENTS_AWS_REGION").unwrap_or_else(|| "us-east-1".into()));
    let in_stack = uri.as_deref().map(host_of).and_then(|h| containers.iter().find(|c| c.service == h));
    match in_stack {
        Some(store) => Storage {
            kind: StorageKind::Volume,
            service: Some(store.service.clone()),
            volume: store.mounts.iter().find(|m| m.kind == "volume").and_then(|m| m.name.clone()),
            endpoint: uri.map(|u| without_userinfo(&u)),
            bucket,
            region,
            credentials,
            ..unknown
        },
        None => Storage {
            kind: StorageKind::S3,
            endpoint: uri.map(|u| without_userinfo(&u)),
            bucket,
            region,
            credentials,
            ..unknown
        },
    }
}
