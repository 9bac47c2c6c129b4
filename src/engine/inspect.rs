//! Reads the compose projects' containers from the daemon.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use super::container::{ContainerInfo, Mount};
use super::docker::DockerError;
use crate::labels::{LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};

async fn list(docker: &Docker, project: Option<&str>) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
    let project_filter = match project {
        Some(p) => format!("{LABEL_PROJECT}={p}"),
        None => LABEL_PROJECT.to_string(),
    };
    let filters = HashMap::from([("label", vec![project_filter])]);
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(DockerError::api("list containers"))?;
    // `compose run` one-offs are not part of the stack.
    Ok(list
        .into_iter()
        .filter(|s| {
            !s.labels.as_ref().and_then(|l| l.get(LABEL_ONEOFF)).is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
        .collect())
}

/// Project, service and image of every compose container on the daemon: enough to choose the
/// project without inspecting everything.
///
/// # Errors
/// [`DockerError::Api`] when the daemon cannot list containers.
pub async fn compose_summaries(docker: &Docker) -> Result<Vec<ContainerInfo>, DockerError> {
    Ok(list(docker, None)
        .await?
        .into_iter()
        .map(|s| {
            let labels: BTreeMap<String, String> = s.labels.unwrap_or_default().into_iter().collect();
            ContainerInfo {
                id: s.id.unwrap_or_default(),
                project: labels.get(LABEL_PROJECT).cloned().unwrap_or_default(),
                service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                image: s.image.unwrap_or_default(),
                labels,
                ..Default::default()
            }
        })
        .collect())
}

/// The containers of one project, inspected, running or not.
///
/// # Errors
/// [`DockerError::Api`] when the daemon cannot list them (a container gone before its inspect
/// is left out).
pub async fn project_containers(docker: &Docker, project: &str) -> Result<Vec<ContainerInfo>, DockerError> {
    let mut out = Vec::new();
    for summary in list(docker, Some(project)).await? {
        let Some(id) = summary.id else { continue };
        // A container removed between list and inspect is simply gone.
        if let Ok(info) = docker.inspect_container(&id, None).await {
            out.push(to_info(info));
        }
    }
    out.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    Ok(out)
}

fn to_info(c: bollard::models::ContainerInspectResponse) -> ContainerInfo {
    let config = c.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.clone().unwrap_or_default().into_iter().collect();
    let state = c.state.unwrap_or_default();
    let endpoints = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
    let mut networks: Vec<String> = endpoints.keys().cloned().collect();
    networks.sort();
    let mut aliases: Vec<String> = endpoints.into_values().flat_map(|e| e.aliases.unwrap_or_default()).collect();
    aliases.sort();
    aliases.dedup();
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
        project: labels.get(LABEL_PROJECT).cloned().unwrap_or_default(),
        service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
        image: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        running: state.running.unwrap_or(false),
        restarting: state.restarting.unwrap_or(false),
        restart_count: c.restart_count.unwrap_or(0),
        exit_code: state.exit_code,
        health: state.health.and_then(|h| h.status).map(|s| s.to_string()).filter(|s| !s.is_empty() && s != "none"),
        started_at: state.started_at,
        networks,
        aliases,
        env: config.env.unwrap_or_default(),
        labels,
        mounts: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                kind: m.typ.unwrap_or_default(),
                name: m.name,
                source: m.source,
                destination: m.destination.unwrap_or_default(),
            })
            .collect(),
        log_tail: None,
    }
}

/// The last `lines` lines of a container's log (stdout and stderr), at most [`LOG_TAIL_BYTES`]
/// of them (a line longer than that is cut from its start), decoded lossily as UTF-8.
///
/// # Errors
/// [`DockerError::Api`] when the daemon refuses (the container is gone, a logging driver that
/// keeps nothing to read).
pub async fn log_tail(docker: &Docker, id: &str, lines: usize) -> Result<String, DockerError> {
    let opts = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&lines.to_string()).build();
    let mut stream = docker.logs(id, Some(opts));
    let mut out: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(chunk.map_err(DockerError::api(format!("logs {id}")))?.as_ref());
        // Keep the newest bytes only: the tail is what explains an exit.
        if out.len() > 2 * LOG_TAIL_BYTES {
            out.drain(..out.len() - LOG_TAIL_BYTES);
        }
    }
    if out.len() > LOG_TAIL_BYTES {
        out.drain(..out.len() - LOG_TAIL_BYTES);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The most [`log_tail`] keeps, in bytes (256 KiB): room for a hundred long JSON log lines.
pub const LOG_TAIL_BYTES: usize = 256 * 1024;
