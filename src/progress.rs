//! What a long command tells while it works: on a terminal, a spinner with the current step and
//! the time since the command started, each step's line stamped with that time, a bar with bytes,
//! rate and ETA while data streams (dump, restore, object copies) and what `compose up` waits for;
//! without a terminal, one line per step on stderr and nothing animated; with `--json`, one NDJSON
//! event per step on stdout (the final result is the last line).

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

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
    term: Option<Terminal>,
    notifier: Option<Arc<dyn Notify>>,
    /// The last "waiting for" line printed without a terminal (printed again only when it changes).
    waiting: Arc<Mutex<String>>,
}

/// The terminal's display: the step spinner, and the byte bars added under it.
#[derive(Debug, Clone)]
struct Terminal {
    multi: MultiProgress,
    spinner: ProgressBar,
    start: Instant,
    step: Arc<Mutex<String>>,
}

impl Progress {
    /// The reporter for the global options: a spinner only on a terminal, without `--json` or `-q`.
    pub fn new(json: bool, quiet: bool) -> Progress {
        let term = (!json && !quiet && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::new();
            let spinner = multi.add(ProgressBar::new_spinner());
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            Terminal { multi, spinner, start: Instant::now(), step: Arc::default() }
        });
        Progress { json, quiet, term, notifier: None, waiting: Arc::default() }
    }

    /// A silent reporter (for library callers and tests).
    pub fn silent() -> Progress {
        Progress { json: false, quiet: true, term: None, notifier: None, waiting: Arc::default() }
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
        } else if let Some(t) = &self.term {
            let at = t.start.elapsed().as_secs();
            let _ = t.multi.println(format!("{:>2}:{:02} ==> {detail}", at / 60, at % 60));
            t.spinner.set_message(detail.to_string());
            if let Ok(mut s) = t.step.lock() {
                *s = detail.to_string();
            }
        } else if !self.quiet {
            eprintln!("==> {detail}");
        }
    }

    /// Runs `f` with the terminal's spinner and bars hidden (a question asked on the terminal),
    /// then draws them again; without a terminal, just runs `f`.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.term {
            Some(t) => t.multi.suspend(f),
            None => f(),
        }
    }

    /// Shows what a running step has waited for `waited` (`compose up`: "waiting for
    /// demo-mongo-1: health starting"): on a terminal next to the step on the spinner; without
    /// one, a line on stderr each time `what` changes (never with `--json` or `-q`). An empty
    /// `what` clears it.
    pub fn waiting(&self, what: &str, waited: Duration) {
        let line = format!("{what} ({} s)", waited.as_secs());
        if let Some(t) = &self.term {
            let step = t.step.lock().map(|s| s.clone()).unwrap_or_default();
            t.spinner.set_message(if what.is_empty() { step } else { format!("{step}: {line}") });
        } else if !self.quiet
            && !self.json
            && !what.is_empty()
            && let Ok(mut last) = self.waiting.lock()
            && *last != what
        {
            eprintln!("    {line}");
            *last = what.to_string();
        }
    }

    /// Shows a bar for data that streams while `counter` grows: bytes, rate and, with the `total`
    /// expected (bytes; an estimate for a dump), how much is left and the ETA. Only on a terminal;
    /// the bar goes when the guard drops.
    pub fn track_bytes(&self, label: &str, counter: Arc<AtomicU64>, total: Option<u64>) -> Tracker {
        let Some(t) = &self.term else { return Tracker(vec![], None) };
        let template = match total {
            Some(_) => "  {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            None => "  {msg} {bytes} {binary_bytes_per_sec}",
        };
        let bar = t.multi.add(match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        });
        bar.set_style(
            ProgressStyle::with_template(template)
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_string());
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let n = counter.load(Ordering::Relaxed);
                // An estimate that was too small grows rather than showing a full bar.
                if shown.length().is_some_and(|len| n > len) {
                    shown.set_length(n + n / 10);
                }
                shown.set_position(n);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Tracker(vec![task], Some(bar))
    }

    /// [`track_bytes`](Self::track_bytes) for files that something else writes under `dir` (a
    /// sidecar, the object-store client): the bytes there are counted once a second.
    pub fn track_dir(&self, label: &str, dir: &std::path::Path, total: Option<u64>) -> Tracker {
        if self.term.is_none() {
            return Tracker(vec![], None);
        }
        let counter = Arc::new(AtomicU64::new(0));
        let (dir, count) = (dir.to_path_buf(), counter.clone());
        let walker = tokio::spawn(async move {
            loop {
                let d = dir.clone();
                if let Ok(n) = tokio::task::spawn_blocking(move || bytes_under(&d)).await {
                    count.store(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut t = self.track_bytes(label, counter, total);
        t.0.push(walker);
        t
    }

    /// Clears the spinner before the result is printed.
    pub fn finish(&self) {
        if let Some(t) = &self.term {
            t.spinner.finish_and_clear();
        }
    }
}

/// Keeps a byte bar on the terminal while alive ([`Progress::track_bytes`]); dropping it removes it.
pub struct Tracker(Vec<tokio::task::JoinHandle<()>>, Option<ProgressBar>);

impl Drop for Tracker {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
        if let Some(bar) = &self.1 {
            bar.finish_and_clear();
        }
    }
}

/// The size of the regular files under `dir`, in bytes (0 for what cannot be read).
fn bytes_under(dir: &std::path::Path) -> u64 {
    crate::util::walk(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
