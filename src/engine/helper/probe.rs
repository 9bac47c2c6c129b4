//! HTTP GETs against the services' health URLs, all at once, each with a deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// One HTTP GET against a service's check URL, from inside the project network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Probe {
    /// Compose service probed (`mender-deployments`).
    pub service: String,
    /// `alive` or `health`.
    pub check: String,
    /// Full URL (`http://mender-deployments:8080/api/internal/v1/deployments/alive`); plain HTTP only.
    pub url: String,
}

/// The answer to one [`Probe`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProbeResult {
    /// Compose service probed.
    pub service: String,
    /// `alive` or `health`.
    pub check: String,
    /// The URL probed.
    pub url: String,
    /// HTTP status when the service answered within 3 s.
    pub status: Option<u16>,
    /// Why there is no status (bad URL, connection refused, no answer within 3 s).
    pub error: Option<String>,
    /// Milliseconds until the answer or the failure.
    pub millis: u64,
}

impl ProbeResult {
    /// The service answered 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs every probe at once, each with a 3-second deadline; results in the probes' order.
pub async fn run_all(probes: &[Probe]) -> Vec<ProbeResult> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let futures = probes.iter().map(|p| {
        let client = client.clone();
        async move {
            let start = Instant::now();
            let (status, error) = match p.url.parse() {
                Err(e) => (None, Some(format!("bad URL: {e}"))),
                Ok(uri) => match tokio::time::timeout(TIMEOUT, client.get(uri)).await {
                    Err(_) => (None, Some(format!("no answer within {} s", TIMEOUT.as_secs()))),
                    Ok(Err(e)) => (None, Some(crate::engine::store::chain(&e))),
                    Ok(Ok(resp)) => (Some(resp.status().as_u16()), None),
                },
            };
            ProbeResult {
                service: p.service.clone(),
                check: p.check.clone(),
                url: p.url.clone(),
                status,
                error,
                millis: start.elapsed().as_millis() as u64,
            }
        }
    });
    futures_util::future::join_all(futures).await
}
