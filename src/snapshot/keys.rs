//! The signing keys of deviceauth and useradm: the files every device token and every session
//! is signed with. A hop that mounts another key logs out every user and makes every device
//! authenticate again (mender-server@v4.0.0:backend/services/deviceauth/jwt/jwt.go verifies
//! tokens with the key it loaded), so the tool records their sha256 in each bundle and compares.
//! Only digests leave this module: never a key's bytes.

use serde::{Deserialize, Serialize};

use crate::engine::container::ContainerInfo;

/// Which services sign with a key, the variable that moves it, and its default path
/// (integration@3.7.11:production/config/prod.yml.template mounts
/// `keys-generated/keys/{deviceauth,useradm}/private.key` at these paths; 4.0 keeps the defaults,
/// mender-server@v4.0.0:backend/services/deviceauth/config/config.go:56).
const SIGNERS: [(&str, &str, &str); 2] = [
    ("deviceauth", "DEVICEAUTH_SERVER_PRIV_KEY_PATH", "/etc/deviceauth/rsa/private.pem"),
    ("useradm", "USERADM_SERVER_PRIV_KEY_PATH", "/etc/useradm/rsa/private.pem"),
];

/// One service's signing key as the stack mounts it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyDigest {
    /// `deviceauth` or `useradm` (the Mender service, whatever the compose service is called).
    pub signer: String,
    /// The compose service (`mender-device-auth`).
    pub service: String,
    /// The key's path inside the container (`/etc/deviceauth/rsa/private.pem`).
    pub path: String,
    /// The hex sha256 of the file; `None` when it could not be read (`problem` says why).
    pub sha256: Option<String>,
    /// Why there is no digest (nothing mounted there, the file unreadable for this user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Where each signer's key is on the host: (signer, service, path in the container, host path).
/// The host path is `None` when nothing is bind-mounted there (the image's own file, a volume).
pub fn key_files(containers: &[ContainerInfo]) -> Vec<(String, String, String, Option<std::path::PathBuf>)> {
    let mut out = Vec::new();
    for (signer, var, default) in SIGNERS {
        // The image's repository names the service (mendersoftware/deviceauth,
        // …/deviceauth-enterprise; 4.x's mender-server images are named the same way).
        let Some(c) = containers.iter().find(|c| {
            let image = crate::catalog::ImageRef::parse(&c.image, None);
            image.repository.rsplit('/').next().is_some_and(|name| name.starts_with(signer))
        }) else {
            continue;
        };
        let path = c.env_var(var).filter(|p| !p.is_empty()).unwrap_or(default).to_string();
        // The file itself, or a directory mounted above it (the longest such mount wins).
        let host = c
            .mounts
            .iter()
            .filter(|m| m.kind == "bind")
            .filter_map(|m| {
                let rest = std::path::Path::new(&path).strip_prefix(&m.destination).ok()?;
                let source = std::path::Path::new(m.source.as_deref()?);
                // `join("")` would add a slash: the file itself is mounted.
                let host = if rest.as_os_str().is_empty() { source.to_path_buf() } else { source.join(rest) };
                Some((m.destination.len(), host))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p);
        out.push((signer.to_string(), c.service.clone(), path, host));
    }
    out
}

/// The digests of the signing keys of `containers`, read from the host (the tool runs beside
/// the daemon, as it does to back up the compose files).
pub fn digests(containers: &[ContainerInfo]) -> Vec<KeyDigest> {
    key_files(containers)
        .into_iter()
        .map(|(signer, service, path, host)| {
            let (sha256, problem) = match host {
                None => (None, Some("no file of the host is mounted there".to_string())),
                Some(h) => match std::fs::read(&h) {
                    Ok(bytes) => (Some(crate::catalog::sha256_hex(&bytes)), None),
                    Err(e) => (None, Some(format!("cannot read {}: {e}", h.display()))),
                },
            };
            KeyDigest { signer, service, path, sha256, problem }
        })
        .collect()
}

/// One line per signer whose key differs from the one `recorded` (`what` names the record: "the
/// newest backup (NAME)"). A key that was not recorded, or that cannot be read now, is not a
/// difference: nothing says it changed.
pub fn changed(recorded: &[KeyDigest], live: &[KeyDigest], what: &str) -> Vec<String> {
    recorded
        .iter()
        .filter_map(|r| {
            let before = r.sha256.as_ref()?;
            let now = live.iter().find(|l| l.signer == r.signer)?;
            let after = now.sha256.as_ref()?;
            (after != before).then(|| {
                format!(
                    "the {} signing key ({} in {}) is not the one {what} recorded: every {} would have to \
                     authenticate again",
                    r.signer,
                    now.path,
                    now.service,
                    if r.signer == "deviceauth" { "device" } else { "user" }
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::container::Mount;

    fn container(service: &str, image: &str, env: &[&str], mounts: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            service: service.into(),
            image: image.into(),
            env: env.iter().map(ToString::to_string).collect(),
            mounts: mounts
                .iter()
                .map(|(s, d)| Mount {
                    kind: "bind".into(),
                    name: None,
                    source: Some(s.to_string()),
                    destination: d.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_keys_are_found_where_each_release_mounts_them() {
        let c = [
            // 3.7: the file at the default path.
            container(
                "mender-device-auth",
                "mendersoftware/deviceauth:mender-3.7.11",
                &["DEVICEAUTH_SERVER_PRIV_KEY_PATH=/etc/deviceauth/rsa/private.pem"],
                &[("/srv/keys/deviceauth/private.key", "/etc/deviceauth/rsa/private.pem")],
            ),
            // 4.0's eval files: another path, named by the variable, in a mounted directory.
            container(
                "useradm",
                "mender-server/useradm-enterprise:v4.1.3",
                &["USERADM_SERVER_PRIV_KEY_PATH=/etc/useradm/config/mender.pem"],
                &[("/srv/compose/config", "/etc/useradm/config"), ("/srv/compose", "/etc/useradm")],
            ),
            container("mender-gui", "mendersoftware/gui:mender-3.7.11", &[], &[]),
        ];
        let files = key_files(&c);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0],
            (
                "deviceauth".into(),
                "mender-device-auth".into(),
                "/etc/deviceauth/rsa/private.pem".into(),
                Some("/srv/keys/deviceauth/private.key".into())
            )
        );
        assert_eq!(files[1].3, Some("/srv/compose/config/mender.pem".into()), "the deepest mount holds it");
        // A mirror with a port and no tag is still deviceauth's image.
        let mirrored = [container("da", "mirror.example:5000/mendersoftware/deviceauth", &[], &[])];
        assert_eq!(key_files(&mirrored)[0].0, "deviceauth");
        // The image's own file: nothing of the host to read.
        let bare = [container("mender-useradm", "mendersoftware/useradm:mender-3.7.11", &[], &[])];
        assert_eq!(key_files(&bare)[0].2, "/etc/useradm/rsa/private.pem");
        assert_eq!(digests(&bare)[0].problem.as_deref(), Some("no file of the host is mounted there"));
    }

    #[test]
    fn a_replaced_key_is_named_and_an_unknown_one_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("private.key");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nold\n").unwrap();
        let c = [container(
            "mender-device-auth",
            "mendersoftware/deviceauth:mender-3.7.11",
            &[],
            &[(key.to_str().unwrap(), "/etc/deviceauth/rsa/private.pem")],
        )];
        let recorded = digests(&c);
        assert!(recorded[0].sha256.is_some(), "{recorded:?}");
        assert!(changed(&recorded, &digests(&c), "the backup").is_empty());
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnew\n").unwrap();
        let lines = changed(&recorded, &digests(&c), "the newest backup (b1)");
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("the deviceauth signing key (/etc/deviceauth/rsa/private.pem in mender-device-auth)")
        );
        assert!(
            lines[0].contains("the newest backup (b1) recorded") && lines[0].contains("every device"),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains("new\n"), "never the key's bytes");
        // Unreadable now, or not recorded: nothing says it changed.
        std::fs::remove_file(&key).unwrap();
        assert!(changed(&recorded, &digests(&c), "x").is_empty());
        assert!(changed(&[], &recorded, "x").is_empty());
    }
}
