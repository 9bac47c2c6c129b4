//! Writes a demo integration checkout the way an operator sets one up from the Mender docs:
//! the release's base files, prod.yml filled in from its template, generated keys and secrets,
//! the production/run wrapper, committed to a local git branch.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::catalog::{ImageRef, TemplateFile};
use compose_file::replace_images;

/// How the demo checkout is filled in.
pub struct Settings<'a> {
    /// The compose project `production/run` passes (`-p`).
    pub project: &'a str,
    /// The release's compose files, as production/run passes them (`catalog` `compose_files`).
    pub compose_files: &'a [String],
    /// The registry prefix every image is written under (`testbed.local`).
    pub registry: &'a str,
    /// Prefix of the external volume names (`mender-db`, `mender-artifacts`).
    pub volume_prefix: &'a str,
    /// Host port for the gateway's HTTPS: a number, `0` for a free port on 127.0.0.1, or `none`.
    pub https_port: &'a str,
    /// A healthcheck interval for the artifact store written into prod.yml (`2s`), the way an
    /// operator overrides it there: the 3.5+ base files check every 60 s, so a hop's `up` waits
    /// about a minute for the store's first check. Tests shorten it; `None` keeps upstream's.
    pub store_healthcheck_interval: Option<&'a str>,
    /// An open-files limit (`ulimits: nofile`) written into prod.yml for the services whose 4.x
    /// base files raise it ([`UPSTREAM_NOFILE`]), each at most upstream's value: a daemon whose
    /// own hard limit is lower cannot start a container with upstream's (the test bed's sandbox
    /// allows 20000). prod.yml overrides the base files' `nofile` by key, so upgraded base files
    /// keep upstream's value and only this override lowers it. `None` writes nothing.
    pub nofile_limit: Option<u64>,
    /// Where deployments keeps the artifacts.
    pub storage: Storage,
}

/// The services whose 4.x base files set `ulimits: nofile`, with upstream's value (soft = hard):
/// mongo 64000 (mendersoftware/mender-server@v4.0.4:docker-compose.yml), traefik 65536
/// (mendersoftware/integration@3.8.5:docker-compose.yml, "Avoid Too many open files error");
/// `shared/reference/migrate-3.7-to-4.x.md` §1.4.11 and §3.2. 3.x base files set none.
pub const UPSTREAM_NOFILE: [(&str, u64); 2] = [("mender-mongo", 64000), ("mender-api-gateway", 65536)];

/// Where deployments keeps the artifacts.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// The stack's own store (the minio service).
    #[default]
    InStack,
    /// An S3 bucket outside the stack.
    S3 {
        /// The S3 endpoint (`http://127.0.0.1:9090`).
        url: String,
        /// The bucket deployments uses.
        bucket: String,
    },
    /// An Azure Blob container.
    Azure {
        /// The account's connection string (`AccountName=…;AccountKey=…;BlobEndpoint=…`).
        connection_string: String,
        /// The blob container deployments uses.
        container: String,
    },
}

const SETTINGS_FILE: &str = ".demo.json";

/// Writes the checkout into `dir`: the release's base files (images under the registry prefix),
/// `production/config/prod.yml` from its template (0600), `production/run`, generated keys, and a
/// git commit.
///
/// # Errors
/// A file that cannot be written, a template that cannot be filled, a key that cannot be generated.
pub fn write(dir: &Path, files: &[TemplateFile], s: &Settings<'_>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let secret = crate::util::random_hex(16)?;
    for f in files {
        let is_compose =
            f.path.extension().is_some_and(|e| e == "yml") || f.path.to_string_lossy().ends_with(".yml.template");
        let text = if is_compose {
            replace_images(&f.contents, |_, image| Some(ImageRef::parse(image, None).qualified(Some(s.registry))))?
        } else {
            f.contents.clone()
        };
        write_file(&dir.join(&f.path), &text, 0o644)?;
        if f.path.ends_with("prod.yml.template") {
            write_file(&dir.join("production/config/prod.yml"), &fill_prod(&text, s, &secret)?, 0o600)?;
        }
    }
    // 4.x base files read the presign secret from .env (generated once, as an upgrade does).
    let presign = crate::upgrade::rewrite::PRESIGN_VAR;
    if files.iter().any(|f| f.contents.contains(presign)) {
        let line = format!("{presign}={}\n", crate::util::random_hex(32)?);
        write_file(&dir.join(crate::upgrade::rewrite::ENV_FILE), &line, 0o600)?;
    }
    write_file(&dir.join("production/run"), &run_script(s.project, s.compose_files), 0o755)?;
    write_file(
        &dir.join(SETTINGS_FILE),
        &serde_json::json!({"project": s.project, "volume_prefix": s.volume_prefix}).to_string(),
        0o644,
    )?;
    // 3.0's keygen writes one certificate per domain (certs/api-gateway, certs/storage-proxy),
    // 3.1's a single one (cert/); the demo's certificate covers both domains.
    let per_domain = files.iter().any(|f| f.contents.contains("keys-generated/certs/"));
    keys(&dir.join("production/keys-generated"), per_domain)?;
    git_commit(dir);
    Ok(())
}

/// Whether `dir` is a checkout `demo up` wrote (it holds the demo's settings file): what `demo
/// down` may stop and delete. An operator's own checkout never has it.
pub fn is_demo(dir: &Path) -> bool {
    dir.join(SETTINGS_FILE).is_file()
}

/// The volume prefix a checkout was written with.
pub fn volume_prefix(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(SETTINGS_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("volume_prefix")?.as_str().map(str::to_string)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// What the installation guide has the operator fill in: keys, domains, ports, volume names.
fn fill_prod(template: &str, s: &Settings<'_>, secret: &str) -> Result<String> {
    let port_line = match s.https_port {
        "none" => None,
        "0" => Some("            - \"127.0.0.1::443\"".to_string()),
        p if p.parse::<u16>().is_ok() => Some(format!("            - \"{p}:443\"")),
        p => bail!("--https-port {p}: expected a port number, 0 or none"),
    };
    let mut out = Vec::new();
    let mut skip_ports = false;
    for line in template.lines() {
        let t = line.trim();
        if skip_ports {
            if t.starts_with('-') || t.starts_with('#') {
                continue;
            }
            skip_ports = false;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let filled = match t {
            "MINIO_ACCESS_KEY:" | "DEPLOYMENTS_AWS_AUTH_KEY:" => {
                format!("{line} mender-deployments")
            }
            "MINIO_SECRET_KEY:" | "DEPLOYMENTS_AWS_AUTH_SECRET:" => format!("{line} {secret}"),
            "ALLOWED_HOSTS: my-gateway-dns-name" => {
                format!("{indent}ALLOWED_HOSTS: docker.mender.io")
            }
            "- set-my-alias-here.com" => format!("{indent}- s3.docker.mender.io"),
            "DEPLOYMENTS_AWS_EXTERNAL_URI: https://set-my-alias-here.com" => {
                format!(
                    "{indent}DEPLOYMENTS_AWS_EXTERNAL_URI: https://s3.docker.mender.io{}",
                    storage_lines(indent, &s.storage)
                )
            }
            // 3.0–3.2: deployments reaches MinIO through the gateway by the storage domain. The
            // test bed's gateway does not proxy that domain, so deployments talks to the store
            // directly, as the 3.3 template has it.
            "DEPLOYMENTS_AWS_URI: https://set-my-alias-here.com" => {
                let url = match &s.storage {
                    Storage::S3 { url, .. } => url.clone(),
                    _ => "http://minio:9000".into(),
                };
                format!(
                    "{indent}# test bed: the store directly (production: https://<storage domain>, through the gateway)\n{indent}DEPLOYMENTS_AWS_URI: {url}{}",
                    storage_lines(indent, &s.storage)
                )
            }
            "mender-mongo:" | "mender-api-gateway:" if indent.len() == 4 => match s.nofile_limit {
                Some(n) => {
                    let upstream = UPSTREAM_NOFILE.iter().find(|(svc, _)| format!("{svc}:") == t).map_or(n, |u| u.1);
                    let n = n.min(upstream);
                    format!(
                        "{line}\n{indent}    # test bed: the daemon's hard limit is below upstream's {upstream}\n\
                         {indent}    ulimits:\n{indent}        nofile:\n{indent}            soft: {n}\n{indent}            hard: {n}"
                    )
                }
                None => line.to_string(),
            },
            "minio:" => match s.store_healthcheck_interval {
                Some(i) => format!("{line}\n{indent}    healthcheck:\n{indent}        interval: {i}"),
                None => line.to_string(),
            },
            "DEPLOYMENTS_AWS_URI: http://minio:9000" => match &s.storage {
                Storage::S3 { url, .. } => format!("{indent}DEPLOYMENTS_AWS_URI: {url}"),
                _ => line.to_string(),
            },
            "name: mender-artifacts" | "name: mender-db" => {
                format!("{indent}name: {}{}", s.volume_prefix, t.trim_start_matches("name: "))
            }
            "ports:" => {
                skip_ports = true;
                match &port_line {
                    Some(p) => format!("{line}\n{p}"),
                    None => continue,
                }
            }
            _ => line.to_string(),
        };
        out.push(filled);
    }
    Ok(out.join("\n") + "\n")
}

/// The settings after the storage URL that select the bucket (S3) or Azure.
fn storage_lines(indent: &str, storage: &Storage) -> String {
    match storage {
        Storage::InStack => String::new(),
        Storage::S3 { bucket, .. } => format!("\n{indent}DEPLOYMENTS_STORAGE_BUCKET: {bucket}"),
        Storage::Azure { connection_string, container } => format!(
            "\n{indent}DEPLOYMENTS_STORAGE_DEFAULT: azure\n{indent}DEPLOYMENTS_STORAGE_BUCKET: {container}\n{indent}DEPLOYMENTS_AZURE_AUTH_CONNECTION_STRING: \"{connection_string}\""
        ),
    }
}

/// production/run: compose with the release's files, relative to production/ (where it runs).
fn run_script(project: &str, compose_files: &[String]) -> String {
    let files: Vec<String> = compose_files
        .iter()
        .map(|f| match f.strip_prefix("production/") {
            Some(p) => format!("-f ./{p}"),
            None => format!("-f ../{f}"),
        })
        .collect();
    format!(
        "#!/bin/bash\n\
         # Wrapper around docker compose for the production setup (as mendersoftware/integration's production/run).\n\
         set -e\n\
         cd \"$(dirname \"$0\")\"\n\
         if docker compose version >/dev/null 2>&1; then COMPOSE=\"docker compose\"; else COMPOSE=docker-compose; fi\n\
         exec $COMPOSE -p {project} {} \"$@\"\n",
        files.join(" ")
    )
}

/// The keys `keygen` makes: a TLS certificate for the gateway and storage, RSA keys for
/// deviceauth and useradm.
fn keys(dir: &Path, per_domain: bool) -> Result<()> {
    std::fs::create_dir_all(dir.join("cert"))?;
    std::fs::create_dir_all(dir.join("keys/deviceauth"))?;
    std::fs::create_dir_all(dir.join("keys/useradm"))?;
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=docker.mender.io",
        "-addext",
        "subjectAltName=DNS:docker.mender.io,DNS:s3.docker.mender.io",
        "-keyout",
        &d("cert/private.key"),
        "-out",
        &d("cert/cert.crt"),
    ])?;
    for svc in ["deviceauth", "useradm"] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &d(&format!("keys/{svc}/private.key")),
        ])?;
    }
    let mut files = vec!["cert/private.key", "keys/deviceauth/private.key", "keys/useradm/private.key"];
    if per_domain {
        for domain in ["api-gateway", "storage-proxy"] {
            std::fs::create_dir_all(dir.join("certs").join(domain))?;
            for f in ["cert.crt", "private.key"] {
                std::fs::copy(dir.join("cert").join(f), dir.join("certs").join(domain).join(f))?;
            }
        }
        files.extend(["certs/api-gateway/private.key", "certs/storage-proxy/private.key"]);
    }
    // The services run as uid 65534 and read the mounted keys.
    for f in files {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

fn openssl(args: &[&str]) -> Result<()> {
    let out =
        Command::new("openssl").args(args).output().context("running openssl (needed to generate the demo keys)")?;
    if !out.status.success() {
        bail!("openssl {} failed: {}", args[0], String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Operators keep their setup on a local branch of the integration checkout; so does the demo.
fn git_commit(dir: &Path) {
    let git =
        |args: &[&str]| Command::new("git").args(args).current_dir(dir).output().is_ok_and(|o| o.status.success());
    let _ = git(&["init", "-q", "-b", "my-production-setup"])
        && git(&["add", "-A"])
        && git(&[
            "-c",
            "user.name=demo",
            "-c",
            "user.email=demo@example.invalid",
            "commit",
            "-q",
            "-m",
            "production setup",
        ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prod_yml_is_filled_like_the_guide_says() {
        let template = "services:\n    mender-api-gateway:\n        ports:\n            # list of ports\n            - \"443:443\"\n        networks:\n            mender:\n                aliases:\n                    - set-my-alias-here.com\n        environment:\n            ALLOWED_HOSTS: my-gateway-dns-name\n    minio:\n        environment:\n            MINIO_ACCESS_KEY:\n            MINIO_SECRET_KEY:\nvolumes:\n    mender-db:\n        external:\n            name: mender-db\n";
        let s = Settings {
            project: "p",
            compose_files: &[],
            registry: "r",
            volume_prefix: "t1-",
            https_port: "0",
            store_healthcheck_interval: None,
            nofile_limit: None,
            storage: Storage::InStack,
        };
        let out = fill_prod(template, &s, "s3cr3t").unwrap();
        assert!(out.contains("- \"127.0.0.1::443\"") && !out.contains("443:443"));
        assert!(out.contains("- s3.docker.mender.io") && out.contains("ALLOWED_HOSTS: docker.mender.io"));
        assert!(out.contains("MINIO_ACCESS_KEY: mender-deployments") && out.contains("MINIO_SECRET_KEY: s3cr3t"));
        assert!(out.contains("name: t1-mender-db"));
        assert!(!out.contains("healthcheck"));
        let fast = fill_prod(
            template,
            &Settings {
                project: "p",
                compose_files: &[],
                registry: "r",
                volume_prefix: "t1-",
                https_port: "0",
                store_healthcheck_interval: Some("2s"),
                nofile_limit: Some(20000),
                storage: Storage::InStack,
            },
            "x",
        )
        .unwrap();
        assert!(
            fast.contains("    minio:\n        healthcheck:\n            interval: 2s\n        environment:"),
            "{fast}"
        );
        let none = fill_prod(template, &Settings { https_port: "none", ..s }, "x").unwrap();
        assert!(!none.contains("ports:") && !none.contains("443"));
        assert!(
            fill_prod(
                template,
                &Settings {
                    https_port: "abc",
                    project: "p",
                    compose_files: &[],
                    registry: "r",
                    volume_prefix: "",
                    store_healthcheck_interval: None,
                    nofile_limit: None,
                    storage: Storage::InStack
                },
                "x"
            )
            .is_err()
        );
    }

    fn nofile(prod: &str, svc: &str) -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_saphyr::from_str(prod).unwrap();
        v["services"][svc].get("ulimits").map(|u| u["nofile"].clone())
    }

    #[test]
    fn the_nofile_override_lowers_upstreams_limits_only_where_the_4x_base_files_raise_them() {
        let l = crate::catalog::LoadedCatalog::embedded().unwrap();
        let s = |n| Settings {
            project: "p",
            compose_files: &[],
            registry: "r",
            volume_prefix: "",
            https_port: "none",
            store_healthcheck_interval: None,
            nofile_limit: n,
            storage: Storage::InStack,
        };
        for release in ["3.7.11", "4.0.4", "4.1.3"] {
            let files = l.template_files(&semver::Version::parse(release).unwrap()).unwrap();
            let text = |p: &str| files.iter().find(|f| f.path.to_string_lossy() == p).unwrap().contents.clone();
            let template = text("production/config/prod.yml.template");
            let base: serde_json::Value = serde_saphyr::from_str(&text("docker-compose.yml")).unwrap();
            for (svc, upstream) in UPSTREAM_NOFILE {
                // The constants are the base files' values (none in 3.x).
                let want = (release != "3.7.11").then(|| serde_json::json!({"soft": upstream, "hard": upstream}));
                assert_eq!(base["services"][svc].get("ulimits").map(|u| u["nofile"].clone()), want, "{release} {svc}");
                assert_eq!(nofile(&fill_prod(&template, &s(None), "x").unwrap(), svc), None);
                let low = fill_prod(&template, &s(Some(20000)), "x").unwrap();
                assert_eq!(nofile(&low, svc), Some(serde_json::json!({"soft": 20000, "hard": 20000})), "{low}");
                // Never above upstream's.
                let high = fill_prod(&template, &s(Some(1 << 20)), "x").unwrap();
                assert_eq!(nofile(&high, svc), Some(serde_json::json!({"soft": upstream, "hard": upstream})));
            }
            let low = fill_prod(&template, &s(Some(20000)), "x").unwrap();
            assert_eq!(low.matches("ulimits:").count(), 2, "{low}");
        }
    }
}
