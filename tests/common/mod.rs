//! Shared test fixtures: the tool's binary, test-bed stacks brought up with `demo up` on the real
//! daemon, and a sweep of what earlier (killed) test runs left behind.
#![allow(dead_code)]

pub mod catalog;
pub mod emulator;
pub mod host;
pub mod mongo;
pub mod receiver;
pub mod staging;
#[allow(unused_imports)]
pub use catalog::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Once, OnceLock};

pub const REGISTRY: &str = "testbed.local";
/// Every resource a test creates is named with this prefix, so a later run can sweep it:
/// `MCU_TEST_PREFIX`, or `mcutest-`. Test runs of different checkouts on one daemon use different
/// prefixes, so that one run's sweep never removes another's stacks.
pub fn prefix() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        std::env::var("MCU_TEST_PREFIX").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "mcutest-".into())
    })
}

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
    // Only the tests that give a smoke password have one (the outer shell's is not theirs).
    cmd.env_remove("MENDER_SMOKE_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mender-compose-upgrade");
    if args.contains(&"--json") {
        json_rule(args, &out);
    }
    out
}

/// The verbs whose `--json` is NDJSON (docs/events.md): `step` events, then the result as the
/// last line. Every other verb prints one JSON document.
const LONG_VERBS: [&str; 8] = ["backup", "verify", "staging", "rehearse", "upgrade", "resume", "rollback", "restore"];

/// The one framing rule of `--json` (docs/events.md), checked on every `--json` run of every test:
/// a long command prints one compact JSON object per line, `step` events, and — when it succeeded —
/// its result last (`"event": "result"`); a short one (`status`, `plan`, `history`, `recover`,
/// `backup list|prune`, …) prints exactly one JSON document. A failure prints its error as one
/// document (`{"error": …}`) after whatever events came before it.
pub fn json_rule(args: &[&str], out: &Output) {
    let text = stdout(out);
    let verbs: Vec<&str> = args.iter().copied().filter(|a| !a.starts_with('-')).collect();
    let long = verbs.iter().any(|v| LONG_VERBS.contains(v)) && !verbs.iter().any(|v| matches!(*v, "list" | "prune"));
    if !long || text.trim().is_empty() {
        if !text.trim().is_empty() {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{args:?}: --json is not one JSON document ({e}):\n{text}"));
        }
        return;
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{args:?}: --json line is not one JSON object ({e}): {l}\n{text}"))
        })
        .collect();
    for l in &lines[..lines.len() - 1] {
        assert_eq!(l["event"], "step", "{args:?}: only step events come before the last line:\n{text}");
    }
    let last = &lines[lines.len() - 1];
    if out.status.success() {
        assert_eq!(last["event"], "result", "{args:?}: the last line of a long command is its result:\n{text}");
    } else {
        assert!(
            last["event"] == "step" || last.get("error").is_some(),
            "{args:?}: a failure ends with its error or a step:\n{text}"
        );
    }
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

pub fn docker(args: &[&str]) -> Output {
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
        let ids = docker(&["ps", "-aq", "--filter", &format!("name={}", prefix())]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            docker(&["rm", "-f", "-v", id]);
        }
        let vols = docker(&["volume", "ls", "-q", "--filter", &format!("name={}", prefix())]);
        for v in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
            docker(&["volume", "rm", "-f", v]);
        }
        let nets = docker(&["network", "ls", "-q", "--filter", &format!("name={}", prefix())]);
        for n in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            docker(&["network", "rm", n]);
        }
    });
}

/// The network whose gateway address host-side servers (the S3 and Azure emulators) listen on,
/// so that containers on any network reach them. Created by the tests with an explicit subnet and
/// gateway: a daemon's default bridge may report no gateway at all (Engine 20.10 prints
/// `[{"Subnet":"172.17.0.0/16"}]`), so nothing here reads it. Named with the test prefix and
/// swept with the other test resources.
pub fn host_link() -> String {
    format!("{}hostlink", prefix())
}
/// Subnets tried in turn for [`host_link`] (one may overlap a network the host already has).
const LINK_SUBNETS: [(&str, &str); 4] = [
    ("10.231.7.0/24", "10.231.7.1"),
    ("10.232.7.0/24", "10.232.7.1"),
    ("172.29.231.0/24", "172.29.231.1"),
    ("192.168.231.0/24", "192.168.231.1"),
];

/// The gateway of [`host_link`]: an address of this host that every container can reach. Panics
/// with what it looked for when it cannot be had, never returns an empty string.
pub fn host_address() -> String {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        // The sweep of earlier runs' resources happens first, not after the network exists.
        prepare();
        let mut tried = Vec::new();
        let gateway = match link_gateway() {
            Some(g) => g,
            None => LINK_SUBNETS
                .iter()
                .find_map(|(subnet, gateway)| {
                    let out = docker(&["network", "create", "--subnet", subnet, "--gateway", gateway, &host_link()]);
                    if !out.status.success() {
                        tried.push(format!("{subnet}: {}", String::from_utf8_lossy(&out.stderr).trim()));
                    }
                    // Another test process may have created it at the same moment: read it back.
                    link_gateway()
                })
                .unwrap_or_else(|| {
                    panic!(
                        "no host address for the emulators: network {} could not be created with any of \
                         the subnets tried, or reports no IPAM gateway:\n  {}",
                        host_link(),
                        tried.join("\n  ")
                    )
                }),
        };
        let addr: std::net::Ipv4Addr = gateway.parse().unwrap_or_else(|_| {
            panic!("network {} reports the gateway {gateway:?}, which is not an IPv4 address", host_link())
        });
        // The daemon puts the gateway on the bridge interface; prove the host really has it.
        std::net::TcpListener::bind((addr, 0)).unwrap_or_else(|e| {
            panic!("network {} has the gateway {addr}, but this host cannot listen on it: {e}", host_link())
        });
        addr.to_string()
    })
    .clone()
}

/// The IPAM gateway of [`host_link`] when the network exists and reports one.
fn link_gateway() -> Option<String> {
    let out = docker(&["network", "inspect", &host_link(), "-f", "{{json .IPAM.Config}}"]);
    if !out.status.success() {
        return None;
    }
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    config.as_array()?.iter().find_map(|c| c["Gateway"].as_str().filter(|g| !g.is_empty()).map(str::to_string))
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
        Stack::up_env(name, release, extra, &[])
    }

    pub fn up_env(name: &str, release: &str, extra: &[&str], env: &[(&str, &str)]) -> Stack {
        prepare();
        let project = format!("{}{name}", prefix());
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
        ];
        // Small defaults, unless the test asks for more; the store checked every 2 s as an
        // operator's prod.yml may say (upstream's 60 s makes each hop's `up` wait a minute).
        // The open-files limit the 4.x base files give mongo and the gateway (upstream's 64000
        // and 65536) is lowered to what this sandbox lets a container have.
        let nofile = nofile_limit().to_string();
        for (flag, value) in [
            ("--devices", "20"),
            ("--artifacts", "3"),
            ("--artifact-size", "4096"),
            ("--store-healthcheck-interval", "2s"),
            ("--nofile-limit", nofile.as_str()),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let out = tool_env(&args, env);
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

    /// `compose down -v`, which must remove every container of the stack. Engine 20.10 under load
    /// can keep a removed container's endpoint, or only its endpoint count, on the project network
    /// and refuse the network's removal ("has active endpoints", moby#42119). As the tool's own
    /// `remove_network_settled` does, the removed containers' endpoints are force-disconnected by
    /// name and `down` is run again, up to 5 times; a network the daemon still counts an endpoint
    /// on while none is attached (only a daemon restart fixes that count) is left, with a
    /// warning: the next `up` reuses it, and the run's sweep names it if it stays.
    pub fn compose_down(&self) {
        let mut out = self.compose(&["down", "-v"]);
        let mut removed: Vec<String> = Vec::new();
        let mut stuck: Vec<String> = Vec::new();
        for attempt in 1..=6u64 {
            let text = stdout(&out) + &stderr(&out);
            removed.extend(text.lines().filter_map(|l| {
                let (name, what) = l.trim().strip_prefix("Container ")?.split_once(char::is_whitespace)?;
                (what.trim() == "Removed").then(|| name.to_string())
            }));
            if out.status.success() {
                return;
            }
            assert!(text.contains("has active endpoints"), "compose down failed ({:?}):\n{text}", out.status.code());
            stuck = text
                .lines()
                .filter_map(|l| Some(l.split("failed to remove network ").nth(1)?.split(':').next()?.to_string()))
                .collect();
            if attempt == 6 {
                break;
            }
            eprintln!("compose down: {stuck:?} still count an endpoint; try {attempt} of 5 more");
            for net in &stuck {
                for c in &removed {
                    let _ = docker(&["network", "disconnect", "-f", net, c]);
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(attempt));
            out = self.compose(&["down", "-v"]);
        }
        let left = docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={}", self.project)]);
        assert!(left.trim().is_empty(), "compose down left containers: {left}");
        for net in &stuck {
            let attached = docker_ok(&["network", "inspect", "-f", "{{len .Containers}}", net]);
            assert_eq!(attached.trim(), "0", "network {net} still has containers attached");
        }
        eprintln!(
            "warning: the daemon still counts an endpoint on {stuck:?} with none attached (moby#42119); left for the next up"
        );
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        let _ = tool(&["-p", &self.project, "demo", "down", "--dir", &dir, "--volumes"]);
        // Whatever `demo down` could not remove (a stack that never became healthy, a staging
        // copy a failed assertion left): a failed test leaves nothing running.
        sweep_project(&self.project);
    }
}

/// Removes the containers, networks and volumes of one test project and of its staging copies,
/// selected by exact label values and volume names (test names may prefix each other).
pub fn sweep_project(project: &str) {
    let staging = format!("io.mender-compose-upgrade.staging={project}-staging");
    let compose = format!("label=com.docker.compose.project={project}");
    // A container compose recreated mounts its predecessor's anonymous volumes by name, and
    // `rm -v` keeps those: they are removed by name after their containers.
    let mut anonymous = Vec::new();
    for filter in [compose.clone(), format!("label={staging}")] {
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let mounts = docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", id]);
            anonymous.extend(
                String::from_utf8_lossy(&mounts.stdout)
                    .split_whitespace()
                    .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_string),
            );
            docker(&["rm", "-f", "-v", id]);
        }
    }
    for v in &anonymous {
        docker(&["volume", "rm", v]);
    }
    for filter in [compose, format!("label={staging}")] {
        let nets = docker(&["network", "ls", "-q", "--filter", &filter]);
        for n in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            docker(&["network", "rm", n]);
        }
        let vols = docker(&["volume", "ls", "-q", "--filter", &filter]);
        for v in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
            docker(&["volume", "rm", "-f", v]);
        }
    }
    for name in ["mender-db", "mender-artifacts"] {
        let v = format!("{project}-{name}");
        if docker(&["volume", "inspect", &v]).status.success() {
            docker(&["volume", "rm", "-f", &v]);
        }
    }
    // The copies MongoDB stages made (`<project>-mender-db-5.0`), which the tool never removes.
    let copies = docker(&["volume", "ls", "-q", "--filter", &format!("name={project}-mender-db-")]);
    for v in String::from_utf8_lossy(&copies.stdout).split_whitespace() {
        if v.starts_with(&format!("{project}-mender-db-")) {
            docker(&["volume", "rm", "-f", v]);
        }
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

/// Collections that a migration writes (and only those) may differ after an upgrade.
pub fn without_migrations(data: &serde_json::Value) -> serde_json::Value {
    let mut d = data.clone();
    for db in d["databases"].as_array_mut().unwrap() {
        let colls = db["collections"].as_array_mut().unwrap();
        colls.retain(|c| !["migration_info", "migration_marks"].contains(&c["name"].as_str().unwrap()));
        db["migration"] = serde_json::Value::Null;
    }
    d
}

pub fn file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs a docker CLI command and returns stdout (panics on failure).
pub fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Stack {
    /// What the stack holds: per collection count and digest, and the artifact inventory.
    pub fn data(&self) -> serde_json::Value {
        self.data_with(&[])
    }

    /// The same, with extra global options (a test catalog).
    pub fn data_with(&self, global: &[&str]) -> serde_json::Value {
        let mut args = vec!["-p", self.project.as_str()];
        args.extend_from_slice(global);
        args.extend(["status", "--json", "--data"]);
        let out = tool(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut d = json(&out)["data"].take();
        // Normalise the order so that two reports compare equal when the data is.
        if let Some(dbs) = d["databases"].as_array_mut() {
            dbs.sort_by_key(|x| x["name"].as_str().unwrap_or_default().to_string());
            for db in dbs.iter_mut() {
                db["size_bytes"] = serde_json::Value::Null;
            }
        }
        d
    }

    pub fn wait_healthy(&self) {
        let start = std::time::Instant::now();
        loop {
            let out = self.status(&["--require-healthy"]);
            if out.status.success() {
                return;
            }
            assert!(start.elapsed().as_secs() < 180, "stack {} not healthy: {}", self.project, stdout(&out));
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    }

    /// StartedAt of every container: changes when anything is stopped and started.
    pub fn started_at(&self) -> String {
        let ids = docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={}", self.project)]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        let mut args = vec!["inspect", "-f", "{{.Name}} {{.State.StartedAt}} {{.State.Running}}"];
        args.extend(ids);
        let mut lines: Vec<String> = docker_ok(&args).lines().map(str::to_string).collect();
        lines.sort();
        lines.join("\n")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.dir.parent().unwrap().join("state/backups")
    }

    /// Runs the tool on this stack with its own state directory.
    pub fn tool(&self, args: &[&str]) -> Output {
        self.tool_env(args, &[])
    }

    pub fn tool_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let state = self.dir.parent().unwrap().join("state");
        let state = state.to_string_lossy().into_owned();
        let mut all = vec!["-p", self.project.as_str(), "--state-dir", state.as_str()];
        all.extend_from_slice(args);
        tool_env(&all, env)
    }

    /// Runs the tool on this stack under a pseudo-terminal (`script`), as an operator at a
    /// terminal does: what it draws comes back as stdout (stderr merged in, escape codes and all).
    pub fn tool_on_terminal(&self, args: &[&str]) -> Output {
        let state = self.dir.parent().unwrap().join("state");
        let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
        let mut cmd = vec![quote(bin()), "--image-registry".into(), quote(REGISTRY), "-p".into(), quote(&self.project)];
        cmd.extend(["--state-dir".to_string(), quote(&state.to_string_lossy())]);
        cmd.extend(args.iter().map(|a| quote(a)));
        Command::new("script")
            .args(["-q", "-e", "-c", &cmd.join(" "), "/dev/null"])
            .env("COLUMNS", "160")
            .output()
            .expect("run script")
    }

    /// The one complete bundle written so far.
    pub fn bundle(&self) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.backups_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".partial"))
            .collect();
        found.sort();
        found.pop().expect("a bundle")
    }
}

/// The last line of a `--json` run's stdout: its result object (`Null` when there is none).
pub fn result_line(out: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).lines().last().unwrap_or("{}")).unwrap_or(serde_json::Value::Null)
}

/// A `--json` result's hops as `from→to` (a MongoDB stage shows its release twice).
pub fn hop_labels(result: &serde_json::Value) -> Vec<String> {
    let hops = result["hops"].as_array().map(Vec::as_slice).unwrap_or_default();
    hops.iter().map(|h| format!("{}→{}", h["from"].as_str().unwrap_or("?"), h["to"].as_str().unwrap_or("?"))).collect()
}

/// The ids of the stack's containers, sorted and joined: equal before and after means nothing
/// was recreated.
pub fn container_ids(stack: &Stack) -> String {
    let filter = format!("label=com.docker.compose.project={}", stack.project);
    let mut ids: Vec<String> =
        docker_ok(&["ps", "-q", "--no-trunc", "--filter", &filter]).lines().map(str::to_string).collect();
    ids.sort();
    ids.join(",")
}

/// Upstream's lower `nofile` of the 4.x base files (mongo's 64000, traefik's is 65536).
pub const UPSTREAM_NOFILE: u64 = 64000;

/// The open-files limit a test-bed container can have: this process's hard limit (a container
/// cannot be started with more than the daemon's, and the daemon runs in the same sandbox),
/// capped at upstream's [`UPSTREAM_NOFILE`]. Read from /proc/self/limits ("Max open files  soft
/// hard files").
pub fn nofile_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let hard = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .expect("a \"Max open files\" line in /proc/self/limits");
    match hard {
        "unlimited" => UPSTREAM_NOFILE,
        n => n.parse::<u64>().expect("a number of open files").min(UPSTREAM_NOFILE),
    }
}

/// Every regular file under `dir` (recursively) with its bytes: equal before and after means the
/// files are untouched.
pub fn tree_bytes(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t) if t.is_file() => {
                    out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap_or_default());
                }
                _ => {}
            }
        }
    }
    out
}

/// The first IP address of `container` on its networks (a Linux host reaches it directly).
pub fn container_ip(container: &str) -> String {
    docker_ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container])
        .split_whitespace()
        .next()
        .expect("the container has an address")
        .to_string()
}

/// An S3 client for a demo stack's own store, with deployments' keys as the demo writes them
/// into prod.yml.
pub fn store_client(stack: &Stack) -> aws_sdk_s3::Client {
    use mender_compose_upgrade::engine::s3::{S3Endpoint, client};
    let prod = file(&stack.path("production/config/prod.yml"));
    let secret = prod.lines().find_map(|l| l.trim().strip_prefix("MINIO_SECRET_KEY: ")).unwrap().to_string();
    client(&S3Endpoint {
        url: Some(format!("http://{}:9000", container_ip(&format!("{}-minio-1", stack.project)))),
        region: "us-east-1".into(),
        access_key: "mender-deployments".into(),
        secret_key: secret,
    })
}
