//! Azure Blob storage through the official SDK (azure_storage_blob). The SDK authenticates with
//! Entra ID or a SAS in the URL only; Mender installs configure an account key (a connection
//! string or the shared-key triple), so an account SAS is signed here from that key.

use std::path::Path;
use std::time::{Duration, SystemTime};

use azure_core::http::{RequestContent, Url};
use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, BlockLookupList, ListBlobsIncludeItem};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient};
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backup::bundle::private_file;
use crate::backup::manifest::InventoryEntry;
use crate::backup::objects::{Copied, object_file, read_inventory};

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("the Azure connection settings are incomplete or invalid: {0}")]
    Settings(String),
    #[error("Azure Blob {what} failed: {message}")]
    Call { what: String, message: String },
    #[error("writing {path} failed: {source}")]
    Write { path: String, source: std::io::Error },
}

/// An account: its name, blob endpoint, and key (never printed).
#[derive(Clone)]
pub struct Account {
    pub name: String,
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
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}", enc(&expiry), enc(spr), enc(&sig))
    }

    pub fn container(&self, name: &str) -> Result<BlobContainerClient, AzureError> {
        let url = Url::parse(&format!("{}?{}", self.endpoint, self.sas(Duration::from_secs(6 * 3600))))
            .map_err(|e| AzureError::Settings(format!("endpoint {}: {e}", self.endpoint)))?;
        let svc = BlobServiceClient::new(url, None, None).map_err(|e| call("client", e))?;
        Ok(svc.blob_container_client(name))
    }
}

fn call(what: &str, e: impl std::fmt::Display) -> AzureError {
    AzureError::Call { what: what.into(), message: e.to_string() }
}

struct Listed {
    name: String,
    size: u64,
    etag: Option<String>,
    version: Option<String>,
}

async fn list(c: &BlobContainerClient, versions: bool) -> Result<Vec<Listed>, AzureError> {
    let opts = BlobContainerClientListBlobsOptions {
        include: versions.then(|| vec![ListBlobsIncludeItem::Versions]),
        ..Default::default()
    };
    let mut pager = c.list_blobs(Some(opts)).map_err(|e| call("list", e))?.into_pages();
    let mut out = Vec::new();
    while let Some(page) = pager.next().await {
        let page = page.map_err(|e| call("list", e))?.into_model().map_err(|e| call("list", e))?;
        for b in page.blob_items {
            let props = b.properties.as_ref();
            out.push(Listed {
                name: b.name.clone().unwrap_or_default(),
                size: props.and_then(|p| p.content_length).unwrap_or(0),
                etag: props.and_then(|p| p.etag.as_ref()).map(|e| e.to_string()),
                version: b.version_id.clone().filter(|_| b.is_current_version != Some(false)),
            });
        }
    }
    Ok(out)
}

/// Whether the account keeps blob versions (an account setting the data plane can only read).
pub async fn versioned(c: &BlobContainerClient) -> Result<bool, AzureError> {
    Ok(list(c, true).await?.iter().any(|b| b.version.is_some()))
}

pub async fn size(c: &BlobContainerClient) -> Result<Copied, AzureError> {
    let l = list(c, false).await?;
    Ok(Copied { objects: l.len() as u64, bytes: l.iter().map(|b| b.size).sum() })
}

/// Every blob of the container into `dir/objects/`, with `dir/inventory.jsonl`.
pub async fn container_to_dir(c: &BlobContainerClient, dir: &Path) -> Result<Copied, AzureError> {
    let blobs = list(c, false).await?;
    let entries: Vec<InventoryEntry> =
        futures_util::stream::iter(blobs).map(|b| download(c, dir, b)).buffered(8).try_collect().await?;
    write_inventory(dir, &entries)
}

async fn download(c: &BlobContainerClient, dir: &Path, b: Listed) -> Result<InventoryEntry, AzureError> {
    let path = dir.join(object_file(&b.name));
    let werr = |source| AzureError::Write { path: path.display().to_string(), source };
    let resp = c.blob_client(&b.name).download(None).await.map_err(|e| call(&format!("download of {}", b.name), e))?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(private_file(&path).map_err(werr)?));
    let mut body = resp.body;
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| call(&format!("download of {}", b.name), e))?;
        h.update(&chunk);
        n += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(werr)?;
    }
    out.flush().await.map_err(werr)?;
    out.into_inner().sync_all().await.map_err(werr)?;
    Ok(InventoryEntry { key: b.name, size: n, etag: b.etag, version_id: None, sha256: hex::encode(h.finalize()) })
}

/// The current version ids of a versioned container: the backup of its artifacts.
pub async fn record_versions(c: &BlobContainerClient, dir: &Path) -> Result<Copied, AzureError> {
    let entries: Vec<InventoryEntry> = list(c, true)
        .await?
        .into_iter()
        .map(|b| InventoryEntry {
            key: b.name,
            size: b.size,
            etag: b.etag,
            version_id: b.version,
            sha256: String::new(),
        })
        .collect();
    write_inventory(dir, &entries)
}

fn write_inventory(dir: &Path, entries: &[InventoryEntry]) -> Result<Copied, AzureError> {
    let path = dir.join(crate::backup::objects::INVENTORY);
    let werr = |source| AzureError::Write { path: path.display().to_string(), source };
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(|e| werr(e.into()))?);
        text.push('\n');
    }
    use std::io::Write;
    let mut f = private_file(&path).map_err(werr)?;
    f.write_all(text.as_bytes()).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    Ok(Copied { objects: entries.len() as u64, bytes: entries.iter().map(|e| e.size).sum() })
}

/// Uploads the inventoried objects of `dir` into the container, in 8 MiB blocks.
pub async fn dir_to_container(c: &BlobContainerClient, dir: &Path) -> Result<Copied, AzureError> {
    if !c.exists().await.map_err(|e| call("container lookup", e))? {
        c.create(None).await.map_err(|e| call("container create", e))?;
    }
    let entries = read_inventory(dir).map_err(|e| AzureError::Settings(e.to_string()))?;
    for e in &entries {
        upload(c, &dir.join(object_file(&e.key)), &e.key).await?;
    }
    Ok(Copied { objects: entries.len() as u64, bytes: entries.iter().map(|e| e.size).sum() })
}

async fn upload(c: &BlobContainerClient, path: &Path, name: &str) -> Result<(), AzureError> {
    const BLOCK: usize = 8 << 20;
    let werr = |source| AzureError::Write { path: path.display().to_string(), source };
    let mut f = tokio::fs::File::open(path).await.map_err(werr)?;
    let blob = c.blob_client(name).block_blob_client();
    let mut ids = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            let n = f.read(&mut buf[filled..]).await.map_err(werr)?;
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
        blob.stage_block(&id, filled as u64, body, None).await.map_err(|e| call(&format!("upload of {name}"), e))?;
        ids.push(id);
        if filled < BLOCK {
            break;
        }
    }
    let list = BlockLookupList { latest: Some(ids), ..Default::default() };
    let content = RequestContent::try_from(list).map_err(|e| call(&format!("upload of {name}"), e))?;
    blob.commit_block_list(content, None).await.map_err(|e| call(&format!("upload of {name}"), e))?;
    Ok(())
}
