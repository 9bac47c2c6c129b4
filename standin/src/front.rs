//! The non-Mender parts of a 3.x stack that the test bed cannot run for real: the API gateway
//! (traefik), the GUI, OpenSearch (3.5), and the HTTP front that makes SeaweedFS answer where
//! MinIO would (port 9000 and `/minio/health/live`).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::StatusCode;

use crate::http::{self, forward, json, proxy_client, respond, tls_from_files};
use crate::rules::{self, Table};

/// Which backend a path of the public API goes to when the gateway has no configuration files at
/// all (`gui`: the GUI's address).
pub(crate) fn fallback_route<'a>(path: &str, gui: &'a str) -> &'a str {
    let svc = path.strip_prefix("/api/").and_then(|p| p.split('/').nth(2)).unwrap_or("");
    match svc {
        "authentication" | "devauth" => "mender-device-auth:8080",
        "deployments" => "mender-deployments:8080",
        "inventory" => "mender-inventory:8080",
        "useradm" => "mender-useradm:8080",
        "deviceconnect" => "mender-deviceconnect:8080",
        "deviceconfig" => "mender-deviceconfig:8080",
        "iot-manager" => "mender-iot-manager:8080",
        _ => gui,
    }
}

const TRAEFIK_CONFIG: &str = "/etc/traefik/config";

/// What the gateway takes from its file-provider configuration: the routing table, the GUI's
/// address (the `gui` service's URL; `mender-gui:80` when none is found), and, for traefik v3,
/// the routers whose rules are in v2 syntax, which v3 rejects (it logs the error and drops the
/// router).
struct Config {
    table: Table,
    gui: String,
    v2_rules: Vec<String>,
}

/// `Host(`a`,`b`)`: several names in one `Host()`, v2 only (v3's `Header(`k`, `v`)` takes two
/// values legitimately).
fn several_hosts(line: &str) -> bool {
    line.match_indices("Host(").any(|(i, _)| {
        let arg = &line[i + 5..];
        let inside = arg.split(')').next().unwrap_or("");
        inside.matches('`').count() > 2
    })
}

fn read_config(dir: &std::path::Path, v3: bool) -> Config {
    let mut texts: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                texts.push((e.file_name().to_string_lossy().into(), text));
            }
        }
    }
    texts.sort();
    let table = Table::from_texts(&texts, v3);
    let gui = texts
        .iter()
        .flat_map(|(_, t)| t.lines())
        .find_map(|l| l.split("http://mender-gui:").nth(1))
        .map(|rest| format!("mender-gui:{}", rest.chars().take_while(char::is_ascii_digit).collect::<String>()))
        .unwrap_or_else(|| "mender-gui:80".into());
    // v2 only: `{name:regexp}` placeholders in path or host rules, several names in one Host().
    let v2 = |l: &str| {
        l.contains("rule:")
            && (l.contains("{version:") || l.contains("{domain:") || l.contains("{(") || several_hosts(l))
    };
    let v2_rules = if v3 {
        texts.iter().flat_map(|(f, t)| t.lines().filter(|l| v2(l)).map(move |l| format!("{f}: {}", l.trim()))).collect()
    } else {
        Vec::new()
    };
    Config { table, gui, v2_rules }
}

/// traefik stand-in: HTTP on 80 redirects to HTTPS on 443, which routes by the `Host`/path rules
/// of its file-provider configuration ([`crate::rules`]; the old path table when it has none). Its image
/// tag decides the rule syntax it accepts: traefik v3 drops routers whose rules are in v2 syntax
/// (https://doc.traefik.io/traefik/migration/v2-to-v3/), so the API answers 404 behind them.
/// `drops_management` (the `-broken-gateway` image): every router of the management API is
/// dropped, as traefik drops a rule it cannot parse; the gateway itself stays up and healthy.
pub async fn gateway(image: &str, drops_management: bool) -> Result<()> {
    let v3 = image.rsplit(':').next().is_some_and(|tag| tag.trim_start_matches('v').starts_with('3'));
    let config = read_config(std::path::Path::new(TRAEFIK_CONFIG), v3);
    for r in &config.v2_rules {
        eprintln!("ERR error while parsing rule (v2 syntax on traefik v3): {r}");
    }
    for d in &config.table.dropped {
        eprintln!("ERR {d}");
    }
    if drops_management {
        eprintln!(
            "ERR error while parsing rule: every /api/management router dropped (test-bed -broken-gateway image)"
        );
    }
    let tls = tls_from_files("/etc/traefik/certs/cert.crt", "/etc/traefik/certs/private.key")?;
    let client = proxy_client();
    let (gui, broken) = (config.gui, !config.v2_rules.is_empty());
    let table = std::sync::Arc::new(config.table);
    let https = http::serve(SocketAddr::from(([0, 0, 0, 0], 443)), tls, move |req| {
        let (client, gui, table) = (client.clone(), gui.clone(), table.clone());
        async move {
            let path = req.uri().path();
            if (broken && path.starts_with("/api/")) || (drops_management && path.starts_with("/api/management/")) {
                return respond(StatusCode::NOT_FOUND, "404 page not found");
            }
            let upstream = if table.loaded {
                let host =
                    rules::request_host(req.headers().get("host").and_then(|h| h.to_str().ok()).or(req.uri().host()));
                let headers = req.headers().clone();
                let header = move |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
                let r = rules::Req {
                    host: &host,
                    path: req.uri().path(),
                    method: req.method().as_str(),
                    query: req.uri().query().unwrap_or(""),
                    header: &header,
                };
                match table.route(&r) {
                    Some(u) => u.to_string(),
                    None => return respond(StatusCode::NOT_FOUND, "404 page not found"),
                }
            } else {
                fallback_route(req.uri().path(), &gui).to_string()
            };
            forward(&client, &upstream, req).await
        }
    });
    let redirect = http::serve(SocketAddr::from(([0, 0, 0, 0], 80)), None, |req| async move {
        let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
        let mut r = respond(StatusCode::MOVED_PERMANENTLY, "");
        let location = format!("https://{}{}", host.split(':').next().unwrap_or("localhost"), req.uri().path());
        if let Ok(v) = location.parse() {
            r.headers_mut().insert("location", v);
        }
        r
    });
    tokio::try_join!(https, redirect)?;
    Ok(())
}

/// gui stand-in: the UI on 80 and the error responder on 8080 (3.x); the UI alone on 8090 (4.x,
/// [`crate::identity::gui_port`]).
pub async fn gui(port: u16) -> Result<()> {
    let ui = http::serve(SocketAddr::from(([0, 0, 0, 0], port)), None, |_req| async {
        respond(StatusCode::OK, "<!doctype html><title>Mender</title><div id=\"main\"></div>")
    });
    if port != 80 {
        return ui.await;
    }
    let errors = http::serve(SocketAddr::from(([0, 0, 0, 0], 8080)), None, |_req| async {
        respond(StatusCode::OK, "<!doctype html><title>Mender</title><p>Service unavailable</p>")
    });
    tokio::try_join!(ui, errors)?;
    Ok(())
}

/// OpenSearch stand-in (3.5's reporting index): cluster info and health on 9200.
pub async fn opensearch() -> Result<()> {
    http::serve(SocketAddr::from(([0, 0, 0, 0], 9200)), None, |req| async move {
        match req.uri().path() {
            "/_cluster/health" => json(StatusCode::OK, serde_json::json!({"cluster_name": "opensearch", "status": "green"})),
            _ => json(StatusCode::OK, serde_json::json!({"name": "mender-opensearch", "version": {"distribution": "opensearch", "number": "2.4.0"}})),
        }
    })
    .await
}

/// `minio server DIR`: runs SeaweedFS with its data in DIR and the MinIO credentials from the
/// environment, and answers on MinIO's port and health path.
pub async fn minio(args: &[String]) -> Result<()> {
    let dir = args.iter().skip_while(|a| *a != "server").nth(1).cloned().unwrap_or_else(|| "/export".into());
    let env = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).unwrap_or_default();
    let (key, secret) = (env("MINIO_ACCESS_KEY", "MINIO_ROOT_USER"), env("MINIO_SECRET_KEY", "MINIO_ROOT_PASSWORD"));
    anyhow::ensure!(!key.is_empty() && !secret.is_empty(), "MINIO_ACCESS_KEY and MINIO_SECRET_KEY must be set");
    let identities = serde_json::json!({"identities": [{
        "name": "mender", "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]});
    let config = "/tmp/s3-identities.json";
    std::fs::write(config, identities.to_string()).context("cannot write the S3 identities")?;
    let mut weed = tokio::process::Command::new("/usr/bin/weed")
        .args(["server", &format!("-dir={dir}"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-s3.port=8333"])
        .arg(format!("-s3.config={config}"))
        .args(["-master.volumeSizeLimitMB=256", "-volume.preStopSeconds=0"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start /usr/bin/weed")?;
    let client = proxy_client();
    let health_client = proxy_client();
    let front = http::serve(SocketAddr::from(([0, 0, 0, 0], 9000)), None, move |req| {
        let (client, health_client) = (client.clone(), health_client.clone());
        async move {
            if req.uri().path().starts_with("/minio/health/") {
                let mut probe = req;
                *probe.uri_mut() = "/healthz".parse().unwrap_or_default();
                let r = forward(&health_client, "127.0.0.1:8333", probe).await;
                let status = if r.status().is_success() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                return respond(status, "");
            }
            forward(&client, "127.0.0.1:8333", req).await
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = front => r?,
        status = weed.wait() => anyhow::bail!("weed exited: {}", status?),
        _ = term.recv() => {
            // Let SeaweedFS flush its volumes before the container stops.
            if let Some(pid) = weed.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            let _ = tokio::time::timeout(Duration::from_secs(8), weed.wait()).await;
        }
    }
    Ok(())
}
