//! Pure edits of compose files that keep everything else byte-for-byte: comments, quoting,
//! anchors and formatting survive, because only the byte range of each `image:` scalar changes.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Why a compose file could not be read or edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ComposeFileError {
    /// The text is not YAML, or not a mapping with a `services:` mapping of the expected shape; the
    /// parser's message, with its position.
    #[error("not a valid compose file: {0}")]
    Parse(String),
    /// The `image:` value to change is interpolated (`${REGISTRY}/mendersoftware/…`), so the reference
    /// lives in the `.env` file or the environment, not in this file.
    #[error(
        "service {service} takes its image from a variable ({value}); change the variable in the .env file instead"
    )]
    Interpolated {
        /// The compose service.
        service: String,
        /// Its `image:` value as written (`${REGISTRY}/mendersoftware/deployments:${TAG}`).
        value: String,
    },
    /// The service's key line could not be found in the text (an unusual way of writing it): the
    /// file is left as it is rather than edited by a guess.
    #[error("the key of service {0} is not written in a form this editor knows (`{0}:`, quoted or not)")]
    KeyNotFound(String),
    /// The file does not write the Docker name of this volume (`name:`).
    #[error("the file does not name the Docker volume of {0} (`volumes: {0}: external: name: …`)")]
    VolumeNameNotFound(String),
}

#[derive(Deserialize)]
struct FileShape {
    #[serde(default)]
    services: Option<BTreeMap<String, Option<ServiceShape>>>,
}

#[derive(Deserialize)]
struct ServiceShape {
    #[serde(default)]
    image: Option<Spanned<String>>,
}

/// Where a service's `image:` value sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSite {
    /// Compose service name (the key under `services:`, e.g. `mender-deployments`).
    pub service: String,
    /// The image reference as YAML reads it, quotes removed (`mendersoftware/deployments:mender-3.4.0`).
    pub value: String,
    /// Offset in bytes of the scalar's first byte, its opening quote included when quoted; with
    /// `len`, the range an edit replaces.
    pub start: usize,
    /// Length of that range in bytes.
    pub len: usize,
    /// The value is written elsewhere (an anchor) and only referenced here.
    pub via_anchor: bool,
}

/// Every service's `image:` value with its byte range, in service-name order; services without
/// an `image:` (build-only, or an override such as `prod.yml` adding only env) are left out.
///
/// # Errors
/// [`ComposeFileError::Parse`] when the text is not a compose file.
pub fn image_sites(text: &str) -> Result<Vec<ImageSite>, ComposeFileError> {
    let shape: FileShape = serde_saphyr::from_str(text).map_err(|e| ComposeFileError::Parse(e.to_string()))?;
    let mut sites = Vec::new();
    for (service, svc) in shape.services.unwrap_or_default() {
        let Some(image) = svc.and_then(|s| s.image) else {
            continue;
        };
        let span = image.defined.span();
        let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) else {
            continue;
        };
        let via_anchor = image.referenced.span().byte_offset() != Some(start);
        sites.push(ImageSite { service, value: image.value, start: start as usize, len: len as usize, via_anchor });
    }
    Ok(sites)
}

/// Rewrites `image:` values: `change(service, current)` returns the new reference or `None` to
/// keep it. A value shared through an anchor is edited once, where it is defined.
///
/// # Errors
/// [`ComposeFileError::Parse`] when the text is not a compose file;
/// [`ComposeFileError::Interpolated`] when a value to change is built from a variable.
pub fn replace_images(text: &str, change: impl Fn(&str, &str) -> Option<String>) -> Result<String, ComposeFileError> {
    let mut edits: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for site in image_sites(text)? {
        let Some(new) = change(&site.service, &site.value) else {
            continue;
        };
        if new == site.value {
            continue;
        }
        if site.value.contains("${") {
            return Err(ComposeFileError::Interpolated { service: site.service, value: site.value });
        }
        let original = &text[site.start..site.start + site.len];
        let quoted = match original.chars().next() {
            Some('\'') => format!("'{}'", new.replace('\'', "''")),
            Some('"') => format!("\"{}\"", new.replace('\\', "\\\\").replace('"', "\\\"")),
            _ => new,
        };
        edits.insert(site.start, (site.len, quoted));
    }
    let mut out = text.to_string();
    for (start, (len, new)) in edits.into_iter().rev() {
        out.replace_range(start..start + len, &new);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct VolumesShape {
    #[serde(default)]
    volumes: Option<BTreeMap<String, Option<VolumeShape>>>,
}

#[derive(Deserialize)]
struct VolumeShape {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    external: Option<External>,
}

/// `external: true` (the name is the key, or `name:` beside it) or `external: {name: …}`. Read by
/// hand: an untagged enum would buffer the value and lose the name's position.
enum External {
    Named { name: Option<Spanned<String>> },
    Flag,
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<External, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a mapping with `name`")
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<External, E> {
                Ok(External::Flag)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<External, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        name = Some(map.next_value::<Spanned<String>>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(External::Named { name })
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a top-level volume's Docker name is written in a compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeNameSite {
    /// The volume's key under `volumes:` (`mender-db`).
    pub key: String,
    /// Its Docker name as written (`mender-db`).
    pub value: String,
    /// Offset in bytes of the scalar, its quote included.
    pub start: usize,
    /// Length of the scalar in bytes.
    pub len: usize,
}

/// The site of `volumes.KEY.name` or `volumes.KEY.external.name` (file format 2.x writes the
/// latter), when the file names the volume's Docker name.
///
/// # Errors
/// [`ComposeFileError::Parse`] when the text is not a compose file.
pub fn volume_name_site(text: &str, key: &str) -> Result<Option<VolumeNameSite>, ComposeFileError> {
    let shape: VolumesShape = serde_saphyr::from_str(text).map_err(|e| ComposeFileError::Parse(e.to_string()))?;
    let Some(Some(v)) = shape.volumes.unwrap_or_default().remove(key) else { return Ok(None) };
    let spanned = v.name.or(match v.external {
        Some(External::Named { name }) => name,
        _ => None,
    });
    Ok(spanned.and_then(|n| {
        let span = n.defined.span();
        Some(VolumeNameSite {
            key: key.to_string(),
            value: n.value,
            start: span.byte_offset()? as usize,
            len: span.byte_len()? as usize,
        })
    }))
}

/// Changes the Docker name of volume `key` where the file writes it, every other byte kept.
///
/// # Errors
/// [`ComposeFileError::Parse`]; [`ComposeFileError::VolumeNameNotFound`] when the file does not
/// write the volume's name; [`ComposeFileError::Interpolated`] when the name is a variable.
pub fn set_volume_name(text: &str, key: &str, name: &str) -> Result<String, ComposeFileError> {
    let site = volume_name_site(text, key)?.ok_or_else(|| ComposeFileError::VolumeNameNotFound(key.to_string()))?;
    if site.value.contains("${") {
        return Err(ComposeFileError::Interpolated { service: format!("volume {key}"), value: site.value });
    }
    let original = &text[site.start..site.start + site.len];
    let quoted = match original.chars().next() {
        Some('\'') => format!("'{name}'"),
        Some('"') => format!("\"{name}\""),
        _ => name.to_string(),
    };
    let mut out = text.to_string();
    out.replace_range(site.start..site.start + site.len, &quoted);
    Ok(out)
}

#[derive(Deserialize)]
struct ServicesOnly {
    #[serde(default)]
    services: Option<BTreeMap<String, Spanned<serde::de::IgnoredAny>>>,
}

/// The services a compose file names (in any form: a full definition or an override).
///
/// # Errors
/// [`ComposeFileError::Parse`] when the text is not a compose file.
pub fn services(text: &str) -> Result<Vec<String>, ComposeFileError> {
    let shape: ServicesOnly = serde_saphyr::from_str(text).map_err(|e| ComposeFileError::Parse(e.to_string()))?;
    Ok(shape.services.unwrap_or_default().into_keys().collect())
}

/// Removes a service's entry (its key line and every deeper-indented line after it) and
/// nothing else; comments at the key's level belong to their neighbours and stay. A file
/// without that service comes back unchanged.
///
/// # Errors
/// [`ComposeFileError::Parse`] when the text is not a compose file.
pub fn remove_service(text: &str, name: &str) -> Result<String, ComposeFileError> {
    let shape: ServicesOnly = serde_saphyr::from_str(text).map_err(|e| ComposeFileError::Parse(e.to_string()))?;
    let Some(value) = shape.services.unwrap_or_default().remove(name) else { return Ok(text.to_string()) };
    let value_start = value.defined.span().byte_offset().unwrap_or(0) as usize;
    // The key sits on the value's line (`name: {}`) or on a line above it (a block mapping),
    // written plain or quoted.
    let keys = [format!("{name}:"), format!("\"{name}\":"), format!("'{name}':")];
    let is_key = |line: &str| keys.iter().any(|k| line.trim_start().starts_with(k.as_str()));
    let mut start = text[..value_start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    while !is_key(&text[start..]) {
        if start == 0 {
            return Err(ComposeFileError::KeyNotFound(name.to_string()));
        }
        start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    let indent = |line: &str| line.len() - line.trim_start().len();
    let key_indent = indent(&text[start..]);
    let mut end = text[start..].find('\n').map_or(text.len(), |i| start + i + 1);
    let mut pos = end;
    for line in text[end..].split_inclusive('\n') {
        pos += line.len();
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= key_indent {
            break;
        }
        end = pos;
    }
    let mut out = text.to_string();
    out.replace_range(start..end, "");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Mender → production\nversion: '2.3'\nx-img: &dep 'mendersoftware/deployments:mender-3.4.0'\nservices:\n    # the API\n    mender-useradm:\n        image: \"mendersoftware/useradm:mender-3.4.0\"   # pinned\n    mender-deployments:\n        image: *dep\n    mender-gui:\n        image: mendersoftware/gui:mender-3.4.0\n    mender-nothing: {}\n";

    #[test]
    fn a_quoted_key_is_removed_and_an_unknown_form_refused() {
        let quoted = "services:\n  \"mender-reporting\":\n    mem_limit: 1g\n  mender-gui:\n    image: g\n";
        assert_eq!(remove_service(quoted, "mender-reporting").unwrap(), "services:\n  mender-gui:\n    image: g\n");
        let flow = "services: {mender-reporting: {mem_limit: 1g}, mender-gui: {image: g}}\n";
        assert!(matches!(remove_service(flow, "mender-reporting"), Err(ComposeFileError::KeyNotFound(_))));
    }

    #[test]
    fn a_volume_name_changes_in_place() {
        let prod = "services:\n    a: {}\nvolumes:\n    # mongo service database\n    mender-db:\n        external:\n            # use external volume created manually\n            name: mender-db\n    mender-artifacts:\n        external: true\n        name: \"arts\"\n";
        let out = set_volume_name(prod, "mender-db", "mender-db-6.0").unwrap();
        assert_eq!(out, prod.replace("name: mender-db\n", "name: mender-db-6.0\n"));
        assert_eq!(volume_name_site(&out, "mender-db").unwrap().unwrap().value, "mender-db-6.0");
        let arts = set_volume_name(prod, "mender-artifacts", "a2").unwrap();
        assert!(arts.ends_with("name: \"a2\"\n"), "{arts}");
        assert!(matches!(set_volume_name(prod, "nope", "x"), Err(ComposeFileError::VolumeNameNotFound(_))));
    }

    #[test]
    fn only_image_bytes_change() {
        let out = replace_images(FILE, |_, v| Some(v.replace("3.4.0", "3.6.5"))).unwrap();
        assert_eq!(out, FILE.replace("3.4.0", "3.6.5"));
        assert!(out.contains("\"mendersoftware/useradm:mender-3.6.5\"   # pinned"));
        assert!(out.contains("&dep 'mendersoftware/deployments:mender-3.6.5'"));
    }

    #[test]
    fn sites_report_anchors_and_services() {
        let sites = image_sites(FILE).unwrap();
        let dep = sites.iter().find(|s| s.service == "mender-deployments").unwrap();
        assert!(dep.via_anchor);
        assert_eq!(dep.value, "mendersoftware/deployments:mender-3.4.0");
        assert!(!sites.iter().find(|s| s.service == "mender-gui").unwrap().via_anchor);
        assert_eq!(sites.len(), 3);
    }

    #[test]
    fn removing_a_service_keeps_the_rest_byte_for_byte() {
        let text = "services:\n    a:\n        image: x:1\n    # logging for reporting\n    mender-reporting:\n        logging:\n            options:\n                max-file: \"10\"\n    b: {}\nvolumes:\n    v: {}\n";
        let out = remove_service(text, "mender-reporting").unwrap();
        assert_eq!(
            out,
            "services:\n    a:\n        image: x:1\n    # logging for reporting\n    b: {}\nvolumes:\n    v: {}\n"
        );
        assert_eq!(services(&out).unwrap(), ["a", "b"]);
        assert_eq!(
            remove_service(&out, "b").unwrap(),
            "services:\n    a:\n        image: x:1\n    # logging for reporting\nvolumes:\n    v: {}\n"
        );
        assert_eq!(remove_service(text, "zz").unwrap(), text);
    }

    #[test]
    fn selective_change_and_variables_refused() {
        let out = replace_images(FILE, |s, v| (s == "mender-gui").then(|| format!("testbed.local/{v}"))).unwrap();
        assert!(out.contains("image: testbed.local/mendersoftware/gui:mender-3.4.0\n"));
        assert!(out.contains("useradm:mender-3.4.0\""));
        let var = "services:\n  a:\n    image: ${REG}/x:1\n";
        assert!(matches!(replace_images(var, |_, _| Some("y:2".into())), Err(ComposeFileError::Interpolated { .. })));
        assert!(matches!(replace_images("services: [", |_, _| None), Err(ComposeFileError::Parse(_))));
    }
}
