//! What the long verbs print when they are done: backup, verify, upgrade, staging, rehearsal,
//! recover. Pure: each function renders a value to text.

use std::fmt::Write;

use crate::backup::verify::VerifyReport;
use crate::backup::{self, bundle::ARCHIVE};
use crate::engine::docker::Removed;
use crate::staging::UpOutcome;
use crate::staging::rehearse::Rehearsal;
use crate::state::Journal;
use crate::upgrade::recover::RecoverReport;
use crate::upgrade::{Outcome, UpgradeState};
use crate::util::{a, count, count_len, size};

/// `{"event": "result", …}`: the last line of a long command's NDJSON.
pub fn result_line(value: &impl serde::Serialize) -> String {
    let mut v = serde_json::to_value(value).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("event".into(), "result".into());
    }
    v.to_string()
}

/// `backup`.
pub fn backup(o: &backup::Outcome) -> String {
    let m = &o.manifest;
    let docs: u64 = m.databases.iter().flat_map(|d| d.collections.values()).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Backup of {} ({}) written to {}",
        m.project,
        m.mender_version.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        o.bundle.display()
    );
    let _ = writeln!(
        s,
        "  databases: {} ({}), archive {}",
        m.databases.len(),
        count(docs, "document"),
        size(m.files.iter().find(|f| f.path == ARCHIVE).map_or(0, |f| f.size))
    );
    let _ = writeln!(
        s,
        "  artifacts: {}, {} ({})",
        count(m.artifacts.objects, "object"),
        size(m.artifacts.bytes),
        m.artifacts.location
    );
    let _ = writeln!(s, "  writers stopped for {:.1} s", o.downtime_secs);
    if let Some(c) = &o.copy {
        let _ = writeln!(s, "  copied to {} ({}): {}", c.to, c.endpoint, copy_summary(c));
    }
    // Quoted for the shell: the line is meant to be pasted (an --out path may hold spaces).
    let bundle = o.bundle.to_string_lossy();
    let bundle = shlex::try_quote(&bundle).unwrap_or_else(|_| bundle.clone());
    match &m.encryption {
        Some(e) => {
            let _ = writeln!(s, "  encrypted (age) to {}", e.recipients.join(", "));
            let _ = writeln!(s, "Prove it: mender-compose-upgrade verify --restore-test --identity FILE {bundle}");
        }
        None => {
            let _ = writeln!(s, "Prove it: mender-compose-upgrade verify --restore-test {bundle}");
        }
    }
    s
}

fn copy_summary(c: &crate::backup::copy::CopyReport) -> String {
    format!(
        "{} ({}) read back and equal to the manifest in {:.1} s",
        count(c.verified_files, "file"),
        size(c.verified_bytes),
        c.seconds
    )
}

/// `backup copy`.
pub fn copied(c: &crate::backup::copy::CopyReport) -> String {
    format!(
        "Bundle {} copied to {} ({})\n  {}\nRestore from it: download that directory, then `verify` and `restore` it by path\n",
        c.bundle.display(),
        c.to,
        c.endpoint,
        copy_summary(c)
    )
}

/// `verify` when the bundle passed.
pub fn verified(r: &VerifyReport) -> String {
    let c = &r.counted;
    let mut s = format!("{}: OK ({})\n", r.bundle.display(), r.checks.join(", "));
    let _ = writeln!(s, "  files: {}, {} (size and sha256)", count_len(c.files, "file"), size(c.bytes));
    // An encrypted bundle verified without its identity: the archive was not read.
    if r.checks.iter().any(|k| k == "archive") {
        let _ = writeln!(
            s,
            "  archive: {}, {}, {} read back",
            count_len(c.databases, "database"),
            count_len(c.collections, "collection"),
            count(c.documents, "document")
        );
    }
    if r.checks.iter().any(|k| k == "artifacts") {
        let _ = writeln!(s, "  artifacts: {} in the bundle's inventory", count_len(c.artifacts, "object"));
    }
    if let Some(t) = r.restore_seconds {
        let _ = writeln!(s, "  restore test: every collection's count and content digest equal, {t:.1} s");
    }
    s
}

/// A hop's step timings, in the order the steps ran.
fn steps<K: std::fmt::Display>(timings: impl IntoIterator<Item = (K, f64)>, unit: &str) -> String {
    timings.into_iter().map(|(k, v)| format!("{k} {v:.1}{unit}")).collect::<Vec<_>>().join(", ")
}

/// `upgrade` and `resume`.
pub fn upgrade(o: &Outcome) -> String {
    let mut s = String::new();
    if o.dry_run {
        match &o.preview {
            Some(p) => s.push_str(p),
            None => o.advice.iter().for_each(|n| {
                let _ = writeln!(s, "{n}");
            }),
        }
        let _ = writeln!(
            s,
            "Dry run: the pre-flight checks passed; nothing was changed. The upgrade would go {} → {}.",
            o.from, o.to
        );
        return s;
    }
    let _ = writeln!(s, "{} now runs Mender Server {} (from {}).", o.project, o.to, o.from);
    for h in &o.hops {
        let _ = writeln!(
            s,
            "  {}: {:.1} s ({})",
            h.label,
            h.total_secs,
            steps(h.timings.iter().map(|(k, v)| (k, *v)), "s")
        );
    }
    for a in &o.advice {
        let _ = writeln!(s, "Next: {a}");
    }
    if let Some(md) = &o.report_md {
        let _ = writeln!(s, "Report: {}", md.display());
    }
    s
}

/// `staging up`.
pub fn staging_up(o: &UpOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Staging {} runs {} ({}, {}, {} restored from {}).",
        o.name,
        o.release,
        count_len(o.databases, "database"),
        count(o.documents, "document"),
        count(o.artifacts, "artifact"),
        o.bundle.display()
    );
    let _ = writeln!(s, "  {}", steps(o.timings.iter().map(|(k, v)| (k, *v)), " s"));
    let _ =
        writeln!(s, "  isolated: internal network, no host ports, own volumes, traefik disabled on every container");
    for n in &o.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    let _ = writeln!(s, "Look at it: mender-compose-upgrade -p {} status", o.name);
    let _ = writeln!(s, "Remove it:  mender-compose-upgrade staging down --name {}", o.name);
    s
}

/// `staging down`.
pub fn staging_down(name: &str, r: &Removed) -> String {
    format!(
        "Staging {name} removed: {}, {}, {}.\n",
        count_len(r.containers.len(), "container"),
        count_len(r.networks.len(), "network"),
        count_len(r.volumes.len(), "volume")
    )
}

/// `rehearse`.
pub fn rehearsal(r: &Rehearsal) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Rehearsal of {} → {} for {} on staging {}:", r.from, r.to, r.project, r.staging);
    if let Some(up) = &r.staging_up {
        let _ = writeln!(
            s,
            "  staging restored from {} and started: {}",
            r.bundle.display(),
            steps(up.timings.iter().map(|(k, v)| (k, *v)), " s")
        );
    }
    for h in &r.hops {
        let _ = writeln!(
            s,
            "  {}: {:.1} s ({})",
            h.label,
            h.total_secs,
            steps(h.timings.iter().map(|(k, v)| (k, *v)), "s")
        );
    }
    if r.ok {
        let _ = writeln!(
            s,
            "Estimated production maintenance window: {:.0} s. The bundle is marked as proven.",
            r.estimate_secs
        );
    }
    if r.kept {
        let _ = writeln!(s, "Staging kept: mender-compose-upgrade staging down --name {}", r.staging);
    }
    let _ = writeln!(s, "Report: {}", r.report_md.display());
    s
}

/// `recover`.
pub fn recover(r: &RecoverReport) -> String {
    r.lines.iter().map(|l| format!("{l}\n")).collect()
}

/// An interrupted upgrade, as `status` shows it before anything else.
pub fn interrupted_upgrade(advice: &[String]) -> String {
    let mut s = String::from("INTERRUPTED UPGRADE\n");
    for a in advice {
        let _ = writeln!(s, "  {a}");
    }
    s.push('\n');
    s
}

/// An interrupted backup, as `status` reports it.
pub fn interrupted(j: &Journal<UpgradeState>) -> String {
    let names: Vec<&str> = j.stopped.iter().map(|s| s.service.as_str()).collect();
    let alive = if j.owner.is_dead() { "no longer runs" } else { "is still running" };
    format!(
        "\nINTERRUPTED: {} started {} by pid {} on {} ({alive}) stopped {}; the next backup (or `recover`) starts {} again.\n",
        a(&j.operation),
        j.owner.started,
        j.owner.pid,
        j.owner.host,
        if names.is_empty() { "nothing".into() } else { names.join(", ") },
        if names.len() == 1 { "it" } else { "them" }
    )
}

/// `status --data`.
pub fn data(d: &crate::snapshot::observe::DataReport) -> String {
    let docs: u64 = d.databases.iter().flat_map(|db| db.collections.iter()).map(|c| c.count).sum();
    format!(
        "\nData: {}, {}; artifacts: {}\n",
        count_len(d.databases.len(), "database"),
        count(docs, "document"),
        d.artifacts.as_ref().map_or("not listed".into(), |l| count_len(l.len(), "object"))
    )
}

/// `history`, newest first.
pub fn history(project: &str, entries: &[crate::upgrade::history::Entry]) -> String {
    if entries.is_empty() {
        return format!("No upgrade, rollback or restore of {project} is recorded.\n");
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.at.clone(),
                format!("{:?}", e.operation).to_lowercase(),
                format!("{} → {}", e.from, e.to),
                e.at_release.to_string(),
                if e.ok { "ok".into() } else { "FAILED".into() },
                e.dumps_kept().map_or("-".into(), |d| d.display().to_string()),
            ]
        })
        .collect();
    let mut s = super::table::render(&["WHEN", "WHAT", "FROM → TO", "ENDED AT", "RESULT", "DUMPS KEPT"], &rows);
    for e in entries.iter().filter(|e| !e.ok || e.report.is_some()) {
        let _ = writeln!(
            s,
            "{}: {}{}",
            e.at,
            e.result,
            e.report.as_ref().map_or(String::new(), |r| format!(" (report {})", r.display()))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use semver::Version;

    use super::*;
    use crate::upgrade::Step;
    use crate::upgrade::report::HopReport;

    #[test]
    fn an_upgrade_lists_a_stages_steps_in_the_order_they_ran() {
        let v = Version::new(3, 6, 5);
        // Inserted in any order: the map orders the steps as a stage runs them.
        let timings: BTreeMap<Step, f64> = [
            (Step::Gates, 5.0),
            (Step::Up, 4.0),
            (Step::Mongo, 3.0),
            (Step::Rewrite, 0.1),
            (Step::Copy, 2.0),
            (Step::MongoStop, 1.0),
            (Step::Stop, 0.5),
        ]
        .into();
        let o = Outcome {
            project: "menderproduction".into(),
            from: v.clone(),
            to: v.clone(),
            hops: vec![HopReport {
                from: v.clone(),
                to: v,
                label: "MongoDB 4.4 → 5.0 at 3.6.5".into(),
                timings,
                total_secs: 15.6,
                rollback_class: "original-volume".into(),
            }],
            report_md: None,
            report_json: None,
            dry_run: false,
            advice: vec![],
            plan: None,
            preview: None,
        };
        let text = upgrade(&o);
        assert!(
            text.contains("(stop 0.5s, mongo-stop 1.0s, copy 2.0s, rewrite 0.1s, mongo 3.0s, up 4.0s, gates 5.0s)"),
            "{text}"
        );
    }

    #[test]
    fn staging_texts_count_in_english_and_keep_the_run_order() {
        let timings: indexmap::IndexMap<String, f64> =
            [("prepare", 1.0), ("restore", 2.0), ("compare", 0.5), ("start", 3.0), ("gates", 4.0)]
                .map(|(k, v)| (k.to_string(), v))
                .into_iter()
                .collect();
        let o = UpOutcome {
            name: "p-staging".into(),
            source_project: "p".into(),
            release: Version::new(3, 7, 11),
            bundle: PathBuf::from("/b"),
            dir: PathBuf::from("/d"),
            timings,
            databases: 1,
            documents: 1,
            artifacts: 0,
            notes: vec![],
        };
        let text = staging_up(&o);
        assert!(text.contains("(1 database, 1 document, 0 artifacts restored from /b)"), "{text}");
        assert!(text.contains("prepare 1.0 s, restore 2.0 s, compare 0.5 s, start 3.0 s, gates 4.0 s"), "{text}");
        // The JSON keeps the same keys, as an object in run order (`t['restore']` still works).
        let json = serde_json::to_string(&o).unwrap();
        assert!(
            json.contains(r#""timings":{"prepare":1.0,"restore":2.0,"compare":0.5,"start":3.0,"gates":4.0}"#),
            "{json}"
        );
        let removed = Removed { containers: vec!["c".into()], networks: vec![], volumes: vec!["a".into(), "b".into()] };
        assert_eq!(staging_down("s", &removed), "Staging s removed: 1 container, 0 networks, 2 volumes.\n");
    }
}
