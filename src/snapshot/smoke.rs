//! The smoke check: what a device and a person see of the stack, through the API gateway only.
//! A stack can answer every service's own health URL and still be broken for everyone behind a
//! gateway whose rules no longer match; these requests go where theirs go, and are judged by
//! whose answer comes back (useradm's 401, deviceauth's 400, the GUI's page), not by the status
//! alone: the gateway's own 404/502 is a routing failure.
//!
//! Pure: the target is read from the inspected gateway container, the verdicts from the answers
//! the helper returns ([`crate::engine::helper::SmokeAnswer`]).

use serde::{Deserialize, Serialize};

use crate::catalog::Role;
use crate::engine::container::ContainerInfo;
use crate::engine::helper::{SmokeAnswer, SmokeRequest};

use super::Stack;

/// Where Mender's compose files mount the gateway's certificate (integration@3.7.11:
/// production/config/prod.yml.template, `./production/keys-generated/cert/cert.crt`).
pub const CERT_IN_GATEWAY: &str = "/etc/traefik/certs/cert.crt";
/// Mender 4.x's compose files name the same certificate `mender.crt`
/// (mender-server@v4.0.0:compose/config/traefik/tls.yaml) in the directory they mount at
/// `/etc/traefik/certs`; a stack migrated from 3.x keeps `cert.crt`.
pub const CERT_IN_GATEWAY_4X: &str = "/etc/traefik/certs/mender.crt";
/// The port of the gateway's HTTPS entry point (`--entrypoints.https.address=:443`).
pub const HTTPS_PORT: u16 = 443;

/// Which gateway the check goes through, under which name, trusting which certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeTarget {
    /// The gateway's compose service (`mender-api-gateway`), reached by that name.
    pub service: String,
    /// The API host name sent as SNI and `Host`: the first of the gateway's `ALLOWED_HOSTS`
    /// (what traefik admits since 3.2, mender-upgrade-notes §6), else the service name.
    pub host: String,
    /// The helper's bind mount of the gateway's certificate (`SOURCE:/smoke/...:ro`).
    pub bind: String,
    /// The certificate's path inside the helper.
    pub cert: String,
}

/// Why there is nothing to check through (no gateway, no certificate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The release has no gateway service, or it has no container.
    #[error("the stack has no API gateway container")]
    NoGateway,
    /// Nothing is mounted where the gateway reads its certificate.
    #[error("the gateway {service} has no certificate mounted at {CERT_IN_GATEWAY}")]
    NoCertificate {
        /// The gateway's compose service.
        service: String,
    },
}

/// The gateway of `stack` and how to reach it as its clients do.
///
/// # Errors
/// [`TargetError`] when the stack has no gateway container or no certificate mounted into it.
pub fn target(stack: &Stack, containers: &[ContainerInfo]) -> Result<SmokeTarget, TargetError> {
    let service = stack
        .services
        .iter()
        .find(|s| s.role == Some(Role::Gateway))
        .map(|s| s.name.clone())
        .ok_or(TargetError::NoGateway)?;
    let c = containers.iter().find(|c| c.service == service).ok_or(TargetError::NoGateway)?;
    let host = c
        .env_var("ALLOWED_HOSTS")
        .and_then(|h| h.split(',').map(str::trim).find(|h| !h.is_empty()))
        .map_or_else(|| service.clone(), str::to_string);
    let source = |m: &crate::engine::container::Mount| {
        if m.kind == "volume" { m.name.clone() } else { m.source.clone() }
    };
    let (dir, file) = CERT_IN_GATEWAY.rsplit_once('/').unwrap_or(("", CERT_IN_GATEWAY));
    let file_mount =
        [CERT_IN_GATEWAY, CERT_IN_GATEWAY_4X].iter().find_map(|p| c.mounts.iter().find(|m| m.destination == *p));
    let (bind, cert) = if let Some((src, m)) = file_mount.and_then(|m| source(m).map(|s| (s, m))) {
        let file = m.destination.rsplit_once('/').map_or(file, |(_, f)| f);
        (format!("{src}:/smoke/{file}:ro"), format!("/smoke/{file}"))
    } else if let Some(src) = c.mounts.iter().find(|m| m.destination == dir).and_then(source) {
        // A directory: the helper takes the first of the names Mender's files give it.
        (format!("{src}:/smoke/certs:ro"), "/smoke/certs".to_string())
    } else {
        return Err(TargetError::NoCertificate { service });
    };
    Ok(SmokeTarget { service, host, bind, cert })
}

/// What one check asks and what answer proves it.
struct Check {
    name: &'static str,
    what: &'static str,
    method: &'static str,
    path: &'static str,
}

/// The checks without credentials (mender-server@v4.1.3 and integration@3.7.11 route these
/// paths: useradm's login, deviceauth's authentication request, the GUI at `/`).
const CHECKS: [Check; 3] = [
    // `/ui/`, not `/`: the GUI's nginx answers `/` with a 301 to `/ui/` (gui@3.7.x and
    // mender-server@v4.0.0:frontend/httpd.conf), and the helper follows no redirect.
    Check { name: "ui", what: "the UI answers with its page", method: "GET", path: "/ui/" },
    Check {
        name: "management",
        what: "the management API reaches useradm (a wrong login gets useradm's 401)",
        method: "POST",
        path: "/api/management/v1/useradm/auth/login",
    },
    Check {
        name: "device",
        what: "the device API reaches deviceauth (a malformed authentication request gets its 400/401)",
        method: "POST",
        path: "/api/devices/v1/authentication/auth_requests",
    },
];

/// The requests of the checks, in order. The login's credentials are made up for each run, so
/// that no account can match them.
pub fn requests() -> Vec<SmokeRequest> {
    let nonce = format!("{:x}", std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or_default());
    CHECKS
        .iter()
        .map(|c| SmokeRequest {
            check: c.name.into(),
            method: c.method.into(),
            path: c.path.into(),
            basic: (c.name == "management")
                .then(|| ("smoke-check@mender-compose-upgrade.invalid".to_string(), format!("not-a-password-{nonce}"))),
            json: (c.name == "device").then(|| "{}".to_string()),
        })
        .collect()
}

/// The smoke check's verdict: `status` section `smoke`, also in `--json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmokeReport {
    /// The gateway checked through (`mender-api-gateway`), when there is one.
    pub gateway: Option<String>,
    /// The host name the requests carried.
    pub host: Option<String>,
    /// Every check passed.
    pub passed: bool,
    /// Why no request could be made (the gateway on no network, the helper failed): a failure.
    pub error: Option<String>,
    /// Why the check did not run at all (no gateway container, no certificate where Mender's
    /// files mount it, e.g. TLS ended by a proxy in front): not a failure, said in the output.
    pub skipped: Option<String>,
    /// One per check, in order.
    pub checks: Vec<SmokeCheck>,
}

/// One check's verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmokeCheck {
    /// `ui`, `management`, `device`.
    pub name: String,
    /// What it proves, in words.
    pub what: String,
    /// The URL requested (`https://HOST/PATH`).
    pub url: String,
    /// The HTTP status that came back, if any.
    pub status: Option<u16>,
    /// It passed.
    pub passed: bool,
    /// Why not, naming whose answer came back.
    pub problem: Option<String>,
}

impl SmokeReport {
    /// The report when no request could be made.
    pub fn failed(target: Option<&SmokeTarget>, why: impl ToString) -> SmokeReport {
        SmokeReport {
            gateway: target.map(|t| t.service.clone()),
            host: target.map(|t| t.host.clone()),
            passed: false,
            error: Some(why.to_string()),
            skipped: None,
            checks: vec![],
        }
    }

    /// The report when there is nothing to check through ([`TargetError`]): passed, with why.
    pub fn skipped(why: &TargetError) -> SmokeReport {
        SmokeReport { passed: true, skipped: Some(why.to_string()), ..Default::default() }
    }

    /// Adds the check that the signing keys are the ones `bundle` recorded (`changed`: one line
    /// per key that is not, from [`crate::snapshot::keys::changed`]); it fails the report when
    /// any is not.
    pub fn add_keys_check(&mut self, bundle: &str, changed: Vec<String>) {
        let passed = changed.is_empty();
        self.passed &= passed;
        self.checks.push(SmokeCheck {
            name: "keys".into(),
            what: format!("deviceauth's and useradm's signing keys are the ones the newest backup ({bundle}) recorded"),
            url: String::new(),
            status: None,
            passed,
            problem: (!passed).then(|| changed.join("; ")),
        });
    }

    /// One line per failed check (`smoke check management: HTTP 404 …`), or the reason none ran.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.error.iter().map(|e| format!("smoke check: {e}")).collect();
        out.extend(self.checks.iter().filter_map(|c| {
            c.problem.as_ref().map(|p| match c.url.as_str() {
                "" => format!("smoke check {}: {p}", c.name),
                url => format!("smoke check {} ({url}): {p}", c.name),
            })
        }));
        out
    }
}

/// Judges the helper's answers (in the order of [`requests`]).
pub fn judge(target: &SmokeTarget, answers: &[SmokeAnswer]) -> SmokeReport {
    let checks: Vec<SmokeCheck> = CHECKS
        .iter()
        .map(|c| {
            let answer = answers.iter().find(|a| a.check == c.name);
            let problem = match answer {
                None => Some("no answer from the helper".to_string()),
                Some(a) => verdict(c.name, a).err(),
            };
            SmokeCheck {
                name: c.name.into(),
                what: c.what.into(),
                url: answer.map(|a| a.url.clone()).unwrap_or_default(),
                status: answer.and_then(|a| a.status),
                passed: problem.is_none(),
                problem,
            }
        })
        .collect();
    SmokeReport {
        gateway: Some(target.service.clone()),
        host: Some(target.host.clone()),
        passed: checks.iter().all(|c| c.passed),
        error: None,
        skipped: None,
        checks,
    }
}

/// Whether `a` is the answer of the service the check must reach.
fn verdict(check: &str, a: &SmokeAnswer) -> Result<(), String> {
    if let Some(e) = &a.error {
        return Err(format!("no answer through the gateway: {e}"));
    }
    let Some(status) = a.status else { return Err("no answer through the gateway".into()) };
    let html = a.content_type.as_deref().is_some_and(|t| t.contains("text/html"))
        || a.body.to_ascii_lowercase().contains("<html")
        || a.body.to_ascii_lowercase().contains("<!doctype html");
    // Mender's services answer errors as `{"error": …, "request_id": …}` (go-lib-micro
    // rest_utils); traefik's own 404 is the text "404 page not found".
    // The error is a string there; traefik's json-error-responder (integration@3.7.11:
    // config/traefik/traefik.middlewares.yaml) answers `{"error": {"status_code": …}}`, an object,
    // for a request that fell to another router.
    let mender_error = serde_json::from_str::<serde_json::Value>(&a.body)
        .is_ok_and(|v| v.get("error").is_some_and(serde_json::Value::is_string));
    match check {
        "ui" if status == 200 && html => Ok(()),
        "ui" => Err(unexpected(status, "200 with the UI's page")),
        "management" if status == 401 && mender_error => Ok(()),
        "management" => Err(unexpected(status, "useradm's 401 for a wrong login")),
        "device" if matches!(status, 400 | 401) && mender_error => Ok(()),
        "device" => Err(unexpected(status, "deviceauth's 400 or 401 for a malformed request")),
        _ => Err(format!("unknown check {check}")),
    }
}

fn unexpected(status: u16, expected: &str) -> String {
    let whose = match status {
        404 => " from the gateway: no route matches (a rule for another host or path?)",
        403 => " from the gateway: a host or request it does not admit (ALLOWED_HOSTS?)",
        502..=504 => " from the gateway: the service behind the route does not answer (a wrong port?)",
        _ => "",
    };
    format!("HTTP {status}{whose}; expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::container::Mount;
    use crate::snapshot::ServiceState;

    fn answer(check: &str, status: u16, body: &str) -> SmokeAnswer {
        SmokeAnswer {
            check: check.into(),
            url: format!("https://h/{check}"),
            status: Some(status),
            body: body.into(),
            ..Default::default()
        }
    }

    fn a_target() -> SmokeTarget {
        SmokeTarget { service: "mender-api-gateway".into(), host: "h".into(), bind: String::new(), cert: String::new() }
    }

    #[test]
    fn each_service_is_known_by_its_own_answer() {
        let ok = [
            answer("ui", 200, "<!doctype html><title>Mender</title>"),
            answer("management", 401, r#"{"error":"unauthorized","request_id":"x"}"#),
            answer("device", 400, r#"{"error":"malformed","request_id":"x"}"#),
        ];
        let r = judge(&a_target(), &ok);
        assert!(r.passed, "{r:?}");
        assert!(r.failures().is_empty());

        // The gateway's own 404 (no rule matched) is not useradm's answer; a 401 without
        // Mender's error body is not either; the GUI's page for the device API is a fall-through.
        let bad = [
            answer("ui", 502, "Bad Gateway"),
            answer("management", 404, "404 page not found"),
            answer("device", 200, "<!doctype html>"),
        ];
        let r = judge(&a_target(), &bad);
        assert!(!r.passed);
        let all = r.failures().join("\n");
        for needle in [
            "smoke check ui (https://h/ui): HTTP 502 from the gateway: the service behind the route does not answer",
            "smoke check management (https://h/management): HTTP 404 from the gateway: no route matches",
            "smoke check device (https://h/device): HTTP 200; expected deviceauth's 400 or 401",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
        let responder = answer("management", 401, r#"{"error":{"status_code":401,"message":"Unauthorized"}}"#);
        assert!(!judge(&a_target(), &[responder]).checks[1].passed, "the error responder's body is not useradm's");
        let r = judge(&a_target(), &[answer("management", 401, "Unauthorized")]);
        assert!(!r.checks[1].passed, "a 401 without useradm's body: {r:?}");
        assert_eq!(r.checks[0].problem.as_deref(), Some("no answer from the helper"));
    }

    #[test]
    fn a_tls_failure_is_named() {
        let a = SmokeAnswer {
            check: "ui".into(),
            error: Some("the gateway presents another certificate than the stack's".into()),
            ..Default::default()
        };
        let r = judge(&a_target(), &[a]);
        assert!(r.checks[0].problem.as_deref().is_some_and(|p| p.contains("another certificate")), "{r:?}");
    }

    #[test]
    fn login_credentials_are_made_up_and_only_on_the_login() {
        let r = requests();
        assert_eq!(r.iter().map(|r| r.check.as_str()).collect::<Vec<_>>(), ["ui", "management", "device"]);
        assert!(r[1].basic.as_ref().is_some_and(|(u, p)| u.ends_with(".invalid") && p.starts_with("not-a-password")));
        assert!(r[0].basic.is_none() && r[2].basic.is_none());
        assert_eq!(r[2].json.as_deref(), Some("{}"));
    }

    fn empty_stack() -> Stack {
        Stack {
            project: "p".into(),
            working_dir: None,
            config_files: vec![],
            network: None,
            networks: Default::default(),
            release: None,
            unknown_tags: vec![],
            services: vec![],
            missing: vec![],
            mongo: None,
            databases: vec![],
            storage: crate::snapshot::Storage {
                kind: crate::snapshot::StorageKind::Unknown,
                service: None,
                volume: None,
                endpoint: None,
                bucket: None,
                region: None,
                account: None,
                credentials: false,
            },
            next_hops: vec![],
            healthy: true,
        }
    }

    fn stack_with_gateway() -> Stack {
        let mut s = empty_stack();
        s.services.push(ServiceState {
            name: "mender-api-gateway".into(),
            role: Some(Role::Gateway),
            container: "c".into(),
            image: "traefik:v2.10".into(),
            image_releases: vec![],
            expected_image: None,
            drift: None,
            state: "running".into(),
            running: true,
            restarting: false,
            restarts: 0,
            docker_health: None,
            http: vec![],
            healthy: true,
            problems: vec![],
        });
        s
    }

    fn gateway(env: &[&str], mounts: Vec<Mount>) -> ContainerInfo {
        ContainerInfo {
            service: "mender-api-gateway".into(),
            env: env.iter().map(|s| s.to_string()).collect(),
            mounts,
            ..Default::default()
        }
    }

    fn bind(src: &str, dst: &str) -> Mount {
        Mount { kind: "bind".into(), name: None, source: Some(src.into()), destination: dst.into() }
    }

    #[test]
    fn the_target_is_the_gateway_by_its_allowed_host_and_mounted_certificate() {
        let s = stack_with_gateway();
        let c = gateway(
            &["ALLOWED_HOSTS= mender.example.com ,s3.example.com", "STORAGE_URL=s3.example.com"],
            vec![bind("/srv/keys/cert/cert.crt", CERT_IN_GATEWAY)],
        );
        let t = target(&s, &[c]).unwrap();
        assert_eq!(t.service, "mender-api-gateway");
        assert_eq!(t.host, "mender.example.com");
        assert_eq!(t.bind, "/srv/keys/cert/cert.crt:/smoke/cert.crt:ro");
        assert_eq!(t.cert, "/smoke/cert.crt");

        // 3.0/3.1 have no ALLOWED_HOSTS in effect: the service name; a directory of certificates.
        let c = gateway(&[], vec![bind("/srv/certs", "/etc/traefik/certs")]);
        let t = target(&s, &[c]).unwrap();
        assert_eq!((t.host.as_str(), t.cert.as_str()), ("mender-api-gateway", "/smoke/certs"));

        // 4.x's own compose files: mender.crt, mounted as a file or in the directory.
        let c = gateway(&[], vec![bind("/srv/compose/certs/mender.crt", CERT_IN_GATEWAY_4X)]);
        let t = target(&s, &[c]).unwrap();
        assert_eq!(
            (t.bind.as_str(), t.cert.as_str()),
            ("/srv/compose/certs/mender.crt:/smoke/mender.crt:ro", "/smoke/mender.crt")
        );

        let c = gateway(&[], vec![bind("/srv/other.crt", "/etc/ssl/other.crt")]);
        assert_eq!(
            target(&s, &[c]).unwrap_err().to_string(),
            "the gateway mender-api-gateway has no certificate mounted at /etc/traefik/certs/cert.crt"
        );
        assert_eq!(target(&empty_stack(), &[]), Err(TargetError::NoGateway));
    }
}
