//! HTTP GETs against the services' health URLs, all at once, each with a deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Probe {
    pub service: String,
    /// `alive` or `health`.
    pub check: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProbeResult {
    pub service: String,
    pub check: String,
    pub url: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub millis: u64,
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

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
                    Ok(Err(e)) => (None, Some(describe(&e))),
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

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
