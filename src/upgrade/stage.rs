//! A MongoDB major stage ([`crate::plan::HopKind::Mongo`]): the writers stopped, the
//! featureCompatibilityVersion checked, mongo stopped cleanly, its data volume copied to
//! `<volume>-<major>`, the compose files pointed at the copy with the next major's image, mongo
//! started and its featureCompatibilityVersion raised, everything started, the gates. The original
//! volume is never written: the previous compose files are the stage's rollback
//! (migrate-3.7-to-4.x.md §2.1.4; mongodb docs `6.0-upgrade-standalone`, `7.0-upgrade-standalone`).

use std::path::PathBuf;

use compose_file::{image_sites, replace_images, set_volume_name};
use serde_json::Value;

use super::error::StepError;
use super::files;
use super::rewrite::{FileEdit, ProjectFile, Rewrite, Why};
use super::runtime::mongo_report;
use super::{Ctx, ProjectRecord, Run, UpgradeState};
use crate::catalog::ImageRef;
use crate::plan::{Hop, MongoUpgrade};
use crate::util::{Perm, write_atomic};

/// Seconds mongod gets for a clean shutdown before the stage goes on (Docker's default 10 s can
/// turn a large checkpoint into an unclean shutdown: migrate-3.7-to-4.x.md §2.1.2 step 1).
pub const MONGO_STOP_SECS: &str = "120";

/// The MongoDB data volume as the compose files name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVolume {
    /// The compose key (`mender-db`).
    pub key: String,
    /// Its Docker name (`mender-db`, `menderproduction-mender-db`).
    pub name: String,
}

/// Why the stage cannot find the MongoDB data volume in the compose files.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeError {
    /// No compose file mounts a named volume at `/data/db` for the service.
    #[error("no compose file mounts a named volume at /data/db for {0}")]
    NoMount(String),
    /// The volume has no explicit Docker name (`name:` or `external: name:`), so it cannot be
    /// pointed at a copy without compose creating a new empty one.
    #[error(
        "volume {0} has no Docker name in the compose files; declare it `external: true` with a `name:` as the production template does"
    )]
    NoName(String),
}

impl From<VolumeError> for StepError {
    fn from(e: VolumeError) -> StepError {
        StepError::Fcv(format!("the data volume: {e}"))
    }
}

/// Pure: the data volume of `service` in `files` (later files override earlier ones).
///
/// # Errors
/// [`VolumeError`] when no named volume is mounted at `/data/db`, or it has no Docker name.
pub fn data_volume(service: &str, files: &[ProjectFile]) -> Result<DataVolume, VolumeError> {
    let docs: Vec<Value> =
        files.iter().filter_map(|f| f.contents.as_deref()).filter_map(|t| serde_saphyr::from_str(t).ok()).collect();
    let mut key = None;
    for d in &docs {
        for m in d["services"][service]["volumes"].as_array().into_iter().flatten() {
            let (source, target) = match m {
                Value::String(s) => {
                    let mut parts = s.split(':');
                    (parts.next().map(str::to_string), parts.next().map(str::to_string))
                }
                _ => (m["source"].as_str().map(str::to_string), m["target"].as_str().map(str::to_string)),
            };
            if let (Some(s), Some("/data/db")) = (source, target.as_deref())
                && !s.starts_with(['.', '/', '~', '$'])
            {
                key = Some(s);
            }
        }
    }
    let key = key.ok_or_else(|| VolumeError::NoMount(service.to_string()))?;
    let mut name = None;
    for d in &docs {
        let v = &d["volumes"][&key];
        if let Some(n) = v["name"].as_str().or_else(|| v["external"]["name"].as_str()) {
            name = Some(n.to_string());
        }
    }
    let name = name.ok_or_else(|| VolumeError::NoName(key.clone()))?;
    Ok(DataVolume { key, name })
}

/// Pure: the copy's name for `major`: `mender-db-6.0` from `mender-db` or from an earlier
/// stage's `mender-db-5.0` (one suffix, never `mender-db-5.0-6.0`).
pub fn copy_name(volume: &str, majors: &[String], major: &str) -> String {
    let base = majors.iter().find_map(|m| volume.strip_suffix(&format!("-{m}"))).unwrap_or(volume);
    format!("{base}-{major}")
}

/// The compose files as they were before the stage (the saved copies once taken, else live).
fn before_files(project: &ProjectRecord, dir: &std::path::Path) -> Vec<ProjectFile> {
    let rels: Vec<PathBuf> = project.config_files.iter().map(|p| files::relative(project, p)).collect();
    let saved = files::before(dir, &rels);
    if saved.iter().any(|f| f.contents.is_some()) {
        saved
    } else {
        rels.iter().map(|r| files::read(project, r)).collect()
    }
}

fn stage_of(hop: &Hop) -> Result<&MongoUpgrade, StepError> {
    hop.mongo.as_ref().ok_or_else(|| StepError::Fcv("the stage names no MongoDB major".into()))
}

/// The mongo service of the stage's release.
fn service(ctx: &Ctx<'_>, hop: &Hop) -> Result<String, StepError> {
    let (_, to) = super::hop::releases(ctx, hop)?;
    Ok(to.mongo.service.clone())
}

/// The volume the stage copies from and the one it copies to.
///
/// # Errors
/// The compose files do not name the data volume.
pub fn volumes(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(DataVolume, String), StepError> {
    let m = stage_of(hop)?;
    let svc = service(ctx, hop)?;
    let vol = data_volume(&svc, &before_files(&st.project, &files::hop_dir(st, st.hop)))?;
    let copy = copy_name(&vol.name, &ctx.catalog.catalog.mongo_majors, &m.to_major);
    Ok((vol, copy))
}

/// Checks the featureCompatibilityVersion is the running major (while mongo still runs), then
/// stops mongo cleanly. A resumed step finds mongo stopped and stops it again.
pub async fn stop_mongo(ctx: &Ctx<'_>, run: &mut Run, hop: &Hop) -> Result<(), StepError> {
    let m = stage_of(hop)?.clone();
    let svc = service(ctx, hop)?;
    let project = run.st().project.clone();
    let observed = ctx.runtime.observe(&project.name).await?;
    let running = observed.containers.iter().any(|c| c.service == svc && c.running);
    if running {
        let network = observed.stack.network.clone().ok_or_else(|| StepError::NoNetwork(svc.clone()))?;
        let report = mongo_report(ctx.runtime, &network, &svc, false).await?;
        let fcv = report.fcv.unwrap_or_default();
        if fcv != m.from_major {
            return Err(StepError::Fcv(format!(
                "featureCompatibilityVersion is {fcv:?}, the stage needs {} (the running major)",
                m.from_major
            )));
        }
        ctx.progress.step("mongo", format!("featureCompatibilityVersion {fcv}: stopping {svc} cleanly"));
    }
    ctx.runtime.compose(&project, &["stop", "-t", MONGO_STOP_SECS, svc.as_str()]).await?;
    Ok(())
}

/// Copies the data volume to `<volume>-<major>` (emptied first: a resumed copy starts over). A
/// staging copy upgrades its own throwaway volume in place: its files' volume names are not the
/// ones its containers mount.
pub async fn copy(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    if st.project.staging.is_some() {
        ctx.progress.step("copy", "staging copy: its own throwaway volume is upgraded in place");
        return Ok(());
    }
    let (vol, to) = volumes(ctx, st, hop)?;
    ctx.progress.step("copy", format!("copying volume {} to {to} (the original stays as it is)", vol.name));
    let c = ctx.runtime.copy_volume(&vol.name, &to).await?;
    ctx.progress
        .step("copy", format!("{}, {} copied", crate::util::count(c.files, "file"), crate::util::size(c.bytes)));
    Ok(())
}

/// Pure: the stage's edits of `files`: the mongo image (where the last file sets it) and, unless
/// `volume` is `None`, the data volume's Docker name (where the last file names it).
///
/// # Errors
/// A compose file that cannot be parsed, or no file that sets the image or names the volume.
pub fn edits(
    files: &[ProjectFile],
    service: &str,
    image: &str,
    volume: Option<(&DataVolume, &str)>,
) -> Result<Vec<FileEdit>, StepError> {
    let mut after: Vec<Option<String>> = files.iter().map(|f| f.contents.clone()).collect();
    let sets_image = |t: &str| image_sites(t).is_ok_and(|s| s.iter().any(|s| s.service == service));
    let i = after
        .iter()
        .rposition(|t| t.as_deref().is_some_and(sets_image))
        .ok_or_else(|| StepError::Fcv(format!("no compose file sets the image of {service}")))?;
    if let Some(t) = after[i].as_mut() {
        *t = replace_images(t, |s, _| (s == service).then(|| image.to_string()))
            .map_err(|e| StepError::Fcv(format!("{}: {e}", files[i].path.display())))?;
    }
    if let Some((vol, name)) = volume {
        let names = |t: &str| compose_file::volume_name_site(t, &vol.key).is_ok_and(|s| s.is_some());
        let j = after
            .iter()
            .rposition(|t| t.as_deref().is_some_and(names))
            .ok_or_else(|| VolumeError::NoName(vol.key.clone()))?;
        if let Some(t) = after[j].as_mut() {
            *t = set_volume_name(t, &vol.key, name)
                .map_err(|e| StepError::Fcv(format!("{}: {e}", files[j].path.display())))?;
        }
    }
    Ok(files
        .iter()
        .zip(after)
        .filter_map(|(f, a)| {
            let a = a?;
            (f.contents.as_deref() != Some(a.as_str())).then(|| FileEdit {
                path: f.path.clone(),
                before: f.contents.clone(),
                after: a,
                why: Why::Image,
            })
        })
        .collect())
}

/// Points the compose files at the next major's image and the copied volume; the record of the
/// edits is written before the files, so that a rollback after a kill finds what to put back.
pub fn rewrite(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Result<(), StepError> {
    let svc = service(ctx, hop)?;
    let dir = files::hop_dir(st, st.hop);
    let rels: Vec<PathBuf> = st.project.config_files.iter().map(|p| files::relative(&st.project, p)).collect();
    files::save_before(&st.project, &dir, &rels)?;
    let current = files::before(&dir, &rels);
    let image = hop.mongo_image.clone().ok_or_else(|| StepError::Fcv("the stage names no mongo image".into()))?;
    let image = ImageRef::parse(&image, None).qualified(st.registry.as_deref());
    // A staging copy's containers mount its own volumes whatever its files name: image only.
    let vols = if st.project.staging.is_none() { Some(volumes(ctx, st, hop)?) } else { None };
    let volume = vols.as_ref().map(|(v, n)| (v, n.as_str()));
    let edits = edits(&current, &svc, &image, volume)?;
    let record = Rewrite { edits, ..Default::default() };
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| StepError::file(files::REWRITE)(e.into()))?;
    write_atomic(&dir.join(files::REWRITE), &bytes, Perm::Private).map_err(StepError::file("writing rewrite.json"))?;
    for e in &record.edits {
        ctx.progress.step("diff", super::rewrite::diff(e));
        write_atomic(&st.project.working_dir.join(&e.path), e.after.as_bytes(), Perm::Keep)
            .map_err(StepError::file(format!("writing {}", e.path.display())))?;
    }
    Ok(())
}

/// What the operator does once the stage is done: the original volume stays until removed.
pub fn leftover(ctx: &Ctx<'_>, st: &UpgradeState, hop: &Hop) -> Option<String> {
    if st.project.staging.is_some() {
        return None;
    }
    let (vol, copy) = volumes(ctx, st, hop).ok()?;
    let m = hop.mongo.as_ref()?;
    Some(format!(
        "MongoDB {} now runs on volume {copy}; volume {} keeps the data as it was on {} (the stage's rollback copy). Once you no longer need it: docker volume rm {}",
        m.to_major, vol.name, m.from_major, vol.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "services:\n  mender-mongo:\n    image: mongo:4.4\n";
    const PROD: &str = "services:\n  mender-mongo:\n    volumes:\n      - mender-db:/data/db:rw\nvolumes:\n  # the data\n  mender-db:\n    external:\n      name: mender-db\n";

    fn f(path: &str, text: &str) -> ProjectFile {
        ProjectFile { path: path.into(), contents: Some(text.into()) }
    }

    #[test]
    fn the_data_volume_is_found_by_its_mount_and_name() {
        let files = [f("docker-compose.yml", BASE), f("prod.yml", PROD)];
        assert_eq!(
            data_volume("mender-mongo", &files).unwrap(),
            DataVolume { key: "mender-db".into(), name: "mender-db".into() }
        );
        let unnamed = "services:\n  mender-mongo:\n    volumes:\n      - db:/data/db\nvolumes:\n  db: {}\n";
        assert_eq!(data_volume("mender-mongo", &[f("a.yml", unnamed)]), Err(VolumeError::NoName("db".into())));
        assert_eq!(data_volume("mender-mongo", &[f("a.yml", BASE)]), Err(VolumeError::NoMount("mender-mongo".into())));
    }

    #[test]
    fn the_copy_is_named_after_the_base_volume_and_the_major() {
        let majors: Vec<String> = ["4.4", "5.0", "6.0"].iter().map(|s| s.to_string()).collect();
        assert_eq!(copy_name("mender-db", &majors, "5.0"), "mender-db-5.0");
        assert_eq!(copy_name("mender-db-5.0", &majors, "6.0"), "mender-db-6.0");
    }

    #[test]
    fn the_edits_change_the_image_and_the_volume_name_only() {
        let files = [f("docker-compose.yml", BASE), f("prod.yml", PROD)];
        let vol = data_volume("mender-mongo", &files).unwrap();
        let e = edits(&files, "mender-mongo", "mongo:5.0", Some((&vol, "mender-db-5.0"))).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].after, BASE.replace("mongo:4.4", "mongo:5.0"));
        assert_eq!(e[1].after, PROD.replace("name: mender-db", "name: mender-db-5.0"));
        // Staging: the image only.
        let e = edits(&files, "mender-mongo", "mongo:5.0", None).unwrap();
        assert_eq!(e.len(), 1);
        // Already applied (a resumed rewrite from the saved files is the same; from the new ones, nothing).
        let done = [f("docker-compose.yml", &e[0].after), f("prod.yml", PROD)];
        assert!(edits(&done, "mender-mongo", "mongo:5.0", None).unwrap().is_empty());
    }
}
