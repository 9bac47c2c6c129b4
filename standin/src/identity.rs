//! Which Mender service and release a stand-in image plays, baked into the image at build time.

use anyhow::{Context, Result, bail};
use mender_compose_upgrade::catalog::{Catalog, LoadedCatalog, Role, ServiceFacts};
use semver::Version;
use serde::{Deserialize, Serialize};

pub const IDENTITY_PATH: &str = "/etc/mender-standin.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The compose service name in the release's catalog entry (e.g. `mender-deployments`).
    pub service: String,
    pub release: Version,
    /// The `-broken` variant: migrations run, but the server never becomes healthy. For the
    /// gateway, the `-broken-gateway` variant: healthy, but it routes no management API request.
    #[serde(default)]
    pub broken: bool,
}

/// An identity resolved against the catalog.
pub struct Resolved {
    pub id: Identity,
    pub facts: ServiceFacts,
    pub catalog: Catalog,
}

impl Resolved {
    pub fn load() -> Result<Resolved> {
        let path = std::env::var("STANDIN_IDENTITY").unwrap_or_else(|_| IDENTITY_PATH.to_string());
        let text = std::fs::read_to_string(&path).with_context(|| format!("stand-in identity {path}"))?;
        let id: Identity = serde_json::from_str(&text).with_context(|| format!("stand-in identity {path}"))?;
        let catalog = LoadedCatalog::embedded()?.catalog;
        let facts = catalog
            .release(&id.release)
            .and_then(|r| r.services.get(&id.service))
            .cloned()
            .with_context(|| format!("the catalog has no service {} in release {}", id.service, id.release))?;
        Ok(Resolved { id, facts, catalog })
    }

    pub fn role(&self) -> Role {
        self.facts.role
    }

    /// The short kind name: `deployments`, `deviceauth`, `workflows`, …
    pub fn kind(&self) -> String {
        let image = mender_compose_upgrade::catalog::ImageRef::parse(&self.facts.image, None);
        image.short_name().to_string()
    }

    pub fn db(&self) -> Result<&str> {
        match &self.facts.db {
            Some(db) => Ok(db),
            None => bail!("{} has no database", self.id.service),
        }
    }
}

/// The port the GUI serves on: 80 (nginx, with the error responder on 8080) up to 3.x; 8090 only,
/// rootless, from 4.0 (mender-server@v4.0.0:frontend/Dockerfile and frontend/httpd.conf;
/// `shared/reference/migrate-3.7-to-4.x.md` §1.4.10).
pub fn gui_port(release: &Version) -> u16 {
    if release.major >= 4 { 8090 } else { 80 }
}
