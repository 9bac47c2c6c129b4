//! `backup --copy-to URL` and `backup copy BUNDLE --to URL`: a finished bundle copied off the host
//! into an S3 bucket or an Azure Blob container, and proven there. Every file goes to
//! `PREFIX/<bundle name>/<path in the bundle>`, is read back (streamed, never whole in memory) and
//! its sha256 compared with the manifest's; `manifest.json` goes last, so a copy that stopped half
//! way has no manifest and is never taken for a bundle. The local bundle is never changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::bundle::{self, MANIFEST, MANIFEST_SUM};
use super::manifest::{Manifest, ManifestError};
use crate::engine::azure::Account;
use crate::engine::s3::{S3Bucket, S3Endpoint};
use crate::engine::store::{ObjectStore, StoreError};
use crate::progress::Progress;

/// Files uploaded and read back at once.
const PARALLEL: usize = 4;

/// Where a copy goes, as the operator wrote it: `s3://BUCKET[/PREFIX]` or
/// `azure://CONTAINER[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An S3 bucket (AWS, or an S3-compatible server given by endpoint).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing slashes; empty for none.
        prefix: String,
    },
    /// An Azure Blob container.
    Azure {
        /// The container.
        container: String,
        /// The blob name prefix, without leading or trailing slashes; empty for none.
        prefix: String,
    },
}

impl Target {
    /// Parses `s3://BUCKET[/PREFIX]` or `azure://CONTAINER[/PREFIX]` (trailing slashes ignored).
    ///
    /// # Errors
    /// [`CopyError::BadUrl`] for another scheme, no bucket, or a prefix with an empty, `.` or
    /// `..` segment.
    pub fn parse(url: &str) -> Result<Target, CopyError> {
        let bad = || CopyError::BadUrl(url.to_string());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() || name.contains(['?', '#', '@', ':']) {
            return Err(bad());
        }
        if !prefix.is_empty() && prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(bad());
        }
        let (name, prefix) = (name.to_string(), prefix.to_string());
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => Ok(Target::S3 { bucket: name, prefix }),
            "azure" => Ok(Target::Azure { container: name, prefix }),
            _ => Err(bad()),
        }
    }

    /// The key a bundle file gets: `PREFIX/<bundle>/<rel>` (no leading slash without a prefix).
    pub fn key(&self, bundle: &str, rel: &str) -> String {
        match self.prefix() {
            "" => format!("{bundle}/{rel}"),
            p => format!("{p}/{bundle}/{rel}"),
        }
    }

    /// The key prefix (empty for none).
    pub fn prefix(&self) -> &str {
        match self {
            Target::S3 { prefix, .. } | Target::Azure { prefix, .. } => prefix,
        }
    }

    /// The destination as a URL: `s3://BUCKET/PREFIX` (no trailing slash).
    pub fn url(&self) -> String {
        let (scheme, name) = match self {
            Target::S3 { bucket, .. } => ("s3", bucket),
            Target::Azure { container, .. } => ("azure", container),
        };
        match self.prefix() {
            "" => format!("{scheme}://{name}"),
            p => format!("{scheme}://{name}/{p}"),
        }
    }

    /// The URL of the bundle's copy: `s3://BUCKET/PREFIX/<bundle>`.
    pub fn url_of(&self, bundle: &str) -> String {
        format!("{}/{bundle}", self.url())
    }
}

/// The destination with its client: where it is (never its keys).
pub struct Destination {
    /// What the operator asked for.
    pub target: Target,
    /// The endpoint, for messages: `AWS`, `http://s3.local:8333`, the Azure blob endpoint.
    pub endpoint: String,
    store: Box<dyn ObjectStore>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination").field("target", &self.target).field("endpoint", &self.endpoint).finish()
    }
}

/// The S3 settings a copy takes from the environment, as the AWS tools read them.
fn s3_endpoint(endpoint: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Endpoint, CopyError> {
    let (Some(access_key), Some(secret_key)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) else {
        return Err(CopyError::NoCredentials("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()));
    };
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    let url = endpoint.map(str::to_string).or_else(|| env("AWS_ENDPOINT_URL_S3")).or_else(|| env("AWS_ENDPOINT_URL"));
    Ok(S3Endpoint { url, region, access_key, secret_key })
}

/// The Azure account a copy takes from the environment, as the `az` tool reads it.
fn azure_account(endpoint: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Account, CopyError> {
    let settings = |e: crate::engine::azure::AzureError| CopyError::Settings(e.to_string());
    if let Some(conn) = env("AZURE_STORAGE_CONNECTION_STRING") {
        // `--endpoint-url` replaces the string's own BlobEndpoint.
        let conn = match endpoint {
            Some(url) => {
                let kept: Vec<&str> =
                    conn.split(';').filter(|kv| !kv.trim().to_ascii_lowercase().starts_with("blobendpoint=")).collect();
                format!("{};BlobEndpoint={url}", kept.join(";"))
            }
            None => conn,
        };
        return Account::from_connection_string(&conn).map_err(settings);
    }
    let (Some(name), Some(key)) = (env("AZURE_STORAGE_ACCOUNT"), env("AZURE_STORAGE_KEY")) else {
        return Err(CopyError::NoCredentials(
            "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY".into(),
        ));
    };
    let url = endpoint.map_or_else(|| format!("https://{name}.blob.core.windows.net"), str::to_string);
    Account::new(&name, &key, &url).map_err(settings)
}

/// The process environment, empty values taken as unset.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl Destination {
    /// The client for `target`, with the credentials `env` gives (see the README: AWS_* for S3,
    /// AZURE_STORAGE_* for Azure) and `endpoint` (`--endpoint-url`) overriding the environment's.
    /// Nothing is contacted yet.
    ///
    /// # Errors
    /// [`CopyError::NoCredentials`] or [`CopyError::Settings`].
    pub fn open(
        target: Target,
        endpoint: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Destination, CopyError> {
        match &target {
            Target::S3 { bucket, .. } => {
                let ep = s3_endpoint(endpoint, env)?;
                let endpoint = ep.url.clone().unwrap_or_else(|| "AWS".into());
                let store = Box::new(S3Bucket::new(&ep, bucket));
                Ok(Destination { target, endpoint, store })
            }
            Target::Azure { container, .. } => {
                let account = azure_account(endpoint, env)?;
                let store = Box::new(account.container(container).map_err(|e| CopyError::Settings(e.to_string()))?);
                Ok(Destination { target, endpoint: account.endpoint, store })
            }
        }
    }

    /// The bucket or container, for messages.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.store.describe(), self.endpoint)
    }

    /// Checks that the bucket or container exists and the credentials are accepted (the copy never
    /// creates it: a typo must not make a new bucket nobody watches).
    ///
    /// # Errors
    /// [`CopyError::Missing`], or [`CopyError::Store`] for refused credentials or an unreachable
    /// endpoint.
    pub async fn check(&self) -> Result<(), CopyError> {
        match self.store.exists().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(CopyError::Missing(self.describe())),
            Err(e) => Err(CopyError::Store(self.describe(), scrub(&e.to_string()))),
        }
    }
}

/// What a copy did, as `--json` gives it (`copy` in `backup`'s result).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CopyReport {
    /// The bundle copied.
    pub bundle: PathBuf,
    /// Where its files are: `s3://BUCKET/PREFIX/<bundle name>` or `azure://CONTAINER/PREFIX/<bundle name>`.
    pub to: String,
    /// The endpoint (`AWS`, or the URL of the S3-compatible server or of the Azure blob service).
    pub endpoint: String,
    /// Files uploaded, read back and found equal to the manifest's sha256 (manifest included).
    pub verified_files: u64,
    /// Their bytes.
    pub verified_bytes: u64,
    /// Seconds the copy took.
    pub seconds: f64,
}

/// Why a copy failed; the local bundle is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Not `s3://BUCKET[/PREFIX]` or `azure://CONTAINER[/PREFIX]`.
    #[error("{0:?} is not a copy destination: expected s3://BUCKET[/PREFIX] or azure://CONTAINER[/PREFIX]")]
    BadUrl(String),
    /// The environment lacks the credentials named.
    #[error("no credentials for the copy: set {0}")]
    NoCredentials(String),
    /// The credentials or endpoint do not make a client.
    #[error("the copy destination's settings are unusable: {0}")]
    Settings(String),
    /// The bucket or container does not exist.
    #[error("the {0} does not exist (a copy never creates it)")]
    Missing(String),
    /// The store refused or failed (credentials, network).
    #[error("the {0} cannot be used: {1}")]
    Store(String, String),
    /// The bundle's manifest cannot be read.
    #[error("the bundle cannot be copied: {0}")]
    Manifest(#[from] ManifestError),
    /// A file of the bundle failed to upload or to be read back (bundle path, message).
    #[error("{0}: {1}")]
    File(String, String),
    /// A file's copy does not match the manifest.
    #[error(
        "{path}: the copy read back has sha256 {got} and {got_size} bytes, the manifest says {want} and {want_size} bytes (the upload or the local file is damaged: run `verify` on the bundle)"
    )]
    Mismatch {
        /// The file, relative to the bundle.
        path: String,
        /// sha256 read back.
        got: String,
        /// Bytes read back.
        got_size: u64,
        /// sha256 in the manifest.
        want: String,
        /// Bytes in the manifest.
        want_size: u64,
    },
}

impl CopyError {
    /// What the operator is told. `bundle`: the local bundle (kept in every case), `None` when the
    /// destination was checked before a backup (`backup --copy-to`) and nothing was done. Exit 2
    /// for a bad URL, 3 when nothing could be sent (no credentials, an unreadable manifest) or
    /// nothing was done, 6 when the copy of a complete bundle failed.
    pub fn failure(&self, bundle: Option<&Path>, to: &str, endpoint_url: Option<&str>) -> crate::exit::Failure {
        use crate::exit::{Exit, Failure};
        let kept = match bundle {
            Some(b) => format!("the local bundle {} is complete and kept", b.display()),
            None => "nothing: no service was stopped and no bundle was written".into(),
        };
        let exit = match self {
            CopyError::BadUrl(_) => Exit::Usage,
            CopyError::NoCredentials(_) | CopyError::Settings(_) | CopyError::Manifest(_) => Exit::Precondition,
            _ if bundle.is_none() => Exit::Precondition,
            _ => Exit::CopyFailed,
        };
        let next = match self {
            CopyError::BadUrl(_) => "give --copy-to/--to as s3://BUCKET/PREFIX or azure://CONTAINER/PREFIX".to_string(),
            CopyError::NoCredentials(_) | CopyError::Settings(_) => {
                "set the credentials in the environment (see the README: backup copies), then run it again".into()
            }
            CopyError::Missing(_) => "create the bucket or container (or fix its name), then copy again".into(),
            _ => match bundle {
                Some(b) => {
                    // A command to paste: every argument quoted for the shell, the endpoint kept.
                    let bundle = b.to_string_lossy();
                    let mut args = vec!["mender-compose-upgrade", "backup", "copy", &bundle, "--to", to];
                    args.extend(endpoint_url.iter().flat_map(|e| ["--endpoint-url", *e]));
                    let cmd = shlex::try_join(args).unwrap_or_else(|_| format!("backup copy {bundle} --to {to}"));
                    format!("fix the cause, then copy again: {cmd}")
                }
                None => "fix the credentials, endpoint or network, then run the backup again".into(),
            },
        };
        Failure::new(exit, format!("copying the bundle to {to} failed: {self}"), kept, next)
    }
}

/// Removes SAS signatures (`sig=…`) from a store's message: an Azure request URL carries one.
fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("sig=") {
        out.push_str(&rest[..i + 4]);
        out.push_str("REDACTED");
        rest = &rest[i + 4..];
        let end = rest.find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace()).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// One file to copy: its path in the bundle, and what the manifest says it holds.
#[derive(Debug, Clone)]
struct Planned {
    rel: String,
    size: u64,
    sha256: String,
}

/// The files of the bundle in `dir`, data first, `manifest.json.sha256` then `manifest.json` last.
fn planned(dir: &Path, m: &Manifest) -> Result<Vec<Planned>, CopyError> {
    let mut files: Vec<Planned> =
        m.files.iter().map(|f| Planned { rel: f.path.clone(), size: f.size, sha256: f.sha256.clone() }).collect();
    let io = |rel: &str| {
        let path = dir.join(rel);
        move |e: std::io::Error| CopyError::File(rel_name(&path), e.to_string())
    };
    let (sum_sha, sum_size) = bundle::file_sha256(&dir.join(MANIFEST_SUM)).map_err(io(MANIFEST_SUM))?;
    files.push(Planned { rel: MANIFEST_SUM.into(), size: sum_size, sha256: sum_sha });
    // Manifest::load proved manifest.json matches its checksum file; the size is the file's.
    let (man_sha, man_size) = bundle::file_sha256(&dir.join(MANIFEST)).map_err(io(MANIFEST))?;
    files.push(Planned { rel: MANIFEST.into(), size: man_size, sha256: man_sha });
    Ok(files)
}

fn rel_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Copies the bundle in `dir` to `dest` and reads every file back, comparing its sha256 and size
/// with the manifest. The local bundle is only read.
///
/// # Errors
/// The manifest cannot be read, the destination is missing or refuses, an upload or read-back
/// failed (naming the file), or a copy differs from the manifest (naming the file).
pub async fn copy(dir: &Path, dest: &Destination, progress: &Progress) -> Result<CopyReport, CopyError> {
    let start = Instant::now();
    let manifest = Manifest::load(dir)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bundle".into());
    let to = dest.target.url_of(&name);
    let files = planned(dir, &manifest)?;
    if manifest.encryption.is_none() {
        progress.step(
            "copy-to",
            "warning: this bundle is not encrypted: the deviceauth and useradm private keys and the store's secret leave the host in clear (back up with --encrypt-to for bundles that leave it)",
        );
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.step(
        "copy-to",
        format!(
            "copying {} ({}, {}) to {to} at {}",
            name,
            crate::util::count_len(files.len(), "file"),
            crate::util::size(total),
            dest.endpoint
        ),
    );
    dest.check().await?;
    let done = Arc::new(AtomicU64::new(0));
    let tracker = progress.track_bytes("copying", done.clone(), Some(total));
    let (data, last) = files.split_at(files.len().saturating_sub(2));
    let one = |f: &Planned| {
        let done = done.clone();
        let key = dest.target.key(&name, &f.rel);
        let f = f.clone();
        async move {
            upload_and_check(dest.store.as_ref(), &dir.join(&f.rel), &key, &f).await?;
            done.fetch_add(f.size, Ordering::Relaxed);
            Ok::<_, CopyError>(())
        }
    };
    futures_util::stream::iter(data).map(&one).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
    // The checksum file, then the manifest: only a complete copy has one.
    for f in last {
        one(f).await?;
    }
    drop(tracker);
    let report = CopyReport {
        bundle: dir.to_path_buf(),
        to,
        endpoint: dest.endpoint.clone(),
        verified_files: files.len() as u64,
        verified_bytes: total,
        seconds: crate::util::secs(start.elapsed()),
    };
    progress.step(
        "copy-to",
        format!(
            "{} ({}) read back from {} and equal to the manifest",
            crate::util::count_len(files.len(), "file"),
            crate::util::size(total),
            report.to
        ),
    );
    Ok(report)
}

/// Uploads one file, then streams it back through sha256 (nothing kept) and compares.
async fn upload_and_check(store: &dyn ObjectStore, path: &Path, key: &str, f: &Planned) -> Result<(), CopyError> {
    let failed = |e: StoreError| CopyError::File(f.rel.clone(), scrub(&e.to_string()));
    store.put(key, path).await.map_err(failed)?;
    let (got, got_size) = store.get(key, &mut tokio::io::sink()).await.map_err(failed)?;
    if got != f.sha256 || got_size != f.size {
        return Err(CopyError::Mismatch {
            path: f.rel.clone(),
            got,
            got_size,
            want: f.sha256.clone(),
            want_size: f.size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        let s3 = |b: &str, p: &str| Target::S3 { bucket: b.into(), prefix: p.into() };
        assert_eq!(Target::parse("s3://backups").unwrap(), s3("backups", ""));
        assert_eq!(Target::parse("s3://backups/").unwrap(), s3("backups", ""));
        assert_eq!(Target::parse("s3://backups/mender/nightly/").unwrap(), s3("backups", "mender/nightly"));
        assert_eq!(Target::parse("S3://b/p").unwrap(), s3("b", "p"));
        assert_eq!(
            Target::parse("azure://offsite/mender").unwrap(),
            Target::Azure { container: "offsite".into(), prefix: "mender".into() }
        );
        for bad in [
            "",
            "backups",
            "/var/backups",
            "s3://",
            "s3:///prefix",
            "s3://b//x",
            "s3://b/../x",
            "s3://b/./x",
            "gs://b/p",
            "https://s3.amazonaws.com/b",
            "s3://key:secret@b/p",
            "bundle",
        ] {
            assert!(matches!(Target::parse(bad), Err(CopyError::BadUrl(_))), "{bad} parsed");
        }
    }

    #[test]
    fn keys_are_prefix_bundle_and_path() {
        let t = Target::parse("s3://b/mender/nightly").unwrap();
        assert_eq!(
            t.key("prod-3.4.0-20260101T000000Z", "artifacts/objects/ab"),
            "mender/nightly/prod-3.4.0-20260101T000000Z/artifacts/objects/ab"
        );
        assert_eq!(t.url_of("prod-x"), "s3://b/mender/nightly/prod-x");
        assert_eq!(t.url(), "s3://b/mender/nightly");
        let t = Target::parse("azure://c").unwrap();
        assert_eq!(t.key("prod-x", "manifest.json"), "prod-x/manifest.json");
        assert_eq!(t.url_of("prod-x"), "azure://c/prod-x");
        assert_eq!(t.url(), "azure://c");
    }

    #[test]
    fn s3_settings_come_from_the_aws_variables() {
        let ep = s3_endpoint(None, &env(&[("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "s")])).unwrap();
        assert_eq!((ep.url, ep.region.as_str()), (None, "us-east-1"));
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://generic:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
        ]);
        let ep = s3_endpoint(None, &e).unwrap();
        assert_eq!((ep.url.as_deref(), ep.region.as_str()), (Some("http://s3:2"), "eu-west-1"));
        // The option wins over the environment.
        assert_eq!(s3_endpoint(Some("http://opt:3"), &e).unwrap().url.as_deref(), Some("http://opt:3"));
        let missing = s3_endpoint(None, &env(&[("AWS_ACCESS_KEY_ID", "id")])).unwrap_err();
        assert!(missing.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{missing}");
        // The secret never reaches a debug print.
        assert!(!format!("{:?}", s3_endpoint(None, &e).unwrap()).contains("\"s\""));
    }

    #[test]
    fn azure_settings_come_from_the_az_variables() {
        const KEY: &str = "a2V5a2V5a2V5";
        let conn = env(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=http;AccountName=acc;AccountKey=a2V5a2V5a2V5;BlobEndpoint=http://azurite:10000/acc;",
        )]);
        assert_eq!(azure_account(None, &conn).unwrap().endpoint, "http://azurite:10000/acc");
        assert_eq!(azure_account(Some("http://other:1/acc/"), &conn).unwrap().endpoint, "http://other:1/acc");
        let pair = env(&[("AZURE_STORAGE_ACCOUNT", "acc"), ("AZURE_STORAGE_KEY", KEY)]);
        let a = azure_account(None, &pair).unwrap();
        assert_eq!((a.name.as_str(), a.endpoint.as_str()), ("acc", "https://acc.blob.core.windows.net"));
        assert!(!format!("{a:?}").contains(KEY));
        let none = azure_account(None, &env(&[("AZURE_STORAGE_ACCOUNT", "acc")])).unwrap_err();
        assert!(matches!(none, CopyError::NoCredentials(_)), "{none}");
        let bad = azure_account(None, &env(&[("AZURE_STORAGE_ACCOUNT", "acc"), ("AZURE_STORAGE_KEY", "not base64!")]));
        assert!(matches!(bad, Err(CopyError::Settings(_))));
    }

    #[test]
    fn sas_signatures_are_scrubbed_from_messages() {
        assert_eq!(
            scrub("GET http://h/c/b?sv=1&sig=abc%2Bdef&se=2 failed; sig=x"),
            "GET http://h/c/b?sv=1&sig=REDACTED&se=2 failed; sig=REDACTED"
        );
        assert_eq!(scrub("no signature"), "no signature");
    }

    #[test]
    fn exit_codes_say_whether_a_bundle_is_kept() {
        use crate::exit::Exit;
        let b = Path::new("/s/backups/p-1");
        let missing = CopyError::Missing("bucket x at AWS".into());
        assert_eq!(missing.failure(Some(b), "s3://x", None).exit, Exit::CopyFailed);
        assert!(missing.failure(Some(b), "s3://x", None).unchanged.contains("/s/backups/p-1 is complete and kept"));
        // Checked before a backup: nothing was done.
        assert_eq!(missing.failure(None, "s3://x", None).exit, Exit::Precondition);
        assert_eq!(CopyError::BadUrl("x".into()).failure(None, "x", None).exit, Exit::Usage);
        // Nothing could be sent: a precondition, as before any other change.
        assert_eq!(CopyError::NoCredentials("A".into()).failure(Some(b), "s3://x", None).exit, Exit::Precondition);
        let m = CopyError::Mismatch {
            path: "mongo.archive.gz".into(),
            got: "a".into(),
            got_size: 1,
            want: "b".into(),
            want_size: 2,
        };
        let f = m.failure(Some(b), "s3://x/p", None);
        assert_eq!(f.exit, Exit::CopyFailed);
        assert!(f.what.starts_with("copying the bundle to s3://x/p failed: mongo.archive.gz:"), "{}", f.what);
        assert!(f.next.contains("backup copy /s/backups/p-1 --to s3://x/p"), "{}", f.next);
        // The retry command pastes as is: odd paths quoted, the endpoint kept.
        let odd = Path::new("/s/odd dir/p-1");
        let f = m.failure(Some(odd), "s3://x/odd prefix", Some("http://127.0.0.1:5055"));
        let cmd = f.next.split_once("copy again: ").map(|(_, c)| c).unwrap_or_default();
        assert_eq!(
            shlex::split(cmd).unwrap_or_default(),
            [
                "mender-compose-upgrade",
                "backup",
                "copy",
                "/s/odd dir/p-1",
                "--to",
                "s3://x/odd prefix",
                "--endpoint-url",
                "http://127.0.0.1:5055"
            ],
            "{}",
            f.next
        );
    }
}
