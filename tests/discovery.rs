//! Finding the stack: no daemon, a daemon without a Mender project, and two candidate projects.
//! Each is a clear message, a documented exit code, and no change to anything.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

#[test]
fn no_daemon_is_a_precondition_failure() {
    let host = &format!("unix:///tmp/{}no-such-daemon.sock", prefix());
    for args in [&["status"][..], &["plan", "--to", "3.7.11"][..], &["--json", "status"][..]] {
        let out = tool_env(args, &[("DOCKER_HOST", host)]);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("cannot reach the Docker daemon at {host}")), "{err}");
        assert!(err.contains("next: start the Docker daemon"), "{err}");
    }
}

/// A second, empty Docker daemon on its own socket and in its own network namespace (so that it
/// cannot touch the host's docker0): the only way to prove "no Mender project" while other tests
/// run stacks on the main daemon.
struct EmptyDaemon {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl EmptyDaemon {
    fn start() -> EmptyDaemon {
        let dir = tempfile::Builder::new().prefix("mcud").tempdir_in("/tmp").unwrap();
        let p = |s: &str| dir.path().join(s).to_string_lossy().into_owned();
        let host = format!("unix://{}", p("d.sock"));
        let log = std::fs::File::create(p("dockerd.log")).unwrap();
        let child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "dockerd",
                "--host",
                &host,
                "--data-root",
                &p("data"),
                "--exec-root",
                &p("x"),
                "--pidfile",
                &p("d.pid"),
            ])
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a second dockerd");
        let d = EmptyDaemon { child, host, _dir: dir };
        let start = Instant::now();
        while !Command::new("docker").args(["-H", &d.host, "version"]).output().is_ok_and(|o| o.status.success()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the second dockerd did not start: {}",
                file(&d._dir.path().join("dockerd.log"))
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        d
    }
}

impl Drop for EmptyDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

#[test]
fn daemon_without_a_mender_project_is_a_precondition_failure() {
    prepare();
    let d = EmptyDaemon::start();
    // A compose project that is not Mender must not be mistaken for one.
    let image = format!("{REGISTRY}/mender-standin:latest");
    let save =
        Command::new("sh").arg("-c").arg(format!("docker save {image} | docker -H {} load", d.host)).output().unwrap();
    assert!(save.status.success(), "{}", String::from_utf8_lossy(&save.stderr));
    let create = Command::new("docker")
        .args([
            "-H",
            &d.host,
            "create",
            "--label",
            "com.docker.compose.project=webshop",
            "--label",
            "com.docker.compose.service=web",
            &image,
            "/usr/bin/mender-standin",
            "version",
        ])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
    let before = project_fingerprint(Some(&d.host), "webshop");
    let out = tool_env(&["status"], &[("DOCKER_HOST", &d.host)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "no compose project on this Docker daemon runs Mender images (mendersoftware/*, also under testbed.local/)"
        ),
        "{err}"
    );
    assert!(err.contains("unchanged: everything"), "{err}");
    let named = tool_env(&["-p", "menderproduction", "status"], &[("DOCKER_HOST", &d.host)]);
    assert_eq!(named.status.code(), Some(2));
    assert!(stderr(&named).contains("no compose project named menderproduction"), "{}", stderr(&named));
    assert_eq!(project_fingerprint(Some(&d.host), "webshop"), before);
}

#[tokio::test]
async fn two_candidate_projects_need_p() {
    prepare();
    let mut started = Vec::new();
    for name in ["ambig-a", "ambig-b"] {
        let c = GenericImage::new(format!("{REGISTRY}/mendersoftware/inventory"), "mender-3.4.0".to_string())
            .with_cmd(["version"])
            .with_container_name(format!("{}{name}", prefix()))
            .with_label("com.docker.compose.project", format!("{}{name}", prefix()))
            .with_label("com.docker.compose.service", "mender-inventory")
            .with_label("com.docker.compose.oneoff", "False")
            .start()
            .await
            .expect("throwaway container");
        started.push(c);
    }
    // `version` exits at once; fingerprint only after both have, or the fingerprint races the exit.
    let settled = |p: &str| {
        for _ in 0..100 {
            let f = project_fingerprint(None, p);
            if f.contains(" exited ") {
                return f;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("throwaway container {p} never exited");
    };
    let (a, b) = (format!("{}ambig-a", prefix()), format!("{}ambig-b", prefix()));
    let before = (settled(&a), settled(&b));
    let out = tool(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("compose projects run Mender images") && err.contains(&a) && err.contains(&b), "{err}");
    assert!(err.contains("next: pass -p PROJECT"), "{err}");
    // Naming one resolves it (the throwaway project has no network: reported, not crashed).
    let one = tool(&["-p", &a, "--json", "status"]);
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert_eq!(json(&one)["project"], a.as_str());
    assert_eq!(before, (project_fingerprint(None, &a), project_fingerprint(None, &b)));
}
