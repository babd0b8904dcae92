//! `recorder render` (in progress).
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {}

pub fn render(_args: RenderArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
