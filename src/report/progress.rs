//! What a long command tells while it works: one line per step on stderr for people, or one
//! NDJSON event per step on stdout with `--json` (the final result is the last line).

use std::fmt::Display;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub json: bool,
    pub quiet: bool,
}

impl Progress {
    pub fn step(&self, step: &str, detail: impl Display) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "step", "step": step, "detail": detail.to_string(), "at": crate::state::now_rfc3339()})
            );
        } else if !self.quiet {
            eprintln!("==> {detail}");
        }
    }
}
