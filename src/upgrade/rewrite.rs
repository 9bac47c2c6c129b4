//! The compose configuration of a hop, as a pure function of the current files: upstream base
//! files are replaced by the target release's (rendered for the image registry), the image of
//! every service is made the target's in the file that decides it, and services the release
//! drops are removed from the operator's overrides. Everything else — comments, formatting, the
//! operator's settings — stays byte-for-byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::catalog::{ImageRef, Release, TemplateFile};
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
}

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

fn is_compose(path: &std::path::Path) -> bool {
    let s = path.to_string_lossy();
    s.ends_with(".yml") || s.ends_with(".yml.template") || s.ends_with(".yaml")
}

/// Renders a template file for the registry prefix: every image behind it.
///
/// # Errors
/// [`RewriteError::File`] when a template compose file cannot be parsed.
pub fn render(t: &TemplateFile, registry: Option<&str>) -> Result<String, RewriteError> {
    if !is_compose(&t.path) || !t.contents.contains("services:") {
        return Ok(t.contents.clone());
    }
    replace_images(&t.contents, |_, image| Some(ImageRef::parse(image, None).qualified(registry)))
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
    /// Upstream base files of the current release (to tell whether the operator changed them).
    pub from_templates: Option<&'a [TemplateFile]>,
    /// Upstream base files of the target release; `None` when the hop keeps the base files.
    pub to_templates: Option<&'a [TemplateFile]>,
    /// `--image-registry`: the mirror prefix every image is written under.
    pub registry: Option<&'a str>,
    /// Compose services the target release drops (removed from the operator's overrides).
    pub removed: &'a [String],
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
    }
    remove_dropped_services(i, &mut current, &mut rw)?;
    set_images(i, &mut current, &mut rw)?;
    Ok(rw)
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
    for t in templates {
        let rendered = render(t, i.registry)?;
        let now = current.iter().chain(i.other_files).find(|f| f.path == t.path).and_then(|f| f.contents.clone());
        let upstream_before = i
            .from_templates
            .and_then(|ts| ts.iter().find(|f| f.path == t.path))
            .map(|f| render(f, i.registry))
            .transpose()?;
        if let (Some(now), Some(up)) = (&now, &upstream_before)
            && now != up
            && *now != rendered
        {
            rw.warnings.push(format!(
                "{} differs from the upstream {} file and is replaced by the {} one (a copy of yours is kept)",
                t.path.display(),
                i.from.version,
                i.to.version
            ));
        }
        edit(rw, &t.path, now.as_ref(), rendered.clone(), Why::BaseFile);
        if let Some(f) = current.iter_mut().find(|f| f.path == t.path) {
            f.contents = Some(rendered);
        }
    }
    Ok(())
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
        // Resynchronise on the next line both sides share.
        let next = (b..after.len()).find_map(|j| (a..before.len()).find(|&k| before[k] == after[j]).map(|k| (k, j)));
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

#[cfg(test)]
mod tests;
