//! `plan` for people: each hop with its image changes, data changes, MongoDB steps, manual steps
//! and how it would be rolled back.

use std::fmt::Write;

use crate::catalog::When;
use crate::plan::{HopKind, Plan, Rollback};

/// The plan as text for a terminal: a header line, then one block per hop.
pub fn render(p: &Plan) -> String {
    let mut out = String::new();
    let n = p.hops.len();
    let _ = writeln!(out, "Upgrade plan: {} → {} in {n} hop{}", p.from, p.to, if n == 1 { "" } else { "s" });
    match &p.blocked {
        None => {
            let _ = writeln!(out, "This version of mender-compose-upgrade carries out every hop.");
        }
        Some(b) => {
            let _ = writeln!(
                out,
                "NOT CARRIED OUT by this version: `upgrade` refuses the hop {} → {}: {}.",
                b.from, b.to, b.why
            );
        }
    }
    for (i, h) in p.hops.iter().enumerate() {
        let kind = match h.kind {
            HopKind::Patch => "patch release".to_string(),
            HopKind::Minor if !h.skipped_lines.is_empty() => {
                format!("minor, skips {} by the documented exception", h.skipped_lines.join(", "))
            }
            HopKind::Minor => "minor".to_string(),
            HopKind::Major => "major".to_string(),
            HopKind::Mongo => "MongoDB major stage, on a copy of the data volume".to_string(),
        };
        let _ = writeln!(out, "\nHop {}: {} ({kind})", i + 1, h.label());
        match &h.rollback {
            Rollback::ImageSwap => {
                let _ = writeln!(out, "  Rollback: image swap (no database changes)");
            }
            Rollback::DataRestore { reasons } => {
                let _ = writeln!(out, "  Rollback: data restore from the pre-hop dump ({})", reasons.join("; "));
            }
            Rollback::OriginalVolume => {
                let _ = writeln!(
                    out,
                    "  Rollback: the previous image on the original data volume, which the stage never writes (it stays until you remove it)"
                );
            }
        }
        if !h.image_changes.is_empty() {
            let _ = writeln!(out, "  Images:");
            let w = h.image_changes.iter().map(|c| c.service.len()).max().unwrap_or(0);
            for c in &h.image_changes {
                let _ = writeln!(out, "    {:<w$}  {} → {}", c.service, c.from, c.to);
            }
        }
        for (label, list) in [("Added services", &h.added_services), ("Removed services", &h.removed_services)] {
            if !list.is_empty() {
                let _ = writeln!(out, "  {label}: {}", list.join(", "));
            }
        }
        if !h.renamed_services.is_empty() {
            let r: Vec<String> = h.renamed_services.iter().map(|(a, b)| format!("{a} → {b}")).collect();
            let _ = writeln!(out, "  Renamed services: {}", r.join(", "));
        }
        if let Some(m) = &h.mongo {
            let steps: Vec<String> = m
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "check FCV {}, run {}, set FCV {}{}",
                        s.require_fcv,
                        s.image_major,
                        s.set_fcv,
                        if s.confirm { " (confirm: true)" } else { "" }
                    )
                })
                .collect();
            let _ = writeln!(out, "  MongoDB {} → {}: {}", m.from_major, m.to_major, steps.join("; then "));
        }
        if let (Some(img), false) = (&h.mongo_image, h.is_mongo_stage()) {
            let _ = writeln!(out, "  MongoDB: stays on {img}");
        }
        if h.replaces_base_files {
            let _ = writeln!(
                out,
                "  Compose: upstream base files replaced from compose-templates/ (your prod.yml is kept)"
            );
        }
        if !h.manual_steps.is_empty() {
            let _ = writeln!(out, "  Manual steps:");
            for s in &h.manual_steps {
                let when = if s.when == When::Before { "before" } else { "after" };
                let _ = writeln!(out, "    [{when}] {}", s.text.trim());
            }
        }
        for c in &h.checks {
            let _ =
                writeln!(out, "  Refused while: {} in {}.{} (checked before any downtime)", c.what, c.db, c.collection);
        }
        if let Some(w) = &h.window {
            let _ = writeln!(out, "  Maintenance window (Mender docs): {w}");
        }
    }
    if !p.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &p.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}
