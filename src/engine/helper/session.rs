//! The part of the smoke check made with an operator's account, inside the helper: log in
//! through the gateway as a person does, count the devices and artifacts, ask deployments for one
//! artifact's download link and download it through the storage proxy as a device does; its
//! bytes are compared with the object in the store, read directly.
//!
//! The password comes in the helper's environment ([`PASSWORD_ENV`]), never on its command line,
//! and goes only into the login's `Authorization` header; nothing here returns or prints it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::s3::S3Bucket;
use crate::engine::store::ObjectStore;

/// Environment variable that carries the operator's password into the helper.
pub const PASSWORD_ENV: &str = "MCU_SMOKE_PASSWORD";

/// Where the helper reads an object directly (the store's keys in [`KEY_ENV`](super::KEY_ENV) and
/// [`SECRET_ENV`](super::SECRET_ENV)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirectStore {
    /// The store's S3 endpoint on the helper's networks (`http://minio:9000`).
    pub endpoint: String,
    /// The artifact bucket.
    pub bucket: String,
    /// The region to sign for.
    pub region: String,
}

/// The session part of a smoke job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionJob {
    /// The operator's login (an e-mail address); the password is in [`PASSWORD_ENV`].
    pub user: String,
    /// The store to compare the download with; `None`: only the size is compared.
    pub store: Option<DirectStore>,
    /// The host names the gateway serves (the API host, the storage host): a link to another
    /// host goes to an external store and is not downloaded.
    #[serde(default)]
    pub gateway_hosts: Vec<String>,
}

/// What the session saw; the first step that failed is `failed`, with why.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionResult {
    /// The login's HTTP status.
    pub login: Option<u16>,
    /// Devices, from inventory's `X-Total-Count`.
    pub devices: Option<u64>,
    /// Artifacts, from deployments' list.
    pub artifacts: Option<u64>,
    /// The artifact downloaded (the smallest): its id and name.
    pub artifact: Option<String>,
    /// Its size as deployments lists it, in bytes.
    pub listed_size: Option<u64>,
    /// The link's `https://HOST` (without its path and signature).
    pub link_host: Option<String>,
    /// The download's HTTP status.
    pub download: Option<u16>,
    /// sha256 (hex) and bytes of what came through the storage proxy.
    pub downloaded: Option<(String, u64)>,
    /// sha256 (hex) and bytes of the object read from the store directly.
    pub stored: Option<(String, u64)>,
    /// The link goes to a host the gateway does not serve (an external store): not downloaded.
    #[serde(default)]
    pub outside: bool,
    /// The step that failed (`login`, `devices`, `artifacts`, `link`, `download`, `store`) and why.
    pub failed: Option<(String, String)>,
}

const BODY: usize = 512;
/// How long the download may take: the smallest artifact is a few MiB on most servers.
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn snippet(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(BODY)]).trim().to_string()
}

/// What a store's error document says, without the rest: a `SignatureDoesNotMatch` answer carries
/// the access key id (`<AWSAccessKeyId>`) and the string that was signed. Other bodies (the
/// gateway's, the GUI's) as [`snippet`].
fn store_error(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if !text.contains("<Error>") {
        return snippet(body);
    }
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].trim().to_string())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(msg)) => format!("the store's {code}: {msg}"),
        (Some(code), None) => format!("the store's {code}"),
        _ => "the store's error (not shown)".into(),
    }
}

/// Runs the session with `client`, which reaches every host at the gateway, as `host`.
pub async fn run(client: &reqwest::Client, host: &str, job: &SessionJob) -> SessionResult {
    let mut r = SessionResult::default();
    if let Err((step, why)) = steps(client, host, job, &mut r).await {
        r.failed = Some((step.to_string(), why));
    }
    r
}

type Step = (&'static str, String);

async fn steps(client: &reqwest::Client, host: &str, job: &SessionJob, r: &mut SessionResult) -> Result<(), Step> {
    let api = |p: &str| format!("https://{host}{p}");
    // Without the URL: a presigned link carries the store's access key id and a signature.
    let err = |step: &'static str| move |e: reqwest::Error| (step, crate::engine::store::chain(&e.without_url()));
    let password = std::env::var(PASSWORD_ENV).unwrap_or_default();

    // useradm@1.22.5:api/http/api_useradm.go `AuthLoginHandler`: Basic credentials, the token in the body.
    let resp = client
        .post(api("/api/management/v1/useradm/auth/login"))
        .basic_auth(&job.user, Some(&password))
        .send()
        .await
        .map_err(err("login"))?;
    r.login = Some(resp.status().as_u16());
    let ok = resp.status().is_success();
    let body = resp.bytes().await.map_err(err("login"))?;
    if !ok {
        return Err(("login", format!("HTTP {}: {}", r.login.unwrap_or_default(), snippet(&body))));
    }
    let token = String::from_utf8_lossy(&body).trim().to_string();

    // inventory@4.4.3:api/http/api_inventory.go `GetDevicesHandler`: the total in X-Total-Count.
    let resp = client
        .get(api("/api/management/v1/inventory/devices?per_page=1"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(err("devices"))?;
    let status = resp.status();
    let total = resp.headers().get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if !status.is_success() || total.is_none() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(("devices", format!("HTTP {status} without X-Total-Count: {}", snippet(&body))));
    }
    r.devices = total;

    // deployments@4.6.3:api/http/api_deployments.go `GetImages`.
    let resp = client
        .get(api("/api/management/v1/deployments/artifacts"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(err("artifacts"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(err("artifacts"))?;
    let list: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(l) if status.is_success() => l,
        _ => return Err(("artifacts", format!("HTTP {status}: {}", snippet(&body)))),
    };
    r.artifacts = Some(list.len() as u64);
    // The smallest: the cheapest proof that the proxy serves an artifact's bytes.
    let Some(art) = list.iter().filter(|a| a["id"].is_string()).min_by_key(|a| a["size"].as_u64().unwrap_or(u64::MAX))
    else {
        return Ok(());
    };
    let id = art["id"].as_str().unwrap_or_default().to_string();
    r.artifact = Some(match art["name"].as_str() {
        Some(n) if !n.is_empty() => format!("{id} ({n})"),
        _ => id.clone(),
    });
    r.listed_size = art["size"].as_u64();

    // deployments@4.6.3:api/http/api_deployments.go `DownloadLink`: `{"uri", "expire"}`.
    let resp = client
        .get(api(&format!("/api/management/v1/deployments/artifacts/{id}/download")))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(err("link"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(err("link"))?;
    let link = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["uri"].as_str().map(str::to_string))
        .filter(|_| status.is_success())
        .ok_or_else(|| ("link", format!("HTTP {status}: {}", snippet(&body))))?;
    let mut link = url::Url::parse(&link).map_err(|e| ("link", format!("not a URL: {e}")))?;
    let link_host = link.host_str().unwrap_or_default().to_string();
    r.link_host = Some(format!("{}://{link_host}", link.scheme()));
    if link.scheme() != "https" {
        return Err((
            "link",
            format!("the link is {}, not through the gateway's HTTPS", r.link_host.clone().unwrap_or_default()),
        ));
    }
    if !job.gateway_hosts.iter().any(|h| h.eq_ignore_ascii_case(&link_host)) {
        // An external store: devices reach it directly, with its own certificate; this check
        // trusts only the gateway's.
        r.outside = true;
        return Ok(());
    }
    // The link was signed for its `host:port`; inside the gateway's network the gateway listens
    // on 443, whatever port the host publishes.
    let authority = match link.port() {
        Some(p) => format!("{link_host}:{p}"),
        None => link_host.clone(),
    };
    let _ = link.set_port(None);
    let mut resp = client
        .get(link)
        .header(reqwest::header::HOST, authority)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(err("download"))?;
    r.download = Some(resp.status().as_u16());
    if !resp.status().is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(("download", format!("HTTP {}: {}", r.download.unwrap_or_default(), store_error(&body))));
    }
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(err("download"))? {
        h.update(&chunk);
        n += chunk.len() as u64;
    }
    r.downloaded = Some((hex::encode(h.finalize()), n));

    if let Some(s) = &job.store {
        let ep = super::artifacts::env_endpoint(Some(s.endpoint.clone()), &s.region);
        let got = S3Bucket::new(&ep, &s.bucket).get(&id, &mut tokio::io::sink()).await;
        r.stored = Some(got.map_err(|e| ("store", e.to_string()))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_shows_its_code_and_message_only() {
        let denied = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match.</Message><AWSAccessKeyId>AKIAEXAMPLEKEYID</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256</StringToSign></Error>"#;
        let shown = store_error(denied);
        assert_eq!(shown, "the store's SignatureDoesNotMatch: The request signature we calculated does not match.");
        assert!(!shown.contains("AKIAEXAMPLEKEYID"));
        assert_eq!(store_error(b"404 page not found"), "404 page not found");
        assert_eq!(
            store_error(b"<Error><AWSAccessKeyId>AKIA</AWSAccessKeyId></Error>"),
            "the store's error (not shown)"
        );
    }
}
