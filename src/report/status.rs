//! `status` for people: the release, each service's state and health, the databases, the
//! artifact storage and where the stack can go next.

use std::fmt::Write;

use crate::catalog::{Checkout, ReleaseNote, Support, SupportStatus};
use crate::plan::HopKind;
use crate::snapshot::{Drift, SchemaStatus, Stack, StorageKind};

use super::table;

/// The smoke check as text: one line when it passed, each failed check under it otherwise.
pub fn smoke(r: &crate::snapshot::smoke::SmokeReport) -> String {
    let mut out = String::new();
    let via = match (&r.gateway, &r.host) {
        (Some(g), Some(h)) => format!(" through {g} as {h}"),
        (Some(g), None) => format!(" through {g}"),
        _ => String::new(),
    };
    if let Some(why) = &r.skipped {
        let _ = writeln!(out, "Gateway    smoke check skipped: {why}");
        // What needs no gateway (the signing keys) still runs.
        for f in r.failures() {
            let _ = writeln!(out, "  {f}");
        }
    } else if r.passed {
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(out, "Gateway    smoke check passed{via} ({})", names.join(", "));
    } else {
        let _ = writeln!(out, "Gateway    SMOKE CHECK FAILED{via}");
        for f in r.failures() {
            let _ = writeln!(out, "  {f}");
        }
    }
    for c in r.checks.iter().filter(|c| c.passed && c.name == "session") {
        let _ = writeln!(out, "  {}", c.what);
    }
    for n in &r.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}

/// The stack as text for a terminal: project, release, services, databases, storage, next stops.
pub fn render(s: &Stack) -> String {
    let mut out = String::new();
    let dir = s.working_dir.as_deref().map(|d| format!("  ({d})")).unwrap_or_default();
    let _ = writeln!(out, "Project    {}{dir}", s.project);
    match &s.release {
        Some(v) => {
            let drifted = s.services.iter().filter(|x| x.drift.is_some()).count();
            let note = if drifted == 0 {
                String::new()
            } else {
                format!(
                    "  ({} on {})",
                    crate::util::count_len(drifted, "service"),
                    if drifted == 1 { "another image" } else { "other images" }
                )
            };
            let _ = writeln!(out, "Release    Mender Server {v}{note}");
        }
        None => {
            let _ = writeln!(out, "Release    unknown: {}", unknown_release_note(s));
        }
    }
    let problems: usize = s.services.iter().map(|x| x.problems.len()).sum::<usize>() + s.missing.len();
    let _ = writeln!(
        out,
        "Health     {}",
        if s.healthy {
            "healthy".to_string()
        } else {
            format!("UNHEALTHY ({})", crate::util::count_len(problems.max(1), "problem"))
        }
    );
    if let Some(m) = &s.mongo {
        let _ = writeln!(out, "MongoDB    {}", mongo_line(m));
    }
    let _ = writeln!(out, "Artifacts  {}", storage_line(s));
    out.push('\n');
    out.push_str(&services_table(s));
    if !s.databases.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = s
            .databases
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    d.migration.clone().unwrap_or_else(|| if d.exists { "none".into() } else { "-".into() }),
                    d.expected.clone().unwrap_or_default(),
                    match d.status {
                        SchemaStatus::Current => "current",
                        SchemaStatus::Behind => "BEHIND (needs migration)",
                        SchemaStatus::Ahead => "AHEAD (newer than this release)",
                        SchemaStatus::Unknown => "unknown",
                    }
                    .into(),
                ]
            })
            .collect();
        out.push_str(&table::render(&["DATABASE", "MIGRATION_INFO", "RELEASE NEEDS", "SCHEMA"], &rows));
    }
    let issues = problem_lines(s);
    if !issues.is_empty() {
        out.push_str("\nProblems:\n");
        for i in issues {
            let _ = writeln!(out, "  {i}");
        }
    }
    out.push('\n');
    out.push_str(&next_hops(s));
    out
}

fn unknown_release_note(s: &Stack) -> String {
    if s.unknown_tags.is_empty() {
        "no image of this project matches a catalog release".into()
    } else {
        format!("the catalog has no release with {}", s.unknown_tags.join(", "))
    }
}

fn mongo_line(m: &crate::snapshot::MongoState) -> String {
    let image = m.image.clone().unwrap_or_else(|| "no container".into());
    if let Some(r) = &m.refusal {
        let why = match (&r.data_fcv, &r.server_major) {
            (Some(f), Some(s)) => format!("its featureCompatibilityVersion {f} does not run on MongoDB {s}"),
            _ => "mongod exit 62, \"Wrong mongod version\"".to_string(),
        };
        return format!("{} ({image}) REFUSES ITS DATA: {why} (see Problems)", m.service);
    }
    if !m.reachable {
        return format!("{} ({image}) UNREACHABLE: {}", m.service, m.error.clone().unwrap_or_default());
    }
    let server_major = m.server_version.as_deref().and_then(|v| v.rsplit_once('.')).map(|(major, _)| major);
    let fcv = match (&m.fcv, server_major) {
        (Some(f), Some(major)) if f != major => format!(
            "featureCompatibilityVersion {f}, not the server's {major}: the next MongoDB major will not start on \
             this data until it is raised to {major}"
        ),
        (Some(f), _) => format!("featureCompatibilityVersion {f}"),
        (None, _) => "featureCompatibilityVersion unknown".into(),
    };
    format!(
        "{} ({image}), server {}, {fcv}; release expects {}",
        m.service,
        m.server_version.clone().unwrap_or_default(),
        m.expected_major
    )
}

fn storage_line(s: &Stack) -> String {
    let st = &s.storage;
    let bucket = st.bucket.clone().unwrap_or_default();
    let creds = if st.credentials { "credentials set" } else { "NO credentials configured" };
    match st.kind {
        StorageKind::Volume => format!(
            "S3 store inside the stack: service {}, volume {}, bucket {bucket}, {}, {creds}",
            st.service.clone().unwrap_or_default(),
            st.volume.clone().unwrap_or_else(|| "none".into()),
            st.endpoint.clone().unwrap_or_default()
        ),
        StorageKind::S3 => format!(
            "external S3: {}, bucket {bucket}, region {}, {creds}",
            st.endpoint.clone().unwrap_or_else(|| "AWS".into()),
            st.region.clone().unwrap_or_default()
        ),
        StorageKind::Azure => format!(
            "Azure Blob: account {}, container {bucket}, {}, {creds}",
            st.account.clone().unwrap_or_default(),
            st.endpoint.clone().unwrap_or_default()
        ),
        StorageKind::Unknown => "unknown (no deployments service found)".into(),
    }
}

fn services_table(s: &Stack) -> String {
    let rows: Vec<Vec<String>> = s
        .services
        .iter()
        .map(|x| {
            let release = match &x.drift {
                None => s.release.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                Some(Drift::UnknownImage) => "UNKNOWN".into(),
                Some(Drift::OtherRelease { releases }) => {
                    format!("DRIFT {}", releases.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("/"))
                }
            };
            let http = if x.http.is_empty() {
                "-".into()
            } else {
                x.http
                    .iter()
                    .map(|p| format!("{} {}", p.check, p.status.map_or("ERR".into(), |c| c.to_string())))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                x.name.clone(),
                x.image.clone(),
                release,
                if x.restarting { "restarting".into() } else { x.state.clone() },
                x.restarts.to_string(),
                x.docker_health.clone().unwrap_or_else(|| "-".into()),
                http,
                if x.healthy { "ok".into() } else { "UNHEALTHY".into() },
            ]
        })
        .collect();
    table::render(&["SERVICE", "IMAGE", "RELEASE", "STATE", "RESTARTS", "DOCKER", "HTTP", "VERDICT"], &rows)
}

fn problem_lines(s: &Stack) -> Vec<String> {
    let mut out: Vec<String> =
        s.services.iter().flat_map(|x| x.problems.iter().map(move |p| format!("{}: {p}", x.name))).collect();
    out.extend(s.missing.iter().map(|m| format!("{m}: no container (the release has this service)")));
    // A refusal is the cause of the unreachable server; its service's problem says it all.
    if let Some(m) = s.mongo.as_ref().filter(|m| !m.reachable && m.refusal.is_none()) {
        out.push(format!("{}: MongoDB unreachable: {}", m.service, m.error.clone().unwrap_or_default()));
    }
    for d in s.databases.iter().filter(|d| matches!(d.status, SchemaStatus::Behind | SchemaStatus::Ahead)) {
        out.push(format!(
            "database {}: migration_info {} but the release needs {}",
            d.name,
            d.migration.clone().unwrap_or_else(|| "none".into()),
            d.expected.clone().unwrap_or_default()
        ));
    }
    out
}

fn next_hops(s: &Stack) -> String {
    let Some(v) = &s.release else {
        return "Next hops: unknown until the release is identified.\n".into();
    };
    if s.next_hops.is_empty() {
        return format!("Next hops: none; {v} is the newest release the catalog knows.\n");
    }
    let hops: Vec<String> = s
        .next_hops
        .iter()
        .map(|h| {
            let kind = match h.kind {
                HopKind::Patch => "patch",
                HopKind::Minor => "minor",
                HopKind::Major => "major",
                HopKind::Mongo => "MongoDB stage",
            };
            let skips = if h.skips.is_empty() { String::new() } else { format!(", skips {}", h.skips.join(", ")) };
            match &h.blocked {
                None => format!("{} ({kind}{skips})", h.to),
                Some(why) => format!("{} ({kind}{skips}; NOT carried out by this version: {why})", h.to),
            }
        })
        .collect();
    let verdict = if s.next_hops.iter().all(|h| h.blocked.is_none()) {
        "this version carries out each"
    } else {
        "not all carried out by this version"
    };
    let last = s.next_hops.iter().rfind(|h| h.blocked.is_none()).or(s.next_hops.last());
    let last = last.map(|h| h.to.to_string()).unwrap_or_default();
    format!(
        "Next hops from {v} ({verdict}): {}\nSee what a hop involves: mender-compose-upgrade plan --to {last}\n",
        hops.join(", ")
    )
}

/// What the catalog adds to `status`: Mender's support of the running line, the release's
/// documented traps, and what the checkout's files say (with the disagreement, if any).
pub fn catalog_notes(
    s: &Stack,
    support: Option<&Support>,
    newest_supported: Option<&semver::Version>,
    notes: &[ReleaseNote],
    checkout: Option<(&Checkout, Option<&str>)>,
) -> String {
    let mut out = String::new();
    if let (Some(v), Some(sup)) = (&s.release, support) {
        let go = match newest_supported {
            Some(n) if sup.status == SupportStatus::Ended && n > v => format!("; {n} is the newest supported release"),
            _ => String::new(),
        };
        let _ = writeln!(out, "Support    {v}: {}{go} ({})", sup.describe(), sup.source.trim());
    }
    for n in notes {
        let _ = writeln!(out, "Warning    {} ({})", n.text, n.source);
    }
    if let Some((c, disagreement)) = checkout {
        let files = if c.files.is_empty() {
            "no base file of any 3.x release found".to_string()
        } else {
            let upstream = c.files.iter().filter(|f| !f.upstream.is_empty()).count();
            let tool = c.files.iter().filter(|f| f.upstream.is_empty() && !f.tool.is_empty()).count();
            let say = match c.releases.as_slice() {
                [] => String::new(),
                r => format!("; they say {}", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" or ")),
            };
            format!(
                "{} base files: {upstream} upstream's, {tool} written by this tool, {} edited{say}",
                c.files.len(),
                c.edited.len() + c.local.len()
            )
        };
        let _ = writeln!(out, "Checkout   {files}");
        for e in &c.edited {
            let _ = writeln!(
                out,
                "           edited: {} (an upgrade replaces it; settings belong in prod.yml)",
                e.display()
            );
        }
        for e in &c.local {
            let _ = writeln!(out, "           changed locally: {} (an upgrade leaves it as it is)", e.display());
        }
        if let Some(d) = disagreement {
            let _ = writeln!(out, "           WARNING: {d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::MongoState;

    fn mongo(version: &str, fcv: &str) -> MongoState {
        MongoState {
            service: "mender-mongo".into(),
            image: Some("mongo:5.0".into()),
            expected_major: "5.0".into(),
            reachable: true,
            error: None,
            server_version: Some(version.into()),
            fcv: Some(fcv.into()),
            ferretdb: true,
            refusal: None,
        }
    }

    #[test]
    fn a_refusing_mongo_says_so_instead_of_unreachable() {
        let refusal = crate::snapshot::MongoRefusal {
            exit_code: Some(62),
            image: "mongo:6.0".into(),
            server_major: Some("6.0".into()),
            data_fcv: Some("4.4".into()),
            needs_fcv: Some("5.0".into()),
            kind: crate::snapshot::RefusalKind::TooOld,
            put_back: Some("mongo:4.4".into()),
            upgrade_to: None,
            message: "MongoDB 6.0 refuses this data".into(),
        };
        let m = MongoState {
            reachable: false,
            error: Some("server selection timeout".into()),
            server_version: None,
            fcv: None,
            image: Some("mongo:6.0".into()),
            refusal: Some(refusal.clone()),
            ..mongo("5.0.31", "5.0")
        };
        let line = mongo_line(&m);
        assert_eq!(
            line,
            "mender-mongo (mongo:6.0) REFUSES ITS DATA: its featureCompatibilityVersion 4.4 does not run on MongoDB 6.0 \
             (see Problems)"
        );
        let general =
            MongoState { refusal: Some(crate::snapshot::MongoRefusal { data_fcv: None, ..refusal }), ..m.clone() };
        assert!(mongo_line(&general).contains("REFUSES ITS DATA: mongod exit 62"), "{}", mongo_line(&general));
        let plain = MongoState { refusal: None, ..m };
        assert!(mongo_line(&plain).contains("UNREACHABLE: server selection timeout"), "{}", mongo_line(&plain));
    }

    #[test]
    fn fcv_below_the_server_major_is_called_out() {
        let line = mongo_line(&mongo("5.0.31", "4.4"));
        assert!(line.contains("featureCompatibilityVersion 4.4, not the server's 5.0"), "{line}");
        assert!(line.contains("raised to 5.0"), "{line}");
        let line = mongo_line(&mongo("5.0.31", "5.0"));
        assert!(line.contains("featureCompatibilityVersion 5.0;"), "{line}");
        assert!(!line.contains("raised"), "{line}");
        assert!(!line.contains("fixed"), "{line}");
    }
}
