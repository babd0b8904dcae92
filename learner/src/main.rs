//! The learner: receives trajectories from any number of actors, learns from
//! batches of B unrolls with V-trace and RMSProp, serves the newest weights,
//! and owns the run's checkpoints and logs (docs/architecture.md: Processes,
//! V-trace and the loss, The run directory).
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
mod flags;
mod inference;
mod metrics;
mod optim;
mod params_service;
mod tensorboard;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tch::Device;

use agent::model::Model;
use agent::vtrace::{impala_loss, LossConfig, LossInputs};
use env::EnvSpec;
use wire::auth::Credentials;
use wire::rundir::{EndReason, Endpoints, RunDir};
use wire::transport::{InferenceServer, ParamsServer, Pull};

use batcher::{Batcher, BatcherConfig};
use checkpoint::Counters;
use flags::{device_name, parse_device, Cli, Command, TrainArgs};
use inference::{InferenceService, InferenceSettings};
use metrics::{CsvLog, Meta, Progress, Row, Throughput};
use optim::Optimizer;
use params_service::{ParamsService, Snapshot};

/// What a finished [`train`] call did.
pub struct Summary {
    pub counters: Counters,
    pub reason: EndReason,
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
            behaviour_logits: &batch.steps.policy_logits,
            action: &batch.steps.action,
            reward: &batch.steps.reward,
            done: &batch.steps.done,
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
    let (counters, resumed_from) =
        checkpoint::resume_or_start(&run_dir, args, &cfg, &config_json, &mut model, &mut opt)?;
    let mut counters = counters;
    if let Some(path) = &resumed_from {
        tracing::info!(
            "resumed from {}: step {} frames {} version {} learning rate {:.3e}",
            path.display(),
            counters.step,
            counters.frames,
            counters.version,
            args.learning_rate_at(counters.frames)
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

    // Central inference: the actors' model runs here, on the learner's device.
    let inference = if args.inference.is_central(device) {
        let address = args.inference_address.clone().unwrap_or_else(|| run_dir.ipc("inference"));
        let server =
            InferenceServer::bind(&address, &creds, args.max_message_bytes, args.allow_remote)
                .with_context(|| format!("binding the inference socket {address}"))?;
        let mut copy = Model::new(cfg.clone(), device);
        copy.set_precision(precision.precision);
        copy.vs.copy(&model.vs).context("copying the weights for inference")?;
        let settings = InferenceSettings {
            max_envs: args.inference_batch,
            max_wait: Duration::from_secs_f64(args.inference_wait_ms.max(0.0) / 1e3),
            idle_timeout: Duration::from_secs_f64(args.inference_idle_s.max(1.0)),
            unroll_length: args.run.unroll_length,
            // Under central inference no trajectory arrives over the socket:
            // the decode threads' share of the cores decodes requests instead.
            receive_threads: args.decode_threads,
            seed: env::derive_seed(args.run.seed, u32::MAX, u32::MAX),
        };
        let service =
            InferenceService::spawn(server, copy, counters.version, settings, batcher.inlet());
        Some((address, service))
    } else {
        None
    };
    Endpoints::merge_into(
        &run_dir.endpoints(),
        &Endpoints {
            trajectories: Some(trajectories_address.clone()),
            params: Some(params_address.clone()),
            episodes: None,
            inference: inference.as_ref().map(|(address, _)| address.clone()),
        },
    )
    .with_context(|| format!("writing {}", run_dir.endpoints().display()))?;

    let mut meta_config = config_json.clone();
    meta_config["model"] = serde_json::to_value(&cfg)?;
    meta_config["fingerprint"] = cfg.fingerprint().into();
    meta_config["num_actions"] = num_actions.into();
    meta_config["frames_per_step"] = frames_per_step.into();
    meta_config["device_resolved"] = device_name(device).into();
    meta_config["precision_resolved"] = precision.precision.to_string().into();
    meta_config["precision_reason"] = precision.reason.clone().into();
    meta_config["inference_resolved"] =
        if inference.is_some() { "central" } else { "actors" }.into();
    let mut meta = Meta::start(&run_dir.meta_json(), meta_config, resumed_from.as_deref())?;
    if resumed_from.is_some() {
        metrics::set_aside_rows_after(&run_dir.logs_csv(), counters.step)?;
    }
    let mut csv = CsvLog::open(&run_dir.logs_csv())?;
    let mut board = match args.tensorboard {
        true => Some(tensorboard::TensorBoard::create(&tensorboard::dir(run_dir.root()))?),
        false => None,
    };
    tracing::info!(
        "learner {} on {} in {} ({}): model {} ({} actions), T = {}, B = {}; trajectories at {}, params at {}; inference {}",
        run_dir.xpid(),
        device_name(device),
        precision.precision,
        precision.reason,
        args.run.preset,
        num_actions,
        args.run.unroll_length,
        args.batch_size,
        trajectories_address,
        params_address,
        inference.as_ref().map_or_else(
            || "in the actors".to_string(),
            |(address, _)| format!("central, at {address}")
        )
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

    let mut failure = None;
    let reason = loop {
        if stop.load(Ordering::Relaxed) {
            break EndReason::Interrupted;
        }
        // A dead serve thread answers nobody: no unroll would ever come.
        if let Some(why) = inference.as_ref().and_then(|(_, service)| service.failure()) {
            failure = Some(why);
            break EndReason::Failed;
        }
        if counters.frames >= args.total_frames {
            break EndReason::TotalFramesReached;
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
        // One copy of the new weights, read by the params service and by
        // central inference.
        let snapshot = Snapshot::of(counters.version, &model);
        if let Some((_, service)) = &inference {
            service.publish(snapshot.share());
        }
        params.publish(snapshot);

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
            if wire::log_throttle::worth_logging(csv_failures) {
                tracing::error!(
                    "logs.csv row of step {} not written ({csv_failures} rows lost so far), \
                     learning goes on: {e:#}",
                    counters.step
                );
            }
        }
        if let Some(Err(e)) = board.as_mut().map(|b| b.write(&row)) {
            tracing::error!("TensorBoard stops for this session, learning goes on: {e:#}");
            board = None;
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

    // Stop serving and taking trajectories, then the final checkpoint.
    let inference_counters = inference.map(|(_, service)| service.counters.clone());
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
    if let Some(c) = &inference_counters {
        meta.set("central_inference", c.to_json());
    }
    if let Some(Err(e)) = board.as_mut().map(tensorboard::TensorBoard::flush) {
        tracing::error!("{e:#}");
    }
    meta.set("actors_disconnected", gone.into());
    if let Some(why) = &failure {
        meta.set("failure", why.clone().into());
    }
    meta.finish(reason)?;
    if let Some(why) = failure {
        bail!(
            "{why} (checkpoint {} written; fix the cause and resume with --resume)",
            path.display()
        );
    }
    Ok(Summary { counters, reason, checkpoint: path, update_ends, update_seconds, device })
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

/// `learner end-reason`: one word for launchers (the SLURM scripts requeue a
/// job unless its run reached its total frames).
fn print_end_reason(args: &flags::EndReasonArgs) -> Result<()> {
    let run_dir = RunDir::new(&args.runs_root, &args.xpid).map_err(anyhow::Error::msg)?;
    let reason = run_dir.end_reason().map_err(anyhow::Error::msg)?;
    println!("{}", reason.map_or("none", EndReason::as_word));
    Ok(())
}

fn main() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;

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
}
