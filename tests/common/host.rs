//! The tool run in the background while a test does something to the host (fills a disk, stops
//! the daemon), and what it reads meanwhile: the journal, the pre-hop dumps.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{REGISTRY, Stack, bin, docker_ok, stderr};

/// The tool on `stack` started in the background (its own state directory), output piped.
pub fn spawn(stack: &Stack, args: &[&str], env: &[(&str, &str)]) -> Child {
    let state = stack.dir.parent().unwrap().join("state");
    let mut cmd = Command::new(bin());
    cmd.args(["--image-registry", REGISTRY, "-p", &stack.project, "--state-dir"]).arg(&state).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start mender-compose-upgrade")
}

/// The project's journal as the tool last wrote it (`Null` when there is none).
pub fn journal(stack: &Stack) -> Value {
    let path = stack.dir.parent().unwrap().join(format!("state/journal/{}.json", stack.project));
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
}

/// Polls `until` every 50 ms while `child` runs; false when the child ended first.
pub fn while_running(child: &mut Child, deadline: Duration, mut until: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if child.try_wait().expect("wait for the tool").is_some() {
            return false;
        }
        if until() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the tool was still running after {deadline:?}");
}

pub fn output(child: Child) -> Output {
    child.wait_with_output().expect("wait for the tool")
}

/// The pre-hop dumps of every upgrade run in the stack's state directory, by path.
pub fn pre_hop_dumps(stack: &Stack) -> Vec<(PathBuf, Vec<u8>)> {
    let root = stack.dir.parent().unwrap().join("state/upgrades");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "mongo.archive.gz") {
                found.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// A tmpfs of `mib` MiB mounted on the host and given to Docker as the stack's `mender-db`
/// volume (a bind of the local driver): a small disk under the database that a test can fill.
/// Unmounted when dropped, after the stack that uses it.
pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn new(volume: &str, mib: u32) -> SmallDisk {
        let dir = std::env::temp_dir().join(volume);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("umount").arg(&dir).output();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount a tmpfs on {}: {}", dir.display(), stderr(&out));
        let device = format!("device={}", dir.display());
        docker_ok(&["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", &device, volume]);
        SmallDisk { dir }
    }

    /// Writes to a file on the disk until no byte more fits.
    pub fn fill(&self) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("filler")).unwrap();
        for chunk in [1 << 20, 4096, 512] {
            let zeros = vec![0u8; chunk];
            while f.write_all(&zeros).is_ok() {}
        }
    }

    pub fn free(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}
