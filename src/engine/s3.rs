//! S3 clients for MinIO-style stores and external buckets: path-style addressing, a fixed
//! region, static credentials, and checksums only where S3 requires them (S3-compatible stores
//! reject the SDK's default CRC trailers).

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_smithy_http_client::{Builder, tls};

/// Where and how to reach an S3 API.
#[derive(Clone)]
pub struct S3Endpoint {
    /// e.g. `http://minio:9000`; `None` means AWS itself.
    pub url: Option<String>,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Endpoint {
    // The keys never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint").field("url", &self.url).field("region", &self.region).finish_non_exhaustive()
    }
}

pub fn client(ep: &S3Endpoint) -> aws_sdk_s3::Client {
    // Plain-HTTP stores (inside a stack, emulators) need no roots; the helper image has none.
    let https = ep.url.as_deref().is_none_or(|u| u.starts_with("https://"));
    let trust = tls::TrustStore::empty().with_native_roots(https);
    let context = tls::TlsContext::builder().with_trust_store(trust).build().unwrap_or_default();
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    let mut cfg = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(ep.region.clone()))
        .credentials_provider(Credentials::new(&ep.access_key, &ep.secret_key, None, None, "mender-compose-upgrade"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(url) = &ep.url {
        cfg = cfg.endpoint_url(url);
    }
    aws_sdk_s3::Client::from_conf(cfg.build())
}
