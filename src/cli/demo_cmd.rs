//! `demo up|down`: the test-bed stack.

use super::{DemoCommand, Global};
use crate::demo::{self, Demo};
use crate::exit::Exit;

/// `demo up|down`: the test-bed stack, with the test bed's defaults for `-p` and
/// `--image-registry`.
///
/// # Errors
/// A [`Failure`](crate::exit::Failure) with its exit code for what the operator can act on;
/// anything else is unexpected (exit 1).
pub async fn demo(g: &Global, c: DemoCommand) -> anyhow::Result<Exit> {
    let catalog = g.load_catalog()?;
    let d = Demo::new(g.project.as_deref(), g.registry(), g.state_dir(), &catalog);
    match c {
        DemoCommand::Up(a) => demo::up(&d, *a).await?,
        DemoCommand::Down(a) => demo::down(&d, a).await?,
    }
    Ok(Exit::Ok)
}
