//! useradm's whole key directory on 4.x: the operator's prod.yml keeps the 3.x file mount of the
//! signing key and gains a read-only mount of the key's directory, so that keys rotated as
//! `private.id.<N>.pem` next to it are loaded (issue 10; `shared/reference/migrate-3.7-to-4.x.md`
//! §1.4.4 and §4).
//!
//! Why this shape, from useradm's own start-up (mendersoftware/mender-server@v4.0.4:
//! backend/services/useradm/server.go `RunServer`, config/config.go):
//!
//! - rotated keys are read from the directory of `USERADM_SERVER_PRIV_KEY_PATH`
//!   (`addPrivateKeys(filepath.Dir(server_priv_key_path), "private\.id\.([0-9]*)\.pem")`);
//! - the key with id 0, which checks every token without a `kid` (all tokens issued before kids
//!   existed), is always read from the **default path** `/etc/useradm/rsa/private.pem`, whatever
//!   `USERADM_SERVER_PRIV_KEY_PATH` says. So the 3.x file mount (`…/keys/useradm/private.key` →
//!   `/etc/useradm/rsa/private.pem`) must stay exactly as it is;
//! - the host file is `private.key`, not `private.pem`, so mounting the host directory over
//!   `/etc/useradm/rsa` would lose that path, and a file mount inside a read-only directory mount
//!   of the same directory cannot be made (the mount point `private.pem` does not exist in it and
//!   cannot be created).
//!
//! Hence: the directory goes to its own path ([`DIR_TARGET`]) and `USERADM_SERVER_PRIV_KEY_PATH`
//! names the same signing key inside it, which makes useradm read the rotated keys from there.
//! The key it signs with and the id-0 key stay the very same file (useradm logs that the id-0
//! handler is set again from that path; it is the same key). A stack without rotated keys runs as
//! before: the directory holds only the key it already had.

use serde_json::Value;

/// The compose service of useradm in the production layout.
pub const SERVICE: &str = "mender-useradm";
/// Where 3.x mounts the signing key, and the path useradm always reads the id-0 key from
/// (`SettingServerPrivKeyPathDefault`, mender-server@v4.0.4:backend/services/useradm/config/config.go).
pub const KEY_TARGET: &str = "/etc/useradm/rsa/private.pem";
/// Where the key's host directory is mounted (read-only).
pub const DIR_TARGET: &str = "/etc/useradm/keys";
/// The setting whose directory useradm loads rotated keys from (`server_priv_key_path`).
pub const PATH_VAR: &str = "USERADM_SERVER_PRIV_KEY_PATH";

/// What [`mount_key_directory`] decided for a compose file.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyDir {
    /// Nothing to do: no 3.x file mount of useradm's key, or the directory is already mounted, or
    /// the operator sets the key path himself.
    Unchanged,
    /// The file with the directory mount and the key path added (everything else kept).
    Edited(String),
    /// The file mounts the key but is laid out in a way this edit does not handle: what to add by
    /// hand.
    ByHand(String),
}

/// The compose file `text` with useradm's key directory mounted next to the 3.x file mount of its
/// key (see the module documentation for why).
pub fn mount_key_directory(text: &str) -> KeyDir {
    let Ok(doc) = serde_saphyr::from_str::<Value>(text) else { return KeyDir::Unchanged };
    let Some(svc) = doc.get("services").and_then(|s| s.get(SERVICE)) else { return KeyDir::Unchanged };
    let volumes: Vec<&str> =
        svc.get("volumes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(source) = volumes.iter().find_map(|v| key_source(v)) else { return KeyDir::Unchanged };
    if volumes.iter().any(|v| v.split(':').nth(1) == Some(DIR_TARGET)) || env_value(svc).is_some() {
        return KeyDir::Unchanged;
    }
    let Some((dir, file)) = source.rsplit_once('/').filter(|(d, f)| !d.is_empty() && !f.is_empty()) else {
        return KeyDir::Unchanged;
    };
    let mount = format!("{dir}:{DIR_TARGET}:ro");
    let path = format!("{DIR_TARGET}/{file}");
    let by_hand = || {
        KeyDir::ByHand(format!(
            "{SERVICE}: add the volume `{mount}` and the environment `{PATH_VAR}: {path}` so that useradm loads \
             keys rotated as private.id.<N>.pem next to {source}"
        ))
    };
    let Some(after) = edit_lines(text, &mount, &path) else { return by_hand() };
    // The edit must add exactly these two settings and change nothing else.
    let Ok(mut got) = serde_saphyr::from_str::<Value>(&after) else { return by_hand() };
    let Some(s) = got.get_mut("services").and_then(|s| s.get_mut(SERVICE)) else { return by_hand() };
    if env_value(s).as_deref() != Some(path.as_str()) {
        return by_hand();
    }
    let Some(vols) = s.get_mut("volumes").and_then(Value::as_array_mut) else { return by_hand() };
    let before_len = vols.len();
    vols.retain(|v| v.as_str() != Some(mount.as_str()));
    if vols.len() + 1 != before_len {
        return by_hand();
    }
    remove_env(s);
    let mut want = doc.clone();
    if let Some(w) = want.get_mut("services").and_then(|s| s.get_mut(SERVICE)) {
        remove_env(w);
    }
    if got != want {
        return by_hand();
    }
    KeyDir::Edited(after)
}

/// The host source of a short-syntax volume that mounts a file at [`KEY_TARGET`].
fn key_source(volume: &str) -> Option<&str> {
    let mut parts = volume.split(':');
    let (source, target) = (parts.next()?, parts.next()?);
    (target == KEY_TARGET && !source.is_empty()).then_some(source)
}

/// The service's [`PATH_VAR`], in the map or the list form of `environment`.
fn env_value(svc: &Value) -> Option<String> {
    match svc.get("environment")? {
        Value::Object(m) => m.get(PATH_VAR).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find_map(|i| i.strip_prefix(PATH_VAR).and_then(|r| r.strip_prefix('=')).map(str::to_string)),
        _ => None,
    }
}

/// Removes [`PATH_VAR`] from the service's environment, and the environment when that leaves it
/// empty (to compare a result with what it was made from).
fn remove_env(svc: &mut Value) {
    let empty = match svc.get_mut("environment") {
        Some(Value::Object(m)) => {
            m.remove(PATH_VAR);
            m.is_empty()
        }
        Some(Value::Array(items)) => {
            items.retain(|i| !i.as_str().is_some_and(|s| s.starts_with(&format!("{PATH_VAR}="))));
            items.is_empty()
        }
        _ => false,
    };
    if empty && let Some(m) = svc.as_object_mut() {
        m.remove("environment");
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether a line carries YAML content (not blank, not only a comment).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The line edit: the directory mount after the key's file mount, the key path into the
/// service's block-style `environment` (or a new one before `volumes:`). `None` when the file is
/// laid out otherwise (flow style, several documents, …).
fn edit_lines(text: &str, mount: &str, path: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    // The service's own key under the top-level `services:` (not a `depends_on` entry).
    let services = lines.iter().position(|l| l.split(" #").next().unwrap_or(l).trim_end() == "services:")?;
    let top_end =
        (services + 1..lines.len()).find(|&i| is_content(lines[i]) && indent_of(lines[i]) == 0).unwrap_or(lines.len());
    let svc_indent = (services + 1..top_end).find(|&i| is_content(lines[i])).map(|i| indent_of(lines[i]))?;
    let head = (services + 1..top_end).find(|&i| {
        let l = lines[i];
        indent_of(l) == svc_indent && l.split(" #").next().unwrap_or(l).trim() == format!("{SERVICE}:")
    })?;
    let end = (head + 1..lines.len())
        .find(|&i| is_content(lines[i]) && indent_of(lines[i]) <= svc_indent)
        .unwrap_or(lines.len());
    let key_indent = (head + 1..end).find(|&i| is_content(lines[i])).map(|i| indent_of(lines[i]))?;
    let key_line = |name: &str| {
        (head + 1..end)
            .find(|&i| indent_of(lines[i]) == key_indent && lines[i].trim_start().starts_with(&format!("{name}:")))
    };
    let volumes = key_line("volumes")?;
    let item = (volumes + 1..end).find(|&i| {
        let t = lines[i].trim_start();
        t.starts_with('-') && t.contains(&format!(":{KEY_TARGET}"))
    })?;
    let item_line = lines[item];
    let dash = indent_of(item_line);
    let value = item_line.trim_start()[1..].trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'').map(String::from).unwrap_or_default();
    let pad = " ".repeat(dash);
    let mut inserts: Vec<(usize, Vec<String>)> = vec![(
        item + 1,
        vec![
            format!("{pad}# the key's directory too, for keys rotated as private.id.<N>.pem (useradm loads them"),
            format!("{pad}# from the directory of {PATH_VAR}; the id-0 key stays at {KEY_TARGET})"),
            format!("{pad}- {quote}{mount}{quote}"),
        ],
    )];
    let step = key_indent - svc_indent;
    match key_line("environment") {
        Some(env) => {
            let rest = lines[env].trim_start()["environment:".len()..].trim();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return None;
            }
            let child = (env + 1..end).find(|&i| is_content(lines[i])).filter(|&i| indent_of(lines[i]) > key_indent);
            let line = match child {
                Some(c) if lines[c].trim_start().starts_with('-') => {
                    format!("{}- {PATH_VAR}={path}", " ".repeat(indent_of(lines[c])))
                }
                Some(c) => format!("{}{PATH_VAR}: {path}", " ".repeat(indent_of(lines[c]))),
                None => format!("{}{PATH_VAR}: {path}", " ".repeat(key_indent + step)),
            };
            inserts.push((env + 1, vec![line]));
        }
        None => inserts.push((
            volumes,
            vec![
                format!("{}environment:", " ".repeat(key_indent)),
                format!("{}{PATH_VAR}: {path}", " ".repeat(key_indent + step)),
            ],
        )),
    }
    inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (at, add) in inserts {
        out.splice(at..at, add);
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Some(joined)
}
