//! The learner's command line: every flag of a training run ([`TrainArgs`],
//! with the run's shared flags flattened in), the subcommands, and the
//! settings derived from the flags (loss, optimizer, learning-rate schedule).

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use tch::Device;

use agent::precision::PrecisionChoice;
use agent::vtrace::{LossConfig, VTraceConfig};
use wire::args::RunArgs;
use wire::transport::DEFAULT_MAX_MESSAGE_BYTES;

use crate::optim::OptimizerConfig;

/// `--optimizer`: which update rule the learner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Rmsprop,
    Adam,
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adam => "adam",
        })
    }
}

/// `--inference`: who runs the model that picks the actors' actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InferenceMode {
    Auto,
    Central,
    Actors,
}

impl InferenceMode {
    /// Whether the learner serves inference on `device`.
    pub fn is_central(self, device: Device) -> bool {
        match self {
            InferenceMode::Auto => device.is_cuda(),
            InferenceMode::Central => true,
            InferenceMode::Actors => false,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "learner",
    version,
    about = "IMPALA learner of the attention-augmented agent: V-trace, RMSProp, params service, checkpoints, logs.",
    long_about = "IMPALA learner of the attention-augmented agent (Mott et al. 2019).\n\n\
        Binds the trajectory PULL socket and the params REP socket (default: ipc sockets in \
        <runs-root>/<xpid>/sock/, written to <runs-root>/<xpid>/endpoints.json), learns from \
        batches of --batch-size unrolls with V-trace and RMSProp, serves the newest weights to \
        actors, and writes logs.csv, meta.json and checkpoints/ in the run directory. Stops at \
        --total-frames or on Ctrl-C, writing a checkpoint either way; --resume continues.\n\n\
        A flag given twice takes its last value, so launchers' defaults (train-local.sh --demo) \
        can be overridden by flags after `--`.",
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure learner samples/s against the bare model training step (prints a table).
    Bench(Box<BenchArgs>),
    /// Print how the run's newest session ended, one word: `total-frames-reached`,
    /// `interrupted`, `failed`, or `none` (running, never started, or killed).
    EndReason(EndReasonArgs),
}

#[derive(clap::Args, Debug)]
pub struct EndReasonArgs {
    /// Experiment id of the run.
    #[arg(long, env = "AAA_XPID", default_value = "default")]
    pub xpid: String,
    /// Directory that holds the run directories.
    #[arg(long, env = "AAA_RUNS_ROOT", default_value = "runs")]
    pub runs_root: std::path::PathBuf,
}

/// Every setting of a training run. Defaults: docs/architecture.md, Defaults.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct TrainArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,

    /// Unrolls per batch B.
    #[arg(long, default_value_t = 32, help_heading = "Learning")]
    pub batch_size: usize,
    /// Stop after learning from this many environment frames (agent steps
    /// times the action repeat; `2e9` notation accepted). The learning rate
    /// reaches zero here.
    #[arg(long, default_value = "2e9", value_parser = parse_count, help_heading = "Learning")]
    pub total_frames: u64,
    /// Update rule: `rmsprop` (IMPALA's, for Atari) or `adam`
    /// (what the built-in game learns with at the `small` preset; see
    /// docs/learning.md).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Rmsprop, help_heading = "Learning")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate; decays linearly to 0 at --total-frames (unless
    /// --constant-learning-rate).
    #[arg(long, default_value_t = 6e-4, help_heading = "Learning")]
    pub learning_rate: f64,
    /// Keep the learning rate at --learning-rate for the whole run instead of
    /// decaying it, for runs whose budget is a stopping point rather than a
    /// schedule. The demo used it until runs that had learned catch collapsed
    /// late at a constant rate; it now decays (docs/learning.md, "Why one run
    /// in five did not learn").
    #[arg(long, help_heading = "Learning")]
    pub constant_learning_rate: bool,
    /// Raise the learning rate linearly from 0 over the first F frames (0: no
    /// warm-up). Adam's first steps are as large as its later ones however
    /// noisy the early gradients are, and the attention logits can saturate on
    /// whatever the first updates favoured (docs/learning.md).
    #[arg(long, default_value = "0", value_parser = parse_count, value_name = "F", help_heading = "Learning")]
    pub warmup_frames: u64,
    /// RMSProp smoothing constant alpha.
    #[arg(long, default_value_t = 0.99, help_heading = "Learning")]
    pub rmsprop_alpha: f64,
    /// RMSProp epsilon (added to the root of the mean square, as in PyTorch).
    #[arg(long, default_value_t = 0.01, help_heading = "Learning")]
    pub rmsprop_eps: f64,
    /// RMSProp momentum.
    #[arg(long, default_value_t = 0.0, help_heading = "Learning")]
    pub rmsprop_momentum: f64,
    /// Adam's first-moment decay beta1.
    #[arg(long, default_value_t = 0.9, help_heading = "Learning")]
    pub adam_beta1: f64,
    /// Adam's second-moment decay beta2.
    #[arg(long, default_value_t = 0.999, help_heading = "Learning")]
    pub adam_beta2: f64,
    /// Adam's epsilon (added to the root of the corrected second moment, as in PyTorch).
    #[arg(long, default_value_t = 1e-5, help_heading = "Learning")]
    pub adam_eps: f64,
    /// Weight of the entropy term (sum of pi log pi) in the loss.
    #[arg(long, default_value_t = 0.01, help_heading = "Learning")]
    pub entropy_cost: f64,
    /// Weight of the baseline term (0.5 sum (v_s - V)^2) in the loss.
    #[arg(long, default_value_t = 0.5, help_heading = "Learning")]
    pub baseline_cost: f64,
    /// Discount gamma.
    #[arg(long, default_value_t = 0.99, help_heading = "Learning")]
    pub discount: f64,
    /// Rewards are clipped to [-reward_clip, reward_clip] before V-trace.
    #[arg(long, default_value_t = 1.0, help_heading = "Learning")]
    pub reward_clip: f64,
    /// Gradients are rescaled so that their joint L2 norm is at most this.
    #[arg(long, default_value_t = 40.0, help_heading = "Learning")]
    pub grad_norm_clip: f64,
    /// V-trace rho-bar: truncation of the importance weights in the targets.
    #[arg(long, default_value_t = 1.0, help_heading = "Learning")]
    pub clip_rho_threshold: f64,
    /// V-trace c-bar: truncation of the trace coefficients.
    #[arg(long, default_value_t = 1.0, help_heading = "Learning")]
    pub clip_c_threshold: f64,
    /// Truncation of the importance weight in the policy-gradient advantage.
    #[arg(long, default_value_t = 1.0, help_heading = "Learning")]
    pub clip_pg_rho_threshold: f64,

    /// Where to learn: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "auto", help_heading = "Resources")]
    pub device: String,
    /// Numeric precision of the model's forward and backward pass: `bf16` runs
    /// the convolutions, ConvLSTM gates and linear layers in bfloat16 on
    /// float32 master weights (softmaxes, losses, V-trace and recurrent states
    /// stay float32); `auto` picks bf16 on a CPU with AVX-512 BF16 or AMX and
    /// fp32 elsewhere, GPUs included (where bf16 measured slower for this model
    /// at the learner's sizes; docs/performance.md).
    #[arg(long, value_enum, default_value = "auto", help_heading = "Resources")]
    pub precision: PrecisionChoice,
    /// Torch intra-op threads (0: torch's default, one per core). Set it when
    /// several processes share a machine.
    #[arg(long, default_value_t = 0, help_heading = "Resources")]
    pub threads: i32,
    /// Full batches kept ready for the learner at most; beyond that the
    /// learner stops reading and actors wait (back-pressure). Every queued
    /// batch adds one update of policy lag when the learner is the bottleneck;
    /// 0 queues none (the next batch is assembled during the update).
    #[arg(long, default_value_t = 2, help_heading = "Resources")]
    pub queue_batches: usize,
    /// Threads that receive, decode and validate trajectories (under central
    /// inference: the actors' requests), and copy frames into batches. Raise it when the learner waits for data (queue_size near
    /// 0 in logs.csv) and cores are free.
    #[arg(long, default_value_t = 2, help_heading = "Resources")]
    pub decode_threads: usize,
    /// Largest trajectory message accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES, help_heading = "Resources")]
    pub max_message_bytes: usize,

    /// Where the actors' inference runs: `central` (the learner serves it on
    /// its device, batching every actor's steps: docs/architecture.md,
    /// Central inference), `actors` (each actor runs its own CPU copy of the
    /// model), or `auto`: central when the learner's device is a GPU. Actors
    /// started with `--inference auto` follow what the learner chose.
    #[arg(long, value_enum, default_value_t = InferenceMode::Auto, help_heading = "Central inference")]
    pub inference: InferenceMode,
    /// Most environments in one inference batch; a request that would take a
    /// batch past it waits for the next one (a request larger than this is
    /// served alone).
    #[arg(long, default_value_t = 256, help_heading = "Central inference")]
    pub inference_batch: usize,
    /// Longest wait, in milliseconds, for more requests once one is there:
    /// longer fills batches (fewer, larger passes), shorter answers sooner.
    #[arg(long, default_value_t = 2.0, help_heading = "Central inference")]
    pub inference_wait_ms: f64,
    /// Seconds without a request after which a stream's environments are
    /// freed (its actor died or was cut off); an actor that comes back later
    /// is told to start over.
    #[arg(long, default_value_t = 60.0, help_heading = "Central inference")]
    pub inference_idle_s: f64,
    /// Address to bind for central inference (default: ipc://<run dir>/sock/inference).
    #[arg(long, help_heading = "Sockets")]
    pub inference_address: Option<String>,
    /// Address to bind for trajectories (default: ipc://<run dir>/sock/trajectories).
    #[arg(long, help_heading = "Sockets")]
    pub trajectories_address: Option<String>,
    /// Address to bind for params requests (default: ipc://<run dir>/sock/params).
    #[arg(long, help_heading = "Sockets")]
    pub params_address: Option<String>,
    /// Allow binding tcp addresses beyond loopback (exposes the run to the network).
    #[arg(long, help_heading = "Sockets")]
    pub allow_remote: bool,

    /// Continue the run from its newest valid checkpoint: weights, optimizer
    /// state, counters and the learning-rate schedule.
    #[arg(long, help_heading = "Checkpoints and logs")]
    pub resume: bool,
    /// Seconds between periodic checkpoints (one is always written at exit).
    #[arg(long, default_value_t = 600.0, help_heading = "Checkpoints and logs")]
    pub checkpoint_interval_s: f64,
    /// Checkpoints kept; older ones are deleted.
    #[arg(long, default_value_t = 3, help_heading = "Checkpoints and logs")]
    pub keep_checkpoints: usize,
    /// Seconds between progress lines on the terminal.
    #[arg(long, default_value_t = 5.0, help_heading = "Checkpoints and logs")]
    pub log_interval_s: f64,
    /// Write TensorBoard event files to `<run dir>/tb/` (the scalars of
    /// logs.csv, step = frames): `true` or `false`. Open them with
    /// `tensorboard --logdir <runs-root>`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, help_heading = "Checkpoints and logs")]
    pub tensorboard: bool,
}

/// Parses a count written as an integer (`2000000000`, `2_000_000_000`) or in
/// float notation (`2e9`, `1.5e6`).
fn parse_count(s: &str) -> Result<u64, String> {
    let clean = s.replace('_', "");
    if let Ok(n) = clean.parse::<u64>() {
        return Ok(n);
    }
    match clean.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
        _ => Err(format!("{s:?} is not a whole non-negative number (e.g. 2000000 or 2e9)")),
    }
}

/// `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    let cuda = |i: usize| -> Result<Device> {
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!(
                "--device {s}: {n} CUDA device(s) visible{}",
                if n == 0 { " (this libtorch has no CUDA, or there is no GPU)" } else { "" }
            );
        }
        Ok(Device::Cuda(i))
    };
    match s {
        "auto" => {
            agent::machine::allow_autodetect(
                "--device auto",
                "pass --device cpu (or cuda) to say where the learner runs",
            )?;
            Ok(Device::cuda_if_available())
        }
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("--device {s:?}: use auto, cpu, cuda or cuda:N"),
        },
    }
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

impl TrainArgs {
    /// The settings as JSON, for meta.json and checkpoints: every flag under
    /// its own name (the run's flags flattened in).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("flags serialize to JSON")
    }

    pub fn loss_config(&self) -> LossConfig {
        LossConfig {
            discount: self.discount,
            baseline_cost: self.baseline_cost,
            entropy_cost: self.entropy_cost,
            reward_clip: self.reward_clip,
            vtrace: VTraceConfig {
                clip_rho_threshold: self.clip_rho_threshold,
                clip_c_threshold: self.clip_c_threshold,
                clip_pg_rho_threshold: self.clip_pg_rho_threshold,
                lambda: 1.0,
            },
        }
    }

    pub fn optimizer_config(&self) -> OptimizerConfig {
        match self.optimizer {
            OptimizerKind::Rmsprop => OptimizerConfig::RmsProp {
                alpha: self.rmsprop_alpha,
                eps: self.rmsprop_eps,
                momentum: self.rmsprop_momentum,
            },
            OptimizerKind::Adam => OptimizerConfig::Adam {
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                eps: self.adam_eps,
            },
        }
    }

    /// Linear decay to zero over the run: lr * (1 - frames / total_frames);
    /// lr throughout with --constant-learning-rate. Either way times
    /// frames / warmup_frames during the warm-up.
    pub fn learning_rate_at(&self, frames: u64) -> f64 {
        let warmup = if self.warmup_frames == 0 {
            1.0
        } else {
            (frames as f64 / self.warmup_frames as f64).min(1.0)
        };
        if self.constant_learning_rate {
            return self.learning_rate * warmup;
        }
        let total = self.total_frames.max(1) as f64;
        self.learning_rate * warmup * (1.0 - (frames as f64).min(total) / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_float_notation() {
        assert_eq!(parse_count("2e9"), Ok(2_000_000_000));
        assert_eq!(parse_count("2_000"), Ok(2000));
        assert_eq!(parse_count("1.5e3"), Ok(1500));
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("-3").is_err());
    }

    #[test]
    fn learning_rate_decays_linearly_to_zero() {
        let cli = Cli::parse_from(["learner", "--total-frames", "1000", "--learning-rate", "0.5"]);
        let a = &cli.train;
        assert_eq!(a.learning_rate_at(0), 0.5);
        assert_eq!(a.learning_rate_at(500), 0.25);
        assert_eq!(a.learning_rate_at(1000), 0.0);
        assert_eq!(a.learning_rate_at(5000), 0.0);
        let cli = Cli::parse_from([
            "learner",
            "--total-frames",
            "1000",
            "--learning-rate",
            "0.5",
            "--constant-learning-rate",
        ]);
        assert_eq!(cli.train.learning_rate_at(999), 0.5);
        let cli = Cli::parse_from([
            "learner",
            "--learning-rate",
            "0.5",
            "--constant-learning-rate",
            "--warmup-frames",
            "1e3",
        ]);
        let a = &cli.train;
        assert_eq!((a.learning_rate_at(0), a.learning_rate_at(250)), (0.0, 0.125));
        assert_eq!((a.learning_rate_at(1000), a.learning_rate_at(5000)), (0.5, 0.5));
    }

    #[test]
    fn defaults_are_the_spec_s() {
        let cli = Cli::parse_from(["learner"]);
        let a = &cli.train;
        assert_eq!((a.batch_size, a.run.unroll_length), (32, 50));
        assert_eq!(a.total_frames, 2_000_000_000);
        assert_eq!(a.learning_rate, 6e-4);
        assert_eq!(
            a.optimizer_config(),
            OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 }
        );
        assert_eq!((a.entropy_cost, a.baseline_cost, a.discount), (0.01, 0.5, 0.99));
        assert_eq!(a.grad_norm_clip, 40.0);
        assert_eq!(a.loss_config(), LossConfig::default());
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("gpu").is_err());
        if agent::machine::autodetect_forbidden() {
            // scripts/test.sh: `auto` must be stated, and the error says how.
            let refused = parse_device("auto").unwrap_err().to_string();
            assert!(refused.contains("pass --device cpu"), "{refused}");
        } else if !tch::Cuda::is_available() {
            assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
        }
        if !tch::Cuda::is_available() {
            assert!(parse_device("cuda:0").is_err());
        }
    }

    /// Checkpoints written before the settings' JSON was derived hold these
    /// keys; resuming compares them, so none may be renamed or lost.
    #[test]
    fn settings_json_keeps_every_key_of_older_checkpoints() {
        let cli = Cli::try_parse_from(["learner"]).unwrap();
        let json = cli.train.to_json();
        for key in [
            "xpid",
            "runs_root",
            "preset",
            "agent",
            "game",
            "full_action_set",
            "unroll_length",
            "seed",
            "batch_size",
            "total_frames",
            "learning_rate",
            "constant_learning_rate",
            "warmup_frames",
            "rmsprop_alpha",
            "rmsprop_eps",
            "rmsprop_momentum",
            "optimizer",
            "adam_beta1",
            "adam_beta2",
            "adam_eps",
            "entropy_cost",
            "baseline_cost",
            "discount",
            "reward_clip",
            "grad_norm_clip",
            "clip_rho_threshold",
            "clip_c_threshold",
            "clip_pg_rho_threshold",
            "device",
            "precision",
            "threads",
            "queue_batches",
            "decode_threads",
            "max_message_bytes",
            "trajectories_address",
            "params_address",
            "allow_remote",
            "resume",
            "checkpoint_interval_s",
            "keep_checkpoints",
            "log_interval_s",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["preset"], "paper");
        assert_eq!(json["agent"], "attention");
        assert_eq!(json["optimizer"], "rmsprop");
        assert_eq!(json["total_frames"], 2_000_000_000u64);
        // The settings free to change on --resume are settings: a renamed
        // flag would otherwise be warned about at every resume, or never.
        for key in crate::checkpoint::FREE_ON_RESUME {
            assert!(json.get(key).is_some(), "FREE_ON_RESUME names {key}, which is no setting");
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Timed updates per measurement.
    #[arg(long, default_value_t = 5)]
    pub updates: usize,
    /// Untimed updates before each measurement.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
}
