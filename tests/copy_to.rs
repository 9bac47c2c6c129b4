//! `backup --copy-to` and `backup copy`: a bundle copied off the host into an S3 bucket (moto) and
//! an Azure Blob container (Azurite), downloaded back and compared file by file with the manifest;
//! a missing bucket and refused credentials fail clearly, keep the local bundle, and print no secret.
//! One test-bed stack for the whole file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::emulator::{AZURITE_KEY, Emulator};
use common::*;
use mender_compose_upgrade::engine::azure::Account;
use mender_compose_upgrade::engine::s3::{S3Bucket, S3Endpoint};
use mender_compose_upgrade::engine::store::ObjectStore;

const ACCESS: &str = "mcu-copy-access";
const SECRET: &str = "mcu-copy-secret-0123456789";

/// path → (size, sha256) as the bundle's manifest records them, plus the manifest and its checksum
/// file as they are on disk.
fn manifest_files(bundle: &Path) -> BTreeMap<String, (u64, String)> {
    let m: serde_json::Value = serde_json::from_str(&file(&bundle.join("manifest.json"))).unwrap();
    let mut out: BTreeMap<String, (u64, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                (f["size"].as_u64().unwrap(), f["sha256"].as_str().unwrap().into()),
            )
        })
        .collect();
    for name in ["manifest.json", "manifest.json.sha256"] {
        let bytes = std::fs::read(bundle.join(name)).unwrap();
        out.insert(name.into(), (bytes.len() as u64, sha256_hex(&bytes)));
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every object under `prefix/` of `store`, downloaded (streamed through sha256): path below the
/// prefix → (size, sha256).
async fn downloaded(store: &dyn ObjectStore, prefix: &str) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for o in store.list(false).await.unwrap() {
        let Some(rel) = o.key.strip_prefix(&format!("{prefix}/")) else { continue };
        let (sha, n) = store.get(&o.key, &mut tokio::io::sink()).await.unwrap();
        out.insert(rel.to_string(), (n, sha));
    }
    out
}

fn assert_clean(outs: &[&std::process::Output], secrets: &[&str]) {
    for o in outs {
        for s in secrets {
            assert!(!stdout(o).contains(s) && !stderr(o).contains(s), "a secret leaked:\n{}\n{}", stdout(o), stderr(o));
        }
        assert!(!stderr(o).contains("sig="), "a SAS signature leaked: {}", stderr(o));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bundles_are_copied_off_the_host_and_proven_there() {
    let moto = Emulator::moto();
    let azurite = Emulator::azurite();
    let stack = Stack::up_with("copyto", "3.4.0", &["--artifacts", "2"]);
    let s3_env = [
        ("AWS_ACCESS_KEY_ID", ACCESS),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
    ];
    let ep = S3Endpoint {
        url: Some(moto.url.clone()),
        region: "us-east-1".into(),
        access_key: ACCESS.into(),
        secret_key: SECRET.into(),
    };
    let bucket = S3Bucket::new(&ep, "offsite");
    bucket.create().await.unwrap();

    // A destination that does not exist is refused before any downtime: no bundle, nothing stopped.
    let before = stack.started_at();
    let refused = stack.tool_env(&["backup", "--copy-to", "s3://no-such-bucket/x"], &s3_env);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("bucket no-such-bucket") && stderr(&refused).contains("does not exist"));
    assert!(stderr(&refused).contains("unchanged: nothing: no service was stopped"), "{}", stderr(&refused));
    assert_eq!(stack.started_at(), before);
    assert!(!stack.backups_dir().exists() || std::fs::read_dir(stack.backups_dir()).unwrap().next().is_none());
    // A URL that is no destination is a usage error.
    let bad = stack.tool_env(&["backup", "--copy-to", "/mnt/backups"], &s3_env);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));

    // backup --copy-to: the bundle, then its copy read back; --json says where and how much.
    let out = stack.tool_env(&["--json", "backup", "--copy-to", "s3://offsite/mender/nightly/"], &s3_env);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let result = result_line(&out);
    let bundle = std::path::PathBuf::from(result["bundle"].as_str().unwrap());
    let name = bundle.file_name().unwrap().to_string_lossy().into_owned();
    let want = manifest_files(&bundle);
    assert!(want.contains_key("mongo.archive.gz") && want.keys().any(|k| k.starts_with("artifacts/objects/")));
    let copy = &result["copy"];
    assert_eq!(copy["to"], format!("s3://offsite/mender/nightly/{name}"), "{copy}");
    assert_eq!(copy["endpoint"], moto.url.as_str());
    assert_eq!(copy["verified_files"], want.len() as u64);
    assert_eq!(copy["verified_bytes"], want.values().map(|(n, _)| n).sum::<u64>());
    assert!(stdout(&out).contains("\"step\":\"copy-to\""), "{}", stdout(&out));
    // Downloaded back with the tool's own store code: every file byte-identical to the manifest.
    assert_eq!(downloaded(&bucket, &format!("mender/nightly/{name}")).await, want);

    // backup copy (by a start of its name) to Azure, credentials as `az` reads them.
    let account = Account::new("devstoreaccount1", AZURITE_KEY, &azurite.url).unwrap();
    let container = account.container("offsite").unwrap();
    container.create().await.unwrap();
    let az_env = [("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"), ("AZURE_STORAGE_KEY", AZURITE_KEY)];
    let prefix = &name[..name.len() - 4];
    let to_azure = stack.tool_env(
        &["backup", "copy", prefix, "--to", "azure://offsite/mender", "--endpoint-url", &azurite.url],
        &az_env,
    );
    assert!(to_azure.status.success(), "{}\n{}", stdout(&to_azure), stderr(&to_azure));
    assert!(stdout(&to_azure).contains(&format!("copied to azure://offsite/mender/{name}")), "{}", stdout(&to_azure));
    assert_eq!(downloaded(&container, &format!("mender/{name}")).await, want);

    // Refused credentials: a clear error naming the container, exit 6, no key or signature printed.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let refused_key = stack.tool_env(
        &["backup", "copy", &name, "--to", "azure://offsite/other", "--endpoint-url", &azurite.url],
        &[("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"), ("AZURE_STORAGE_KEY", wrong_key)],
    );
    assert_eq!(refused_key.status.code(), Some(6), "{}", stderr(&refused_key));
    let err = stderr(&refused_key);
    assert!(err.contains("Azure container offsite") && err.contains("cannot be used"), "{err}");
    assert!(err.contains(&format!("the local bundle {} is complete and kept", bundle.display())), "{err}");

    // A bucket that does not exist, for an existing bundle: exit 6, the bundle kept.
    let missing = stack.tool_env(&["backup", "copy", &name, "--to", "s3://no-such-bucket"], &s3_env);
    assert_eq!(missing.status.code(), Some(6), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("the bucket no-such-bucket at"), "{}", stderr(&missing));
    // No credentials at all: exit 3, nothing sent.
    let none = stack.tool(&["backup", "copy", &name, "--to", "s3://offsite"]);
    assert_eq!(none.status.code(), Some(3), "{}", stderr(&none));
    assert!(stderr(&none).contains("AWS_ACCESS_KEY_ID"), "{}", stderr(&none));

    // The local bundle is intact after all of it.
    assert_eq!(manifest_files(&bundle), want);
    let verify = stack.tool(&["verify", bundle.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    assert_clean(&[&refused, &bad, &out, &to_azure, &refused_key, &missing, &none], &[SECRET, AZURITE_KEY, wrong_key]);
}

/// No daemon: a bundle written with the tool's own manifest writer, copied by `backup copy` to moto
/// on the loopback. Every file comes back equal; a file whose content no longer matches the
/// manifest is named, exit 6, and the bundle is left as it was.
#[test]
fn a_copy_that_does_not_match_the_manifest_names_the_file() {
    use mender_compose_upgrade::backup::manifest::{ArtifactsInfo, FORMAT, FileEntry, Manifest, MongoInfo};
    let moto = Emulator::moto_at("127.0.0.1");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let name = "p-3.7.11-20260101T000000Z";
    let dir = state.join("backups").join(name);
    std::fs::create_dir_all(dir.join("compose")).unwrap();
    let archive: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("mongo.archive.gz"), &archive).unwrap();
    std::fs::write(dir.join("compose/prod.yml"), "services: {}\n").unwrap();
    let entry =
        |path: &str, bytes: &[u8]| FileEntry { path: path.into(), size: bytes.len() as u64, sha256: sha256_hex(bytes) };
    Manifest {
        format: FORMAT,
        tool_version: "test".into(),
        created: "2026-01-01T00:00:00Z".into(),
        project: "p".into(),
        mender_version: Some("3.7.11".parse().unwrap()),
        services: vec![],
        mongo: MongoInfo::default(),
        databases: vec![],
        archive: Default::default(),
        files: vec![entry("compose/prod.yml", b"services: {}\n"), entry("mongo.archive.gz", &archive)],
        artifacts: ArtifactsInfo::default(),
        verifications: vec![],
        rehearsals: vec![],
        stack: None,
        writers_stopped_secs: None,
        encryption: None,
        keys: vec![],
    }
    .save(&dir)
    .unwrap();
    let ep = S3Endpoint {
        url: Some(moto.url.clone()),
        region: "us-east-1".into(),
        access_key: ACCESS.into(),
        secret_key: SECRET.into(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = S3Bucket::new(&ep, "offsite");
    rt.block_on(bucket.create()).unwrap();
    let env =
        [("AWS_ACCESS_KEY_ID", ACCESS), ("AWS_SECRET_ACCESS_KEY", SECRET), ("AWS_ENDPOINT_URL", moto.url.as_str())];
    let st = state.to_str().unwrap();

    let ok = tool_env(&["--state-dir", st, "--json", "backup", "copy", "p-3.7", "--to", "s3://offsite/h1"], &env);
    assert!(ok.status.success(), "{}\n{}", stdout(&ok), stderr(&ok));
    let report = result_line(&ok);
    assert_eq!(report["to"], format!("s3://offsite/h1/{name}"));
    assert_eq!(report["verified_files"], 4);
    let want = manifest_files(&dir);
    assert_eq!(rt.block_on(downloaded(&bucket, &format!("h1/{name}"))), want);

    // A bucket that does not exist: named, exit 6, never created.
    let missing = tool_env(&["--state-dir", st, "backup", "copy", name, "--to", "s3://no-such-bucket"], &env);
    assert_eq!(missing.status.code(), Some(6), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("the bucket no-such-bucket at") && stderr(&missing).contains("does not exist"));
    assert!(!rt.block_on(S3Bucket::new(&ep, "no-such-bucket").exists()).unwrap());

    // The archive changed on disk after the manifest was written: named, exit 6, nothing changed.
    let mut damaged = archive.clone();
    damaged[1000] ^= 1;
    std::fs::write(dir.join("mongo.archive.gz"), &damaged).unwrap();
    let bad = tool_env(&["--state-dir", st, "backup", "copy", name, "--to", "s3://offsite/h2"], &env);
    assert_eq!(bad.status.code(), Some(6), "{}", stderr(&bad));
    let err = stderr(&bad);
    assert!(err.contains("mongo.archive.gz: the copy read back has sha256"), "{err}");
    assert!(err.contains("is complete and kept") && err.contains("run `verify` on the bundle"), "{err}");
    // The manifest was not copied: the half copy is never taken for a bundle.
    let keys: Vec<String> = rt.block_on(bucket.list(false)).unwrap().into_iter().map(|o| o.key).collect();
    assert!(!keys.iter().any(|k| k.starts_with("h2/") && k.ends_with("manifest.json")), "{keys:?}");
    assert_eq!(std::fs::read(dir.join("mongo.archive.gz")).unwrap(), damaged);
    assert_clean(&[&ok, &missing, &bad], &[SECRET]);
}
