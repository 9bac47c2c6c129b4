//! The test bed's mongod stand-ins (`testbed.local/mongo:<major>`, FerretDB with the
//! featureCompatibilityVersion kept as mongod keeps it), started with plain `docker run` on a
//! throwaway network and volumes, and driven through the tool's helper sidecar as an upgrade
//! drives them: the FCV a data volume carries from one major to the next, what
//! setFeatureCompatibilityVersion accepts and refuses, the refusal to start on too old data with
//! mongod's words and exit code, and mongodump/mongorestore still round-tripping.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::doc;
use common::mongo::{helper_binary, run_standin};
use common::*;
use mender_compose_upgrade::engine::docker::connect;
use mender_compose_upgrade::engine::helper::{FcvJob, MongoQuery, MongoReport, Request};
use mender_compose_upgrade::engine::sidecar::{read_mongo, run_helper, wait_mongo};
use mender_compose_upgrade::util::mongo_uri;

/// A throwaway network, its volumes and containers, all named with the test prefix and removed
/// when the test ends, pass or fail.
struct Bed {
    name: String,
    network: String,
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Bed {
    fn new(name: &str) -> Bed {
        prepare();
        helper_binary();
        let name = format!("{}mon-{name}", prefix());
        let network = format!("{name}-net");
        docker_ok(&["network", "create", &network]);
        Bed { name, network, containers: vec![], volumes: vec![] }
    }

    fn volume(&mut self, v: &str) -> String {
        let v = format!("{}-{v}", self.name);
        docker_ok(&["volume", "create", &v]);
        self.volumes.push(v.clone());
        v
    }

    /// `docker run -d` of the stand-in of `major` on `volume`, reachable on the network by `host`.
    fn run(&mut self, host: &str, major: &str, volume: &str) -> String {
        let c = format!("{}-{host}", self.name);
        run_standin(&c, &self.network, host, volume, major);
        self.containers.push(c.clone());
        c
    }

    /// Stops and removes a container (its volume stays), as an upgrade swaps the image.
    fn remove(&mut self, c: &str) {
        docker_ok(&["stop", "-t", "30", c]);
        docker_ok(&["rm", "-v", c]);
        self.containers.retain(|x| x != c);
    }

    async fn wait(&self, host: &str) {
        let d = connect().await.unwrap();
        wait_mongo(&d, &self.network, host, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{host} did not answer: {e}"));
    }

    async fn report(&self, host: &str, digests: bool) -> MongoReport {
        let d = connect().await.unwrap();
        let q = MongoQuery { uri: mongo_uri(host), dbs: vec![], counts: digests, all_dbs: true, digests };
        read_mongo(&d, &self.network, q).await.unwrap_or_else(|e| panic!("reading {host}: {e}"))
    }

    async fn fcv(&self, host: &str) -> String {
        self.report(host, false).await.fcv.unwrap_or_else(|| panic!("{host} reports no featureCompatibilityVersion"))
    }

    /// The tool's FCV step, run by its helper sidecar on the network.
    async fn set_fcv(&self, host: &str, require: &str, set: &str, confirm: bool) -> Result<String, String> {
        let d = connect().await.unwrap();
        let job = FcvJob { uri: mongo_uri(host), require: require.into(), set: set.into(), confirm };
        let r = run_helper(&d, &self.network, &Request { fcv: Some(job), ..Default::default() }).await.unwrap();
        r.fcv.expect("the helper answers the FCV step")
    }

    /// A container's address on the network, for the driver in this process.
    fn address(&self, c: &str) -> String {
        let tpl = format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.network);
        docker_ok(&["inspect", "-f", &tpl, c]).trim().to_string()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        let _ = Command::new("docker").args(["network", "rm", &self.network]).output();
        for v in &self.volumes {
            let _ = Command::new("docker").args(["volume", "rm", "-f", v]).output();
        }
    }
}

/// The road an upgrade takes: one data volume under 5.0, 6.0 and 7.0 in turn.
#[tokio::test(flavor = "multi_thread")]
async fn fcv_follows_the_data_volume_from_major_to_major() {
    let mut bed = Bed::new("road");
    let vol = bed.volume("db");

    let c = bed.run("db", "5.0", &vol);
    bed.wait("db").await;
    let r = bed.report("db", false).await;
    assert!(r.version.as_deref().is_some_and(|v| v.starts_with("5.0.")), "{r:?}");
    assert_eq!(r.fcv.as_deref(), Some("5.0"), "a fresh data directory starts at the binary's major");
    bed.remove(&c);

    // 6.0 starts on 5.0 data and keeps its FCV until told otherwise.
    let c = bed.run("db", "6.0", &vol);
    bed.wait("db").await;
    let r = bed.report("db", false).await;
    assert_eq!(r.version.as_deref(), Some("6.0.28"));
    assert_eq!(r.fcv.as_deref(), Some("5.0"), "the FCV is the data's, not the binary's");
    // `confirm` is new in 7.0: a 6.0 rejects it as an unknown field, as mongod does.
    let e = bed.set_fcv("db", "5.0", "6.0", true).await.unwrap_err();
    assert!(e.contains("BSON field 'setFeatureCompatibilityVersion.confirm' is an unknown field."), "{e}");
    assert_eq!(bed.fcv("db").await, "5.0");
    let done = bed.set_fcv("db", "5.0", "6.0", false).await.expect("6.0 raises its FCV to 6.0");
    assert_eq!(done, "featureCompatibilityVersion 5.0 → 6.0");
    assert_eq!(bed.fcv("db").await, "6.0");
    // Two majors at once: the 6.0 binary does not know 8.0.
    let e = bed.set_fcv("db", "6.0", "8.0", false).await.unwrap_err();
    assert!(e.contains("4926900") && e.contains("expected '5.0' or '5.3' or '6.0"), "{e}");
    assert_eq!(bed.fcv("db").await, "6.0", "a refused change leaves the FCV as it was");
    // Run again (a resumed step), the step finds its work done.
    assert_eq!(bed.set_fcv("db", "5.0", "6.0", false).await.unwrap(), "featureCompatibilityVersion already 6.0");
    bed.remove(&c);

    // 7.0 refuses the change without `confirm: true`, with mongod's words, and makes it with it.
    let c = bed.run("db", "7.0", &vol);
    bed.wait("db").await;
    assert_eq!(bed.fcv("db").await, "6.0");
    let e = bed.set_fcv("db", "6.0", "7.0", false).await.unwrap_err();
    assert!(
        e.contains(
            "Once you have upgraded to 7.0, you will not be able to downgrade FCV and binary version without \
             support assistance. Please re-run this command with 'confirm: true' to acknowledge this and continue \
             with the FCV upgrade."
        ) && e.contains("7369100"),
        "{e}"
    );
    assert_eq!(bed.fcv("db").await, "6.0");
    assert_eq!(bed.set_fcv("db", "6.0", "7.0", true).await.unwrap(), "featureCompatibilityVersion 6.0 → 7.0");
    bed.remove(&c);

    // The FCV is on the volume: the next binary finds 7.0 there.
    bed.run("db", "8.0", &vol);
    bed.wait("db").await;
    assert_eq!(bed.fcv("db").await, "7.0");
}

/// A binary two majors ahead of the data's FCV does not start, and says why as mongod does.
#[tokio::test(flavor = "multi_thread")]
async fn too_old_fcv_stops_the_server_with_mongods_error() {
    let mut bed = Bed::new("old");
    let vol = bed.volume("db");
    let c = bed.run("db", "4.4", &vol);
    bed.wait("db").await;
    assert_eq!(bed.fcv("db").await, "4.4");
    bed.remove(&c);

    let c = bed.run("db", "6.0", &vol);
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let s = docker_ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", &c]);
        if s.starts_with("exited") || Instant::now() > deadline {
            break s.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(state, "exited 62", "mongod exits with code 62 (needDowngrade) on an FCV it cannot run");
    let logs = Command::new("docker").args(["logs", &c]).output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    let line = logs
        .lines()
        .find(|l| l.contains("\"Wrong mongod version\""))
        .unwrap_or_else(|| panic!("no fatal line in the log:\n{logs}"));
    let entry: serde_json::Value = serde_json::from_str(line).expect("mongod's log line is JSON");
    assert_eq!(
        (entry["s"].as_str(), entry["c"].as_str(), entry["id"].as_i64()),
        (Some("F"), Some("CONTROL"), Some(20573))
    );
    // Word for word what mongod 6.0 logs on data of FCV 4.4.
    assert_eq!(
        entry["attr"]["error"],
        "UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document (ERROR: Location4926900: Invalid \
         featureCompatibilityVersion document in admin.system.version: { _id: \"featureCompatibilityVersion\", \
         version: \"4.4\" }. See https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility. \
         :: caused by :: Invalid feature compatibility version value, expected '5.0' or '5.3' or '6.0. See \
         https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility.). If the current \
         featureCompatibilityVersion is below 5.0, see the documentation on upgrading at \
         https://docs.mongodb.com/master/release-notes/5.0/#upgrade-procedures."
    );
    docker_ok(&["rm", "-v", &c]);
    bed.containers.retain(|x| x != &c);

    // The refusal wrote nothing: the next major up from 4.4 starts on the same data at FCV 4.4.
    bed.run("db", "5.0", &vol);
    bed.wait("db").await;
    assert_eq!(bed.fcv("db").await, "4.4");
}

/// A data volume of the stand-in from before it kept an FCV (no admin database at all) still
/// starts, is taken to be at the binary's major, and keeps its documents.
#[tokio::test(flavor = "multi_thread")]
async fn volume_without_an_fcv_document_starts_at_the_binary_major() {
    let mut bed = Bed::new("legacy");
    let vol = bed.volume("db");
    let c = bed.run("db", "4.4", &vol);
    bed.wait("db").await;
    let client = mongodb::Client::with_uri_str(format!("mongodb://{}:27017/?directConnection=true", bed.address(&c)))
        .await
        .unwrap();
    let docs: Vec<_> = (0..40).map(|i| doc! {"_id": i, "name": format!("user{i}")}).collect();
    client.database("useradm").collection("users").insert_many(docs).await.unwrap();
    bed.remove(&c);
    // What the old stand-in left: the databases' SQLite files and no admin database.
    let files = docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data/db"),
        &format!("{REGISTRY}/debian:bookworm"),
        "sh",
        "-c",
        "rm /data/db/admin.sqlite* && ls /data/db",
    ]);
    assert!(files.contains("useradm.sqlite") && !files.contains("admin.sqlite"), "{files}");

    bed.run("db", "4.4", &vol);
    bed.wait("db").await;
    let r = bed.report("db", true).await;
    assert_eq!(r.fcv.as_deref(), Some("4.4"));
    let users = r.databases.iter().find(|d| d.name == "useradm").and_then(|d| d.collections.first());
    assert_eq!(users.map(|c| c.count), Some(40), "{r:?}");
}

/// mongodump of an 8.0 stand-in restored into another gives the same documents; the source's FCV
/// document travels in the archive but mongorestore leaves the target's own, as with mongod.
#[tokio::test(flavor = "multi_thread")]
async fn mongodump_and_mongorestore_round_trip() {
    let mut bed = Bed::new("dump");
    let (a, b) = (bed.volume("a"), bed.volume("b"));
    let src = bed.run("src", "8.0", &a);
    bed.wait("src").await;
    let client = mongodb::Client::with_uri_str(format!("mongodb://{}:27017/?directConnection=true", bed.address(&src)))
        .await
        .unwrap();
    for (db, coll, n) in [("inventory", "devices", 250), ("deployment_service", "images", 12)] {
        let docs: Vec<_> = (0..n)
            .map(
                |i| doc! {"_id": format!("{coll}-{i}"), "n": i, "attrs": {"name": format!("x{i}"), "tags": ["a", "b"]}},
            )
            .collect();
        client.database(db).collection(coll).insert_many(docs).await.unwrap();
    }
    // The source at the previous FCV (a downgrade, with confirm from 7.0 on, as mongod allows).
    assert_eq!(bed.set_fcv("src", "8.0", "7.0", true).await.unwrap(), "featureCompatibilityVersion 8.0 → 7.0");

    let image = format!("{REGISTRY}/mongo:8.0");
    let dump = Command::new("docker")
        .args(["run", "--rm", "--network", &bed.network, &image, "mongodump", "--uri=mongodb://src:27017", "--archive"])
        .output()
        .unwrap();
    assert!(dump.status.success(), "mongodump: {}", String::from_utf8_lossy(&dump.stderr));
    let dumped = String::from_utf8_lossy(&dump.stderr);
    assert!(dumped.contains("done dumping admin.system.version (1 document)"), "{dumped}");

    bed.run("dst", "8.0", &b);
    bed.wait("dst").await;
    let mut restore = Command::new("docker")
        .args(["run", "--rm", "-i", "--network", &bed.network, &image, "mongorestore", "--uri=mongodb://dst:27017"])
        .args(["--archive", "--drop", "--noIndexRestore", "--stopOnError"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    restore.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    let restored = restore.wait_with_output().unwrap();
    assert!(restored.status.success(), "mongorestore: {}", String::from_utf8_lossy(&restored.stderr));

    let (before, after) = (bed.report("src", true).await, bed.report("dst", true).await);
    assert_eq!(before.databases.len(), 2, "{before:?}");
    assert_eq!(before.databases, after.databases, "the restored databases are the dumped ones, digest for digest");
    assert_eq!((before.fcv.as_deref(), after.fcv.as_deref()), (Some("7.0"), Some("8.0")));
}
