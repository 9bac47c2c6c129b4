//! `backup prune`'s decision, pure: which bundles a keep policy keeps, and why, over a list of
//! facts gathered elsewhere ([`super::bundles`]). Semantics are restic `forget`'s: a bundle is
//! kept when any rule keeps it, and rules apply per group.
//!
//! Groups: the keep rules (`--keep-last`, `--keep-within`) count per compose project, like
//! restic's per-host groups — the bundles of one project never push out another's. The
//! protection of the newest restore-tested bundle applies per *stack* (project and the stack
//! identity the manifest records): a stack recreated under the same project name is other data,
//! and the only proven copy of the old one is not thrown away by the new one's backups.
//! `--keep-within` is measured back from the group's newest bundle, as restic measures it, so
//! that a host whose backups stopped does not lose its last bundles to the clock.
//!
//! Never removed, whatever the rules: the newest restore-tested bundle of each stack, a bundle an
//! interrupted run's journal names (its starting point, or a restore's bundle and safety
//! bundle), a bundle a staging copy was made from, a bundle of a project whose lock another run
//! holds, and anything prune cannot identify (unreadable manifest, unknown creation time).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a keep policy asks; at least one rule must be given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Keep the newest N bundles of each project (`--keep-last N`, N ≥ 1).
    pub keep_last: Option<usize>,
    /// Keep the bundles taken within this long of each project's newest bundle (`--keep-within`).
    #[serde(with = "humantime_opt")]
    pub keep_within: Option<Duration>,
}

mod humantime_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// Why a policy cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No rule: restic refuses `forget` without one rather than remove everything.
    #[error("no keep rule was given, so every bundle not otherwise protected would be removed")]
    NoRule,
}

/// Something outside the bundle that still needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Need {
    /// A journal (an interrupted upgrade, restore or backup) names the bundle.
    Journal {
        /// The journal's project (its file is `journal/<project>.json`).
        project: String,
    },
    /// A journal that cannot be read: it may name any bundle of its project.
    UnreadableJournal {
        /// The journal's project.
        project: String,
    },
    /// A staging copy was made from the bundle (its `staging/<name>/staging.json` names it).
    Staging {
        /// The staging project's name.
        name: String,
    },
    /// Another run holds the project's lock (it may be choosing or reading this bundle).
    Locked {
        /// Who holds it, as the lock names it (`upgrade`, pid 123 on host, started …).
        holder: String,
    },
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::Journal { project } => write!(f, "the journal of {project}'s interrupted run names it"),
            Need::UnreadableJournal { project } => {
                write!(f, "the journal of {project} cannot be read and may name it")
            }
            Need::Staging { name } => write!(f, "staging copy {name} was made from it"),
            Need::Locked { holder } => write!(f, "another run holds its project's lock ({holder})"),
        }
    }
}

/// One bundle as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFacts {
    /// The bundle's directory name in the backups directory (unique there).
    pub name: String,
    /// When it was completed (the manifest's `created`); `None` when unknown.
    pub created: Option<SystemTime>,
    /// Its compose project.
    pub project: String,
    /// Its stack within the project (the manifest's stack identity, as a stable key; empty for
    /// bundles that record none — they form one stack of their own).
    pub stack: String,
    /// A restore test (or a staging copy) proved it, as `upgrade` requires of its starting bundle.
    pub restore_tested: bool,
    /// What outside it still needs it.
    pub needed_by: Vec<Need>,
    /// Why its manifest cannot be read; such a bundle is never removed.
    pub unreadable: Option<String>,
}

/// Why a bundle is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum KeepReason {
    /// Among the newest `n` of its project (`rank`: 1 is the newest).
    KeepLast {
        /// Its place, newest first.
        rank: usize,
        /// The rule's N.
        n: usize,
    },
    /// Taken within the rule's duration of its project's newest bundle.
    KeepWithin {
        /// The rule's duration (humantime).
        within: String,
    },
    /// The newest restore-tested bundle of its stack.
    NewestRestoreTested,
    /// Something outside still needs it.
    Needed {
        /// What.
        need: Need,
    },
    /// Its manifest cannot be read: prune removes only what it can identify.
    Unreadable {
        /// Why.
        why: String,
    },
    /// Its creation time is unknown, so no rule can judge it.
    UnknownTime,
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::KeepLast { rank, n } => write!(f, "keep-last {n}: #{rank} of its project"),
            KeepReason::KeepWithin { within } => write!(f, "keep-within {within} of its project's newest bundle"),
            KeepReason::NewestRestoreTested => f.write_str("the newest restore-tested bundle of its stack"),
            KeepReason::Needed { need } => write!(f, "{need}"),
            KeepReason::Unreadable { why } => {
                write!(f, "its manifest cannot be read ({why}); prune removes only bundles it can identify")
            }
            KeepReason::UnknownTime => f.write_str("its creation time cannot be read"),
        }
    }
}

/// The decision for one bundle: kept with its reasons, or removed (no reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The bundle's directory name.
    pub name: String,
    /// Whether it stays.
    pub keep: bool,
    /// Every reason it stays (empty: it goes).
    pub reasons: Vec<KeepReason>,
}

/// Applies `policy` to `bundles`: one decision per bundle, in the order given.
///
/// # Errors
/// [`PolicyError::NoRule`] when the policy has no rule (nothing is decided).
pub fn decide(bundles: &[BundleFacts], policy: &Policy) -> Result<Vec<Decision>, PolicyError> {
    if policy.keep_last.is_none() && policy.keep_within.is_none() {
        return Err(PolicyError::NoRule);
    }
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); bundles.len()];
    for (i, b) in bundles.iter().enumerate() {
        if let Some(why) = &b.unreadable {
            reasons[i].push(KeepReason::Unreadable { why: why.clone() });
        } else if b.created.is_none() {
            reasons[i].push(KeepReason::UnknownTime);
        }
        reasons[i].extend(b.needed_by.iter().cloned().map(|need| KeepReason::Needed { need }));
    }
    // Only bundles that can be identified and dated are ranked: newest first, name breaking ties
    // (names end in the time stamp, so the order is stable).
    let dated = |b: &BundleFacts| b.unreadable.is_none() && b.created.is_some();
    let mut by_project: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_stack: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, b) in bundles.iter().enumerate().filter(|(_, b)| dated(b)) {
        by_project.entry(&b.project).or_default().push(i);
        by_stack.entry((&b.project, &b.stack)).or_default().push(i);
    }
    let newest_first = |v: &mut Vec<usize>| {
        v.sort_by(|&a, &b| (bundles[b].created, &bundles[b].name).cmp(&(bundles[a].created, &bundles[a].name)))
    };
    for group in by_project.values_mut() {
        newest_first(group);
        if let Some(n) = policy.keep_last {
            for (rank, &i) in group.iter().take(n).enumerate() {
                reasons[i].push(KeepReason::KeepLast { rank: rank + 1, n });
            }
        }
        if let (Some(within), Some(newest)) = (policy.keep_within, group.first().and_then(|&i| bundles[i].created)) {
            for &i in group.iter() {
                let older = bundles[i].created.and_then(|t| newest.duration_since(t).ok()).unwrap_or_default();
                if older <= within {
                    let within = humantime::format_duration(within).to_string();
                    reasons[i].push(KeepReason::KeepWithin { within });
                }
            }
        }
    }
    for group in by_stack.values_mut() {
        newest_first(group);
        if let Some(&i) = group.iter().find(|&&i| bundles[i].restore_tested) {
            reasons[i].push(KeepReason::NewestRestoreTested);
        }
    }
    Ok(bundles
        .iter()
        .zip(reasons)
        .map(|(b, reasons)| Decision { name: b.name.clone(), keep: !reasons.is_empty(), reasons })
        .collect())
}

/// What names a bundle: the text of a journal or a staging record, read as it is on disk.
#[derive(Debug, Clone)]
pub enum Holder {
    /// `journal/<project>.json`; `None` when it exists but cannot be read.
    Journal {
        /// The journal's project.
        project: String,
        /// Its bytes as text.
        text: Option<String>,
    },
    /// `staging/<name>/staging.json`.
    Staging {
        /// The staging project's name.
        name: String,
        /// Its text.
        text: String,
    },
}

/// What among `holders` needs the bundle `name` of `project`. A holder needs it when its text
/// contains the bundle's directory name: journals and staging records name bundles by path, and
/// reading them as text rather than by their current shape keeps an older or damaged one
/// protective. A journal that cannot be read at all protects every bundle of its project.
pub fn needs(name: &str, project: &str, holders: &[Holder]) -> Vec<Need> {
    holders
        .iter()
        .filter_map(|h| match h {
            Holder::Journal { project: p, text: Some(t) } if t.contains(name) => {
                Some(Need::Journal { project: p.clone() })
            }
            Holder::Journal { project: p, text: None } if p == project => {
                Some(Need::UnreadableJournal { project: p.clone() })
            }
            Holder::Staging { name: s, text } if text.contains(name) => Some(Need::Staging { name: s.clone() }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;

    /// A bundle of `project`, `hours_ago` before a fixed now.
    fn b(name: &str, project: &str, hours_ago: u64) -> BundleFacts {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 * DAY);
        BundleFacts {
            name: name.into(),
            created: Some(now - Duration::from_secs(hours_ago * HOUR)),
            project: project.into(),
            stack: "s1".into(),
            restore_tested: false,
            needed_by: vec![],
            unreadable: None,
        }
    }

    fn tested(mut f: BundleFacts) -> BundleFacts {
        f.restore_tested = true;
        f
    }

    fn kept(bundles: &[BundleFacts], policy: Policy) -> Vec<String> {
        decide(bundles, &policy).unwrap().into_iter().filter(|d| d.keep).map(|d| d.name).collect()
    }

    fn last(n: usize) -> Policy {
        Policy { keep_last: Some(n), keep_within: None }
    }

    fn within(hours: u64) -> Policy {
        Policy { keep_last: None, keep_within: Some(Duration::from_secs(hours * HOUR)) }
    }

    /// Five bundles of one project, a day apart, newest first in name order a..e.
    fn five() -> Vec<BundleFacts> {
        (0..5).map(|i| b(&format!("p-{}", (b'a' + i as u8) as char), "p", i * 24)).collect()
    }

    #[test]
    fn the_table_of_cases() {
        struct Case {
            what: &'static str,
            bundles: Vec<BundleFacts>,
            policy: Policy,
            kept: &'static [&'static str],
        }
        let mut needed_by_journal = five();
        needed_by_journal[4].needed_by.push(Need::Journal { project: "p".into() });
        let mut needed_by_staging = five();
        needed_by_staging[3].needed_by.push(Need::Staging { name: "p-staging".into() });
        let mut old_tested = five();
        old_tested[4].restore_tested = true;
        let mut two_tested = five();
        two_tested[2].restore_tested = true;
        two_tested[4].restore_tested = true;
        let mut other_stack = five();
        other_stack[3].stack = "s0".into();
        other_stack[3].restore_tested = true;
        other_stack[4].stack = "s0".into();
        other_stack[4].restore_tested = true;
        let mut unreadable = five();
        unreadable[4].unreadable = Some("manifest.json does not match manifest.json.sha256".into());
        let mut undated = five();
        undated[4].created = None;
        let mut locked = five();
        locked[4].needed_by.push(Need::Locked { holder: "upgrade".into() });
        let cases = vec![
            Case { what: "keep-last 2", bundles: five(), policy: last(2), kept: &["p-a", "p-b"] },
            Case {
                what: "keep-last above the count keeps all",
                bundles: five(),
                policy: last(9),
                kept: &["p-a", "p-b", "p-c", "p-d", "p-e"],
            },
            Case {
                what: "keep-within 36h (a, b 24h older)",
                bundles: five(),
                policy: within(36),
                kept: &["p-a", "p-b"],
            },
            Case {
                what: "keep-within is inclusive",
                bundles: five(),
                policy: within(48),
                kept: &["p-a", "p-b", "p-c"],
            },
            Case {
                what: "both: a bundle kept by either rule stays",
                bundles: five(),
                policy: Policy { keep_last: Some(1), keep_within: Some(Duration::from_secs(3 * DAY)) },
                kept: &["p-a", "p-b", "p-c", "p-d"],
            },
            Case {
                what: "newest restore-tested kept although older than the rules",
                bundles: old_tested,
                policy: last(1),
                kept: &["p-a", "p-e"],
            },
            Case {
                what: "only the newest restore-tested one",
                bundles: two_tested,
                policy: last(1),
                kept: &["p-a", "p-c"],
            },
            Case { what: "journal-needed kept", bundles: needed_by_journal, policy: last(1), kept: &["p-a", "p-e"] },
            Case { what: "staging-needed kept", bundles: needed_by_staging, policy: last(1), kept: &["p-a", "p-d"] },
            Case { what: "locked project's bundle kept", bundles: locked, policy: last(1), kept: &["p-a", "p-e"] },
            Case {
                what: "another stack of the project keeps its own newest restore-tested bundle",
                bundles: other_stack,
                policy: last(1),
                kept: &["p-a", "p-d"],
            },
            Case { what: "unreadable manifest kept", bundles: unreadable, policy: last(1), kept: &["p-a", "p-e"] },
            Case { what: "unknown time kept", bundles: undated, policy: last(1), kept: &["p-a", "p-e"] },
            Case {
                what: "projects are counted apart",
                bundles: vec![b("p-1", "p", 0), b("p-2", "p", 10), b("q-1", "q", 100), b("q-2", "q", 200)],
                policy: last(1),
                kept: &["p-1", "q-1"],
            },
            Case {
                what: "keep-within is measured from each project's newest bundle, not from now",
                bundles: vec![b("p-1", "p", 0), b("q-1", "q", 1000), b("q-2", "q", 1010), b("q-3", "q", 1030)],
                policy: within(12),
                kept: &["p-1", "q-1", "q-2"],
            },
        ];
        for c in cases {
            assert_eq!(kept(&c.bundles, c.policy), c.kept, "{}", c.what);
        }
    }

    #[test]
    fn every_kept_bundle_says_why_and_removed_ones_say_nothing() {
        let mut bundles = five();
        bundles[4] = tested(bundles[4].clone());
        bundles[4].needed_by.push(Need::Staging { name: "p-staging".into() });
        let d = decide(&bundles, &Policy { keep_last: Some(1), keep_within: Some(Duration::from_secs(DAY)) }).unwrap();
        assert_eq!(
            d[0].reasons,
            [KeepReason::KeepLast { rank: 1, n: 1 }, KeepReason::KeepWithin { within: "1day".into() }]
        );
        assert_eq!(d[1].reasons, [KeepReason::KeepWithin { within: "1day".into() }]);
        assert!(!d[2].keep && d[2].reasons.is_empty());
        assert_eq!(
            d[4].reasons,
            [KeepReason::Needed { need: Need::Staging { name: "p-staging".into() } }, KeepReason::NewestRestoreTested]
        );
        assert_eq!(d[4].reasons[1].to_string(), "the newest restore-tested bundle of its stack");
    }

    #[test]
    fn no_rule_is_refused() {
        assert_eq!(decide(&five(), &Policy::default()), Err(PolicyError::NoRule));
    }

    #[test]
    fn holders_name_bundles_by_their_directory_name() {
        let holders = vec![
            Holder::Journal {
                project: "p".into(),
                text: Some(r#"{"upgrade": {"bundle": "/s/backups/p-3.7.11-20261101T000000Z"}}"#.into()),
            },
            Holder::Journal { project: "q".into(), text: None },
            Holder::Staging {
                name: "p-staging".into(),
                text: r#"{"bundle": "/s/backups/p-3.7.11-20261102T000000Z"}"#.into(),
            },
        ];
        assert_eq!(needs("p-3.7.11-20261101T000000Z", "p", &holders), [Need::Journal { project: "p".into() }]);
        assert_eq!(needs("p-3.7.11-20261102T000000Z", "p", &holders), [Need::Staging { name: "p-staging".into() }]);
        assert_eq!(needs("p-3.7.11-20261103T000000Z", "p", &holders), []);
        assert_eq!(
            needs("q-3.7.11-20261101T000000Z", "q", &holders),
            [Need::UnreadableJournal { project: "q".into() }],
            "an unreadable journal protects every bundle of its project"
        );
    }
}
