//! The learner's settings resolved once from its flags: the run directory,
//! the game's action set, the model's shapes, the device, the precision and
//! the inference mode. Training and `learner bench` both start here, so a
//! flag means the same in both.

use anyhow::{Context, Result};
use tch::Device;

use agent::precision::Resolved;
use env::EnvSpec;
use wire::config::ModelConfig;
use wire::rundir::RunDir;

use crate::flags::{parse_device, TrainArgs};

pub struct Settings {
    pub run_dir: RunDir,
    pub env: EnvSpec,
    pub num_actions: usize,
    /// Environment frames per agent step (the action repeat).
    pub frames_per_step: u64,
    pub cfg: ModelConfig,
    pub device: Device,
    pub precision: Resolved,
    /// Whether this learner serves the actors' inference.
    pub central_inference: bool,
    /// Every flag, for meta.json and the checkpoints.
    pub config_json: serde_json::Value,
}

impl Settings {
    pub fn resolve(args: &TrainArgs) -> Result<Self> {
        anyhow::ensure!(
            args.batch_size > 0 && args.run.unroll_length > 0,
            "--batch-size and --unroll-length must be at least 1"
        );
        let run_dir = args.run.run_dir().map_err(anyhow::Error::msg)?;
        let env = EnvSpec::of_run(&args.run.game, args.run.full_action_set);
        let num_actions = env.num_actions().context("finding the game's number of actions")?;
        let frames_per_step = u64::from(env.action_repeat.max(1));
        let cfg = args.run.model_config(num_actions);
        let device = parse_device(&args.device)?;
        let precision = args.precision.resolve(device)?;
        Ok(Settings {
            run_dir,
            env,
            num_actions,
            frames_per_step,
            cfg,
            device,
            precision,
            central_inference: args.inference.is_central(device),
            config_json: args.to_json(),
        })
    }

    /// Agent steps one update learns from: T x B.
    pub fn steps_per_batch(&self, args: &TrainArgs) -> u64 {
        (args.run.unroll_length * args.batch_size) as u64
    }
}
