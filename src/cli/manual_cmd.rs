//! `completions` and `man`: shell completion scripts and manual pages, generated from the same
//! clap definitions the command line is parsed with, so they can never list a verb or flag the
//! binary does not have. Neither needs the daemon or the state directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::{Cli, CompletionsArgs, Global, ManArgs, print_json};
use crate::exit::{Exit, Failure};

/// The name the scripts complete and the pages are named after.
const BIN: &str = env!("CARGO_PKG_NAME");

/// Why `completions` or `man` could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// `man VERB…` named no verb (hidden ones included: they have no page).
    #[error("{0:?} is not a verb of {BIN}")]
    UnknownVerb(String),
    /// Stdout could not be written (a closed pipe, a full disk behind a redirect).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// `--out-dir` could not be created or a page could not be written into it.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The directory or page file.
        path: PathBuf,
        /// The file system's answer.
        source: std::io::Error,
        /// The pages written before the failure (they are complete and stay).
        written: Vec<PathBuf>,
    },
}

impl From<ManualError> for Failure {
    fn from(e: ManualError) -> Failure {
        match &e {
            ManualError::UnknownVerb(_) => {
                let verbs: Vec<String> = visible_pages(man_command()).into_iter().skip(1).map(|p| p.verb).collect();
                Failure::new(
                    Exit::Usage,
                    &e,
                    "everything: no page was written",
                    format!("name one of: {} (or no verb, for the main page)", verbs.join(", ")),
                )
            }
            ManualError::Stdout(_) => {
                Failure::new(Exit::Unexpected, &e, "everything else: no other page was written", "run it again")
            }
            ManualError::Write { written, path, .. } => Failure::new(
                Exit::Precondition,
                &e,
                if written.is_empty() {
                    "no page was written".to_string()
                } else {
                    format!("{} pages were written before it and stay", written.len())
                },
                format!(
                    "give --out-dir a directory you can write (e.g. ~/.local/share/man/man1), or fix {}",
                    path.display()
                ),
            ),
        }
    }
}

/// `completions SHELL`: the script on stdout.
///
/// # Errors
/// Stdout cannot be written (exit 1).
pub fn completions(a: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = without_hidden_verbs(Cli::command());
    // Rendered in memory first: the generators panic on a failed write, and a closed pipe
    // (`completions bash | head`) must be an error, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, BIN, &mut script);
    std::io::stdout().lock().write_all(&script).map_err(|e| Failure::from(ManualError::Stdout(e)))?;
    Ok(Exit::Ok)
}

/// `man [VERB…] [--out-dir DIR]`: one page on stdout, or every page into a directory.
///
/// # Errors
/// An unknown verb (exit 2); a directory or stdout that cannot be written (exit 3, exit 1).
pub fn man(g: &Global, a: ManArgs) -> anyhow::Result<Exit> {
    let pages = visible_pages(man_command());
    let Some(dir) = a.out_dir else {
        let want = a.verb.join("-");
        let page = if want.is_empty() { pages.into_iter().next() } else { pages.into_iter().find(|p| p.verb == want) };
        let page = page.ok_or_else(|| Failure::from(ManualError::UnknownVerb(a.verb.join(" "))))?;
        std::io::stdout().lock().write_all(&page.roff).map_err(|e| Failure::from(ManualError::Stdout(e)))?;
        return Ok(Exit::Ok);
    };
    let written = write_pages(&dir, &pages).map_err(Failure::from)?;
    if g.json {
        print_json(&serde_json::json!({ "out_dir": dir, "pages": written }))?;
    } else {
        println!("Wrote {} manual pages to {}; read one with: man {BIN}-upgrade", written.len(), dir.display());
    }
    Ok(Exit::Ok)
}

/// `cmd` without its hidden verbs (the sidecar's `helper`): clap_complete offers hidden
/// subcommands, and an operator has no use for them. Clap cannot remove a subcommand, so the
/// top-level command is rebuilt from what completion reads: name, texts, arguments, verbs.
fn without_hidden_verbs(cmd: clap::Command) -> clap::Command {
    // The derive names the command after the package (`#[command(name = …)]` in args.rs).
    let mut visible = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
        .subcommand_required(cmd.is_subcommand_required_set());
    if let Some(about) = cmd.get_about() {
        visible = visible.about(about.clone());
    }
    visible
}

/// The command the pages describe: no `help` verb (clap's own; it has nothing to document).
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Sets every subcommand's display name (`mender-compose-upgrade-staging-up`), which names
    // its page.
    cmd.build();
    cmd
}

/// One rendered manual page.
struct Page {
    /// The verb path joined by `-` (`staging-up`); empty for the main page.
    verb: String,
    /// Its file name (`mender-compose-upgrade-staging-up.1`).
    file: String,
    /// The page in roff.
    roff: Vec<u8>,
}

/// Every page, the main one first, then each visible verb depth first, as git and cargo ship
/// them (one page per verb). Hidden verbs (the sidecar's `helper`) have none.
fn visible_pages(cmd: clap::Command) -> Vec<Page> {
    fn walk(cmd: clap::Command, verb: String, out: &mut Vec<Page>) {
        let subs: Vec<clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
        let man = clap_mangen::Man::new(cmd);
        let mut roff = Vec::new();
        // Rendering into a Vec cannot fail: the only errors are the writer's.
        let _ = man.render(&mut roff);
        out.push(Page { verb: verb.clone(), file: man.get_filename(), roff });
        for s in subs {
            let name = s.get_name().to_string();
            walk(s, if verb.is_empty() { name } else { format!("{verb}-{name}") }, out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, String::new(), &mut out);
    out
}

/// Writes `pages` into `dir` (created when missing; existing pages of the same name replaced).
fn write_pages(dir: &Path, pages: &[Page]) -> Result<Vec<PathBuf>, ManualError> {
    let mut written = Vec::new();
    std::fs::create_dir_all(dir).map_err(|source| ManualError::Write {
        path: dir.to_path_buf(),
        source,
        written: vec![],
    })?;
    for p in pages {
        let path = dir.join(&p.file);
        if let Err(source) = std::fs::write(&path, &p.roff) {
            return Err(ManualError::Write { path, source, written });
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_verb_named_like_git_and_cargo() {
        let pages = visible_pages(man_command());
        let files: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(files[0], "mender-compose-upgrade.1");
        for f in
            ["mender-compose-upgrade-upgrade.1", "mender-compose-upgrade-staging-up.1", "mender-compose-upgrade-man.1"]
        {
            assert!(files.contains(&f), "{files:?}");
        }
        assert!(!files.iter().any(|f| f.contains("helper") || f.ends_with("-help.1")), "{files:?}");
        let up = pages.iter().find(|p| p.verb == "staging-up").unwrap();
        assert!(String::from_utf8_lossy(&up.roff).contains("\\-\\-from"), "the page documents its flags");
    }

    #[test]
    fn completions_offer_no_hidden_verb() {
        assert_eq!(Cli::command().get_name(), BIN);
        let mut cmd = without_hidden_verbs(Cli::command());
        let mut script = Vec::new();
        clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, BIN, &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(!script.contains("helper") && script.contains("-a \"rollback\""), "{script}");
        assert!(script.contains("-l stop-timeout") && script.contains("-l state-dir"), "{script}");
    }

    #[test]
    fn pages_go_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man/man1");
        let pages = visible_pages(man_command());
        let written = write_pages(&out, &pages).unwrap();
        assert_eq!(written.len(), pages.len());
        assert!(out.join("mender-compose-upgrade-rollback.1").is_file());
    }
}
