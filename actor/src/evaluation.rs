//! Evaluation (`actor --eval`): N episodes with fixed weights, every one
//! recorded, their returns written to the run directory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use agent::model::Model;
use agent::policy::{BatchedPolicy, Request, Sampling};
use env::derive_seed;
use wire::auth::Credentials;
use wire::checkpoint;
use wire::rundir::{Endpoints, RunDir};
use wire::transport::{ParamsClient, Push};

use crate::acting::{Group, Stepper};
use crate::addresses::resolve_addresses;
use crate::recording::EpisodeSink;
use crate::train::{acting_model, model_config};
use crate::weights::{self, Fetched};
use crate::Args;

/// Loads the weights of the newest checkpoint that verifies under `path` (a
/// checkpoint, or a run directory) into `model`; returns the file's name.
fn from_checkpoint(model: &mut Model, path: &std::path::Path, missing: &str) -> Result<String> {
    let (bytes, file) = checkpoint::model_weights(path).context(missing.to_owned())?;
    model.load_safetensors(&bytes).with_context(|| {
        format!("loading {} (same --preset and --game as the run?)", file.display())
    })?;
    Ok(file.display().to_string())
}

/// `--eval`: plays `--episodes` episodes with fixed weights (the learner's
/// newest, or a checkpoint's), records each, and writes their returns to
/// `<run dir>/eval-<time>-actor<id>.json`.
pub fn evaluate(args: &Args, run_dir: &RunDir, stop: &AtomicBool) -> Result<()> {
    let cfg = model_config(args)?;
    let mut model = acting_model(args, &cfg)?;
    let creds = Credentials::of(run_dir)?;
    let (version, source) = match &args.checkpoint {
        Some(path) => {
            let missing = "reading --checkpoint (a checkpoint that does not verify: pick another)";
            (0, from_checkpoint(&mut model, path, missing)?)
        }
        None => {
            let addresses = resolve_addresses(args, run_dir, stop)?;
            let client = ParamsClient::dial(&addresses.params, &creds, args.max_message_bytes)?;
            match weights::ask(&client, args.actor_id, 0)? {
                Fetched::Params(params) if params.version > 0 => {
                    weights::load(&mut model, &params)?;
                    (params.version, format!("learner version {}", params.version))
                }
                _ => {
                    let missing = "the learner did not answer and the run has no good \
                                   checkpoint: pass --checkpoint";
                    (0, from_checkpoint(&mut model, run_dir.root(), missing)?)
                }
            }
        }
    };
    let episodes_address = args
        .episodes_address
        .clone()
        .or(Endpoints::read(&run_dir.endpoints()).ok().and_then(|e| e.episodes))
        .unwrap_or_else(|| run_dir.ipc("episodes"));
    let mut sink = EpisodeSink::new(Push::dial(&episodes_address, &creds)?);
    let num_envs = args.num_envs.min(args.episodes).max(1);
    let mut group = Group::new(args, &cfg, num_envs, 0, 1)?;
    let seed = derive_seed(args.run.seed, args.actor_id, u32::MAX);
    let mut policy = BatchedPolicy::new(model, version, None, seed);
    let rows = policy.add(args.actor_id, 0, num_envs);
    let sampling = if args.greedy { Sampling::Greedy } else { Sampling::Sample };
    tracing::info!(
        "evaluating {} episodes of {} with weights from {source} ({})",
        args.episodes,
        args.run.game,
        if args.greedy { "greedy" } else { "sampled" }
    );
    let mut stepper = Stepper { sink: Some(&mut sink), chunk_steps: args.chunk_steps.max(1) };
    let mut returns = Vec::new();
    while returns.len() < args.episodes && !stop.load(Ordering::Relaxed) {
        let request = group.observations();
        let acted = policy.act(&[Request { observations: &request, rows: &rows }], sampling);
        for (env, ret, len) in stepper.apply(&mut group, &acted.answers[0]) {
            if returns.len() < args.episodes {
                tracing::info!(
                    "episode {} (env {env}): return {ret}, {len} steps",
                    returns.len() + 1
                );
                returns.push(ret);
            }
        }
    }
    stepper.flush_incomplete(&mut group, version);
    anyhow::ensure!(!returns.is_empty(), "stopped before any episode finished");
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let mut sorted = returns.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let out = run_dir.root().join(format!("eval-{now}-actor{}.json", args.actor_id));
    let report = serde_json::json!({
        "weights": source,
        "params_version": version,
        "game": args.run.game,
        "greedy": args.greedy,
        "episodes": returns.len(),
        "mean_return": mean,
        "median_return": median,
        "returns": returns,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    if args.tensorboard {
        write_tensorboard(&run_dir.root().join("tb").join("eval"), version, &returns, mean)?;
    }
    println!(
        "evaluation: {} episodes, mean return {mean:.2}, median {median:.2} (written to {})",
        returns.len(),
        out.display()
    );
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

/// The evaluation's returns as TensorBoard scalars in a new event file of
/// `dir`: each episode's and their mean, at step = the params version played
/// (0 for weights from a checkpoint file).
fn write_tensorboard(
    dir: &std::path::Path,
    version: u64,
    returns: &[f64],
    mean: f64,
) -> Result<()> {
    let mut file = wire::events::EventFile::create(dir, "eval")?;
    let step = version as i64;
    for &r in returns {
        file.scalar(step, "eval/episode_return", r as f32)?;
    }
    file.scalar(step, "eval/mean_return", mean as f32)?;
    Ok(file.flush()?)
}
