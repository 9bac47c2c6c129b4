//! Which release the files of an integration checkout belong to: every upstream base file of
//! every 3.x tag is known by its sha256 (`catalog/upstream-files.yaml`, from the reference
//! `upstream-integration/<tag>.sha256`), and every file this tool writes by its contents (the
//! base files of `compose-templates/<version>/`, rendered for the image registry).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use compose_file::{ComposeFileError, replace_images};
use semver::Version;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{CatalogError, ImageRef, Layout, LoadedCatalog, TemplateFile};

/// The sha256 of `bytes`, lowercase hex (the form of `sha256sum` and of the catalog).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn is_compose(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.ends_with(".yml") || s.ends_with(".yml.template") || s.ends_with(".yaml")
}

/// Whether YAML text is a compose file: a top-level `services:` key (a traefik file's
/// `http.services` is indented, and may be a Go template that is no YAML before traefik renders it).
pub fn has_services(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("services:"))
}

/// A template file as the tool writes it: every image behind the registry prefix (the
/// `--image-registry` mirror); other files as they are.
///
/// # Errors
/// A compose template that does not parse.
pub fn render(t: &TemplateFile, registry: Option<&str>) -> Result<String, ComposeFileError> {
    if !is_compose(&t.path) || !has_services(&t.contents) {
        return Ok(t.contents.clone());
    }
    replace_images(&t.contents, |_, image| Some(ImageRef::parse(image, None).qualified(registry)))
}

impl LoadedCatalog {
    /// The base files of release `v` as the tool writes them: its own templates, or, for a patch
    /// that has none, its line's newest patch's with `v`'s images (upstream's files differ
    /// within a line only in image tags; tests/render.rs and the reference render prove it for
    /// the catalog's releases).
    ///
    /// # Errors
    /// No templates for `v` or its line's newest patch; a template that does not parse.
    pub fn release_files(&self, v: &Version) -> Result<Vec<TemplateFile>, CatalogError> {
        let c = &self.catalog;
        let release = c.release(v).ok_or_else(|| CatalogError::NoTemplates(v.clone()))?;
        if release.templates {
            return self.template_files(v);
        }
        let stop =
            c.line(&release.line).and_then(|l| l.stop.clone()).ok_or_else(|| CatalogError::NoTemplates(v.clone()))?;
        let mut files = self.template_files(&stop).map_err(|_| CatalogError::NoTemplates(v.clone()))?;
        for f in files.iter_mut().filter(|f| is_compose(&f.path) && has_services(&f.contents)) {
            f.contents = replace_images(&f.contents, |svc, _| release.services.get(svc).map(|s| s.image.clone()))
                .map_err(|e| CatalogError::Inconsistent(format!("{}: {e}", f.path.display())))?;
        }
        Ok(files)
    }
}

/// What a compose file of an earlier release that a later one no longer reads (3.0/3.1's
/// docker-compose.connect.yml and docker-compose.config.yml, whose services 3.2 moved into
/// docker-compose.yml) becomes: no services, so that the project's file list, an older
/// production/run and the later composition all agree.
pub fn retired(path: &Path) -> String {
    format!(
        "# {} is not part of Mender Server 3.2 and later: its services moved into docker-compose.yml.\n\
         # Kept without services by mender-compose-upgrade, so that compose invocations that still\n\
         # name it (an older production/run) compose the same stack; it can be removed with them.\n\
         version: '2.1'\nservices: {{}}\n",
        path.display()
    )
}

/// Where one file of a checkout comes from.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FileOrigin {
    /// Relative to the checkout.
    pub path: PathBuf,
    /// The upstream tags whose file at this path has exactly these bytes.
    pub upstream: Vec<Version>,
    /// The releases whose base file this tool writes with exactly these bytes.
    pub tool: Vec<Version>,
}

impl FileOrigin {
    /// Whether the file is upstream's or this tool's for some release (not edited).
    pub fn known(&self) -> bool {
        !self.upstream.is_empty() || !self.tool.is_empty()
    }

    /// Whether the file is upstream's or this tool's for release `v`.
    pub fn matches(&self, v: &Version) -> bool {
        self.upstream.contains(v) || self.tool.contains(v)
    }

    /// Every release the file belongs to.
    pub fn releases(&self) -> BTreeSet<Version> {
        self.upstream.iter().chain(&self.tool).cloned().collect()
    }
}

/// The releases one file's bytes belong to: (upstream tags, releases this tool writes it for).
type Owners = (Vec<Version>, Vec<Version>);

/// Every base file the catalog knows, by path and sha256.
#[derive(Debug, Clone, Default)]
pub struct KnownFiles {
    /// path → sha256 → owners.
    by_path: BTreeMap<String, BTreeMap<String, Owners>>,
}

impl KnownFiles {
    /// The upstream hashes of the catalog and the tool's templates of every release that has
    /// them, rendered for `registry`. A template that does not render is left out (the rewrite
    /// reports it when it needs it).
    pub fn new(c: &LoadedCatalog, registry: Option<&str>) -> KnownFiles {
        let mut k = KnownFiles::default();
        for (tag, files) in &c.catalog.upstream {
            for (path, sha) in files {
                k.entry(path, sha).0.push(tag.clone());
            }
        }
        let mut retirable = BTreeSet::new();
        for r in c.catalog.releases.iter().filter(|r| r.layout != Layout::MenderServer4x) {
            for t in c.release_files(&r.version).unwrap_or_default() {
                if let Ok(text) = render(&t, registry) {
                    k.entry(&t.path.to_string_lossy(), &sha256_hex(text.as_bytes())).1.push(r.version.clone());
                }
            }
            retirable.extend(r.compose_files.iter().filter(|f| f.contains(".con")).cloned());
        }
        // A retired file belongs to every release that no longer reads it.
        for path in retirable {
            let sha = sha256_hex(retired(Path::new(&path)).as_bytes());
            let later = c
                .catalog
                .releases
                .iter()
                .filter(|r| r.layout != Layout::MenderServer4x && !r.compose_files.contains(&path));
            let versions: Vec<Version> = later.map(|r| r.version.clone()).collect();
            k.entry(&path, &sha).1.extend(versions);
        }
        k
    }

    fn entry(&mut self, path: &str, sha: &str) -> &mut Owners {
        self.by_path.entry(path.to_string()).or_default().entry(sha.to_string()).or_default()
    }

    /// Whether the tool writes a file at `path` for some release (an upgrade replaces it).
    pub fn is_written(&self, path: &Path) -> bool {
        self.by_path.get(path.to_string_lossy().as_ref()).is_some_and(|m| m.values().any(|o| !o.1.is_empty()))
    }

    /// Whether any release has a base file at `path`.
    pub fn is_base_file(&self, path: &Path) -> bool {
        self.by_path.contains_key(path.to_string_lossy().as_ref())
    }

    /// The paths of every base file any release has.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }

    /// Where the file at `path` with `contents` comes from.
    pub fn origin(&self, path: &Path, contents: &[u8]) -> FileOrigin {
        let sha = sha256_hex(contents);
        let hit = self.by_path.get(path.to_string_lossy().as_ref()).and_then(|m| m.get(&sha));
        let (upstream, tool) = hit.cloned().unwrap_or_default();
        FileOrigin { path: path.to_path_buf(), upstream, tool }
    }
}

/// What the files of a checkout say about its release.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Checkout {
    /// Each base file found, and where it comes from.
    pub files: Vec<FileOrigin>,
    /// The releases every recognized file belongs to (empty when they disagree or none is
    /// recognized).
    pub releases: Vec<Version>,
    /// Base files the tool writes that match no release: edited by hand (an upgrade replaces them).
    pub edited: Vec<PathBuf>,
    /// Upstream files the tool leaves alone (production/run) that match no release: changed locally.
    pub local: Vec<PathBuf>,
}

impl Checkout {
    /// Reads the base files [`KnownFiles`] knows from the checkout in `dir` (a missing or
    /// unreadable file is left out) and classifies them ([`Checkout::classify`]).
    pub fn read(known: &KnownFiles, dir: &Path) -> Checkout {
        let files: Vec<(PathBuf, Vec<u8>)> =
            known.paths().filter_map(|p| std::fs::read(dir.join(p)).ok().map(|b| (PathBuf::from(p), b))).collect();
        Checkout::classify(known, &files)
    }

    /// Classifies the checkout's base files (path relative to the checkout, contents).
    pub fn classify(known: &KnownFiles, files: &[(PathBuf, Vec<u8>)]) -> Checkout {
        let origins: Vec<FileOrigin> =
            files.iter().filter(|(p, _)| known.is_base_file(p)).map(|(p, bytes)| known.origin(p, bytes)).collect();
        let mut common: Option<BTreeSet<Version>> = None;
        for o in origins.iter().filter(|o| o.known()) {
            let set = o.releases();
            common = Some(match common {
                None => set,
                Some(c) => c.intersection(&set).cloned().collect(),
            });
        }
        let unknown = || origins.iter().filter(|o| !o.known());
        Checkout {
            edited: unknown().filter(|o| known.is_written(&o.path)).map(|o| o.path.clone()).collect(),
            local: unknown().filter(|o| !known.is_written(&o.path)).map(|o| o.path.clone()).collect(),
            releases: common.unwrap_or_default().into_iter().collect(),
            files: origins,
        }
    }

    /// The cross-check against the release the images say: `None` when the files agree (or say
    /// nothing), else what an operator should read.
    pub fn disagreement(&self, images: &Version) -> Option<String> {
        let recognized = self.files.iter().any(FileOrigin::known);
        if !recognized || self.releases.contains(images) {
            return None;
        }
        if self.releases.is_empty() {
            let mut by: BTreeSet<String> = BTreeSet::new();
            for o in self.files.iter().filter(|o| o.known()) {
                let names: Vec<String> = o.releases().iter().map(Version::to_string).collect();
                by.insert(format!("{} is {}'s", o.path.display(), names.join("/")));
            }
            return Some(format!(
                "the images say {images}, the checkout's files belong to different releases: {}",
                by.into_iter().collect::<Vec<_>>().join("; ")
            ));
        }
        let names: Vec<String> = self.releases.iter().map(Version::to_string).collect();
        Some(format!("the images say {images}, the checkout's files say {}", names.join(" or ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn every_tag_of_3_x_is_known_by_the_hashes_of_its_files() {
        let l = LoadedCatalog::embedded().unwrap();
        let known = KnownFiles::new(&l, None);
        let tags: Vec<&Version> = l.catalog.upstream.keys().collect();
        assert_eq!(tags.len(), 32, "3.0.0 … 3.7.11");
        for (tag, files) in &l.catalog.upstream {
            assert!(files.contains_key("docker-compose.yml") && files.len() >= 10, "{tag}: {files:?}");
            for (path, sha) in files {
                let hit = known.by_path[path.as_str()].get(sha).unwrap();
                assert!(hit.0.contains(tag), "{tag} {path}");
            }
            // docker-compose.yml names the tag's images: its hash is the tag's alone.
            let dc = &known.by_path["docker-compose.yml"][&files["docker-compose.yml"]];
            assert_eq!(dc.0, vec![tag.clone()]);
        }
    }

    #[test]
    fn the_tools_own_files_are_recognized_and_an_edit_is_not() {
        let l = LoadedCatalog::embedded().unwrap();
        let reg = Some("testbed.local");
        let known = KnownFiles::new(&l, reg);
        let t = l.template_files(&v("3.6.5")).unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> =
            t.iter().map(|f| (f.path.clone(), render(f, reg).unwrap().into_bytes())).collect();
        let c = Checkout::classify(&known, &files);
        assert_eq!(c.releases, vec![v("3.6.5")]);
        assert!(c.edited.is_empty());
        assert_eq!(c.disagreement(&v("3.6.5")), None);
        assert_eq!(c.disagreement(&v("3.7.11")).unwrap(), "the images say 3.7.11, the checkout's files say 3.6.5");
        let mut edited = files.clone();
        edited[0].1.extend_from_slice(b"# mine\n");
        let c = Checkout::classify(&known, &edited);
        assert_eq!(c.edited, vec![edited[0].0.clone()]);
        assert_eq!(c.releases, vec![v("3.6.5")], "the other files still say 3.6.5");
    }

    #[test]
    fn a_patch_without_templates_has_its_lines_files_with_its_images() {
        let l = LoadedCatalog::embedded().unwrap();
        let own = l.template_files(&v("3.6.5")).unwrap();
        let patch = l.release_files(&v("3.6.2")).unwrap();
        assert_eq!(own.len(), patch.len());
        for (a, b) in own.iter().zip(&patch) {
            assert_eq!(a.contents.replace("mender-3.6.5", "mender-3.6.2"), b.contents, "{}", a.path.display());
        }
        let known = KnownFiles::new(&l, None);
        let dc = patch.iter().find(|f| f.path == Path::new("docker-compose.yml")).unwrap();
        assert_eq!(known.origin(&dc.path, dc.contents.as_bytes()).tool, vec![v("3.6.2")]);
        let p402 = l.release_files(&v("4.0.2")).unwrap();
        let dc = p402.iter().find(|f| f.path == Path::new("docker-compose.yml")).unwrap();
        assert!(dc.contents.contains("mendersoftware/deviceauth:v4.0.2") && !dc.contents.contains(":v4.0.4"));
    }

    #[test]
    fn an_upstream_hash_names_its_tags() {
        let l = LoadedCatalog::embedded().unwrap();
        let known = KnownFiles::new(&l, None);
        let sha = &l.catalog.upstream[&v("3.6.2")]["common.yml"];
        let m = &known.by_path["common.yml"][sha];
        let tags: Vec<String> = m.0.iter().map(Version::to_string).collect();
        assert!(tags.contains(&"3.5.0".to_string()) && tags.contains(&"3.7.11".to_string()), "{tags:?}");
        assert!(!tags.contains(&"3.4.0".to_string()), "3.5 changed common.yml");
    }
}
