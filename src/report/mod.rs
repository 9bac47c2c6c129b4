//! What the operator sees: rendering for people and for `--json`, and the exit codes.

pub mod exit;
pub mod plan;
pub mod progress;
pub mod status;
mod table;

pub use exit::{Exit, Failure};
