//! mender-compose-upgrade: safe, hop-by-hop upgrades of a self-hosted Mender Server running under
//! Docker Compose. The modules follow the pipeline: discover (`snapshot`) → `plan` → backup →
//! staging → upgrade → `report`; every side effect goes through `engine`.

pub mod catalog;
pub mod plan;
