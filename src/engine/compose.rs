//! The compose CLI, which stays the only thing that creates or recreates the stack's containers.
//! Compose v2 is required (plugin or standalone binary); v1 gets a clear refusal.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("Docker Compose v2 was not found (neither `docker compose` nor `docker-compose` answered)")]
    NotFound,
    #[error("Docker Compose {0} is v1, which names containers differently and is unmaintained; Compose v2 is required")]
    V1(String),
    #[error("`{command}` failed (exit {code}): {stderr}")]
    Failed { command: String, code: i32, stderr: String },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
}

/// A found compose v2 and how to invoke it.
#[derive(Debug, Clone)]
pub struct Compose {
    program: Vec<String>,
    pub version: String,
}

/// A compose project as its containers' labels describe it.
#[derive(Debug, Clone, Default)]
pub struct ProjectFiles {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    /// A staging project: every command runs on the isolated rendering of these files.
    pub staging: Option<Staging>,
}

/// Where a staging project's isolated configuration is written, and the bundle's copies of host
/// paths outside its directory.
#[derive(Debug, Clone, Default)]
pub struct Staging {
    pub rendered: PathBuf,
    pub external_copies: std::collections::BTreeMap<PathBuf, PathBuf>,
    pub store: Option<crate::staging::isolate::OwnStore>,
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
        cmd
    }

    /// Runs a compose subcommand on the project; returns stdout. A staging project's files are
    /// rendered and isolated first (they may have changed: a hop rewrites them), and the command
    /// runs on that rendering only.
    pub async fn run(&self, project: &ProjectFiles, args: &[&str]) -> Result<String, ComposeError> {
        let mut cmd = match &project.staging {
            Some(staging) => {
                let rendered = self.render_staging(project, staging).await?;
                let only =
                    ProjectFiles { config_files: vec![rendered], env_files: vec![], staging: None, ..project.clone() };
                self.command(&only)
            }
            None => self.command(project),
        };
        self.exec(&mut cmd, project, args).await
    }

    async fn render_staging(&self, project: &ProjectFiles, staging: &Staging) -> Result<PathBuf, ComposeError> {
        let plain = ProjectFiles { staging: None, ..project.clone() };
        let json = self.exec(&mut self.command(&plain), project, &["config", "--format", "json"]).await?;
        let failed = |stderr: String| ComposeError::Failed {
            command: format!("isolating the staging configuration of {}", project.name),
            code: -1,
            stderr,
        };
        let rendered: serde_json::Value = serde_json::from_str(&json).map_err(|e| failed(e.to_string()))?;
        let spec = crate::staging::isolate::Spec {
            name: &project.name,
            project_dir: &project.working_dir,
            external_copies: &staging.external_copies,
            store: staging.store.as_ref(),
        };
        let isolated = crate::staging::isolate::isolate(&rendered, &spec).map_err(|e| failed(e.to_string()))?;
        let text = serde_json::to_string_pretty(&isolated.config).map_err(|e| failed(e.to_string()))?;
        let notes: Vec<&String> = isolated.dropped.iter().chain(&isolated.notes).collect();
        if let (Some(dir), Ok(n)) = (staging.rendered.parent(), serde_json::to_string(&notes)) {
            let _ = std::fs::write(dir.join(crate::staging::NOTES), n);
        }
        // It holds production's secrets, like the bundle it came from.
        crate::staging::write_private(&staging.rendered, &text).map_err(|e| failed(e.to_string()))?;
        Ok(staging.rendered.clone())
    }

    async fn exec(&self, cmd: &mut Command, project: &ProjectFiles, args: &[&str]) -> Result<String, ComposeError> {
        cmd.args(args);
        let out =
            cmd.output().await.map_err(|source| ComposeError::Spawn { program: self.program.join(" "), source })?;
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

/// Splits the comma-joined path list of a compose label.
pub fn label_paths(value: Option<&String>) -> Vec<PathBuf> {
    value.map(|v| v.split(',').filter(|s| !s.is_empty()).map(PathBuf::from).collect()).unwrap_or_default()
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
        staging: None,
    }
}
