//! A plan saved for review and applied as reviewed (Terraform's `plan -out` / `apply PLANFILE`):
//! `plan --to V --out FILE` writes the plan together with what it was computed from; `upgrade
//! --plan FILE` carries out exactly that plan, and refuses when the stack or the catalog is no
//! longer what the plan was computed from. Pure: the caller observes, this compares.

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Plan;
use crate::catalog::Catalog;

/// The format of a saved plan file; a file of another format is refused, not guessed at.
pub const FORMAT: u32 = 1;

/// A plan file: the plan and what it was computed from. JSON, so that it can be read and diffed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedPlan {
    /// [`FORMAT`].
    pub format: u32,
    /// The tool that saved it (`CARGO_PKG_VERSION`).
    pub tool_version: String,
    /// When it was saved (RFC 3339, UTC).
    pub saved_at: String,
    /// The catalog the plan was computed with: [`catalog_digest`].
    pub catalog_digest: String,
    /// The stack as it was when the plan was computed.
    pub stack: StackPrint,
    /// The plan as `plan` printed it.
    pub plan: Plan,
}

/// What a plan depends on in a running stack: its project, release, MongoDB and every container's
/// image and compose configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackPrint {
    /// The compose project (`menderproduction`).
    pub project: String,
    /// The release its images say it runs.
    pub release: Version,
    /// The MongoDB server's version (`5.0.31`), when it answered.
    pub mongo_version: Option<String>,
    /// The data's featureCompatibilityVersion (`5.0`), when it answered.
    pub fcv: Option<String>,
    /// Every container of the project by compose service name.
    pub services: BTreeMap<String, ServicePrint>,
}

/// One service's container as compose made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServicePrint {
    /// The image reference it was created from (`Config.Image`).
    pub image: String,
    /// The local image id it runs (`sha256:…`): a tag moved to another image shows here.
    pub image_id: String,
    /// Compose's hash of the service's configuration (`com.docker.compose.config-hash`), when
    /// compose created the container.
    pub config_hash: Option<String>,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedPlanError {
    /// The file is not a plan file this tool can read.
    #[error("{path} is not a plan file of this tool: {why}")]
    Unreadable {
        /// The file as given.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// The stack, the catalog or the plan changed since the file was saved.
    #[error("the stack is no longer what the plan in {path} was computed from ({}): {}", .saved_at, .differences.join("; "))]
    Stale {
        /// The file as given.
        path: String,
        /// When it was saved.
        saved_at: String,
        /// What differs, one phrase each (`mender-gui: image a → b`).
        differences: Vec<String>,
    },
}

impl SavedPlan {
    /// Parses a plan file's text.
    ///
    /// # Errors
    /// [`SavedPlanError::Unreadable`] for text that is not a plan file of [`FORMAT`].
    pub fn parse(path: &str, text: &str) -> Result<SavedPlan, SavedPlanError> {
        let unreadable = |why: String| SavedPlanError::Unreadable { path: path.to_string(), why };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| unreadable(format!("not JSON ({e})")))?;
        match v.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => return Err(unreadable(format!("format {f}, this tool reads format {FORMAT}"))),
            None => return Err(unreadable("no \"format\" field (save one with `plan --to V --out FILE`)".into())),
        }
        serde_json::from_value(v).map_err(|e| unreadable(e.to_string()))
    }

    /// Checks that `live` and `plan` (computed now, from the live stack and `catalog_digest`) are
    /// what the file was saved from.
    ///
    /// # Errors
    /// [`SavedPlanError::Stale`] naming every difference.
    pub fn check(
        &self,
        path: &str,
        live: &StackPrint,
        catalog_digest: &str,
        plan: &Plan,
    ) -> Result<(), SavedPlanError> {
        let mut differences = self.stack.differences(live);
        if self.catalog_digest != catalog_digest {
            differences.push(format!(
                "the release catalog differs (saved by {} with catalog {}, now {})",
                self.tool_version,
                short(&self.catalog_digest),
                short(catalog_digest)
            ));
        }
        // Equal inputs give an equal plan; this guards the planner itself changing under a file.
        if differences.is_empty() && self.plan != *plan {
            differences.push("the plan computed now differs from the saved one".into());
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(SavedPlanError::Stale { path: path.to_string(), saved_at: self.saved_at.clone(), differences })
        }
    }
}

impl StackPrint {
    /// What differs from `self` (saved) to `now`, one phrase each, services in name order.
    pub fn differences(&self, now: &StackPrint) -> Vec<String> {
        let mut d = Vec::new();
        if self.project != now.project {
            d.push(format!("project {} → {}", self.project, now.project));
        }
        if self.release != now.release {
            d.push(format!("release {} → {}", self.release, now.release));
        }
        if self.mongo_version != now.mongo_version {
            d.push(format!("MongoDB server {} → {}", shown(&self.mongo_version), shown(&now.mongo_version)));
        }
        if self.fcv != now.fcv {
            d.push(format!("featureCompatibilityVersion {} → {}", shown(&self.fcv), shown(&now.fcv)));
        }
        for (name, was) in &self.services {
            match now.services.get(name) {
                None => d.push(format!("{name}: its container is gone")),
                Some(is) if is.image != was.image => d.push(format!("{name}: image {} → {}", was.image, is.image)),
                Some(is) if is.image_id != was.image_id => d.push(format!(
                    "{name}: image {} now is another image ({} → {})",
                    is.image,
                    short(&was.image_id),
                    short(&is.image_id)
                )),
                Some(is) if is.config_hash != was.config_hash => {
                    d.push(format!("{name}: its compose configuration changed (config-hash)"))
                }
                Some(_) => {}
            }
        }
        for name in now.services.keys().filter(|n| !self.services.contains_key(*n)) {
            d.push(format!("{name}: a service that was not there"));
        }
        d
    }
}

/// A digest of everything in the catalog a plan is computed from (sha256, lowercase hex).
pub fn catalog_digest(c: &Catalog) -> String {
    let facts = serde_json::json!({
        "rule": c.rule,
        "lines": c.lines,
        "releases": c.releases,
        "mongo_majors": c.mongo_majors,
        "upstream": c.upstream,
    });
    hex::encode(Sha256::digest(facts.to_string().as_bytes()))
}

fn shown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unknown")
}

/// The first 12 hex digits of a digest (`sha256:` dropped), as Docker shows image ids.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print() -> StackPrint {
        let svc = |image: &str, id: &str| ServicePrint {
            image: image.into(),
            image_id: id.into(),
            config_hash: Some(format!("hash-{image}")),
        };
        StackPrint {
            project: "menderproduction".into(),
            release: Version::new(3, 4, 0),
            mongo_version: Some("4.4.29".into()),
            fcv: Some("4.4".into()),
            services: BTreeMap::from([
                ("mender-gui".into(), svc("mendersoftware/gui:mender-3.4.0", "sha256:aaaaaaaaaaaaaaaa")),
                ("mender-useradm".into(), svc("mendersoftware/useradm:mender-3.4.0", "sha256:bbbbbbbbbbbbbbbb")),
            ]),
        }
    }

    fn plan() -> Plan {
        Plan { from: Version::new(3, 4, 0), to: Version::new(3, 6, 5), hops: vec![], warnings: vec![], blocked: None }
    }

    fn saved() -> SavedPlan {
        SavedPlan {
            format: FORMAT,
            tool_version: "0.1.0".into(),
            saved_at: "2026-12-01T18:00:00Z".into(),
            catalog_digest: "c1".into(),
            stack: print(),
            plan: plan(),
        }
    }

    #[test]
    fn the_same_stack_applies_and_round_trips_through_its_text() {
        let s = saved();
        let text = serde_json::to_string_pretty(&s).unwrap();
        let back = SavedPlan::parse("p.json", &text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.check("p.json", &print(), "c1", &plan()), Ok(()));
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let mut now = print();
        let gui = now.services.get_mut("mender-gui").unwrap();
        gui.image = "mendersoftware/gui:mender-3.5.1".into();
        now.services.get_mut("mender-useradm").unwrap().config_hash = Some("other".into());
        now.services.insert(
            "exporter".into(),
            ServicePrint { image: "prom/node-exporter".into(), image_id: "sha256:cc".into(), config_hash: None },
        );
        now.fcv = Some("5.0".into());
        let Err(SavedPlanError::Stale { differences, .. }) = saved().check("p.json", &now, "c2", &plan()) else {
            panic!("a changed stack must be refused");
        };
        assert_eq!(
            differences,
            [
                "featureCompatibilityVersion 4.4 → 5.0",
                "mender-gui: image mendersoftware/gui:mender-3.4.0 → mendersoftware/gui:mender-3.5.1",
                "mender-useradm: its compose configuration changed (config-hash)",
                "exporter: a service that was not there",
                "the release catalog differs (saved by 0.1.0 with catalog c1, now c2)",
            ]
        );
    }

    #[test]
    fn a_tag_moved_to_another_image_and_a_removed_container_are_named() {
        let mut now = print();
        now.services.get_mut("mender-gui").unwrap().image_id = "sha256:dddddddddddddddd".into();
        now.services.remove("mender-useradm");
        assert_eq!(
            print().differences(&now),
            [
                "mender-gui: image mendersoftware/gui:mender-3.4.0 now is another image (aaaaaaaaaaaa → dddddddddddd)",
                "mender-useradm: its container is gone",
            ]
        );
    }

    #[test]
    fn a_plan_computed_differently_from_the_same_inputs_is_refused() {
        let mut other = plan();
        other.to = Version::new(3, 7, 11);
        assert!(matches!(saved().check("p.json", &print(), "c1", &other), Err(SavedPlanError::Stale { .. })));
    }

    #[test]
    fn files_that_are_no_plan_are_refused_with_the_reason() {
        for (text, why) in [
            ("not json", "not JSON"),
            ("{\"plan\": {}}", "no \"format\" field"),
            ("{\"format\": 9}", "format 9, this tool reads format 1"),
            ("{\"format\": 1}", "missing field"),
        ] {
            let e = SavedPlan::parse("p.json", text).unwrap_err().to_string();
            assert!(e.starts_with("p.json is not a plan file of this tool: ") && e.contains(why), "{e}");
        }
    }
}
