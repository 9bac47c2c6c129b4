//! Notifications: a small JSON document POSTed to each `--notify` URL when a long run starts,
//! after every hop, at the end and on failure. A receiver that is down, slow or refuses never
//! fails the run: the tool logs one warning naming the receiver's host and goes on.

use std::time::Duration;

use reqwest::Url;

/// How long one receiver may take to answer before it is given up on.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a `--notify` value is refused (exit 2 before anything runs).
#[derive(Debug, thiserror::Error)]
pub enum NotifyUrlError {
    /// Not a URL.
    #[error("not a URL: {0}")]
    Parse(#[from] url::ParseError),
    /// A URL of another scheme.
    #[error("a notification URL is http:// or https://, not {0}://")]
    Scheme(String),
}

/// Parses one `--notify` value: an `http` or `https` URL.
///
/// # Errors
/// [`NotifyUrlError`].
pub fn parse_url(s: &str) -> Result<Url, NotifyUrlError> {
    let u = Url::parse(s)?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        other => Err(NotifyUrlError::Scheme(other.to_string())),
    }
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub struct Notifier {
    urls: Vec<Url>,
    client: reqwest::Client,
}

impl Notifier {
    /// A notifier for `urls`; `None` when there are none.
    pub fn new(urls: Vec<Url>) -> Option<Notifier> {
        if urls.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("mender-compose-upgrade/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Some(Notifier { urls, client })
    }

    /// POSTs `doc` (a JSON object; `source`, `host` and `at` are added) to every URL at once and
    /// waits for them, at most [`TIMEOUT`] each. Failures are logged, never returned.
    pub async fn post(&self, mut doc: serde_json::Value) {
        if let serde_json::Value::Object(m) = &mut doc {
            m.insert("source".into(), "mender-compose-upgrade".into());
            m.insert("host".into(), crate::util::hostname().into());
            m.insert("at".into(), crate::util::now_rfc3339().into());
        }
        let body = doc.to_string();
        let sends = self.urls.iter().map(|u| {
            let req = self.client.post(u.clone()).header("content-type", "application/json").body(body.clone());
            async move {
                match req.send().await.and_then(reqwest::Response::error_for_status) {
                    Ok(_) => tracing::debug!("notified {}", shown(u)),
                    // The URL's path and query may hold the receiver's token: only its host is named.
                    Err(e) => {
                        tracing::warn!("notification to {} failed (the run goes on): {}", shown(u), e.without_url())
                    }
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

impl crate::progress::Notify for Notifier {
    fn post(&self, doc: serde_json::Value) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(Notifier::post(self, doc))
    }
}

/// A receiver as logs name it: scheme, host and port, never the path or query (webhook URLs carry
/// their secret there).
pub fn shown(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or("?")),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_taken_and_logs_name_no_path() {
        let u = parse_url("https://hooks.example.com/services/T000/B000/SECRET?token=x").unwrap();
        assert_eq!(shown(&u), "https://hooks.example.com");
        assert_eq!(shown(&parse_url("http://127.0.0.1:8080/x").unwrap()), "http://127.0.0.1:8080");
        assert!(parse_url("ftp://example.com/").unwrap_err().to_string().contains("not ftp://"));
        assert!(parse_url("example.com/hook").unwrap_err().to_string().starts_with("not a URL"));
        assert!(Notifier::new(vec![]).is_none());
    }
}
