//! Ctrl-C (SIGINT) and SIGTERM for the verbs that change a stack. Outside a critical section a
//! signal ends the process at once (exit 130: nothing is half-done). Inside one — stopped
//! services, a hop's steps, a restore — the section sees the signal, stops at its next await,
//! puts things in a known state (journal written, services started again, staging removed) and
//! says so; it is never killed in the middle of that.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

static SIGNALLED: AtomicBool = AtomicBool::new(false);
static CRITICAL: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<()> = OnceLock::new();

fn notify() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

/// Takes over SIGINT and SIGTERM for this process (once; later calls do nothing). Needs a tokio
/// runtime.
pub fn install() {
    INSTALLED.get_or_init(|| {
        tokio::spawn(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                SIGNALLED.store(true, Ordering::SeqCst);
                if CRITICAL.load(Ordering::SeqCst) == 0 {
                    eprintln!("interrupted; nothing was changed");
                    std::process::exit(130);
                }
                tracing::info!("interrupted: finishing the current section safely");
                notify().notify_waiters();
            }
        });
    });
}

/// Whether a signal has arrived.
pub fn is_signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}

/// Resolves once a signal has arrived (at once if one already has).
pub async fn signalled() {
    loop {
        let wait = notify().notified();
        if is_signalled() {
            return;
        }
        wait.await;
    }
}

/// A section a signal must not cut short; while one is alive, signals are delivered to
/// [`signalled`] instead of ending the process.
#[must_use = "the section lasts as long as the guard"]
pub struct Critical(());

impl Critical {
    /// Enters a critical section.
    pub fn enter() -> Critical {
        CRITICAL.fetch_add(1, Ordering::SeqCst);
        Critical(())
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        CRITICAL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Raises SIGINT in this process: the test-only fault `MENDER_COMPOSE_UPGRADE_FAULT=sigint-after:<point>`
/// uses it to interrupt a run at an exact point, as an operator's Ctrl-C would.
pub fn raise() {
    // Seen at once, as if the handler had already run: the fault point is exact.
    SIGNALLED.store(true, Ordering::SeqCst);
    notify().notify_waiters();
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
}

/// Whether the test-only fault `MENDER_COMPOSE_UPGRADE_FAULT` (README) names `point`
/// (`after:dump`, `during:restore`, …). Never set by an operator.
pub fn fault(point: &str) -> bool {
    std::env::var("MENDER_COMPOSE_UPGRADE_FAULT").is_ok_and(|f| f == point)
}

/// Ends this process at once with SIGKILL, as `kill -9` or a power cut would: nothing of ours
/// runs after it (no journal write, no cleanup). For the test-only faults.
pub fn kill_now() {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
}
