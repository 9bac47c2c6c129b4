//! `status` and `plan`: read-only.

use std::path::Path;

use super::{Global, PlanArgs, StatusArgs, parse_version, print_json};
use crate::catalog::{Checkout, KnownFiles, LoadedCatalog, ReleaseNote, Support};
use crate::exit::{Exit, Failure};
use crate::plan::{
    self,
    saved::{self, SavedPlan},
};
use crate::report;
use crate::snapshot::observe::{self, DataReport, Options, SETTLE_TIMEOUT, observe_full, observe_settled};
use crate::state::{Journal, Owner, StateDir};
use crate::upgrade::UpgradeState;

/// `status --json`: the stack, plus what the state directory says about runs on it.
#[derive(serde::Serialize)]
struct StatusReport {
    #[serde(flatten)]
    stack: crate::snapshot::Stack,
    /// A run that stopped services and did not finish (its journal).
    interrupted: Option<Journal<UpgradeState>>,
    /// What `resume` and `rollback` would do about an interrupted upgrade (as `recover` says).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    advice: Vec<String>,
    lock: Option<Owner>,
    data: Option<DataReport>,
    /// What a device and a person get through the API gateway; `None` when the release is
    /// unknown (nothing says which requests its gateway routes).
    smoke: Option<crate::snapshot::smoke::SmokeReport>,
    /// Mender's support of the running release's line.
    support: Option<Support>,
    /// Documented traps of the running release.
    release_notes: Vec<ReleaseNote>,
    /// What the integration checkout's base files say (upstream's or the tool's files of which
    /// release, which ones were edited), and whether that agrees with the images.
    checkout: Option<CheckoutReport>,
}

#[derive(serde::Serialize)]
struct CheckoutReport {
    #[serde(flatten)]
    files: Checkout,
    /// Set when the files say another release than the images.
    disagreement: Option<String>,
}

/// Reads the base files of the checkout in `dir` and classifies them.
fn checkout_report(
    catalog: &LoadedCatalog,
    registry: Option<&str>,
    dir: &Path,
    release: Option<&semver::Version>,
) -> CheckoutReport {
    let files = Checkout::read(&KnownFiles::new(catalog, registry), dir);
    let disagreement = release.and_then(|v| files.disagreement(v));
    CheckoutReport { files, disagreement }
}

/// `status`: the observed stack; with `--require-healthy`, an unhealthy stack or an interrupted
/// run exits 3.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn status(g: &Global, a: StatusArgs) -> anyhow::Result<Exit> {
    let smoke_opts = a.smoke.options()?;
    let catalog = g.load_catalog()?;
    let docker = super::connect().await?;
    let opts = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
    // `--require-healthy` is a verdict: a container still `starting` is waited for first.
    let observed = if a.require_healthy {
        observe_settled(&docker, &catalog.catalog, &opts, SETTLE_TIMEOUT).await
    } else {
        observe_full(&docker, &catalog.catalog, &opts).await
    }
    .map_err(Failure::from)?;
    let data = if a.data { Some(observe::data(&docker, &observed).await.map_err(Failure::from)?) } else { None };
    let smoke = match observed.stack.release {
        // With `--require-healthy` a verdict, so a gateway still starting is given a moment.
        Some(_) if a.require_healthy => {
            Some(observe::smoke_settled(&docker, &observed, &smoke_opts, observe::SMOKE_SETTLE).await)
        }
        Some(_) => Some(observe::smoke(&docker, &observed, &smoke_opts).await),
        None => None,
    };
    let state = StateDir::new(g.state_dir());
    let mut smoke = smoke;
    // A signing key that is not the one the newest backup recorded: every session and device
    // token the stack issued is invalid (the check needs no gateway, only the release's files).
    if let Some(s) = smoke.as_mut() {
        let live = crate::backup::stack_identity(&observed.stack);
        if let Some((name, m)) = crate::backup::bundles::newest_of(&state.backups(), &observed.stack.project, &live)
            && !m.keys.is_empty()
        {
            let now = crate::snapshot::keys::digests(&observed.containers);
            let mut changed = crate::snapshot::keys::changed(&m.keys, &now, &format!("the newest backup ({name})"));
            if !changed.is_empty() {
                changed
                    .push("if the new key is intended, take a backup (`backup`) so that it is the one recorded".into());
            }
            s.add_keys_check(&name, changed);
        }
    }
    let project = observed.stack.project.clone();
    let release = observed.stack.release.clone();
    let checkout = observed
        .stack
        .working_dir
        .as_deref()
        .map(Path::new)
        .filter(|d| d.is_dir())
        .map(|d| checkout_report(&catalog, g.registry(), d, release.as_ref()));
    let c = &catalog.catalog;
    let interrupted: Option<Journal<UpgradeState>> = state.journal(&project);
    let mut advice = interrupted.as_ref().map(|j| crate::upgrade::recover::explain(&project, j)).unwrap_or_default();
    if advice.is_empty() {
        // A journal that cannot be read is an interrupted run too.
        advice.extend(state.pending_upgrade(&project).map(|p| p.to_string()));
    }
    let report = StatusReport {
        interrupted,
        advice,
        lock: state.lock_owner(&project),
        support: release.as_ref().and_then(|v| c.support(v)).cloned(),
        release_notes: release.as_ref().and_then(|v| c.release(v)).map(|r| r.notes.clone()).unwrap_or_default(),
        checkout,
        stack: observed.stack,
        data,
        smoke,
    };
    let healthy = report.stack.healthy
        && report.interrupted.is_none()
        && report.advice.is_empty()
        && report.smoke.as_ref().is_none_or(|s| s.passed);
    if g.json {
        print_json(&report)?;
    } else {
        // An interrupted upgrade comes first: nothing else on the page matters as much.
        if !report.advice.is_empty() {
            print!("{}", report::outcome::interrupted_upgrade(&report.advice));
        }
        print!("{}", report::status::render(&report.stack));
        if let Some(s) = &report.smoke {
            print!("{}", report::status::smoke(s));
        }
        print!(
            "{}",
            report::status::catalog_notes(
                &report.stack,
                report.support.as_ref(),
                c.newest_supported(),
                &report.release_notes,
                report.checkout.as_ref().map(|x| (&x.files, x.disagreement.as_deref())),
            )
        );
        if let Some(j) = report.interrupted.as_ref().filter(|j| j.payload.is_none()) {
            print!("{}", report::outcome::interrupted(j));
        }
        if let Some(d) = &report.data {
            print!("{}", report::outcome::data(d));
        }
    }
    Ok(if a.require_healthy && !healthy { Exit::Precondition } else { Exit::Ok })
}

/// `plan --to V`: the hops from the running release (or `--from`) to `V`.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn plan(g: &Global, a: PlanArgs) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?.catalog;
    let target = parse_version(&a.to)?;
    let mut print = None;
    let start = match &a.from {
        Some(v) => plan::Start { release: parse_version(v)?, drift: vec![], mongo: None },
        None => {
            let docker = super::connect().await?;
            let opts = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
            let observed = observe_full(&docker, &catalog, &opts).await.map_err(Failure::from)?;
            print = observed.print();
            let stack = observed.stack;
            let release = stack.release.clone().ok_or_else(|| {
                Failure::new(
                    Exit::Precondition,
                    format!("the release of project {} is unknown: {}", stack.project, stack.unknown_tags.join(", ")),
                    crate::exit::UNCHANGED_ALL,
                    "pass --from VERSION to plan from a known release",
                )
            })?;
            let drift = stack.services.iter().filter(|s| s.drift.is_some()).map(|s| s.name.clone()).collect();
            plan::Start { release, drift, mongo: stack.mongo.as_ref().and_then(|m| m.running_major()) }
        }
    };
    let p = plan::plan(&start, &catalog, &target).map_err(Failure::from)?;
    // A plan `upgrade` would refuse is not saved to be applied.
    if let (Some(out), Some(stack), None) = (&a.out, print, &p.blocked) {
        let saved = SavedPlan {
            format: saved::FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            saved_at: crate::util::now_rfc3339(),
            catalog_digest: saved::catalog_digest(&catalog),
            stack,
            plan: p.clone(),
        };
        let text = serde_json::to_string_pretty(&saved)?;
        // Like `terraform plan -out`: a typo in the directory is an error, not a new tree.
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            return Err(Failure::new(
                Exit::Usage,
                format!("cannot write the plan file {}: the directory {} does not exist", out.display(), dir.display()),
                crate::exit::UNCHANGED_ALL,
                "give --out a path in an existing directory",
            )
            .into());
        }
        crate::util::write_atomic(out, text.as_bytes(), crate::util::Perm::Keep).map_err(|e| {
            Failure::new(
                Exit::Usage,
                format!("cannot write the plan file {}: {e}", out.display()),
                crate::exit::UNCHANGED_ALL,
                "give --out a path in a writable directory",
            )
        })?;
    }
    if g.json {
        print_json(&p)?;
    } else {
        print!("{}", report::plan::render(&p));
        if let (Some(out), None) = (&a.out, &p.blocked) {
            println!(
                "\nSaved to {0}. `upgrade --plan {0}` carries out exactly this plan, and refuses if the stack changed since.",
                out.display()
            );
        }
    }
    // The plan is printed (one document with --json, `blocked` set); the exit code says that
    // `upgrade` would refuse it, as `upgrade --dry-run` would.
    if let Some(b) = &p.blocked {
        return Ok(super::failed_after_result(Failure::new(
            Exit::Precondition,
            format!("this version cannot carry out the hop {} → {}: {}", b.from, b.to, b.why),
            if a.out.is_some() { "everything: no plan file was written" } else { crate::exit::UNCHANGED_ALL },
            "choose a target `status` lists as carried out by this version, or a newer mender-compose-upgrade",
        )));
    }
    Ok(Exit::Ok)
}
