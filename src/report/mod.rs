//! What the operator sees: rendering for people and for `--json`.

pub mod backups;
pub mod outcome;
pub mod plan;
pub mod status;
pub(crate) mod table;
