//! Just enough HTTP for the stand-ins: a server loop (plain or TLS), canned responses, and a
//! streaming reverse proxy.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type Body = BoxBody<Bytes, hyper::Error>;

pub fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r
}

pub fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = respond(status, value.to_string());
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

/// Serves `handler` on `addr`, optionally behind TLS, until the process ends.
pub async fn serve<H, F>(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>, handler: H) -> Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(h(req).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            let _ = match acceptor {
                Some(a) => match a.accept(stream).await {
                    Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                    Err(_) => return,
                },
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
        });
    }
}

pub type ProxyClient = Client<HttpConnector, Incoming>;

pub fn proxy_client() -> ProxyClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Forwards `req` to `upstream` (`host:port`) unchanged, streaming both bodies.
pub async fn forward(client: &ProxyClient, upstream: &str, mut req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let Ok(uri) = format!("http://{upstream}{path}").parse() else {
        return respond(StatusCode::BAD_REQUEST, "bad request path");
    };
    *req.uri_mut() = uri;
    match client.request(req).await {
        Ok(resp) => resp.map(|b| b.boxed()),
        Err(e) => respond(StatusCode::BAD_GATEWAY, format!("upstream {upstream}: {e}")),
    }
}

/// `healthcheck URL`: the HEALTHCHECK command of images that have no shell or wget.
pub async fn healthcheck(url: &str) -> Result<()> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), client.get(url.parse()?)).await??;
    anyhow::ensure!(resp.status().is_success(), "{url} answered {}", resp.status());
    Ok(())
}

/// A TLS configuration from PEM files, when both exist.
pub fn tls_from_files(cert: &str, key: &str) -> Result<Option<Arc<rustls::ServerConfig>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if !std::path::Path::new(cert).exists() || !std::path::Path::new(key).exists() {
        return Ok(None);
    }
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Some(Arc::new(cfg)))
}
