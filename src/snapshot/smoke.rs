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
use crate::engine::helper::{ArtifactCheckJob, ArtifactCheckResult, SessionResult, SmokeAnswer, SmokeRequest};

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
    /// The storage proxy devices download artifacts through, when the store is the stack's own
    /// (an external store is reached directly, not through the gateway).
    pub storage: Option<StorageRoute>,
}

/// The host and bucket of the presigned links deployments gives devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRoute {
    /// The host of deployments' `DEPLOYMENTS_AWS_EXTERNAL_URI` (what the links name), else of an
    /// `https` `DEPLOYMENTS_AWS_URI` (3.0–3.2), else the gateway's `STORAGE_URL` (what its storage
    /// rule routes: integration@3.7.11:config/traefik/traefik.minio.yaml).
    pub host: String,
    /// The artifact bucket, the first segment of a link's path.
    pub bucket: String,
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
    Ok(SmokeTarget { service, host, bind, cert, storage: storage_route(stack, containers, c) })
}

/// The storage proxy of a stack whose store runs in it ([`StorageRoute`]); `None` for a store
/// outside it, or when neither deployments nor the gateway names a storage host.
fn storage_route(stack: &Stack, containers: &[ContainerInfo], gateway: &ContainerInfo) -> Option<StorageRoute> {
    if stack.storage.kind != crate::snapshot::StorageKind::Volume {
        return None;
    }
    // Up to 3.2 the links name DEPLOYMENTS_AWS_URI (`https://<the gateway's storage alias>`);
    // from 3.3 DEPLOYMENTS_AWS_EXTERNAL_URI, the internal URI being `http://minio:9000`.
    let d = containers.iter().find(|c| c.service.ends_with("deployments"));
    let https_host = |var: &str| {
        d.and_then(|d| d.env_var(var))
            .and_then(|u| url::Url::parse(u).ok())
            .filter(|u| u.scheme() == "https")
            .and_then(|u| u.host_str().map(str::to_string))
    };
    let external = https_host("DEPLOYMENTS_AWS_EXTERNAL_URI").or_else(|| https_host("DEPLOYMENTS_AWS_URI"));
    let host = external.or_else(|| gateway.env_var("STORAGE_URL").map(str::trim).map(str::to_string));
    Some(StorageRoute {
        host: host.filter(|h| !h.is_empty())?,
        bucket: stack.storage.bucket.clone().unwrap_or_else(|| "mender-artifact-storage".into()),
    })
}

/// The artifact check's job for `stack` (without the store's credentials, which go in the
/// helper's environment).
///
/// # Errors
/// Why there is nothing to check, for the report's notes: no MongoDB, a sample of 0, a store
/// the helper cannot read (Azure, unknown), or an external bucket without static keys.
pub fn artifact_job(stack: &Stack, sample: ArtifactSample, seed: &str) -> Result<ArtifactCheckJob, String> {
    use crate::snapshot::StorageKind;
    let not = |why: &str| Err(format!("the artifacts were not looked for in the store: {why}"));
    let Some(mongo) = stack.mongo.as_ref() else { return not("the stack has no MongoDB") };
    if sample == ArtifactSample::Count(0) {
        return not("--artifact-sample 0");
    }
    match stack.storage.kind {
        StorageKind::Volume => {}
        StorageKind::S3 if stack.storage.credentials => {}
        StorageKind::S3 => return not("deployments has no static keys for the external bucket"),
        StorageKind::Azure => return not("the check does not read Azure Blob storage yet"),
        StorageKind::Unknown => return not("where deployments keeps them is not known"),
    }
    let Some(bucket) = stack.storage.bucket.clone() else { return not("no bucket is configured") };
    // deployments' database: by the service that migrates it, else Mender's name for it
    // (integration@3.7.11:docker-compose.yml, mender-server@v4.1.3 keep `deployment_service`).
    let db = stack
        .databases
        .iter()
        .find(|d| d.services.iter().any(|s| s.ends_with("deployments")))
        .map_or_else(|| "deployment_service".to_string(), |d| d.name.clone());
    Ok(ArtifactCheckJob {
        mongo_uri: crate::util::mongo_uri(&mongo.service),
        db,
        endpoint: stack.storage.endpoint.clone(),
        bucket,
        region: stack.storage.region.clone().unwrap_or_else(|| "us-east-1".into()),
        sample: sample.limit(),
        seed: seed.to_string(),
    })
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

/// The storage proxy's check: an unsigned request for an object that does not exist, on the host
/// and path of a presigned link, gets the store's S3 error (XML), not the GUI's page or the
/// gateway's 404.
const STORAGE: Check = Check {
    name: "storage",
    what: "the storage host devices download artifacts from reaches the object store (an unsigned request gets the store's S3 error)",
    method: "GET",
    path: "",
};

/// The checks `target` gets, in order.
fn checks(target: &SmokeTarget) -> impl Iterator<Item = &'static Check> {
    CHECKS.iter().chain(target.storage.is_some().then_some(&STORAGE))
}

/// The requests of the checks, in order. The login's credentials and the storage check's
/// object are made up for each run, so that no account or object can match them.
pub fn requests(target: &SmokeTarget) -> Vec<SmokeRequest> {
    let nonce = format!("{:x}", std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or_default());
    checks(target)
        .map(|c| SmokeRequest {
            check: c.name.into(),
            method: c.method.into(),
            path: match (&target.storage, c.name) {
                (Some(s), "storage") => format!("/{}/smoke-check-{nonce}", s.bucket),
                _ => c.path.into(),
            },
            basic: (c.name == "management")
                .then(|| ("smoke-check@mender-compose-upgrade.invalid".to_string(), format!("not-a-password-{nonce}"))),
            json: (c.name == "device").then(|| "{}".to_string()),
            host: target.storage.as_ref().filter(|_| c.name == "storage").map(|s| s.host.clone()),
        })
        .collect()
}

/// How many of the artifacts the deployments database references the check looks for in the
/// store (`--artifact-sample N|all`): a sample keeps the check cheap on a store of thousands of
/// artifacts and, drawn anew each run, still finds a missing object over a few runs; `all`
/// proves every one. `0` turns the check off (said in the report's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactSample {
    /// At most this many, chosen at random each run.
    Count(u64),
    /// Every artifact.
    All,
}

/// The sample size when none is given.
pub const DEFAULT_ARTIFACT_SAMPLE: u64 = 20;

impl Default for ArtifactSample {
    fn default() -> Self {
        ArtifactSample::Count(DEFAULT_ARTIFACT_SAMPLE)
    }
}

impl ArtifactSample {
    /// The helper's limit: `None` for every artifact.
    pub fn limit(self) -> Option<u64> {
        match self {
            ArtifactSample::Count(n) => Some(n),
            ArtifactSample::All => None,
        }
    }
}

impl std::fmt::Display for ArtifactSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtifactSample::Count(n) => write!(f, "{n}"),
            ArtifactSample::All => f.write_str("all"),
        }
    }
}

/// A value of `--artifact-sample` that is neither a number nor `all`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number of artifacts or `all`")]
pub struct BadSample(String);

impl std::str::FromStr for ArtifactSample {
    type Err = BadSample;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(ArtifactSample::All),
            n => n.parse().map(ArtifactSample::Count).map_err(|_| BadSample(s.to_string())),
        }
    }
}

/// An operator's account for the session part of the check (`--smoke-user`; the password from
/// `MENDER_SMOKE_PASSWORD` or `--smoke-password-file`, never a flag's value). Its `Debug` shows
/// no password; nothing prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login (an e-mail address).
    pub user: String,
    password: String,
}

impl Credentials {
    /// An account.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    /// The password, for the helper's environment only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<hidden>").finish()
    }
}

/// The environment variable `--smoke-user`'s password is read from (else `--smoke-password-file`).
pub const SMOKE_PASSWORD_ENV: &str = "MENDER_SMOKE_PASSWORD";

/// What a smoke check does beyond its fixed requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmokeOptions {
    /// How many artifacts to look for in the store (`--artifact-sample`).
    pub artifact_sample: ArtifactSample,
    /// An operator's account: log in, count, download an artifact; `None`: that part is skipped
    /// and the report says so.
    pub credentials: Option<Credentials>,
}

/// The note of a check run without an operator's account.
pub const NO_SESSION: &str = "without operator credentials (--smoke-user, the password in MENDER_SMOKE_PASSWORD or --smoke-password-file) the login, the device and artifact counts and a download through the storage proxy were not checked";

/// At most this many problem artifacts are named in one message; the rest are counted.
const NAMED: usize = 5;

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
    /// What was not checked, and why (no operator credentials).
    #[serde(default)]
    pub notes: Vec<String>,
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
            notes: vec![],
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

    /// Adds the check that the artifacts the deployments database references are in the store
    /// with the sizes it records (`store`: the bucket, for the message); it fails the report when
    /// one is missing or of another size, or when the check could not look.
    pub fn add_artifacts_check(&mut self, store: &str, sample: ArtifactSample, r: &ArtifactCheckResult) {
        let bad: Vec<String> = r
            .checked
            .iter()
            .filter_map(|a| {
                let name = a.name.as_deref().map_or_else(|| a.id.clone(), |n| format!("{} ({n})", a.id));
                match (a.found, a.recorded) {
                    (None, _) => Some(format!("{name} has no object in the store")),
                    (Some(f), Some(rec)) if i64::try_from(f).ok() != Some(rec) => {
                        Some(format!("{name} has {f} bytes in the store, the deployments database records {rec}"))
                    }
                    _ => None,
                }
            })
            .collect();
        let problem = match (&r.error, bad.len()) {
            (Some(e), _) => Some(format!("could not look: {e}")),
            (None, 0) => None,
            (None, n) => {
                let mut p = bad.iter().take(NAMED).cloned().collect::<Vec<_>>().join("; ");
                if n > NAMED {
                    p.push_str(&format!("; and {} more", n - NAMED));
                }
                p.push_str(&format!(
                    " ({n} of the {} checked of {} artifacts; devices fail to download them: restore the artifacts from a backup)",
                    r.checked.len(),
                    r.referenced
                ));
                Some(p)
            }
        };
        let what = match sample {
            ArtifactSample::All => {
                format!("every artifact the deployments database references is in {store} with its recorded size")
            }
            ArtifactSample::Count(n) => format!(
                "{} of the {} artifacts the deployments database references (a random sample of at most {n}) are in {store} with their recorded sizes",
                r.checked.len(),
                r.referenced
            ),
        };
        self.passed &= problem.is_none();
        self.checks.push(SmokeCheck {
            name: "artifacts".into(),
            what,
            url: String::new(),
            status: None,
            passed: problem.is_none(),
            problem,
        });
    }

    /// Adds the check made with the account `user`: it passes when the login, the counts and the
    /// link answered, and the artifact downloaded through the storage proxy has the size
    /// deployments lists and the store's own bytes (sha256).
    pub fn add_session_check(&mut self, user: &str, r: &SessionResult) {
        let mut problem = r.failed.as_ref().map(|(step, why)| {
            let hint = match (step.as_str(), r.login) {
                ("login", Some(401)) => " (a wrong password, or no such user?)",
                ("download", _) => " (the storage proxy: the gateway's storage rule, STORAGE_URL and deployments' DEPLOYMENTS_AWS_EXTERNAL_URI must name the same host)",
                _ => "",
            };
            format!("as {user}: {step} failed: {why}{hint}")
        });
        let art = r.artifact.clone().unwrap_or_default();
        if problem.is_none() {
            if let (Some((sha, n)), Some(listed)) = (&r.downloaded, r.listed_size)
                && *n != listed
            {
                problem = Some(format!(
                    "artifact {art} came through the storage proxy with {n} bytes, deployments lists {listed} (sha256 {sha})"
                ));
            } else if let (Some((got, n)), Some((want, m))) = (&r.downloaded, &r.stored)
                && got != want
            {
                problem = Some(format!(
                    "artifact {art} came through the storage proxy as sha256 {got} ({n} bytes), the store holds sha256 {want} ({m} bytes)"
                ));
            }
        }
        let counts = match (r.devices, r.artifacts) {
            (Some(d), Some(a)) => format!(", {d} devices, {a} artifacts"),
            _ => String::new(),
        };
        let download = match (&r.downloaded, &r.link_host) {
            (None, Some(h)) if r.outside => {
                format!("; artifact {art}'s link goes to {h}, a store outside the gateway (not downloaded)")
            }
            (Some((_, n)), Some(h)) => {
                let same = if r.stored.is_some() { ", the store's bytes" } else { "" };
                format!("; artifact {art} downloaded through {h} ({n} bytes{same})")
            }
            _ if r.artifacts == Some(0) => "; no artifact to download".into(),
            _ => String::new(),
        };
        self.passed &= problem.is_none();
        let what = if r.login == Some(200) {
            format!("as {user}: logged in{counts}{download}")
        } else {
            format!("as {user}: log in, count the devices and artifacts, download one through the storage proxy")
        };
        self.checks.push(SmokeCheck {
            name: "session".into(),
            what,
            url: String::new(),
            status: r.login,
            passed: problem.is_none(),
            problem,
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
    let checks: Vec<SmokeCheck> = checks(target)
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
        notes: vec![],
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
        // An S3 error document (`<Error><Code>AccessDenied</Code>…`, or `NoSuchKey`): the store.
        "storage" if a.body.contains("<Error>") && a.body.contains("<Code>") => Ok(()),
        "storage" if html => Err(format!(
            "HTTP {status} with a web page: the request reached the GUI, not the store (the gateway's storage rule does not match this host or path); expected the store's S3 error"
        )),
        "storage" => Err(unexpected(status, "the store's S3 error for an unsigned request")),
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
        SmokeTarget {
            service: "mender-api-gateway".into(),
            host: "h".into(),
            bind: String::new(),
            cert: String::new(),
            storage: None,
        }
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
        let r = requests(&a_target());
        assert_eq!(r.iter().map(|r| r.check.as_str()).collect::<Vec<_>>(), ["ui", "management", "device"]);
        assert!(r[1].basic.as_ref().is_some_and(|(u, p)| u.ends_with(".invalid") && p.starts_with("not-a-password")));
        assert!(r[0].basic.is_none() && r[2].basic.is_none());
        assert_eq!(r[2].json.as_deref(), Some("{}"));
    }

    fn checked(id: &str, recorded: i64, found: Option<u64>) -> crate::engine::helper::CheckedArtifact {
        crate::engine::helper::CheckedArtifact {
            id: id.into(),
            name: Some(format!("r-{id}")),
            recorded: Some(recorded),
            found,
        }
    }

    #[test]
    fn an_artifact_missing_or_of_another_size_fails_the_artifacts_check() {
        let ok = ArtifactCheckResult {
            referenced: 40,
            checked: vec![checked("a", 10, Some(10)), checked("b", 20, Some(20))],
            error: None,
        };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_artifacts_check("bucket b", ArtifactSample::Count(2), &ok);
        assert!(r.passed, "{r:?}");
        assert_eq!(
            r.checks[0].what,
            "2 of the 40 artifacts the deployments database references (a random sample of at most 2) are in bucket b with their recorded sizes"
        );

        let mut many: Vec<_> = (0..7).map(|i| checked(&format!("gone{i}"), 5, None)).collect();
        many.insert(0, checked("short", 4096, Some(10)));
        let bad = ArtifactCheckResult { referenced: 8, checked: many, error: None };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_artifacts_check("bucket b", ArtifactSample::All, &bad);
        assert!(!r.passed);
        let f = r.failures().join("\n");
        assert!(f.starts_with("smoke check artifacts: short (r-short) has 10 bytes in the store, the deployments database records 4096; gone0 (r-gone0) has no object in the store"), "{f}");
        assert!(f.contains("; and 3 more (8 of the 8 checked of 8 artifacts; devices fail to download them"), "{f}");
        assert!(!f.contains("gone5"), "only the first five are named: {f}");

        let failed = ArtifactCheckResult { error: Some("MongoDB: no server".into()), ..Default::default() };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_artifacts_check("bucket b", ArtifactSample::default(), &failed);
        assert_eq!(r.failures(), ["smoke check artifacts: could not look: MongoDB: no server"]);
    }

    #[test]
    fn artifact_sample_values() {
        assert_eq!("all".parse::<ArtifactSample>(), Ok(ArtifactSample::All));
        assert_eq!("7".parse::<ArtifactSample>(), Ok(ArtifactSample::Count(7)));
        assert_eq!(ArtifactSample::default().to_string(), "20");
        assert_eq!(
            "-1".parse::<ArtifactSample>().unwrap_err().to_string(),
            "\"-1\" is not a number of artifacts or `all`"
        );
    }

    #[test]
    fn the_artifact_job_reads_deployments_database_and_the_stack_s_store() {
        use crate::snapshot::StorageKind;
        let mut s = empty_stack();
        assert!(artifact_job(&s, ArtifactSample::All, "x").unwrap_err().ends_with("the stack has no MongoDB"));
        s.mongo = Some(crate::snapshot::MongoState {
            service: "mender-mongo".into(),
            image: None,
            expected_major: "4.4".into(),
            reachable: true,
            error: None,
            server_version: None,
            fcv: None,
            ferretdb: false,
            refusal: None,
        });
        s.storage.kind = StorageKind::Volume;
        s.storage.endpoint = Some("http://minio:9000".into());
        s.storage.bucket = Some("mender-artifact-storage".into());
        let job = artifact_job(&s, ArtifactSample::Count(3), "x").unwrap();
        assert_eq!(job.db, "deployment_service");
        assert_eq!(job.mongo_uri, "mongodb://mender-mongo:27017");
        assert_eq!((job.sample, job.region.as_str()), (Some(3), "us-east-1"));
        assert!(artifact_job(&s, ArtifactSample::Count(0), "x").unwrap_err().ends_with("--artifact-sample 0"));
        s.storage.kind = StorageKind::S3;
        assert!(artifact_job(&s, ArtifactSample::All, "x").unwrap_err().contains("no static keys"));
        s.storage.credentials = true;
        assert!(artifact_job(&s, ArtifactSample::All, "x").is_ok());
        s.storage.kind = StorageKind::Azure;
        assert!(artifact_job(&s, ArtifactSample::All, "x").unwrap_err().contains("Azure"));
    }

    #[test]
    fn the_storage_proxy_is_known_by_the_store_s_s3_error() {
        let t = SmokeTarget {
            storage: Some(StorageRoute { host: "s3.example.com".into(), bucket: "mender-artifact-storage".into() }),
            ..a_target()
        };
        let r = requests(&t);
        let st = r.iter().find(|r| r.check == "storage").expect("a storage request");
        assert_eq!(st.host.as_deref(), Some("s3.example.com"));
        assert!(st.path.starts_with("/mender-artifact-storage/smoke-check-"), "{}", st.path);
        assert!(r.iter().filter(|r| r.check != "storage").all(|r| r.host.is_none()));
        assert!(requests(&a_target()).iter().all(|r| r.check != "storage"), "no storage proxy, no check");

        let s3 = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>"#;
        let verdict_of = |a: SmokeAnswer| judge(&t, &[a]).checks.into_iter().find(|c| c.name == "storage").unwrap();
        assert!(verdict_of(answer("storage", 403, s3)).passed);
        let gui = SmokeAnswer { content_type: Some("text/html".into()), ..answer("storage", 200, "<!doctype html>") };
        let c = verdict_of(gui);
        assert!(!c.passed && c.problem.as_deref().unwrap().contains("reached the GUI, not the store"), "{c:?}");
        let c = verdict_of(answer("storage", 404, "404 page not found"));
        assert!(c.problem.as_deref().unwrap().contains("no route matches"), "{c:?}");
    }

    #[test]
    fn the_storage_host_is_the_one_devices_are_given() {
        let mut s = stack_with_gateway();
        s.storage.kind = crate::snapshot::StorageKind::Volume;
        s.storage.bucket = Some("b".into());
        let gw = gateway(&["STORAGE_URL=s3.gateway.io"], vec![bind("/c/cert.crt", CERT_IN_GATEWAY)]);
        let t = target(&s, std::slice::from_ref(&gw)).unwrap();
        assert_eq!(t.storage, Some(StorageRoute { host: "s3.gateway.io".into(), bucket: "b".into() }));
        let deployments = ContainerInfo {
            service: "mender-deployments".into(),
            env: vec!["DEPLOYMENTS_AWS_EXTERNAL_URI=https://s3.example.com:8443".into()],
            ..Default::default()
        };
        let t = target(&s, &[gw.clone(), deployments]).unwrap();
        assert_eq!(t.storage.unwrap().host, "s3.example.com", "the links' host wins");
        let old_style = |uri: &str| ContainerInfo {
            service: "mender-deployments".into(),
            env: vec![format!("DEPLOYMENTS_AWS_URI={uri}")],
            ..Default::default()
        };
        let t = target(&s, &[gw.clone(), old_style("https://s3.old.io")]).unwrap();
        assert_eq!(t.storage.unwrap().host, "s3.old.io", "3.0-3.2: the links name DEPLOYMENTS_AWS_URI");
        let t = target(&s, &[gw.clone(), old_style("http://minio:9000")]).unwrap();
        assert_eq!(t.storage.unwrap().host, "s3.gateway.io", "an internal URI is no link host");
        s.storage.kind = crate::snapshot::StorageKind::S3;
        assert_eq!(target(&s, &[gw]).unwrap().storage, None, "an external store is not behind the gateway");
    }

    #[test]
    fn the_session_names_the_step_that_failed_and_a_download_that_differs() {
        let ok = SessionResult {
            login: Some(200),
            devices: Some(20),
            artifacts: Some(5),
            artifact: Some("a1 (release-1)".into()),
            listed_size: Some(4096),
            link_host: Some("https://s3.example.com".into()),
            download: Some(200),
            downloaded: Some(("aa".into(), 4096)),
            stored: Some(("aa".into(), 4096)),
            outside: false,
            failed: None,
        };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_session_check("ops@example.com", &ok);
        assert!(r.passed, "{r:?}");
        assert_eq!(
            r.checks[0].what,
            "as ops@example.com: logged in, 20 devices, 5 artifacts; artifact a1 (release-1) downloaded through https://s3.example.com (4096 bytes, the store's bytes)"
        );

        let other = SessionResult { stored: Some(("bb".into(), 4096)), ..ok.clone() };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_session_check("ops@example.com", &other);
        assert!(!r.passed);
        assert!(
            r.failures()[0]
                .contains("came through the storage proxy as sha256 aa (4096 bytes), the store holds sha256 bb")
        );

        let external = SessionResult {
            link_host: Some("https://bucket.s3.amazonaws.com".into()),
            downloaded: None,
            stored: None,
            outside: true,
            ..ok.clone()
        };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_session_check("ops@example.com", &external);
        assert!(r.passed);
        assert!(
            r.checks[0].what.ends_with(
                "link goes to https://bucket.s3.amazonaws.com, a store outside the gateway (not downloaded)"
            )
        );

        let short = SessionResult { downloaded: Some(("aa".into(), 10)), ..ok.clone() };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_session_check("ops@example.com", &short);
        assert!(r.failures()[0].contains("with 10 bytes, deployments lists 4096"), "{:?}", r.failures());

        let denied = SessionResult {
            login: Some(401),
            failed: Some(("login".into(), "HTTP 401: {}".into())),
            ..Default::default()
        };
        let mut r = SmokeReport { passed: true, ..Default::default() };
        r.add_session_check("ops@example.com", &denied);
        assert_eq!(
            r.failures(),
            [
                "smoke check session: as ops@example.com: login failed: HTTP 401: {} (a wrong password, or no such user?)"
            ]
        );
        let c = Credentials::new("ops@example.com", "s3cr3t-pw");
        assert!(!format!("{c:?}").contains("s3cr3t-pw"));
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
