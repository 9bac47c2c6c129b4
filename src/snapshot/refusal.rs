//! A MongoDB that refuses its data's featureCompatibilityVersion: what mongod says when it will
//! not start, turned into what happened and what to do. Pure: decided from the container's exit
//! code and the last lines of its log, unit-tested on data.
//!
//! Facts (mongod's sources and the MongoDB manual):
//! - A server of major M runs on data whose featureCompatibilityVersion is M or the major before
//!   (its "last LTS"; from 5.0 also the last continuous release): setFeatureCompatibilityVersion,
//!   e.g. "4.4: Available on MongoDB 4.4 and 5.0 Deployments"
//!   (<https://www.mongodb.com/docs/v5.0/reference/command/setFeatureCompatibilityVersion/>), and
//!   "To upgrade an existing MongoDB deployment to 6.0, you must be running a 5.0-series release
//!   … if you are running a 4.4-series, you must upgrade first to 5.0 before you can upgrade to
//!   6.0" (<https://www.mongodb.com/docs/v6.0/release-notes/6.0-upgrade-standalone/>).
//! - On other data mongod ends at startup, before it accepts a connection, with the fatal log line
//!   id 20573 "Wrong mongod version" whose `error` names the stored document
//!   (`{ _id: "featureCompatibilityVersion", version: "4.4" }`, or "found 4.2, expected …" in 4.4)
//!   and says "If the current featureCompatibilityVersion is below 5.0, see the documentation on
//!   upgrading" (mongod_main.cpp, feature_compatibility_version_parser.cpp; SERVER-26989 "should
//!   fail with helpful error message if started on featureCompatibilityVersion=3.4 data files"),
//!   and exits with code 62 (`ExitCode::needDowngrade`, EXIT_NEED_DOWNGRADE in
//!   src/mongo/util/exit_code.h). The check runs before the server takes any write, so the data
//!   stays as the last server left it.

use semver::Version;
use serde::Serialize;

use crate::catalog::{Catalog, ImageRef, Release};

/// mongod's exit code for "Wrong mongod version" (`ExitCode::needDowngrade`).
pub const EXIT_NEED_DOWNGRADE: i64 = 62;

/// How many lines of the container's log are read to explain an exit (the fatal line is among
/// the last of each failed start; a real mongod logs a few dozen shutdown lines after it).
pub const LOG_TAIL_LINES: usize = 100;

/// mongod's fatal line id for a binary that refuses the stored featureCompatibilityVersion.
const WRONG_VERSION_ID: &str = "20573";
const WRONG_VERSION_MSG: &str = "Wrong mongod version";

/// What mongod's "Wrong mongod version" line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrongVersion {
    /// The featureCompatibilityVersion stored in the data (`4.4`), when the line names it.
    pub data_fcv: Option<String>,
    /// The lowest featureCompatibilityVersion the binary accepts (`5.0` of "If the current
    /// featureCompatibilityVersion is below 5.0"), when the line says it.
    pub lowest_accepted: Option<String>,
}

/// The last "Wrong mongod version" line of `log` (mongod's JSON log lines, or anything around
/// them), decoded; `None` when there is none.
pub fn wrong_version(log: &str) -> Option<WrongVersion> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(WRONG_VERSION_MSG) || l.contains(&format!("\"id\":{WRONG_VERSION_ID},")))?;
    // mongod logs one JSON document per line; the explanation is its `attr.error`.
    let text = line
        .find('{')
        .and_then(|at| serde_json::from_str::<serde_json::Value>(&line[at..]).ok())
        .and_then(|v| v.pointer("/attr/error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| line.replace("\\\"", "\""));
    let data_fcv = after(&text, "featureCompatibilityVersion\", version: \"", '"')
        .or_else(|| after(&text, "Invalid value for version, found ", ','))
        .filter(|v| is_major(v));
    let lowest_accepted =
        after(&text, "If the current featureCompatibilityVersion is below ", ',').filter(|v| is_major(v));
    Some(WrongVersion { data_fcv, lowest_accepted })
}

/// The text after `marker` up to `end` (or a space), trimmed of a final `.`.
fn after(text: &str, marker: &str, end: char) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let value: String = rest.chars().take_while(|c| *c != end && !c.is_whitespace()).collect();
    Some(value.trim_end_matches('.').to_string()).filter(|v| !v.is_empty())
}

/// `X.Y` with numbers.
fn is_major(v: &str) -> bool {
    v.split_once('.').is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
}

/// The MongoDB major of a version or image tag: `5.0` of `5.0.31`, `6.0` of `6.0`, `4.4` of
/// `4.4-focal`; `None` when it does not start with two numbers.
pub fn major_of(version: &str) -> Option<String> {
    let mut parts = version.split(['.', '-']);
    Some(format!("{}.{}", parts.next()?.parse::<u32>().ok()?, parts.next()?.parse::<u32>().ok()?))
}

fn major_key(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// MongoDB majors in upgrade order, from before the catalog's first (`mongo_majors` starts at
/// 4.4, but a 4.4 server's refusal names FCV 4.2 data).
const MAJORS: &[&str] = &["4.0", "4.2", "4.4", "5.0", "6.0", "7.0", "8.0"];

/// The MongoDB major before `major` (mongod's "last LTS", the lowest featureCompatibilityVersion
/// it accepts): 8.0 → 7.0, 7.0 → 6.0, 6.0 → 5.0, 5.0 → 4.4, 4.4 → 4.2 (setFeatureCompatibilityVersion
/// of each major, MongoDB manual).
pub fn previous_major(major: &str) -> Option<&'static str> {
    let i = MAJORS.iter().position(|m| *m == major)?;
    i.checked_sub(1).map(|j| MAJORS[j])
}

/// The major after `major` in mongod's upgrade order (the server that also runs on its data).
fn next_major(major: &str) -> Option<&'static str> {
    let i = MAJORS.iter().position(|m| *m == major)?;
    MAJORS.get(i + 1).copied()
}

/// A MongoDB container that will not start on its data, explained.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MongoRefusal {
    /// mongod's exit code as Docker keeps it (`62`), when the container is not running.
    pub exit_code: Option<i64>,
    /// The image that refuses the data (`mongo:6.0`).
    pub image: String,
    /// Its MongoDB major (`6.0`), from the image tag.
    pub server_major: Option<String>,
    /// The data's featureCompatibilityVersion as mongod's log line names it (`4.4`).
    pub data_fcv: Option<String>,
    /// The lowest featureCompatibilityVersion that server accepts (`5.0`).
    pub needs_fcv: Option<String>,
    /// `too-old`: the data's FCV is below what the server accepts (a major skipped, or an FCV not
    /// raised); `too-new`: the data was last run by a newer major; `unknown`: the log did not say.
    pub kind: RefusalKind,
    /// The image to put back: one that runs on this data, under the stack's release.
    pub put_back: Option<String>,
    /// The release an `upgrade --to` takes the stack to, MongoDB one major at a time, up to (at
    /// least) the major that was tried; only for `too-old`.
    pub upgrade_to: Option<Version>,
    /// What happened and what to do, in one paragraph.
    pub message: String,
}

/// Which way the data and the server disagree.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalKind {
    /// The data's FCV is older than the server accepts.
    TooOld,
    /// The data's FCV is newer than the server's own major.
    TooNew,
    /// mongod exited with 62 but its log did not name the FCV.
    Unknown,
}

/// The mongo container as the decision needs it.
#[derive(Debug, Clone, Default)]
pub struct Seen<'a> {
    /// The image the container was created from (`testbed.local/mongo:6.0`).
    pub image: &'a str,
    /// It is running (Docker's word, which includes restarting).
    pub running: bool,
    /// Docker is restarting it after an exit.
    pub restarting: bool,
    /// Exit code of its last run (`0` while it runs).
    pub exit_code: Option<i64>,
    /// The last lines of its log, when they were read.
    pub log: Option<&'a str>,
    /// The helper reached the server.
    pub reachable: bool,
}

/// Decides whether the stack's MongoDB refuses its data and says so: when the container does not
/// stay up (exited, restarting, or not answering) and mongod exited with 62 or its log has the
/// "Wrong mongod version" line. `release` is the stack's release (for the image to put back and
/// the upgrade to run), `registry` the mirror prefix.
pub fn diagnose(
    seen: &Seen<'_>,
    release: Option<&Release>,
    catalog: &Catalog,
    registry: Option<&str>,
) -> Option<MongoRefusal> {
    let up = seen.running && !seen.restarting && seen.reachable;
    if up {
        return None;
    }
    let said = seen.log.and_then(wrong_version);
    let exit = seen.exit_code.filter(|c| *c == EXIT_NEED_DOWNGRADE);
    if said.is_none() && exit.is_none() {
        return None;
    }
    let said = said.unwrap_or_default();
    let img = ImageRef::parse(seen.image, registry);
    let server_major = img.tag.as_deref().and_then(major_of);
    let needs_fcv =
        said.lowest_accepted.clone().or_else(|| server_major.as_deref().and_then(previous_major).map(str::to_string));
    let kind = match (&said.data_fcv, &needs_fcv, &server_major) {
        (Some(f), Some(n), _) if major_key(f) < major_key(n) => RefusalKind::TooOld,
        (Some(f), _, Some(s)) if major_key(f) > major_key(s) => RefusalKind::TooNew,
        _ => RefusalKind::Unknown,
    };
    let put_back = release.and_then(|r| image_for(r, said.data_fcv.as_deref(), registry));
    // The tool's upgrade starts from a MongoDB the release documents: without one, none helps.
    let upgrade_to = match (kind, release, &server_major, &put_back) {
        (RefusalKind::TooOld, Some(r), Some(m), Some(_)) => upgrade_target(catalog, r, m),
        _ => None,
    };
    let exit_code = if seen.running && !seen.restarting { None } else { seen.exit_code };
    let mut r = MongoRefusal {
        exit_code,
        image: seen.image.to_string(),
        server_major,
        data_fcv: said.data_fcv,
        needs_fcv,
        kind,
        put_back,
        upgrade_to,
        message: String::new(),
    };
    r.message = words(&r, release.map(|r| &r.mongo.major));
    Some(r)
}

/// The image of the release's MongoDB repository that runs on data at `fcv`: the release's own
/// major when it accepts that FCV, else another major the release documents that does (the one
/// equal to the FCV first); without an FCV, the release's own image.
fn image_for(r: &Release, fcv: Option<&str>, registry: Option<&str>) -> Option<String> {
    let base = r.services.get(&r.mongo.service).map(|s| ImageRef::parse(&s.image, None))?;
    let accepts = |m: &str| fcv.is_none_or(|f| f == m || previous_major(m) == Some(f));
    let supported = crate::plan::supported_majors(r);
    let major = if accepts(&r.mongo.major) {
        r.mongo.major.clone()
    } else {
        let mut fit: Vec<&String> = supported.iter().filter(|m| accepts(m)).collect();
        fit.sort_by_key(|m| Some(m.as_str()) != fcv);
        (*fit.first()?).clone()
    };
    Some(ImageRef { tag: Some(major), digest: None, ..base }.qualified(registry))
}

/// The first line after `r`'s whose MongoDB major is `major` or newer, as the release a hop into
/// it lands on (the line's stop, `4.0.4`): `upgrade --to` it runs every MongoDB stage up to
/// there, one major at a time.
fn upgrade_target(catalog: &Catalog, r: &Release, major: &str) -> Option<Version> {
    let mut later: Vec<&Release> = catalog
        .releases
        .iter()
        .filter(|x| x.version > r.version && major_key(&x.mongo.major) >= major_key(major))
        .collect();
    later.sort_by(|a, b| a.version.cmp(&b.version));
    let first = later.first()?;
    let stop = catalog
        .line(&crate::catalog::line_name(&first.version))
        .and_then(|l| l.stop.as_ref())
        .filter(|s| later.iter().any(|x| &x.version == *s));
    Some(stop.unwrap_or(&first.version).clone())
}

/// Who writes featureCompatibilityVersion `f`: a server of major `f`, and one of the next major
/// until its FCV is raised.
fn written_by(f: &str) -> String {
    match next_major(f) {
        Some(n) => format!("set by MongoDB {f}, or by {n} before its featureCompatibilityVersion was raised"),
        None => format!("set by MongoDB {f}"),
    }
}

fn words(r: &MongoRefusal, release_major: Option<&String>) -> String {
    let server = r.server_major.as_deref().map_or_else(|| format!("MongoDB ({})", r.image), |m| format!("MongoDB {m}"));
    let a_server = r.server_major.as_deref().map_or_else(|| "this server".to_string(), |m| format!("a {m} server"));
    let how = match r.exit_code {
        Some(c) => format!("mongod exit {c}, \"{WRONG_VERSION_MSG}\""),
        None => format!("mongod's log: \"{WRONG_VERSION_MSG}\""),
    };
    let what = match (r.kind, &r.data_fcv) {
        (RefusalKind::TooOld, Some(f)) => format!(
            "{server} refuses this data: its featureCompatibilityVersion is {f} ({}), and {a_server} needs {} or newer ({how}).",
            written_by(f),
            r.needs_fcv.as_deref().unwrap_or("a newer one")
        ),
        (RefusalKind::TooNew, Some(f)) => format!(
            "{server} refuses this data: its featureCompatibilityVersion is {f}, newer than {a_server} runs; the data was last run by MongoDB {f} or newer ({how})."
        ),
        _ => format!(
            "{server} refuses to start on this data: its featureCompatibilityVersion is not one {a_server} accepts{} ({how}).",
            match (r.needs_fcv.as_deref(), r.server_major.as_deref()) {
                (Some(n), Some(m)) => format!(", {n} to {m}"),
                _ => String::new(),
            }
        ),
    };
    let back = match (&r.put_back, &r.data_fcv) {
        (Some(i), _) => format!("Put back the image the data was last run with ({i}) and start it"),
        (None, Some(f)) => match next_major(f) {
            Some(n) => format!("Put back an image that runs this data (MongoDB {f} or {n}) and start it"),
            None => format!("Put back an image that runs this data (MongoDB {f}) and start it"),
        },
        (None, None) => "Put back the image the data was last run with and start it".to_string(),
    };
    let next = match (r.kind, &r.upgrade_to) {
        (RefusalKind::TooOld, _) if r.put_back.is_none() => "; no MongoDB this release documents runs this data, so \
             raise its featureCompatibilityVersion there first, one major at a time (setFeatureCompatibilityVersion), \
             before mender-compose-upgrade can take it further."
            .to_string(),
        (RefusalKind::TooOld, Some(v)) => format!(
            ", then upgrade one MongoDB major at a time: mender-compose-upgrade upgrade --to {v} (plan --to {v} shows each MongoDB stage)."
        ),
        (RefusalKind::TooOld, None) => format!(
            "; no release in the catalog runs MongoDB {} after this one, so keep the MongoDB major the release runs{}.",
            r.server_major.as_deref().unwrap_or("of that image"),
            release_major.map(|m| format!(" ({m})")).unwrap_or_default()
        ),
        (RefusalKind::TooNew, _) => {
            "; a MongoDB major cannot be undone by swapping the image back (a backup of before the raise can, with restore).".to_string()
        }
        (RefusalKind::Unknown, _) => {
            "; then `status` shows the data's featureCompatibilityVersion, and mender-compose-upgrade upgrade moves MongoDB one major at a time.".to_string()
        }
    };
    format!("{what} The data was not changed. {back}{next}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::LoadedCatalog;

    fn cat() -> Catalog {
        LoadedCatalog::embedded().unwrap().catalog
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    /// The stand-in's (and mongod 6.0's) fatal line for FCV 4.4 data, as fcv.go writes it.
    const LOG_60_ON_44: &str = r#"{"t":{"$date":"2026-12-01T09:00:00.000Z"},"s":"I",  "c":"CONTROL",  "id":0, "msg":"starting"}
{"t":{"$date":"2026-12-01T09:00:00.100Z"},"s":"F",  "c":"CONTROL",  "id":20573,   "ctx":"initandlisten","msg":"Wrong mongod version","attr":{"error":"UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document (ERROR: Location4926900: Invalid featureCompatibilityVersion document in admin.system.version: { _id: \"featureCompatibilityVersion\", version: \"4.4\" }. See https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility. :: caused by :: Invalid feature compatibility version value, expected '5.0' or '5.3' or '6.0. See https://docs.mongodb.com/master/release-notes/5.0-compatibility/#feature-compatibility.). If the current featureCompatibilityVersion is below 5.0, see the documentation on upgrading at https://docs.mongodb.com/master/release-notes/5.0/#upgrade-procedures."}}
"#;

    /// mongod 4.4's wording (BadValue … found 4.0 …).
    const LOG_44_ON_40: &str = r#"{"t":{"$date":"2026-12-01T09:00:00.100Z"},"s":"F",  "c":"CONTROL",  "id":20573,   "ctx":"initandlisten","msg":"Wrong mongod version","attr":{"error":"UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document (ERROR: BadValue: Invalid value for version, found 4.0, expected '4.4' or '4.2'. Contents of featureCompatibilityVersion document in admin.system.version: { _id: \"featureCompatibilityVersion\", version: \"4.0\" }. See https://docs.mongodb.com/master/release-notes/4.4-compatibility/#feature-compatibility.). If the current featureCompatibilityVersion is below 4.2, see the documentation on upgrading at https://docs.mongodb.com/master/release-notes/4.4/#upgrade-procedures."}}"#;

    fn restarting<'a>(image: &'a str, log: Option<&'a str>) -> Seen<'a> {
        Seen { image, running: true, restarting: true, exit_code: Some(62), log, reachable: false }
    }

    #[test]
    fn the_fatal_line_names_the_data_fcv_and_the_lowest_accepted() {
        let w = wrong_version(LOG_60_ON_44).unwrap();
        assert_eq!(w.data_fcv.as_deref(), Some("4.4"));
        assert_eq!(w.lowest_accepted.as_deref(), Some("5.0"));
        let w = wrong_version(LOG_44_ON_40).unwrap();
        assert_eq!(w.data_fcv.as_deref(), Some("4.0"));
        assert_eq!(w.lowest_accepted.as_deref(), Some("4.2"));
        // Docker's timestamps in front of the JSON, or a line that is not JSON at all.
        let prefixed = format!("2026-12-01T09:00:00.1Z {}", LOG_60_ON_44.lines().nth(1).unwrap());
        assert_eq!(wrong_version(&prefixed).unwrap().data_fcv.as_deref(), Some("4.4"));
        let broken = LOG_60_ON_44.lines().nth(1).unwrap().replace("}}", "");
        assert_eq!(wrong_version(&broken).unwrap().data_fcv.as_deref(), Some("4.4"));
        assert_eq!(wrong_version("{\"msg\":\"Waiting for connections\"}\n"), None);
    }

    #[test]
    fn a_6_0_server_on_4_4_data_is_explained_with_what_to_do() {
        let c = cat();
        let r = c.release(&v("3.6.5")).unwrap();
        let seen = restarting("testbed.local/mongo:6.0", Some(LOG_60_ON_44));
        let d = diagnose(&seen, Some(r), &c, Some("testbed.local")).unwrap();
        assert_eq!(d.kind, RefusalKind::TooOld);
        assert_eq!((d.data_fcv.as_deref(), d.needs_fcv.as_deref()), (Some("4.4"), Some("5.0")));
        assert_eq!(d.server_major.as_deref(), Some("6.0"));
        assert_eq!(d.put_back.as_deref(), Some("testbed.local/mongo:4.4"));
        // 3.7.11 runs 5.0; 4.0.4 (7.0) is the first whose road passes MongoDB 6.0.
        assert_eq!(d.upgrade_to, Some(v("4.0.4")));
        assert_eq!(
            d.message,
            "MongoDB 6.0 refuses this data: its featureCompatibilityVersion is 4.4 (set by MongoDB 4.4, or by 5.0 \
             before its featureCompatibilityVersion was raised), and a 6.0 server needs 5.0 or newer (mongod exit 62, \
             \"Wrong mongod version\"). The data was not changed. Put back the image the data was last run with \
             (testbed.local/mongo:4.4) and start it, then upgrade one MongoDB major at a time: mender-compose-upgrade \
             upgrade --to 4.0.4 (plan --to 4.0.4 shows each MongoDB stage)."
        );
    }

    #[test]
    fn an_exit_62_without_its_log_line_gets_the_general_sentence() {
        let c = cat();
        let r = c.release(&v("3.6.5")).unwrap();
        let seen = Seen { image: "mongo:6.0", exit_code: Some(62), ..Default::default() };
        let d = diagnose(&seen, Some(r), &c, None).unwrap();
        assert_eq!(d.kind, RefusalKind::Unknown);
        assert_eq!(d.data_fcv, None);
        assert_eq!(d.needs_fcv.as_deref(), Some("5.0"), "the major before 6.0");
        assert_eq!(d.put_back.as_deref(), Some("mongo:4.4"), "the release's own image");
        assert!(
            d.message.starts_with(
                "MongoDB 6.0 refuses to start on this data: its featureCompatibilityVersion is not one a 6.0 server \
                 accepts, 5.0 to 6.0 (mongod exit 62"
            ),
            "{}",
            d.message
        );
        assert!(d.message.contains("mongod exit 62"), "{}", d.message);
        assert!(d.message.contains("Put back the image the data was last run with (mongo:4.4)"), "{}", d.message);
    }

    #[test]
    fn data_of_a_newer_major_says_to_put_the_newer_image_back() {
        let c = cat();
        // 3.7.11 runs 5.0 and documents 6.0: its 5.0 → 6.0 stage raised the FCV, then 5.0 came back.
        let r = c.release(&v("3.7.11")).unwrap();
        let log = LOG_60_ON_44.replace("version: \\\"4.4\\\"", "version: \\\"6.0\\\"");
        let seen = Seen { image: "mongo:5.0", exit_code: Some(62), log: Some(&log), ..Default::default() };
        let d = diagnose(&seen, Some(r), &c, None).unwrap();
        assert_eq!(d.kind, RefusalKind::TooNew);
        assert_eq!(d.put_back.as_deref(), Some("mongo:6.0"));
        assert_eq!(d.upgrade_to, None);
        assert!(
            d.message.contains("its featureCompatibilityVersion is 6.0, newer than a 5.0 server runs"),
            "{}",
            d.message
        );
        assert!(!d.message.contains("upgrade --to"), "{}", d.message);
    }

    #[test]
    fn a_running_answering_mongo_or_another_exit_is_no_refusal() {
        let c = cat();
        let r = c.release(&v("3.6.5")).unwrap();
        // Up and answering: an old fatal line in the log is history.
        let up = Seen {
            image: "mongo:4.4",
            running: true,
            exit_code: Some(0),
            log: Some(LOG_60_ON_44),
            reachable: true,
            ..Default::default()
        };
        assert_eq!(diagnose(&up, Some(r), &c, None), None);
        // Exited for another reason (out of memory: 137) with nothing in the log.
        let oom = Seen { image: "mongo:4.4", exit_code: Some(137), log: Some("killed\n"), ..Default::default() };
        assert_eq!(diagnose(&oom, Some(r), &c, None), None);
        // Restarting between two runs: Docker shows the last exit code, the log has the line.
        let seen = Seen { exit_code: Some(0), ..restarting("mongo:6.0", Some(LOG_60_ON_44)) };
        assert!(diagnose(&seen, Some(r), &c, None).is_some());
    }

    #[test]
    fn a_4_4_server_on_4_0_data_has_no_older_image_to_go_back_to() {
        let c = cat();
        let r = c.release(&v("3.6.5")).unwrap();
        let seen = Seen { image: "mongo:4.4", exit_code: Some(62), log: Some(LOG_44_ON_40), ..Default::default() };
        let d = diagnose(&seen, Some(r), &c, None).unwrap();
        assert_eq!(d.kind, RefusalKind::TooOld);
        assert_eq!(d.put_back, None, "no major 3.6.5 documents runs on FCV 4.0");
        assert!(d.message.contains("its featureCompatibilityVersion is 4.0"), "{}", d.message);
        assert!(d.message.contains("needs 4.2 or newer"), "{}", d.message);
        assert_eq!(d.upgrade_to, None);
        assert!(d.message.contains("Put back an image that runs this data (MongoDB 4.0 or 4.2)"), "{}", d.message);
        assert!(!d.message.contains("upgrade --to"), "{}", d.message);
    }
}
