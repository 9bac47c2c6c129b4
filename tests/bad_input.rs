//! Issue 13's bad-input table: one row per bad input, across every verb, on one real test-bed
//! stack. Each row gives the input, the exit code, the key words of the message, and is checked
//! against a snapshot of everything an operator would not want touched — the stack's containers
//! (ids, start times, states), its volumes and networks, the staging copy's containers, every file
//! of the checkout and of the state directory (bundle bytes included). Every row runs even when
//! one fails; the table is printed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Everything a bad input must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct World {
    containers: String,
    staging: String,
    volumes: String,
    networks: String,
    checkout: BTreeMap<PathBuf, Vec<u8>>,
    state: BTreeMap<PathBuf, Vec<u8>>,
}

fn world(stack: &Stack, staging: &str) -> World {
    let project = format!("label=com.docker.compose.project={}", stack.project);
    // A volume by its name and the inode of its data directory: a volume removed and created
    // again under the same name has another (the daemon's CreatedAt is the directory's mtime).
    let fmt = "{{.Name}} {{.Mountpoint}}";
    let mut volumes: Vec<String> = docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={}", stack.project)])
        .lines()
        .map(|v| {
            let line = docker_ok(&["volume", "inspect", "-f", fmt, v]);
            let (name, mountpoint) = line.trim().split_once(' ').unwrap();
            let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(mountpoint).unwrap());
            format!("{name} {inode}")
        })
        .collect();
    volumes.sort();
    let staging_ids = docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={staging}")]);
    let mut inspect = vec!["inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Status}}"];
    inspect.extend(staging_ids.split_whitespace());
    World {
        containers: format!("{}\n{}", container_ids(stack), stack.started_at()),
        staging: if staging_ids.trim().is_empty() { String::new() } else { docker_ok(&inspect) },
        volumes: volumes.join("\n"),
        networks: docker_ok(&["network", "ls", "-q", "--filter", &project]),
        // A pre-flight may fetch tags into the clone's .git (FETCH_HEAD): the checkout is its
        // working tree, and what git says of it.
        checkout: tree_bytes(&stack.dir)
            .into_iter()
            .filter(|(p, _)| !p.starts_with(".git"))
            .chain([(PathBuf::from("git status"), git_status(&stack.dir))])
            .collect(),
        state: tree_bytes(&state_dir(stack)),
    }
}

fn git_status(dir: &Path) -> Vec<u8> {
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(dir).output().unwrap().stdout;
    let status = Command::new("git").args(["status", "--porcelain"]).current_dir(dir).output().unwrap().stdout;
    [head, status].concat()
}

fn state_dir(stack: &Stack) -> PathBuf {
    stack.dir.parent().unwrap().join("state")
}

/// One row: what was given, what must come back.
struct Row {
    input: String,
    code: i32,
    words: Vec<&'static str>,
}

/// The outcome of one row: `Ok(())`, or what was wrong with it.
fn check(row: &Row, out: &Output, before: &World, after: &World) -> Result<(), String> {
    let err = format!("{}{}", stderr(out), stdout(out));
    let mut wrong = Vec::new();
    if out.status.code() != Some(row.code) {
        wrong.push(format!("exit {:?}, not {}", out.status.code(), row.code));
    }
    for w in &row.words {
        if !err.contains(w) {
            wrong.push(format!("no {w:?} in the message"));
        }
    }
    if before != after {
        let what: Vec<&str> = [
            ("containers", before.containers != after.containers),
            ("staging", before.staging != after.staging),
            ("volumes", before.volumes != after.volumes),
            ("networks", before.networks != after.networks),
            ("checkout files", before.checkout != after.checkout),
            ("state files", before.state != after.state),
        ]
        .into_iter()
        .filter_map(|(n, changed)| changed.then_some(n))
        .collect();
        let paths = |a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<String> {
            a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).map(|k| k.display().to_string()).collect()
        };
        let mut detail = paths(&before.checkout, &after.checkout);
        detail.extend(paths(&before.state, &after.state));
        if before.volumes != after.volumes {
            detail.push(format!("volumes {:?} → {:?}", before.volumes, after.volumes));
        }
        wrong.push(format!("changed: {} {detail:?}", what.join(", ")));
    }
    if wrong.is_empty() { Ok(()) } else { Err(format!("{}\n      output: {}", wrong.join("; "), err.trim())) }
}

/// A copy of `bundle` under `dir/name`, then `edit` applied to it.
fn bundle_copy(bundle: &Path, dir: &Path, name: &str, edit: impl FnOnce(&Path)) -> String {
    let copy = dir.join(name);
    assert!(Command::new("cp").arg("-a").arg(bundle).arg(&copy).status().unwrap().success());
    edit(&copy);
    copy.to_string_lossy().into_owned()
}

/// Edits the manifest and writes its checksum file again, as a bundle made that way would have.
fn edit_manifest(bundle: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = bundle.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let sum = Command::new("sha256sum").arg("manifest.json").current_dir(bundle).output().unwrap();
    assert!(sum.status.success());
    std::fs::write(bundle.join("manifest.json.sha256"), sum.stdout).unwrap();
}

#[test]
fn bad_inputs_are_refused_with_a_clear_message_and_change_nothing() {
    let stack = Stack::up("badin", "3.4.0");
    let backup = stack.tool(&["backup"]);
    assert!(backup.status.success(), "{}", stderr(&backup));
    let bundle = stack.bundle();
    let staging = format!("{}-staging", stack.project);
    let up = stack.tool(&["staging", "up", "--from", &bundle.to_string_lossy()]);
    assert!(up.status.success(), "{}\n{}", stdout(&up), stderr(&up));

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let other_project = bundle_copy(&bundle, t, "other-project", |b| {
        edit_manifest(b, |m| m["project"] = "some-other-mender".into());
    });
    let newer =
        bundle_copy(&bundle, t, "newer-release", |b| edit_manifest(b, |m| m["mender_version"] = "3.6.5".into()));
    let truncated = bundle_copy(&bundle, t, "truncated", |b| {
        let a = b.join("mongo.archive.gz");
        let len = std::fs::metadata(&a).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&a).unwrap().set_len(len / 2).unwrap();
    });
    let file_missing = bundle_copy(&bundle, t, "file-missing", |b| {
        std::fs::remove_file(b.join("mongo.archive.gz")).unwrap();
    });
    let no_manifest =
        bundle_copy(&bundle, t, "no-manifest", |b| std::fs::remove_file(b.join("manifest.json")).unwrap());
    let garbage_plan = t.join("garbage.plan.json");
    std::fs::write(&garbage_plan, "{ not json").unwrap();
    let not_a_dir = t.join("state-is-a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let ro = t.join("read-only-state");
    std::fs::create_dir(&ro).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"]).arg(&ro).status().unwrap();
    assert!(mounted.success(), "the test needs root to mount a read-only state directory");

    let prod = stack.path("production/config/prod.yml");
    let prod_text = file(&prod);
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (garbage_plan, not_a_dir, ro_s) = (s(&garbage_plan), s(&not_a_dir), s(&ro));
    let bundle_s = s(&bundle);

    // (input args, exit, key words, what to do to the stack first and undo after)
    type Setup = Option<(&'static str, String)>;
    let rows: Vec<(Vec<String>, i32, Vec<&'static str>, Setup)> = vec![
        (v(&["-p", "nosuchproject", "status"]), 2, vec!["no compose project named nosuchproject"], None),
        (v(&["--catalog", "/nonexistent/catalog", "plan", "--to", "3.6.5"]), 2, vec!["/nonexistent/catalog"], None),
        (v(&["plan", "--to", "3.6.5-rc1"]), 2, vec!["3.6.5-rc1"], None),
        (v(&["plan", "--to", "3.6.5+build1"]), 2, vec!["3.6.5+build1"], None),
        (v(&["plan", "--to", "3.8.0"]), 2, vec!["3.8.0 is not a Mender Server release", "4.0.4"], None),
        (v(&["plan", "--to", "banana"]), 2, vec!["banana"], None),
        (
            v(&["plan", "--to", "3.6.5", "--out", "/nonexistent-mcu-dir/sub/plan.json"]),
            2,
            vec!["the directory /nonexistent-mcu-dir/sub does not exist"],
            None,
        ),
        (v(&["upgrade", "--to", "3.3.2", "--yes"]), 2, vec!["older than the running release 3.4.0"], None),
        (v(&["upgrade", "--to", "3.4.0", "--yes"]), 2, vec!["already runs 3.4.0"], None),
        (v(&["upgrade", "--to", "3.6.5-rc1", "--yes"]), 2, vec!["3.6.5-rc1"], None),
        (v(&["upgrade", "--to", "3.8.0", "--yes"]), 2, vec!["3.8.0 is not a Mender Server release", "4.0.4"], None),
        (v(&["upgrade", "--to", "3.6.5"]), 2, vec!["--yes"], None),
        (v(&["upgrade", "--plan", "/nonexistent/plan.json", "--yes"]), 2, vec!["/nonexistent/plan.json"], None),
        (v(&["upgrade", "--plan", &garbage_plan, "--yes"]), 2, vec!["garbage.plan.json"], None),
        (v(&["upgrade", "--to", "3.6.5", "--yes", "--hop-timeout", "banana"]), 2, vec!["banana"], None),
        (v(&["upgrade", "--to", "3.6.5", "--yes", "--stop-timeout", "1.5s"]), 2, vec!["whole seconds"], None),
        (v(&["-p", &staging, "upgrade", "--to", "3.6.5", "--yes"]), 3, vec![leak(&staging), "staging"], None),
        (
            v(&["upgrade", "--to", "3.6.5", "--yes"]),
            3,
            vec!["prod.yml"],
            Some(("a YAML error in prod.yml", prod_text.replacen("services:", "services: [", 1))),
        ),
        (
            v(&["upgrade", "--to", "3.6.5", "--yes"]),
            3,
            vec!["mender-conductor"],
            Some((
                "prod.yml names a service the release does not have",
                prod_text.replacen(
                    "services:\n",
                    "services:\n    mender-conductor:\n        environment:\n            X: y\n",
                    1,
                ),
            )),
        ),
        (v(&["resume", "--yes"]), 2, vec!["no interrupted upgrade"], None),
        (v(&["rollback", "--yes"]), 3, vec!["nothing"], None),
        (
            v(&["rollback", "--to", "9.9.9", "--yes"]),
            2,
            vec!["9.9.9 is not older than the running release 3.4.0"],
            None,
        ),
        (v(&["backup", "--copy-to", "ftp://host/dir"]), 2, vec!["ftp"], None),
        (v(&["backup", "--encrypt-to", "notakey"]), 2, vec!["notakey"], None),
        (v(&["backup", "--encrypt-to-file", "/nonexistent/recipients"]), 2, vec!["/nonexistent/recipients"], None),
        (v(&["--state-dir", &not_a_dir, "backup"]), 3, vec!["cannot use the state directory", "state-is-a-file"], None),
        (
            v(&["--state-dir", &ro_s, "backup"]),
            3,
            vec!["cannot use the state directory", "Read-only file system"],
            None,
        ),
        (v(&["backup", "prune", "--keep-last", "abc"]), 2, vec!["abc"], None),
        (v(&["verify", "/nonexistent/bundle"]), 2, vec!["no bundle \"/nonexistent/bundle\""], None),
        (v(&["verify", &no_manifest]), 2, vec!["no-manifest", "manifest.json"], None),
        (v(&["verify", &truncated]), 3, vec!["mongo.archive.gz"], None),
        (v(&["verify", &file_missing]), 3, vec!["mongo.archive.gz"], None),
        (v(&["restore", &other_project, "--yes"]), 3, vec!["some-other-mender"], None),
        (v(&["restore", &truncated, "--yes"]), 3, vec!["mongo.archive.gz"], None),
        (v(&["restore", "no-such-bundle", "--yes"]), 2, vec!["no bundle \"no-such-bundle\""], None),
        (v(&["staging", "up", "--from", "/nonexistent/bundle"]), 2, vec!["no bundle \"/nonexistent/bundle\""], None),
        (v(&["staging", "up", "--from", &bundle_s]), 3, vec!["already exists"], None),
        (v(&["staging", "down", "--name", "nosuchstaging"]), 2, vec!["no staging project named nosuchstaging"], None),
        // The smoke check's account is checked before anything runs, on every verb that gates.
        (v(&["resume", "--yes", "--smoke-user", "op@example.com"]), 2, vec!["op@example.com has no password"], None),
        (
            v(&["rollback", "--yes", "--smoke-user", "op@example.com", "--smoke-password-file", "/nonexistent/pw"]),
            2,
            vec!["cannot read the smoke check's password file /nonexistent/pw"],
            None,
        ),
        (
            v(&["staging", "up", "--from", &bundle_s, "--smoke-user", "op@example.com"]),
            2,
            vec!["has no password"],
            None,
        ),
        (
            v(&["rehearse", "--to", "3.6.5", "--yes", "--smoke-user", "op@example.com"]),
            2,
            vec!["has no password"],
            None,
        ),
        (v(&["rehearse", "--to", "9.9.9", "--yes"]), 2, vec!["9.9.9"], None),
        (v(&["rehearse", "--to", "3.6.5", "--from", &newer, "--yes"]), 3, vec!["of release 3.6.5", "runs 3.4.0"], None),
        (
            v(&["rehearse", "--to", "3.6.5", "--from", &other_project, "--yes"]),
            3,
            vec!["of project some-other-mender"],
            None,
        ),
        (v(&["backup", "copy", &bundle_s, "--to", "ftp://host/dir"]), 2, vec!["ftp"], None),
        (v(&["staging", "up", "--from", &bundle_s, "--name", "Bad Name!"]), 2, vec!["Bad Name!"], None),
        (v(&["demo", "up", "--release", "9.9.9"]), 2, vec!["9.9.9"], None),
        (v(&["completions", "nosh"]), 2, vec!["nosh"], None),
        (v(&["man", "nosuchverb"]), 2, vec!["nosuchverb"], None),
    ];

    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (args, code, words, setup) in rows {
        let row = Row { input: args.join(" "), code, words };
        let label = match &setup {
            Some((what, text)) => {
                std::fs::write(&prod, text).unwrap();
                format!("{} ({what})", row.input)
            }
            None => row.input.clone(),
        };
        let before = world(&stack, &staging);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // A row that gives -p or --state-dir itself gets only the other from the stack.
        let state = state_dir(&stack).to_string_lossy().into_owned();
        let out = match refs[0] {
            "-p" => tool(&[&["--state-dir", state.as_str()], &refs[..]].concat()),
            "--state-dir" => tool(&[&["-p", stack.project.as_str()], &refs[..]].concat()),
            _ => stack.tool(&refs),
        };
        let after = world(&stack, &staging);
        if setup.is_some() {
            std::fs::write(&prod, &prod_text).unwrap();
        }
        let verdict = check(&row, &out, &before, &after);
        table.push(format!(
            "  {label:<90} exit {:<4} {}",
            fmt_code(&out),
            if verdict.is_ok() { "ok" } else { "WRONG" }
        ));
        if let Err(e) = verdict {
            failures.push(format!("{label}: {e}"));
        }
    }

    // Two upgrades at once: the first waits at its confirmation (holding the project's lock) on a
    // terminal; the second is refused, naming the first; the first is then declined.
    let before = world(&stack, &staging);
    let (mut first, mut first_out) = waiting_at_confirmation(&stack);
    let second = stack.tool(&["upgrade", "--to", "3.6.5", "--yes"]);
    first.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut first_out, &mut rest);
    let _ = first.wait();
    let after = world(&stack, &staging);
    let row =
        Row { input: "upgrade --to 3.6.5 --yes (while another upgrade waits)".into(), code: 3, words: vec!["lock"] };
    let verdict = check(&row, &second, &before, &after);
    table.push(format!(
        "  {:<90} exit {:<4} {}",
        row.input,
        fmt_code(&second),
        if verdict.is_ok() { "ok" } else { "WRONG" }
    ));
    if let Err(e) = verdict {
        failures.push(format!("{}: {e}", row.input));
    }

    let _ = Command::new("umount").arg(&ro).status();
    let down = stack.tool(&["staging", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let report = format!("bad-input table: {} rows, {} wrong\n{}\n", table.len(), failures.len(), table.join("\n"));
    // Straight to stderr: libtest captures only the print macros.
    let _ = std::io::stderr().write_all(report.as_bytes());
    assert!(table.len() >= 30, "{report}");
    assert!(!Path::new("/nonexistent-mcu-dir").exists(), "plan --out created the directory it was refused for");
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A `&'static str` of a string made at run time (a key word that names the test's project).
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn fmt_code(out: &Output) -> String {
    out.status.code().map_or_else(|| "sig".into(), |c| c.to_string())
}

/// `upgrade --to 3.6.5` on a pseudo-terminal, read until it asks to proceed.
// The caller answers and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn waiting_at_confirmation(stack: &Stack) -> (std::process::Child, std::io::BufReader<std::process::ChildStdout>) {
    let state = state_dir(stack);
    let cmd = format!(
        "'{}' --image-registry {REGISTRY} -p '{}' --state-dir '{}' upgrade --to 3.6.5",
        bin(),
        stack.project,
        state.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut buf = Vec::new();
        let n = out.read_until(b'?', &mut buf).unwrap();
        if n == 0 {
            let _ = child.wait();
            panic!("the upgrade never asked: {seen}");
        }
        seen.push_str(&String::from_utf8_lossy(&buf));
        if seen.contains("Proceed?") {
            return (child, out);
        }
    }
}
