//! `images`: builds every test-bed image under a prefix (default `testbed.local`): the stand-in
//! base, one stand-in per Mender service and release (plus `-broken` variants), and the
//! third-party images (FerretDB as mongo, SeaweedFS behind a MinIO front, Debian's nats-server).
//! An image whose inputs did not change since the last build is skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::query_parameters::{ListImagesOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;
use mender_compose_upgrade::catalog::{Catalog, ImageRef, LoadedCatalog, Role};
use mender_compose_upgrade::engine::docker::{ContextEntry, build_image, connect, context_tar};
use semver::Version;
use sha2::{Digest, Sha256};

use crate::identity::Identity;

const HASH_LABEL: &str = "mcu.testbed.inputs";

/// The releases the test bed runs: every landing release of 3.x and 4.x, and 3.6.2 (a patch that
/// is no landing release, for the tests of a stack on one).
pub const DEFAULT_RELEASES: &str = "3.0.2,3.1.1,3.2.2,3.3.2,3.4.0,3.5.1,3.6.2,3.6.5,3.7.11,4.0.4,4.1.3";
/// The `testbed.local/mongo:<major>` images built besides those the releases name: each major of
/// the road 4.4 → 5.0 → 6.0 → 7.0 → 8.0 (`scripts/testbed` builds a FerretDB for each).
const MONGO_MAJORS: [&str; 5] = ["4.4", "5.0", "6.0", "7.0", "8.0"];

pub struct ImagesArgs {
    pub prefix: String,
    pub releases: Vec<Version>,
    /// Go-built binaries: ferretdb-<major> for each of `MONGO_MAJORS`, mongodump, mongorestore, weed.
    pub bin_dir: PathBuf,
    /// testbed/images: Dockerfiles and scripts of the third-party images.
    pub recipes: PathBuf,
    /// A hash of everything the stand-in binary is built from (sources, lock file, toolchain),
    /// from `scripts/testbed`: the same sources built in another checkout (a CI clone) give a
    /// binary that behaves the same but differs in layout (cargo's metadata hash covers the
    /// package's path), and must not rebuild every image.
    pub sources: Option<String>,
}

impl ImagesArgs {
    pub fn parse(args: &[String]) -> Result<ImagesArgs> {
        let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
        let releases = get("--releases").unwrap_or_else(|| DEFAULT_RELEASES.into());
        Ok(ImagesArgs {
            prefix: get("--prefix").unwrap_or_else(|| "testbed.local".into()),
            releases: releases.split(',').map(Version::parse).collect::<Result<_, _>>()?,
            bin_dir: PathBuf::from(get("--bin-dir").context("--bin-dir is required")?),
            recipes: PathBuf::from(get("--recipes").context("--recipes is required")?),
            sources: get("--sources"),
        })
    }
}

struct Builder {
    docker: Docker,
    built: HashMap<String, String>,
    count: (usize, usize),
}

impl Builder {
    /// Builds unless every tag already carries this input hash.
    async fn ensure(
        &mut self,
        tags: Vec<String>,
        inputs: &str,
        context: impl FnOnce() -> Result<Vec<u8>>,
        args: HashMap<String, String>,
    ) -> Result<()> {
        if tags.iter().all(|t| self.built.get(t).is_some_and(|h| h == inputs)) {
            self.count.1 += 1;
            return Ok(());
        }
        let labels = HashMap::from([(HASH_LABEL.to_string(), inputs.to_string()), ("mcu.testbed".into(), "1".into())]);
        build_image(&self.docker, context()?, &tags, &labels, &args, true).await?;
        for t in tags {
            self.built.insert(t, inputs.to_string());
        }
        self.count.0 += 1;
        Ok(())
    }

    fn is_current(&self, tags: &[String], inputs: &str) -> bool {
        tags.iter().all(|t| self.built.get(t).is_some_and(|h| h == inputs))
    }

    /// Builds small images several at a time (the daemon handles concurrent builds).
    async fn build_all(&mut self, jobs: Vec<Job>) -> Result<()> {
        let (todo, current): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| !self.is_current(&j.tags, &j.inputs));
        self.count.1 += current.len();
        let docker = &self.docker;
        let results: Vec<Result<Job>> = futures_util::stream::iter(todo)
            .map(|j| async move {
                let labels =
                    HashMap::from([(HASH_LABEL.to_string(), j.inputs.clone()), ("mcu.testbed".into(), "1".into())]);
                build_image(docker, j.context.clone(), &j.tags, &labels, &HashMap::new(), true).await?;
                Ok(j)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for j in results {
            let j = j?;
            for t in j.tags {
                self.built.insert(t, j.inputs.clone());
            }
            self.count.0 += 1;
        }
        Ok(())
    }
}

struct Job {
    tags: Vec<String>,
    inputs: String,
    context: Vec<u8>,
}

fn sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..12])
}

pub async fn run(a: ImagesArgs) -> Result<()> {
    let docker = connect().await?;
    let built = existing(&docker).await?;
    let mut b = Builder { docker, built, count: (0, 0) };
    let catalog = LoadedCatalog::embedded()?.catalog;
    let exe = std::fs::read("/proc/self/exe").context("cannot read the stand-in binary")?;
    let repo = format!("{}/mender-standin", a.prefix);
    // The sources' tag: the base image built from the same sources in another checkout.
    let src_tag = a.sources.as_ref().map(|s| format!("{repo}:src-{s}"));
    let exe_hash = match src_tag.as_ref().and_then(|t| b.built.get(t)) {
        Some(key) => key.clone(),
        None => sha(&[&exe]),
    };
    let base = format!("{repo}:{exe_hash}");
    let tags: Vec<String> =
        [Some(base.clone()), Some(format!("{repo}:latest")), src_tag].into_iter().flatten().collect();
    if b.is_current(std::slice::from_ref(&base), &exe_hash) {
        for t in tags.iter().filter(|t| !b.is_current(std::slice::from_ref(t), &exe_hash)) {
            let tag = t.rsplit_once(':').map_or("latest", |(_, tag)| tag);
            b.docker.tag_image(&base, Some(TagImageOptionsBuilder::new().repo(&repo).tag(tag).build())).await?;
        }
        b.count.1 += 1;
    } else {
        let labels = HashMap::from([(HASH_LABEL.to_string(), exe_hash.clone()), ("mcu.testbed".into(), "1".into())]);
        build_image(&b.docker, base_context(&exe)?, &tags, &labels, &HashMap::new(), true).await?;
        b.count.0 += 1;
    }
    for t in &tags {
        b.built.insert(t.clone(), exe_hash.clone());
    }
    drop(exe);
    third_party(&mut b, &a, &catalog, &exe_hash).await?;
    standins(&mut b, &a, &catalog, &base).await?;
    // Earlier base images' tags keep them (26 MB each) alive once every image built on them was
    // rebuilt on this one; `scripts/testbed` prunes what that leaves dangling.
    for (t, _) in b.built.iter().filter(|(t, h)| t.starts_with(&format!("{repo}:")) && *h != &exe_hash) {
        let _ = b.docker.remove_image(t, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
    }
    eprintln!("test-bed images: {} built, {} unchanged", b.count.0, b.count.1);
    Ok(())
}

async fn existing(docker: &Docker) -> Result<HashMap<String, String>> {
    let filters = HashMap::from([("label", vec![HASH_LABEL])]);
    let list = docker.list_images(Some(ListImagesOptionsBuilder::new().filters(&filters).build())).await?;
    let mut out = HashMap::new();
    for img in list {
        if let Some(h) = img.labels.get(HASH_LABEL) {
            for t in img.repo_tags {
                out.insert(t, h.clone());
            }
        }
    }
    Ok(out)
}

fn base_context(exe: &[u8]) -> Result<Vec<u8>> {
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\n";
    Ok(context_tar(&[
        ContextEntry::File { path: "Dockerfile".into(), mode: 0o644, data: dockerfile.into() },
        ContextEntry::Dir { path: "rootfs/tmp".into(), mode: 0o1777 },
        ContextEntry::File {
            path: "rootfs/etc/passwd".into(),
            mode: 0o644,
            data: b"root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n".to_vec(),
        },
        ContextEntry::File {
            path: "rootfs/etc/group".into(),
            mode: 0o644,
            data: b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        },
        ContextEntry::File { path: "rootfs/usr/bin/mender-standin".into(), mode: 0o755, data: exe.to_vec() },
    ])?)
}

/// What each stand-in image runs as, mirroring the real image's entrypoint.
fn entrypoint(kind: &str, role: Role) -> (Vec<String>, Vec<String>, bool) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match (kind, role) {
        (_, Role::Gateway) => (s(&["/usr/bin/traefik"]), vec![], true),
        (_, Role::Gui) => (s(&["/usr/bin/gui"]), vec![], true),
        (_, Role::Search) => (s(&["/usr/bin/opensearch"]), vec![], false),
        ("workflows-worker", _) => {
            (s(&["/usr/bin/workflows", "--config", "/etc/workflows/config.yaml"]), s(&["worker"]), false)
        }
        ("create-artifact-worker", _) => {
            (s(&["/usr/bin/workflows", "--config", "/etc/workflows/config.yaml", "worker"]), vec![], false)
        }
        (k, _) => {
            (vec![format!("/usr/bin/{k}"), "--config".into(), format!("/etc/{k}/config.yaml")], s(&["server"]), false)
        }
    }
}

async fn standins(b: &mut Builder, a: &ImagesArgs, catalog: &Catalog, base: &str) -> Result<()> {
    // One identity per distinct image; the first service using an image names it.
    let mut images: BTreeMap<String, Identity> = BTreeMap::new();
    for v in &a.releases {
        let r = catalog.release(v).with_context(|| format!("no release {v} in the catalog"))?;
        for (name, f) in &r.services {
            if matches!(f.role, Role::Mongo | Role::Nats | Role::Storage) {
                continue;
            }
            images.entry(f.image.clone()).or_insert_with(|| Identity {
                service: name.clone(),
                release: v.clone(),
                broken: false,
            });
        }
    }
    let mut jobs = Vec::new();
    for (image, id) in images {
        let facts =
            &catalog.release(&id.release).and_then(|r| r.services.get(&id.service)).context("identity")?.clone();
        let image_ref = ImageRef::parse(&image, None);
        let kind = image_ref.short_name().to_string();
        // Mender's images have a `-broken` variant (never healthy), the gateway a
        // `-broken-gateway` one (healthy, but the management API's routers dropped).
        let variants: &[bool] = if image_ref.repository.starts_with("mendersoftware/") || facts.role == Role::Gateway {
            &[false, true]
        } else {
            &[false]
        };
        for &broken in variants {
            let id = Identity { broken, ..id.clone() };
            let (entry, cmd, root) = entrypoint(&kind, facts.role);
            let gui_port = crate::identity::gui_port(&id.release);
            let suffix = match (broken, facts.role) {
                (false, _) => "",
                (true, Role::Gateway) => "-broken-gateway",
                (true, _) => "-broken",
            };
            let tag = format!("{}{suffix}", image_ref.qualified(Some(&a.prefix)));
            let identity = serde_json::to_vec_pretty(&id)?;
            let context = standin_context(base, &identity, &kind, &entry, &cmd, root, facts.role, gui_port)?;
            let inputs = sha(&[base.as_bytes(), &identity, entry.join(" ").as_bytes(), cmd.join(" ").as_bytes()]);
            jobs.push(Job { tags: vec![tag], inputs, context });
        }
    }
    b.build_all(jobs).await
}

#[allow(clippy::too_many_arguments)] // one call site; the parts of one image
fn standin_context(
    base: &str,
    identity: &[u8],
    kind: &str,
    entry: &[String],
    cmd: &[String],
    root: bool,
    role: Role,
    gui_port: u16,
) -> Result<Vec<u8>> {
    let program = entry[0].trim_start_matches('/').to_string();
    let mut df = format!("FROM {base}\nCOPY rootfs/ /\n");
    if role == Role::Gui {
        // The real images' checks: 3.x nginx on 80; 4.x `wget 127.0.0.1:8090/ui/`
        // (mender-server@v4.0.4:frontend/Dockerfile).
        let url = if gui_port == 80 {
            "http://127.0.0.1:80/".to_string()
        } else {
            format!("http://127.0.0.1:{gui_port}/ui/")
        };
        df.push_str(&format!(
            "HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD [\"/usr/bin/mender-standin\", \"healthcheck\", \"{url}\"]\n"
        ));
    }
    if !root {
        df.push_str("USER 65534:65534\n");
    }
    df.push_str(&format!(
        "EXPOSE 8080\nENTRYPOINT {}\nCMD {}\n",
        serde_json::to_string(entry)?,
        serde_json::to_string(cmd)?
    ));
    let conf_dir = if kind.contains("workflows") || kind == "create-artifact-worker" { "workflows" } else { kind };
    Ok(context_tar(&[
        ContextEntry::File { path: "Dockerfile".into(), mode: 0o644, data: df.into_bytes() },
        ContextEntry::File { path: "rootfs/etc/mender-standin.json".into(), mode: 0o644, data: identity.to_vec() },
        ContextEntry::File {
            path: format!("rootfs/etc/{conf_dir}/config.yaml"),
            mode: 0o644,
            data: b"# stand-in: settings come from the environment\n".to_vec(),
        },
        ContextEntry::Symlink { path: format!("rootfs/{program}"), target: "mender-standin".into() },
    ])?)
}

/// mongo, minio and nats images for the releases' tags.
async fn third_party(b: &mut Builder, a: &ImagesArgs, catalog: &Catalog, exe_hash: &str) -> Result<()> {
    let mut wanted: BTreeMap<String, Vec<ImageRef>> = BTreeMap::new();
    for v in &a.releases {
        let r = catalog.release(v).with_context(|| format!("no release {v} in the catalog"))?;
        for f in r.services.values() {
            let recipe = match f.role {
                Role::Mongo => "mongo",
                Role::Storage => "minio",
                Role::Nats => "nats",
                _ => continue,
            };
            let img = ImageRef::parse(&f.image, None);
            let list = wanted.entry(recipe.to_string()).or_default();
            if !list.contains(&img) {
                list.push(img);
            }
        }
    }
    // Every MongoDB major the tool steps through, whether or not a release built here ships it.
    let mongo = wanted.entry("mongo".to_string()).or_default();
    for major in MONGO_MAJORS {
        let img = ImageRef::parse(&format!("mongo:{major}"), None);
        if !mongo.contains(&img) {
            mongo.push(img);
        }
    }
    for (recipe, images) in wanted {
        let dir = a.recipes.join(&recipe);
        for img in images {
            let mut args = HashMap::from([("BASE".to_string(), format!("{}/debian:bookworm", a.prefix))]);
            if recipe == "minio" {
                args.insert("STANDIN".to_string(), format!("{}/mender-standin:{exe_hash}", a.prefix));
            }
            if recipe == "mongo" {
                args.insert("MONGO_MAJOR".to_string(), img.tag.clone().unwrap_or_default());
            }
            let (files, inputs) = recipe_files(&dir, &a.bin_dir, &recipe, &args, exe_hash)?;
            let tag = img.qualified(Some(&a.prefix));
            b.ensure(vec![tag], &inputs, || read_context(&files), args).await?;
        }
    }
    Ok(())
}

/// The recipe directory plus the binaries its Dockerfile copies from `bin/`: (context path, file)
/// pairs and a hash of their contents.
fn recipe_files(
    dir: &Path,
    bin_dir: &Path,
    recipe: &str,
    args: &HashMap<String, String>,
    exe_hash: &str,
) -> Result<(Vec<(String, PathBuf)>, String)> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut names: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("recipe {}", dir.display()))?.collect::<Result<_, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        files.push((e.file_name().to_string_lossy().into(), e.path()));
    }
    let mut bins: Vec<String> = match recipe {
        "mongo" => vec!["mongodump".into(), "mongorestore".into()],
        "minio" => vec!["weed".into()],
        _ => vec![],
    };
    if let Some(major) = args.get("MONGO_MAJOR") {
        bins.push(format!("ferretdb-{major}"));
    }
    for name in bins {
        let path = bin_dir.join(&name);
        if !path.exists() {
            bail!("{} is missing: run scripts/testbed", path.display());
        }
        files.push((format!("bin/{name}"), path));
    }
    let mut h = Sha256::new();
    h.update(recipe.as_bytes());
    if recipe == "minio" {
        h.update(exe_hash.as_bytes());
    }
    for (rel, path) in &files {
        h.update(rel.as_bytes());
        let mut f = std::fs::File::open(path)?;
        std::io::copy(&mut f, &mut h)?;
    }
    let sorted: BTreeMap<_, _> = args.iter().collect();
    for (k, v) in sorted {
        h.update(format!("{k}={v}").as_bytes());
    }
    Ok((files, hex::encode(&h.finalize()[..12])))
}

fn read_context(files: &[(String, PathBuf)]) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    for (rel, path) in files {
        let data = std::fs::read(path)?;
        let mode = if rel.starts_with("bin/") || data.starts_with(b"#!") { 0o755 } else { 0o644 };
        entries.push(ContextEntry::File { path: rel.clone(), mode, data });
    }
    Ok(context_tar(&entries)?)
}
