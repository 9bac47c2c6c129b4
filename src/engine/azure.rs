//! Azure Blob storage through the official SDK (azure_storage_blob). The SDK authenticates with
//! Entra ID or a SAS in the URL only; Mender installs configure an account key (a connection
//! string or the shared-key triple), so an account SAS is signed here from that key.

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, BlockLookupList, ListBlobsIncludeItem};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient};
use base64::Engine;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::store::{Listed, ObjectStore, StoreError, Versioning};

/// The Azure settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// A field is missing or malformed.
    #[error("the Azure connection settings are incomplete or invalid: {0}")]
    Settings(String),
}

/// An account: its name, blob endpoint, and key (never printed).
#[derive(Clone)]
pub struct Account {
    /// The account name.
    pub name: String,
    /// The blob service endpoint, without a trailing slash.
    pub endpoint: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("name", &self.name).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Account {
    /// From `AccountName=…;AccountKey=…;BlobEndpoint=…` (or the default endpoint of the account).
    ///
    /// # Errors
    /// [`AzureError::Settings`] without `AccountName` or `AccountKey`, or with a key that is not
    /// base64.
    pub fn from_connection_string(conn: &str) -> Result<Account, AzureError> {
        let field = |k: &str| {
            conn.split(';').find_map(|kv| {
                kv.split_once('=')
                    .filter(|(key, _)| key.trim().eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.trim().to_string())
            })
        };
        let name = field("AccountName").ok_or_else(|| AzureError::Settings("no AccountName".into()))?;
        let key = field("AccountKey").ok_or_else(|| AzureError::Settings("no AccountKey".into()))?;
        let protocol = field("DefaultEndpointsProtocol").unwrap_or_else(|| "https".into());
        let suffix = field("EndpointSuffix").unwrap_or_else(|| "core.windows.net".into());
        let endpoint = field("BlobEndpoint").unwrap_or_else(|| format!("{protocol}://{name}.blob.{suffix}"));
        Account::new(&name, &key, &endpoint)
    }

    /// The account `name` with its base64 key at `endpoint`.
    ///
    /// # Errors
    /// A key that is not base64.
    pub fn new(name: &str, key_base64: &str, endpoint: &str) -> Result<Account, AzureError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_base64)
            .map_err(|_| AzureError::Settings("the account key is not base64".into()))?;
        Ok(Account { name: name.into(), endpoint: endpoint.trim_end_matches('/').into(), key })
    }

    /// An account SAS for the blob service (all resource types), valid for `ttl`.
    pub fn sas(&self, ttl: Duration) -> String {
        let expiry = humantime::format_rfc3339_seconds(SystemTime::now() + ttl).to_string();
        let (sv, ss, srt, sp, spr) = ("2021-08-06", "b", "sco", "rwdlacup", "https,http");
        // Account SAS string-to-sign, version 2020-12-06 and later.
        let to_sign = format!("{}\n{sp}\n{ss}\n{srt}\n\n{expiry}\n\n{spr}\n{sv}\n\n", self.name);
        // Invariant: HMAC-SHA256 takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}", enc(&expiry), enc(spr), enc(&sig))
    }

    /// The container `name` of this account, reached with an account SAS valid for six hours.
    ///
    /// # Errors
    /// An endpoint that is not a URL.
    pub fn container(&self, name: &str) -> Result<AzureContainer, AzureError> {
        let url = Url::parse(&format!("{}?{}", self.endpoint, self.sas(Duration::from_secs(6 * 3600))))
            .map_err(|e| AzureError::Settings(format!("endpoint {}: {e}", self.endpoint)))?;
        let svc = BlobServiceClient::new(url, None, None).map_err(|e| AzureError::Settings(e.to_string()))?;
        Ok(AzureContainer { client: svc.blob_container_client(name), name: name.to_string() })
    }
}

/// A blob container.
pub struct AzureContainer {
    /// The SDK's client.
    pub client: BlobContainerClient,
    /// The container's name.
    pub name: String,
}

impl AzureContainer {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::List { store: format!("{} ({what})", self.describe()), message: e.to_string() }
    }
}

#[async_trait]
impl ObjectStore for AzureContainer {
    fn describe(&self) -> String {
        format!("Azure container {}", self.name)
    }

    async fn list(&self, versions: bool) -> Result<Vec<Listed>, StoreError> {
        let opts = BlobContainerClientListBlobsOptions {
            include: versions.then(|| vec![ListBlobsIncludeItem::Versions]),
            ..Default::default()
        };
        let mut pager = self.client.list_blobs(Some(opts)).map_err(|e| self.err("list", e))?.into_pages();
        let mut out = Vec::new();
        while let Some(page) = pager.next().await {
            let page = page.map_err(|e| self.err("list", e))?.into_model().map_err(|e| self.err("list", e))?;
            for b in page.blob_items {
                // With versions, only the current version of each blob (its id is the backup).
                if b.is_current_version == Some(false) {
                    continue;
                }
                let props = b.properties.as_ref();
                out.push(Listed {
                    key: b.name.clone().unwrap_or_default(),
                    size: props.and_then(|p| p.content_length).unwrap_or(0),
                    etag: props.and_then(|p| p.etag.as_ref()).map(|e| e.to_string()),
                    version_id: b.version_id.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Blob versioning is an account setting the data plane can only read off the listing.
    async fn versioning(&self) -> Result<Versioning, StoreError> {
        let versioned = self.list(true).await?.iter().any(|b| b.version_id.is_some());
        Ok(if versioned { Versioning::Enabled } else { Versioning::Off })
    }

    async fn get(
        &self,
        key: &str,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(String, u64), StoreError> {
        let oerr = |message: String| StoreError::Object { op: "download", key: key.to_string(), message };
        let resp = self.client.blob_client(key).download(None).await.map_err(|e| oerr(e.to_string()))?;
        let mut body = resp.body;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| oerr(e.to_string()))?;
            h.update(&chunk);
            n += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| oerr(e.to_string()))?;
        }
        Ok((hex::encode(h.finalize()), n))
    }

    /// In 8 MiB blocks, committed as one block list.
    async fn put(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        const BLOCK: usize = 8 << 20;
        let oerr = |message: String| StoreError::Object { op: "upload", key: key.to_string(), message };
        let mut f = tokio::fs::File::open(path).await.map_err(|e| oerr(e.to_string()))?;
        let blob = self.client.blob_client(key).block_blob_client();
        let mut ids = Vec::new();
        let mut buf = vec![0u8; BLOCK];
        loop {
            let mut filled = 0;
            while filled < BLOCK {
                let n = f.read(&mut buf[filled..]).await.map_err(|e| oerr(e.to_string()))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 && !ids.is_empty() {
                break;
            }
            let id = format!("{:08}", ids.len()).into_bytes();
            let body = RequestContent::from(buf[..filled].to_vec());
            blob.stage_block(&id, filled as u64, body, None).await.map_err(|e| oerr(e.to_string()))?;
            ids.push(id);
            if filled < BLOCK {
                break;
            }
        }
        let list = BlockLookupList { latest: Some(ids), ..Default::default() };
        let content = RequestContent::try_from(list).map_err(|e| oerr(e.to_string()))?;
        blob.commit_block_list(content, None).await.map_err(|e| oerr(e.to_string()))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client.blob_client(key).delete(None).await.map_err(|e| StoreError::Object {
            op: "delete",
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok(())
    }

    async fn exists(&self) -> Result<bool, StoreError> {
        self.client.exists().await.map_err(|e| self.err("lookup", e))
    }

    async fn create(&self) -> Result<(), StoreError> {
        if !self.client.exists().await.map_err(|e| self.err("lookup", e))? {
            self.client.create(None).await.map_err(|e| self.err("create", e))?;
        }
        Ok(())
    }
}
