//! The actor: groups of E environments in one process ([`acting`]), their
//! steps answered with actions by its own batched policy or, under central
//! inference, by the learner's ([`inference`]), in one loop ([`train`]);
//! unrolls of T+1 steps to the learner and chosen episodes with their
//! attention maps to the recorder (docs/architecture.md, Processes, One
//! batched policy, Step alignment).
//! With `--eval` it plays N episodes with fixed weights instead and reports
//! their returns.

mod acting;
mod addresses;
mod evaluation;
mod flags;
mod inference;
mod recording;
mod train;
mod weights;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

pub use flags::Args;

fn main() {
    // The run's files and sockets are this user's alone, whatever the umask.
    wire::private::restrict_umask();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        // Colours only on a terminal: a log file read later holds plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("actor {}: error: {e:#}", args.actor_id);
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    // Before anything starts libtorch's thread pool.
    tch::set_num_threads(args.threads.max(1));
    anyhow::ensure!(args.num_envs > 0, "--num-envs must be at least 1");
    anyhow::ensure!(args.run.unroll_length > 0, "--unroll-length must be at least 1");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    let run_dir = args.run.run_dir().map_err(anyhow::Error::msg)?;
    run_dir.create().with_context(|| format!("creating run dir {}", run_dir.root().display()))?;
    if args.eval {
        evaluation::evaluate(args, &run_dir, &stop)
    } else {
        train::train(args, &run_dir, &stop)
    }
}
