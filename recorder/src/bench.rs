//! `recorder bench` (in progress).
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub fn bench(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
