//! Where the actor finds the learner and the recorder, and whether the
//! learner has finished the run: addresses from flags, else from the run's
//! `endpoints.json` (waited for, since under SLURM the learner may start after
//! the actors), else the run's ipc defaults for the recorder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use wire::rundir::{EndReason, Endpoints, RunDir};

use crate::Args;

/// How long one params request or trajectory send waits before it logs and retries.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The learner's and recorder's addresses: flags first, then endpoints.json
/// (waited for, since under SLURM the learner may start after the actors),
/// then the run's ipc defaults for the recorder.
pub struct Addresses {
    pub trajectories: String,
    pub params: String,
    pub episodes: String,
    /// The learner's central-inference socket, when it serves inference.
    pub inference: Option<String>,
}

pub fn resolve_addresses(args: &Args, run_dir: &RunDir, stop: &AtomicBool) -> Result<Addresses> {
    let mut waited = Instant::now();
    let mut first = true;
    loop {
        let file = Endpoints::read(&run_dir.endpoints())
            .with_context(|| format!("reading {}", run_dir.endpoints().display()))?;
        let trajectories = args.trajectories_address.clone().or(file.trajectories);
        let params = args.params_address.clone().or(file.params);
        if let (Some(trajectories), Some(params)) = (trajectories, params) {
            let episodes = args
                .episodes_address
                .clone()
                .or(file.episodes)
                .unwrap_or_else(|| run_dir.ipc("episodes"));
            let inference = args.inference_address.clone().or(file.inference);
            return Ok(Addresses { trajectories, params, episodes, inference });
        }
        if stop.load(Ordering::Relaxed) {
            bail!("stopped before the learner's endpoints appeared");
        }
        if first || waited.elapsed() > PATIENCE {
            tracing::info!(
                "waiting for the learner to write its addresses to {} (or pass --trajectories-address and --params-address)",
                run_dir.endpoints().display()
            );
            waited = Instant::now();
            first = false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// True when the learner has ended the run for good (not merely been stopped).
pub fn learner_finished(run_dir: &RunDir) -> bool {
    run_dir.end_reason() == Ok(Some(EndReason::TotalFramesReached))
}

/// How long a lost connection waits for the learner to say that it finished
/// ([`learner_finishing`]): the learner stops serving, writes its final
/// checkpoint, and only then records the end of the run.
pub const FINISHING_GRACE: Duration = Duration::from_secs(5);

/// After the learner's socket failed: true when the learner finishes the run
/// within `grace`, so the failure was the run's normal end and not a fault to
/// start over from. A learner that died costs its actors `grace` more before
/// they start over, a small part of what a restart takes anyway.
pub fn learner_finishing(run_dir: &RunDir, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        if learner_finished(run_dir) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
