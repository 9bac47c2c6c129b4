//! The compose CLI, which stays the only thing that creates or recreates the stack's containers.
//! Compose v2 is required (plugin or standalone binary); v1 gets a clear refusal.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// Why a compose command could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Neither `docker compose` nor `docker-compose` answered `version --short`.
    #[error("Docker Compose v2 was not found (neither `docker compose` nor `docker-compose` answered)")]
    NotFound,
    /// The compose found is v1 (its version, `1.29.2`).
    #[error("Docker Compose {0} is v1, which names containers differently and is unmaintained; Compose v2 is required")]
    V1(String),
    /// compose ran and exited non-zero.
    #[error("`{command}` failed (exit {code}): {stderr}")]
    Failed {
        /// The command line as run (`docker compose -p menderproduction up -d`).
        command: String,
        /// Its exit code; -1 when it was killed by a signal.
        code: i32,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// The compose program could not be started (not executable, vanished).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// `docker compose` or `docker-compose`.
        program: String,
        /// The operating system's answer.
        source: std::io::Error,
    },
}

/// A found compose v2 and how to invoke it.
#[derive(Debug, Clone)]
pub struct Compose {
    program: Vec<String>,
    /// Its version as `version --short` prints it, without a leading `v` (`2.29.7`).
    pub version: String,
}

/// The files compose is run on for a project: exactly these, nothing else.
#[derive(Debug, Clone, Default)]
pub struct ProjectFiles {
    /// `--project-name`.
    pub name: String,
    /// `--project-directory`, and the directory compose runs in.
    pub working_dir: PathBuf,
    /// `--file`, in order.
    pub config_files: Vec<PathBuf>,
    /// `--env-file`, in order.
    pub env_files: Vec<PathBuf>,
}

async fn version_of(program: &[&str]) -> Option<String> {
    let out = Command::new(program[0])
        .args(&program[1..])
        .args(["version", "--short"])
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

impl Compose {
    /// `docker compose` first, then a standalone `docker-compose`.
    ///
    /// # Errors
    /// [`ComposeError::NotFound`] when neither answers; [`ComposeError::V1`] for a v1.
    pub async fn detect() -> Result<Compose, ComposeError> {
        for program in [&["docker", "compose"][..], &["docker-compose"][..]] {
            if let Some(version) = version_of(program).await {
                if version.starts_with("1.") {
                    return Err(ComposeError::V1(version));
                }
                return Ok(Compose { program: program.iter().map(|s| s.to_string()).collect(), version });
            }
        }
        Err(ComposeError::NotFound)
    }

    fn command(&self, project: &ProjectFiles) -> Command {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..]);
        cmd.arg("--project-name").arg(&project.name);
        cmd.arg("--project-directory").arg(&project.working_dir);
        for f in &project.config_files {
            cmd.arg("--file").arg(f);
        }
        for f in &project.env_files {
            cmd.arg("--env-file").arg(f);
        }
        cmd.current_dir(&project.working_dir);
        cmd.stdin(Stdio::null());
        // Its own process group: a Ctrl-C on the terminal reaches the tool, which decides what to
        // stop, and not compose in the middle of a step. Dropped unfinished, it is killed.
        cmd.process_group(0);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs a compose subcommand on the project's files; returns its stdout.
    ///
    /// # Errors
    /// compose could not be started, or exited non-zero (its stderr is in the error).
    pub async fn run(&self, project: &ProjectFiles, args: &[&str]) -> Result<String, ComposeError> {
        self.exec(&mut self.command(project), project, args).await
    }

    async fn exec(&self, cmd: &mut Command, project: &ProjectFiles, args: &[&str]) -> Result<String, ComposeError> {
        cmd.args(args);
        tracing::info!("{} -p {} {}", self.program.join(" "), project.name, args.join(" "));
        let started = std::time::Instant::now();
        let out =
            cmd.output().await.map_err(|source| ComposeError::Spawn { program: self.program.join(" "), source })?;
        tracing::debug!(
            "compose {} exited {} after {:.1} s",
            args.first().unwrap_or(&""),
            out.status,
            started.elapsed().as_secs_f64()
        );
        if !out.status.success() {
            return Err(ComposeError::Failed {
                command: format!("{} -p {} {}", self.program.join(" "), project.name, args.join(" ")),
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Splits the comma-joined path list of a compose label (`com.docker.compose.project.config_files`,
/// `com.docker.compose.project.environment_file`); empty when the label is missing.
pub fn label_paths(value: Option<&String>) -> Vec<PathBuf> {
    value.map(|v| v.split(',').filter(|s| !s.is_empty()).map(PathBuf::from).collect()).unwrap_or_default()
}

/// Where Compose v1 ran: it labels its files as typed, relative to the directory it ran in, while
/// its working directory is the first file's directory (`production/run` runs in `production/`
/// with `-f ../docker-compose.yml`: working directory the checkout). The working directory itself
/// or the one of its subdirectories from which every relative file exists and the first file's
/// directory is the working directory; `None` when no single one fits.
pub fn v1_invocation_dir(working_dir: &Path, files: &[PathBuf]) -> Option<PathBuf> {
    if files.iter().all(|f| f.is_absolute()) {
        return Some(working_dir.to_path_buf());
    }
    let wd = working_dir.canonicalize().ok()?;
    let mut candidates = vec![working_dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(working_dir) {
        let mut subdirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subdirs.sort();
        candidates.extend(subdirs);
    }
    let fits = |base: &PathBuf| {
        let first = files.first().map(|f| base.join(f));
        files.iter().all(|f| base.join(f).is_file())
            && first.and_then(|f| f.parent().and_then(|d| d.canonicalize().ok())).as_ref() == Some(&wd)
    };
    let mut found = candidates.into_iter().filter(fits);
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The project's files, relative paths resolved against its working directory.
pub fn project_files(name: &str, working_dir: &Path, config: Vec<PathBuf>, env: Vec<PathBuf>) -> ProjectFiles {
    let abs = |p: PathBuf| {
        if p.is_absolute() { p } else { working_dir.join(p) }
    };
    ProjectFiles {
        name: name.to_string(),
        working_dir: working_dir.to_path_buf(),
        config_files: config.into_iter().map(abs).collect(),
        env_files: env.into_iter().map(abs).collect(),
    }
}

impl From<ComposeError> for crate::exit::Failure {
    fn from(e: ComposeError) -> crate::exit::Failure {
        let next = match &e {
            ComposeError::V1(_) | ComposeError::NotFound => {
                "install Docker Compose v2 (the docker-compose-plugin package, or the docker-compose binary of a v2 release)"
            }
            _ => "see the compose error above",
        };
        crate::exit::Failure::new(crate::exit::Exit::Precondition, e, crate::exit::UNCHANGED_ALL, next)
    }
}
