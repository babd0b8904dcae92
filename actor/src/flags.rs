//! The actor's command line ([`Args`], with the run's shared flags flattened
//! in) and the environment it describes.

use std::path::PathBuf;

use clap::Parser;

use agent::precision::PrecisionChoice;
use env::EnvSpec;
use wire::args::RunArgs;

/// `--inference`: who runs the model that picks this actor's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ActorInference {
    Auto,
    Local,
    Central,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "actor",
    about = "Plays E environments with the attention agent and streams unrolls to the learner.",
    long_about = "Plays E environments with the attention agent (batched inference on its own \
        copy of the model, no gradients) and streams unrolls of T+1 steps to the learner. Before \
        every unroll it asks the learner for newer weights. Every k-th episode (all of them with \
        --eval) goes to the recorder with the attention maps computed while playing. Addresses \
        come from flags, else from <run dir>/endpoints.json, else the run's ipc:// defaults. \
        Ctrl-C finishes the current step and stops cleanly."
)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs,
    /// This actor's id; with the run seed and env index it seeds every environment.
    /// Defaults to SLURM_ARRAY_TASK_ID under a SLURM job array.
    #[arg(long, env = "SLURM_ARRAY_TASK_ID", default_value_t = 0)]
    pub actor_id: u32,
    /// Environments E played in lockstep with one inference call per step
    /// (under central inference: per group, see --groups).
    #[arg(long, default_value_t = 8)]
    pub num_envs: usize,
    /// Torch threads for inference (several processes share the cores: keep it small).
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Numeric precision of inference: `bf16` runs the convolutions, ConvLSTM
    /// gates and linear layers in bfloat16 (the learner's V-trace corrects for
    /// the slightly different behaviour policy); `auto` picks bf16 where the CPU
    /// computes it natively (AVX-512 BF16 or AMX), fp32 elsewhere.
    #[arg(long, value_enum, default_value = "auto")]
    pub precision: PrecisionChoice,

    /// Directory holding Atari ROMs (<game>.bin); else AAA_ROM_DIR, else the virtualenv's ale_py/roms.
    #[arg(long, help_heading = "Environment")]
    pub rom_dir: Option<PathBuf>,
    /// Atari: up to this many no-op frames after each reset (0: none).
    #[arg(long, default_value_t = 30, help_heading = "Environment")]
    pub noop_max: u32,
    /// Atari: emulator frames per agent step (max over the last two is observed).
    #[arg(long, default_value_t = 4, help_heading = "Environment")]
    pub action_repeat: u32,
    /// Atari: emulator frames after which an episode is cut.
    #[arg(long, default_value_t = 108_000, help_heading = "Environment")]
    pub max_frames: u64,
    /// Atari: sticky actions (repeat the previous action with p = 0.25).
    #[arg(long, help_heading = "Environment")]
    pub sticky_actions: bool,
    /// Atari: a lost life ends the agent's episode.
    #[arg(long, help_heading = "Environment")]
    pub episodic_life: bool,
    /// Atari: press FIRE after every reset.
    #[arg(long, help_heading = "Environment")]
    pub fire_reset: bool,

    /// Record every k-th episode of this actor to the recorder (0: none).
    #[arg(long, default_value_t = 50, help_heading = "Recording")]
    pub record_every: u64,
    /// Steps per episode chunk sent to the recorder (bounds message size).
    #[arg(long, default_value_t = 32, help_heading = "Recording")]
    pub chunk_steps: usize,
    /// Send the 128-byte Atari RAM with every recorded step.
    #[arg(long, help_heading = "Recording")]
    pub record_ram: bool,

    /// Where the model that picks the actions runs: `local` (this actor's
    /// own CPU copy), `central` (the learner's device: docs/architecture.md,
    /// Central inference), or `auto`: central when the learner serves it
    /// (its address is in endpoints.json), local otherwise.
    #[arg(long, value_enum, default_value_t = ActorInference::Auto, help_heading = "Central inference")]
    pub inference: ActorInference,
    /// Central inference: groups of --num-envs environments played in turn,
    /// so that one group's emulation overlaps another's round trip to the learner.
    #[arg(long, default_value_t = 2, help_heading = "Central inference")]
    pub groups: usize,
    /// Central inference: seconds to wait for an answer before the group
    /// starts over (new episodes) and the learner's address is looked up again.
    #[arg(long, default_value_t = 30.0, help_heading = "Central inference")]
    pub inference_timeout_s: f64,
    /// The learner's inference socket (default: endpoints.json).
    #[arg(long, help_heading = "Sockets")]
    pub inference_address: Option<String>,
    /// Learner's trajectory socket (default: endpoints.json, else ipc in the run dir).
    #[arg(long, help_heading = "Sockets")]
    pub trajectories_address: Option<String>,
    /// Learner's params socket.
    #[arg(long, help_heading = "Sockets")]
    pub params_address: Option<String>,
    /// Recorder's episode socket.
    #[arg(long, help_heading = "Sockets")]
    pub episodes_address: Option<String>,
    /// Largest params message accepted, in bytes.
    #[arg(long, default_value_t = wire::transport::DEFAULT_MAX_MESSAGE_BYTES, help_heading = "Sockets")]
    pub max_message_bytes: usize,
    /// Stop after sending this many unrolls per environment (0: run until the learner finishes).
    #[arg(long, default_value_t = 0, help_heading = "Sockets")]
    pub max_unrolls: u64,

    /// Evaluation mode: play --episodes episodes with fixed weights, record all of
    /// them, report mean/median return and write them to <run dir>/eval-*.json.
    #[arg(long, help_heading = "Evaluation")]
    pub eval: bool,
    /// Episodes to play in evaluation mode.
    #[arg(long, default_value_t = 10, help_heading = "Evaluation")]
    pub episodes: usize,
    /// Weights for evaluation: a checkpoint directory or model.safetensors file;
    /// default: ask the learner for its newest, else the run's newest checkpoint.
    #[arg(long, help_heading = "Evaluation")]
    pub checkpoint: Option<PathBuf>,
    /// Evaluation: take the most probable action instead of sampling.
    #[arg(long, help_heading = "Evaluation")]
    pub greedy: bool,
    /// Evaluation: also write the returns as TensorBoard scalars to
    /// `<run dir>/tb/eval/` (`eval/episode_return`, `eval/mean_return`, step =
    /// the params version played): `true` or `false`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, help_heading = "Evaluation")]
    pub tensorboard: bool,
}

impl Args {
    pub fn env_spec(&self) -> EnvSpec {
        let base = EnvSpec::of_run(&self.run.game, self.run.full_action_set);
        let cfg = self.run.model_config(1);
        EnvSpec {
            rom_dir: self.rom_dir.clone(),
            noop_max: if base.is_builtin() { 0 } else { self.noop_max },
            action_repeat: if base.is_builtin() { 1 } else { self.action_repeat },
            max_frames: if base.is_builtin() { base.max_frames } else { self.max_frames },
            sticky_actions: self.sticky_actions,
            episodic_life: self.episodic_life,
            fire_reset: self.fire_reset,
            obs_height: cfg.height,
            obs_width: cfg.width,
            grayscale: cfg.in_channels == 1,
            ..base
        }
    }
}
