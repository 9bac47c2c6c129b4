//! `completions` and `man` through the built binary, without a daemon: what an operator pipes
//! into their shell's completion directory or `man` must name the verbs and flags the binary has,
//! and a wrong argument must leave nothing behind on stdout.

mod common;

use std::process::Command;

use common::*;

/// Verbs and a flag every script and the main page must know.
const VERBS: [&str; 4] = ["upgrade", "rollback", "backup", "rehearse"];

#[test]
fn completions_for_each_shell_name_the_verbs_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = tool(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for verb in VERBS {
            assert!(script.contains(verb), "{shell} script lacks {verb}");
        }
        assert!(script.contains("stop-timeout") && script.contains("state-dir"), "{shell} script lacks flags");
        // The sidecar's verb is not for operators.
        assert!(!script.contains("helper"), "{shell} script offers the hidden helper verb");
    }
}

#[test]
fn the_bash_script_loads_in_bash() {
    let out = tool(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcu.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let Ok(bash) = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p mender-compose-upgrade", file.display()))
        .output()
    else {
        eprintln!("no bash on this machine: only the script's text was checked");
        return;
    };
    assert!(bash.status.success(), "{}", String::from_utf8_lossy(&bash.stderr));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("mender-compose-upgrade"));
}

#[test]
fn a_shell_clap_does_not_know_is_a_usage_error_with_nothing_written() {
    let out = tool(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("invalid value 'tcsh'") && err.contains("bash") && err.contains("powershell"), "{err}");
}

#[test]
fn the_main_page_renders_and_names_the_verbs() {
    let out = tool(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let roff = stdout(&out);
    assert!(roff.contains(".TH mender-compose-upgrade 1"), "{roff}");
    for verb in VERBS {
        assert!(roff.contains(verb), "the page lacks {verb}");
    }
    assert!(!roff.contains("helper"), "the page lists the hidden helper verb");
    // Rendered as a reader sees it, where man-db is installed (it is not on every CI image).
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg("command -v man >/dev/null || exit 77; MANWIDTH=100 man -l - 2>/dev/null | col -b")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let shown = child.wait_with_output().unwrap();
    if shown.status.code() == Some(77) {
        eprintln!("no man on this machine: only the roff source was checked");
        return;
    }
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("SUBCOMMANDS") && text.contains("mender-compose-upgrade-upgrade(1)"), "{text}");
}

#[test]
fn one_verb_page_and_every_page_into_a_directory() {
    let out = tool(&["man", "staging", "up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(".TH mender-compose-upgrade-staging-up 1"), "{}", stdout(&out));

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = tool(&["--json", "man", "--out-dir", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = json(&out)["pages"].as_array().unwrap().len();
    for page in ["mender-compose-upgrade.1", "mender-compose-upgrade-upgrade.1", "mender-compose-upgrade-rollback.1"] {
        assert!(pages.join(page).is_file(), "{page} missing");
    }
    assert_eq!(std::fs::read_dir(&pages).unwrap().count(), listed);
}

#[test]
fn an_unknown_verb_has_no_page_and_nothing_is_written() {
    let out = tool(&["man", "upgrad"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("\"upgrad\" is not a verb") && stderr(&out).contains("upgrade"), "{}", stderr(&out));
}
