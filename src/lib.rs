//! mender-compose-upgrade: safe, hop-by-hop upgrades of a self-hosted Mender Server running under
//! Docker Compose. The modules follow the pipeline: discover (`snapshot`) → `plan` → backup →
//! staging → upgrade → `report`; every side effect goes through `engine`.

#![warn(missing_docs)]

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod interrupt;
pub mod labels;
pub mod plan;
pub mod progress;
pub mod report;
pub mod snapshot;
pub mod staging;
pub mod state;
pub mod upgrade;
pub mod util;
