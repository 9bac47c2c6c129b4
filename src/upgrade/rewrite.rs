//! The compose configuration of a hop, as a pure function of the current files: upstream base
//! files are replaced by the target release's (rendered for the image registry), the image of
//! every service is made the target's in the file that decides it, and services the release
//! drops are removed from the operator's overrides. Everything else — comments, formatting, the
//! operator's settings — stays byte-for-byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::catalog::{ImageRef, KnownFiles, Layout, Release, TemplateFile};
use compose_file::{ComposeFileError, image_sites, remove_service, replace_images, services};

/// One file's change in a hop's rewrite, with both contents so that a rollback restores it exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEdit {
    /// Relative to the project directory.
    pub path: PathBuf,
    /// The contents before; `None` for a file the hop creates.
    pub before: Option<String>,
    /// The contents after.
    pub after: String,
    /// Why it changes (the first reason when several apply).
    pub why: Why,
}

/// Why a hop's rewrite changes a file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// An upstream file replaced by the target release's.
    BaseFile,
    /// An `image:` changed where it is decided.
    Image,
    /// The operator's override of a service the release no longer has.
    RemovedService,
    /// A secret the release needs, generated once and kept in the project ([`ENV_FILE`]); its
    /// contents are never shown.
    Secret,
    /// useradm's key directory mounted next to its 3.x key file, for rotated keys
    /// ([`keys::mount_key_directory`]).
    Keys,
}

/// The project's `.env`, next to docker-compose.yml: compose reads it for interpolation. The 4.x
/// base files take `DEPLOYMENTS_PRESIGN_SECRET` from it.
pub const ENV_FILE: &str = ".env";
/// The secret deployments signs presigned download links with (mender-server@v4.0.4:
/// backend/services/deployments/config/config.go `SettingPresignSecret`). 3.x generated one per
/// start; upstream's 4.x compose sets a constant demo value, which a production stack must never use
/// (`shared/reference/migrate-3.7-to-4.x.md` §4).
pub const PRESIGN_VAR: &str = "DEPLOYMENTS_PRESIGN_SECRET";

/// Every change a hop makes to the project's files, computed before anything is written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rewrite {
    /// One edit per file, in the order they were decided.
    pub edits: Vec<FileEdit>,
    /// Changes to files the operator owns or modified, to show before applying.
    pub warnings: Vec<String>,
}

/// Why a hop's rewrite cannot be computed; nothing was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RewriteError {
    /// A compose file cannot be parsed, or an image to change is interpolated.
    #[error("{path}: {source}")]
    File {
        /// The file, relative to the project directory.
        path: String,
        /// Why it could not be read or edited.
        source: ComposeFileError,
    },
    /// The target release has a service no compose file gives an `image:`.
    #[error("no compose file defines an image for service {0}")]
    NoImage(String),
}

/// A file of the project: its path relative to the project directory and its contents (None when
/// it does not exist).
#[derive(Debug, Clone)]
pub struct ProjectFile {
    /// Path relative to the project directory (`production/config/prod.yml`).
    pub path: PathBuf,
    /// Its contents; `None` when it does not exist.
    pub contents: Option<String>,
}

fn is_yaml(path: &std::path::Path) -> bool {
    let s = path.to_string_lossy();
    s.ends_with(".yml") || s.ends_with(".yml.template") || s.ends_with(".yaml")
}

/// Renders a template file for the registry prefix: every image behind it.
///
/// # Errors
/// [`RewriteError::File`] when a template compose file cannot be parsed.
pub fn render(t: &TemplateFile, registry: Option<&str>) -> Result<String, RewriteError> {
    crate::catalog::render(t, registry)
        .map_err(|source| RewriteError::File { path: t.path.display().to_string(), source })
}

/// What a hop's rewrite is computed from.
pub struct Inputs<'a> {
    /// The release the stack runs.
    pub from: &'a Release,
    /// The release the hop lands on.
    pub to: &'a Release,
    /// The compose files in the order compose reads them (relative paths), with their contents.
    pub compose_files: &'a [ProjectFile],
    /// Other project files the target's templates would replace, with their contents.
    pub other_files: &'a [ProjectFile],
    /// The running release's base files as the tool writes them (what an edit is shown against).
    pub from_templates: Option<&'a [TemplateFile]>,
    /// Upstream base files of the target release; `None` when the hop keeps the base files.
    pub to_templates: Option<&'a [TemplateFile]>,
    /// Every upstream and tool-written base file, by hash: what tells a pristine file from an
    /// edited one.
    pub known: &'a KnownFiles,
    /// `--image-registry`: the mirror prefix every image is written under.
    pub registry: Option<&'a str>,
    /// Compose services the target release drops (removed from the operator's overrides).
    pub removed: &'a [String],
    /// A fresh random secret, written as [`PRESIGN_VAR`] into [`ENV_FILE`] when the target's base
    /// files need it and the project has none yet (never replacing one it has).
    pub presign_secret: &'a str,
}

/// Computes a hop's rewrite: base files replaced by the target's (when given), dropped services
/// removed from the overrides, and each service's image set to the target's in the last file that
/// sets it.
///
/// # Errors
/// [`RewriteError`] for a file that is not a compose file, an interpolated image, or a service
/// without an image.
pub fn plan(i: &Inputs<'_>) -> Result<Rewrite, RewriteError> {
    let mut rw = Rewrite::default();
    let mut current: Vec<ProjectFile> = i.compose_files.to_vec();
    if let Some(templates) = i.to_templates {
        replace_base_files(i, templates, &mut current, &mut rw)?;
        retire_files(i, &mut current, &mut rw);
    }
    remove_dropped_services(i, &mut current, &mut rw)?;
    report_unknown_services(i, &current, &mut rw)?;
    if i.to.layout == Layout::Production4x {
        mount_key_directories(i, &mut current, &mut rw);
    }
    set_images(i, &mut current, &mut rw)?;
    keep_presign_secret(i, &mut rw);
    Ok(rw)
}

/// The presign secret in the project's `.env`, generated once: when the target's base files read
/// [`PRESIGN_VAR`] and `.env` lacks it, a line is added (the rest of `.env` kept).
fn keep_presign_secret(i: &Inputs<'_>, rw: &mut Rewrite) {
    let needs = i.to_templates.is_some_and(|ts| ts.iter().any(|t| t.contents.contains(&format!("${{{PRESIGN_VAR}"))));
    if !needs {
        return;
    }
    let now = i.other_files.iter().find(|f| f.path.as_os_str() == ENV_FILE).and_then(|f| f.contents.clone());
    let has = now.as_deref().is_some_and(|text| {
        text.lines().any(|l| {
            l.trim_start()
                .strip_prefix(PRESIGN_VAR)
                .and_then(|r| r.trim_start().strip_prefix('='))
                .is_some_and(|v| !v.trim().is_empty())
        })
    });
    if has {
        return;
    }
    let mut after = now.clone().unwrap_or_default();
    if !after.is_empty() && !after.ends_with('\n') {
        after.push('\n');
    }
    after.push_str(&format!(
        "# Signs deployments' presigned download links; generated once by mender-compose-upgrade for {}. Keep it.\n{PRESIGN_VAR}={}\n",
        i.to.version, i.presign_secret
    ));
    rw.warnings.push(format!("{ENV_FILE}: {PRESIGN_VAR} generated (not shown), which {} reads from it", i.to.version));
    edit(rw, std::path::Path::new(ENV_FILE), now.as_ref(), after, Why::Secret);
}

/// Services the operator's files (not the base files) set but the target release does not have
/// and the hop does not remove: reported, never dropped silently (compose refuses a service that
/// has no image, so the operator has to decide).
fn report_unknown_services(i: &Inputs<'_>, current: &[ProjectFile], rw: &mut Rewrite) -> Result<(), RewriteError> {
    let Some(templates) = i.to_templates else { return Ok(()) };
    for f in current.iter().filter(|f| !templates.iter().any(|t| t.path == f.path)) {
        let Some(text) = &f.contents else { continue };
        let named =
            services(text).map_err(|source| RewriteError::File { path: f.path.display().to_string(), source })?;
        for s in named.iter().filter(|s| !i.to.services.contains_key(*s) && !i.removed.contains(s)) {
            let base_has = current
                .iter()
                .filter(|b| templates.iter().any(|t| t.path == b.path))
                .filter_map(|b| b.contents.as_deref())
                .any(|b| services(b).is_ok_and(|n| n.contains(s)));
            if !base_has {
                rw.warnings.push(format!(
                    "{}: service {s} is not part of {} (its base files do not define it); your settings of it are \
                     kept as they are, move or remove them",
                    f.path.display(),
                    i.to.version
                ));
            }
        }
    }
    Ok(())
}

/// useradm's whole key directory in the operator's files (never in base files) on a hop into
/// the 4.x layout: see [`keys`] for why it is mounted beside the 3.x file mount.
fn mount_key_directories(i: &Inputs<'_>, current: &mut [ProjectFile], rw: &mut Rewrite) {
    let is_base = |f: &ProjectFile| i.to_templates.is_some_and(|ts| ts.iter().any(|t| t.path == f.path));
    for f in current.iter_mut().filter(|f| !is_base(f)) {
        let Some(text) = f.contents.clone() else { continue };
        match keys::mount_key_directory(&text) {
            keys::KeyDir::Unchanged => {}
            keys::KeyDir::Edited(after) => {
                rw.warnings.push(format!(
                    "{}: {} also mounts its key's directory at {} and reads its key from there ({}), so that \
                     keys rotated as private.id.<N>.pem are loaded; the 3.x mount at {} stays",
                    f.path.display(),
                    keys::SERVICE,
                    keys::DIR_TARGET,
                    keys::PATH_VAR,
                    keys::KEY_TARGET
                ));
                edit(rw, &f.path, Some(&text), after.clone(), Why::Keys);
                f.contents = Some(after);
            }
            keys::KeyDir::ByHand(what) => rw.warnings.push(format!("{}: {what}", f.path.display())),
        }
    }
}

fn edit(rw: &mut Rewrite, path: &std::path::Path, before: Option<&String>, after: String, why: Why) {
    if before == Some(&after) {
        return;
    }
    match rw.edits.iter_mut().find(|e| e.path == path) {
        Some(e) => e.after = after,
        None => rw.edits.push(FileEdit { path: path.to_path_buf(), before: before.cloned(), after, why }),
    }
}

fn replace_base_files(
    i: &Inputs<'_>,
    templates: &[TemplateFile],
    current: &mut [ProjectFile],
    rw: &mut Rewrite,
) -> Result<(), RewriteError> {
    let mut elsewhere: BTreeSet<String> = BTreeSet::new();
    for t in templates {
        let rendered = render(t, i.registry)?;
        let now = current.iter().chain(i.other_files).find(|f| f.path == t.path).and_then(|f| f.contents.clone());
        if let Some(now) = now.as_ref().filter(|n| **n != rendered) {
            let origin = i.known.origin(&t.path, now.as_bytes());
            if origin.matches(&i.from.version) {
                // Upstream's file of the running release, or the one this tool wrote for it.
            } else if origin.known() {
                let names: Vec<String> = origin.releases().iter().map(|v| v.to_string()).collect();
                elsewhere.insert(format!("{} ({})", t.path.display(), names.join("/")));
            } else {
                let base = i
                    .from_templates
                    .and_then(|ts| ts.iter().find(|f| f.path == t.path))
                    .map(|f| as_release(f, i.from, i.registry))
                    .transpose()?;
                rw.warnings.push(edited_note(&t.path, now, base.as_deref(), i.from, i.to));
            }
        }
        edit(rw, &t.path, now.as_ref(), rendered.clone(), Why::BaseFile);
        if let Some(f) = current.iter_mut().find(|f| f.path == t.path) {
            f.contents = Some(rendered);
        }
    }
    if !elsewhere.is_empty() {
        rw.warnings.push(format!(
            "the images say {}, but these files are another release's: {}; they are replaced by {}'s",
            i.from.version,
            elsewhere.into_iter().collect::<Vec<_>>().join(", "),
            i.to.version
        ));
    }
    Ok(())
}

/// A base file of the running release as it would be with that release's own image tags (the
/// templates of its line's newest patch, when the running patch has none).
fn as_release(t: &TemplateFile, from: &Release, registry: Option<&str>) -> Result<String, RewriteError> {
    let text = render(t, registry)?;
    if !is_yaml(&t.path) || !crate::catalog::has_services(&text) {
        return Ok(text);
    }
    replace_images(&text, |svc, _| from.services.get(svc).map(|f| ImageRef::parse(&f.image, None).qualified(registry)))
        .map_err(|source| RewriteError::File { path: t.path.display().to_string(), source })
}

/// The warning for a base file edited by hand, with the edits an operator would lose.
fn edited_note(path: &std::path::Path, now: &str, base: Option<&str>, from: &Release, to: &Release) -> String {
    let mut note = format!(
        "{} differs from the upstream {} file (it matches no file upstream or this tool wrote for any 3.x \
         release: edited by hand?) and is replaced by the {} one (a copy of yours is kept); move what you need \
         into production/config/prod.yml",
        path.display(),
        from.version,
        to.version
    );
    if to.layout == Layout::Production4x && path.starts_with("config/traefik") {
        let rules: Vec<(String, String)> = now
            .lines()
            .filter_map(rule_of)
            .map(|r| (r.to_string(), traefik::v3_rule(r)))
            .filter(|(a, b)| a != b)
            .collect();
        if !rules.is_empty() {
            note.push_str(&format!("; traefik v3 ({}) drops routers with v2 rules, yours in v3 syntax:\n", to.version));
            for (a, b) in rules {
                note.push_str(&format!("    {a}\n      → {b}\n"));
            }
        }
    }
    if let Some(base) = base {
        let changes = if is_yaml(path) { yaml_changes(base, now) } else { None };
        let lines = changes.unwrap_or_else(|| {
            let e = FileEdit {
                path: path.to_path_buf(),
                before: Some(base.to_string()),
                after: now.to_string(),
                why: Why::BaseFile,
            };
            diff(&e).lines().skip(1).map(str::to_string).collect()
        });
        if !lines.is_empty() {
            note.push_str(&format!("; your changes against {}'s file:\n", from.version));
            for l in lines.iter().take(40) {
                note.push_str(&format!("    {l}\n"));
            }
            if lines.len() > 40 {
                note.push_str(&format!("    … and {} more\n", lines.len() - 40));
            }
        }
    }
    note
}

/// The router rule a line of a traefik file sets (`rule: "…"`, also inside a flow mapping).
fn rule_of(line: &str) -> Option<&str> {
    let rest = line[line.find("rule:")? + 5..].trim_start();
    match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].find(q).map(|end| &rest[1..end + 1]),
        _ => Some(rest.split([',', '}']).next().unwrap_or(rest).trim()),
    }
}

/// The settings that differ between two YAML documents, one line each (`+ path: value`, `- path:
/// value`, `~ path: old → new`); values of secret-looking keys are masked. `None` when either
/// side does not parse.
pub fn yaml_changes(before: &str, after: &str) -> Option<Vec<String>> {
    let a: serde_json::Value = serde_saphyr::from_str(before).ok()?;
    let b: serde_json::Value = serde_saphyr::from_str(after).ok()?;
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    Some(out)
}

fn shown(path: &str, v: &serde_json::Value) -> String {
    let secret = ["KEY", "SECRET", "PASSWORD", "TOKEN"].iter().any(|k| path.to_ascii_uppercase().contains(k));
    if secret && !v.is_object() { "(hidden)".into() } else { v.to_string() }
}

fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => walk(&join(k), va, vb, out),
                    None => out.push(format!("- {}: {}", join(k), shown(&join(k), va))),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(format!("+ {}: {}", join(k), shown(&join(k), vb)));
            }
        }
        _ if a == b => {}
        _ => out.push(format!("~ {path}: {} → {}", shown(path, a), shown(path, b))),
    }
}

/// The project's compose files of the running release that the target no longer has (3.0/3.1's
/// connect and config files on the way to 3.2) lose their services.
fn retire_files(i: &Inputs<'_>, current: &mut [ProjectFile], rw: &mut Rewrite) {
    for f in current.iter_mut() {
        let rel = f.path.to_string_lossy().to_string();
        if !i.from.compose_files.contains(&rel) || i.to.compose_files.contains(&rel) {
            continue;
        }
        let after = crate::catalog::retired(&f.path);
        if f.contents.as_deref() == Some(after.as_str()) {
            continue;
        }
        rw.warnings.push(format!(
            "{}: {} has no such file (its services moved into docker-compose.yml); it is kept without services \
             (a copy of yours is kept)",
            f.path.display(),
            i.to.version
        ));
        edit(rw, &f.path, f.contents.as_ref(), after.clone(), Why::BaseFile);
        f.contents = Some(after);
    }
}

fn remove_dropped_services(i: &Inputs<'_>, current: &mut [ProjectFile], rw: &mut Rewrite) -> Result<(), RewriteError> {
    for f in current.iter_mut() {
        let Some(text) = f.contents.clone() else { continue };
        let ferr = |source| RewriteError::File { path: f.path.display().to_string(), source };
        let named: BTreeSet<String> = services(&text).map_err(ferr)?.into_iter().collect();
        let mut after = text.clone();
        for s in i.removed.iter().filter(|s| named.contains(*s)) {
            after = remove_service(&after, s)
                .map_err(|source| RewriteError::File { path: f.path.display().to_string(), source })?;
            rw.warnings.push(format!(
                "{}: removed the settings of {s}, which {} no longer has",
                f.path.display(),
                i.to.version
            ));
        }
        if after != text {
            edit(rw, &f.path, Some(&text), after.clone(), Why::RemovedService);
            f.contents = Some(after);
        }
    }
    Ok(())
}

fn set_images(i: &Inputs<'_>, current: &mut [ProjectFile], rw: &mut Rewrite) -> Result<(), RewriteError> {
    for (service, facts) in &i.to.services {
        let want = ImageRef::parse(&facts.image, None).qualified(i.registry);
        // The last file that sets the image decides it.
        let mut decider = None;
        for (idx, f) in current.iter().enumerate() {
            let Some(text) = &f.contents else { continue };
            let sites = image_sites(text)
                .map_err(|source| RewriteError::File { path: f.path.display().to_string(), source })?;
            if let Some(site) = sites.into_iter().find(|s| s.service == *service) {
                decider = Some((idx, site));
            }
        }
        let Some((idx, site)) = decider else { return Err(RewriteError::NoImage(service.clone())) };
        if ImageRef::parse(&site.value, None) == ImageRef::parse(&want, None) {
            continue;
        }
        let f = &mut current[idx];
        let text = f.contents.clone().unwrap_or_default();
        let after = replace_images(&text, |s, _| (s == service).then(|| want.clone()))
            .map_err(|source| RewriteError::File { path: f.path.display().to_string(), source })?;
        let is_base = i.to_templates.is_some_and(|ts| ts.iter().any(|t| t.path == f.path));
        if !is_base {
            rw.warnings.push(format!(
                "{}: {service} pins its image; changed {} → {want}",
                f.path.display(),
                site.value
            ));
        }
        edit(rw, &f.path.clone(), Some(&text), after.clone(), Why::Image);
        f.contents = Some(after);
    }
    Ok(())
}

/// A unified-style diff of an edit, for the confirmation (only changed lines, with line numbers).
pub fn diff(e: &FileEdit) -> String {
    if e.why == Why::Secret {
        return format!("--- {}\n        (holds a secret: not shown)\n", e.path.display());
    }
    let before: Vec<&str> = e.before.as_deref().unwrap_or_default().lines().collect();
    let after: Vec<&str> = e.after.lines().collect();
    let mut out = format!("--- {}\n", e.path.display());
    let (mut a, mut b) = (0, 0);
    while a < before.len() || b < after.len() {
        if a < before.len() && b < after.len() && before[a] == after[b] {
            a += 1;
            b += 1;
            continue;
        }
        // Resynchronise on the nearest line both sides share (fewest lines skipped on both sides
        // together): an inserted `environment:` must not pair with one further down.
        let next = (1..(before.len() - a) + (after.len() - b)).find_map(|d| {
            (0..=d)
                .map(|i| (a + i, b + d - i))
                .find(|&(k, j)| k < before.len() && j < after.len() && before[k] == after[j])
        });
        let (ka, kb) = next.unwrap_or((before.len(), after.len()));
        for (n, l) in before.iter().enumerate().take(ka).skip(a) {
            out.push_str(&format!("{:>5} - {l}\n", n + 1));
        }
        for (n, l) in after.iter().enumerate().take(kb).skip(b) {
            out.push_str(&format!("{:>5} + {l}\n", n + 1));
        }
        a = ka;
        b = kb;
    }
    out
}

pub mod keys;
pub mod traefik;

#[cfg(test)]
mod tests;
