//! `backup list` and `backup prune` for people: a table of the bundles, and what prune kept (with
//! why) and removed. Pure.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration};

use crate::backup::bundles::{Action, Listed, PruneReport};

use super::table;

fn age(l: &Listed) -> String {
    l.age_secs.map_or_else(|| "?".into(), |s| format!("{} ago", HumanDuration(Duration::from_secs(s))))
}

fn release(l: &Listed) -> String {
    l.release.as_ref().map_or_else(|| "?".into(), ToString::to_string)
}

fn needed(l: &Listed) -> String {
    let n: Vec<String> = l.needed_by.iter().map(ToString::to_string).collect();
    if n.is_empty() { "-".into() } else { n.join("; ") }
}

/// `backup list`: one row per bundle, oldest first, then the total.
pub fn list(backups: &Path, bundles: &[Listed]) -> String {
    if bundles.is_empty() {
        return format!("No bundles in {}.\n", backups.display());
    }
    let rows: Vec<Vec<String>> = bundles
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                age(l),
                release(l),
                l.project.clone().unwrap_or_else(|| "?".into()),
                HumanBytes(l.size_bytes).to_string(),
                match &l.problem {
                    Some(p) => format!("UNREADABLE: {p}"),
                    None => l.proof.summary(),
                },
                needed(l),
            ]
        })
        .collect();
    let mut s = table::render(&["BUNDLE", "AGE", "RELEASE", "PROJECT", "SIZE", "PROVEN", "NEEDED BY"], &rows);
    let total: u64 = bundles.iter().map(|l| l.size_bytes).sum();
    let n = bundles.len();
    let _ = writeln!(
        s,
        "\n{n} {} in {}, {} in all.",
        if n == 1 { "bundle" } else { "bundles" },
        backups.display(),
        HumanBytes(total)
    );
    s
}

/// `backup prune`: every bundle with what was done and why it stays, then the totals.
pub fn prune(r: &PruneReport) -> String {
    let mut s = String::new();
    if r.dry_run {
        s.push_str("Dry run: nothing is removed.\n");
    }
    if r.bundles.is_empty() {
        let _ = writeln!(s, "No bundles in {}.", r.backups.display());
        return s;
    }
    for e in &r.bundles {
        let b = &e.bundle;
        let what = match e.action {
            Action::Keep => "keep",
            Action::WouldRemove => "would remove",
            Action::Removed => "removed",
            Action::Failed => "FAILED to remove",
        };
        let _ = writeln!(s, "{what:<16} {}  ({}, {}, {})", b.name, release(b), age(b), HumanBytes(b.size_bytes));
        for why in &e.why {
            let _ = writeln!(s, "{:16}   kept: {why}", "");
        }
        if let Some(err) = &e.error {
            let _ = writeln!(s, "{:16}   error: {err}", "");
        }
    }
    let removed = if r.dry_run { "would be removed" } else { "removed" };
    let _ = writeln!(s, "\n{} kept, {} {removed} ({}).", r.kept, r.removed, HumanBytes(r.freed_bytes));
    if r.failed > 0 {
        let _ = writeln!(s, "{} could not be removed: see the errors above.", r.failed);
    }
    if r.dry_run {
        s.push_str("Dry run: nothing was removed; run again without --dry-run to remove them.\n");
    }
    s
}
