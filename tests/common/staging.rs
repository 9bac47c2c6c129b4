//! What a staging run or rehearsal must leave as it was (production) and must take away (its
//! own containers, networks and volumes).

use std::path::PathBuf;

use serde_json::Value;

use super::{Stack, docker_ok, project_fingerprint, stderr};

/// The label the tool puts on everything of a staging copy; its value is the copy's name.
pub const LABEL: &str = "io.mender-compose-upgrade.staging";

/// Everything about production a staging run must leave as it was: container ids, states,
/// images, config hashes, restart counts and start times, and the data read through a sidecar
/// (every collection's count and content digest, every artifact's key, size and hash).
pub fn production(stack: &Stack) -> (String, String, String, Value) {
    let ids = docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={}", stack.project)]);
    let mut args = vec!["inspect", "-f", "{{.Name}} {{.RestartCount}}"];
    args.extend(ids.split_whitespace());
    (project_fingerprint(None, &stack.project), stack.started_at(), docker_ok(&args), stack.data())
}

/// The names of the containers, networks or volumes (`kind`) of staging copy `name`.
pub fn labelled(kind: &str, name: &str) -> Vec<String> {
    let filter = format!("label={LABEL}={name}");
    let out = match kind {
        "container" => docker_ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]),
        "network" => docker_ok(&["network", "ls", "--filter", &filter, "--format", "{{.Name}}"]),
        _ => docker_ok(&["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"]),
    };
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Panics when staging copy `name` left a container, network or volume.
pub fn nothing_left(name: &str) {
    for kind in ["container", "network", "volume"] {
        assert!(labelled(kind, name).is_empty(), "{kind}s of {name} left: {:?}", labelled(kind, name));
    }
}

/// `backup` of the stack; the bundle it wrote.
pub fn backup(stack: &Stack) -> PathBuf {
    let out = stack.tool(&["backup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stack.bundle()
}
