//! What a long command tells while it works: a spinner with the current step (and bytes, where
//! data streams) on a terminal, one line per step on stderr otherwise, or one NDJSON event per
//! step on stdout with `--json` (the final result is the last line).

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};

/// Where notifications go (`--notify`; the engine's HTTP notifier). Posting never fails: a
/// receiver that does not answer is the implementation's to log.
pub trait Notify: std::fmt::Debug + Send + Sync {
    /// Posts one notification document (a JSON object).
    fn post(&self, doc: serde_json::Value) -> BoxFuture<'_, ()>;
}

/// Where a long command reports its steps: a spinner, stderr lines, or NDJSON events.
#[derive(Debug, Clone)]
pub struct Progress {
    /// `--json`: one NDJSON event per step on stdout.
    pub json: bool,
    /// `-q`: no step lines (errors and the result still print).
    pub quiet: bool,
    bar: Option<ProgressBar>,
    notifier: Option<Arc<dyn Notify>>,
}

impl Progress {
    /// The reporter for the global options: a spinner only on a terminal, without `--json` or `-q`.
    pub fn new(json: bool, quiet: bool) -> Progress {
        let bar = (!json && !quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress { json, quiet, bar, notifier: None }
    }

    /// A silent reporter (for library callers and tests).
    pub fn silent() -> Progress {
        Progress { json: false, quiet: true, bar: None, notifier: None }
    }

    /// The same reporter, also posting notifications to `notifier` (`--notify`).
    pub fn with_notifier(mut self, notifier: Option<Arc<dyn Notify>>) -> Progress {
        self.notifier = notifier;
        self
    }

    /// Posts a notification (`{"event": kind, …fields}`) to every `--notify` URL; nothing without
    /// one. Never fails: a receiver that does not answer is logged and skipped (`docs/events.md`
    /// lists the kinds and their fields).
    pub async fn notify(&self, kind: &str, fields: serde_json::Value) {
        let Some(n) = &self.notifier else { return };
        let mut doc = serde_json::json!({ "event": kind });
        if let (serde_json::Value::Object(d), serde_json::Value::Object(f)) = (&mut doc, fields) {
            d.extend(f);
        }
        n.post(doc).await;
    }

    /// Reports a step: `step` is its machine name (`dump`, `quiesce`, in the JSON event), `detail`
    /// the line a person reads.
    pub fn step(&self, step: &str, detail: impl Display) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "step", "step": step, "detail": detail.to_string(), "at": crate::util::now_rfc3339()})
            );
        } else if let Some(b) = &self.bar {
            b.println(format!("==> {detail}"));
            b.set_message(detail.to_string());
        } else if !self.quiet {
            eprintln!("==> {detail}");
        }
    }

    /// Shows a byte counter on the spinner while `counter` grows; stops when the guard drops.
    pub fn track_bytes(&self, label: &str, counter: Arc<AtomicU64>) -> Tracker {
        let Some(bar) = self.bar.clone() else { return Tracker(None) };
        let label = label.to_string();
        let task = tokio::spawn(async move {
            loop {
                let n = counter.load(Ordering::Relaxed);
                bar.set_message(format!("{label}: {}", crate::util::size(n)));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Tracker(Some(task))
    }

    /// Clears the spinner before the result is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Keeps a byte counter on the spinner while alive ([`Progress::track_bytes`]); dropping it stops it.
pub struct Tracker(Option<tokio::task::JoinHandle<()>>);

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}
