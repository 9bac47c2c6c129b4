//! A project directory that is a git clone of the integration repository, set up as Mender's
//! install docs say (`git clone -b <tag>`, a local branch with prod.yml and keys committed), with a
//! local repository whose tags hold the base files standing in for upstream: the upgrade merges
//! the target's tag into the branch (a conflict is refused before any downtime), or, without the
//! tag, writes the files and says the clone now differs from its HEAD.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mender_compose_upgrade::catalog::{LoadedCatalog, render};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=operator", "-c", "user.email=operator@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An "integration" repository whose tags hold the base files of `tags` (as the test bed
/// writes them, images behind its registry), one commit per tag.
fn upstream(dir: &Path, tags: &[&str]) {
    let l = LoadedCatalog::embedded().unwrap();
    git(dir, &["init", "-q", "-b", "master"]);
    for tag in tags {
        for t in l.release_files(&semver::Version::parse(tag).unwrap()).unwrap() {
            let path = dir.join(&t.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, render(&t, Some(REGISTRY)).unwrap()).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("Release {tag}")]);
        git(dir, &["tag", tag]);
    }
}

/// Turns the demo checkout of `stack` into a clone of `origin` at `tag` with the operator's
/// branch on top: the base files are the tag's, prod.yml, keys and the run script are committed.
fn as_clone(stack: &Stack, origin: &Path, tag: &str) {
    let d = &stack.dir;
    git(d, &["remote", "add", "origin", &origin.to_string_lossy()]);
    git(d, &["fetch", "-q", "--no-tags", "origin", &format!("refs/tags/{tag}:refs/tags/{tag}")]);
    git(d, &["reset", "-q", "--soft", tag]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "production setup"]);
    assert_eq!(git(d, &["describe", "--tags", "--abbrev=0"]), tag);
    assert_eq!(git(d, &["diff", "--stat", tag, "HEAD", "--", "docker-compose.yml"]), "", "base files are the tag's");
}

#[test]
fn a_clone_with_the_tag_is_merged_and_a_conflict_is_refused_before_any_downtime() {
    let stack = Stack::up("gitc", "3.6.5");
    let origin = tempfile::tempdir().unwrap();
    upstream(origin.path(), &["3.6.5", "3.7.11"]);
    as_clone(&stack, origin.path(), "3.6.5");
    let d = &stack.dir;
    let prod = file(&stack.path("production/config/prod.yml"));
    let before = stack.data();

    // A committed local edit of a line 3.7.11 changes too: the merge would conflict.
    let dc = file(&stack.path("docker-compose.yml"));
    std::fs::write(stack.path("docker-compose.yml"), dc.replacen("mongo:4.4", "mongo:4.4 # pinned by us", 1)).unwrap();
    git(d, &["commit", "-q", "-am", "pin mongo"]);
    let head = git(d, &["rev-parse", "HEAD"]);
    let started = stack.started_at();
    let out = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the project's git clone cannot take tag 3.7.11")
            && err.contains("conflicts in docker-compose.yml"),
        "{err}"
    );
    assert_eq!(stack.started_at(), started, "no downtime");
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head, "the clone is untouched");
    git(d, &["reset", "-q", "--hard", "HEAD~1"]);
    let head = git(d, &["rev-parse", "HEAD"]);

    // A release that fails its gates: the hop is rolled back, and the merge with it.
    let cat = catalog_copy(|r, _| {
        let svc = &mut release(r, "3.7.11")["services"]["mender-useradm"];
        svc["image"] = "mendersoftware/useradm:mender-3.7.11-broken".into();
    });
    let out =
        stack.tool(&["--catalog", &catalog_arg(&cat), "upgrade", "--to", "3.7.11", "--yes", "--hop-timeout", "60s"]);
    assert_eq!(out.status.code(), Some(4), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("merged tag 3.7.11"), "{}", stderr(&out));
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head, "the branch is back where it was");
    // The files are back too, but for the MongoDB 4.4 → 5.0 stage that ran before the failed hop
    // (and stays: 3.6 runs 5.0): its image and its copy of the data volume.
    assert_eq!(stage_edits(d), ["mongo:4.4", "mongo:5.0", "mender-db", "mender-db-5.0"], "and its files with it");
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.6.5");
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));

    // Without the conflict: the tag is merged into the operator's branch.
    let out = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("merges tag 3.7.11 into my-production-setup"), "{}", stderr(&out));
    assert_eq!(git(d, &["describe", "--tags", "--abbrev=0"]), "3.7.11", "what production/run gives the GUI");
    assert_eq!(git(d, &["symbolic-ref", "--short", "HEAD"]), "my-production-setup");
    git(d, &["merge-base", "--is-ancestor", "3.7.11", "HEAD"]);
    // The clone agrees with its HEAD but for the stage's copy of the data volume in prod.yml.
    assert_eq!(stage_edits(d), ["mender-db", "mender-db-5.0"], "the clone agrees with its HEAD");
    let db = format!("{}-mender-db", stack.project);
    assert_eq!(
        file(&stack.path("production/config/prod.yml")),
        prod.replace(&format!("{db}\n"), &format!("{db}-5.0\n")),
        "the operator's prod.yml is kept"
    );
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
    assert!(s["checkout"]["disagreement"].is_null(), "{}", s["checkout"]);
    assert_eq!(without_migrations(&stack.data()), without_migrations(&before));
}

/// What the working tree changes against HEAD, line by line, reduced to the MongoDB image tag or
/// the data volume's name each changed line holds (in diff order: removed, then added).
fn stage_edits(d: &Path) -> Vec<String> {
    git(d, &["diff", "HEAD", "-U0"])
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++"))
        .map(|l| {
            let v = l[1..].trim().trim_start_matches("image:").trim_start_matches("name:").trim();
            let v = v.rsplit('/').next().unwrap_or(v);
            v.split_once("mender-db").map_or(v.to_string(), |(_, rest)| format!("mender-db{rest}"))
        })
        .collect()
}

#[test]
fn a_clone_without_the_tag_gets_the_files_and_is_told_it_differs_from_head() {
    let stack = Stack::up("gitn", "3.6.5");
    let origin = tempfile::tempdir().unwrap();
    upstream(origin.path(), &["3.6.5"]);
    as_clone(&stack, origin.path(), "3.6.5");
    let d = &stack.dir;
    let out = stack.tool(&["upgrade", "--to", "3.7.11", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("the clone has no tag 3.7.11"), "{err}");
    assert!(err.contains("the clone now differs from its HEAD"), "{err}");
    assert_eq!(git(d, &["describe", "--tags", "--abbrev=0"]), "3.6.5");
    assert!(git(d, &["status", "--porcelain"]).contains("docker-compose.yml"));
    let s = json(&stack.tool(&["--json", "status", "--require-healthy"]));
    assert_eq!(s["release"], "3.7.11");
}
