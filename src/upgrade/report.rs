//! The upgrade report: per-hop timings and what the operator should do next, as Markdown and
//! JSON in the state directory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use semver::Version;
use serde::Serialize;

use super::error::HopFailed;
use super::step::Step;
use super::{Ctx, Outcome, UpgradeError, UpgradeState};
use crate::catalog::When;
use crate::plan::Rollback;
use crate::util::{now_rfc3339, now_stamp, private_dir, round_tenth};

/// One hop as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    /// The release before.
    pub from: Version,
    /// The release after.
    pub to: Version,
    /// How the plan names it: `3.6.5 → 3.7.11`, or `MongoDB 4.4 → 5.0 at 3.6.5` for a stage
    /// (whose `from` and `to` are the same release).
    pub label: String,
    /// Seconds per step, in the order the steps ran.
    pub timings: BTreeMap<Step, f64>,
    /// Their sum.
    pub total_secs: f64,
    /// `image-swap` or `data-restore`.
    pub rollback_class: String,
}

/// What every finished upgrade tells the operator.
pub const ADVICE: &str =
    "Refresh the Mender UI in the browser without its cache (Ctrl+Shift+R), so that it loads the new release's code.";

fn hops(st: &UpgradeState) -> Vec<HopReport> {
    st.plan
        .hops
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < st.timings.len())
        .map(|(i, h)| HopReport {
            from: h.from.clone(),
            to: h.to.clone(),
            label: h.label(),
            timings: st.timings[i].clone(),
            total_secs: round_tenth(st.timings[i].values().sum::<f64>()),
            rollback_class: match h.rollback {
                Rollback::ImageSwap => "image-swap".into(),
                Rollback::DataRestore { .. } => "data-restore".into(),
                Rollback::OriginalVolume => "original-volume".into(),
            },
        })
        .collect()
}

/// A new report's Markdown and JSON paths in the state directory's `reports/`, named
/// `<stem>-<UTC stamp>`.
///
/// # Errors
/// The directory cannot be created.
pub fn paths(state: &crate::state::StateDir, stem: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = state.root.join("reports");
    private_dir(&dir)?;
    let stem = format!("{stem}-{}", now_stamp());
    Ok((dir.join(format!("{stem}.md")), dir.join(format!("{stem}.json"))))
}

/// After the last hop.
///
/// # Errors
/// [`UpgradeError`] when the report files cannot be written.
pub fn write(ctx: &Ctx<'_>, st: &UpgradeState) -> Result<Outcome, UpgradeError> {
    let mut advice = vec![ADVICE.to_string()];
    for h in &st.plan.hops {
        advice.extend(
            h.manual_steps
                .iter()
                .filter(|m| m.when == When::After)
                .map(|m| format!("after {}: {}", h.to, m.text.trim())),
        );
    }
    let (md, json) = paths(ctx.state, &st.project.name)?;
    let mut outcome = Outcome {
        project: st.project.name.clone(),
        from: st.plan.from.clone(),
        to: st.plan.to.clone(),
        hops: hops(st),
        report_md: Some(md.clone()),
        report_json: Some(json.clone()),
        dry_run: false,
        advice,
        plan: None,
        preview: None,
    };
    std::fs::write(&json, serde_json::to_vec_pretty(&outcome).map_err(std::io::Error::other)?)?;
    std::fs::write(&md, markdown(&outcome, st))?;
    outcome.report_md = Some(md);
    ctx.progress.step(
        "done",
        format!("{} runs {} ({})", st.project.name, st.plan.to, crate::util::count_len(outcome.hops.len(), "hop")),
    );
    Ok(outcome)
}

/// The hops as a Markdown table: one column per step, in seconds.
pub fn hop_table(hops: &[HopReport]) -> String {
    let mut s = format!(
        "| hop | rollback class | {} | total (s) |\n|---|---|{}---|\n",
        Step::EVERY.map(Step::name).join(" | "),
        "---|".repeat(Step::EVERY.len())
    );
    for h in hops {
        let steps: Vec<String> =
            Step::EVERY.iter().map(|k| h.timings.get(k).map_or("-".into(), |v| format!("{v:.1}"))).collect();
        let _ = writeln!(s, "| {} | {} | {} | {:.1} |", h.label, h.rollback_class, steps.join(" | "), h.total_secs);
    }
    s
}

fn markdown(o: &Outcome, st: &UpgradeState) -> String {
    let mut s = format!("# Upgrade of {} from {} to {}\n\n", o.project, o.from, o.to);
    let _ = writeln!(
        s,
        "Finished {}. Backup taken before: {}\n",
        now_rfc3339(),
        st.bundle.as_ref().map_or("none".into(), |b| b.display().to_string())
    );
    s.push_str(&hop_table(&o.hops));
    s.push_str("\n## Next\n\n");
    for a in &o.advice {
        let _ = writeln!(s, "- {a}");
    }
    s
}

/// `what` with its first letter upper case: the start of a sentence.
fn sentence_case(what: &str) -> String {
    let mut c = what.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// After a hop failed (rolled back or not).
///
/// # Errors
/// [`UpgradeError`] when the report files cannot be written.
pub fn write_failure(ctx: &Ctx<'_>, st: &UpgradeState, failure: &HopFailed, result: &str) -> Result<(), UpgradeError> {
    let (md, json) = paths(ctx.state, &st.project.name)?;
    let (step, reason) = (failure.point.to_string(), failure.error.to_string());
    let doc = serde_json::json!({
        "project": st.project.name, "from": st.plan.from, "to": st.plan.to,
        "failed_hop": {"from": failure.from, "to": failure.to, "step": step, "reason": reason},
        "result": result, "completed_hops": hops(st),
    });
    std::fs::write(&json, serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?)?;
    let text = format!(
        "# Upgrade of {} to {} failed\n\n{} failed at step `{step}`: {reason}\n\nResult: {result}\n",
        st.project.name,
        st.plan.to,
        sentence_case(&failure.what())
    );
    std::fs::write(&md, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_table_names_a_stage_as_the_plan_does() {
        let v = |s: &str| Version::parse(s).unwrap();
        let h = HopReport {
            from: v("3.6.5"),
            to: v("3.6.5"),
            label: "MongoDB 4.4 → 5.0 at 3.6.5".into(),
            timings: BTreeMap::from([(Step::Copy, 0.9), (Step::Gates, 11.0)]),
            total_secs: 11.9,
            rollback_class: "original-volume".into(),
        };
        let t = hop_table(&[h]);
        let row = t.lines().nth(2).unwrap();
        assert!(row.starts_with("| MongoDB 4.4 → 5.0 at 3.6.5 | original-volume |"), "{row}");
        assert!(!t.contains("3.6.5 → 3.6.5"), "{t}");
    }
}
