//! The only place that touches the world: the Docker daemon (bollard), the compose and git CLIs, sidecar
//! containers of the helper image, and storage APIs. Everything else is pure.

pub mod azure;
pub mod compose;
pub mod container;
pub mod docker;
pub mod git;
pub mod helper;
pub mod host;
pub mod inspect;
pub mod notify;
pub mod s3;
pub mod sidecar;
pub mod store;
