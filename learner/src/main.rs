//! The learner's command line: training (the default), `bench` and
//! `end-reason`. Everything else is the library (`lib.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use learner::flags::{self, Cli, Command};
use learner::{bench, train};
use wire::rundir::{EndReason, RunDir};

/// `learner end-reason`: one word for launchers (the SLURM scripts requeue a
/// job unless its run reached its total frames).
fn print_end_reason(args: &flags::EndReasonArgs) -> Result<()> {
    let run_dir = RunDir::new(&args.runs_root, &args.xpid).map_err(anyhow::Error::msg)?;
    let reason = run_dir.end_reason().map_err(anyhow::Error::msg)?;
    println!("{}", reason.map_or("none", EndReason::as_word));
    Ok(())
}

fn main() {
    // The run's files and sockets are this user's alone, whatever the umask.
    wire::private::restrict_umask();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file read later holds plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Bench(args)) => {
            if args.train.threads > 0 {
                tch::set_num_threads(args.train.threads);
            }
            bench::run(args)
        }
        Some(Command::EndReason(args)) => print_end_reason(args),
        None => {
            // Before anything starts torch's thread pools.
            if cli.train.threads > 0 {
                tch::set_num_threads(cli.train.threads);
            }
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let handler = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    eprintln!("second interrupt: exiting without a checkpoint");
                    std::process::exit(130);
                }
                eprintln!("interrupt: finishing the current update and writing a checkpoint");
            });
            if let Err(e) = handler {
                tracing::warn!("cannot install the Ctrl-C handler: {e}");
            }
            train(&cli.train, &stop).map(|_| ())
        }
    };
    if let Err(e) = result {
        eprintln!("learner: error: {e:#}");
        std::process::exit(1);
    }
}
