//! `backup` and `verify`.

use super::{BackupArgs, Global, VerifyArgs, print_json};
use crate::backup::{self, BackupOptions, artifacts::Choice};
use crate::exit::{Exit, Failure};
use crate::report::outcome;
use crate::snapshot::observe::Options;
use crate::state::StateDir;

/// `backup`: takes a bundle of the stack; a backup whose writers did not all start again is a
/// failure (exit 1) although the bundle is complete.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn backup(g: &Global, a: BackupArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let catalog = g.load_catalog()?;
    let docker = super::connect().await?;
    let state = StateDir::new(g.state_dir());
    let artifacts = match (a.skip_artifacts, a.artifacts_to) {
        (true, _) => Choice::Skip,
        (false, Some(d)) => Choice::To(d),
        (false, None) => Choice::Auto,
    };
    let opts =
        BackupOptions { out: a.out, skip_space_check: a.skip_space_check, artifacts, grace: a.stop.stop_timeout };
    let observe = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
    let progress = g.progress();
    let done = backup::run(&docker, &catalog.catalog, &state, &observe, &opts, &progress).await;
    progress.finish();
    let o = done.map_err(Failure::from)?;
    if g.json {
        println!("{}", outcome::result_line(&o));
    } else {
        print!("{}", outcome::backup(&o));
    }
    if !o.restart_failures.is_empty() {
        return Err(Failure::new(
            Exit::Unexpected,
            format!(
                "the backup is complete, but these services did not start again: {}",
                o.restart_failures.join("; ")
            ),
            "the bundle is complete",
            "start them with `docker start <container>` or production/run up -d",
        )
        .into());
    }
    Ok(Exit::Ok)
}

/// `verify BUNDLE [--restore-test]`: checks a bundle and records the result in its manifest; a
/// damaged bundle exits 3.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn verify(g: &Global, a: VerifyArgs) -> anyhow::Result<Exit> {
    let docker = if a.restore_test { Some(super::connect().await?) } else { None };
    let progress = g.progress();
    let report = backup::verify::verify(&a.bundle, docker.as_ref(), &progress).await;
    progress.finish();
    let report = report.map_err(Failure::from)?;
    if g.json {
        print_json(&report)?;
    } else if report.ok {
        print!("{}", outcome::verified(&report));
    }
    if report.ok {
        return Ok(Exit::Ok);
    }
    Err(report.failure().into())
}
