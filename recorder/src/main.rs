//! The recorder: stores the episodes actors stream (frames, actions, rewards,
//! baseline, policy logits and the attention maps of every head) in HDF5, and
//! works on those files offline.
//!
//! Subcommands: `serve` (the default: bind the episode socket and write),
//! `inspect` (a table of the episodes in a run or file), `render` (attention
//! videos, what/where pictures, a contact sheet), `plot` (learning curves from
//! `logs.csv`), `analyze` (how much attention falls on the recorded objects),
//! `bench` (throughput of the writer). The file layout is
//! documented for users in docs/hdf5-schema.md and declared in [`schema`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod analyze;
mod bench;
mod h5util;
mod image;
mod plot;
mod reader;
mod render;
mod schema;
mod serve;
mod tensorboard;
mod writer;

#[derive(Parser, Debug)]
#[command(
    name = "recorder",
    version,
    args_conflicts_with_subcommands = true,
    about = "Records episodes with attention to HDF5; renders and plots them"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bind the episode socket and append episodes to HDF5 (the default).
    Serve(serve::ServeArgs),
    /// Print a table of the episodes in run directories or segment files.
    Inspect {
        /// Run directories (their closed `episodes-*.h5`) or segment files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Render one episode: attention videos per head, a grid of all heads,
    /// what/where pictures and a PNG contact sheet.
    Render(render::RenderArgs),
    /// Plot learning curves from the logs.csv of one or more run directories.
    Plot(plot::PlotArgs),
    /// Measure what the attention looks at: per head and object kind, the
    /// attention share near the objects and the peak's distance to them, with
    /// uniform and time-shuffled baselines, over training (table, CSV, PNG).
    Analyze(analyze::AnalyzeArgs),
    /// Measure the writer's throughput on episodes of Atari frames.
    Bench(bench::BenchArgs),
    /// Print the file layout (datasets and attributes) as Markdown tables.
    Schema,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    hdf5::silence_errors(true);
    let cli = Cli::parse();
    match cli.command {
        None => serve::serve(cli.serve),
        Some(Command::Serve(args)) => serve::serve(args),
        Some(Command::Inspect { paths }) => {
            print!("{}", reader::table(&reader::list_episodes(&paths)?));
            Ok(())
        }
        Some(Command::Render(args)) => render::render(args),
        Some(Command::Plot(args)) => plot::plot(args),
        Some(Command::Analyze(args)) => analyze::analyze(args),
        Some(Command::Bench(args)) => bench::bench(args),
        Some(Command::Schema) => {
            print!("{}", schema::markdown());
            Ok(())
        }
    }
}
