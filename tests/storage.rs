//! Backups of artifacts kept outside the stack: an S3 bucket (moto) and an Azure Blob container
//! (Azurite), both real servers run on the host for the test.

mod common;

use common::emulator::AZURITE_KEY;
use common::emulator::Emulator;
use common::*;
use mender_compose_upgrade::engine::azure::Account;
use mender_compose_upgrade::engine::s3::{S3Endpoint, client};

fn s3(url: &str, secret: &str) -> aws_sdk_s3::Client {
    client(&S3Endpoint {
        url: Some(url.into()),
        region: "us-east-1".into(),
        access_key: "mender-deployments".into(),
        secret_key: secret.into(),
    })
}

fn prod_secret(stack: &Stack) -> String {
    let prod = file(&stack.path("production/config/prod.yml"));
    prod.lines().find_map(|l| l.trim().strip_prefix("DEPLOYMENTS_AWS_AUTH_SECRET: ")).unwrap().to_string()
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut k: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn external_s3_unversioned_is_refused_copied_or_recorded() {
    let moto = Emulator::moto();
    let stack = Stack::up_with("s3ext", "3.4.0", &["--s3-url", &moto.url, "--bucket", "artifacts", "--artifacts", "4"]);
    let secret = prod_secret(&stack);
    let s3 = s3(&moto.url, &secret);
    let stored = keys(&s3, "artifacts").await;
    assert_eq!(stored.len(), 6, "2 samples + 4 seeded artifacts in the external bucket: {stored:?}");
    let status = json(&stack.tool(&["--json", "status"]));
    assert_eq!(status["storage"]["kind"], "s3");

    // Versioning off and no destination: refused before any downtime.
    let before = stack.started_at();
    let refused = stack.tool(&["backup"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(err.contains("the artifact bucket artifacts") && err.contains("has versioning off"), "{err}");
    assert!(
        err.contains("--artifacts-to bundle")
            && err.contains("put-bucket-versioning")
            && err.contains("--skip-artifacts"),
        "{err}"
    );
    assert!(err.contains("unchanged: everything: no service was stopped"), "{err}");
    assert_eq!(stack.started_at(), before);

    // Copied into the bundle, and proven.
    let copied = stack.tool(&["--json", "backup", "--artifacts-to", "bundle"]);
    assert!(copied.status.success(), "{}", stderr(&copied));
    let result: serde_json::Value = serde_json::from_str(stdout(&copied).lines().last().unwrap()).unwrap();
    assert_eq!(result["manifest"]["artifacts"]["objects"], 6);
    assert_eq!(result["manifest"]["artifacts"]["location"], "bundle");
    let bundle = result["bundle"].as_str().unwrap().to_string();
    let verify = stack.tool(&["verify", "--restore-test", &bundle]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    // Staging from that bundle gets a store of its own holding the copies: it never reaches
    // (or holds the keys of) the production bucket, which stays as it was.
    let staged = stack.tool(&["staging", "up", "--from", &bundle]);
    assert!(staged.status.success(), "{}\n{}", stdout(&staged), stderr(&staged));
    let name = format!("{}-staging", stack.project);
    let d = json(&tool(&["-p", &name, "--json", "status", "--data"]));
    assert_eq!(d["storage"]["kind"], "volume", "{}", d["storage"]);
    let mut staged_keys: Vec<String> =
        d["data"]["artifacts"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    staged_keys.sort();
    assert_eq!(staged_keys, stored);
    let env = docker_ok(&["inspect", "-f", "{{json .Config.Env}}", &format!("{name}-mender-deployments-1")]);
    assert!(
        !env.contains(&host_address()) && !env.contains(&secret),
        "staging deployments reaches production's bucket: {env}"
    );
    assert_eq!(keys(&s3, "artifacts").await, stored, "the production bucket changed");
    assert!(!stdout(&staged).contains(&secret) && !stderr(&staged).contains(&secret), "secret leaked");
    assert!(stack.tool(&["staging", "down"]).status.success());

    // Server-side copy into a backup bucket.
    let to_bucket = stack.tool(&["backup", "--artifacts-to", "s3://mcutest-backup/nightly"]);
    assert!(to_bucket.status.success(), "{}", stderr(&to_bucket));
    let copies = keys(&s3, "mcutest-backup").await;
    assert_eq!(copies, stored.iter().map(|k| format!("nightly/{k}")).collect::<Vec<_>>());

    // With versioning on, the versions are the backup: recorded, nothing copied.
    s3.put_bucket_versioning()
        .bucket("artifacts")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Objects written after versioning was turned on carry a version id.
    s3.put_object().bucket("artifacts").key("after-versioning").body(b"x".to_vec().into()).send().await.unwrap();
    let recorded = stack.tool(&["--json", "backup"]);
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    let result: serde_json::Value = serde_json::from_str(stdout(&recorded).lines().last().unwrap()).unwrap();
    assert_eq!(result["manifest"]["artifacts"]["location"], "versioning");
    let inventory = file(&std::path::Path::new(result["bundle"].as_str().unwrap()).join("artifacts/inventory.jsonl"));
    assert!(
        inventory.lines().any(|l| l.contains("after-versioning")
            && !l.contains("\"version_id\":\"null\"")
            && l.contains("version_id")),
        "{inventory}"
    );
    for o in [&refused, &copied, &to_bucket, &recorded, &verify] {
        assert!(!stdout(o).contains(&secret) && !stderr(o).contains(&secret), "secret leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_container_is_copied_and_verified() {
    let azurite = Emulator::azurite();
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={};",
        azurite.url
    );
    // Artifacts already in the container, as deployments would have uploaded them.
    let local = Account::new("devstoreaccount1", AZURITE_KEY, &azurite.url).unwrap();
    let c = local.container("mender-artifact-storage").unwrap();
    c.client.create(None).await.unwrap();
    for i in 0..3 {
        let body: Vec<u8> = (0..5000u32).map(|b| (b * 7 + i) as u8).collect();
        c.client
            .blob_client(&format!("artifact-{i}"))
            .upload(azure_core::http::RequestContent::from(body), None)
            .await
            .unwrap();
    }
    // prod.yml points deployments at the Azure container (the stand-in itself does not use it).
    let stack =
        Stack::up_env("azure", "3.4.0", &["--artifacts", "0"], &[("MENDER_DEMO_AZURE_CONNECTION_STRING", &conn)]);
    let status = json(&stack.tool(&["--json", "status"]));
    assert_eq!(status["storage"]["kind"], "azure");
    assert_eq!(status["storage"]["account"], "devstoreaccount1");

    let refused = stack.tool(&["backup"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("has versioning off"), "{}", stderr(&refused));

    let out = stack.tool(&["--json", "backup", "--artifacts-to", "bundle"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let result: serde_json::Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(result["manifest"]["artifacts"]["kind"], "azure");
    assert_eq!(result["manifest"]["artifacts"]["objects"], 3);
    assert_eq!(result["manifest"]["artifacts"]["bytes"], 15000);
    let bundle = result["bundle"].as_str().unwrap().to_string();
    let verify = stack.tool(&["verify", &bundle]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    for o in [&refused, &out, &verify] {
        assert!(!stdout(o).contains(AZURITE_KEY) && !stderr(o).contains(AZURITE_KEY), "account key leaked");
    }
}
