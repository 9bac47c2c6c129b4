//! `backup`, `backup list`, `backup prune` and `verify`.

use std::time::SystemTime;

use super::{BackupArgs, CopyArgs, Global, PruneArgs, VerifyArgs, print_json};
use crate::backup::bundles::{self, Listed};
use crate::backup::copy::{self, Destination};
use crate::backup::prune::Policy;
use crate::backup::{self, BackupOptions, artifacts::Choice};
use crate::exit::{Exit, Failure};
use crate::report::{backups, outcome};
use crate::snapshot::observe::Options;
use crate::state::StateDir;

/// `backup`: takes a bundle of the stack; a backup whose writers did not all start again is a
/// failure (exit 1) although the bundle is complete. With `--copy-to`, the destination is checked
/// before any downtime (exit 3, nothing done) and the complete bundle copied and read back
/// afterwards (exit 6 when that fails: the bundle is kept).
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn backup(g: &Global, a: BackupArgs) -> anyhow::Result<Exit> {
    crate::interrupt::install();
    let catalog = g.load_catalog()?;
    let state = StateDir::new(g.state_dir());
    let artifacts = match (a.skip_artifacts, a.artifacts_to) {
        (true, _) => Choice::Skip,
        (false, Some(d)) => Choice::To(d),
        (false, None) => Choice::Auto,
    };
    // Bad recipients are a usage error before anything is looked at.
    let recipients = backup::crypt::Recipients::parse(&a.encrypt_to, &a.encrypt_to_file).map_err(Failure::from)?;
    // The copy's destination is checked before any downtime: a backup whose copy cannot succeed is
    // not started.
    let dest = match &a.copy_to {
        Some(t) => {
            let url = t.url();
            let d = Destination::open(t.clone(), a.endpoint_url.as_deref(), &copy::process_env)
                .map_err(|e| e.failure(None, &url, a.endpoint_url.as_deref()))?;
            d.check().await.map_err(|e| e.failure(None, &url, a.endpoint_url.as_deref()))?;
            Some((d, url))
        }
        None => None,
    };
    let opts = BackupOptions {
        out: a.out,
        skip_space_check: a.skip_space_check,
        artifacts,
        grace: a.stop.stop_timeout,
        recipients,
    };
    let docker = super::connect().await?;
    let observe = Options { project: g.project.as_deref(), registry: g.registry(), counts: false };
    let progress = g.progress();
    let done = backup::run(&docker, &catalog.catalog, &state, &observe, &opts, &progress).await;
    progress.finish();
    let mut o = done.map_err(Failure::from)?;
    let mut copy_failure = None;
    if let Some((d, url)) = &dest {
        let progress = g.progress();
        match copy::copy(&o.bundle, d, &progress).await {
            Ok(r) => o.copy = Some(r),
            Err(e) => copy_failure = Some(e.failure(Some(&o.bundle), url, a.endpoint_url.as_deref())),
        }
        progress.finish();
    }
    if g.json {
        println!("{}", outcome::result_line(&o));
    } else {
        print!("{}", outcome::backup(&o));
    }
    if let Some(f) = copy_failure {
        return Err(f.into());
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

/// `backup copy BUNDLE --to URL`: copies an existing bundle off the host and reads every file back
/// against its manifest; `--json`: the copy report as one document. The bundle is only read.
///
/// # Errors
/// No such bundle (exit 2); no credentials (exit 3); the copy failed (exit 6, the bundle kept).
pub async fn copy(g: &Global, a: CopyArgs) -> anyhow::Result<Exit> {
    let state = StateDir::new(g.state_dir());
    let bundle = crate::backup::bundle::resolve(&state.backups(), &a.bundle).map_err(Failure::from)?;
    let url = a.to.url();
    let dest = Destination::open(a.to, a.endpoint_url.as_deref(), &copy::process_env)
        .map_err(|e| e.failure(Some(&bundle), &url, a.endpoint_url.as_deref()))?;
    let progress = g.progress();
    let done = copy::copy(&bundle, &dest, &progress).await;
    progress.finish();
    let report = done.map_err(|e| e.failure(Some(&bundle), &url, a.endpoint_url.as_deref()))?;
    if g.json {
        println!("{}", outcome::result_line(&report));
    } else {
        print!("{}", outcome::copied(&report));
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
    let bundle =
        crate::backup::bundle::resolve(&StateDir::new(g.state_dir()).backups(), &a.bundle).map_err(Failure::from)?;
    let report = backup::verify::verify(&bundle, a.identity.identity.as_deref(), docker.as_ref(), &progress).await;
    progress.finish();
    let report = report.map_err(Failure::from)?;
    if g.json {
        println!("{}", outcome::result_line(&report));
    } else if report.ok {
        print!("{}", outcome::verified(&report));
        for n in &report.notes {
            println!("  note: {n}");
        }
    }
    if report.ok {
        return Ok(Exit::Ok);
    }
    if g.json {
        // The result line (`ok: false`, the problems) is already printed.
        return Ok(super::failed_after_result(report.failure()));
    }
    Err(report.failure().into())
}

/// `backup list`: the bundles in the state directory's backups (with `-p`, that project's), oldest
/// first; `--json`: one document `{"backups": DIR, "bundles": [...]}`. Needs no daemon.
///
/// # Errors
/// The backups directory cannot be read (exit 3).
pub fn list(g: &Global) -> anyhow::Result<Exit> {
    let state = StateDir::new(g.state_dir());
    let dir = state.backups();
    let holders = bundles::holders(&state, &crate::staging::record_texts(&state));
    let mut listed: Vec<Listed> = bundles::scan(&dir, &holders, SystemTime::now()).map_err(|e| {
        Failure::new(
            Exit::Precondition,
            format!("cannot read the backups directory {}: {e}", dir.display()),
            crate::exit::UNCHANGED_ALL,
            "check the state directory (--state-dir) and its permissions",
        )
    })?;
    if let Some(p) = &g.project {
        listed.retain(|l| l.project.as_ref() == Some(p));
    }
    if g.json {
        print_json(&serde_json::json!({"backups": dir, "bundles": listed}))?;
    } else {
        print!("{}", backups::list(&dir, &listed));
    }
    Ok(Exit::Ok)
}

/// `backup prune --keep-last N --keep-within DURATION [--dry-run]`: removes the bundles no rule
/// keeps (with `-p`, among that project's only) and reports every bundle with why it stays;
/// `--json`: the report as one document. A
/// bundle that fails to be removed is reported and the rest goes on; the command then exits 1.
/// Needs no daemon.
///
/// # Errors
/// No keep rule (exit 2, nothing removed); an unreadable backups directory (exit 3).
pub fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<Exit> {
    let state = StateDir::new(g.state_dir());
    let policy = Policy { keep_last: a.keep_last.map(|n| n as usize), keep_within: a.keep_within };
    let staging = crate::staging::record_texts(&state);
    let report = bundles::prune(&state, &staging, &policy, g.project.as_deref(), a.dry_run, SystemTime::now())
        .map_err(Failure::from)?;
    if g.json {
        print_json(&report)?;
    } else {
        print!("{}", backups::prune(&report));
    }
    if report.failed > 0 {
        // The report (one document with --json) already names each failure; a second error
        // document would break the one-document rule.
        eprintln!(
            "error: {} of the bundles to remove could not be removed (named above); the others were handled",
            report.failed
        );
        return Ok(Exit::Unexpected);
    }
    Ok(Exit::Ok)
}
