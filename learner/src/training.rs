//! The training loop ([`train`]), in the phases a reader follows:
//!
//! 1. [`Settings::resolve`]: the flags resolved once;
//! 2. [`Session::start`]: the run directory, the model and optimizer (fresh
//!    or from the newest checkpoint), the services that own the sockets
//!    ([`Services`]: trajectories, params, central inference), their
//!    addresses in `endpoints.json`, and the logs;
//! 3. [`Session::run`]: per batch, one update ([`crate::update`]), the new
//!    weights published, a row in `logs.csv`, a checkpoint now and then,
//!    until `--total-frames`, Ctrl-C / SIGTERM, or a failed service;
//! 4. [`Session::finish`]: stop serving, then the final checkpoint and
//!    `meta.json`'s end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use tch::Device;

use agent::model::Model;
use agent::vtrace::LossConfig;
use wire::auth::Credentials;
use wire::log_throttle::worth_logging;
use wire::rundir::{EndReason, Endpoints};
use wire::transport::{Connections, InferenceServer, ParamsServer, Pull};

use crate::batcher::{self, Batch, Batcher, BatcherConfig};
use crate::checkpoint::{self, Counters};
use crate::flags::{device_name, TrainArgs};
use crate::inference::{InferenceCounters, InferenceService, InferenceSettings};
use crate::metrics::{self, CsvLog, Meta, Progress, Row, Throughput};
use crate::optim::Optimizer;
use crate::params_service::{ParamsService, Snapshot};
use crate::settings::Settings;
use crate::tensorboard::{self, TensorBoard};
use crate::update::{update, UpdateStats};

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

/// Runs the learner until `--total-frames` or until `stop` is set; writes a
/// checkpoint either way. A service that died ends the run with an error,
/// after the checkpoint and `meta.json` are written.
pub fn train(args: &TrainArgs, stop: &AtomicBool) -> Result<Summary> {
    let settings = Settings::resolve(args)?;
    let mut session = Session::start(args, settings)?;
    let reason = session.run(stop)?;
    session.finish(reason)
}

/// The threads that own the learner's sockets.
struct Services {
    params: ParamsService,
    batcher: Batcher,
    /// Central inference, with its address.
    inference: Option<(String, InferenceService)>,
    /// The trajectory socket's connections and, under central inference,
    /// the inference socket's: for `actors_disconnected`.
    connections: Vec<Arc<Connections>>,
    trajectories_address: String,
    params_address: String,
}

/// What the services counted, kept when they stop.
struct Served {
    params: ParamsService,
    inference: Option<Arc<InferenceCounters>>,
    trajectories: Arc<batcher::TrajectoryCounters>,
    /// Actor id -> how many of its connections closed while the learner
    /// ran (an actor under central inference has one per group).
    gone: serde_json::Map<String, serde_json::Value>,
}

impl Services {
    fn start(args: &TrainArgs, s: &Settings, model: &Model, version: u64) -> Result<Self> {
        // The run's key, made with the run directory: on tcp every message is
        // sealed with it, so only processes that can read the run directory
        // take part. Nothing sealed before this start is taken: after a
        // --resume, that keeps the last session's messages (replays of them
        // included) out.
        let creds = Credentials::of(&s.run_dir)?.refusing_sealed_before(SystemTime::now());
        let run_dir = &s.run_dir;
        let trajectories_address =
            args.trajectories_address.clone().unwrap_or_else(|| run_dir.ipc("trajectories"));
        let params_address = args.params_address.clone().unwrap_or_else(|| run_dir.ipc("params"));
        let pull =
            Pull::bind(&trajectories_address, &creds, args.max_message_bytes, args.allow_remote)
                .with_context(|| format!("binding the trajectory socket {trajectories_address}"))?;
        let server = ParamsServer::bind(&params_address, &creds, args.allow_remote)
            .with_context(|| format!("binding the params socket {params_address}"))?;
        let mut connections = vec![pull.connections()];
        let params = ParamsService::spawn(server, model, version);
        let batcher = Batcher::spawn(
            pull,
            BatcherConfig {
                model: s.cfg.clone(),
                unroll_length: args.run.unroll_length,
                batch_size: args.batch_size,
                queue_batches: args.queue_batches,
                decode_threads: args.decode_threads,
                device: s.device,
            },
        );
        // Central inference: the actors' model runs here, on the learner's device.
        let inference = if s.central_inference {
            let address =
                args.inference_address.clone().unwrap_or_else(|| run_dir.ipc("inference"));
            let server =
                InferenceServer::bind(&address, &creds, args.max_message_bytes, args.allow_remote)
                    .with_context(|| format!("binding the inference socket {address}"))?;
            let mut copy = Model::new(s.cfg.clone(), s.device);
            copy.set_precision(s.precision.precision);
            copy.vs.copy(&model.vs).context("copying the weights for inference")?;
            let settings = InferenceSettings {
                max_envs: args.inference_batch,
                max_wait: Duration::from_secs_f64(args.inference_wait_ms.max(0.0) / 1e3),
                idle_timeout: Duration::from_secs_f64(args.inference_idle_s.max(1.0)),
                unroll_length: args.run.unroll_length,
                // Under central inference no trajectory arrives over the socket:
                // the decode threads' share of the cores decodes requests instead.
                receive_threads: args.decode_threads,
                // A resumed learner samples anew, not the same numbers again.
                seed: env::derive_seed(args.run.seed, u32::MAX, version as u32),
            };
            connections.push(server.connections());
            let service = InferenceService::spawn(server, copy, version, settings, batcher.inlet());
            Some((address, service))
        } else {
            None
        };
        let services = Services {
            params,
            batcher,
            inference,
            connections,
            trajectories_address,
            params_address,
        };
        Endpoints::merge_into(
            &run_dir.endpoints(),
            &Endpoints {
                trajectories: Some(services.trajectories_address.clone()),
                params: Some(services.params_address.clone()),
                episodes: None,
                inference: services.inference.as_ref().map(|(address, _)| address.clone()),
            },
        )
        .with_context(|| format!("writing {}", run_dir.endpoints().display()))?;
        Ok(services)
    }

    /// Why a service died, if one did: no unroll would come from it again.
    fn failure(&self) -> Option<String> {
        self.inference.as_ref().and_then(|(_, service)| service.failure())
    }

    /// One copy of the new weights, read by the params service and by
    /// central inference.
    fn publish(&self, version: u64, model: &Model) {
        let snapshot = Snapshot::of(version, model);
        if let Some((_, service)) = &self.inference {
            service.publish(snapshot.share());
        }
        self.params.publish(snapshot);
    }

    /// Stops taking unrolls: central inference first (it feeds the batcher),
    /// then the batcher and its socket. The params service goes on answering
    /// until the caller drops it, after the final checkpoint.
    fn stop_serving(self) -> Served {
        let Services { params, batcher, inference, connections, .. } = self;
        // Before closing the sockets closes the connections that remain. An
        // actor under central inference has a connection per group.
        let mut gone = std::collections::BTreeMap::<u32, u64>::new();
        for (actor, n) in connections.iter().flat_map(|c| c.gone()) {
            *gone.entry(actor).or_default() += n;
        }
        let gone = gone.into_iter().map(|(a, n)| (a.to_string(), n.into())).collect();
        let inference = inference.map(|(_, service)| {
            let counters = service.counters.clone();
            drop(service);
            counters
        });
        let trajectories = batcher.counters.clone();
        let report = trajectories.report();
        if !report.is_empty() {
            tracing::info!("trajectories per actor:\n{report}");
        }
        drop(batcher);
        Served { params, inference, trajectories, gone }
    }
}

/// Where the session's rows and settings go.
struct Logs {
    meta: Meta,
    csv: CsvLog,
    board: Option<TensorBoard>,
    /// Rows that could not be written: lost, counted, reported.
    csv_failures: u64,
    progress: Progress,
    throughput: Throughput,
}

impl Logs {
    fn open(
        args: &TrainArgs,
        s: &Settings,
        counters: &Counters,
        resumed_from: Option<&std::path::Path>,
    ) -> Result<Self> {
        let run_dir = &s.run_dir;
        let mut config = s.config_json.clone();
        config["model"] = serde_json::to_value(&s.cfg)?;
        config["fingerprint"] = s.cfg.fingerprint().into();
        config["num_actions"] = s.num_actions.into();
        config["frames_per_step"] = s.frames_per_step.into();
        config["device_resolved"] = device_name(s.device).into();
        config["precision_resolved"] = s.precision.precision.to_string().into();
        config["precision_reason"] = s.precision.reason.clone().into();
        config["inference_resolved"] =
            if s.central_inference { "central" } else { "actors" }.into();
        let meta = Meta::start(&run_dir.meta_json(), config, resumed_from)?;
        if resumed_from.is_some() {
            metrics::set_aside_rows_after(&run_dir.logs_csv(), counters.step)?;
        }
        let csv = CsvLog::open(&run_dir.logs_csv())?;
        let board = match args.tensorboard {
            true => Some(TensorBoard::create(&tensorboard::dir(run_dir.root()))?),
            false => None,
        };
        let mut throughput = Throughput::new(Duration::from_secs(30));
        throughput.record(counters.agent_steps, counters.frames);
        let progress = Progress::new(Duration::from_secs_f64(args.log_interval_s.max(0.1)));
        Ok(Logs { meta, csv, board, csv_failures: 0, progress, throughput })
    }

    /// A row to `logs.csv` and TensorBoard. A full or failing disk must not
    /// stop learning: the row is lost, counted and reported; checkpoints
    /// (which must succeed) stop the run.
    fn write(&mut self, row: &Row) {
        if let Err(e) = self.csv.write(row) {
            self.csv_failures += 1;
            if worth_logging(self.csv_failures) {
                tracing::error!(
                    "logs.csv row of step {} not written ({} rows lost so far), learning goes on: {e:#}",
                    row.step,
                    self.csv_failures
                );
            }
        }
        if let Some(Err(e)) = self.board.as_mut().map(|b| b.write(row)) {
            tracing::error!("TensorBoard stops for this session, learning goes on: {e:#}");
            self.board = None;
        }
    }
}

/// One training session of a run, from start to its final checkpoint.
pub struct Session<'a> {
    args: &'a TrainArgs,
    settings: Settings,
    model: Model,
    opt: Optimizer,
    counters: Counters,
    services: Services,
    logs: Logs,
    loss: LossConfig,
    last_checkpoint: Instant,
    started: Instant,
    train_seconds_before: f64,
    update_ends: Vec<(Instant, f64)>,
    update_seconds: Vec<f64>,
    /// Why a service died, once one did.
    failure: Option<String>,
}

impl<'a> Session<'a> {
    pub fn start(args: &'a TrainArgs, settings: Settings) -> Result<Self> {
        let s = &settings;
        s.run_dir
            .create()
            .with_context(|| format!("creating run directory {}", s.run_dir.root().display()))?;
        // Model and optimizer, fresh or from the newest checkpoint.
        tch::manual_seed(args.run.seed as i64);
        let mut model = Model::new(s.cfg.clone(), s.device);
        model.set_precision(s.precision.precision);
        let mut opt = Optimizer::new(&model.vs, args.optimizer_config());
        let (counters, resumed_from) = checkpoint::resume_or_start(
            &s.run_dir,
            args,
            &s.cfg,
            &s.config_json,
            &mut model,
            &mut opt,
        )?;
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
        let services = Services::start(args, s, &model, counters.version)?;
        let logs = Logs::open(args, s, &counters, resumed_from.as_deref())?;
        tracing::info!(
            "learner {} on {} in {} ({}): model {} ({} actions), T = {}, B = {}; trajectories at {}, params at {}; inference {}",
            s.run_dir.xpid(),
            device_name(s.device),
            s.precision.precision,
            s.precision.reason,
            args.run.preset,
            s.num_actions,
            args.run.unroll_length,
            args.batch_size,
            services.trajectories_address,
            services.params_address,
            services.inference.as_ref().map_or_else(
                || "in the actors".to_string(),
                |(address, _)| format!("central, at {address}")
            )
        );
        let train_seconds_before = counters.train_seconds;
        Ok(Session {
            args,
            model,
            opt,
            counters,
            services,
            logs,
            loss: args.loss_config(),
            last_checkpoint: Instant::now(),
            started: Instant::now(),
            train_seconds_before,
            update_ends: Vec::new(),
            update_seconds: Vec::new(),
            failure: None,
            settings,
        })
    }

    /// Updates until the run ends; returns why.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<EndReason> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(EndReason::Interrupted);
            }
            // A dead serve thread answers nobody: no unroll would ever come.
            // (Before the total frames: a failure is reported whenever it came.)
            if let Some(why) = self.services.failure() {
                self.failure = Some(why);
                return Ok(EndReason::Failed);
            }
            if self.counters.frames >= self.args.total_frames {
                return Ok(EndReason::TotalFramesReached);
            }
            let batcher = &self.services.batcher;
            let queue_size = batcher.queued.load(Ordering::Relaxed);
            let Some(batch) = batcher.next(Duration::from_millis(100)) else {
                let received: u64 = batcher.counters.snapshot().values().map(|c| c.received).sum();
                self.logs.progress.maybe_report_waiting(queue_size, received);
                continue;
            };
            let (stats, lr) = self.learn(&batch);
            let row = self.count(&batch, &stats, lr, queue_size);
            self.logs.write(&row);
            self.logs.progress.episodes(&batch.episode_returns);
            self.logs.progress.maybe_report(&row, self.services.batcher.counters.total_dropped());
            if !stats.total.is_finite() {
                tracing::error!(
                    "loss is {} at step {}: check the learning rate",
                    stats.total,
                    self.counters.step
                );
            }
            if self.last_checkpoint.elapsed().as_secs_f64() >= self.args.checkpoint_interval_s {
                let path = self.checkpoint()?;
                tracing::info!("checkpoint {}", path.display());
                self.last_checkpoint = Instant::now();
            }
        }
    }

    /// One update on `batch` with the learning rate of the frames so far.
    fn learn(&mut self, batch: &Batch) -> (UpdateStats, f64) {
        let lr = self.args.learning_rate_at(self.counters.frames);
        let on_device = batch.to_device(self.settings.device);
        let started = Instant::now();
        let stats = update(
            &self.model,
            &mut self.opt,
            &on_device,
            &self.loss,
            self.args.grad_norm_clip,
            lr,
        );
        self.update_seconds.push(started.elapsed().as_secs_f64());
        (stats, lr)
    }

    /// Counts the update, publishes its weights, and returns its log row.
    fn count(&mut self, batch: &Batch, stats: &UpdateStats, lr: f64, queue_size: usize) -> Row {
        let c = &mut self.counters;
        let lag =
            batch.params_versions.iter().map(|&v| c.version.saturating_sub(v) as f64).sum::<f64>()
                / batch.params_versions.len() as f64;
        let steps = self.settings.steps_per_batch(self.args);
        c.step += 1;
        c.version += 1;
        c.agent_steps += steps;
        c.frames += steps * self.settings.frames_per_step;
        c.episodes += batch.episode_returns.len() as u64;
        c.train_seconds = self.train_seconds_before + self.started.elapsed().as_secs_f64();
        self.services.publish(c.version, &self.model);
        let (sps, fps) = self.logs.throughput.record(c.agent_steps, c.frames);
        let episodes = batch.episode_returns.len();
        self.update_ends.push((Instant::now(), metrics::process_cpu_seconds().unwrap_or(f64::NAN)));
        Row {
            time: metrics::unix_seconds(),
            step: c.step,
            agent_steps: c.agent_steps,
            frames: c.frames,
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
            episodes_total: c.episodes,
            policy_lag: lag,
            queue_size,
            learning_rate: lr,
            grad_norm: stats.grad_norm,
        }
    }

    fn checkpoint(&self) -> Result<PathBuf> {
        checkpoint::save(
            &self.settings.run_dir.checkpoints(),
            &self.model,
            &self.opt,
            &self.counters,
            &self.settings.config_json,
            self.args.keep_checkpoints,
        )
    }

    /// Stops serving, then writes the final checkpoint and `meta.json`'s end:
    /// no unroll is taken after the checkpoint, so a resumed run misses none
    /// it learned from.
    pub fn finish(self, reason: EndReason) -> Result<Summary> {
        let Session {
            args,
            settings,
            model,
            opt,
            counters,
            services,
            mut logs,
            update_ends,
            update_seconds,
            failure,
            ..
        } = self;
        let served = services.stop_serving();
        let path = checkpoint::save(
            &settings.run_dir.checkpoints(),
            &model,
            &opt,
            &counters,
            &settings.config_json,
            args.keep_checkpoints,
        )?;
        let stats = &served.params.stats;
        tracing::info!(
            "{reason}: checkpoint {} at step {} frames {} (params: {} requests, {} weights sent, {} up to date, {} versions encoded)",
            path.display(),
            counters.step,
            counters.frames,
            stats.requests.load(Ordering::Relaxed),
            stats.params_sent.load(Ordering::Relaxed),
            stats.up_to_date_sent.load(Ordering::Relaxed),
            stats.encodes.load(Ordering::Relaxed),
        );
        let params_refused = stats.refused_by_reason();
        drop(served.params);
        let meta = &mut logs.meta;
        meta.set("final_counters", serde_json::to_value(&counters)?);
        meta.set("trajectories_per_actor", trajectories_per_actor(&served.trajectories));
        meta.set("logs_csv_rows_lost", logs.csv_failures.into());
        if let Some(c) = &served.inference {
            meta.set("central_inference", c.to_json());
        }
        meta.set("actors_disconnected", served.gone.into());
        meta.set("params_refused", params_refused);
        if let Some(why) = &failure {
            meta.set("failure", why.clone().into());
        }
        if let Some(Err(e)) = logs.board.as_mut().map(TensorBoard::flush) {
            tracing::error!("{e:#}");
        }
        logs.meta.finish(reason)?;
        if let Some(why) = failure {
            bail!(
                "{why} (checkpoint {} written; fix the cause and resume with --resume)",
                path.display()
            );
        }
        Ok(Summary {
            counters,
            reason,
            checkpoint: path,
            update_ends,
            update_seconds,
            device: settings.device,
        })
    }
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
