//! The upgrade plan: a pure function of where the stack is, the catalog, and where the operator
//! wants to go. `plan` prints it; `upgrade` executes exactly this value.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::Serialize;

use crate::catalog::{Catalog, DataCheck, ImageRef, ManualStep, Release, SupportStatus, line_name};

pub mod saved;

/// Why no plan can be made for the target; all are usage errors (exit 2), nothing is touched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// The target is no version the catalog knows (the target as given, then the releases known).
    #[error("{0} is not a Mender Server version the catalog knows (known: {1})")]
    UnknownTarget(String, String),
    /// The target's line is not a Mender Server line (`3.8.x` tags bundle the client only), with the
    /// catalog's note on the line.
    #[error("{0} is not a Mender Server release: {1}")]
    NotServerRelease(Version, String),
    /// The target is a tag of a known line whose facts the catalog lacks; the line's stop release to
    /// aim at instead.
    #[error("the catalog knows {0} exists but has no facts for it (images, schema versions); target {1} instead")]
    NoFacts(Version, Version),
    /// The running release (observed or `--from`) has no facts in the catalog.
    #[error("the stack runs {0}, which the catalog has no facts for")]
    UnknownCurrent(Version),
    /// The target is older than the running release: Mender's migrations only go forward.
    #[error(
        "{to} is older than the running release {from}: Mender migrations only go forward, so a downgrade means restoring a backup taken on {to}"
    )]
    Downgrade {
        /// The running release.
        from: Version,
        /// The older target.
        to: Version,
    },
    /// The target is the running release.
    #[error("the stack already runs {0}")]
    SameVersion(Version),
    /// No chain of documented hops leads from the line (`3.1`) to the target.
    #[error("no documented upgrade path leads from line {0} towards {1}")]
    NoPath(String, Version),
    /// The target would downgrade infrastructure images the running release already has.
    #[error("{0}")]
    InfraDowngrade(Box<InfraDowngrade>),
}

/// A hop that would land on a release with older infrastructure images than the running one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("landing on {to} from {from} would downgrade {}: {to} ships older infrastructure than {from}", .images.join(", "))]
pub struct InfraDowngrade {
    /// The release the hop starts from.
    pub from: Version,
    /// The release it would land on.
    pub to: Version,
    /// "traefik v3.6.10 → 3.6.2", one per image.
    pub images: Vec<String>,
    /// The release to target instead (the line's newest).
    pub instead: Version,
}

impl From<PlanError> for crate::exit::Failure {
    fn from(e: PlanError) -> crate::exit::Failure {
        let next = match &e {
            PlanError::Downgrade { to, .. } => format!("to go back to {to}, restore a backup taken on {to}"),
            PlanError::SameVersion(_) => "nothing to do; `status` shows the next possible hops".to_string(),
            PlanError::NoFacts(_, stop) => format!("plan to {stop}, the line's newest release the catalog knows"),
            PlanError::NotServerRelease(v, _) => {
                format!("the server line after 3.7 is 4.0: plan to 4.0.4 instead of {}", line_name(v))
            }
            PlanError::UnknownCurrent(_) => "pass --from with the release the stack really runs".to_string(),
            PlanError::InfraDowngrade(d) => format!("plan to {}, the line's newest release", d.instead),
            _ => "choose a release the catalog lists".to_string(),
        };
        crate::exit::Failure::new(crate::exit::Exit::Usage, e, crate::exit::UNCHANGED_ALL, next)
    }
}

/// Where the stack starts from, as observed (or as given with `plan --from`).
#[derive(Debug, Clone)]
pub struct Start {
    /// The release the stack runs (`3.4.0`).
    pub release: Version,
    /// Services whose image belongs to another release than `release`.
    pub drift: Vec<String>,
    /// The MongoDB major the stack runs (`5.0`), when observed; `None`: the release's own.
    pub mongo: Option<String>,
}

/// The hops from the running release to the target, with what each changes and how it is undone:
/// what `plan` prints and `upgrade` executes (also from a saved plan file).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// The release the stack runs.
    pub from: Version,
    /// The release the operator asked for.
    pub to: Version,
    /// The hops in order; each lands on a release of the catalog.
    pub hops: Vec<Hop>,
    /// What the operator should know before starting (images of another release, hops the tool
    /// cannot execute).
    pub warnings: Vec<String>,
    /// The first hop this version of the tool cannot carry out, and why; `None`: `upgrade` can
    /// carry out every hop. Printed first by `plan`, and the reason `upgrade` refuses (exit 3).
    #[serde(default)]
    pub blocked: Option<Blocked>,
}

/// A hop of a plan that this version cannot carry out (see [`Hop::blocker`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Blocked {
    /// The hop's release before.
    pub from: Version,
    /// The hop's release after.
    pub to: Version,
    /// Why, as a clause (`it changes the compose layout and …`).
    pub why: String,
}

/// One hop: from one release to the next stop, as one maintenance window.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Hop {
    /// The release before the hop (`3.4.0`).
    pub from: Version,
    /// The release after it (`3.6.5`).
    pub to: Version,
    /// Patch, minor or major.
    pub kind: HopKind,
    /// Lines this hop jumps over by a documented exception (3.3/3.4 → 3.6 skips 3.5).
    pub skipped_lines: Vec<String>,
    /// Services whose image reference changes (`mendersoftware/useradm:mender-3.4.0` →
    /// `…:mender-3.6.5`).
    pub image_changes: Vec<ImageChange>,
    /// Compose services the target release has and the current one has not.
    pub added_services: Vec<String>,
    /// Compose services the current release has and the target one drops (`mender-reporting` going to
    /// 3.6).
    pub removed_services: Vec<String>,
    /// 4.x services that replace a differently named 3.x service: (old, new).
    pub renamed_services: Vec<(String, String)>,
    /// Databases whose newest `migration_info` version differs between the two releases.
    pub schema_changes: Vec<SchemaChange>,
    /// The MongoDB majors the hop crosses, when its mongo image changes major.
    pub mongo: Option<MongoUpgrade>,
    /// The hop changes more than image tags, so the upstream base compose files are replaced.
    pub replaces_base_files: bool,
    /// The catalog has base compose files for the target release (needed to execute the hop).
    pub templates_available: bool,
    /// What the operator does by hand before and after, from the catalog.
    pub manual_steps: Vec<ManualStep>,
    /// The maintenance window Mender announces for the hop (`about 15 minutes`).
    pub window: Option<String>,
    /// How a failure of this hop is undone.
    pub rollback: Rollback,
    /// Data that must be gone before the hop (checked before any downtime).
    #[serde(default)]
    pub checks: Vec<DataCheck>,
    /// The mongo image the stack runs during and after this hop (`mongo:6.0`): an application hop
    /// keeps the one the stack runs (pinned to the running major), only a MongoDB stage
    /// ([`HopKind::Mongo`]) changes it. `None` in plans saved before stages existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongo_image: Option<String>,
}

impl Hop {
    /// Why this version of the tool cannot carry out the hop, or `None` when it can: a compose
    /// layout change without base files in the catalog, renamed services (no compose path
    /// upstream), or more than one MongoDB major in one hop.
    pub fn blocker(&self) -> Option<String> {
        if self.replaces_base_files && !self.templates_available {
            return Some(format!(
                "it changes the compose layout and the catalog has no base compose files for {}",
                self.to
            ));
        }
        if !self.renamed_services.is_empty() {
            return Some("it renames services; no compose production path exists upstream for it".into());
        }
        if self.mongo.as_ref().is_some_and(|m| m.steps.len() > 1) {
            return Some("it needs intermediate MongoDB majors, which this version does not run".into());
        }
        None
    }
    /// A MongoDB major stage rather than an application hop.
    pub fn is_mongo_stage(&self) -> bool {
        self.kind == HopKind::Mongo
    }

    /// "3.6.5 → 3.7.11", or "MongoDB 4.4 → 5.0 at 3.6.5" for a stage.
    pub fn label(&self) -> String {
        match (&self.mongo, self.kind) {
            (Some(m), HopKind::Mongo) => format!("MongoDB {} → {} at {}", m.from_major, m.to_major, self.to),
            _ => format!("{} → {}", self.from, self.to),
        }
    }
}

/// How far a hop goes, which decides the risk and what Mender documents for it.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HopKind {
    /// Within one line: only patch releases, freely up- and downgradable by Mender's policy.
    Patch,
    /// To the next server line.
    Minor,
    /// Across a major version (3.7 → 4.0).
    Major,
    /// A MongoDB major stage: the release stays (`from` = `to`), MongoDB goes up one major on a
    /// copy of its data volume (mongodb docs `7.0-upgrade-standalone`: one major per step).
    Mongo,
}

/// A service's image reference change in a hop, as the catalog writes both.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ImageChange {
    /// Compose service name (`mender-useradm`; the 4.x name for a renamed service).
    pub service: String,
    /// The image before (`mendersoftware/useradm:mender-3.4.0`).
    pub from: String,
    /// The image after (`mendersoftware/useradm:mender-3.6.5`).
    pub to: String,
}

/// A database whose schema version moves in a hop (its `migration_info` newest entry).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SchemaChange {
    /// Database name (`deviceauth`).
    pub db: String,
    /// Its schema version before; `None`: the database is new in the target.
    pub from: Option<Version>,
    /// Its schema version after; `None`: the target release no longer uses it.
    pub to: Option<Version>,
}

/// A MongoDB major-version change: one image swap per major, with the featureCompatibilityVersion
/// checked before and raised after each.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MongoUpgrade {
    /// MongoDB major before (`4.4`).
    pub from_major: String,
    /// MongoDB major after (`7.0`).
    pub to_major: String,
    /// One step per major in between (`4.4 → 5.0`, `5.0 → 6.0`, `6.0 → 7.0`): never two majors at once.
    pub steps: Vec<MongoStep>,
}

/// One MongoDB major step of a hop.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MongoStep {
    /// The featureCompatibilityVersion that must be in place before the image changes.
    pub require_fcv: String,
    /// The mongo image major to run next.
    pub image_major: String,
    /// The featureCompatibilityVersion to set once the new major runs.
    pub set_fcv: String,
    /// MongoDB ≥ 7.0 refuses setFeatureCompatibilityVersion without `confirm: true`.
    pub confirm: bool,
}

/// How a failed hop is undone.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Rollback {
    /// No database changes: the previous images and configuration are a safe rollback.
    ImageSwap,
    /// Data moves forward (migrations, MongoDB format): the pre-hop dump must be restored, because
    /// older binaries run silently on a newer schema.
    DataRestore {
        /// Why, one line each (`deviceauth schema 1.10.0 → 2.0.0`, `MongoDB 4.4 → 5.0 (…)`).
        reasons: Vec<String>,
    },
    /// A MongoDB major stage runs the new major on a copy of the data volume: the previous compose
    /// files (the old image on the original volume, which was never written) are the rollback.
    OriginalVolume,
}

/// A release the stack can go to in one hop.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct NextStop {
    /// The release one hop lands on (`3.6.5`).
    pub to: Version,
    /// Patch, minor or major.
    pub kind: HopKind,
    /// Lines jumped over by a documented exception.
    pub skips: Vec<String>,
    /// Why this version of the tool cannot carry the hop out ([`Hop::blocker`]); `None`: it can.
    #[serde(default)]
    pub blocked: Option<String>,
}

/// Where one hop can take a stack at `current`: the newest patch of its line, and each later line
/// whose documented upgrade starts from this line.
pub fn next_stops(catalog: &Catalog, current: &Version) -> Vec<NextStop> {
    let here = line_name(current);
    let mut out = Vec::new();
    let lines: Vec<_> = catalog.server_lines().collect();
    let Some(pos) = lines.iter().position(|l| l.line == here) else {
        return out;
    };
    if let Some(stop) = lines[pos].stop.as_ref().filter(|s| *s > current) {
        out.push(NextStop { to: stop.clone(), kind: HopKind::Patch, skips: vec![], blocked: None });
    }
    let at_stop = lines[pos].stop.as_ref().is_none_or(|s| s <= current);
    for (i, l) in lines.iter().enumerate().skip(pos + 1) {
        let reachable =
            l.upgrade.as_ref().is_some_and(|u| u.from.contains(&here) && (at_stop || u.from_stop.is_none()));
        if let (true, Some(stop)) = (reachable, &l.stop) {
            let kind = if stop.major != current.major { HopKind::Major } else { HopKind::Minor };
            let skips = lines[pos + 1..i].iter().map(|l| l.line.clone()).collect();
            out.push(NextStop { to: stop.clone(), kind, skips, blocked: None });
        }
    }
    // Whether this version carries each one out, said where the hop is offered.
    let start = Start { release: current.clone(), drift: vec![], mongo: None };
    for stop in &mut out {
        stop.blocked = plan(&start, catalog, &stop.to).ok().and_then(|p| p.blocked).map(|b| b.why);
    }
    out
}

/// Computes the plan from `start` to `target`: each hop lands on the next server line's stop
/// release (or the target on its own line), taking the furthest documented jump; no I/O.
///
/// # Errors
/// [`PlanError`]: an unknown or non-server target, a downgrade, the same version, or no path.
pub fn plan(start: &Start, catalog: &Catalog, target: &Version) -> Result<Plan, PlanError> {
    let to = check_target(catalog, target)?;
    let from = catalog.release(&start.release).ok_or_else(|| PlanError::UnknownCurrent(start.release.clone()))?;
    if to.version < from.version {
        return Err(PlanError::Downgrade { from: from.version.clone(), to: to.version.clone() });
    }
    if to.version == from.version {
        return Err(PlanError::SameVersion(from.version.clone()));
    }
    let mut hops = Vec::new();
    let mut major =
        start.mongo.clone().filter(|m| catalog.mongo_majors.contains(m)).unwrap_or_else(|| from.mongo.major.clone());
    for (a, b, skipped) in route(catalog, from, to)? {
        let down = infra_downgrades(a, b);
        if !down.is_empty() {
            let instead = catalog.line(&b.line).and_then(|l| l.stop.clone()).unwrap_or_else(|| b.version.clone());
            return Err(PlanError::InfraDowngrade(Box::new(InfraDowngrade {
                from: a.version.clone(),
                to: b.version.clone(),
                images: down,
                instead,
            })));
        }
        // The application hop runs on a MongoDB major both releases support; the stages up to it
        // run before the hop, the ones after it at the landing release.
        let on = hop_major(catalog, a, b, &major);
        let image = |m: &str| mongo_image(a, m);
        let mut h = hop(catalog, a, b, skipped);
        pin_mongo(&mut h, b, &image(&on));
        // The line's MongoDB steps go to the first stage of this hop (none: the major has moved).
        let (mut mongo_steps, app_steps): (Vec<_>, Vec<_>) = h.manual_steps.drain(..).partition(|s| s.mongo);
        h.manual_steps = app_steps;
        let first_stage = hops.len();
        for (x, y) in majors_between(catalog, &major, &on) {
            hops.push(mongo_stage(a, &x, &y, &image(&x), &image(&y)));
        }
        let app = hops.len();
        hops.push(h);
        for (x, y) in majors_between(catalog, &on, &b.mongo.major) {
            hops.push(mongo_stage(b, &x, &y, &image(&x), &image(&y)));
        }
        let stage = if app > first_stage { Some(first_stage) } else { (hops.len() > app + 1).then_some(app + 1) };
        if let Some(i) = stage {
            hops[i].manual_steps.append(&mut mongo_steps);
        }
        major = if majors_between(catalog, &on, &b.mongo.major).is_empty() { on } else { b.mongo.major.clone() };
    }
    let mut warnings = support_warnings(catalog, from, to);
    for h in hops.iter().filter(|h| !h.is_mongo_stage()) {
        for n in catalog.release(&h.to).map(|r| r.notes.as_slice()).unwrap_or_default() {
            warnings.push(format!("{}: {} ({})", h.to, n.text, n.source));
        }
    }
    if !start.drift.is_empty() {
        warnings.push(format!(
            "services run images of another release than {}: {}; the first hop brings them in line",
            from.version,
            start.drift.join(", ")
        ));
    }
    for h in hops.iter().filter(|h| !h.templates_available) {
        warnings.push(format!(
            "the catalog has no base compose files for {} yet: `upgrade` cannot execute the hop {} → {}",
            h.to, h.from, h.to
        ));
    }
    let blocked =
        hops.iter().find_map(|h| h.blocker().map(|why| Blocked { from: h.from.clone(), to: h.to.clone(), why }));
    Ok(Plan { from: from.version.clone(), to: to.version.clone(), hops, warnings, blocked })
}

/// What the plan says about Mender's support of the running and the target release.
fn support_warnings(catalog: &Catalog, from: &Release, to: &Release) -> Vec<String> {
    let mut out = Vec::new();
    let newest = catalog.newest_supported();
    let ended = |v: &Version| catalog.support(v).filter(|s| s.status == SupportStatus::Ended);
    if let Some(s) = ended(&from.version) {
        out.push(format!("the running release {} (line {}) is {}", from.version, from.line, s.describe()));
    }
    if let Some(s) = ended(&to.version) {
        let go = match newest {
            Some(n) if *n > to.version => format!("; {n} is the newest supported release"),
            _ => String::new(),
        };
        out.push(format!("the target {} (line {}) is {}{go}", to.version, to.line, s.describe()));
    }
    out
}

/// Infrastructure images (same repository, other than Mender's) whose version goes down from
/// `from` to `to`: "traefik v3.6.10 → 3.6.2". Tags that are not version numbers are not compared.
fn infra_downgrades(from: &Release, to: &Release) -> Vec<String> {
    let mut out = Vec::new();
    for (name, f) in &to.services {
        let Some(old) = from.services.get(name).or_else(|| f.was.as_ref().and_then(|w| from.services.get(w))) else {
            continue;
        };
        let (a, b) = (ImageRef::parse(&old.image, None), ImageRef::parse(&f.image, None));
        if a.repository != b.repository || a.repository.starts_with("mendersoftware/") {
            continue;
        }
        if let (Some(x), Some(y)) = (a.tag.as_deref().and_then(tag_version), b.tag.as_deref().and_then(tag_version))
            && y < x
        {
            let line = format!("{} {} → {}", a.repository, a.tag.unwrap_or_default(), b.tag.unwrap_or_default());
            if !out.contains(&line) {
                out.push(line);
            }
        }
    }
    out
}

/// The numeric part of an image tag: `v3.6.10` → [3, 6, 10], `2.12-alpine` → [2, 12].
fn tag_version(tag: &str) -> Option<Vec<u64>> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let numeric = t.split(['-', '_']).next()?;
    numeric.split('.').map(|p| p.parse().ok()).collect()
}

fn check_target<'c>(catalog: &'c Catalog, target: &Version) -> Result<&'c Release, PlanError> {
    if let Some(r) = catalog.release(target) {
        return Ok(r);
    }
    let line = catalog.line(&line_name(target));
    match line {
        Some(l) if !l.server_release => {
            Err(PlanError::NotServerRelease(target.clone(), l.note.clone().unwrap_or_default().trim().to_string()))
        }
        Some(l) if l.tags.contains(target) => {
            Err(PlanError::NoFacts(target.clone(), l.stop.clone().unwrap_or_else(|| target.clone())))
        }
        _ => {
            let known: Vec<String> = catalog.releases.iter().map(|r| r.version.to_string()).collect();
            Err(PlanError::UnknownTarget(target.to_string(), known.join(", ")))
        }
    }
}

/// One leg of the route: from, to, and the lines jumped over.
type Leg<'c> = (&'c Release, &'c Release, Vec<String>);

/// The releases the upgrade stops at: each hop lands on the next line's stop release (or the
/// target itself on the target's line), taking the furthest documented jump.
fn route<'c>(catalog: &'c Catalog, from: &'c Release, to: &'c Release) -> Result<Vec<Leg<'c>>, PlanError> {
    let order: Vec<&str> = catalog.server_lines().map(|l| l.line.as_str()).collect();
    let pos = |line: &str| order.iter().position(|l| *l == line);
    let target_pos = pos(&to.line).ok_or_else(|| PlanError::NoPath(from.line.clone(), to.version.clone()))?;
    let mut hops = Vec::new();
    let mut cur = from;
    while cur.line != to.line {
        let cur_pos = pos(&cur.line).ok_or_else(|| PlanError::NoPath(cur.line.clone(), to.version.clone()))?;
        let next = catalog
            .server_lines()
            .enumerate()
            .filter(|(i, _)| *i > cur_pos && *i <= target_pos)
            .filter(|(_, l)| l.upgrade.as_ref().is_some_and(|u| u.from.contains(&cur.line)))
            .max_by_key(|(i, _)| *i)
            .ok_or_else(|| PlanError::NoPath(cur.line.clone(), to.version.clone()))?;
        let (next_pos, line) = next;
        // A line reached only from the previous line's newest patch: that patch first.
        let cur_stop = catalog.line(&cur.line).and_then(|l| l.stop.as_ref()).and_then(|s| catalog.release(s));
        if let (Some(_), Some(stop)) = (line.upgrade.as_ref().and_then(|u| u.from_stop.as_ref()), cur_stop)
            && stop.version > cur.version
        {
            hops.push((cur, stop, Vec::new()));
            cur = stop;
        }
        let land = if line.line == to.line {
            to
        } else {
            line.stop
                .as_ref()
                .and_then(|s| catalog.release(s))
                .ok_or_else(|| PlanError::NoPath(line.line.clone(), to.version.clone()))?
        };
        let skipped = order[cur_pos + 1..next_pos].iter().map(|s| s.to_string()).collect();
        hops.push((cur, land, skipped));
        cur = land;
    }
    if cur.version != to.version {
        hops.push((cur, to, Vec::new()));
    }
    Ok(hops)
}

fn hop(catalog: &Catalog, from: &Release, to: &Release, skipped_lines: Vec<String>) -> Hop {
    let kind = if from.line == to.line {
        HopKind::Patch
    } else if from.version.major != to.version.major {
        HopKind::Major
    } else {
        HopKind::Minor
    };
    // A 4.x service that names its 3.x predecessor in `was` continues it.
    let predecessor = |name: &str| -> String {
        to.services.get(name).and_then(|s| s.was.clone()).unwrap_or_else(|| name.to_string())
    };
    let mut image_changes = Vec::new();
    let mut added = Vec::new();
    let mut renamed = Vec::new();
    let mut continued = BTreeSet::new();
    for (name, facts) in &to.services {
        let old_name = predecessor(name);
        match from.services.get(&old_name) {
            Some(old) => {
                continued.insert(old_name.clone());
                if old_name != *name {
                    renamed.push((old_name.clone(), name.clone()));
                }
                if ImageRef::parse(&old.image, None) != ImageRef::parse(&facts.image, None) {
                    image_changes.push(ImageChange {
                        service: name.clone(),
                        from: old.image.clone(),
                        to: facts.image.clone(),
                    });
                }
            }
            None => added.push(name.clone()),
        }
    }
    let removed: Vec<String> = from.services.keys().filter(|n| !continued.contains(*n)).cloned().collect();
    let schema_changes = schema_changes(from, to);
    let rollback = rollback_class(&schema_changes);
    let upgrade = (kind != HopKind::Patch).then(|| catalog.line(&to.line).and_then(|l| l.upgrade.clone())).flatten();
    Hop {
        from: from.version.clone(),
        to: to.version.clone(),
        kind,
        skipped_lines,
        // Upstream changes its base files at every line; within a line, only image tags.
        replaces_base_files: kind != HopKind::Patch
            || from.layout != to.layout
            || !added.is_empty()
            || !removed.is_empty(),
        templates_available: to.templates,
        image_changes,
        added_services: added,
        removed_services: removed,
        renamed_services: renamed,
        schema_changes,
        // The MongoDB major is the stages' business ([`pin_mongo`]): an application hop changes none.
        mongo: None,
        manual_steps: upgrade.as_ref().map(|u| u.steps.clone()).unwrap_or_default(),
        checks: upgrade.as_ref().map(|u| u.refuse_while.clone()).unwrap_or_default(),
        window: upgrade.and_then(|u| u.window),
        rollback,
        mongo_image: None,
    }
}

/// The schema version of each database in a release: the newest a service of it migrates to, or,
/// with `lowest`, the lowest the database may be at (a release whose version the reference knows
/// only as a range, `schema_min`).
fn schemas(r: &Release, lowest: bool) -> BTreeMap<String, Version> {
    let mut out: BTreeMap<String, Version> = BTreeMap::new();
    for s in r.services.values() {
        let v = if lowest { s.schema_min.as_ref().or(s.schema.as_ref()) } else { s.schema.as_ref() };
        if let (Some(db), Some(v)) = (&s.db, v) {
            let e = out.entry(db.clone()).or_insert_with(|| v.clone());
            if v > e {
                *e = v.clone();
            }
        }
    }
    out
}

/// The databases whose schema may move: from the lowest version the running release may have
/// (so that an uncertain one counts as a change, and its rollback as a data restore) to the
/// target's.
fn schema_changes(from: &Release, to: &Release) -> Vec<SchemaChange> {
    let (a, b) = (schemas(from, true), schemas(to, false));
    let dbs: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    dbs.into_iter()
        .filter(|db| a.get(*db) != b.get(*db))
        .map(|db| SchemaChange { db: db.clone(), from: a.get(db).cloned(), to: b.get(db).cloned() })
        .collect()
}

/// The MongoDB majors a Mender line documents support for (facts: mender-4x-facts.md §3.1, from
/// docs@3.6.x "Mender 3.3, 3.4 and 3.6 are all compatible with both MongoDB 4.4 and 5.0",
/// docs@3.7.x Kubernetes page (5.0 and 6.0), docs master at 4.0.0 (6.0 and 7.0), docs PR #2627
/// for 4.1 (6.0, 7.0, 8.0)); a line not listed supports its own major only.
pub fn supported_majors(r: &Release) -> Vec<String> {
    let listed: &[&str] = match r.line.as_str() {
        "3.3" | "3.4" | "3.5" | "3.6" => &["4.4", "5.0"],
        "3.7" => &["5.0", "6.0"],
        "4.0" => &["6.0", "7.0"],
        "4.1" => &["6.0", "7.0", "8.0"],
        _ => &[],
    };
    let mut out: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    if !out.contains(&r.mongo.major) {
        out.push(r.mongo.major.clone());
    }
    out
}

/// The major an application hop from `a` to `b` runs on, the stack running `current`: the lowest
/// major from `current` on that both releases support (so that each stage runs under a release
/// documented for both of its majors: 4.4 → 5.0 at 3.6, 5.0 → 6.0 at 3.7, 6.0 → 7.0 at 4.0,
/// 7.0 → 8.0 at 4.1); `current` when none is (the landing release's stages then follow the hop).
fn hop_major(catalog: &Catalog, a: &Release, b: &Release, current: &str) -> String {
    let (sa, sb) = (supported_majors(a), supported_majors(b));
    let rank = |m: &str| catalog.mongo_majors.iter().position(|x| x == m);
    let Some(cur) = rank(current) else { return current.to_string() };
    let target = rank(&b.mongo.major).unwrap_or(cur);
    catalog
        .mongo_majors
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= cur && *i <= target.max(cur))
        .find(|(_, m)| sa.contains(m) && sb.contains(m))
        .map_or_else(|| current.to_string(), |(_, m)| m.clone())
}

/// The one-major steps from `from` up to `to` (none when `to` is not higher).
fn majors_between(catalog: &Catalog, from: &str, to: &str) -> Vec<(String, String)> {
    let majors = &catalog.mongo_majors;
    match (majors.iter().position(|m| m == from), majors.iter().position(|m| m == to)) {
        (Some(i), Some(j)) if j > i => majors[i..=j].windows(2).map(|w| (w[0].clone(), w[1].clone())).collect(),
        _ => vec![],
    }
}

/// The mongo image of `major` in the repository release `r` runs (`mongo:6.0`).
fn mongo_image(r: &Release, major: &str) -> String {
    let repo = r
        .services
        .get(&r.mongo.service)
        .map(|s| ImageRef::parse(&s.image, None).repository)
        .unwrap_or_else(|| "mongo".to_string());
    format!("{repo}:{major}")
}

/// One MongoDB step: the featureCompatibilityVersion checked, the next major run, its FCV set.
fn mongo_step(from: &str, to: &str) -> MongoStep {
    MongoStep {
        require_fcv: from.to_string(),
        image_major: to.to_string(),
        set_fcv: to.to_string(),
        // mongodb docs setFeatureCompatibilityVersion: `confirm: true` is required from 7.0 on.
        confirm: Version::parse(&format!("{to}.0")).is_ok_and(|v| v.major >= 7),
    }
}

/// A MongoDB major stage at release `at`: one major up, on a copy of the data volume.
fn mongo_stage(at: &Release, from: &str, to: &str, from_image: &str, to_image: &str) -> Hop {
    Hop {
        from: at.version.clone(),
        to: at.version.clone(),
        kind: HopKind::Mongo,
        skipped_lines: vec![],
        image_changes: vec![ImageChange {
            service: at.mongo.service.clone(),
            from: from_image.to_string(),
            to: to_image.to_string(),
        }],
        added_services: vec![],
        removed_services: vec![],
        renamed_services: vec![],
        schema_changes: vec![],
        mongo: Some(MongoUpgrade {
            from_major: from.to_string(),
            to_major: to.to_string(),
            steps: vec![mongo_step(from, to)],
        }),
        replaces_base_files: false,
        templates_available: true,
        manual_steps: vec![],
        window: None,
        rollback: Rollback::OriginalVolume,
        checks: vec![],
        mongo_image: Some(to_image.to_string()),
    }
}

/// An application hop keeps the mongo image `image`: its change, if any, is the stages' business.
fn pin_mongo(h: &mut Hop, to: &Release, image: &str) {
    let svc = &to.mongo.service;
    h.image_changes.retain(|c| &c.service != svc);
    h.mongo_image = Some(image.to_string());
}

fn rollback_class(schema: &[SchemaChange]) -> Rollback {
    let reasons: Vec<String> = schema
        .iter()
        .map(|c| match (&c.from, &c.to) {
            (Some(a), Some(b)) => format!("{} schema {a} → {b}", c.db),
            (None, Some(b)) => format!("{} created at schema {b}", c.db),
            (Some(a), None) => format!("{} (schema {a}) no longer used", c.db),
            (None, None) => c.db.clone(),
        })
        .collect();
    if reasons.is_empty() { Rollback::ImageSwap } else { Rollback::DataRestore { reasons } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::LoadedCatalog;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn cat() -> Catalog {
        LoadedCatalog::embedded().unwrap().catalog
    }

    fn run(from: &str, to: &str) -> Result<Plan, PlanError> {
        plan(&Start { release: v(from), drift: vec![], mongo: None }, &cat(), &v(to))
    }

    /// The releases the application hops land on (MongoDB stages stay at one).
    fn stops(p: &Plan) -> Vec<String> {
        let apps = p.hops.iter().filter(|h| !h.is_mongo_stage());
        std::iter::once(p.from.to_string()).chain(apps.map(|h| h.to.to_string())).collect()
    }

    #[test]
    fn skips_3_5_from_3_3_and_3_4_by_the_documented_exception() {
        assert_eq!(stops(&run("3.3.2", "3.7.11").unwrap()), ["3.3.2", "3.6.5", "3.7.11"]);
        let p = run("3.4.0", "3.7.11").unwrap();
        assert_eq!(stops(&p), ["3.4.0", "3.6.5", "3.7.11"]);
        assert_eq!(p.hops[0].skipped_lines, ["3.5"]);
        assert_eq!(stops(&run("3.6.5", "3.7.11").unwrap()), ["3.6.5", "3.7.11"]);
    }

    #[test]
    fn adjacent_lines_when_target_is_3_5() {
        assert_eq!(stops(&run("3.3.2", "3.5.1").unwrap()), ["3.3.2", "3.4.0", "3.5.1"]);
    }

    #[test]
    fn to_4_1_goes_through_4_0_never_3_8() {
        let p = run("3.7.11", "4.1.3").unwrap();
        assert_eq!(stops(&p), ["3.7.11", "4.0.4", "4.1.3"]);
        let app = p.hops.iter().find(|h| !h.is_mongo_stage()).unwrap();
        assert_eq!(app.kind, HopKind::Major);
        assert!(app.replaces_base_files);
        // The operator's compose services continue under their names (the 4.x name is an alias).
        assert!(app.renamed_services.is_empty());
        assert!(
            app.image_changes
                .iter()
                .any(|c| c.service == "mender-workflows-worker" && c.to == "mendersoftware/workflows:v4.0.4")
        );
        // 4.1.0 ships an older traefik and store than 4.0.4: never a landing point after it.
        match run("3.6.5", "4.1.0") {
            Err(PlanError::InfraDowngrade(d)) => {
                assert_eq!((&d.from, &d.to, &d.instead), (&v("4.0.4"), &v("4.1.0"), &v("4.1.3")));
                assert!(d.images.contains(&"traefik v3.6.10 → 3.6.2".to_string()), "{:?}", d.images);
            }
            r => panic!("{r:?}"),
        }
        let e = run("4.0.4", "4.1.0").unwrap_err();
        assert!(
            e.to_string().contains("traefik v3.6.10 → 3.6.2") && e.to_string().contains("older infrastructure"),
            "{e}"
        );
        assert!(run("3.0.0", "4.1.3").unwrap().hops.iter().all(|h| h.to.minor != 8 || h.to.major != 3));
    }

    #[test]
    fn patch_hop_within_a_line() {
        let p = run("3.7.0", "3.7.11").unwrap();
        assert_eq!(p.hops.len(), 1);
        assert_eq!(p.hops[0].kind, HopKind::Patch);
        assert_eq!(p.hops[0].rollback, Rollback::ImageSwap);
        assert!(p.hops[0].manual_steps.is_empty());
        let d = p.hops[0].image_changes.iter().find(|c| c.service == "mender-deployments").unwrap();
        assert_eq!(d.to, "mendersoftware/deployments:mender-3.7.11");
    }

    #[test]
    fn migrations_make_a_data_restore_hop() {
        let p = run("3.3.0", "3.3.2").unwrap();
        match &p.hops[0].rollback {
            Rollback::DataRestore { reasons } => {
                assert!(reasons.iter().any(|r| r.contains("deployment_service schema 1.2.9 → 1.2.10")))
            }
            r => panic!("{r:?}"),
        }
    }

    /// Each hop as "from→to" or "mongo X→Y@release", with the mongo image it leaves running.
    fn shape(p: &Plan) -> Vec<String> {
        p.hops
            .iter()
            .map(|h| match &h.mongo {
                Some(m) if h.is_mongo_stage() => format!("mongo {}→{}@{}", m.from_major, m.to_major, h.to),
                _ => format!("{}→{} on {}", h.from, h.to, h.mongo_image.as_deref().unwrap_or("?")),
            })
            .collect()
    }

    #[test]
    fn each_mongodb_major_is_a_stage_of_its_own() {
        // 3.6 documents 4.4 and 5.0, 3.7 documents 5.0 and 6.0: 4.4 → 5.0 runs at 3.6.5, before.
        assert_eq!(shape(&run("3.6.5", "3.7.11").unwrap()), ["mongo 4.4→5.0@3.6.5", "3.6.5→3.7.11 on mongo:5.0"]);
        // 3.7.11 → 4.0.4 runs on 6.0, which both document; 7.0 at 4.0.4; 8.0 at 4.1.3.
        assert_eq!(
            shape(&run("3.4.0", "4.1.3").unwrap()),
            [
                "3.4.0→3.6.5 on mongo:4.4",
                "mongo 4.4→5.0@3.6.5",
                "3.6.5→3.7.11 on mongo:5.0",
                "mongo 5.0→6.0@3.7.11",
                "3.7.11→4.0.4 on mongo:6.0",
                "mongo 6.0→7.0@4.0.4",
                "4.0.4→4.1.3 on mongo:7.0",
                "mongo 7.0→8.0@4.1.3",
            ]
        );
        let p = run("3.7.11", "4.0.4").unwrap();
        let stage = &p.hops[0];
        assert_eq!((stage.kind, &stage.from, &stage.to), (HopKind::Mongo, &v("3.7.11"), &v("3.7.11")));
        assert_eq!(stage.rollback, Rollback::OriginalVolume);
        assert_eq!(
            stage.mongo.as_ref().unwrap().steps,
            vec![MongoStep {
                require_fcv: "5.0".into(),
                image_major: "6.0".into(),
                set_fcv: "6.0".into(),
                confirm: false
            }]
        );
        assert_eq!(stage.image_changes.len(), 1);
        assert_eq!(
            (stage.image_changes[0].from.as_str(), stage.image_changes[0].to.as_str()),
            ("mongo:5.0", "mongo:6.0")
        );
        // The application hop keeps the running mongo image: no image change of mender-mongo.
        let app = &p.hops[1];
        assert!(app.mongo.is_none() && !app.image_changes.iter().any(|c| c.service == "mender-mongo"));
        assert!(matches!(app.rollback, Rollback::DataRestore { .. }));
        let seven = &p.hops[2].mongo.as_ref().unwrap().steps[0];
        assert!(seven.confirm && seven.require_fcv == "6.0");
        // A stage's release notes are not repeated.
        let notes = cat().release(&v("4.0.4")).unwrap().notes.len();
        assert_eq!(p.warnings.iter().filter(|w| w.starts_with("4.0.4:")).count(), notes);
    }

    #[test]
    fn a_stack_already_on_a_newer_major_needs_no_stage_for_it() {
        let start = Start { release: v("3.7.11"), drift: vec![], mongo: Some("6.0".into()) };
        assert_eq!(
            shape(&plan(&start, &cat(), &v("4.0.4")).unwrap()),
            ["3.7.11→4.0.4 on mongo:6.0", "mongo 6.0→7.0@4.0.4"]
        );
        let start = Start { release: v("3.6.5"), drift: vec![], mongo: Some("5.0".into()) };
        assert_eq!(shape(&plan(&start, &cat(), &v("3.7.11")).unwrap()), ["3.6.5→3.7.11 on mongo:5.0"]);
        // Patch hops within a line never carry a stage.
        assert_eq!(shape(&run("3.7.0", "3.7.11").unwrap()), ["3.7.0→3.7.11 on mongo:5.0"]);
    }

    #[test]
    fn hop_3_5_to_3_6_removes_reporting_and_shows_steps() {
        let p = run("3.5.1", "3.6.5").unwrap();
        let h = &p.hops[0];
        assert_eq!(h.removed_services, ["mender-opensearch", "mender-reporting", "mender-reporting-indexer"]);
        assert!(h.replaces_base_files);
        assert!(h.manual_steps.iter().any(|s| s.text.contains("useradm")));
        assert_eq!(h.window.as_deref(), Some("about 15 minutes"));
    }

    #[test]
    fn next_stops_include_patch_adjacent_and_exception() {
        let c = cat();
        let to = |v: &str| {
            next_stops(&c, &Version::parse(v).unwrap()).into_iter().map(|s| s.to.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(to("3.4.0"), ["3.5.1", "3.6.5"]);
        // 4.0 is reached from 3.7.11 only (its MongoDB 5.0 → 6.0 stage runs there).
        assert_eq!(to("3.7.0"), ["3.7.11"]);
        assert_eq!(to("3.7.11"), ["4.0.4"]);
        assert_eq!(to("3.6.2"), ["3.6.5", "3.7.11"]);
        assert_eq!(to("3.6.5"), ["3.7.11"]);
        assert!(to("4.1.3").is_empty());
        assert_eq!(next_stops(&c, &v("3.4.0"))[1].skips, ["3.5"]);
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(run("3.6.5", "3.4.0"), Err(PlanError::Downgrade { from: v("3.6.5"), to: v("3.4.0") }));
        assert_eq!(run("3.6.5", "3.6.5"), Err(PlanError::SameVersion(v("3.6.5"))));
        assert!(matches!(run("3.6.5", "3.9.0"), Err(PlanError::UnknownTarget(..))));
        assert!(matches!(run("3.7.11", "3.8.2"), Err(PlanError::NotServerRelease(..))));
        // A tag the lines list without facts (every real tag has them now).
        let mut c = cat();
        c.releases.retain(|r| r.version != v("3.6.2"));
        let from = |r: &str| Start { release: v(r), drift: vec![], mongo: None };
        assert_eq!(plan(&from("3.4.0"), &c, &v("3.6.2")), Err(PlanError::NoFacts(v("3.6.2"), v("3.6.5"))));
        assert_eq!(plan(&from("3.6.2"), &c, &v("3.7.11")), Err(PlanError::UnknownCurrent(v("3.6.2"))));
    }

    #[test]
    fn every_3_x_tag_is_planned_to_3_7_11_and_4_1_3() {
        let c = cat();
        let tags: Vec<Version> =
            c.server_lines().filter(|l| l.line.starts_with("3.")).flat_map(|l| l.tags.clone()).collect();
        assert_eq!(tags.len(), 32);
        for t in tags.iter().filter(|t| **t != v("3.7.11")) {
            let p = run(&t.to_string(), "3.7.11").unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(p.hops.last().unwrap().to, v("3.7.11"));
            for h in &p.hops {
                assert!(h.templates_available || !h.replaces_base_files, "{t}: hop {} → {} cannot run", h.from, h.to);
            }
        }
        for t in &tags {
            let p = run(&t.to_string(), "4.1.3").unwrap_or_else(|e| panic!("{t}: {e}"));
            let s = stops(&p);
            assert!(s.ends_with(&["3.7.11".into(), "4.0.4".into(), "4.1.3".into()]), "{t}: {s:?}");
        }
    }

    #[test]
    fn a_patch_goes_straight_on_unless_the_next_line_starts_from_the_newest_patch() {
        assert_eq!(stops(&run("3.6.2", "3.7.11").unwrap()), ["3.6.2", "3.7.11"]);
        assert_eq!(stops(&run("3.3.1", "3.7.11").unwrap()), ["3.3.1", "3.6.5", "3.7.11"]);
        let p = run("3.7.5", "4.1.3").unwrap();
        assert_eq!(stops(&p), ["3.7.5", "3.7.11", "4.0.4", "4.1.3"]);
        assert_eq!(p.hops[0].kind, HopKind::Patch);
        assert_eq!(p.hops[0].rollback, Rollback::ImageSwap);
    }

    #[test]
    fn from_3_0_every_line_in_turn_with_its_manual_steps_at_its_hop() {
        let p = run("3.0.2", "3.7.11").unwrap();
        assert_eq!(stops(&p), ["3.0.2", "3.1.1", "3.2.2", "3.3.2", "3.6.5", "3.7.11"]);
        assert!(p.hops.iter().all(|h| h.templates_available), "every landing release has base files");
        assert!(p.hops[0].manual_steps.iter().any(|s| s.text.contains("single certificate")));
        assert!(p.hops[1].manual_steps.iter().any(|s| s.text.contains("ALLOWED_HOSTS")));
        assert!(p.hops[1].manual_steps.iter().any(|s| s.text.contains("NATS")));
        assert!(!p.hops[0].manual_steps.iter().any(|s| s.text.contains("ALLOWED_HOSTS")));
        assert!(p.hops[1].added_services.contains(&"mender-iot-manager".to_string()));
        assert!(p.hops[0].checks.is_empty());
        let jobs = &p.hops[1].checks[0];
        assert_eq!((jobs.db.as_str(), jobs.collection.as_str()), ("workflows", "jobs"));
        assert_eq!(jobs.filter, serde_json::json!({"status": {"$in": [1, 2]}}));
    }

    #[test]
    fn the_lines_mongodb_steps_are_asked_before_the_stage_not_the_hop_on_the_new_major() {
        let avx = |h: &Hop| h.manual_steps.iter().any(|s| s.text.contains("AVX"));
        let p = run("3.6.5", "3.7.11").unwrap();
        assert!(p.hops[0].is_mongo_stage() && avx(&p.hops[0]), "{:?}", p.hops[0].manual_steps);
        assert!(!avx(&p.hops[1]), "the 3.7.11 hop runs on 5.0 already: {:?}", p.hops[1].manual_steps);
        assert!(p.hops[1].manual_steps.iter().any(|s| s.text.contains("Jetstream")), "the hop keeps its own");
        // Already on 5.0 at 3.6.5: no stage, nothing to ask about MongoDB.
        let start = Start { release: v("3.6.5"), drift: vec![], mongo: Some("5.0".into()) };
        let p = plan(&start, &cat(), &v("3.7.11")).unwrap();
        assert_eq!(p.hops.len(), 1);
        assert!(!avx(&p.hops[0]), "{:?}", p.hops[0].manual_steps);
        // No line's MongoDB text lands on an application hop of the road to 4.1.3.
        let p = run("3.4.0", "4.1.3").unwrap();
        for h in p.hops.iter().filter(|h| !h.is_mongo_stage()) {
            assert!(!h.manual_steps.iter().any(|s| s.mongo || s.text.contains("MongoDB goes")), "{}", h.label());
        }
    }

    #[test]
    fn a_schema_known_only_as_a_range_makes_a_data_restore_hop() {
        let p = run("3.3.1", "3.3.2").unwrap();
        match &p.hops[0].rollback {
            Rollback::DataRestore { reasons } => {
                assert!(reasons.iter().any(|r| r.contains("deployment_service schema 1.2.9 → 1.2.10")), "{reasons:?}")
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(run("3.7.1", "3.7.11").unwrap().hops[0].rollback, Rollback::ImageSwap);
    }

    #[test]
    fn support_and_release_traps_are_warned() {
        let p = run("3.6.5", "3.7.11").unwrap();
        assert!(
            p.warnings.iter().any(|w| w == "the running release 3.6.5 (line 3.6) is out of support"),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings.iter().any(|w| w.contains(
                "the target 3.7.11 (line 3.7) is out of support since 2025-05; 4.1.3 is the newest supported release"
            )),
            "{:?}",
            p.warnings
        );
        let p = run("3.7.11", "4.0.4").unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("4.0.4 (line 4.0) is out of support since 2026-08")));
        let p = run("4.0.4", "4.1.3").unwrap();
        assert!(!p.warnings.iter().any(|w| w.contains("target")), "{:?}", p.warnings);
        let p = run("3.7.11", "4.0.0").unwrap();
        assert!(
            p.warnings
                .iter()
                .any(|w| w.starts_with("4.0.0: its gateway traefik:v3.1") && w.contains("Docker Engine 29"))
        );
        assert!(!run("3.7.11", "4.0.4").unwrap().warnings.iter().any(|w| w.contains("traefik:v3.1")));
    }

    #[test]
    fn landing_on_a_patch_without_base_files_cannot_be_carried_out() {
        let p = run("3.4.0", "3.6.2").unwrap();
        assert!(p.hops[0].replaces_base_files && !p.hops[0].templates_available);
        assert!(p.warnings.iter().any(|w| w.contains("no base compose files for 3.6.2")), "{:?}", p.warnings);
        // The plan itself says so, for `plan` to print first and `upgrade` to refuse.
        let b = p.blocked.expect("blocked");
        assert_eq!((b.from.to_string(), b.to.to_string()), ("3.4.0".into(), "3.6.2".into()));
        assert!(b.why.contains("no base compose files for 3.6.2"), "{}", b.why);
        assert!(run("3.4.0", "4.1.3").unwrap().blocked.is_none(), "the whole road to 4.1.3 is carried out");
    }

    #[test]
    fn every_offered_next_hop_says_whether_it_is_carried_out() {
        // Every landing release has base files, so each hop status offers is carried out.
        for from in ["3.0.2", "3.4.0", "3.6.2", "3.7.11", "4.0.4"] {
            for stop in next_stops(&cat(), &v(from)) {
                assert_eq!(stop.blocked, None, "{from} → {}", stop.to);
            }
        }
    }

    #[test]
    fn drift_and_missing_templates_are_warned() {
        let p = plan(
            &Start { release: v("3.7.11"), drift: vec!["mender-useradm".into()], mongo: None },
            &cat(),
            &v("4.1.2"),
        )
        .unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("mender-useradm")));
        assert!(!p.warnings.iter().any(|w| w.contains("no base compose files for 4.0.4")));
        assert!(p.warnings.iter().any(|w| w.contains("no base compose files for 4.1.2")));
    }
}
