//! HTTPS requests through the API gateway, as a device or a person makes them: sent to the
//! gateway's address on its network with the API host name as SNI and `Host`, and accepted only
//! when the gateway presents the stack's own certificate (pinned byte for byte, as devices pin
//! it). What the answers mean is judged by the caller ([`crate::snapshot::smoke`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};

/// One request of a smoke check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmokeRequest {
    /// The check it belongs to (`ui`, `management`, `device`).
    pub check: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query (`/api/management/v1/useradm/auth/login`).
    pub path: String,
    /// HTTP Basic credentials (a login's); never a real operator's password in this job.
    #[serde(default)]
    pub basic: Option<(String, String)>,
    /// A JSON body, sent with `Content-Type: application/json`.
    #[serde(default)]
    pub json: Option<String>,
    /// Another host name than the job's for this request (the storage host devices download
    /// from), sent as SNI and `Host` to the same gateway.
    #[serde(default)]
    pub host: Option<String>,
}

/// What the helper does for a smoke check: every request at once through one gateway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmokeJob {
    /// The gateway's address on the helper's network (`mender-api-gateway:443`).
    pub address: String,
    /// The API host name sent as SNI and `Host` (the first of the gateway's `ALLOWED_HOSTS`).
    pub host: String,
    /// The stack's certificate (PEM) as mounted into the helper; the gateway must present it. A
    /// directory: its first of [`CERT_NAMES`].
    pub cert: String,
    /// The requests, answered in this order.
    pub requests: Vec<SmokeRequest>,
    /// With an operator's account: log in, count, download an artifact.
    #[serde(default)]
    pub session: Option<super::session::SessionJob>,
}

/// The answer to one [`SmokeRequest`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmokeAnswer {
    /// The check the request belongs to.
    pub check: String,
    /// `https://HOST/PATH` as requested.
    pub url: String,
    /// HTTP status, when the gateway answered within 5 s.
    pub status: Option<u16>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The first 512 bytes of the body (lossy UTF-8).
    pub body: String,
    /// Why there is no answer: the address does not resolve, TLS failed (another certificate),
    /// no answer within 5 s.
    pub error: Option<String>,
    /// Milliseconds until the answer or the failure.
    pub millis: u64,
}

const TIMEOUT: Duration = Duration::from_secs(5);
const BODY_BYTES: usize = 512;

/// Accepts exactly one certificate: the stack's. Its name and dates are not checked (devices
/// pin the file; a self-signed certificate is its own authority), the handshake's signature is.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the gateway presents another certificate than the stack's".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs every request of `job` at once, and its session beside them. A job that cannot start
/// (no certificate, an address that does not resolve) answers every request, and the session's
/// login, with that error.
pub async fn run(job: &SmokeJob) -> (Vec<SmokeAnswer>, Option<super::session::SessionResult>) {
    match client(job).await {
        Ok(client) => {
            let futures = job.requests.iter().map(|r| send(&client, r.host.as_deref().unwrap_or(&job.host), r));
            let session = async {
                match &job.session {
                    Some(s) => Some(super::session::run(&client, &job.host, s).await),
                    None => None,
                }
            };
            futures_util::future::join(futures_util::future::join_all(futures), session).await
        }
        Err(e) => {
            let answers = job
                .requests
                .iter()
                .map(|r| SmokeAnswer {
                    check: r.check.clone(),
                    url: url(r.host.as_deref().unwrap_or(&job.host), &r.path),
                    error: Some(e.clone()),
                    ..Default::default()
                })
                .collect();
            let session = job.session.as_ref().map(|_| super::session::SessionResult {
                failed: Some(("login".into(), e.clone())),
                ..Default::default()
            });
            (answers, session)
        }
    }
}

/// The names the gateway's certificate has in a mounted directory: 3.x's compose files
/// (integration@3.7.11:production/config/prod.yml.template) and 4.x's
/// (mender-server@v4.0.0:compose/config/traefik/tls.yaml).
pub const CERT_NAMES: [&str; 2] = ["cert.crt", "mender.crt"];

/// `path` itself, or for a directory the first of [`CERT_NAMES`] in it (the first name when none
/// is there, for the error message).
fn cert_file(path: &std::path::Path) -> std::path::PathBuf {
    if !path.is_dir() {
        return path.to_path_buf();
    }
    CERT_NAMES.iter().map(|n| path.join(n)).find(|p| p.is_file()).unwrap_or_else(|| path.join(CERT_NAMES[0]))
}

fn url(host: &str, path: &str) -> String {
    format!("https://{host}{path}")
}

/// A client that reaches `job.host` at the gateway's address and trusts only the pinned
/// certificate. Errors are the words the answers carry.
async fn client(job: &SmokeJob) -> Result<reqwest::Client, String> {
    let path = cert_file(std::path::Path::new(&job.cert));
    let pem =
        std::fs::read(&path).map_err(|e| format!("cannot read the stack's certificate {}: {e}", path.display()))?;
    let cert = rustls_pemfile_first(&pem).ok_or_else(|| format!("{} holds no PEM certificate", path.display()))?;
    let addr = tokio::net::lookup_host(&job.address)
        .await
        .map_err(|e| format!("the gateway {} does not resolve: {e}", job.address))?
        .next()
        .ok_or_else(|| format!("the gateway {} does not resolve", job.address))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
        .with_no_client_auth();
    let mut builder = reqwest::Client::builder().use_preconfigured_tls(tls).resolve(&job.host, addr);
    // Every host name the requests carry reaches the same gateway, as DNS points them there.
    for h in job.requests.iter().filter_map(|r| r.host.as_deref()) {
        builder = builder.resolve(h, addr);
    }
    builder.redirect(reqwest::redirect::Policy::none()).timeout(TIMEOUT).build().map_err(|e| e.to_string())
}

/// The first certificate of a PEM file, as DER.
fn rustls_pemfile_first(pem: &[u8]) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).next()?.ok()
}

async fn send(client: &reqwest::Client, host: &str, r: &SmokeRequest) -> SmokeAnswer {
    let start = Instant::now();
    let url = url(host, &r.path);
    let method = if r.method == "POST" { reqwest::Method::POST } else { reqwest::Method::GET };
    let mut req = client.request(method, &url);
    if let Some((user, password)) = &r.basic {
        req = req.basic_auth(user, Some(password));
    }
    if let Some(body) = &r.json {
        req = req.header("content-type", "application/json").body(body.clone());
    }
    let mut answer = SmokeAnswer { check: r.check.clone(), url, ..Default::default() };
    match req.send().await {
        Ok(resp) => {
            answer.status = Some(resp.status().as_u16());
            answer.content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
            match resp.bytes().await {
                Ok(b) => answer.body = String::from_utf8_lossy(&b[..b.len().min(BODY_BYTES)]).into_owned(),
                Err(e) => answer.error = Some(crate::engine::store::chain(&e)),
            }
        }
        Err(e) => answer.error = Some(crate::engine::store::chain(&e)),
    }
    answer.millis = start.elapsed().as_millis() as u64;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mounted_directory_gives_the_certificate_under_either_release_s_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cert_file(dir.path()), dir.path().join("cert.crt"), "none there: the 3.x name, for the error");
        std::fs::write(dir.path().join("mender.crt"), "4.x").unwrap();
        assert_eq!(cert_file(dir.path()), dir.path().join("mender.crt"));
        std::fs::write(dir.path().join("cert.crt"), "3.x").unwrap();
        assert_eq!(cert_file(dir.path()), dir.path().join("cert.crt"));
        let file = dir.path().join("mender.crt");
        assert_eq!(cert_file(&file), file);
    }
}
