//! Image references as Docker understands them, normalised so that the same image written as
//! `mongo:4.4`, `docker.io/library/mongo:4.4` or `testbed.local/mongo:4.4` (behind a mirror
//! prefix) compares equal.

use std::fmt;

use serde::Serialize;

/// An image reference split into repository, tag and digest, without registry prefix or Docker
/// Hub's implicit parts, so that references compare by what they name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ImageRef {
    /// Repository without the default registry, e.g. `mendersoftware/deployments` or `mongo`.
    pub repository: String,
    /// Tag; `latest` when the reference had neither tag nor digest.
    pub tag: Option<String>,
    /// Digest (`sha256:…`) when the reference pinned one.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference and removes `registry` (the user's mirror prefix, `--image-registry`)
    /// and Docker Hub's implicit parts.
    pub fn parse(reference: &str, registry: Option<&str>) -> ImageRef {
        let mut rest = reference.trim();
        let prefix = registry.map(|r| r.trim_end_matches('/')).filter(|r| !r.is_empty());
        if let Some(stripped) = prefix.and_then(|p| rest.strip_prefix(p)).and_then(|r| r.strip_prefix('/')) {
            rest = stripped;
        }
        for hub in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
            if let Some(stripped) = rest.strip_prefix(hub) {
                rest = stripped;
            }
        }
        let (name_tag, digest) = match rest.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (rest, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to a registry port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (&name_tag[..last_slash + i], Some(name_tag[last_slash + i + 1..].to_string())),
            None => (name_tag, None),
        };
        let name = name.strip_prefix("library/").unwrap_or(name);
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        ImageRef { repository: name.to_string(), tag, digest }
    }

    /// The reference under a mirror prefix, as `docker pull` or a compose file would name it.
    pub fn qualified(&self, registry: Option<&str>) -> String {
        match registry.map(|r| r.trim_end_matches('/')).filter(|r| !r.is_empty()) {
            Some(prefix) => format!("{prefix}/{self}"),
            None => self.to_string(),
        }
    }

    /// The last path component: `deployments` for `mendersoftware/deployments`.
    pub fn short_name(&self) -> &str {
        self.repository.rsplit('/').next().unwrap_or(&self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_forms_are_equal() {
        let a = ImageRef::parse("mongo:4.4", None);
        assert_eq!(a, ImageRef::parse("docker.io/library/mongo:4.4", None));
        assert_eq!(a, ImageRef::parse("testbed.local/mongo:4.4", Some("testbed.local")));
        assert_eq!(a.to_string(), "mongo:4.4");
    }

    #[test]
    fn mirror_prefix_only_stripped_when_given() {
        let r = ImageRef::parse("testbed.local/mendersoftware/deployments:mender-3.4.0", None);
        assert_eq!(r.repository, "testbed.local/mendersoftware/deployments");
        let r = ImageRef::parse("testbed.local/mendersoftware/deployments:mender-3.4.0", Some("testbed.local/"));
        assert_eq!(r.repository, "mendersoftware/deployments");
        assert_eq!(r.tag.as_deref(), Some("mender-3.4.0"));
        assert_eq!(r.short_name(), "deployments");
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        let r = ImageRef::parse("mirror:5000/minio/minio", Some("mirror:5000"));
        assert_eq!(r.repository, "minio/minio");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let r = ImageRef::parse("mirror:5000/minio/minio", None);
        assert_eq!(r.repository, "mirror:5000/minio/minio");
    }

    #[test]
    fn digest_kept_and_qualified_adds_prefix() {
        let r = ImageRef::parse("mongo:4.4@sha256:abc", None);
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.qualified(Some("testbed.local")), "testbed.local/mongo:4.4@sha256:abc");
        assert_eq!(ImageRef::parse("traefik:v2.8", None).qualified(None), "traefik:v2.8");
    }
}
