//! The learner: receives trajectories from any number of actors, learns from
//! batches of B unrolls with V-trace and RMSProp, serves the newest weights,
//! and owns the run's checkpoints and logs (SPEC sections 1, 4 and 5).
//!
//! The whole loop is [`train`], read top to bottom:
//!
//! 1. bind the trajectory PULL and the params REP sockets, write their
//!    addresses to `<run dir>/endpoints.json`;
//! 2. receive threads ([`batcher`]) decode and validate trajectories, dropping
//!    and counting bad ones; an assembler thread stacks B of them into a
//!    time-major batch `[T+1, B, ...]`; bounded queues slow the actors down
//!    rather than buffer without end;
//! 3. per batch: forward over all T+1 steps from the stored initial recurrent
//!    states, the IMPALA loss with V-trace (`agent::vtrace`, rewards clipped
//!    to [-1, 1] there), backward, gradient-norm clipping, RMSProp with a
//!    learning rate decaying linearly to zero over `--total-frames`;
//! 4. publish the new weights to the params thread ([`params_service`]),
//!    append a row to `logs.csv` ([`metrics`]), checkpoint now and then
//!    ([`checkpoint`]);
//! 5. at `--total-frames` or on Ctrl-C / SIGTERM: a last checkpoint, exit 0.

mod batcher;
mod bench;
mod checkpoint;
mod metrics;
mod optim;
mod params_service;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use tch::Device;

use agent::model::Model;
use agent::precision::PrecisionChoice;
use agent::vtrace::{impala_loss, LossConfig, LossInputs, VTraceConfig};
use env::EnvSpec;
use wire::args::RunArgs;
use wire::auth::Credentials;
use wire::rundir::Endpoints;
use wire::transport::{ParamsServer, Pull, DEFAULT_MAX_MESSAGE_BYTES};

use batcher::{Batcher, BatcherConfig};
use checkpoint::Counters;
use metrics::{CsvLog, Meta, Progress, Row, Throughput};
use optim::{Optimizer, OptimizerConfig};
use params_service::ParamsService;

/// `--optimizer`: which update rule the learner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure learner samples/s against the bare model training step (prints a table).
    Bench(bench::BenchArgs),
}

/// Every setting of a training run. Defaults are SPEC section 4's.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Unrolls per batch B.
    #[arg(long, default_value_t = 32, help_heading = "Learning")]
    pub batch_size: usize,
    /// Stop after learning from this many environment frames (agent steps
    /// times the action repeat; `2e9` notation accepted). The learning rate
    /// reaches zero here.
    #[arg(long, default_value = "2e9", value_parser = parse_count, help_heading = "Learning")]
    pub total_frames: u64,
    /// Update rule: `rmsprop` (the SPEC's and IMPALA's, for Atari) or `adam`
    /// (what the built-in game learns with at the `small` preset; see
    /// docs/learning.md).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Rmsprop, help_heading = "Learning")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate; decays linearly to 0 at --total-frames (unless
    /// --constant-learning-rate).
    #[arg(long, default_value_t = 6e-4, help_heading = "Learning")]
    pub learning_rate: f64,
    /// Keep the learning rate at --learning-rate for the whole run instead of
    /// decaying it. For short runs whose budget is a stopping point rather than
    /// a schedule: the demo on catch learns around 400-600k frames, where a
    /// decay over its 1e6 budget would already have halved the rate.
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
    /// Threads that receive, decode and validate trajectories, and copy frames
    /// into batches. Raise it when the learner waits for data (queue_size near
    /// 0 in logs.csv) and cores are free.
    #[arg(long, default_value_t = 2, help_heading = "Resources")]
    pub decode_threads: usize,
    /// Largest trajectory message accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES, help_heading = "Resources")]
    pub max_message_bytes: usize,

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
    /// The settings as JSON, for meta.json and checkpoints.
    fn to_json(&self) -> serde_json::Value {
        json!({
            "xpid": self.run.xpid,
            "runs_root": self.run.runs_root,
            "preset": self.run.preset.to_string(),
            "agent": self.run.agent.to_string(),
            "game": self.run.game,
            "full_action_set": self.run.full_action_set,
            "unroll_length": self.run.unroll_length,
            "seed": self.run.seed,
            "batch_size": self.batch_size,
            "total_frames": self.total_frames,
            "learning_rate": self.learning_rate,
            "constant_learning_rate": self.constant_learning_rate,
            "warmup_frames": self.warmup_frames,
            "rmsprop_alpha": self.rmsprop_alpha,
            "rmsprop_eps": self.rmsprop_eps,
            "rmsprop_momentum": self.rmsprop_momentum,
            "optimizer": self.optimizer.to_string(),
            "adam_beta1": self.adam_beta1,
            "adam_beta2": self.adam_beta2,
            "adam_eps": self.adam_eps,
            "entropy_cost": self.entropy_cost,
            "baseline_cost": self.baseline_cost,
            "discount": self.discount,
            "reward_clip": self.reward_clip,
            "grad_norm_clip": self.grad_norm_clip,
            "clip_rho_threshold": self.clip_rho_threshold,
            "clip_c_threshold": self.clip_c_threshold,
            "clip_pg_rho_threshold": self.clip_pg_rho_threshold,
            "device": self.device,
            "precision": self.precision,
            "threads": self.threads,
            "queue_batches": self.queue_batches,
            "decode_threads": self.decode_threads,
            "max_message_bytes": self.max_message_bytes,
            "trajectories_address": self.trajectories_address,
            "params_address": self.params_address,
            "allow_remote": self.allow_remote,
            "resume": self.resume,
            "checkpoint_interval_s": self.checkpoint_interval_s,
            "keep_checkpoints": self.keep_checkpoints,
            "log_interval_s": self.log_interval_s,
        })
    }

    fn loss_config(&self) -> LossConfig {
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

    fn optimizer_config(&self) -> OptimizerConfig {
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

/// Settings that may change between sessions of a run without warning.
const FREE_ON_RESUME: &[&str] = &[
    "resume",
    "device",
    "precision",
    "threads",
    "queue_batches",
    "decode_threads",
    "max_message_bytes",
    "trajectories_address",
    "params_address",
    "allow_remote",
    "checkpoint_interval_s",
    "keep_checkpoints",
    "log_interval_s",
    "runs_root",
];

/// What a finished [`train`] call did.
pub struct Summary {
    pub counters: Counters,
    pub reason: String,
    pub checkpoint: PathBuf,
    /// When each update of this session ended, with the process CPU seconds
    /// used by then (NaN where unknown).
    pub update_ends: Vec<(Instant, f64)>,
    /// Seconds each update spent in [`update`] (the model step proper).
    pub update_seconds: Vec<f64>,
    pub device: Device,
}

/// One update from a batch already on the device; returns the row's losses.
pub struct UpdateStats {
    pub total: f64,
    pub pg: f64,
    pub baseline: f64,
    pub entropy: f64,
    pub grad_norm: f64,
}

/// Forward over [T+1, B] from the stored initial states, IMPALA loss,
/// backward, gradient-norm clipping, one optimizer step with `lr`.
pub fn update(
    model: &Model,
    opt: &mut Optimizer,
    batch: &batcher::Batch,
    loss_cfg: &LossConfig,
    grad_norm_clip: f64,
    lr: f64,
) -> UpdateStats {
    let (output, _) = model.unroll(&batch.unroll(), &batch.initial_state);
    let losses = impala_loss(
        &LossInputs {
            learner_logits: &output.policy_logits,
            learner_baseline: &output.baseline,
            behaviour_logits: &batch.policy_logits,
            action: &batch.action,
            reward: &batch.reward,
            done: &batch.done,
        },
        loss_cfg,
    );
    opt.zero_grad();
    losses.total.backward();
    let grad_norm = opt.clip_grad_norm(grad_norm_clip);
    opt.step(lr);
    UpdateStats {
        total: losses.total.double_value(&[]),
        pg: losses.pg.double_value(&[]),
        baseline: losses.baseline.double_value(&[]),
        entropy: losses.entropy.double_value(&[]),
        grad_norm,
    }
}

/// Runs the learner until `--total-frames` or until `stop` is set; writes a
/// checkpoint either way.
pub fn train(args: &TrainArgs, stop: &AtomicBool) -> Result<Summary> {
    if args.batch_size == 0 || args.run.unroll_length == 0 {
        bail!("--batch-size and --unroll-length must be at least 1");
    }
    let run_dir = args.run.run_dir().map_err(anyhow::Error::msg)?;
    run_dir
        .create()
        .with_context(|| format!("creating run directory {}", run_dir.root().display()))?;
    // The run's key, made with the run directory: every message is tagged with
    // it, so only processes that can read the run directory take part.
    let creds = Credentials::of(&run_dir)?;
    let env = EnvSpec::of_run(&args.run.game, args.run.full_action_set);
    let num_actions = env.num_actions().context("finding the game's number of actions")?;
    let frames_per_step = u64::from(env.action_repeat.max(1));
    let cfg = args.run.model_config(num_actions);
    let device = parse_device(&args.device)?;
    let config_json = args.to_json();

    // Model and optimizer, fresh or from the newest checkpoint.
    tch::manual_seed(args.run.seed as i64);
    let mut model = Model::new(cfg.clone(), device);
    let precision = args.precision.resolve(device)?;
    model.set_precision(precision.precision);
    let mut opt = Optimizer::new(&model.vs, args.optimizer_config());
    // Version 0 means "none" in a ParamsRequest: the initial weights are version 1.
    let mut counters = Counters { version: 1, ..Counters::default() };
    let mut resumed_from = None;
    let existing = checkpoint::list(&run_dir.checkpoints());
    if args.resume {
        match checkpoint::load_latest(&run_dir.checkpoints())? {
            Some(loaded) => {
                if loaded.model_config != cfg {
                    bail!(
                        "checkpoint {} is of another architecture (preset/agent/game/action set) \
                         than --preset {} --agent {} --game {}: resume with the run's own flags",
                        loaded.path.display(),
                        args.run.preset,
                        args.run.agent,
                        args.run.game
                    );
                }
                for (key, new) in config_json.as_object().into_iter().flatten() {
                    // A key the checkpoint lacks is a setting added since it was written.
                    let Some(old) = loaded.learner_config.get(key.as_str()) else { continue };
                    if !FREE_ON_RESUME.contains(&key.as_str()) && old != new {
                        tracing::warn!("--resume: {key} was {old} in the checkpoint, now {new}");
                    }
                }
                loaded.apply(&mut model, &mut opt)?;
                counters = loaded.counters.clone();
                tracing::info!(
                    "resumed from {}: step {} frames {} version {} learning rate {:.3e}",
                    loaded.path.display(),
                    counters.step,
                    counters.frames,
                    counters.version,
                    args.learning_rate_at(counters.frames)
                );
                resumed_from = Some(loaded.path.clone());
            }
            None => tracing::warn!(
                "--resume: no checkpoint in {}, starting a new run",
                run_dir.checkpoints().display()
            ),
        }
    } else if let Some((step, path)) = existing.first() {
        bail!(
            "run {} already has checkpoints (newest: {}, step {step}): pass --resume to \
             continue it, or choose another --xpid",
            run_dir.xpid(),
            path.display()
        );
    }

    // Sockets and the threads that own them.
    let trajectories_address =
        args.trajectories_address.clone().unwrap_or_else(|| run_dir.ipc("trajectories"));
    let params_address = args.params_address.clone().unwrap_or_else(|| run_dir.ipc("params"));
    let pull = Pull::bind(&trajectories_address, &creds, args.max_message_bytes, args.allow_remote)
        .with_context(|| format!("binding the trajectory socket {trajectories_address}"))?;
    let server = ParamsServer::bind(&params_address, &creds, args.allow_remote)
        .with_context(|| format!("binding the params socket {params_address}"))?;
    Endpoints::merge_into(
        &run_dir.endpoints(),
        &Endpoints {
            trajectories: Some(trajectories_address.clone()),
            params: Some(params_address.clone()),
            episodes: None,
        },
    )
    .with_context(|| format!("writing {}", run_dir.endpoints().display()))?;
    let connections = pull.connections();
    let params = ParamsService::spawn(server, &model, counters.version);
    let batcher = Batcher::spawn(
        pull,
        BatcherConfig {
            model: cfg.clone(),
            unroll_length: args.run.unroll_length,
            batch_size: args.batch_size,
            queue_batches: args.queue_batches,
            decode_threads: args.decode_threads,
            device,
        },
    );

    let mut meta_config = config_json.clone();
    meta_config["model"] = serde_json::to_value(&cfg)?;
    meta_config["fingerprint"] = cfg.fingerprint().into();
    meta_config["num_actions"] = num_actions.into();
    meta_config["frames_per_step"] = frames_per_step.into();
    meta_config["device_resolved"] = device_name(device).into();
    meta_config["precision_resolved"] = precision.precision.to_string().into();
    meta_config["precision_reason"] = precision.reason.clone().into();
    let mut meta = Meta::start(&run_dir.meta_json(), meta_config, resumed_from.as_deref())?;
    if resumed_from.is_some() {
        metrics::set_aside_rows_after(&run_dir.logs_csv(), counters.step)?;
    }
    let mut csv = CsvLog::open(&run_dir.logs_csv())?;
    tracing::info!(
        "learner {} on {} in {} ({}): model {} ({} actions), T = {}, B = {}; trajectories at {}, params at {}",
        run_dir.xpid(),
        device_name(device),
        precision.precision,
        precision.reason,
        args.run.preset,
        num_actions,
        args.run.unroll_length,
        args.batch_size,
        trajectories_address,
        params_address
    );

    let loss_cfg = args.loss_config();
    let steps_per_batch = (args.run.unroll_length * args.batch_size) as u64;
    let mut throughput = Throughput::new(Duration::from_secs(30));
    throughput.record(counters.agent_steps, counters.frames);
    let mut progress = Progress::new(Duration::from_secs_f64(args.log_interval_s.max(0.1)));
    let mut last_checkpoint = Instant::now();
    let mut update_ends = Vec::new();
    let mut update_seconds = Vec::new();
    let session_start = Instant::now();
    let train_seconds_before = counters.train_seconds;
    let mut csv_failures: u64 = 0;

    let reason = loop {
        if stop.load(Ordering::Relaxed) {
            break "interrupted";
        }
        if counters.frames >= args.total_frames {
            break "total frames reached";
        }
        let queue_size = batcher.queued.load(Ordering::Relaxed);
        let Some(batch) = batcher.next(Duration::from_millis(100)) else {
            let received: u64 = batcher.counters.snapshot().values().map(|c| c.received).sum();
            progress.maybe_report_waiting(queue_size, received);
            continue;
        };
        let lr = args.learning_rate_at(counters.frames);
        let on_device = batch.to_device(device);
        let update_start = Instant::now();
        let stats = update(&model, &mut opt, &on_device, &loss_cfg, args.grad_norm_clip, lr);
        update_seconds.push(update_start.elapsed().as_secs_f64());

        let lag = batch
            .params_versions
            .iter()
            .map(|&v| counters.version.saturating_sub(v) as f64)
            .sum::<f64>()
            / batch.params_versions.len() as f64;
        counters.step += 1;
        counters.version += 1;
        counters.agent_steps += steps_per_batch;
        counters.frames += steps_per_batch * frames_per_step;
        counters.episodes += batch.episode_returns.len() as u64;
        counters.train_seconds = train_seconds_before + session_start.elapsed().as_secs_f64();
        params.publish(counters.version, &model);

        let (sps, fps) = throughput.record(counters.agent_steps, counters.frames);
        let episodes = batch.episode_returns.len();
        let row = Row {
            time: metrics::unix_seconds(),
            step: counters.step,
            agent_steps: counters.agent_steps,
            frames: counters.frames,
            sps,
            fps,
            total_loss: stats.total,
            pg_loss: stats.pg,
            baseline_loss: stats.baseline,
            entropy_loss: stats.entropy,
            mean_episode_return: if episodes == 0 {
                f64::NAN
            } else {
                batch.episode_returns.iter().map(|&r| f64::from(r)).sum::<f64>() / episodes as f64
            },
            episodes: episodes as u64,
            episodes_total: counters.episodes,
            policy_lag: lag,
            queue_size,
            learning_rate: lr,
            grad_norm: stats.grad_norm,
        };
        // A full or failing disk must not stop learning: the row is lost,
        // counted and reported; checkpoints (which must succeed) stop the run.
        if let Err(e) = csv.write(&row) {
            csv_failures += 1;
            if csv_failures <= 10 || csv_failures.is_power_of_two() {
                tracing::error!(
                    "logs.csv row of step {} not written ({csv_failures} rows lost so far), \
                     learning goes on: {e:#}",
                    counters.step
                );
            }
        }
        update_ends.push((Instant::now(), metrics::process_cpu_seconds().unwrap_or(f64::NAN)));
        progress.episodes(&batch.episode_returns);
        progress.maybe_report(&row, batcher.counters.total_dropped());
        if !stats.total.is_finite() {
            tracing::error!(
                "loss is {} at step {}: check the learning rate",
                stats.total,
                counters.step
            );
        }

        if last_checkpoint.elapsed().as_secs_f64() >= args.checkpoint_interval_s {
            let path = checkpoint::save(
                &run_dir.checkpoints(),
                &model,
                &opt,
                &counters,
                &config_json,
                args.keep_checkpoints,
            )?;
            tracing::info!("checkpoint {}", path.display());
            last_checkpoint = Instant::now();
        }
    };

    // Stop taking trajectories, then the final checkpoint.
    let trajectory_counters = batcher.counters.clone();
    // Actor id -> how often its connection closed while the learner ran (it
    // died, restarted, or was cut off), before closing the socket closes the rest.
    let gone: serde_json::Map<String, serde_json::Value> =
        connections.gone().into_iter().map(|(a, n)| (a.to_string(), n.into())).collect();
    drop(batcher_report(batcher));
    let path = checkpoint::save(
        &run_dir.checkpoints(),
        &model,
        &opt,
        &counters,
        &config_json,
        args.keep_checkpoints,
    )?;
    tracing::info!(
        "{reason}: checkpoint {} at step {} frames {} (params: {} requests, {} weights sent, {} up to date, {} versions encoded)",
        path.display(),
        counters.step,
        counters.frames,
        params.stats.requests.load(Ordering::Relaxed),
        params.stats.params_sent.load(Ordering::Relaxed),
        params.stats.up_to_date_sent.load(Ordering::Relaxed),
        params.stats.encodes.load(Ordering::Relaxed),
    );
    drop(params);
    meta.set("final_counters", serde_json::to_value(&counters)?);
    meta.set("trajectories_per_actor", trajectories_per_actor(&trajectory_counters));
    meta.set("logs_csv_rows_lost", csv_failures.into());
    meta.set("actors_disconnected", gone.into());
    meta.finish(reason)?;
    Ok(Summary {
        counters,
        reason: reason.into(),
        checkpoint: path,
        update_ends,
        update_seconds,
        device,
    })
}

/// This session's trajectory counts per actor id, for meta.json (a launcher
/// checks there that every actor of a job array reached the learner):
/// `{"0": {"received": .., "used": .., "dropped": {reason: n}}, ..}`, with
/// messages of unknown sender under `"unknown"`.
fn trajectories_per_actor(counters: &batcher::TrajectoryCounters) -> serde_json::Value {
    counters
        .snapshot()
        .into_iter()
        .map(|(actor, c)| {
            let key = actor.map_or_else(|| "unknown".to_string(), |a| a.to_string());
            (key, serde_json::to_value(c).unwrap_or_default())
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Logs the per-actor trajectory counts and hands back the batcher to drop.
fn batcher_report(batcher: Batcher) -> Batcher {
    let report = batcher.counters.report();
    if !report.is_empty() {
        tracing::info!("trajectories per actor:\n{report}");
    }
    batcher
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Bench(args)) => {
            if args.train.threads > 0 {
                tch::set_num_threads(args.train.threads);
            }
            bench::run(args)
        }
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

    /// Runs the whole update (alignment, loss sign, clipping, RMSProp) in
    /// `precision` on a bandit hidden in the unrolls: reward[t+1] = +1 when
    /// action[t] = 0, else -1. Returns pi(action 0) before each update, and the
    /// model. [`assert_learned`]: it must rise from 1/3 to most of the mass.
    fn learn_bandit(precision: agent::precision::Precision) -> (Vec<f64>, Model) {
        use rand::{Rng, SeedableRng};
        let cfg = wire::config::ModelConfig::small(3);
        tch::manual_seed(0);
        let mut model = Model::new(cfg.clone(), Device::Cpu);
        model.set_precision(precision);
        let mut opt = Optimizer::new(
            &model.vs,
            OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 },
        );
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let (t_len, batch) = (4, 4);
        let mut prob_of_0 = Vec::new();
        for _ in 0..30 {
            let mut trajectories: Vec<_> = (0..batch)
                .map(|i| bench::random_trajectory(&cfg, t_len, 0, i as u32, &mut rng))
                .collect();
            // Behaviour = the current policy, acted on: sample actions from it.
            let probe = batcher::build_batch(&trajectories, &cfg, 1).unwrap();
            let (out, _) = tch::no_grad(|| model.unroll(&probe.unroll(), &probe.initial_state));
            let probs = out.policy_logits.softmax(-1, tch::Kind::Float);
            prob_of_0.push(probs.select(-1, 0).mean(tch::Kind::Float).double_value(&[]));
            let probs = Vec::<f32>::try_from(probs.flatten(0, -1)).unwrap();
            let all_logits = Vec::<f32>::try_from(out.policy_logits.flatten(0, -1)).unwrap();
            for (b, tr) in trajectories.iter_mut().enumerate() {
                let mut actions = Vec::new();
                let mut logits = Vec::new();
                let mut rewards = vec![0f32; t_len + 1];
                for t in 0..=t_len {
                    let at = (t * batch + b) * 3;
                    let p = &probs[at..at + 3];
                    let u: f32 = rng.gen();
                    let a = if u < p[0] {
                        0
                    } else if u < p[0] + p[1] {
                        1
                    } else {
                        2
                    };
                    actions.push(a as i64);
                    logits.extend_from_slice(&all_logits[at..at + 3]);
                    if t < t_len {
                        rewards[t + 1] = if a == 0 { 1.0 } else { -1.0 };
                    }
                }
                tr.action = wire::protocol::Array::from_i64(vec![t_len + 1], &actions);
                tr.policy_logits = wire::protocol::Array::from_f32(vec![t_len + 1, 3], &logits);
                tr.reward = wire::protocol::Array::from_f32(vec![t_len + 1], &rewards);
            }
            let batch = batcher::build_batch(&trajectories, &cfg, 1).unwrap();
            update(&model, &mut opt, &batch, &LossConfig::default(), 40.0, 3e-3);
        }
        (prob_of_0, model)
    }

    fn assert_learned(prob_of_0: &[f64]) {
        let (first, last) = (prob_of_0[0], *prob_of_0.last().unwrap());
        assert!((first - 1.0 / 3.0).abs() < 0.1, "initial policy not near uniform: {first}");
        assert!(last > 0.7, "pi(action 0) went {first:.3} -> {last:.3}: {prob_of_0:?}");
    }

    #[test]
    fn updates_learn_a_bandit_in_the_unrolls() {
        assert_learned(&learn_bandit(agent::precision::Precision::Fp32).0);
    }

    #[test]
    fn updates_learn_a_bandit_in_bf16_on_f32_master_weights() {
        let (prob_of_0, model) = learn_bandit(agent::precision::Precision::Bf16);
        assert_learned(&prob_of_0);
        for (name, v) in model.vs.variables() {
            assert_eq!(v.kind(), tch::Kind::Float, "{name}: the master weights stay f32");
        }
        // What the actors receive is f32 too.
        let params = model.to_params(1).unwrap();
        for (name, t) in agent::model::weights::safetensors_to_tensors(&params.weights).unwrap() {
            assert_eq!(t.kind(), tch::Kind::Float, "{name}: sent to the actors as f32");
        }
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
}
