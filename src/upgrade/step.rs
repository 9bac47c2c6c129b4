//! The steps of a hop, as the journal names them. The names are part of the journal's format: a
//! journal written by an earlier version must still resume, so a variant may be added but never
//! renamed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One step of a hop, in the order they run; each is journaled before the next starts.
///
/// Declared in [`Step::EVERY`]'s order: the derived `Ord` is what orders a hop's timings (a
/// `BTreeMap<Step, f64>`) in the journal, the report and the text, so it must be the order the
/// steps run in either kind of hop. The journal names steps, so the order is free to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The gateway and every writer stopped (the journal lists them first).
    Stop,
    /// A MongoDB stage: featureCompatibilityVersion checked, mongo stopped cleanly.
    #[serde(rename = "mongo-stop")]
    MongoStop,
    /// A MongoDB stage: the data volume copied to `<volume>-<major>`.
    Copy,
    /// Every database's migration_info and a dump: the hop's rollback point.
    Dump,
    /// The compose files rewritten for the target release.
    Rewrite,
    /// A new MongoDB major started, its featureCompatibilityVersion raised.
    Mongo,
    /// One `migrate` one-shot per database, before any server starts.
    Migrate,
    /// `docker compose up -d`.
    Up,
    /// The health gates, twice in a row.
    Gates,
}

impl Step {
    /// Every step, in the order a hop runs them.
    pub const ALL: [Step; 7] =
        [Step::Stop, Step::Dump, Step::Rewrite, Step::Mongo, Step::Migrate, Step::Up, Step::Gates];

    /// Every step, in the order a MongoDB major stage runs them: no dump (the original volume is
    /// the rollback copy) and no migrations (the release stays).
    pub const STAGE: [Step; 7] =
        [Step::Stop, Step::MongoStop, Step::Copy, Step::Rewrite, Step::Mongo, Step::Up, Step::Gates];

    /// Every step of either kind of hop, for tables: the hop's, then a stage's own.
    pub const EVERY: [Step; 9] = [
        Step::Stop,
        Step::MongoStop,
        Step::Copy,
        Step::Dump,
        Step::Rewrite,
        Step::Mongo,
        Step::Migrate,
        Step::Up,
        Step::Gates,
    ];

    /// The steps of `hop`, in the order they run.
    pub fn of(hop: &crate::plan::Hop) -> &'static [Step] {
        if hop.is_mongo_stage() { &Step::STAGE } else { &Step::ALL }
    }

    /// The journal's name of the step (`stop`, `dump`, …).
    pub fn name(self) -> &'static str {
        match self {
            Step::Stop => "stop",
            Step::Dump => "dump",
            Step::Rewrite => "rewrite",
            Step::Mongo => "mongo",
            Step::Migrate => "migrate",
            Step::Up => "up",
            Step::Gates => "gates",
            Step::MongoStop => "mongo-stop",
            Step::Copy => "copy",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a hop something happened: a step, or one of the moments around the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The operator's confirmation of the hop's manual steps.
    Confirm,
    /// A step.
    Step(Step),
    /// After the last step, when the hop is recorded as done.
    HopDone,
    /// Undoing the hop.
    Rollback,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Confirm => f.write_str("confirm"),
            Point::Step(s) => s.fmt(f),
            Point::HopDone => f.write_str("hop-done"),
            Point::Rollback => f.write_str("rollback"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_journal_format() {
        let names: Vec<String> = Step::ALL.iter().map(|s| serde_json::to_value(s).unwrap().to_string()).collect();
        assert_eq!(names, ["\"stop\"", "\"dump\"", "\"rewrite\"", "\"mongo\"", "\"migrate\"", "\"up\"", "\"gates\""]);
        for s in Step::ALL.into_iter().chain(Step::STAGE) {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(serde_json::to_value(Step::MongoStop).unwrap(), "mongo-stop");
        assert_eq!(Point::HopDone.to_string(), "hop-done");
    }

    #[test]
    fn timings_keyed_by_step_list_in_run_order() {
        // A BTreeMap<Step, _> iterates in Ord order: it must be the order of both kinds of hop.
        for run in [&Step::ALL[..], &Step::STAGE[..]] {
            let timings: std::collections::BTreeMap<Step, f64> = run.iter().rev().map(|&s| (s, 1.0)).collect();
            assert_eq!(timings.keys().copied().collect::<Vec<_>>(), run);
        }
        assert!(Step::EVERY.windows(2).all(|w| w[0] < w[1]));
        // And the JSON object keeps that order too (the report's and the journal's `timings`).
        let stage: std::collections::BTreeMap<Step, f64> = [(Step::Gates, 3.0), (Step::MongoStop, 1.0)].into();
        assert_eq!(serde_json::to_string(&stage).unwrap(), r#"{"mongo-stop":1.0,"gates":3.0}"#);
    }
}
