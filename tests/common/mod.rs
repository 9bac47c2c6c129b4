//! Shared test fixtures: the tool's binary, test-bed stacks brought up with `demo up` on the real
//! daemon, and a sweep of what earlier (killed) test runs left behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

pub const REGISTRY: &str = "testbed.local";
/// Every resource a test creates is named with this prefix, so a later run can sweep it.
pub const PREFIX: &str = "mcutest-";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mender-compose-upgrade")
}

/// Runs the tool with the test-bed registry prefix.
pub fn tool(args: &[&str]) -> Output {
    tool_env(args, &[])
}

pub fn tool_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--image-registry").arg(REGISTRY).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mender-compose-upgrade")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run the docker CLI")
}

/// Removes containers, volumes and networks of earlier test runs, and checks the test bed is set up.
pub fn prepare() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert!(
            docker(&["image", "inspect", &format!("{REGISTRY}/mender-standin:latest")]).status.success(),
            "the test-bed images are missing: run scripts/testbed first (scripts/test does)"
        );
        let ids = docker(&["ps", "-aq", "--filter", &format!("name={PREFIX}")]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            docker(&["rm", "-f", "-v", id]);
        }
        let vols = docker(&["volume", "ls", "-q", "--filter", &format!("name={PREFIX}")]);
        for v in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
            docker(&["volume", "rm", "-f", v]);
        }
        let nets = docker(&["network", "ls", "-q", "--filter", &format!("name={PREFIX}")]);
        for n in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            docker(&["network", "rm", n]);
        }
    });
}

/// A test-bed stack of one release, brought up with `demo up` and torn down (volumes included)
/// when dropped.
pub struct Stack {
    pub project: String,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Stack {
    pub fn up(name: &str, release: &str) -> Stack {
        Stack::up_with(name, release, &[])
    }

    pub fn up_with(name: &str, release: &str, extra: &[&str]) -> Stack {
        prepare();
        let project = format!("{PREFIX}{name}");
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("mender-server");
        let vol_prefix = format!("{project}-");
        let dir_s = dir.to_string_lossy().into_owned();
        let mut args = vec![
            "-p",
            &project,
            "demo",
            "up",
            "--release",
            release,
            "--dir",
            &dir_s,
            "--volume-prefix",
            &vol_prefix,
            "--https-port",
            "none",
            "--devices",
            "20",
            "--artifacts",
            "3",
            "--artifact-size",
            "4096",
        ];
        args.extend_from_slice(extra);
        let out = tool(&args);
        let stack = Stack { project, dir, _tmp: tmp };
        assert!(out.status.success(), "demo up {release} failed:\n{}\n{}", stdout(&out), stderr(&out));
        stack
    }

    pub fn status(&self, extra: &[&str]) -> Output {
        let mut args = vec!["-p", self.project.as_str(), "status"];
        args.extend_from_slice(extra);
        tool(&args)
    }

    /// `docker compose` on this stack, as the operator's production/run would.
    pub fn compose(&self, args: &[&str]) -> Output {
        let run = self.dir.join("production/run");
        Command::new(&run).args(args).output().expect("run production/run")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        let _ = tool(&["-p", &self.project, "demo", "down", "--dir", &dir, "--volumes"]);
    }
}

/// Ids, states and restart counts of a project's containers: equal before and after a command
/// means the command changed nothing in that project.
pub fn project_fingerprint(host: Option<&str>, project: &str) -> String {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .args(["ps", "-a", "--no-trunc", "--filter", &format!("label=com.docker.compose.project={project}")])
        .args(["--format", "{{.ID}} {{.State}} {{.Image}} {{.Label \"com.docker.compose.config-hash\"}}"])
        .output()
        .expect("docker ps");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    lines.join("\n")
}

pub fn file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
