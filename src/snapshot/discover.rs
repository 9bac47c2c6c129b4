//! Which compose project on the daemon is the Mender Server: pure selection over containers.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog::ImageRef;
use crate::engine::container::ContainerInfo;

/// Why no single Mender project could be chosen; nothing was touched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoverError {
    /// No compose project runs a `mendersoftware/*` image (behind the mirror prefix, if given).
    #[error("no compose project on this Docker daemon runs Mender images (mendersoftware/*{registry_hint})")]
    NoProject {
        /// `, also under PREFIX/` with `--image-registry`, else empty.
        registry_hint: String,
    },
    /// Several projects run Mender images and no `-p` chose one.
    #[error("{count} compose projects run Mender images: {names}; choose one with -p/--project")]
    Ambiguous {
        /// How many projects run Mender images.
        count: usize,
        /// Their names, comma-separated.
        names: String,
    },
    /// No container of the daemon belongs to the project named with `-p`.
    #[error("no compose project named {name} has containers on this Docker daemon{others}")]
    NotFound {
        /// The name given with `-p`.
        name: String,
        /// ` (Mender projects here: …)` when there are some, else empty.
        others: String,
    },
}

/// A compose project that runs Mender images.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Candidate {
    /// The compose project name (`menderproduction`).
    pub project: String,
    /// Its containers that run Mender images.
    pub mender_containers: usize,
    /// All its containers.
    pub containers: usize,
}

/// Whether an image is a Mender service image (behind the mirror prefix, if any).
pub fn is_mender_image(image: &str, registry: Option<&str>) -> bool {
    let r = ImageRef::parse(image, registry);
    r.repository.starts_with("mendersoftware/") || r.repository.contains("/mender-server-enterprise/")
}

/// Compose projects that run at least one Mender image. Staging copies made by this tool are not
/// candidates: they are named with `-p` when meant.
pub fn candidates(containers: &[ContainerInfo], registry: Option<&str>) -> Vec<Candidate> {
    let mut by: BTreeMap<&str, Candidate> = BTreeMap::new();
    for c in containers.iter().filter(|c| c.label(crate::labels::STAGING_LABEL).is_none()) {
        let e = by.entry(&c.project).or_insert_with(|| Candidate {
            project: c.project.clone(),
            mender_containers: 0,
            containers: 0,
        });
        e.containers += 1;
        if is_mender_image(&c.image, registry) {
            e.mender_containers += 1;
        }
    }
    by.into_values().filter(|c| c.mender_containers > 0).collect()
}

/// The project to work on: the one named with `-p`, or the only Mender project.
///
/// # Errors
/// [`DiscoverError`] when that is not one project.
pub fn select(
    containers: &[ContainerInfo],
    requested: Option<&str>,
    registry: Option<&str>,
) -> Result<String, DiscoverError> {
    let found = candidates(containers, registry);
    let names = |list: &[Candidate]| list.iter().map(|c| c.project.clone()).collect::<Vec<_>>().join(", ");
    if let Some(name) = requested {
        if containers.iter().any(|c| c.project == name) {
            return Ok(name.to_string());
        }
        let others =
            if found.is_empty() { String::new() } else { format!(" (Mender projects here: {})", names(&found)) };
        return Err(DiscoverError::NotFound { name: name.to_string(), others });
    }
    match found.len() {
        0 => Err(DiscoverError::NoProject {
            registry_hint: registry.map(|r| format!(", also under {r}/")).unwrap_or_default(),
        }),
        1 => Ok(found[0].project.clone()),
        n => Err(DiscoverError::Ambiguous { count: n, names: names(&found) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(project: &str, image: &str) -> ContainerInfo {
        ContainerInfo { project: project.into(), image: image.into(), service: "s".into(), ..Default::default() }
    }

    #[test]
    fn single_mender_project_is_chosen() {
        let cs = [c("menderproduction", "mendersoftware/deployments:mender-3.4.0"), c("other", "nginx:1")];
        assert_eq!(select(&cs, None, None).unwrap(), "menderproduction");
    }

    #[test]
    fn mirror_prefix_is_recognised() {
        let cs = [c("mp", "testbed.local/mendersoftware/useradm:mender-3.4.0")];
        assert!(select(&cs, None, None).is_err());
        assert_eq!(select(&cs, None, Some("testbed.local")).unwrap(), "mp");
    }

    #[test]
    fn staging_copies_are_not_candidates_but_can_be_named() {
        let mut staging = c("mp-staging", "mendersoftware/inventory:mender-3.4.0");
        staging.labels.insert(crate::labels::STAGING_LABEL.into(), "mp-staging".into());
        let cs = [c("mp", "mendersoftware/inventory:mender-3.4.0"), staging];
        assert_eq!(select(&cs, None, None).unwrap(), "mp");
        assert_eq!(select(&cs, Some("mp-staging"), None).unwrap(), "mp-staging");
    }

    #[test]
    fn none_two_and_unknown_name_are_errors() {
        assert!(matches!(select(&[c("x", "nginx:1")], None, None), Err(DiscoverError::NoProject { .. })));
        let two = [c("a", "mendersoftware/inventory:mender-3.4.0"), c("b", "mendersoftware/inventory:mender-3.6.5")];
        let err = select(&two, None, None).unwrap_err();
        assert_eq!(err, DiscoverError::Ambiguous { count: 2, names: "a, b".into() });
        assert_eq!(select(&two, Some("b"), None).unwrap(), "b");
        let err = select(&two, Some("zz"), None).unwrap_err();
        assert!(err.to_string().contains("zz") && err.to_string().contains("a, b"), "{err}");
    }
}
