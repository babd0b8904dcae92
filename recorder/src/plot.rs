//! `recorder plot` (in progress).
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct PlotArgs {}

pub fn plot(_args: PlotArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
