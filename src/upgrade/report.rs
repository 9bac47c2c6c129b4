//! The upgrade report: per-hop timings and what the operator should do next, as Markdown and
//! JSON in the state directory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use semver::Version;
use serde::Serialize;

use super::hop::Failure;
use super::{Ctx, Outcome, UpgradeError, UpgradeState};
use crate::catalog::When;
use crate::plan::Rollback;

#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    pub from: Version,
    pub to: Version,
    /// Seconds per step.
    pub timings: BTreeMap<String, f64>,
    pub total_secs: f64,
    pub rollback_class: String,
}

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
            timings: st.timings[i].clone(),
            total_secs: (st.timings[i].values().sum::<f64>() * 10.0).round() / 10.0,
            rollback_class: match h.rollback {
                Rollback::ImageSwap => "image-swap".into(),
                Rollback::DataRestore { .. } => "data-restore".into(),
            },
        })
        .collect()
}

fn paths(ctx: &Ctx<'_>, st: &UpgradeState) -> Result<(PathBuf, PathBuf), UpgradeError> {
    let dir = ctx.state.root.join("reports");
    crate::backup::bundle::private_dir(&dir)?;
    let stem = format!("{}-{}", st.project.name, crate::state::now_stamp());
    Ok((dir.join(format!("{stem}.md")), dir.join(format!("{stem}.json"))))
}

/// After the last hop.
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
    let (md, json) = paths(ctx, st)?;
    let mut outcome = Outcome {
        project: st.project.name.clone(),
        from: st.plan.from.clone(),
        to: st.plan.to.clone(),
        hops: hops(st),
        report_md: Some(md.clone()),
        report_json: Some(json.clone()),
        dry_run: false,
        advice,
    };
    std::fs::write(&json, serde_json::to_vec_pretty(&outcome).map_err(std::io::Error::other)?)?;
    std::fs::write(&md, markdown(&outcome, st))?;
    outcome.report_md = Some(md);
    ctx.progress.step("done", format!("{} runs {} ({} hops)", st.project.name, st.plan.to, outcome.hops.len()));
    Ok(outcome)
}

/// The hops as a Markdown table: one column per step, in seconds.
pub fn hop_table(hops: &[HopReport]) -> String {
    let mut s = format!(
        "| hop | rollback class | {} | total (s) |\n|---|---|{}---|\n",
        super::STEPS.join(" | "),
        "---|".repeat(super::STEPS.len())
    );
    for h in hops {
        let steps: Vec<String> =
            super::STEPS.iter().map(|k| h.timings.get(*k).map_or("-".into(), |v| format!("{v:.1}"))).collect();
        let _ = writeln!(
            s,
            "| {} → {} | {} | {} | {:.1} |",
            h.from,
            h.to,
            h.rollback_class,
            steps.join(" | "),
            h.total_secs
        );
    }
    s
}

fn markdown(o: &Outcome, st: &UpgradeState) -> String {
    let mut s = format!("# Upgrade of {} from {} to {}\n\n", o.project, o.from, o.to);
    let _ = writeln!(
        s,
        "Finished {}. Backup taken before: {}\n",
        crate::state::now_rfc3339(),
        st.bundle.as_ref().map_or("none".into(), |b| b.display().to_string())
    );
    s.push_str(&hop_table(&o.hops));
    s.push_str("\n## Next\n\n");
    for a in &o.advice {
        let _ = writeln!(s, "- {a}");
    }
    s
}

/// After a hop failed (rolled back or not).
pub fn write_failure(ctx: &Ctx<'_>, st: &UpgradeState, failure: &Failure, result: &str) -> Result<(), UpgradeError> {
    let (md, json) = paths(ctx, st)?;
    let hop = &st.plan.hops[st.hop];
    let doc = serde_json::json!({
        "project": st.project.name, "from": st.plan.from, "to": st.plan.to,
        "failed_hop": {"from": hop.from, "to": hop.to, "step": failure.step, "reason": failure.reason},
        "result": result, "completed_hops": hops(st),
    });
    std::fs::write(&json, serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?)?;
    let text = format!(
        "# Upgrade of {} to {} failed\n\nHop {} → {} failed at step `{}`: {}\n\nResult: {result}\n",
        st.project.name, st.plan.to, hop.from, hop.to, failure.step, failure.reason
    );
    std::fs::write(&md, text)?;
    Ok(())
}
