//! The release catalog: `compose-templates/catalog/*.yaml` (facts per release and per line) and the
//! base compose files under `compose-templates/<version>/`. Built into the binary; `--catalog DIR`
//! loads another copy (a private fork, or a test that substitutes images).

mod compose_view;
mod files;
mod image;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use semver::Version;
use serde::Deserialize;

pub use compose_view::production_compose;
pub use files::{Checkout, FileOrigin, KnownFiles, has_services, render, retired, sha256_hex};
pub use image::ImageRef;
pub use model::*;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/compose-templates");

/// Why the catalog cannot be loaded; the tool cannot plan without it.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file of a `--catalog DIR` cannot be read.
    #[error("cannot read the catalog file {path}: {source}")]
    Read {
        /// The file, as a path on the host.
        path: PathBuf,
        /// What the file system answered.
        source: std::io::Error,
    },
    /// A catalog file is missing from the embedded copy.
    #[error("the catalog file {path} is missing")]
    Missing {
        /// Its path inside `compose-templates/`.
        path: PathBuf,
    },
    /// A catalog file is not YAML of the expected shape (the parser's message).
    #[error("the catalog file {path} is not valid: {message}")]
    Parse {
        /// `catalog/lines.yaml` or `catalog/releases.yaml`.
        path: PathBuf,
        /// The parser's message, with its position.
        message: String,
    },
    /// The catalog contradicts itself (a release on an unknown line, a mongo major not in the list, a
    /// line without a stop release with facts).
    #[error("the catalog is inconsistent: {0}")]
    Inconsistent(String),
    /// A release needed for a hop has no `compose-templates/<version>/` directory.
    #[error("the catalog has no base compose files for release {0}")]
    NoTemplates(Version),
}

/// Where the catalog's files come from.
#[derive(Debug, Clone)]
enum Source {
    Embedded,
    Dir(PathBuf),
}

#[derive(Deserialize)]
struct LinesFile {
    rule: String,
    lines: Vec<Line>,
    mongo_majors: Vec<String>,
}

#[derive(Deserialize)]
struct ReleasesFile {
    releases: Vec<Release>,
}

#[derive(Deserialize)]
struct UpstreamFile {
    tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// The file of upstream hashes, relative to the catalog root; a catalog without it knows no
/// upstream file.
const UPSTREAM_FILES: &str = "catalog/upstream-files.yaml";

/// A file of a release's base composition, path relative to the project directory.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// Path relative to the project directory (`docker-compose.yml`, `config/traefik/traefik.yaml`).
    pub path: PathBuf,
    /// The file's text, exactly as upstream has it.
    pub contents: String,
}

/// The catalog together with where its template files live.
#[derive(Debug, Clone)]
pub struct LoadedCatalog {
    /// The catalog's facts.
    pub catalog: Catalog,
    source: Source,
}

impl LoadedCatalog {
    /// The catalog built into this binary.
    ///
    /// # Errors
    /// Only when the built-in files are broken (a build from a damaged tree).
    pub fn embedded() -> Result<LoadedCatalog, CatalogError> {
        let read = |rel: &str| -> Result<String, CatalogError> {
            EMBEDDED
                .get_file(rel)
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or_else(|| CatalogError::Missing { path: PathBuf::from(rel) })
        };
        let mut catalog = parse(&read("catalog/lines.yaml")?, &read("catalog/releases.yaml")?)?;
        catalog.upstream = parse_upstream(&read(UPSTREAM_FILES)?)?;
        Ok(LoadedCatalog { catalog, source: Source::Embedded })
    }

    /// A catalog directory laid out like `compose-templates/` (`--catalog DIR`).
    ///
    /// # Errors
    /// [`CatalogError::Read`], [`CatalogError::Parse`] or [`CatalogError::Inconsistent`].
    pub fn from_dir(dir: &Path) -> Result<LoadedCatalog, CatalogError> {
        let read = |rel: &str| -> Result<String, CatalogError> {
            let path = dir.join(rel);
            std::fs::read_to_string(&path).map_err(|source| CatalogError::Read { path, source })
        };
        let mut catalog = parse(&read("catalog/lines.yaml")?, &read("catalog/releases.yaml")?)?;
        if dir.join(UPSTREAM_FILES).exists() {
            catalog.upstream = parse_upstream(&read(UPSTREAM_FILES)?)?;
        }
        Ok(LoadedCatalog { catalog, source: Source::Dir(dir.to_path_buf()) })
    }

    /// The base compose files of a release (docker-compose.yml, prod.yml.template, traefik config, …),
    /// sorted by path.
    ///
    /// # Errors
    /// [`CatalogError::NoTemplates`] when the release has none; [`CatalogError::Read`] for an
    /// unreadable file of a `--catalog DIR`.
    pub fn template_files(&self, version: &Version) -> Result<Vec<TemplateFile>, CatalogError> {
        let rel = version.to_string();
        let mut files = Vec::new();
        match &self.source {
            Source::Embedded => {
                let dir = EMBEDDED.get_dir(&rel).ok_or_else(|| CatalogError::NoTemplates(version.clone()))?;
                collect_embedded(dir, Path::new(&rel), &mut files);
            }
            Source::Dir(root) => {
                let base = root.join(&rel);
                if !base.is_dir() {
                    return Err(CatalogError::NoTemplates(version.clone()));
                }
                collect_dir(&base, &base, &mut files)?;
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

fn collect_embedded(dir: &Dir<'_>, base: &Path, out: &mut Vec<TemplateFile>) {
    for file in dir.files() {
        if let (Ok(path), Some(contents)) = (file.path().strip_prefix(base), file.contents_utf8()) {
            out.push(TemplateFile { path: path.to_path_buf(), contents: contents.to_string() });
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, base, out);
    }
}

fn collect_dir(base: &Path, dir: &Path, out: &mut Vec<TemplateFile>) -> Result<(), CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::Read { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let path = entry.map_err(|source| CatalogError::Read { path: dir.to_path_buf(), source })?.path();
        if path.is_dir() {
            collect_dir(base, &path, out)?;
        } else {
            let contents =
                std::fs::read_to_string(&path).map_err(|source| CatalogError::Read { path: path.clone(), source })?;
            let rel = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
            out.push(TemplateFile { path: rel, contents });
        }
    }
    Ok(())
}

/// Parses and cross-checks the two catalog files (`catalog/lines.yaml`, `catalog/releases.yaml`).
/// Releases in upstream's 4.x layout come back in the production layout of the last 3.x release
/// ([`production_compose`]).
///
/// # Errors
/// [`CatalogError::Parse`] or [`CatalogError::Inconsistent`].
pub fn parse(lines_yaml: &str, releases_yaml: &str) -> Result<Catalog, CatalogError> {
    let lines: LinesFile = serde_saphyr::from_str(lines_yaml)
        .map_err(|e| CatalogError::Parse { path: "catalog/lines.yaml".into(), message: e.to_string() })?;
    let releases: ReleasesFile = serde_saphyr::from_str(releases_yaml)
        .map_err(|e| CatalogError::Parse { path: "catalog/releases.yaml".into(), message: e.to_string() })?;
    // 4.x releases as an operator's project runs them: the last 3.x release's layout kept.
    let kept =
        releases.releases.iter().filter(|r| r.layout == Layout::Integration3x).max_by_key(|r| &r.version).cloned();
    let releases: Vec<Release> = match &kept {
        Some(kept) => releases.releases.iter().map(|r| production_compose(r, kept)).collect(),
        None => releases.releases,
    };
    let catalog = Catalog {
        rule: lines.rule,
        lines: lines.lines,
        releases,
        mongo_majors: lines.mongo_majors,
        upstream: BTreeMap::new(),
    };
    catalog.check()?;
    Ok(catalog)
}

/// Parses `catalog/upstream-files.yaml` (tag → path → sha256).
///
/// # Errors
/// `Parse` when the file or a tag in it is not valid.
pub fn parse_upstream(yaml: &str) -> Result<UpstreamFiles, CatalogError> {
    let bad = |message: String| CatalogError::Parse { path: UPSTREAM_FILES.into(), message };
    let file: UpstreamFile = serde_saphyr::from_str(yaml).map_err(|e| bad(e.to_string()))?;
    let mut out = UpstreamFiles::new();
    for (tag, files) in file.tags {
        let v = Version::parse(&tag).map_err(|e| bad(format!("tag {tag}: {e}")))?;
        if let Some((path, sha)) =
            files.iter().find(|(_, s)| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad(format!("{tag} {path}: {sha} is not a sha256")));
        }
        out.insert(v, files);
    }
    Ok(out)
}

/// "3.6" for 3.6.5.
pub fn line_name(v: &Version) -> String {
    format!("{}.{}", v.major, v.minor)
}

impl Catalog {
    fn check(&self) -> Result<(), CatalogError> {
        let bad = |m: String| Err(CatalogError::Inconsistent(m));
        for r in &self.releases {
            if self.line(&r.line).is_none_or(|l| !l.server_release) {
                return bad(format!("release {} belongs to unknown or non-server line {}", r.version, r.line));
            }
            if !r.services.contains_key(&r.mongo.service) {
                return bad(format!("release {} names mongo service {} it does not have", r.version, r.mongo.service));
            }
            if !self.mongo_majors.contains(&r.mongo.major) {
                return bad(format!("release {} runs mongo {} which is not in mongo_majors", r.version, r.mongo.major));
            }
            for (name, s) in &r.services {
                if let (Some(lo), Some(hi)) = (&s.schema_min, &s.schema)
                    && lo >= hi
                {
                    return bad(format!("release {} service {name}: schema range {lo}..{hi} is empty", r.version));
                }
            }
        }
        for l in self.lines.iter().filter(|l| l.server_release) {
            match &l.stop {
                Some(stop) if self.release(stop).is_some() => {}
                _ => return bad(format!("line {} has no stop release with facts", l.line)),
            }
            for from in l.upgrade.iter().flat_map(|u| &u.from) {
                if self.line(from).is_none_or(|f| !f.server_release) {
                    return bad(format!("line {} is reached from unknown line {from}", l.line));
                }
            }
        }
        Ok(())
    }

    /// The release `v`, when the catalog has its facts.
    pub fn release(&self, v: &Version) -> Option<&Release> {
        self.releases.iter().find(|r| &r.version == v)
    }

    /// The line named `name` (`3.6`).
    pub fn line(&self, name: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.line == name)
    }

    /// Mender's support of the line of `v`, when the catalog records it.
    pub fn support(&self, v: &Version) -> Option<&Support> {
        self.line(&line_name(v)).and_then(|l| l.support.as_ref())
    }

    /// The newest release of a line Mender still supports (the target to recommend).
    pub fn newest_supported(&self) -> Option<&Version> {
        self.server_lines()
            .filter(|l| l.support.as_ref().is_some_and(|s| s.status == SupportStatus::Supported))
            .filter_map(|l| l.stop.as_ref())
            .max()
    }

    /// Whether `v` is a tagged version the catalog knows of (with or without full facts).
    pub fn is_known_tag(&self, v: &Version) -> bool {
        self.line(&line_name(v)).is_some_and(|l| l.tags.contains(v))
    }

    /// Server lines in version order.
    pub fn server_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.server_release)
    }

    /// Every catalog (release, service) whose image is `image`.
    pub fn releases_with_image(&self, image: &ImageRef) -> Vec<(&Release, &str)> {
        let mut out = Vec::new();
        for r in &self.releases {
            for (name, s) in &r.services {
                if ImageRef::parse(&s.image, None) == *image {
                    out.push((r, name.as_str()));
                }
            }
        }
        out
    }

    /// Every schema version a database has had up to and including `release`, oldest first: the
    /// migrations a fresh database goes through.
    pub fn schema_ladder(&self, db: &str, release: &Version) -> Vec<Version> {
        let seen: std::collections::BTreeSet<Version> = self
            .releases
            .iter()
            .filter(|r| r.version <= *release)
            .flat_map(|r| r.services.values())
            .filter(|s| s.db.as_deref() == Some(db))
            .filter_map(|s| s.schema.clone())
            .collect();
        seen.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn embedded_catalog_loads_and_covers_3_0_to_4_1() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        for r in ["3.0.0", "3.3.2", "3.4.0", "3.5.1", "3.6.5", "3.7.11", "4.0.4", "4.1.3"] {
            assert!(c.release(&v(r)).is_some(), "missing {r}");
        }
        assert!(!c.line("3.8").unwrap().server_release);
        assert_eq!(c.line("3.6").unwrap().stop, Some(v("3.6.5")));
    }

    #[test]
    fn facts_match_the_reference() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        let r = c.release(&v("3.4.0")).unwrap();
        let d = &r.services["mender-deployments"];
        assert_eq!(d.image, "mendersoftware/deployments:mender-3.4.0");
        assert_eq!(d.db.as_deref(), Some("deployment_service"));
        assert_eq!(d.schema, Some(v("1.2.11")));
        assert_eq!(r.services["mender-device-auth"].health.as_deref(), Some("/api/internal/v1/devauth/health"));
        assert_eq!(r.services["mender-workflows-server"].alive.as_deref(), Some("/status"));
        assert_eq!(r.mongo.major, "4.4");
        assert_eq!(c.release(&v("3.7.11")).unwrap().mongo.major, "5.0");
    }

    #[test]
    fn image_lookup_finds_every_release_using_it() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        let hits = c.releases_with_image(&ImageRef::parse("mendersoftware/useradm:mender-3.6.5", None));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1, "mender-useradm");
        let traefik = c.releases_with_image(&ImageRef::parse("traefik:v2.8", None));
        let versions: Vec<String> = traefik.iter().map(|(r, _)| r.version.to_string()).collect();
        assert!(versions.contains(&"3.4.0".to_string()) && versions.contains(&"3.6.5".to_string()));
    }

    #[test]
    fn schema_ladder_is_sorted_and_bounded() {
        let c = LoadedCatalog::embedded().unwrap().catalog;
        let ladder = c.schema_ladder("useradm", &v("3.4.0"));
        assert_eq!(ladder, vec![v("1.1.4"), v("2.0.1")]);
        assert_eq!(c.schema_ladder("useradm", &v("3.7.11")).last(), Some(&v("2.0.3")));
    }

    #[test]
    fn templates_exist_for_test_bed_releases() {
        let loaded = LoadedCatalog::embedded().unwrap();
        for r in ["3.3.2", "3.4.0", "3.5.1", "3.6.5", "3.7.11", "4.0.4", "4.1.3"] {
            let files = loaded.template_files(&v(r)).unwrap();
            let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
            assert!(names.contains(&"docker-compose.yml".to_string()), "{r}: {names:?}");
            assert!(names.contains(&"production/config/prod.yml.template".to_string()));
        }
        assert!(matches!(loaded.template_files(&v("3.0.0")), Err(CatalogError::NoTemplates(_))));
    }

    #[test]
    fn inconsistent_catalog_is_rejected() {
        let lines =
            "rule: r\nlines:\n  - line: '3.4'\n    server_release: true\n    stop: 3.4.9\nmongo_majors: ['4.4']\n";
        let err = parse(lines, "releases: []\n").unwrap_err();
        assert!(err.to_string().contains("no stop release"), "{err}");
    }
}
